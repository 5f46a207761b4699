//! Property tests of the admission path and the manifest reader, on generated Rollouts,
//! templates and status transitions. Every answer goes through the same checks as the fuzz
//! targets (`fuzz/src/lib.rs`, included below so the two cannot drift): HTTP 200 with the uid
//! echoed, warnings within the API server's limits, a patch only where one is allowed, and
//! one that applies to the request's object.
//!
//! What each property proves:
//! - `hold_patches_apply_and_are_idempotent`: on D1 Rollouts the hold guard patches exactly
//!   when a timed pause sits at or after `startingStep`, the patch applies, leaves no timed
//!   pause there, and re-submitting the patched Rollout yields no patch; an update that would
//!   restart an in-flight canary is not patched.
//! - `held_record_follows_edited_steps_and_is_idempotent`: a held Rollout whose steps are
//!   edited keeps record entries only on held pauses, and its answer seen again gets no patch.
//! - `status_guard_patches_apply_and_are_idempotent`: on controller status writes the guard
//!   keeps the step index and stable ReplicaSet while Inconclusive, lets promoteFull, abort and
//!   new revisions through, and its patch is idempotent.
//! - `fail_closed_patches_apply_and_are_idempotent`: every metric with both conditions on a
//!   condition provider ends fail-closed, Kayenta `marginal >= pass`, idempotent.
//! - `warnings_fit_the_api_server_and_answers_are_deterministic`: any Rollout or template,
//!   including long and control-character text and wrongly typed fields, gets warnings of one
//!   line, <= 256 bytes each, <= 4096 in total, and byte-identical answers twice.
//! - `verdict_ignores_key_order_and_unknown_fields`: reordering keys gives a byte-identical
//!   answer; unknown fields anywhere (outside the open `provider` map) change neither the
//!   verdict nor the edit, and survive the patch.
//! - `a_garbage_document_never_hides_a_valid_one`: in a YAML stream, every valid Rollout or
//!   template is read whatever garbage documents surround it.
//! - `lean_reader_answers_like_serde_json`: on generated reviews (the cases above and noisy
//!   objects, created and updated, with floats, 64-bit extremes, escaped text and deep values
//!   put anywhere under `request`, keys in any order, compact or pretty, at any 64-byte
//!   alignment), the lean reader's answer (`review`) and serde_json's (`review_reference`) are
//!   the same bytes on both endpoints. (`review_and_check` also compares the two on every
//!   review the other properties make.)

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod oracle;

use oracle::{CONTROLLER, NAMESPACE, Verdict, review, review_and_check, seed_rollout};
use proptest::prelude::*;
use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::SharedStore;
use rollout_guard::cli::Mode;
use rollout_guard::guards::GuardSet;
use rollout_guard::input::{Loaded, Object, load_text};
use rollout_guard::model::AnalysisTemplate;
use rollout_guard::review::{Endpoint, Reviewer};
use rollout_guard::templates::MemoryStore;
use rollout_guard::version::ControllerVersion;
use serde_json::{Value, json};
use std::sync::Arc;

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

fn admission(mode: Mode, guards: &str, version: ControllerVersion) -> Admission {
    let mut store = MemoryStore::new();
    for t in oracle::templates() {
        store.insert_template(serde_json::from_value::<AnalysisTemplate>(t).unwrap());
    }
    store.insert_cluster_template(
        serde_json::from_value::<AnalysisTemplate>(oracle::cluster_template()).unwrap(),
    );
    store.insert_rollout(serde_json::from_value(seed_rollout()).unwrap());
    let policy = Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Admission::new(policy, Arc::new(SharedStore::ready(store)))
}

fn ask(a: &Admission, endpoint: Endpoint, review: &Value) -> Verdict {
    let v = review_and_check(a, endpoint, &serde_json::to_vec(review).unwrap());
    assert_eq!(v.status, 200, "a well-formed review gets a 200");
    v
}

fn kind_of(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("Rollout")
}

fn create(object: &Value) -> Value {
    review(
        UID,
        kind_of(object),
        None,
        "CREATE",
        "jane",
        object,
        None,
        false,
    )
}

// ---------------------------------------------------------------------------------------------
// Generators

