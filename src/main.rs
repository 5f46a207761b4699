//! The `rollout-guard` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;
use rollout_guard::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(_) | Command::Serve(_) | Command::Certs(_) | Command::Manifests(_) => {
            eprintln!("not built yet");
            ExitCode::from(2)
        }
    }
}
