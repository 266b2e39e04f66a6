//! QEMU's `netduinoplus2` machine (STM32F405, Cortex-M4F), the stand-in for the Nucleo board in
//! CI. Its USART2 sits at the same address as the F401's; QEMU attaches the *second* `-serial`
//! to it (`-serial null -serial <dev>`). QEMU models the core clock at 168 MHz whatever the
//! clock registers say, so the SysTick reload differs; the baud divisor is ignored (the
//! emulated UART runs as fast as the host reads).

use super::Board;

/// `qemu-system-arm -M netduinoplus2`.
pub const BOARD: Board = Board {
    name: "qemu-netduinoplus2",
    systick_hz: 168_000_000,
    uart_clock_hz: 16_000_000,
    pll_84mhz: false,
    // QEMU's STM32 timers count at 1 GHz whatever the clock registers say.
    timer_hz: 1_000_000_000,
    adc_eoc: false,
    // QEMU 7.2's TIM2 model drifts (see `sensor`): the SysTick paces readings.
    pacer: super::sensor::Pacer::SysTick,
};
