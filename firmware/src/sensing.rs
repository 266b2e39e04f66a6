//! The arithmetic of the board's sensors, apart from their registers (so it is tested on the
//! host): which ADC1 channel a pin is, how many conversions fit in a reading, and how raw
//! conversions become volts and degrees. The registers are in `board::sensor`.

use zscope_core::source::{Pin, Source, Sources};

/// Highest rate a sensor source is sampled at.
pub const MAX_SENSOR_HZ: u32 = 1000;
/// Time one reading may take (its conversions), in nanoseconds: short enough that USART2,
/// waiting while a reading is taken, loses no byte at 115 200 baud (a byte every 87 µs, and the
/// UART holds one more).
pub const BUDGET_NS: u32 = 50_000;
/// ADC clock: APB2 (84 MHz on the Nucleo) divided by 4.
pub const ADC_CLOCK_HZ: u32 = 21_000_000;
/// Most conversions averaged into one reading.
pub const MAX_OVERSAMPLE: u32 = 16;
/// ADC cycles a pin is sampled for, and the internal channels (the sensor needs 10 µs).
pub const PIN_SAMPLE_CYCLES: u32 = 84;
/// ADC cycles the internal channels are sampled for.
pub const INTERNAL_SAMPLE_CYCLES: u32 = 480;
/// ADC cycles a 12-bit conversion adds to its sampling.
const CONVERSION_CYCLES: u32 = 12;

/// Datasheet (STM32F401 DS9716, 6.3.21-22): sensor voltage at 25 °C, its slope, the internal
/// reference.
pub const V25: f32 = 0.76;
/// Volts per °C.
pub const AVG_SLOPE: f32 = 0.0025;
/// The internal reference, typical.
pub const VREFINT: f32 = 1.21;
/// The Nucleo's analog supply, which a pin's reading is a fraction of.
pub const VDDA: f32 = 3.3;
/// A 12-bit conversion's full scale.
pub const FULL_SCALE: f32 = 4095.0;
/// The chip's supply range: a supply measured outside it is a wrong reading.
pub const SUPPLY: core::ops::RangeInclusive<f32> = 1.7..=3.6;

/// The sources of an STM32F401's ADC1 (and QEMU's F405): the simulator, the temperature
/// sensor and the 16 input pins.
pub fn sources() -> Sources {
    let mut sources = Sources {
        simulator: true,
        temperature: true,
        max_sensor_hz: MAX_SENSOR_HZ,
        ..Sources::default()
    };
    for (port, count) in [(b'A', 8), (b'B', 2), (b'C', 6)] {
        for number in 0..count {
            // 16 pins: they fit.
            let _ = sources.adc.push(Pin { port, number });
        }
    }
    sources
}

/// ADC1's channel for `pin` (PA0-PA7, PB0-PB1, PC0-PC5 are channels 0-15), if it is an input.
pub fn channel(pin: Pin) -> Option<u8> {
    match (pin.port, pin.number) {
        (b'A', n @ 0..=7) => Some(n),
        (b'B', n @ 0..=1) => Some(8 + n),
        (b'C', n @ 0..=5) => Some(10 + n),
        _ => None,
    }
}

/// Conversions averaged into one reading of `source`: as many as fit in [`BUDGET_NS`] (a
/// temperature reading converts the reference and the sensor), 1 to [`MAX_OVERSAMPLE`].
pub fn oversample(source: Source) -> u32 {
    let (cycles, conversions) = match source {
        Source::Temperature => (INTERNAL_SAMPLE_CYCLES + CONVERSION_CYCLES, 2),
        _ => (PIN_SAMPLE_CYCLES + CONVERSION_CYCLES, 1),
    };
    let conversion_ns = cycles * 1_000 / (ADC_CLOCK_HZ / 1_000_000);
    (BUDGET_NS / (conversion_ns * conversions)).clamp(1, MAX_OVERSAMPLE)
}

/// A pin's mean raw conversion in volts.
pub fn volts(raw: f32) -> f32 {
    raw * VDDA / FULL_SCALE
}

/// Degrees Celsius from the mean raw conversions of the internal reference and the sensor:
/// the supply from the reference, the sensor's voltage from the supply, the datasheet's line.
/// `None` when the supply this implies is outside the chip's range (a wrong reading).
pub fn celsius(reference: f32, sensor: f32) -> Option<f32> {
    if reference < 1.0 {
        return None;
    }
    let vdda = VREFINT * FULL_SCALE / reference;
    if !SUPPLY.contains(&vdda) {
        return None;
    }
    let volts = sensor * vdda / FULL_SCALE;
    Some((volts - V25) / AVG_SLOPE + 25.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_map_to_adc1_channels_and_others_do_not() {
        let pin = |port, number| Pin { port, number };
        assert_eq!(channel(pin(b'A', 0)), Some(0));
        assert_eq!(channel(pin(b'A', 7)), Some(7));
        assert_eq!(channel(pin(b'B', 1)), Some(9));
        assert_eq!(channel(pin(b'C', 5)), Some(15));
        assert_eq!(channel(pin(b'A', 8)), None);
        assert_eq!(channel(pin(b'D', 0)), None);
        // Every listed pin has a channel, each its own.
        let mut seen: std::vec::Vec<u8> =
            sources().adc.iter().map(|&p| channel(p).unwrap()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 16);
    }

    #[test]
    fn readings_fit_the_budget() {
        // 96 ADC cycles at 21 MHz: 4.57 µs a pin conversion, 10 in 50 µs.
        assert_eq!(
            oversample(Source::Adc(Pin {
                port: b'A',
                number: 0
            })),
            10
        );
        // 2 x 492 cycles: 46.9 µs, one of each.
        assert_eq!(oversample(Source::Temperature), 1);
    }

    #[test]
    fn the_datasheet_line_and_the_supply_correction() {
        // At a 3.3 V supply the reference reads 1.21 / 3.3 of full scale; a sensor at 0.76 V
        // is 25 °C, and each 2.5 mV above it a degree more.
        let reference = 1.21 / 3.3 * FULL_SCALE;
        let at = |v: f32| v / 3.3 * FULL_SCALE;
        let t = celsius(reference, at(0.76)).unwrap();
        assert!((t - 25.0).abs() < 1e-3, "{t}");
        let t = celsius(reference, at(0.76 + 0.025)).unwrap();
        assert!((t - 35.0).abs() < 1e-2, "{t}");
        // The same sensor voltage at a 3.0 V supply reads higher raw, and the same degrees.
        let reference = 1.21 / 3.0 * FULL_SCALE;
        let t = celsius(reference, 0.76 / 3.0 * FULL_SCALE).unwrap();
        assert!((t - 25.0).abs() < 1e-3, "{t}");
        // A reference implying a supply outside 1.7-3.6 V is a wrong reading.
        assert_eq!(celsius(0.0, 1000.0), None);
        assert_eq!(celsius(1.21 / 4.0 * FULL_SCALE, 1000.0), None);
        assert_eq!(celsius(1.21 / 1.5 * FULL_SCALE, 1000.0), None);
        assert!((volts(FULL_SCALE) - 3.3).abs() < 1e-6);
    }
}
