//! `parse_go_duration` and `PauseDuration::of` on arbitrary text, plus invariants that hold
//! for Go's `time.ParseDuration`:
//! - `"{n}{unit}"` is `n` times the unit (when it fits in an i64), `"0"` is 0;
//! - a sign flips or keeps the value of an unsigned duration;
//! - two unsigned durations written one after the other parse to their sum (Go sums the
//!   components), or to nothing when the sum overflows;
//! - `PauseDuration` agrees with the parser (whole seconds, truncated toward zero, as int32).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rollout_guard::duration::{PauseDuration, parse_go_duration};
use rollout_guard::model::IntOrStr;

const UNITS: [(&str, i64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    other: &'a str,
    n: u64,
    unit: u8,
    int: i64,
}

/// A duration without a sign (the only ones that concatenate).
fn unsigned(s: &str) -> Option<i64> {
    if s.starts_with(['-', '+']) || s == "0" {
        return None;
    }
    parse_go_duration(s)
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        text,
        other,
        n,
        unit,
        int,
    } = input;
    let parsed = parse_go_duration(text);

    // Units.
    let (name, scale) = UNITS[usize::from(unit) % UNITS.len()];
    let expected = i64::try_from(n).ok().and_then(|n| n.checked_mul(scale));
    assert_eq!(
        parse_go_duration(&format!("{n}{name}")),
        expected,
        "{n}{name}"
    );
    assert_eq!(parse_go_duration("0"), Some(0));

    // Signs.
    if let Some(v) = unsigned(text) {
        assert!(v >= 0, "{text:?} -> {v}");
        assert_eq!(
            parse_go_duration(&format!("-{text}")),
            Some(-v),
            "-{text:?}"
        );
        assert_eq!(parse_go_duration(&format!("+{text}")), Some(v), "+{text:?}");
    }

    // Concatenation sums.
    if let (Some(a), Some(b)) = (unsigned(text), unsigned(other)) {
        let joined = format!("{text}{other}");
        assert_eq!(parse_go_duration(&joined), a.checked_add(b), "{joined:?}");
    }

    // Pauses: an integer string is seconds, otherwise whole seconds of the Go duration; the
    // controller reads them as an int32 (`strconv.ParseInt(s, 10, 32)`, `int32(d.Seconds())`),
    // so anything beyond is invalid.
    let pause = PauseDuration::of(Some(&IntOrStr::Str(text.into())));
    let secs = match text.parse::<i64>() {
        Ok(n) => i32::try_from(n).ok(),
        Err(_) => parsed.and_then(|ns| i32::try_from(ns / 1_000_000_000).ok()),
    };
    match secs {
        Some(s) if s >= 0 => assert_eq!(pause, PauseDuration::Seconds(i64::from(s))),
        _ => assert_eq!(pause, PauseDuration::Invalid, "{text:?}"),
    }
    let pause = PauseDuration::of(Some(&IntOrStr::Int(int)));
    match i32::try_from(int) {
        Ok(n) if n >= 0 => assert_eq!(pause, PauseDuration::Seconds(int)),
        _ => assert_eq!(pause, PauseDuration::Invalid, "{int}"),
    }
});
