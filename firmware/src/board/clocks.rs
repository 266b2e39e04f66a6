//! The Nucleo's core clock: 84 MHz from the PLL fed by the 16 MHz internal oscillator (HSI),
//! the STM32F401's top speed. Not for QEMU: it does not emulate the clock controller, so the
//! wait for the PLL to lock would never end (its build stays on the reset clock).
//!
//! HSI 16 MHz / M 16 = 1 MHz into the PLL, × N 336 = 336 MHz VCO, / P 4 = **84 MHz** system
//! clock (/ Q 7 = 48 MHz for USB). AHB and APB2 at 84 MHz, APB1 (USART2) at 42 MHz, its
//! maximum. Flash at 84 MHz and 3.3 V needs 2 wait states; the prefetch and the instruction and
//! data caches (the ART accelerator) hide most of them. The voltage regulator's reset scale (2)
//! already allows 84 MHz.

use stm32f4::stm32f401::{FLASH, RCC};

/// The system (core, SysTick) clock once [`pll_84mhz`] has run.
pub const SYSCLK_HZ: u32 = 84_000_000;
/// USART2's clock (APB1) then.
pub const PCLK1_HZ: u32 = 42_000_000;

/// Run the core at 84 MHz from the PLL (see the module's notes), and APB1 at 42 MHz.
pub fn pll_84mhz(rcc: &RCC, flash: &FLASH) {
    // Wait states first: the flash must be ready for the faster clock before it comes.
    flash.acr().modify(|_, w| {
        w.latency()
            .ws2()
            .prften()
            .set_bit()
            .icen()
            .set_bit()
            .dcen()
            .set_bit()
    });
    rcc.pllcfgr().write(|w| {
        w.pllsrc().hsi();
        w.pllp().div4();
        // SAFETY: M 16 (2..=63), N 336 (50..=432, VCO 336 MHz within 100..=432) and Q 7
        // (2..=15) are values the reference manual (RM0368, 6.3.2) allows; the PAC leaves
        // these fields unchecked.
        #[allow(unsafe_code)]
        unsafe {
            w.pllm().bits(16).plln().bits(336).pllq().bits(7)
        }
    });
    rcc.cr().modify(|_, w| w.pllon().set_bit());
    while rcc.cr().read().pllrdy().bit_is_clear() {}
    rcc.cfgr()
        .modify(|_, w| w.hpre().div1().ppre1().div2().ppre2().div1());
    rcc.cfgr().modify(|_, w| w.sw().pll());
    while !rcc.cfgr().read().sws().is_pll() {}
}
