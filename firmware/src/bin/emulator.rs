//! `zscope-emulator`: the firmware's app on this PC, over a pseudo-terminal.
//!
//! `cargo run -p zscope-firmware --features std --bin zscope-emulator -- [--rate HZ] [--seed N]`
//! prints the pty path to open (e.g. with `zscope --port PATH`) and runs until interrupted.

use std::process::ExitCode;

use zscope_core::SimConfig;
use zscope_firmware::Settings;
use zscope_firmware::emulator::{BOARD, Emulator};

const USAGE: &str = "usage: zscope-emulator [--rate HZ] [--seed N] [--link PATH]
  --rate HZ    samples per second (default 50; 0 = as fast as the reader takes them)
  --seed N     simulator seed (default 42)
  --link PATH  also make PATH a symlink to the pty (a stable name across restarts)";

fn parse() -> Result<(Settings, Option<std::path::PathBuf>), String> {
    let mut link = None;
    let mut settings = Settings {
        board: BOARD,
        ..Settings::default()
    };
    let mut sim = SimConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .and_then(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name}: '{v}' is not a number"))
                })
        };
        match flag.as_str() {
            "--rate" => {
                settings.rate_hz =
                    u32::try_from(value("--rate")?).map_err(|_| "--rate is too large")?
            }
            "--seed" => sim.seed = value("--seed")?,
            "--link" => link = Some(args.next().ok_or("--link needs a path")?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    settings.simulator = sim;
    Ok((settings, link))
}

fn main() -> ExitCode {
    let (settings, link) = match parse() {
        Ok(s) => s,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match Emulator::spawn_linked(settings, link.as_deref()) {
        Ok(emulator) => {
            println!("{}", emulator.path().display());
            eprintln!(
                "zscope-emulator: device on {} at {} Hz; Ctrl-C to stop",
                emulator.path().display(),
                settings.rate_hz
            );
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
