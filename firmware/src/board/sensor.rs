//! The board's sensors: ADC1 read in TIM2's interrupt at the rate in force, so readings are
//! paced by a hardware timer, not by the main loop.
//!
//! Sources: `temperature` (the internal sensor: channel 18 on the F401, with VREFINT on channel
//! 17 to measure the supply) and `adc:<pin>` (the package's ADC1 inputs, [`channel`]). Each
//! reading averages as many conversions as fit in [`crate::sensing::BUDGET_NS`]
//! ([`oversample`]), inside a critical section short enough that USART2 loses no byte at
//! 115 200 baud.
//!
//! A conversion that does not end within a bound, an overrun flag, or a supply reading that
//! makes no sense is a sensor error: counted ([`errors`]), not judged; the stream goes on.
//! Readings the main loop has not taken when the queue is full are counted ([`lost`]) and
//! reported as dropped samples.
//!
//! QEMU's model of the ADC (`stm32f2xx_adc`) converts when the data register is read after a
//! start and never sets the end-of-conversion flag: [`Board::adc_eoc`](super::Board) says
//! whether to wait for it. QEMU 7.2's model of TIM2 (`stm32f2xx_timer`) schedules each update
//! `ARR + (time of the last reload)` ns ahead, so its period grows with the time since boot
//! (4.3 s for a 50 Hz reload made 4 s after boot): in QEMU the 1 kHz SysTick paces the readings
//! instead ([`Pacer::SysTick`]), a reading on each millisecond a rate's accumulator crosses,
//! exact for rates that divide 1 000 and within a millisecond for the others.

use core::cell::RefCell;

use critical_section::Mutex;
use heapless::Deque;
use stm32f4::stm32f401::{ADC_COMMON, ADC1, GPIOA, GPIOB, GPIOC, Interrupt, RCC, TIM2, interrupt};
use zscope_core::source::{Pin, Source};

use crate::app::{App, Sensing};
use crate::sensing::{
    INTERNAL_SAMPLE_CYCLES, PIN_SAMPLE_CYCLES, celsius, channel, oversample, volts,
};

/// Polls of the end-of-conversion flag before a conversion counts as stuck. The longest
/// conversion (480 + 12 ADC cycles at 21 MHz, 23 us) is about 2 000 core cycles at 84 MHz; a
/// poll takes 6 to 8, so 1 000 polls wait about three times that, and a stuck conversion holds
/// the interrupt (and USART2's receive) for well under a byte time at 115 200 baud.
const EOC_POLLS: u32 = 1_000;
/// Readings waiting for the main loop.
const QUEUE: usize = 32;

const CH_VREFINT: u8 = 17;
const CH_TEMPERATURE: u8 = 18;

// Register bits (RM0368).
const SR_EOC: u32 = 1 << 1;
const SR_OVR: u32 = 1 << 5;
const CR2_ADON: u32 = 1;
const CR2_SWSTART: u32 = 1 << 30;
const CCR_ADCPRE_DIV4: u32 = 0b01 << 16;
const CCR_TSVREFE: u32 = 1 << 23;

/// SMPR's three-bit code for a sample time in ADC cycles.
const fn smp(cycles: u32) -> u32 {
    match cycles {
        480 => 0b111,
        144 => 0b110,
        112 => 0b101,
        84 => 0b100,
        56 => 0b011,
        28 => 0b010,
        15 => 0b001,
        _ => 0b000,
    }
}

/// What paces the readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacer {
    /// TIM2's update interrupt at the rate (the board).
    Tim2,
    /// The 1 kHz SysTick, a reading whenever `rate / 1000` accumulates to one (QEMU).
    SysTick,
}

/// What the interrupt reads, and how.
#[derive(Clone, Copy)]
struct Plan {
    source: Source,
    generation: u32,
    rate_hz: u32,
    /// SysTick pacing: thousandths of a reading accumulated.
    accumulated: u32,
}

