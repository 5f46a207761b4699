//! The `rollout-guard` binary: parse the command line and dispatch.
//!
//! Exit codes: 0 success (for `check`: nothing at or above `--fail-on`); 1 `check` found
//! something at or above `--fail-on`; 2 usage or input errors, or a command that failed.

use std::process::ExitCode;

use clap::Parser;
use rollout_guard::cli::{Cli, Command};

/// mimalloc: the review path makes many small, short-lived allocations next to the 8-20 KB
/// request buffers, a mix on which glibc's malloc spends its time consolidating free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => {
            let stdout = std::io::stdout();
            match rollout_guard::check::run(&args, &mut stdout.lock()) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: cannot write the report: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Certs(args) => report(rollout_guard::certs::run(&args)),
        Command::Manifests(args) => report(rollout_guard::manifests::run(&args)),
        Command::Serve(args) => {
            // rustls needs exactly one process-wide crypto provider (kube's client uses it).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    return report(Err(anyhow::anyhow!("cannot start the async runtime: {e}")));
                }
            };
            report(runtime.block_on(rollout_guard::serve::run(*args)))
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
