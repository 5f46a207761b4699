//! Heap allocations of one review of the load-test body (`tests/fixtures/load/`), the figure
//! benches/README.md quotes: a counting global allocator around the server's (mimalloc).
//!
//! ```text
//! cargo run --release --example review_allocations
//! ```
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::{SharedStore, load_dir};
use rollout_guard::model::Rollout;
use rollout_guard::review::{Endpoint, Reviewer};
use rollout_guard::rules::{Config, check_rollout};

/// Counts allocations and reallocations (each a call into the allocator) and their bytes.
struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to mimalloc with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size(), Relaxed);
        // SAFETY: as the caller promised for `layout`.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size, Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocator calls and bytes made by `f` (run once before, to leave lazy set-up out).
fn count<T>(mut f: impl FnMut() -> T) -> (usize, usize) {
    drop(f());
    let (calls, bytes) = (CALLS.load(Relaxed), BYTES.load(Relaxed));
    drop(f());
    (CALLS.load(Relaxed) - calls, BYTES.load(Relaxed) - bytes)
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load");
    let body = std::fs::read(root.join("rollout-update-review.json")).expect("load-test body");
    let (store, errors) = load_dir(&root.join("templates"));
    assert!(errors.is_empty(), "{errors:?}");
    let catalog = Arc::new(SharedStore::ready(store));
    let admission = Admission::new(Policy::default(), catalog.clone());

    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let (calls, bytes) = count(|| admission.review(endpoint, &body));
        println!("review {endpoint:?}: {calls} allocations, {bytes} bytes");
    }
    let envelope: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let rollout: Rollout =
        serde_json::from_value(envelope["request"]["object"].clone()).expect("Rollout view");
    let object = serde_json::to_string(&envelope["request"]["object"]).expect("object text");
    let (calls, bytes) = count(|| rollout_guard::json::from_str::<Rollout>(&object));
    println!("Rollout view of `object`: {calls} allocations, {bytes} bytes");
    let (calls, bytes) = count(|| check_rollout(&rollout, catalog.as_ref(), &Config::default()));
    println!("check_rollout: {calls} allocations, {bytes} bytes");
    println!(
        "size of a decoded Step: {} bytes",
        std::mem::size_of::<rollout_guard::model::Step>()
    );
}