/// ADC1, set up for the sources: conversions, averages, readings in their units.
pub struct Converter {
    adc: ADC1,
    wait_eoc: bool,
}

impl Converter {
    /// Clock ADC1 (at APB2 / 4), set every channel's sample time (84 cycles for a pin, 480 for
    /// the internal channels), turn the temperature sensor and the reference on, and the ADC.
    /// `wait_eoc`: wait for the end-of-conversion flag (not in QEMU, whose model never sets
    /// it).
    pub fn new(adc: ADC1, common: &ADC_COMMON, rcc: &RCC, wait_eoc: bool) -> Converter {
        rcc.apb2enr().modify(|_, w| w.adc1en().set_bit());
        rcc.ahb1enr().modify(|_, w| {
            w.gpioaen()
                .set_bit()
                .gpioben()
                .set_bit()
                .gpiocen()
                .set_bit()
        });
        // SAFETY (the `bits` writes): documented values of RM0368's ADC registers.
        #[allow(unsafe_code)]
        unsafe {
            common
                .ccr()
                .write(|w| w.bits(CCR_ADCPRE_DIV4 | CCR_TSVREFE));
            // Channels 10-18 in SMPR1, 0-9 in SMPR2, three bits each.
            let mut smpr1 = 0;
            for ch in 10..=18 {
                let cycles = if ch >= 16 {
                    INTERNAL_SAMPLE_CYCLES
                } else {
                    PIN_SAMPLE_CYCLES
                };
                smpr1 |= smp(cycles) << ((ch - 10) * 3);
            }
            let smp_pin = smp(PIN_SAMPLE_CYCLES);
            let smpr2 = (0..10).fold(0, |acc, ch| acc | smp_pin << (ch * 3));
            adc.smpr1().write(|w| w.bits(smpr1));
            adc.smpr2().write(|w| w.bits(smpr2));
            adc.sqr1().write(|w| w.bits(0));
            adc.cr1().write(|w| w.bits(0));
            adc.cr2().write(|w| w.bits(CR2_ADON));
        }
        Converter { adc, wait_eoc }
    }

    /// One conversion of the selected channel, raw.
    fn convert(&mut self) -> Option<u16> {
        let adc = &self.adc;
        // SAFETY (every `bits` write below): whole-register values built from RM0368's
        // documented bits.
        #[allow(unsafe_code)]
        adc.cr2()
            .write(|w| unsafe { w.bits(CR2_ADON | CR2_SWSTART) });
        if self.wait_eoc {
            let mut polls = 0;
            while adc.sr().read().bits() & SR_EOC == 0 {
                polls += 1;
                if polls == EOC_POLLS {
                    return None;
                }
            }
        }
        let sr = adc.sr().read().bits();
        let value = adc.dr().read().bits() as u16;
        if sr & SR_OVR != 0 {
            #[allow(unsafe_code)]
            adc.sr().write(|w| unsafe { w.bits(!SR_OVR & 0x3f) });
            return None;
        }
        Some(value)
    }

    fn select(&mut self, channel: u8) {
        #[allow(unsafe_code)]
        self.adc
            .sqr3()
            .write(|w| unsafe { w.bits(u32::from(channel)) });
    }

    /// The mean of `n` conversions of `channel`.
    fn average(&mut self, channel: u8, n: u32) -> Option<f32> {
        self.select(channel);
        let mut sum = 0u32;
        for _ in 0..n {
            sum += u32::from(self.convert()?);
        }
        Some(sum as f32 / n as f32)
    }

    /// One reading of `source` (its conversions averaged as [`oversample`] says), in its
    /// unit; `None` when the sensor failed (a stuck conversion, an overrun, a supply that
    /// makes no sense) or `source` is not a sensor or a pin of ADC1.
    pub fn read(&mut self, source: Source) -> Option<f32> {
        let n = oversample(source);
        match source {
            Source::Temperature => {
                let reference = self.average(CH_VREFINT, n)?;
                let sensor = self.average(CH_TEMPERATURE, n)?;
                celsius(reference, sensor)
            }
            Source::Adc(pin) => Some(volts(self.average(channel(pin)?, n)?)),
            Source::Simulator | Source::External => None,
        }
    }
}

