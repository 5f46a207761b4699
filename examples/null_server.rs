//! The do-nothing responder for side-by-side load tests: `rollout-guard serve`'s exact stack
//! (same flags, same runtime, same TLS, router, limits, metrics and review log) with the
//! [`NullReviewer`] in place of the rule engine. It answers `allowed: true` without parsing the
//! body, so the gap between it and the real server is what reviewing costs.
//!
//! ```text
//! cargo run --release --example null_server -- serve --addr 127.0.0.1:9443 \
//!     --admin-addr 127.0.0.1:9080 --tls-cert certs/tls.crt --tls-key certs/tls.key \
//!     --log-format json > /dev/null
//! ```
//! It takes `serve`'s flags (the template flags are accepted and ignored). `benches/load.sh`
//! runs it next to the real binary.
//!
//! Calibration: with `NULL_REVIEW_BUSY_US=N` each review first keeps its worker busy for N µs
//! (a spin on the clock, no memory touched), which shows how much review time the stack and
//! the machine leave before the throughput falls to a given share of the do-nothing figure
//! (`CALIBRATE_US` in `benches/load.sh`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use rollout_guard::cli::{Cli, Command};
use rollout_guard::review::{Endpoint, NullReviewer, Reply, Reviewer};
use rollout_guard::server::{Server, shutdown_signal};

/// mimalloc: the review path makes many small, short-lived allocations next to the 8-20 KB
/// request buffers, a mix on which glibc's malloc spends its time consolidating free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The [`NullReviewer`] after `busy` of spinning: a review of known cost and no working set.
struct BusyReviewer {
    busy: Duration,
}

impl Reviewer for BusyReviewer {
    fn review(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        let start = Instant::now();
        while start.elapsed() < self.busy {
            std::hint::spin_loop();
        }
        NullReviewer.review(endpoint, body)
    }

    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        NullReviewer.overloaded(endpoint, body)
    }

    fn ready(&self) -> bool {
        NullReviewer.ready()
    }

    fn cache_sizes(&self) -> Vec<(&'static str, usize)> {
        NullReviewer.cache_sizes()
    }
}

/// The reviewer `NULL_REVIEW_BUSY_US` asks for (unset or 0: the plain [`NullReviewer`]).
fn reviewer() -> anyhow::Result<Arc<dyn Reviewer>> {
    let busy = match std::env::var("NULL_REVIEW_BUSY_US") {
        Err(_) => 0,
        Ok(text) => text.parse::<u64>().map_err(|e| {
            anyhow::anyhow!("NULL_REVIEW_BUSY_US must be a whole number of µs, not `{text}`: {e}")
        })?,
    };
    Ok(match busy {
        0 => Arc::new(NullReviewer),
        us => Arc::new(BusyReviewer {
            busy: Duration::from_micros(us),
        }),
    })
}

fn main() -> ExitCode {
    let Command::Serve(args) = Cli::parse().command else {
        eprintln!("error: usage: null_server serve [serve flags]");
        return ExitCode::from(2);
    };
    // As `rollout-guard serve` does in main.rs: one crypto provider, the default runtime
    // (one worker per core), logging initialised from the same flags.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async move {
                rollout_guard::logging::init_logging(args.log_format, &args.log_level)?;
                Server::bind(&args, reviewer()?)
                    .await?
                    .with_shutdown_delay(args.shutdown_delay)
                    .run(shutdown_signal())
                    .await
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
