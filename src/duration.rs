//! Durations as Argo Rollouts reads them: Go's `time.ParseDuration` for metric `interval` and
//! `initialDelay`, and the pause rule (an integer or signed-integer string is seconds, else a
//! Go duration truncated toward zero to whole seconds).

use std::fmt;

use crate::model::IntOrStr;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) into nanoseconds, or `None` when Go
/// would reject it (no unit, unknown unit, `d`, empty, overflow).
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .bytes()
            .position(|b| b == b'.' || b.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        // Parsed as a u64 (cheaper than a u128): anything larger is out of range anyway.
        let int = if int_part.is_empty() {
            0
        } else {
            u128::from(int_part.parse::<u64>().ok()?)
        };
        let mut value = int.checked_mul(scale)?;
        if !frac_part.is_empty() {
            // Go keeps the fraction's precision up to the nanosecond and truncates beyond it;
            // it stops reading digits once they overflow an int64 (about 18), and 18 digits
            // also keep `frac * scale` (at most 1e18 * 3.6e12) within a u128.
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac = u128::from(digits.parse::<u64>().ok()?);
            value = value.checked_add(frac * scale / 10u128.pow(digits.len() as u32))?;
        }
        total = total.checked_add(value)?;
        if total > i64::MAX as u128 {
            return None;
        }
        rest = after;
    }
    let total = total as i64;
    Some(if negative { -total } else { total })
}

/// A pause duration as the controller reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseDuration {
    /// No `duration`: waits for a human.
    #[default]
    Indefinite,
    /// Whole seconds (0 is valid and completes at once).
    Seconds(i64),
    /// Negative or unparsable: the controller marks the Rollout InvalidSpec.
    Invalid,
}

impl PauseDuration {
    /// Upstream `RolloutPause.DurationSeconds()` returns an int32: a string is
    /// `strconv.ParseInt(s, 10, 32)`, else `int32(time.ParseDuration(s).Seconds())`, else -1;
    /// an integer is the `int32` of `intstr.IntOrString`.
    pub fn of(duration: Option<&IntOrStr>) -> Self {
        let Some(duration) = duration else {
            return Self::Indefinite;
        };
        // The CRD does not bound the integer (int-or-string), so the API server accepts one
        // beyond int32, but the controller cannot decode it into IntOrString's int32; seconds
        // of a Go duration beyond int32 have no int32 value either (Go's conversion is
        // implementation-defined there). `"3000000000"` fails both of Go's parses.
        match whole_seconds(duration).and_then(|n| i32::try_from(n).ok()) {
            Some(n) if n >= 0 => Self::Seconds(i64::from(n)),
            _ => Self::Invalid,
        }
    }
}

