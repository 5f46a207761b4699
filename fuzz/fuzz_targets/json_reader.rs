//! The lean JSON reader (`rollout_guard::json`) against serde_json on arbitrary bytes:
//! - reading: whatever the lean reader reads (as a `Value`, or as a typed struct from a body
//!   serde_json accepts) serde_json reads too, to the same value; and whatever serde_json reads
//!   without meeting a float (nor an integer past 64 bits, nor `-0`: serde_json makes those
//!   floats), even in a member a duplicate key overwrites, within `json::MAX_DEPTH` levels,
//!   the lean reader reads to the same value;
//! - the same, both ways, for the views the webhook reads (`Rollout`, `AnalysisTemplate`,
//!   compared by their `Debug` text): `Admission::review_reference` reads the views of raw
//!   objects with the same lean-first `view()` as `review`, so this is where the views meet
//!   serde_json alone;
//! - skipping: the lean reader never refuses to skip valid UTF-8 JSON within `MAX_DEPTH`
//!   levels (it checks skipped values for structure only, so it may accept more); what it can
//!   read it can skip; `json::skip_value` on a valid JSON text returns exactly the text without
//!   its surrounding whitespace, and so does a `RawJson` member holding it at any 64-byte
//!   alignment.
#![no_main]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use libfuzzer_sys::fuzz_target;
use rollout_guard::json::{self, MAX_DEPTH, RawJson};
use rollout_guard::model::{AnalysisTemplate, Rollout};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Nesting of a JSON text: the most brackets open at once outside strings (exact for valid
/// JSON, a bound for anything else).
fn depth(bytes: &[u8]) -> usize {
    let (mut open, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    open += 1;
                    max = max.max(open);
                }
                b']' | b'}' => open = open.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

/// Whether serde_json meets a float anywhere in a text (`-0` and integers past 64 bits are
/// floats to it), including in members a later duplicate key overwrites in a `Value`.
struct AnyFloat(bool);

impl<'de> Deserialize<'de> for AnyFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyFloat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyFloat, E> {
                Ok(AnyFloat(true))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyFloat, E> {
                Ok(AnyFloat(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyFloat, E> {
                Ok(AnyFloat(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<AnyFloat, E> {
                Ok(AnyFloat(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyFloat, E> {
                Ok(AnyFloat(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyFloat, E> {
                Ok(AnyFloat(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyFloat, A::Error> {
                let mut any = false;
                while let Some(AnyFloat(f)) = seq.next_element()? {
                    any |= f;
                }
                Ok(AnyFloat(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyFloat, A::Error> {
                let mut any = false;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    any |= map.next_value::<AnyFloat>()?.0;
                }
                Ok(AnyFloat(any))
            }
        }
        d.deserialize_any(V)
    }
}

/// A struct asking for every kind of value serde offers a view of, with short names the
/// fuzzer finds: typed requests (`deserialize_u64`, `_str`, `_bool`, `_char`, `_tuple`,
/// `_unit`, `_option`, `_map`, `_seq`), borrowed strings, raw values and ignored members.
#[derive(Deserialize, Debug, PartialEq, Default)]
#[serde(default)]
struct Typed<'a> {
    a: Option<u64>,
    b: Option<i64>,
    c: Option<String>,
    #[serde(borrow)]
    d: Option<Cow<'a, str>>,
    e: Option<bool>,
    #[serde(borrow)]
    f: Option<Vec<Typed<'a>>>,
    g: Option<BTreeMap<String, i64>>,
    h: Option<(u8, String)>,
    i: Option<char>,
    #[serde(borrow)]
    j: Option<RawJson<'a>>,
    k: Option<()>,
    l: Option<u8>,
    m: Option<i16>,
    n: Option<Vec<Option<bool>>>,
}

/// A read member after a skipped one at a chosen alignment.
#[derive(Deserialize, Debug)]
struct Probe<'a> {
    #[serde(borrow)]
    skip: RawJson<'a>,
    x: u32,
}

/// Reads `T` with both readers: on input serde_json accepts as JSON, whatever the lean reader
/// reads serde_json reads the same; whatever serde_json reads without floats within
/// `MAX_DEPTH` (and as UTF-8), the lean reader reads the same. Compared by `Debug` text.
fn differential<'a, T: Deserialize<'a> + fmt::Debug>(data: &'a [u8], valid: bool, plain: bool) {
    let lean = json::from_slice::<T>(data);
    let reference = serde_json::from_slice::<T>(data);
    match (&lean, &reference) {
        (Ok(l), Ok(r)) => assert_eq!(format!("{l:?}"), format!("{r:?}"), "different views"),
        (Ok(l), Err(e)) if valid => {
            panic!("the lean reader reads what serde_json refuses ({e}): {l:?}")
        }
        (Err(e), Ok(r)) if plain => {
            panic!("the lean reader refuses ({e}) what serde_json reads: {r:?}")
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let utf8 = std::str::from_utf8(data).ok();
    let deep = depth(data);
    let within = deep <= MAX_DEPTH;
    let no_float = matches!(
        serde_json::from_slice::<AnyFloat>(data),
        Ok(AnyFloat(false))
    );

    // Reading a Value.
    let lean = json::from_slice::<Value>(data);
    let reference = serde_json::from_slice::<Value>(data);
    if let Ok(v) = &lean {
        match &reference {
            Ok(r) => assert_eq!(v, r, "the lean reader reads another value"),
            Err(e) => panic!("the lean reader reads what serde_json refuses ({e}): {v}"),
        }
    }
    if let Ok(r) = &reference
        && within
        && no_float
    {
        match &lean {
            Ok(v) => assert_eq!(v, r),
            Err(e) => panic!("the lean reader refuses what serde_json reads ({e}): {r}"),
        }
    }

    // Skipping.
    let valid = serde_json::from_slice::<IgnoredAny>(data).is_ok();
    let skipped = json::from_slice::<IgnoredAny>(data);
    if lean.is_ok() {
        assert!(skipped.is_ok(), "reads but does not skip: {skipped:?}");
    }
    if valid && utf8.is_some() && within {
        assert!(skipped.is_ok(), "refuses to skip valid JSON: {skipped:?}");
    }
    if let Some(text) = utf8
        && valid
        && within
    {
        let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
        assert_eq!(json::skip_value(text), Ok(trimmed), "skip_value");
        if deep < MAX_DEPTH {
            // As a skipped member of an object, at an alignment the input picks.
            let pad = "p".repeat(data.len() % 67);
            let body = format!(r#"{{"pad":"{pad}","skip":{text},"x":7}}"#);
            let probe: Probe = json::from_slice(body.as_bytes()).expect("a skipped member");
            assert_eq!((probe.skip.get(), probe.x), (trimmed, 7));
            let reference: Probe = serde_json::from_str(&body).expect("serde_json's RawValue");
            assert_eq!(reference.skip.get(), trimmed);
        }
    }

    // Typed structs: the probe of every kind of request, and the webhook's views.
    let plain = utf8.is_some() && within && no_float;
    differential::<Typed>(data, valid, plain);
    differential::<Rollout>(data, valid, plain);
    differential::<AnalysisTemplate>(data, valid, plain);
});
