//! Board support, one module per board; each gives the app a serial line and a clock.
//!
//! Both boards run the STM32F4's USART2 (PA2/PA3, AF7) and the Cortex-M SysTick. The Nucleo
//! runs its core at 84 MHz from the PLL ([`clocks`]); QEMU's build stays on the reset clock
//! (16 MHz HSI): QEMU does not emulate the clock controller, so a wait for the PLL to lock would
//! hang there. They differ in the board name, the clock, and the SysTick frequency QEMU models.

pub mod clocks;
pub mod nucleo_f401re;
pub mod qemu;
mod systick;
mod usart2;

pub use systick::SysTickClock;
pub use usart2::{Usart2, rx_overruns};

/// Which board the binary runs on.
pub struct Board {
    /// Name reported in the hello.
    pub name: &'static str,
    /// Frequency of the SysTick's processor clock, as this board (or emulator) runs it.
    pub systick_hz: u32,
    /// Frequency of USART2's peripheral clock (APB1).
    pub uart_clock_hz: u32,
    /// Whether to start the PLL (84 MHz) before anything else: the real board only.
    pub pll_84mhz: bool,
}

/// Bring up `board` and run the app on it for ever: the whole of every board's `main`.
///
/// The app lives in a static (`cortex_m::singleton!`), so the linker's `.bss` figure is the
/// firmware's RAM, not a guess about the stack.
pub fn run(board: &Board, baud: u32) -> ! {
    let (mut uart, mut clock) = init(board, baud);
    let settings = crate::Settings {
        board: board.name,
        link_baud: baud,
        ..crate::Settings::default()
    };
    let Ok(app) = crate::App::new(settings) else {
        panic!("built-in settings are invalid");
    };
    let Some(app) = cortex_m::singleton!(: crate::App = app) else {
        panic!("board::run called twice");
    };
    loop {
        app.set_link_overruns(rx_overruns());
        let Ok(()) = crate::poll(app, &mut uart, &mut clock);
    }
}

/// Bring up USART2 at `baud` and a 1 kHz SysTick for `board`, and enable their interrupts.
pub fn init(board: &Board, baud: u32) -> (Usart2, SysTickClock) {
    let Some(cp) = cortex_m::Peripherals::take() else {
        panic!("board::init called twice");
    };
    let Some(dp) = stm32f4::stm32f401::Peripherals::take() else {
        panic!("board::init called twice");
    };
    if board.pll_84mhz {
        clocks::pll_84mhz(&dp.RCC, &dp.FLASH);
    }
    let clock = SysTickClock::start(cp.SYST, board.systick_hz);
    let uart = Usart2::new(dp.USART2, &dp.RCC, &dp.GPIOA, board.uart_clock_hz, baud);
    (uart, clock)
}
