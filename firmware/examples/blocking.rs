//! zscope inside your own firmware, blocking: a Nucleo-F401RE reads its own sensor (here PA0,
//! the Arduino A0 pin, through ADC1's registers, as any HAL would) 100 times a second and hands
//! each reading to [`Monitor`]; the bytes it gives go to USART2 (the ST-LINK's virtual COM
//! port, an `embedded-io` serial line), and what the host sends comes back to it. Run `zscope
//! --port /dev/ttyACM0` on the PC: the page shows the readings judged, in volts, and changes
//! the detector on the board.
//!
//! Build: `cargo build --release -p zscope-firmware --target thumbv7em-none-eabihf --examples`
//! (flash the ELF with probe-rs).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::entry;
    use embedded_io::{Read, ReadReady, Write, WriteReady};
    use stm32f4::stm32f401::{ADC1, Peripherals};
    use zscope_firmware::Clock;
    use zscope_firmware::board::{SysTickClock, Usart2, clocks};
    use zscope_firmware::monitor::Monitor;
    use zscope_firmware::zscope_core::source::Unit;

    /// Milliseconds between readings.
    const PERIOD_MS: u64 = 10;

    /// Your sensor: PA0 through ADC1, in volts (3.3 V full scale, 12 bits).
    struct Sensor(ADC1);

    impl Sensor {
        fn read_volts(&mut self) -> f32 {
            // Start a conversion, wait for its end (a few microseconds), read it.
            self.0.cr2().modify(|_, w| w.swstart().set_bit());
            while self.0.sr().read().eoc().bit_is_clear() {}
            f32::from(self.0.dr().read().data().bits()) * 3.3 / 4095.0
        }
    }

    #[entry]
    fn main() -> ! {
        let (Some(cp), Some(dp)) = (cortex_m::Peripherals::take(), Peripherals::take()) else {
            panic!("peripherals taken twice");
        };
        clocks::pll_84mhz(&dp.RCC, &dp.FLASH);
        let mut clock = SysTickClock::start(cp.SYST, clocks::SYSCLK_HZ);
        let mut uart = Usart2::new(dp.USART2, &dp.RCC, &dp.GPIOA, clocks::PCLK1_HZ, 115_200);
        // PA0 analog, ADC1 on (84 MHz / 4 = 21 MHz), channel 0 first in the sequence.
        dp.RCC.apb2enr().modify(|_, w| w.adc1en().set_bit());
        dp.GPIOA.moder().modify(|_, w| w.moder0().analog());
        dp.ADC_COMMON.ccr().modify(|_, w| w.adcpre().div4());
        dp.ADC1.cr2().modify(|_, w| w.adon().set_bit());
        let mut sensor = Sensor(dp.ADC1);

        // The monitor is 16 KiB: a static, so the linker counts it.
        let Ok(monitor) = Monitor::new("my-nucleo", Unit::Volts, 100) else {
            panic!("the monitor's settings are valid");
        };
        let Some(zscope) = cortex_m::singleton!(: Monitor = monitor) else {
            panic!("main runs once");
        };

        let mut next = 0;
        let mut rx = [0u8; 64];
        loop {
            let now = clock.now_ms();
            // The host's commands.
            let Ok(ready) = uart.read_ready();
            if ready {
                let Ok(n) = uart.read(&mut rx);
                zscope.received(&rx[..n], now);
            }
            // Your readings, judged as they come.
            if now >= next {
                zscope.reading(now, sensor.read_volts());
                next = now + PERIOD_MS;
            } else {
                zscope.tick(now);
            }
            // What the line takes now, without waiting.
            while !zscope.peek().is_empty() {
                let Ok(true) = uart.write_ready() else { break };
                let Ok(n) = uart.write(zscope.peek());
                zscope.sent(n);
            }
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        loop {
            cortex_m::asm::bkpt();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "this example runs on a Nucleo-F401RE: \
         cargo build --release -p zscope-firmware --target thumbv7em-none-eabihf --examples"
    );
    std::process::exit(2);
}
