//! zscope inside an embassy firmware of your own, on a Nucleo-F401RE: an ADC task reads PA0
//! (the Arduino A0 pin) 100 times a second on embassy's timer and hands each reading to
//! [`Monitor`]; a receive task hands it what the host sends over USART2 (the ST-LINK's virtual
//! COM port, a buffered UART); the transmit task writes what the monitor gives whenever a
//! reading or a command made some. Run `zscope --port /dev/ttyACM0` on the PC.
//!
//! Build: `cargo build --release -p zscope-embassy-nucleo --target thumbv7em-none-eabihf`
//! (flash the ELF with probe-rs). Not run on a board here.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::cell::RefCell;

    use embassy_executor::Spawner;
    use embassy_stm32::adc::{Adc, SampleTime};
    use embassy_stm32::peripherals::{ADC1, PA0, USART2};
    use embassy_stm32::usart::{self, BufferedUart, BufferedUartRx, BufferedUartTx};
    use embassy_stm32::{Peri, bind_interrupts};
    use embassy_sync::blocking_mutex::Mutex;
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
    use embassy_sync::signal::Signal;
    use embassy_time::{Instant, Ticker, Timer};
    use embedded_io_async::{Read, Write};
    use static_cell::StaticCell;
    use zscope_firmware::monitor::Monitor;
    use zscope_firmware::zscope_core::source::Unit;

    bind_interrupts!(struct Irqs {
        USART2 => usart::BufferedInterruptHandler<USART2>;
    });

    /// The monitor, shared by the tasks (each holds it only for a call).
    type Shared = Mutex<CriticalSectionRawMutex, RefCell<Monitor>>;
    /// Set when the monitor has bytes to send.
    static TO_SEND: Signal<CriticalSectionRawMutex, ()> = Signal::new();

    fn now_ms() -> u64 {
        Instant::now().as_millis()
    }

    /// Your sensor: PA0 every 10 ms, in volts (3.3 V full scale, 12 bits).
    #[embassy_executor::task]
    async fn adc_task(
        zscope: &'static Shared,
        adc: Peri<'static, ADC1>,
        mut pin: Peri<'static, PA0>,
    ) {
        let mut adc = Adc::new(adc);
        let mut ticker = Ticker::every(embassy_time::Duration::from_millis(10));
        loop {
            ticker.next().await;
            let raw = adc.blocking_read(&mut pin, SampleTime::CYCLES84);
            let volts = f32::from(raw) * 3.3 / 4095.0;
            zscope.lock(|m| m.borrow_mut().reading(now_ms(), volts));
            TO_SEND.signal(());
        }
    }

    /// The host's commands, applied as they arrive.
    #[embassy_executor::task]
    async fn receive_task(zscope: &'static Shared, mut rx: BufferedUartRx<'static>) {
        let mut buf = [0u8; 64];
        loop {
            if let Ok(n) = rx.read(&mut buf).await {
                zscope.lock(|m| m.borrow_mut().received(&buf[..n], now_ms()));
                TO_SEND.signal(());
            }
        }
    }

    /// What the monitor gives, to the line; a tick each second keeps its status frames going
    /// when no reading comes.
    async fn transmit(zscope: &'static Shared, mut tx: BufferedUartTx<'static>) -> ! {
        let mut chunk = [0u8; 128];
        loop {
            let tick = Timer::after_millis(1000);
            embassy_futures::select::select(TO_SEND.wait(), tick).await;
            loop {
                let n = zscope.lock(|m| {
                    let mut m = m.borrow_mut();
                    m.tick(now_ms());
                    m.transmit(&mut chunk)
                });
                if n == 0 {
                    break;
                }
                // A line error loses these bytes; the host counts the gap.
                let _ = tx.write_all(&chunk[..n]).await;
            }
        }
    }

    #[embassy_executor::main]
    async fn main(spawner: Spawner) {
        let p = embassy_stm32::init(Default::default());
        static TX: StaticCell<[u8; 256]> = StaticCell::new();
        static RX: StaticCell<[u8; 64]> = StaticCell::new();
        let config = usart::Config::default(); // 115 200 baud, 8N1
        let Ok(uart) = BufferedUart::new(
            p.USART2,
            p.PA3,
            p.PA2,
            TX.init([0; 256]),
            RX.init([0; 64]),
            Irqs,
            config,
        ) else {
            panic!("USART2's config is valid");
        };
        let (tx, rx) = uart.split();

        static ZSCOPE: StaticCell<Shared> = StaticCell::new();
        let Ok(monitor) = Monitor::new("my-nucleo-embassy", Unit::Volts, 100) else {
            panic!("the monitor's settings are valid");
        };
        let zscope: &'static Shared = ZSCOPE.init(Mutex::new(RefCell::new(monitor)));

        let (Ok(adc), Ok(receive)) = (adc_task(zscope, p.ADC1, p.PA0), receive_task(zscope, rx))
        else {
            panic!("each task is spawned once");
        };
        spawner.spawn(adc);
        spawner.spawn(receive);
        transmit(zscope, tx).await
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
         cargo build --release -p zscope-embassy-nucleo --target thumbv7em-none-eabihf"
    );
    std::process::exit(2);
}
