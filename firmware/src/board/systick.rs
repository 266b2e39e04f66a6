//! A millisecond clock from the Cortex-M SysTick: a 1 kHz interrupt counts milliseconds in a
//! 64-bit counter (no wrap in any device's lifetime).

use core::cell::Cell;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;

use crate::app::Clock;

static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ms = MILLIS.borrow(cs);
        ms.set(ms.get() + 1);
        super::sensor::millisecond(cs);
    });
}

/// The running SysTick; reading it is the app's [`Clock`].
pub struct SysTickClock {
    _syst: SYST,
}

impl SysTickClock {
    /// Start a 1 kHz tick from the processor clock at `core_hz`.
    pub fn start(mut syst: SYST, core_hz: u32) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(core_hz / 1000 - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        SysTickClock { _syst: syst }
    }
}

impl Clock for SysTickClock {
    fn now_ms(&mut self) -> u64 {
        critical_section::with(|cs| MILLIS.borrow(cs).get())
    }
}
