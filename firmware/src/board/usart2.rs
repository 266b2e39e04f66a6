//! USART2 as an `embedded-io` serial line: interrupt-driven receive into a queue (so no byte is
//! lost while the loop is busy with a burst of samples), polled transmit (the app's own queue
//! absorbs bursts; the loop writes a byte whenever the data register is empty).

use core::cell::RefCell;

use critical_section::Mutex;
use heapless::Deque;
use stm32f4::stm32f401::{GPIOA, Interrupt, RCC, USART2, interrupt};

/// Received bytes not yet read by the app; full means the app is far behind (bytes dropped,
/// counted in [`rx_overruns`]).
static RX: Mutex<RefCell<Deque<u8, 256>>> = Mutex::new(RefCell::new(Deque::new()));
static RX_OVERRUNS: Mutex<core::cell::Cell<u32>> = Mutex::new(core::cell::Cell::new(0));
static UART: Mutex<RefCell<Option<USART2>>> = Mutex::new(RefCell::new(None));

/// Bytes lost because the receive queue or the UART's register overflowed.
pub fn rx_overruns() -> u32 {
    critical_section::with(|cs| RX_OVERRUNS.borrow(cs).get())
}

#[interrupt]
fn USART2() {
    critical_section::with(|cs| {
        let uart = UART.borrow(cs).borrow();
        let Some(uart) = uart.as_ref() else { return };
        let sr = uart.sr().read();
        if sr.rxne().bit_is_set() || sr.ore().bit_is_set() {
            // Reading DR after SR clears RXNE and ORE.
            let byte = uart.dr().read().dr().bits() as u8;
            let lost = sr.ore().bit_is_set() as u32;
            let full = RX.borrow(cs).borrow_mut().push_back(byte).is_err() as u32;
            let overruns = RX_OVERRUNS.borrow(cs);
            overruns.set(overruns.get().wrapping_add(lost + full));
        }
    });
}

/// USART2 on PA2 (TX) / PA3 (RX), 8N1.
pub struct Usart2 {
    _private: (),
}

impl Usart2 {
    /// Clock and pin it, set `baud` from a peripheral clock of `pclk_hz`, enable RX interrupts.
    pub fn new(usart: USART2, rcc: &RCC, gpioa: &GPIOA, pclk_hz: u32, baud: u32) -> Self {
        rcc.ahb1enr().modify(|_, w| w.gpioaen().set_bit());
        rcc.apb1enr().modify(|_, w| w.usart2en().set_bit());
        gpioa.afrl().modify(|_, w| w.afrl2().af7().afrl3().af7());
        gpioa
            .moder()
            .modify(|_, w| w.moder2().alternate().moder3().alternate());
        // Oversampling by 16: USARTDIV = pclk / (16 · baud), in 1/16ths, rounded.
        let div16 = (pclk_hz + baud / 2) / baud;
        usart.brr().write(|w| {
            w.div_mantissa()
                .set((div16 >> 4) as u16)
                .div_fraction()
                .set((div16 & 0xf) as u8)
        });
        usart.cr1().write(|w| {
            w.ue()
                .set_bit()
                .te()
                .set_bit()
                .re()
                .set_bit()
                .rxneie()
                .set_bit()
        });
        critical_section::with(|cs| UART.borrow(cs).replace(Some(usart)));
        enable_rx_interrupt();
        Usart2 { _private: () }
    }
}

#[allow(unsafe_code)]
fn enable_rx_interrupt() {
    // SAFETY: unmasking can break critical sections that rely on the interrupt being masked;
    // the USART2 handler only touches state behind `critical_section::Mutex`es.
    unsafe { cortex_m::peripheral::NVIC::unmask(Interrupt::USART2) };
}

/// No error can happen on this line: overruns are counted, not reported per read.
#[derive(Debug)]
pub enum Never {}

impl core::fmt::Display for Never {
    fn fmt(&self, _: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {}
    }
}

impl core::error::Error for Never {}

impl embedded_io::Error for Never {
    fn kind(&self) -> embedded_io::ErrorKind {
        match *self {}
    }
}

impl embedded_io::ErrorType for Usart2 {
    type Error = Never;
}

impl embedded_io::ReadReady for Usart2 {
    fn read_ready(&mut self) -> Result<bool, Never> {
        Ok(critical_section::with(|cs| {
            !RX.borrow(cs).borrow().is_empty()
        }))
    }
}

impl embedded_io::Read for Usart2 {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Never> {
        Ok(critical_section::with(|cs| {
            let mut rx = RX.borrow(cs).borrow_mut();
            let mut n = 0;
            for slot in buf.iter_mut() {
                let Some(b) = rx.pop_front() else { break };
                *slot = b;
                n += 1;
            }
            n
        }))
    }
}

impl embedded_io::WriteReady for Usart2 {
    fn write_ready(&mut self) -> Result<bool, Never> {
        Ok(critical_section::with(|cs| {
            UART.borrow(cs)
                .borrow()
                .as_ref()
                .is_some_and(|u| u.sr().read().txe().bit_is_set())
        }))
    }
}

impl embedded_io::Write for Usart2 {
    /// Writes as many bytes as the UART takes without waiting (at least one when it was
    /// ready).
    fn write(&mut self, buf: &[u8]) -> Result<usize, Never> {
        Ok(critical_section::with(|cs| {
            let uart = UART.borrow(cs).borrow();
            let Some(uart) = uart.as_ref() else { return 0 };
            let mut n = 0;
            for b in buf {
                if !uart.sr().read().txe().bit_is_set() {
                    break;
                }
                uart.dr().write(|w| w.dr().set(*b as u16));
                n += 1;
            }
            n
        }))
    }

    fn flush(&mut self) -> Result<(), Never> {
        while !embedded_io::WriteReady::write_ready(self)? {}
        Ok(())
    }
}