struct Sampler {
    converter: Converter,
    pacer: Pacer,
    plan: Option<Plan>,
    queue: Deque<(u32, Option<f32>), QUEUE>,
    errors: u32,
    lost: u32,
}

static SAMPLER: Mutex<RefCell<Option<Sampler>>> = Mutex::new(RefCell::new(None));

impl Sampler {
    /// Take one reading of the plan's source and queue it (or count why not).
    fn take(&mut self, plan: Plan) {
        let reading = self.converter.read(plan.source);
        if reading.is_none() {
            self.errors = self.errors.wrapping_add(1);
        }
        // A fault is queued too, so the readings after it keep their timer slots.
        if self.queue.push_back((plan.generation, reading)).is_err() {
            self.lost = self.lost.wrapping_add(1);
        }
    }
}

#[interrupt]
fn TIM2() {
    // SAFETY: clearing the update flag is a write of this interrupt's own status bit; the
    // main loop writes TIM2's other registers only with this interrupt masked.
    #[allow(unsafe_code)]
    unsafe {
        (*TIM2::ptr()).sr().write(|w| w.bits(0));
    }
    critical_section::with(|cs| {
        let mut sampler = SAMPLER.borrow(cs).borrow_mut();
        let Some(s) = sampler.as_mut() else { return };
        if let Some(plan) = s.plan
            && s.pacer == Pacer::Tim2
        {
            s.take(plan);
        }
    });
}

/// The SysTick's share of the sensor (every millisecond): with [`Pacer::SysTick`], a reading
/// whenever the rate's accumulator crosses one.
pub fn millisecond(cs: critical_section::CriticalSection<'_>) {
    let mut sampler = SAMPLER.borrow(cs).borrow_mut();
    let Some(s) = sampler.as_mut() else { return };
    let Some(plan) = s.plan.as_mut() else { return };
    if s.pacer != Pacer::SysTick {
        return;
    }
    plan.accumulated += plan.rate_hz;
    if plan.accumulated >= 1000 {
        plan.accumulated -= 1000;
        let plan = *plan;
        s.take(plan);
    }
}

/// Sensor errors since boot.
pub fn errors() -> u32 {
    critical_section::with(|cs| SAMPLER.borrow(cs).borrow().as_ref().map_or(0, |s| s.errors))
}

/// The sensor side of a board: TIM2 (or the SysTick) paces ADC1 as the app asks.
pub struct Sensor {
    tim: TIM2,
    timer_hz: u32,
    pacer: Pacer,
    generation: Option<u32>,
}

impl Sensor {
    /// Clock ADC1 and TIM2 (from a timer clock of `timer_hz`), turn the ADC and the internal
    /// channels on; nothing is sampled until the app asks. `wait_eoc`: wait for the
    /// end-of-conversion flag (not in QEMU, whose model never sets it).
    pub fn new(
        adc: ADC1,
        common: &ADC_COMMON,
        tim: TIM2,
        rcc: &RCC,
        timer_hz: u32,
        wait_eoc: bool,
        pacer: Pacer,
    ) -> Self {
        let converter = Converter::new(adc, common, rcc, wait_eoc);
        rcc.apb1enr().modify(|_, w| w.tim2en().set_bit());
        critical_section::with(|cs| {
            SAMPLER.borrow(cs).replace(Some(Sampler {
                converter,
                pacer,
                plan: None,
                queue: Deque::new(),
                errors: 0,
                lost: 0,
            }))
        });
        Sensor {
            tim,
            timer_hz,
            pacer,
            generation: None,
        }
    }

