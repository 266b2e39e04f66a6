//! `zscope`: parse the command line, then run the daemon or a subcommand.

use std::process::ExitCode;

use clap::Parser;
use zscope_host::cli::{Cli, Command};
use zscope_host::commands;

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
    let result = match &cli.command {
        Some(Command::Ports) => commands::ports(),
        Some(Command::Score(args)) => commands::score(&cli, args),
        Some(Command::Eval(args)) => commands::eval(&cli, args),
        Some(Command::Replay(args)) => commands::replay(&cli, args),
        Some(Command::Emulate(args)) => commands::emulate(args),
        Some(Command::Export(args)) => commands::export(args),
        None => commands::daemon(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