/// A pause duration: timed (valid), indefinite, or invalid.
fn pause() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (0i64..3600).prop_map(|n| Some(json!(n))),
        prop::sample::select(vec![
            "5m", "30s", "0s", "1h30m", "90", "+30s", "1.5m", "500ms"
        ])
        .prop_map(|s| Some(json!(s))),
        prop::sample::select(vec!["-1s", "1d", "soon", "-5"]).prop_map(|s| Some(json!(s))),
    ]
}

fn step() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (0i64..=100).prop_map(|w| json!({"setWeight": w})),
        3 => pause().prop_map(|d| match d {
            Some(d) => json!({"pause": {"duration": d}}),
            None => json!({"pause": {}}),
        }),
        1 => (0i64..6).prop_map(|r| json!({"setCanaryScale": {"replicas": r}})),
        1 => Just(json!({"setHeaderRoute": {"name": "h"}})),
        1 => Just(json!({"analysis": {"templates": [{"templateName": "web-check"}]}})),
    ]
}

/// A Rollout with background analysis through templates that can end Inconclusive.
fn d1_rollout() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(step(), 1..8),
        prop::option::of(0i64..9),
        prop::sample::select(vec![
            vec!["web-check"],
            vec!["kayenta-check"],
            vec!["nested"],
            vec!["web-check", "kayenta-check"],
        ]),
        1i64..6,
    )
        .prop_map(|(steps, starting, templates, replicas)| {
            let mut r = seed_rollout();
            let canary = &mut r["spec"]["strategy"]["canary"];
            canary["steps"] = json!(steps);
            let refs: Vec<Value> = templates
                .iter()
                .map(|t| json!({"templateName": t}))
                .collect();
            canary["analysis"] = json!({"templates": refs});
            if let Some(s) = starting {
                canary["analysis"]["startingStep"] = json!(s);
            }
            r["spec"]["replicas"] = json!(replicas);
            r
        })
}

/// Whether the hold guard should convert something: a valid timed pause at or after
/// `startingStep` (the templates above can all end Inconclusive).
fn has_timed_pause_to_hold(r: &Value) -> bool {
    let starting = r
        .pointer("/spec/strategy/canary/analysis/startingStep")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as usize;
    let steps = r["spec"]["strategy"]["canary"]["steps"].as_array().unwrap();
    steps
        .iter()
        .skip(starting)
        .any(|s| match s.pointer("/pause/duration") {
            Some(Value::Number(_)) => true,
            Some(Value::String(d)) => {
                ["5m", "30s", "0s", "1h30m", "90", "+30s", "1.5m", "500ms"].contains(&d.as_str())
            }
            _ => false,
        })
}

#[derive(Debug, Clone)]
struct StatusGen {
    inconclusive: bool,
    step_pause: bool,
    index: Option<i64>,
    stable: Option<&'static str>,
    pod_hash: Option<&'static str>,
    promote_full: Option<bool>,
    abort: Option<bool>,
}

fn status() -> impl Strategy<Value = StatusGen> {
    let hash = || prop::option::of(prop::sample::select(vec!["rs-a", "rs-b", "rs-c"]));
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0i64..5),
        hash(),
        hash(),
        prop::option::weighted(0.2, any::<bool>()),
        prop::option::weighted(0.2, any::<bool>()),
    )
        .prop_map(
            |(inconclusive, step_pause, index, stable, pod_hash, promote_full, abort)| StatusGen {
                inconclusive,
                step_pause,
                index,
                stable,
                pod_hash,
                promote_full,
                abort,
            },
        )
}

impl StatusGen {
    fn json(&self) -> Value {
        let mut conditions = Vec::new();
        if self.step_pause {
            conditions
                .push(json!({"reason": "CanaryPauseStep", "startTime": "2026-01-01T00:00:00Z"}));
        }
        if self.inconclusive {
            conditions.push(
                json!({"reason": "InconclusiveAnalysisRun", "startTime": "2026-01-01T00:01:00Z"}),
            );
        }
        let mut s = json!({"pauseConditions": conditions, "controllerPause": true});
        if let Some(i) = self.index {
            s["currentStepIndex"] = json!(i);
        }
        if let Some(h) = self.stable {
            s["stableRS"] = json!(h);
        }
        if let Some(h) = self.pod_hash {
            s["currentPodHash"] = json!(h);
        }
        if let Some(b) = self.promote_full {
            s["promoteFull"] = json!(b);
        }
        if let Some(b) = self.abort {
            s["abort"] = json!(b);
        }
        s
    }
}

