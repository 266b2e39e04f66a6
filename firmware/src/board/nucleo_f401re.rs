//! ST Nucleo-F401RE: USART2 on PA2/PA3 is wired to the ST-LINK's virtual COM port, which the PC
//! sees as `/dev/ttyACM0` over the same USB cable that flashes the board.

use super::Board;

/// The board as it leaves reset: 16 MHz HSI for the core and APB1.
pub const BOARD: Board = Board {
    name: "nucleo-f401re",
    systick_hz: 16_000_000,
    uart_clock_hz: 16_000_000,
};