/// An integer as Go's `strconv.Atoi` reads it, with the value `IntOrString.IntValue()` keeps
/// when it reports an error: a sign and decimal digits, nothing around them; past the 64-bit
/// range, the bound on that side (Go returns it with the range error, which `IntValue`
/// ignores). `None` for any other text, which `IntValue` reads as 0.
pub fn go_atoi(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<i64>().unwrap_or(if text.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// The whole seconds a pause duration states before the controller narrows them to int32: an
/// integer, a string of one, or a Go duration truncated to seconds; `None` for none of these.
fn whole_seconds(duration: &IntOrStr) -> Option<i64> {
    match duration {
        IntOrStr::Int(n) => Some(*n),
        IntOrStr::Str(s) => {
            go_atoi(s).or_else(|| parse_go_duration(s).map(|n| n / NANOS_PER_SECOND))
        }
    }
}

/// Why the controller refuses a pause duration that [`PauseDuration::of`] reads as invalid.
pub fn invalid_reason(duration: &IntOrStr) -> &'static str {
    let beyond = "it is beyond int32 seconds (at most 2147483647)";
    match (whole_seconds(duration), duration) {
        (Some(n), _) if n < 0 => "it is negative",
        (Some(_), _) => beyond,
        (None, IntOrStr::Str(s)) => {
            if s.trim_end()
                .strip_suffix('d')
                .is_some_and(|days| parse_go_duration(&format!("{days}h")).is_some())
            {
                "Go durations have no `d` unit (1d is 24h)"
            } else {
                "it is neither whole seconds nor a Go duration"
            }
        }
        (None, IntOrStr::Int(_)) => beyond,
    }
}

/// Seconds the way people write them in manifests (`90` → `1m30s`), as a `Display` to format
/// straight into a message.
#[derive(Debug, Clone, Copy)]
pub struct HumanSeconds(pub i64);

impl fmt::Display for HumanSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0;
        if secs == 0 {
            return f.write_str("0s");
        }
        let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_go_atoi_and_int_value_do() {
        for (text, value) in [
            ("3", Some(3)),
            ("+3", Some(3)),
            ("-3", Some(-3)),
            ("03", Some(3)),
            ("-0", Some(0)),
            ("99999999999999999999", Some(i64::MAX)),
            ("-99999999999999999999", Some(i64::MIN)),
            ("", None),
            ("+", None),
            ("5 ", None),
            (" 5", None),
            ("1_000", None),
            ("1.5", None),
            ("0x10", None),
            ("+-3", None),
        ] {
            assert_eq!(go_atoi(text), value, "{text:?}");
        }
    }

    #[test]
    fn says_why_a_pause_duration_is_invalid() {
        let reason = |d: IntOrStr| {
            assert_eq!(PauseDuration::of(Some(&d)), PauseDuration::Invalid, "{d:?}");
            invalid_reason(&d)
        };
        assert_eq!(reason(IntOrStr::Str("-5s".into())), "it is negative");
        assert_eq!(reason(IntOrStr::Int(-1)), "it is negative");
        assert!(reason(IntOrStr::Int(3_000_000_000)).contains("int32"));
        assert!(reason(IntOrStr::Str("3000000000".into())).contains("int32"));
        assert!(reason(IntOrStr::Str("1d".into())).contains("no `d` unit"));
        assert!(reason(IntOrStr::Str("1h30d".into())).contains("no `d` unit"));
        assert!(reason(IntOrStr::Str("soon".into())).contains("neither"));
        for word in ["unlimited", "tbd", "5 d"] {
            assert!(
                reason(IntOrStr::Str(word.into())).contains("neither"),
                "{word}"
            );
        }
        assert!(reason(IntOrStr::Str("99999999999999999999".into())).contains("int32"));
        assert_eq!(
            reason(IntOrStr::Str("-99999999999999999999".into())),
            "it is negative"
        );
        for doubled in ["+-5", "--5", "++5", "-+5"] {
            assert!(
                reason(IntOrStr::Str(doubled.into())).contains("neither"),
                "{doubled}"
            );
        }
    }

    #[test]
    fn parses_go_durations() {
        let s = NANOS_PER_SECOND;
        assert_eq!(parse_go_duration("30s"), Some(30 * s));
        assert_eq!(parse_go_duration("1h30m"), Some(5400 * s));
        assert_eq!(parse_go_duration("500ms"), Some(s / 2));
        assert_eq!(parse_go_duration("1.5s"), Some(3 * s / 2));
        assert_eq!(parse_go_duration(".5s"), Some(s / 2));
        assert_eq!(parse_go_duration("-2m"), Some(-120 * s));
        assert_eq!(parse_go_duration("+5m"), Some(300 * s));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1\u{b5}s"), Some(1000));
        // Long fractions once overflowed the intermediate product.
        assert_eq!(
            parse_go_duration("0.999999999999999999999999999999h"),
            Some(3_599_999_999_999)
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "30",
            "1d",
            "s",
            ".s",
            "5 m",
            "-",
            "1h-5m",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    /// Regression (found by the `go_duration` fuzz target): a long fraction overflowed
    /// `frac * scale` (a panic in debug builds, a wrong value in release), and a fraction on
    /// an integer part near u128::MAX overflowed the addition.
    #[test]
    fn long_fractions_and_huge_integers_do_not_overflow() {
        let s = NANOS_PER_SECOND;
        let nines = "9".repeat(40);
        for unit in ["ns", "us", "ms", "s", "m", "h"] {
            let v = parse_go_duration(&format!("0.{nines}{unit}")).unwrap();
            assert!(v >= 0, "{unit}: {v}");
        }
        assert_eq!(parse_go_duration(&format!(".{nines}s")), Some(s - 1));
        assert_eq!(
            parse_go_duration(&format!("0.{nines}h")),
            Some(3600 * s - 1)
        );
        assert_eq!(
            parse_go_duration("-.99999155555555559999155555555555555s"),
            Some(-999_991_555)
        );
        assert_eq!(
            parse_go_duration("340282366920938463463374607431768211.999us"),
            None
        );
    }

    #[test]
    fn pause_durations_follow_the_controller() {
        let str_ = |s: &str| PauseDuration::of(Some(&IntOrStr::Str(s.into())));
        assert_eq!(PauseDuration::of(None), PauseDuration::Indefinite);
        assert_eq!(
            PauseDuration::of(Some(&IntOrStr::Int(30))),
            PauseDuration::Seconds(30)
        );
        assert_eq!(
            PauseDuration::of(Some(&IntOrStr::Int(-1))),
            PauseDuration::Invalid
        );
        assert_eq!(str_("30"), PauseDuration::Seconds(30));
        assert_eq!(str_("+30"), PauseDuration::Seconds(30));
        assert_eq!(str_("5m"), PauseDuration::Seconds(300));
        assert_eq!(str_("500ms"), PauseDuration::Seconds(0));
        assert_eq!(str_("-500ms"), PauseDuration::Seconds(0));
        assert_eq!(str_("-1s"), PauseDuration::Invalid);
        assert_eq!(str_("1d"), PauseDuration::Invalid);
        assert_eq!(str_("soon"), PauseDuration::Invalid);
    }

    /// `DurationSeconds()` is an int32: `strconv.ParseInt(s, 10, 32)` fails beyond it, and
    /// `time.ParseDuration` then fails too (no unit), so the Rollout is InvalidSpec.
    #[test]
    fn pause_durations_beyond_int32_are_invalid() {
        let str_ = |s: &str| PauseDuration::of(Some(&IntOrStr::Str(s.into())));
        let int = |n: i64| PauseDuration::of(Some(&IntOrStr::Int(n)));
        let max = i64::from(i32::MAX);
        assert_eq!(str_("2147483647"), PauseDuration::Seconds(max));
        assert_eq!(str_("2147483648"), PauseDuration::Invalid);
        assert_eq!(str_("3000000000"), PauseDuration::Invalid);
        assert_eq!(str_("+3000000000"), PauseDuration::Invalid);
        assert_eq!(str_("-3000000000"), PauseDuration::Invalid);
        assert_eq!(str_("2147483647s"), PauseDuration::Seconds(max));
        assert_eq!(str_("2147483647.9s"), PauseDuration::Seconds(max));
        assert_eq!(str_("2147483648s"), PauseDuration::Invalid);
        assert_eq!(str_("1000000h"), PauseDuration::Invalid);
        assert_eq!(int(max), PauseDuration::Seconds(max));
        assert_eq!(int(max + 1), PauseDuration::Invalid);
        assert_eq!(int(i64::MAX), PauseDuration::Invalid);
    }

    #[test]
    fn formats_seconds() {
        assert_eq!(HumanSeconds(90).to_string(), "1m30s");
        assert_eq!(HumanSeconds(3600).to_string(), "1h");
        assert_eq!(HumanSeconds(0).to_string(), "0s");
    }
}