fn condition() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "result[0] >= 0.95",
            "result[0] < 0.9",
            "len(result) == 0",
            "  ",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9 <>=.\\[\\]()|!&]{1,30}",
    ])
}

fn metric() -> impl Strategy<Value = Value> {
    (
        condition(),
        condition(),
        prop_oneof![
            Just(json!({"prometheus": {"query": "up"}})),
            Just(json!({"web": {"url": "http://x"}})),
            Just(json!({"job": {"spec": {}}})),
            Just(json!({"plugin": {"argoproj-labs/x": {}}})),
            (0i64..100, 0i64..100)
                .prop_map(|(p, m)| json!({"kayenta": {"threshold": {"pass": p, "marginal": m}}})),
        ],
        prop::option::of(0i64..5),
        prop::option::of(prop::sample::select(vec!["10s", "1m", "5m"])),
    )
        .prop_map(|(s, f, provider, limit, interval)| {
            let mut m = json!({"provider": provider});
            if let Some(s) = s {
                m["successCondition"] = json!(s);
            }
            if let Some(f) = f {
                m["failureCondition"] = json!(f);
            }
            if let Some(l) = limit {
                m["inconclusiveLimit"] = json!(l);
            }
            if let Some(i) = interval {
                m["interval"] = json!(i);
            }
            m
        })
}

fn template() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(metric(), 1..5),
        prop::sample::select(vec!["web-check", "fresh", "kayenta-check"]),
        any::<bool>(),
    )
        .prop_map(|(metrics, name, cluster)| {
            let metrics: Vec<Value> = metrics
                .into_iter()
                .enumerate()
                .map(|(i, mut m)| {
                    m["name"] = json!(format!("m{i}"));
                    m
                })
                .collect();
            let (kind, metadata) = if cluster {
                ("ClusterAnalysisTemplate", json!({"name": name}))
            } else {
                (
                    "AnalysisTemplate",
                    json!({"name": name, "namespace": NAMESPACE}),
                )
            };
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": metadata,
                "spec": {"metrics": metrics}})
        })
}

/// Text that tests the warning rules: long, with newlines, tabs and other control characters.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,12}",
        "[a-z\n\t\r\u{7}\u{1b}\u{85} é✓]{0,40}",
        ".{200,700}",
        "[a-z\n]{300,600}",
    ]
}

/// A field the typed views read, for a wrongly typed value.
const TYPED_FIELDS: [&str; 8] = [
    "/spec/replicas",
    "/spec/strategy/canary/steps/0/setWeight",
    "/spec/strategy/canary/analysis/startingStep",
    "/spec/strategy/canary/analysis/templates/0/templateName",
    "/spec/strategy/canary/maxSurge",
    "/metadata/name",
    "/spec/paused",
    "/spec/strategy/canary/analysis/args",
];

fn noisy_object() -> impl Strategy<Value = Value> {
    let rollout = (
        d1_rollout(),
        nasty_text(),
        nasty_text(),
        0usize..6,
        prop::option::of((0usize..TYPED_FIELDS.len(), nasty_text())),
    )
        .prop_map(|(mut r, text, other, slot, wrong)| {
            match slot {
                0 => {
                    r["spec"]["strategy"]["canary"]["analysis"]["templates"] =
                        json!([{"templateName": text}, {"templateName": other}])
                }
                1 => {
                    r["spec"]["strategy"]["canary"]["steps"][0] =
                        json!({"pause": {"duration": text}})
                }
                2 => r["metadata"]["name"] = json!(text),
                3 => {
                    r["spec"]["strategy"]["canary"]["analysis"]["dryRun"] =
                        json!([{"metricName": text}, {"metricName": other}])
                }
                4 => {
                    r["spec"]["strategy"]["canary"]["analysis"]["args"] =
                        json!([{"name": text, "value": other}])
                }
                _ => r["metadata"]["annotations"][text] = json!(other),
            }
            if let Some((field, text)) = wrong
                && let Some(node) = r.pointer_mut(TYPED_FIELDS[field])
            {
                *node = json!(text);
            }
            r
        });
    let template = (template(), nasty_text(), nasty_text()).prop_map(|(mut t, text, other)| {
        t["spec"]["metrics"][0]["interval"] = json!(text);
        t["spec"]["templates"] = json!([{"templateName": other}]);
        t
    });
    prop_oneof![3 => rollout, 1 => template]
}

