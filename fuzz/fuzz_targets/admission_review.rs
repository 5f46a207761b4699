//! Arbitrary bytes as an admission request body, on both endpoints, under one of 16 policies
//! (chosen by the last byte, which stays part of the body so captured reviews work as seeds
//! unchanged). Every answer must satisfy `fuzz_oracle::review_and_check`.
#![no_main]

use std::sync::OnceLock;

use fuzz_oracle::{admission, review_and_check};
use libfuzzer_sys::fuzz_target;
use rollout_guard::admission::Admission;
use rollout_guard::review::Endpoint;

fn reviewers() -> &'static [Admission] {
    static R: OnceLock<Vec<Admission>> = OnceLock::new();
    R.get_or_init(|| (0..16).map(admission).collect())
}

fuzz_target!(|data: &[u8]| {
    let config = data.last().copied().unwrap_or(0);
    let a = &reviewers()[usize::from(config & 15)];
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        review_and_check(a, endpoint, data);
    }
});
