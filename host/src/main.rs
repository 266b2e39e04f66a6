//! `zscope`: parse the command line, then run the daemon or a subcommand.

use std::process::ExitCode;

use clap::Parser;
use zscope_host::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "zscope_host=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(Command::Ports) = cli.command {
        return ports();
    }
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(zscope_host::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn ports() -> ExitCode {
    match serialport::available_ports() {
        Ok(ports) if ports.is_empty() => {
            println!(
                "no serial ports found (pseudo-terminals are not listed; pass them with --port)"
            );
            ExitCode::SUCCESS
        }
        Ok(ports) => {
            for p in ports {
                let kind = match p.port_type {
                    serialport::SerialPortType::UsbPort(u) => format!(
                        "USB {:04x}:{:04x} {}",
                        u.vid,
                        u.pid,
                        u.product.unwrap_or_default()
                    ),
                    serialport::SerialPortType::PciPort => "PCI".into(),
                    serialport::SerialPortType::BluetoothPort => "Bluetooth".into(),
                    serialport::SerialPortType::Unknown => String::new(),
                };
                println!("{}\t{kind}", p.port_name);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot list serial ports: {e}");
            ExitCode::FAILURE
        }
    }
}