// ---------------------------------------------------------------------------------------------
// Key order and unknown fields

const UNKNOWN: &str = "x-unknown-";

/// Adds an unknown field to some objects of the tree (never inside `provider`, whose keys name
/// providers), from `seed`.
fn add_unknown_fields(v: &mut Value, seed: &mut u64, parent: &str) {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    };
    match v {
        Value::Object(m) => {
            if parent != "provider" && next() % 2 == 0 {
                let n = next();
                let value = match n % 4 {
                    // Annotation values are strings.
                    _ if parent == "annotations" => json!("text"),
                    0 => json!(null),
                    1 => json!({"nested": [1, "two", {"three": 3}]}),
                    2 => json!("text"),
                    _ => json!(n),
                };
                m.insert(format!("{UNKNOWN}{}", n % 3), value);
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if !k.starts_with(UNKNOWN) {
                    add_unknown_fields(m.get_mut(&k).unwrap(), seed, &k);
                }
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|x| add_unknown_fields(x, seed, parent)),
        _ => {}
    }
}

fn strip_unknown_fields(v: &mut Value) -> usize {
    match v {
        Value::Object(m) => {
            let before = m.len();
            m.retain(|k, _| !k.starts_with(UNKNOWN));
            before - m.len() + m.values_mut().map(strip_unknown_fields).sum::<usize>()
        }
        Value::Array(a) => a.iter_mut().map(strip_unknown_fields).sum(),
        _ => 0,
    }
}

