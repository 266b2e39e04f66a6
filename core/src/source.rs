//! Where a device's values come from: the simulator, the chip's temperature sensor, an ADC pin,
//! or the user's own firmware; their names, their units, and why a board refuses one.
//!
//! A source has one name on every side: `simulator`, `temperature`, `adc:PA0` (port letter and
//! pin number, as the datasheet names the pin), `external`. [`Source::parse`] reads it,
//! `Display` writes it, so the CLI, the page and the wire agree.
//!
//! ```
//! use zscope_core::source::{Pin, Source, Unit};
//!
//! let a0: Source = Source::parse("adc:PA0").unwrap();
//! assert_eq!(a0, Source::Adc(Pin { port: b'A', number: 0 }));
//! assert_eq!(a0.unit(), Unit::Volts);
//! assert_eq!(Source::parse("temperature").unwrap().unit(), Unit::Celsius);
//! assert!(Source::parse("adc:PZ9").is_err());
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

/// A pin of the package: port letter (`b'A'`..=`b'K'`) and number (0..=15), e.g. PA0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pin {
    /// The port's letter, upper case ASCII.
    pub port: u8,
    /// The pin's number in its port.
    pub number: u8,
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}{}", char::from(self.port), self.number)
    }
}

/// Where the values a device judges come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Source {
    /// The built-in simulated stream (the default).
    #[default]
    Simulator,
    /// The chip's own temperature sensor, in °C.
    Temperature,
    /// An ADC input pin, in volts.
    Adc(Pin),
    /// Values handed in from outside zscope's device code: by the firmware zscope runs inside
    /// (its own sensor), or from a file the host replays; unit their own.
    External,
}

/// Why a source name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not `simulator`, `temperature`, `adc:<pin>` or `external`.
    Unknown,
    /// `adc:` followed by something that is not a pin name like `PA0`.
    Pin,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Unknown => {
                "unknown source: expected simulator, temperature, adc:<pin> (e.g. adc:PA0) or external"
            }
            ParseError::Pin => "not a pin name: expected P, a port letter A-K and a number 0-15, e.g. adc:PA0",
        })
    }
}

impl core::error::Error for ParseError {}

impl Source {
    /// Read a source's name (case-insensitive): `simulator`, `temperature`, `adc:PA0`,
    /// `external`.
    pub fn parse(s: &str) -> Result<Source, ParseError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("simulator") {
            return Ok(Source::Simulator);
        }
        if s.eq_ignore_ascii_case("temperature") {
            return Ok(Source::Temperature);
        }
        if s.eq_ignore_ascii_case("external") {
            return Ok(Source::External);
        }
        let Some((kind, pin)) = s.split_once(':') else {
            return Err(ParseError::Unknown);
        };
        if !kind.eq_ignore_ascii_case("adc") {
            return Err(ParseError::Unknown);
        }
        let pin = pin.as_bytes();
        let (head, digits) = pin.split_at_checked(2).ok_or(ParseError::Pin)?;
        let &[p, port] = head else {
            return Err(ParseError::Pin);
        };
        let port = port.to_ascii_uppercase();
        if !p.eq_ignore_ascii_case(&b'P') || !(b'A'..=b'K').contains(&port) {
            return Err(ParseError::Pin);
        }
        if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Pin);
        }
        let number = digits.iter().fold(0u8, |n, d| n * 10 + (d - b'0'));
        if number > 15 {
            return Err(ParseError::Pin);
        }
        Ok(Source::Adc(Pin { port, number }))
    }

    /// The unit its values are in.
    pub fn unit(self) -> Unit {
        match self {
            Source::Temperature => Unit::Celsius,
            Source::Adc(_) => Unit::Volts,
            Source::Simulator | Source::External => Unit::None,
        }
    }

    /// Whether its values come from hardware sampled on a timer (so it needs a rate > 0).
    pub fn is_sensor(self) -> bool {
        matches!(self, Source::Temperature | Source::Adc(_))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Simulator => f.write_str("simulator"),
            Source::Temperature => f.write_str("temperature"),
            Source::Adc(pin) => write!(f, "adc:{pin}"),
            Source::External => f.write_str("external"),
        }
    }
}

/// The unit of a stream's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Unit {
    /// No unit (the simulator's values, or a signal the firmware does not name).
    #[default]
    None,
    /// Degrees Celsius.
    Celsius,
    /// Volts.
    Volts,
}

impl Unit {
    /// The unit whose symbol is `symbol` (`°C`, `V`, empty for none).
    pub fn from_symbol(symbol: &str) -> Option<Unit> {
        [Unit::None, Unit::Celsius, Unit::Volts]
            .into_iter()
            .find(|u| u.symbol() == symbol)
    }

    /// Its symbol, empty for none: `°C`, `V`.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Celsius => "°C",
            Unit::Volts => "V",
        }
    }
}

/// The sources a board has, as its hello lists them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sources {
    /// It has the simulator.
    pub simulator: bool,
    /// It has a temperature sensor.
    pub temperature: bool,
    /// The pins it can read with its ADC.
    pub adc: heapless::Vec<Pin, 16>,
    /// Values come from the firmware it runs inside.
    pub external: bool,
    /// Highest rate a sensor source (temperature, ADC) is sampled at, samples per second.
    pub max_sensor_hz: u32,
}

