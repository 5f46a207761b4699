//! Runs one review over and over, for profilers that need a plain process (callgrind, perf)
//! and for a quick timing outside criterion. It backs the instruction counts and the
//! stripped-body timing in benches/README.md ("Where the review's instructions go").
//!
//! ```text
//! cargo run --release --example review_loop                       # the load-test body, 200k reviews
//! cargo run --release --example review_loop -- BODY.json 2000 mutate
//! valgrind --tool=callgrind target/release/examples/review_loop -- 2000
//! ```
//!
//! Arguments, all optional and in any order: a body file (default
//! `tests/fixtures/load/rollout-update-review.json`), a review count (default 200,000) and
//! `validate` or `mutate` (default `validate`). Templates come from
//! `tests/fixtures/load/templates`. Prints the time per review and the answer's verdict, so
//! that a body that no longer reviews as intended (a 400) shows.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::{SharedStore, load_dir};
use rollout_guard::review::{Endpoint, Reviewer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load");
    let mut body_path = root.join("rollout-update-review.json");
    let mut reviews: u32 = 200_000;
    let mut endpoint = Endpoint::Validate;
    for arg in std::env::args().skip(1).filter(|a| a != "--") {
        match arg.as_str() {
            "validate" => endpoint = Endpoint::Validate,
            "mutate" => endpoint = Endpoint::Mutate,
            _ => match arg.parse() {
                Ok(n) => reviews = n,
                Err(_) => body_path = PathBuf::from(arg),
            },
        }
    }
    let body = std::fs::read(&body_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", body_path.display()));
    let (store, errors) = load_dir(&root.join("templates"));
    assert!(errors.is_empty(), "{errors:?}");
    let admission = Admission::new(Policy::default(), Arc::new(SharedStore::ready(store)));

    let first = admission.review(endpoint, &body);
    let start = Instant::now();
    for _ in 0..reviews {
        black_box(admission.review(endpoint, black_box(&body)));
    }
    let elapsed = start.elapsed();
    println!(
        "{} bytes, {endpoint:?}: {reviews} reviews, {:.2} µs each; status {}, outcome {:?}",
        body.len(),
        elapsed.as_secs_f64() * 1e6 / f64::from(reviews.max(1)),
        first.status,
        first.outcome,
    );
}