/// JSON text of `v` with the keys of every object in an order drawn from `seed`.
fn shuffled_json(v: &Value, seed: &mut u64, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            for i in (1..entries.len()).rev() {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                entries.swap(i, (*seed >> 33) as usize % (i + 1));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                shuffled_json(v, seed, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                shuffled_json(x, seed, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A review whose text has its keys shuffled (the envelope too).
fn shuffled_review(review: &Value, seed: u64) -> Vec<u8> {
    let mut seed = seed;
    let mut out = String::new();
    shuffled_json(review, &mut seed, &mut out);
    out.into_bytes()
}

/// Three kinds of admission case the order/unknown-field property runs on.
fn any_case() -> impl Strategy<Value = (Value, Option<Value>, Endpoint, &'static str)> {
    prop_oneof![
        d1_rollout().prop_map(|r| (r, None, Endpoint::Mutate, "hold")),
        d1_rollout().prop_map(|r| (r, None, Endpoint::Validate, "none")),
        template().prop_map(|t| (t, None, Endpoint::Mutate, "fail-closed")),
        template().prop_map(|t| (t, None, Endpoint::Validate, "none")),
        (status(), status()).prop_map(|(old, new)| {
            let mut o = seed_rollout();
            o["status"] = old.json();
            let mut n = seed_rollout();
            n["status"] = new.json();
            (n, Some(o), Endpoint::Mutate, "status")
        }),
    ]
}

fn case_review(object: &Value, old: Option<&Value>) -> Value {
    match old {
        Some(old) => review(
            UID,
            "Rollout",
            Some("status"),
            "UPDATE",
            CONTROLLER,
            object,
            Some(old),
            false,
        ),
        None => create(object),
    }
}

// ---------------------------------------------------------------------------------------------
// Awkward JSON for the lean reader

/// Values the lean reader leaves to serde_json (floats, integers past 64 bits as floats) or
/// must read exactly like it (64-bit extremes, escapes, unicode, deep nesting).
fn awkward_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        (0i64..1000).prop_map(|n| json!(n as f64)),
        Just(json!(-0.0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(1e300)),
        any::<String>().prop_map(Value::String),
        "[\\\\\"/ a-z\u{1}-\u{1f}é😀]{0,70}".prop_map(Value::String),
        (1usize..110).prop_map(|d| {
            let mut v = json!(1);
            for i in 0..d {
                v = if i % 2 == 0 {
                    json!([v])
                } else {
                    json!({"d": v})
                };
            }
            v
        }),
        Just(json!({})),
        Just(json!([])),
        Just(Value::Null),
    ]
}

/// Puts `value` at a node under `request` chosen by `pick`: replaces the node, or adds it as
/// a new member of an object.
fn put_anywhere(v: &mut Value, pick: u64, value: Value) {
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let token = k.replace('~', "~0").replace('/', "~1");
                    pointers(x, format!("{at}/{token}"), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    pointers(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    pointers(v, String::new(), &mut all);
    // Never the envelope itself, nor `request`: the review stays a review.
    all.retain(|p| p.starts_with("/request/"));
    if all.is_empty() {
        return;
    }
    let p = &all[(pick % all.len() as u64) as usize];
    let node = v.pointer_mut(p).unwrap();
    match node {
        Value::Object(m) if pick.is_multiple_of(3) => {
            m.insert("x-awkward".into(), value);
        }
        _ => *node = value,
    }
}

/// A review written compactly with keys sorted, with keys in an order drawn from `seed`
/// (sometimes `operation` before `object`, as the API server writes it), and pretty.
fn writings(review: &Value, seed: u64) -> Vec<Vec<u8>> {
    vec![
        serde_json::to_vec(review).unwrap(),
        shuffled_review(review, seed),
        serde_json::to_vec_pretty(review).unwrap(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Documents

fn valid_document() -> impl Strategy<Value = (String, String)> {
    (
        "[a-z][a-z0-9-]{0,15}",
        any::<bool>(),
        d1_rollout(),
        template(),
    )
        .prop_map(|(name, is_rollout, mut r, mut t)| {
            let object = if is_rollout {
                r["metadata"]["name"] = json!(name);
                r
            } else {
                t["metadata"]["name"] = json!(name);
                t
            };
            (name, serde_yaml::to_string(&object).unwrap())
        })
}

fn garbage_document() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("key: [unclosed\n".to_owned()),
        Just("a: b: c\n".to_owned()),
        Just("\t- tab: indented\n".to_owned()),
        Just(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: [x]}\nspec: 5\n"
                .to_owned()
        ),
        Just("kind: Rollout\n  bad: indentation\n".to_owned()),
        Just("\"unterminated\n".to_owned()),
        Just("- just\n- a list\n".to_owned()),
        Just("plain text\n".to_owned()),
        Just("{\"json\": \n".to_owned()),
        Just("*alias\n".to_owned()),
        Just("&a [*a]\n".to_owned()),
        // Random lines that are not document markers.
        prop::collection::vec("[^\n\r]{0,30}", 1..4).prop_map(|lines| {
            lines
                .into_iter()
                .map(|l| {
                    let l = l.trim_start_matches(['-', '.']).to_owned();
                    format!("{l}\n")
                })
                .collect::<String>()
        }),
    ]
}

// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hold_patches_apply_and_are_idempotent(
        rollout in d1_rollout(),
        update in any::<bool>(),
        in_flight in any::<bool>(),
        legacy in any::<bool>(),
    ) {
        let version = if legacy { ControllerVersion::new(1, 8, 1) } else { ControllerVersion::DEFAULT };
        let a = admission(Mode::Warn, "hold", version);
        let old = update.then(|| {
            let mut old = rollout.clone();
            if in_flight {
                old["status"] = json!({"currentPodHash": "rs-new", "stableRS": "rs-old"});
            }
            old
        });
        let review_of = |object: &Value| {
            let op = if update { "UPDATE" } else { "CREATE" };
            review(UID, "Rollout", None, op, "jane", object, old.as_ref(), false)
        };
        let first = ask(&a, Endpoint::Mutate, &review_of(&rollout));
        let expected = has_timed_pause_to_hold(&rollout) && !(update && in_flight);
        prop_assert_eq!(first.patched.is_some(), expected, "patch {:?}", first.patch);
        if update && in_flight && has_timed_pause_to_hold(&rollout) {
            prop_assert!(first.warnings.iter().any(|w| w.contains("hold skipped")), "{:?}", first.warnings);
        }
        if let Some(patched) = first.patched {
            prop_assert!(!has_timed_pause_to_hold(&patched), "{}", patched);
            prop_assert!(patched.pointer("/metadata/annotations/rollout-guard.io~1held-pauses").is_some());
            prop_assert_eq!(&patched["metadata"]["annotations"]["team"], "payments");
            let second = ask(&a, Endpoint::Mutate, &review_of(&patched));
            prop_assert!(second.patch.is_none(), "second pass patched: {:?}", second.patch);
        }
    }

    /// A held Rollout whose steps are edited without touching its record (steps inserted or
    /// removed, as `kubectl edit` does): the record follows its steps, every entry left is on
    /// a held pause, and the guard's output seen again (webhook reinvocation, same
    /// oldObject) gets no patch.
    #[test]
    fn held_record_follows_edited_steps_and_is_idempotent(
        rollout in d1_rollout(),
        edits in prop::collection::vec((any::<bool>(), 0usize..10, step()), 1..4),
    ) {
        let a = admission(Mode::Warn, "hold", ControllerVersion::DEFAULT);
        let first = ask(&a, Endpoint::Mutate, &create(&rollout));
        let Some(held) = first.patched else {
            return Ok(());
        };
        let mut edited = held.clone();
        let steps = edited["spec"]["strategy"]["canary"]["steps"].as_array_mut().unwrap();
        for (insert, at, step) in edits {
            if insert {
                steps.insert(at.min(steps.len()), step);
            } else if !steps.is_empty() {
                let at = at.min(steps.len() - 1);
                steps.remove(at);
            }
        }
        let update = |object: &Value| {
            review(UID, "Rollout", None, "UPDATE", "jane", object, Some(&held), false)
        };
        let second = ask(&a, Endpoint::Mutate, &update(&edited));
        let after = second.patched.unwrap_or(edited);
        if let Some(record) = after.pointer("/metadata/annotations/rollout-guard.io~1held-pauses") {
            let record: Value = serde_json::from_str(record.as_str().unwrap()).unwrap();
            let steps = after["spec"]["strategy"]["canary"]["steps"].as_array().unwrap();
            for index in record.as_object().unwrap().keys() {
                let step = &steps[index.parse::<usize>().unwrap()];
                prop_assert!(
                    step.get("pause").is_some_and(|p| p.get("duration").is_none()),
                    "entry {} on {}", index, step
                );
            }
        }
        let third = ask(&a, Endpoint::Mutate, &update(&after));
        prop_assert!(third.patch.is_none(), "reinvocation patched: {:?}", third.patch);
    }

    #[test]
    fn status_guard_patches_apply_and_are_idempotent(old in status(), new in status()) {
        let a = admission(Mode::Warn, "status", ControllerVersion::DEFAULT);
        let mut old_r = seed_rollout();
        old_r["status"] = old.json();
        let mut new_r = seed_rollout();
        new_r["status"] = new.json();
        let review_of = |object: &Value| {
            review(UID, "Rollout", Some("status"), "UPDATE", CONTROLLER, object, Some(&old_r), false)
        };
        let first = ask(&a, Endpoint::Mutate, &review_of(&new_r));
        let released = [&old, &new]
            .iter()
            .any(|s| s.promote_full == Some(true) || s.abort == Some(true))
            || (old.pod_hash.is_some() && new.pod_hash != old.pod_hash);
        let moved = new.index != old.index || new.stable != old.stable;
        let paused = old.inconclusive || new.inconclusive;
        let condition_dropped = old.inconclusive && !new.inconclusive;
        if paused && !released && (moved || condition_dropped) {
            prop_assert!(first.patch.is_some(), "expected the guard to hold");
        }
        if released || !(old.inconclusive || new.inconclusive) {
            prop_assert!(first.patch.is_none(), "guard fired on {:?} -> {:?}", old, new);
        }
        if let Some(patched) = first.patched {
            let status = &patched["status"];
            prop_assert_eq!(status.get("currentStepIndex"), old_r["status"].get("currentStepIndex"));
            prop_assert_eq!(status.get("stableRS"), old_r["status"].get("stableRS"));
            let reasons: Vec<&str> = status["pauseConditions"].as_array().unwrap().iter()
                .filter_map(|c| c["reason"].as_str()).collect();
            prop_assert!(reasons.contains(&"InconclusiveAnalysisRun"), "{:?}", reasons);
            let second = ask(&a, Endpoint::Mutate, &review_of(&patched));
            prop_assert!(second.patch.is_none(), "second pass patched: {:?}", second.patch);
        }
        // Humans pass through, whatever they write.
        let human = review(UID, "Rollout", Some("status"), "UPDATE", "jane", &new_r, Some(&old_r), false);
        prop_assert!(ask(&a, Endpoint::Mutate, &human).patch.is_none());
    }

    #[test]
    fn fail_closed_patches_apply_and_are_idempotent(template in template()) {
        let a = admission(Mode::Warn, "fail-closed", ControllerVersion::DEFAULT);
        let first = ask(&a, Endpoint::Mutate, &create(&template));
        let closed = first.patched.clone().unwrap_or_else(|| template.clone());
        for m in closed["spec"]["metrics"].as_array().unwrap() {
            let text = |k: &str| m[k].as_str().map(str::trim).filter(|s| !s.is_empty());
            let provider = m["provider"].as_object().unwrap();
            if let Some(t) = provider.get("kayenta") {
                prop_assert!(t["threshold"]["marginal"].as_i64() >= t["threshold"]["pass"].as_i64(), "{}", m);
            } else if let (Some(s), Some(f)) = (text("successCondition"), text("failureCondition"))
                && !provider.contains_key("job") && !provider.contains_key("plugin")
            {
                prop_assert!(f.ends_with(&format!(" || !({s})")), "not fail-closed: {}", m);
            }
        }
        if let Some(patched) = first.patched {
            let second = ask(&a, Endpoint::Mutate, &create(&patched));
            prop_assert!(second.patch.is_none(), "second pass patched: {:?}", second.patch);
        }
    }

    #[test]
    fn warnings_fit_the_api_server_and_answers_are_deterministic(
        object in noisy_object(),
        enforce in any::<bool>(),
        legacy in any::<bool>(),
    ) {
        // `review_and_check` asserts the warning limits and reviews every body twice.
        let version = if legacy { ControllerVersion::new(1, 8, 1) } else { ControllerVersion::DEFAULT };
        let mode = if enforce { Mode::Enforce } else { Mode::Warn };
        let a = admission(mode, "status,hold,fail-closed", version);
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let v = ask(&a, endpoint, &create(&object));
            // And a second reviewer built the same way answers byte for byte the same.
            let b = admission(mode, "status,hold,fail-closed", version);
            prop_assert_eq!(&ask(&b, endpoint, &create(&object)).body, &v.body);
        }
    }

    #[test]
    fn verdict_ignores_key_order_and_unknown_fields(
        (object, old, endpoint, guards) in any_case(),
        seed in any::<u64>(),
        enforce in any::<bool>(),
    ) {
        let mode = if enforce { Mode::Enforce } else { Mode::Warn };
        let a = admission(mode, guards, ControllerVersion::DEFAULT);
        let plain_review = case_review(&object, old.as_ref());
        let plain = ask(&a, endpoint, &plain_review);

        // Key order: the same answer, byte for byte.
        let reordered = review_and_check(&a, endpoint, &shuffled_review(&plain_review, seed));
        prop_assert_eq!(&reordered.body, &plain.body);

        // Unknown fields: the same verdict and the same edit; they survive the patch.
        let mut s = seed;
        let mut noisy = object.clone();
        add_unknown_fields(&mut noisy, &mut s, "");
        let noisy_old = old.clone().map(|mut o| {
            add_unknown_fields(&mut o, &mut s, "");
            o
        });
        let mut counted = noisy.clone();
        let added = strip_unknown_fields(&mut counted);
        let answer = ask(&a, endpoint, &case_review(&noisy, noisy_old.as_ref()));
        prop_assert_eq!(answer.allowed, plain.allowed);
        prop_assert_eq!(&answer.warnings, &plain.warnings);
        let message = |v: &Verdict| serde_json::from_slice::<Value>(&v.body).unwrap()["response"]["status"].clone();
        prop_assert_eq!(message(&answer), message(&plain));
        prop_assert_eq!(answer.patched.is_some(), plain.patched.is_some());
        if let (Some(mut noisy_patched), Some(mut plain_patched)) = (answer.patched, plain.patched) {
            let kept = strip_unknown_fields(&mut noisy_patched);
            prop_assert!(kept >= added, "unknown fields lost: {} of {}", added - kept, added);
            // The hold record's fingerprint hashes the steps as sent, unknown fields included
            // (in a cluster there are none: the API server prunes a CRD's unknown fields
            // before admission).
            for patched in [&mut noisy_patched, &mut plain_patched] {
                if let Some(a) = patched.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
                    a.remove("rollout-guard.io/held-pauses-steps");
                }
            }
            prop_assert_eq!(noisy_patched, plain_patched);
        }
    }

    #[test]
    fn a_garbage_document_never_hides_a_valid_one(
        docs in prop::collection::vec(
            prop_oneof![2 => valid_document().prop_map(Ok), 1 => garbage_document().prop_map(Err)],
            1..8,
        ),
        crlf in any::<bool>(),
        comment_markers in any::<bool>(),
    ) {
        let marker = if comment_markers { "--- # next\n" } else { "---\n" };
        let mut text = String::new();
        let mut names = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 {
                text.push_str(marker);
            }
            match d {
                Ok((name, yaml)) => {
                    names.push(name.clone());
                    text.push_str(yaml);
                }
                Err(garbage) => text.push_str(garbage),
            }
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        let mut loaded = Loaded::default();
        load_text("stream.yaml", &text, false, &mut loaded);
        let read: Vec<String> = loaded
            .objects
            .iter()
            .map(|(_, o)| match o {
                Object::Rollout(r) => r.metadata.display_name().to_owned(),
                Object::Template(t, _) => t.metadata.display_name().to_owned(),
            })
            .collect();
        for name in &names {
            prop_assert!(read.contains(name), "lost {} in {:?}\nerrors {:?}", name, text, loaded.errors);
        }
        for e in &loaded.errors {
            prop_assert_eq!(&e.file, "stream.yaml");
            prop_assert!(!e.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lean_reader_answers_like_serde_json(
        (object, old, _endpoint, guards) in any_case(),
        noisy in noisy_object(),
        awkward in prop::collection::vec((any::<u64>(), awkward_value()), 1..4),
        seed in any::<u64>(),
        pad in 0usize..64,
        enforce in any::<bool>(),
        legacy in any::<bool>(),
    ) {
        let version = if legacy { ControllerVersion::new(1, 8, 1) } else { ControllerVersion::DEFAULT };
        let mode = if enforce { Mode::Enforce } else { Mode::Warn };
        let policies = [
            admission(mode, guards, version),
            admission(mode, "status,hold,fail-closed", version),
        ];
        // An update of the noisy object by the controller, at an alignment `pad` picks.
        let mut update = review(UID, kind_of(&noisy), None, "UPDATE", CONTROLLER, &noisy, Some(&object), false);
        update["request"]["aaPad"] = json!("p".repeat(pad));
        let mut reviews = vec![case_review(&object, old.as_ref()), create(&noisy), update];
        for i in 0..reviews.len() {
            let mut r = reviews[i].clone();
            for (pick, value) in &awkward {
                put_anywhere(&mut r, *pick, value.clone());
            }
            reviews.push(r);
        }
        for r in &reviews {
            for body in writings(r, seed) {
                for a in &policies {
                    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                        let lean = a.review(endpoint, &body);
                        let reference = a.review_reference(endpoint, &body);
                        prop_assert_eq!(
                            (lean.status, lean.outcome, &lean.body),
                            (reference.status, reference.outcome, &reference.body),
                            "{:?}: {} vs {}\nbody {}",
                            endpoint,
                            String::from_utf8_lossy(&lean.body),
                            String::from_utf8_lossy(&reference.body),
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
            }
        }
    }
}

/// `noisy_object` exists to reach the size limits: make sure it does.
#[test]
fn long_text_reaches_the_warning_budget() {
    let a = admission(Mode::Warn, "none", ControllerVersion::DEFAULT);
    let mut r = seed_rollout();
    let refs: Vec<Value> = (0..40)
        .map(|i| json!({"templateName": format!("missing-{i}-{}", "x".repeat(300))}))
        .collect();
    r["spec"]["strategy"]["canary"]["analysis"]["templates"] = json!(refs);
    let v = ask(&a, Endpoint::Validate, &create(&r));
    assert!(
        v.warnings.iter().any(|w| w.ends_with("...")),
        "{:?}",
        v.warnings
    );
    assert!(
        v.warnings.last().unwrap().contains("not shown"),
        "{:?}",
        v.warnings
    );
}