    /// Follow the app's choice of source and rate; hand it the readings taken, and the
    /// errors and losses counted.
    pub fn serve(&mut self, app: &mut App) {
        let sensing = app.sensor();
        if self.generation != Some(sensing.generation) {
            self.apply(sensing);
        }
        // One reading at a time out of the queue, judged with interrupts on: an update can
        // take a fraction of a millisecond, which neither the next reading's timer nor USART2's
        // receive may wait for.
        loop {
            let next = critical_section::with(|cs| {
                SAMPLER
                    .borrow(cs)
                    .borrow_mut()
                    .as_mut()
                    .and_then(|s| s.queue.pop_front())
            });
            match next {
                None => break,
                Some((generation, _)) if generation != sensing.generation => {}
                Some((_, Some(value))) => app.reading(value),
                Some((_, None)) => app.sensor_fault(),
            }
        }
        let (lost, errors) = critical_section::with(|cs| {
            let mut sampler = SAMPLER.borrow(cs).borrow_mut();
            let Some(s) = sampler.as_mut() else {
                return (0, 0);
            };
            (core::mem::take(&mut s.lost), s.errors)
        });
        if lost > 0 {
            app.missed(u64::from(lost));
        }
        app.set_sensor_errors(errors);
    }

    fn apply(&mut self, sensing: Sensing) {
        self.generation = Some(sensing.generation);
        cortex_m::peripheral::NVIC::mask(Interrupt::TIM2);
        // SAFETY (the `bits` writes): documented values of RM0368's timer registers.
        #[allow(unsafe_code)]
        unsafe {
            self.tim.dier().write(|w| w.bits(0));
            self.tim.sr().write(|w| w.bits(0));
        }
        let plan = sensing.source.and_then(|source| {
            if let Source::Adc(pin) = source {
                channel(pin)?;
                analog(pin);
            }
            Some(Plan {
                source,
                generation: sensing.generation,
                rate_hz: sensing.rate_hz,
                // The first reading comes at the first tick.
                accumulated: 1000u32.saturating_sub(sensing.rate_hz),
            })
        });
        critical_section::with(|cs| {
            if let Some(s) = SAMPLER.borrow(cs).borrow_mut().as_mut() {
                s.plan = plan;
                s.queue.clear();
            }
        });
        if plan.is_none() || sensing.rate_hz == 0 || self.pacer != Pacer::Tim2 {
            return;
        }
        let reload = (self.timer_hz / sensing.rate_hz).max(1) - 1;
        #[allow(unsafe_code)]
        unsafe {
            self.tim.psc().write(|w| w.bits(0));
            // Start from zero, then set the reload: QEMU's model keeps counting while the
            // timer is off and schedules its next update when the reload is written, so a
            // counter left past the new reload would first wrap at 2^32 (4.3 s at 1 GHz).
            self.tim.cnt().write(|w| w.bits(0));
            self.tim.arr().write(|w| w.bits(reload));
            // Load the prescaler and reload now.
            self.tim.egr().write(|w| w.bits(1));
            self.tim.sr().write(|w| w.bits(0));
            self.tim.dier().write(|w| w.bits(1));
            self.tim.cr1().write(|w| w.bits(1));
            cortex_m::peripheral::NVIC::unmask(Interrupt::TIM2);
        }
    }
}

/// Make `pin` an analog input.
fn analog(pin: Pin) {
    let shift = u32::from(pin.number) * 2;
    // SAFETY: a read-modify-write of this pin's two mode bits only, from the main loop (the
    // only code that changes pin modes after start-up).
    #[allow(unsafe_code)]
    unsafe {
        let moder = match pin.port {
            b'A' => (*GPIOA::ptr()).moder().as_ptr(),
            b'B' => (*GPIOB::ptr()).moder().as_ptr(),
            _ => (*GPIOC::ptr()).moder().as_ptr(),
        };
        let v = moder.read_volatile();
        moder.write_volatile(v | (0b11 << shift));
    }
}
