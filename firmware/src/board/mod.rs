//! Board support, one module per board; each gives the app a serial line and a clock.
//!
//! Both boards run the STM32F4's USART2 (PA2/PA3, AF7) and the Cortex-M SysTick. The Nucleo
//! runs its core at 84 MHz from the PLL ([`clocks`]); QEMU's build stays on the reset clock
//! (16 MHz HSI): QEMU does not emulate the clock controller, so a wait for the PLL to lock would
//! hang there. They differ in the board name, the clock, and the SysTick frequency QEMU models.

pub mod clocks;
pub mod nucleo_f401re;
pub mod qemu;
pub mod sensor;
mod systick;
mod usart2;

pub use sensor::Sensor;
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
    /// Frequency TIM2 counts at (it paces the sensor readings).
    pub timer_hz: u32,
    /// Whether the ADC sets its end-of-conversion flag (QEMU's model does not).
    pub adc_eoc: bool,
    /// What paces the sensor's readings.
    pub pacer: sensor::Pacer,
}

/// Bring up `board` and run the app on it for ever: the whole of every board's `main`.
///
/// The app lives in a static (`cortex_m::singleton!`), so the linker's `.bss` figure is the
/// firmware's RAM, not a guess about the stack.
pub fn run(board: &Board, baud: u32) -> ! {
    let (mut uart, mut clock, mut sensor) = init(board, baud);
    let settings = crate::Settings {
        board: board.name,
        link_baud: baud,
        sources: crate::sensing::sources(),
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
        sensor.serve(app);
        let Ok(()) = crate::poll(app, &mut uart, &mut clock);
    }
}

/// Bring up USART2 at `baud`, a 1 kHz SysTick and the sensors for `board`, and enable their
/// interrupts.
pub fn init(board: &Board, baud: u32) -> (Usart2, SysTickClock, Sensor) {
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
    let sensor = Sensor::new(
        dp.ADC1,
        &dp.ADC_COMMON,
        dp.TIM2,
        &dp.RCC,
        board.timer_hz,
        board.adc_eoc,
        board.pacer,
    );
    (uart, clock, sensor)
}
