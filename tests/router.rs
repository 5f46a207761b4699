//! The admission router in process, as its own test binary. Its log-line test captures the
//! line through a thread-local tracing subscriber. Inside the transport binary, where other
//! tests' servers log the same callsite from other threads at the same time, the line was
//! missing in 4 of 10 runs of `b5d532f` (likely tracing's process-wide callsite interest cache
//! racing the thread-local subscriber); alone in its process it failed in none of 10.

#[path = "transport/support.rs"]
#[allow(dead_code)]
mod support;

#[path = "transport/router.rs"]
mod router;
