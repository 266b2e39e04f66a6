//! ST Nucleo-F401RE: USART2 on PA2/PA3 is wired to the ST-LINK's virtual COM port, which the PC
//! sees as `/dev/ttyACM0` over the same USB cable that flashes the board.

use super::Board;

/// The board at its top speed: the core at 84 MHz from the PLL, APB1 (USART2) at 42 MHz
/// (115 200 baud is then 0.1 % off, 921 600 baud 0.9 %; at 16 MHz 921 600 was 2.1 % off).
pub const BOARD: Board = Board {
    name: "nucleo-f401re",
    systick_hz: super::clocks::SYSCLK_HZ,
    uart_clock_hz: super::clocks::PCLK1_HZ,
    pll_84mhz: true,
    // APB1 at 42 MHz with a prescaler of 2: its timers count at twice that.
    timer_hz: 2 * super::clocks::PCLK1_HZ,
    adc_eoc: true,
    pacer: super::sensor::Pacer::Tim2,
};