impl Sources {
    /// The simulator only (host emulation without sensors, older devices).
    pub fn simulator() -> Sources {
        Sources {
            simulator: true,
            ..Sources::default()
        }
    }

    /// Whether `source` is among them.
    pub fn has(&self, source: Source) -> bool {
        match source {
            Source::Simulator => self.simulator,
            Source::Temperature => self.temperature,
            Source::Adc(pin) => self.adc.contains(&pin),
            Source::External => self.external,
        }
    }

    /// Each of them, in the order a list shows them.
    pub fn iter(&self) -> impl Iterator<Item = Source> + '_ {
        let fixed = [
            (self.simulator, Source::Simulator),
            (self.temperature, Source::Temperature),
            (self.external, Source::External),
        ];
        fixed
            .into_iter()
            .filter_map(|(has, s)| has.then_some(s))
            .chain(self.adc.iter().map(|&pin| Source::Adc(pin)))
    }

    /// Why `source` cannot be switched to at `rate_hz`, or `None` when it can.
    pub fn refusal(&self, source: Source, rate_hz: u32) -> Option<Refusal> {
        if !self.has(source) {
            return Some(match source {
                Source::Adc(pin) => Refusal::NoPin(pin),
                _ => Refusal::Missing,
            });
        }
        if source.is_sensor() && (rate_hz == 0 || rate_hz > self.max_sensor_hz) {
            return Some(Refusal::Rate {
                hz: rate_hz,
                max: self.max_sensor_hz,
            });
        }
        None
    }
}

/// Why a device refused a source (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The board has no such source (e.g. no temperature sensor in host emulation).
    Missing,
    /// The pin is not an ADC input of this package.
    NoPin(Pin),
    /// The sensor cannot be sampled at this rate (0, "as fast as the link carries", included):
    /// 1 to `max` samples per second.
    Rate {
        /// The rate in force or asked for.
        hz: u32,
        /// The highest rate the sensor is sampled at.
        max: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("this device has no such source"),
            Refusal::NoPin(pin) => write!(f, "{pin} is not an ADC input of this board"),
            Refusal::Rate { hz: 0, max } => write!(
                f,
                "a sensor is sampled on a timer: set a rate of 1 to {max} samples/s first \
                 (the rate is 0, as fast as the link carries)"
            ),
            Refusal::Rate { hz, max } => write!(
                f,
                "a sensor is sampled at most {max} times a second here; the rate is {hz}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        for s in [
            Source::Simulator,
            Source::Temperature,
            Source::External,
            Source::Adc(Pin {
                port: b'A',
                number: 0,
            }),
            Source::Adc(Pin {
                port: b'C',
                number: 15,
            }),
        ] {
            let mut text = heapless::String::<16>::new();
            core::fmt::write(&mut text, format_args!("{s}")).unwrap();
            assert_eq!(Source::parse(&text), Ok(s), "{text}");
        }
        assert_eq!(
            Source::parse(" ADC:pb1 "),
            Ok(Source::Adc(Pin {
                port: b'B',
                number: 1
            }))
        );
    }

    #[test]
    fn bad_names_say_what_is_expected() {
        for (text, err) in [
            ("", ParseError::Unknown),
            ("sim", ParseError::Unknown),
            ("pwm:PA0", ParseError::Unknown),
            ("adc:", ParseError::Pin),
            ("adc:PA", ParseError::Pin),
            ("adc:PA16", ParseError::Pin),
            ("adc:PZ1", ParseError::Pin),
            ("adc:XA1", ParseError::Pin),
            ("adc:PA1x", ParseError::Pin),
            ("adc:PA100", ParseError::Pin),
            ("adc:é", ParseError::Pin),
        ] {
            assert_eq!(Source::parse(text), Err(err), "{text:?}");
        }
    }

    #[test]
    fn refusals_name_the_reason() {
        let mut board = Sources::simulator();
        board.temperature = true;
        board.max_sensor_hz = 1000;
        board
            .adc
            .push(Pin {
                port: b'A',
                number: 0,
            })
            .unwrap();
        assert_eq!(board.refusal(Source::Temperature, 50), None);
        assert_eq!(board.refusal(Source::Simulator, 0), None);
        assert_eq!(
            board.refusal(
                Source::Adc(Pin {
                    port: b'A',
                    number: 5
                }),
                50
            ),
            Some(Refusal::NoPin(Pin {
                port: b'A',
                number: 5
            }))
        );
        assert_eq!(board.refusal(Source::External, 50), Some(Refusal::Missing));
        assert_eq!(
            board.refusal(Source::Temperature, 0),
            Some(Refusal::Rate { hz: 0, max: 1000 })
        );
        assert_eq!(
            board.refusal(Source::Temperature, 1001),
            Some(Refusal::Rate {
                hz: 1001,
                max: 1000
            })
        );
        for unit in [Unit::None, Unit::Celsius, Unit::Volts] {
            assert_eq!(Unit::from_symbol(unit.symbol()), Some(unit));
        }
        assert_eq!(Unit::from_symbol("K"), None);
        let listed: heapless::Vec<Source, 8> = board.iter().collect();
        assert_eq!(
            listed.as_slice(),
            &[
                Source::Simulator,
                Source::Temperature,
                Source::Adc(Pin {
                    port: b'A',
                    number: 0
                })
            ]
        );
    }
}
