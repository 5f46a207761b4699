//! The lean JSON reader (`src/json.rs`) against serde_json, on whole admission reviews.
//!
//! `Admission::review` decodes a review with the lean reader (falling back to serde_json when
//! the lean reader gives up); `Admission::review_reference` decodes the envelope with
//! serde_json alone. The contract: for every body serde_json accepts, both give the same
//! `Reply` (status, outcome, body bytes, and the log summary). For a body serde_json refuses,
//! the lean path may answer 200 only when the malformation lies inside a value the webhook
//! skips; a malformation in a part it reads is a 400 either way.
//!
//! The bodies: every captured review under `tests/fixtures` (and the fuzz seeds), the
//! load-test review and variants of it (field orders, annotations, subresource, operations,
//! kinds, floats read and skipped, big integers, escapes, unicode, deep nesting, duplicates,
//! 64-byte block alignments), and reviews of every Rollout / AnalysisTemplate /
//! ClusterAnalysisTemplate of the manifest corpus, on both endpoints and several policies.
//!
//! `review_reference` reads the envelope and every view with serde_json alone; a separate
//! test, `views_read_by_both_readers_are_the_same`, also compares the views directly.
//! `a_malformed_object_read_after_the_envelope_pass_is_a_400` covers a malformation the lean
//! pass skipped and a later view read meets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::SharedStore;
use rollout_guard::cli::Mode;
use rollout_guard::guards::GuardSet;
use rollout_guard::input::split_documents;
use rollout_guard::json;
use rollout_guard::model::{AnalysisTemplate, Rollout};
use rollout_guard::review::{Endpoint, Reply, Reviewer};
use rollout_guard::templates::MemoryStore;
use rollout_guard::version::ControllerVersion;
use serde_json::{Value, json};

mod reviews;

use reviews::{CONTROLLER, api_server_order, dangerous_rollout, review, template_web};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

// ---------------------------------------------------------------------------------------------
// Policies

fn policy(mode: Mode, guards: &str, version: ControllerVersion) -> Policy {
    Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    }
}

/// The load-test templates (`success-rate`, `latency` in `shop`), as the load test serves.
fn load_test_admission(mode: Mode, guards: &str, version: ControllerVersion) -> Admission {
    let dir = Path::new(ROOT).join("tests/fixtures/load/templates");
    let (store, errors) = rollout_guard::catalog::load_dir(&dir);
    assert!(errors.is_empty(), "{errors:?}");
    Admission::new(
        policy(mode, guards, version),
        Arc::new(SharedStore::ready(store)),
    )
}

/// The `web-check` template of the shared review builder, and a D1 Rollout that uses it.
fn web_admission(mode: Mode, guards: &str, version: ControllerVersion) -> Admission {
    let mut store = MemoryStore::new();
    store.insert_template(serde_json::from_value::<AnalysisTemplate>(template_web()).unwrap());
    store.insert_rollout(serde_json::from_value::<Rollout>(dangerous_rollout()).unwrap());
    Admission::new(
        policy(mode, guards, version),
        Arc::new(SharedStore::ready(store)),
    )
}

/// Several policies: modes, guard sets and controller versions, over two template stores.
fn policies() -> Vec<(&'static str, Admission)> {
    let legacy = ControllerVersion::new(1, 8, 1);
    vec![
        (
            "load warn auto",
            load_test_admission(Mode::Warn, "auto", ControllerVersion::DEFAULT),
        ),
        (
            "load enforce all guards",
            load_test_admission(
                Mode::Enforce,
                "status,hold,fail-closed",
                ControllerVersion::DEFAULT,
            ),
        ),
        (
            "web warn all guards",
            web_admission(
                Mode::Warn,
                "status,hold,fail-closed",
                ControllerVersion::DEFAULT,
            ),
        ),
        (
            "web enforce none 1.8.1",
            web_admission(Mode::Enforce, "none", legacy),
        ),
        (
            "web warn hold 1.8.1",
            web_admission(Mode::Warn, "hold", legacy),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The comparison

fn show(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() > 600 {
        let mut cut = 600;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}... ({} bytes)", &text[..cut], body.len())
    } else {
        text.into_owned()
    }
}

/// Reviews `body` with both readers and asserts identical replies; returns the lean one.
fn same(a: &Admission, endpoint: Endpoint, body: &[u8], what: &str) -> Reply {
    let lean = a.review(endpoint, body);
    let reference = a.review_reference(endpoint, body);
    assert_eq!(
        (lean.status, lean.outcome, &lean.body),
        (reference.status, reference.outcome, &reference.body),
        "{what} on {endpoint:?}: lean {} vs reference {}\nbody: {}",
        show(&lean.body),
        show(&reference.body),
        show(body),
    );
    let summary = |r: &Reply| r.summary.as_ref().map(|s| serde_json::to_value(s).unwrap());
    assert_eq!(
        summary(&lean),
        summary(&reference),
        "{what} on {endpoint:?}"
    );
    lean
}

/// [`same`] on both endpoints and every policy; returns the statuses seen.
fn same_everywhere(policies: &[(&str, Admission)], body: &[u8], what: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (name, a) in policies {
        for endpoint in ENDPOINTS {
            statuses.push(same(a, endpoint, body, &format!("{what} [{name}]")).status);
        }
    }
    statuses
}

// ---------------------------------------------------------------------------------------------
// Serialisations

fn tab_pretty(review: &Value) -> Vec<u8> {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    review.serialize(&mut ser).unwrap();
    out
}

/// The same review written four ways: API server order, sorted keys, pretty, tab-indented.
fn serialisations(review: &Value) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("api order", api_server_order(review)),
        ("sorted", serde_json::to_vec(review).unwrap()),
        ("pretty", serde_json::to_vec_pretty(review).unwrap()),
        ("tabs", tab_pretty(review)),
    ]
}

/// Marks a place in a `Value` that [`raw`] later replaces with arbitrary JSON text.
fn marker(i: usize) -> String {
    format!("@@raw{i}@@")
}

/// Replaces every `"@@rawN@@"` (a string or a key set with [`marker`]) by `texts[N]`.
fn raw(body: &[u8], texts: &[&str]) -> Vec<u8> {
    let mut text = String::from_utf8(body.to_vec()).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let quoted = format!("\"{}\"", marker(i));
        assert!(text.contains(&quoted), "marker {i} not in the body");
        text = text.replace(&quoted, t);
    }
    text.into_bytes()
}

/// `review` with a marker at `pointer` (the parent must exist), written every way, with the
/// marker replaced by `text`.
fn with_raw_at(review: &Value, pointer: &str, text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut r = review.clone();
    set(&mut r, pointer, json!(marker(0)));
    serialisations(&r)
        .into_iter()
        .map(|(how, body)| (how, raw(&body, &[text])))
        .collect()
}

/// Sets the member or element at a JSON pointer, creating the last member when missing.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let node = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    let last = last.replace("~1", "/").replace("~0", "~");
    match node {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) => a[last.parse::<usize>().unwrap()] = value,
        other => panic!("{parent} is {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn load_test_bytes() -> Vec<u8> {
    std::fs::read(Path::new(ROOT).join("tests/fixtures/load/rollout-update-review.json")).unwrap()
}

fn load_test_review() -> Value {
    serde_json::from_slice(&load_test_bytes()).unwrap()
}

/// Every captured or hand-built review file of the project: `tests/fixtures` (the GKE capture,
/// the kubewarden Pod reviews, the load-test review) and the `admission_review` fuzz seeds.
fn review_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "tests/fixtures/admission",
        "tests/fixtures/admission-reviews",
        "tests/fixtures/load",
        "fuzz/seeds/admission_review",
    ] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("json") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Every Rollout, AnalysisTemplate and ClusterAnalysisTemplate of the manifest corpus, as
/// JSON (YAML documents and `List` items), with the file it came from.
fn corpus_objects() -> Vec<(String, Value)> {
    let root = Path::new(ROOT).join("tests/fixtures/corpus");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut docs = Vec::new();
        if file.extension().and_then(|e| e.to_str()) == Some("json") {
            docs.extend(serde_json::from_str::<Value>(&text).ok());
        } else {
            for (_, chunk) in split_documents(&text) {
                docs.extend(serde_yaml::from_str::<Value>(chunk).ok());
            }
        }
        let mut flat = Vec::new();
        for doc in docs {
            match doc["items"].as_array() {
                Some(items) if doc["kind"] == "List" => flat.extend(items.iter().cloned()),
                _ => flat.push(doc),
            }
        }
        for object in flat {
            if matches!(
                object["kind"].as_str(),
                Some("Rollout" | "AnalysisTemplate" | "ClusterAnalysisTemplate")
            ) {
                out.push((rel.clone(), object));
            }
        }
    }
    out
}

fn resource(kind: &str) -> &'static str {
    match kind {
        "Rollout" => "rollouts",
        "AnalysisTemplate" => "analysistemplates",
        _ => "clusteranalysistemplates",
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: captured reviews and the load-test review

#[test]
fn every_captured_review_gets_the_reference_answer() {
    let policies = policies();
    let files = review_files();
    assert!(files.len() >= 20, "{files:?}");
    let mut answered = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        same_everywhere(&policies, &bytes, &format!("{name} as stored"));
        let Ok(review) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        answered += 1;
        let mut variants = vec![("as is", review.clone())];
        // The same envelope and object, under each of the kinds the webhook reads (a Pod read
        // as a Rollout view, a Rollout as a template, ...).
        if review["request"].is_object() {
            for kind in ["Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"] {
                let mut v = review.clone();
                v["request"]["kind"] =
                    json!({"group": "argoproj.io", "version": "v1alpha1", "kind": kind});
                v["request"]["resource"] = json!({"group": "argoproj.io", "version": "v1alpha1", "resource": resource(kind)});
                variants.push((kind, v));
            }
        }
        for (variant, v) in &variants {
            for (how, body) in serialisations(v) {
                same_everywhere(&policies, &body, &format!("{name}, {variant}, {how}"));
            }
        }
    }
    assert!(answered >= 18, "only {answered} review files parse");
}

/// The load-test review and the variants the webhook branches on, written in the API
/// server's field order, sorted, pretty and tab-indented.
#[test]
fn load_test_review_variants_get_the_reference_answer() {
    let policies = policies();
    let base = load_test_review();
    // As captured, byte for byte: the lean reader reads it all itself.
    let statuses = same_everywhere(&policies, &load_test_bytes(), "as captured");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let mut v: Vec<(&str, Value)> = vec![("as captured", base.clone())];
    let mut edit = |what: &'static str, f: &dyn Fn(&mut Value)| {
        let mut r = base.clone();
        f(&mut r);
        v.push((what, r));
    };
    let annotation = "/request/object/metadata/annotations/rollout-guard.io~1mode";
    edit("opted out", &|r| set(r, annotation, json!("off")));
    edit("enforced", &|r| set(r, annotation, json!("enforce")));
    edit("warned", &|r| set(r, annotation, json!(" warn ")));
    edit("guards none", &|r| {
        set(
            r,
            "/request/object/metadata/annotations/rollout-guard.io~1guards",
            json!("none"),
        )
    });
    edit("guards hold", &|r| {
        set(
            r,
            "/request/object/metadata/annotations/rollout-guard.io~1guards",
            json!("hold"),
        )
    });
    edit("status write", &|r| {
        r["request"]["subResource"] = json!("status");
        r["request"]["requestSubResource"] = json!("status");
    });
    edit("status write by the controller", &|r| {
        r["request"]["subResource"] = json!("status");
        r["request"]["userInfo"]["username"] = json!(CONTROLLER);
        r["request"]["oldObject"] = r["request"]["object"].clone();
        r["request"]["object"]["status"]["currentStepIndex"] = json!(3);
        r["request"]["object"]["status"]["pauseConditions"] =
            json!([{"reason": "InconclusiveAnalysisRun", "startTime": "2026-11-20T09:10:00Z"}]);
    });
    edit("scale subresource", &|r| {
        r["request"]["subResource"] = json!("scale");
    });
    edit("create without namespace", &|r| {
        r["request"]["operation"] = json!("CREATE");
        r["request"]["oldObject"] = Value::Null;
        r["request"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
    });
    edit("create without any namespace", &|r| {
        r["request"]["operation"] = json!("CREATE");
        r["request"]["oldObject"] = Value::Null;
        r["request"].as_object_mut().unwrap().remove("namespace");
        r["request"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
    });
    edit("create with generateName", &|r| {
        r["request"]["operation"] = json!("CREATE");
        r["request"]["name"] = Value::Null;
        let meta = r["request"]["object"]["metadata"].as_object_mut().unwrap();
        meta.remove("name");
        meta.insert("generateName".into(), json!("checkout-"));
    });
    edit("delete", &|r| r["request"]["operation"] = json!("DELETE"));
    edit("delete as the API server sends it", &|r| {
        r["request"]["operation"] = json!("DELETE");
        r["request"]["oldObject"] = r["request"]["object"].clone();
        r["request"]["object"] = Value::Null;
    });
    edit("connect", &|r| r["request"]["operation"] = json!("CONNECT"));
    edit("dry run", &|r| r["request"]["dryRun"] = json!(true));
    edit("null object", &|r| r["request"]["object"] = Value::Null);
    edit("no object", &|r| {
        r["request"].as_object_mut().unwrap().remove("object");
    });
    edit("unreadable object", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"] = json!("many")
    });
    edit("object is a string", &|r| {
        r["request"]["object"] = json!("a Rollout")
    });
    edit("as an AnalysisTemplate", &|r| {
        r["request"]["kind"]["kind"] = json!("AnalysisTemplate")
    });
    edit("as a ClusterAnalysisTemplate", &|r| {
        r["request"]["kind"]["kind"] = json!("ClusterAnalysisTemplate")
    });
    edit(
        "as a Deployment",
        &|r| r["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
    );
    edit("as an Experiment", &|r| {
        r["request"]["kind"]["kind"] = json!("Experiment")
    });
    edit("no kind", &|r| {
        r["request"].as_object_mut().unwrap().remove("kind");
    });
    edit("no uid", &|r| {
        r["request"].as_object_mut().unwrap().remove("uid");
    });
    edit("empty uid", &|r| r["request"]["uid"] = json!(""));
    edit("no request", &|r| {
        r.as_object_mut().unwrap().remove("request");
    });
    edit("request is an array", &|r| r["request"] = json!([1, 2]));
    edit("reads a float", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(20.0)
    });
    edit("reads a fractional float", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(20.5)
    });
    edit("reads float replicas", &|r| {
        r["request"]["object"]["spec"]["replicas"] = json!(6.0)
    });
    edit("reads a float startingStep", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["analysis"]["startingStep"] =
            json!(1.0)
    });
    edit("reads a float pause", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] =
            json!(300.0)
    });
    edit("skips a float", &|r| {
        r["request"]["object"]["metadata"]["generation"] = json!(42.0);
        r["request"]["object"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
            json!(30.5);
        r["request"]["object"]["status"]["HPAReplicas"] = json!(6.0);
        r["request"]["options"]["x-ratio"] = json!(0.25);
    });
    edit("float in the old object", &|r| {
        r["request"]["oldObject"]["spec"]["replicas"] = json!(6.0)
    });
    edit("float in the envelope", &|r| r["x-version"] = json!(1.5));
    edit("big integers skipped", &|r| {
        r["request"]["object"]["metadata"]["generation"] = json!(u64::MAX);
        r["request"]["options"]["x-min"] = json!(i64::MIN);
    });
    edit("big integer read", &|r| {
        r["request"]["object"]["spec"]["replicas"] = json!(u64::MAX)
    });
    edit("negative integer read", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(-5)
    });
    edit("unicode", &|r| {
        r["request"]["name"] = json!("checkout-ü");
        let o = &mut r["request"]["object"];
        o["metadata"]["name"] = json!("checkout-ü");
        o["metadata"]["labels"]["größe"] = json!("groß ✓ 😀 \u{10ffff}");
        o["metadata"]["annotations"]["notes"] = json!("日本語のテキスト\u{2028}\u{feff}");
        o["spec"]["strategy"]["canary"]["analysis"]["templates"][0]["templateName"] =
            json!("success-räte");
        o["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] = json!("5µs");
    });
    edit("escapes serde_json writes", &|r| {
        let o = &mut r["request"]["object"];
        o["metadata"]["name"] = json!("check\"out\\");
        o["metadata"]["labels"]["quote\"key"] = json!("a\"b\\c/\u{8}\u{c}\n\r\t\u{1}\u{1f}");
        o["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("enforce\n");
        o["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] = json!("5m\t");
        r["request"]["userInfo"]["username"] = json!("jane \"the\" admin");
    });
    edit("managedFields twice as long", &|r| {
        let o = &mut r["request"]["object"]["metadata"];
        let mut fields = o["managedFields"].as_array().unwrap().clone();
        fields.extend(fields.clone());
        o["managedFields"] = json!(fields);
    });
    edit("empty containers", &|r| {
        let o = &mut r["request"]["object"];
        o["metadata"]["labels"] = json!({});
        o["metadata"]["annotations"] = json!({});
        o["spec"]["template"] = json!({"metadata": {}, "spec": {"containers": []}});
        o["spec"]["strategy"]["canary"]["steps"] = json!([]);
    });
    edit("null annotations", &|r| {
        r["request"]["object"]["metadata"]["annotations"] = Value::Null;
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"] = Value::Null;
    });
    edit("struct written as an array", &|r| {
        r["request"]["object"]["spec"]["strategy"]["canary"]["steps"][1]["pause"] = json!(["5m"])
    });
    for (what, review) in &v {
        for (how, body) in serialisations(review) {
            same_everywhere(&policies, &body, &format!("{what}, {how}"));
        }
    }
}

/// JSON text that no `Value` serialises to: exponents, `-0`, integers past 64 bits, escapes
/// serde_json never writes, duplicate keys, deep nesting, in read and in skipped places.
#[test]
fn raw_json_text_in_read_and_skipped_places_gets_the_reference_answer() {
    let policies = policies();
    let base = load_test_review();
    let steps = "/request/object/spec/strategy/canary/steps";
    let numbers = [
        "1e1",
        "1E+1",
        "10e-1",
        "-0",
        "-0.0",
        "0.0",
        "1.0",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1e400",
        "-1e-400",
    ];
    let mut cases: Vec<(String, &str, String)> = Vec::new();
    for n in numbers {
        for (place, pointer) in [
            ("setWeight", format!("{steps}/0/setWeight")),
            ("pause duration", format!("{steps}/1/pause/duration")),
            ("replicas", "/request/object/spec/replicas".to_owned()),
            (
                "startingStep",
                "/request/object/spec/strategy/canary/analysis/startingStep".to_owned(),
            ),
            (
                "skipped in the object",
                "/request/object/metadata/generation".to_owned(),
            ),
            (
                "skipped in the template",
                "/request/object/spec/template/spec/terminationGracePeriodSeconds".to_owned(),
            ),
            (
                "skipped in a read struct",
                "/request/object/spec/strategy/canary/maxUnavailable".to_owned(),
            ),
            (
                "skipped status",
                "/request/object/status/HPAReplicas".to_owned(),
            ),
            ("old object", "/request/oldObject/spec/replicas".to_owned()),
            ("options", "/request/options/x".to_owned()),
            ("dryRun", "/request/dryRun".to_owned()),
            ("envelope", "/x".to_owned()),
        ] {
            cases.push((format!("{n} as {place}"), n, pointer));
        }
    }
    let strings = [
        // Escapes in read values: a mode and a template name spelled with \u escapes.
        (
            "escaped mode",
            r#""\u0065nforce""#,
            "/request/object/metadata/annotations/rollout-guard.io~1mode",
        ),
        (
            "escaped slash in a mode",
            r#""\/off""#,
            "/request/object/metadata/annotations/rollout-guard.io~1mode",
        ),
        (
            "escaped template name",
            r#""success\u002drate""#,
            "/request/object/spec/strategy/canary/analysis/templates/0/templateName",
        ),
        (
            "escaped pause",
            r#""5\u006d""#,
            "/request/object/spec/strategy/canary/steps/1/pause/duration",
        ),
        (
            "surrogate pair read",
            r#""checkout-\ud83d\ude00""#,
            "/request/object/metadata/name",
        ),
        (
            "lone surrogate read",
            r#""checkout-\ud800""#,
            "/request/object/metadata/name",
        ),
        (
            "lone low surrogate read",
            r#""5m\udc00""#,
            "/request/object/spec/strategy/canary/steps/1/pause/duration",
        ),
        (
            "escaped uid",
            r#""0c9a8d74\u002d9cb7\"\\\/""#,
            "/request/uid",
        ),
        (
            "escaped operation",
            r#""UPD\u0041TE""#,
            "/request/operation",
        ),
        (
            "escaped subresource",
            r#""st\u0061tus""#,
            "/request/subResource",
        ),
        (
            "escaped kind",
            r#"{"group":"argoproj\u002eio","kind":"Roll\u006fut"}"#,
            "/request/kind",
        ),
        (
            "escaped username",
            r#"{"username":"system:serviceaccount:argo-rollouts:argo\u002drollouts"}"#,
            "/request/userInfo",
        ),
        // Escapes in skipped values.
        (
            "every escape skipped",
            r#""\" \\ \/ \b \f \n \r \t \u00e9 \u00E9 \ud83d\ude00 \u0000""#,
            "/request/object/metadata/labels/x",
        ),
        (
            "lone surrogate skipped",
            r#""\ud800 \udfff""#,
            "/request/object/metadata/labels/x",
        ),
        (
            "lone surrogate in the old object",
            r#""\ud800""#,
            "/request/oldObject/metadata/labels/x",
        ),
        (
            "backslash runs skipped",
            r#"["\\", "\\\\", "\\\"", "\"\\", "\\\\\\\"]"]"#,
            "/request/object/metadata/x",
        ),
        (
            "brackets in skipped strings",
            r#"{"a":"]}","b":["[{","\"]"],"c":{"}":"{"}}"#,
            "/request/object/spec/template/x",
        ),
        // Duplicate keys.
        (
            "duplicate skipped keys",
            r#"{"a":1,"a":[2],"a":{"a":3}}"#,
            "/request/object/metadata/labels",
        ),
        (
            "duplicate own annotations",
            r#"{"rollout-guard.io/mode":"off","team":"x","rollout-guard.io/mode":"enforce"}"#,
            "/request/object/metadata/annotations",
        ),
        (
            "duplicate step fields",
            r#"{"setWeight":10,"setWeight":20}"#,
            "/request/object/spec/strategy/canary/steps/0",
        ),
        (
            "duplicate options",
            r#"{"kind":"UpdateOptions","kind":"CreateOptions"}"#,
            "/request/options",
        ),
        // Escaped keys, read and skipped.
        (
            "escaped read key",
            r#"{"set\u0057eight":10}"#,
            "/request/object/spec/strategy/canary/steps/0",
        ),
        (
            "escaped annotation key",
            r#"{"rollout-guard.io\/mode":"enforce","te\u0061m":"payments"}"#,
            "/request/object/metadata/annotations",
        ),
        (
            "escaped skipped key",
            r#"{"\u0061pp":"checkout","\"":"\\"}"#,
            "/request/object/metadata/labels",
        ),
        // Types the views do not expect.
        (
            "annotations as an array",
            r#"["rollout-guard.io/mode"]"#,
            "/request/object/metadata/annotations",
        ),
        (
            "mode as a number",
            "7",
            "/request/object/metadata/annotations/rollout-guard.io~1mode",
        ),
        (
            "mode as true",
            "true",
            "/request/object/metadata/annotations/rollout-guard.io~1mode",
        ),
        ("uid as a number", "5", "/request/uid"),
        ("uid as null", "null", "/request/uid"),
        ("dryRun as a string", r#""true""#, "/request/dryRun"),
        ("name as an object", r#"{"a":1}"#, "/request/name"),
        ("kind as a string", r#""Rollout""#, "/request/kind"),
        // Whitespace JSON allows, where the views read.
        (
            "whitespace in a read struct",
            " \t\r\n{ \t\r\n\"setWeight\" \t\r\n: \t\r\n10 \t\r\n} \t\r\n",
            "/request/object/spec/strategy/canary/steps/0",
        ),
        (
            "whitespace in a skipped value",
            " \r\n[ 1 ,\t{ \"a\" : [ ] } , \"x\" ]\r\n ",
            "/request/object/spec/template/x",
        ),
    ];
    for (what, text, pointer) in strings {
        cases.push((what.to_owned(), text, pointer.to_owned()));
    }
    // Deep nesting around the lean reader's limit (100 levels in all), and past serde_json's
    // (128 for what it reads; it skips ignored values without a limit).
    let deep: Vec<(usize, String)> = [90, 94, 95, 96, 97, 98, 100, 110, 121, 124, 125, 200, 1000]
        .into_iter()
        .map(|d| (d, format!("{}1{}", "[".repeat(d), "]".repeat(d))))
        .collect();
    let deep_objects: Vec<(usize, String)> = [94, 95, 96, 97, 98, 120, 130]
        .into_iter()
        .map(|d| (d, format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d))))
        .collect();
    for (d, text) in deep.iter().chain(&deep_objects) {
        for pointer in [
            "/request/object/spec/template/x",
            "/request/object/spec/strategy/canary/steps/0/experiment",
            "/request/object/spec/strategy/canary/steps",
            "/request/object/spec/workloadRef",
            "/request/object/status/x",
            "/request/oldObject/spec/x",
            "/request/options/x",
            "/x",
        ] {
            cases.push((format!("{d} levels at {pointer}"), text, pointer.to_owned()));
        }
    }
    for (what, text, pointer) in &cases {
        for (how, body) in with_raw_at(&base, pointer, text) {
            assert!(
                serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok(),
                "{what}: serde_json refuses {}",
                show(&body)
            );
            same_everywhere(&policies, &body, &format!("{what}, {how}"));
        }
    }
}

/// Where a skipped value, a string with escapes or a multi-byte character falls against the
/// reader's 64-byte blocks does not change the answer.
#[test]
fn block_alignment_never_changes_the_answer() {
    let policies = &policies()[..2];
    let base = load_test_review();
    let awkward = [
        r#""\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"""#,
        r#"["\"", "\\", "\\\"", "\\\\\"", "[", "]", "{", "}", "\u005c", "\u0022"]"#,
        r#""ééééééééééééééééééééééééééééééééééééé😀😀😀😀😀😀😀😀😀""#,
        r#"{"}":"{","]":"[","\"":"\\"}"#,
    ];
    for pad in 0..=64 {
        let mut r = base.clone();
        let meta = "/request/object/metadata";
        set(
            &mut r,
            &format!("{meta}/labels/pad"),
            json!("p".repeat(pad)),
        );
        set(&mut r, &format!("{meta}/labels/skip"), json!(marker(0)));
        set(
            &mut r,
            &format!("{meta}/annotations/skip"),
            json!(marker(1)),
        );
        set(
            &mut r,
            "/request/object/spec/strategy/canary/steps/1/pause/duration",
            json!(marker(2)),
        );
        set(&mut r, "/request/options/skip", json!(marker(3)));
        let texts = [awkward[0], awkward[1], r#""5\u006d""#, awkward[3]];
        for (how, body) in serialisations(&r).into_iter().take(2) {
            let body = raw(&body, &texts);
            same_everywhere(policies, &body, &format!("pad {pad}, {how}"));
        }
        let mut r = base.clone();
        set(
            &mut r,
            "/request/object/metadata/labels/pad",
            json!("é".repeat(pad)),
        );
        set(
            &mut r,
            "/request/object/metadata/labels/skip",
            json!(marker(0)),
        );
        let body = raw(&api_server_order(&r), &[awkward[2]]);
        same_everywhere(policies, &body, &format!("pad é x {pad}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: the manifest corpus

/// Every Rollout and template of the corpus, embedded in a review as `request.object`:
/// created, updated and (Rollouts) written to `/status` by the controller.
#[test]
fn every_corpus_object_gets_the_reference_answer() {
    let objects = corpus_objects();
    let rollouts = objects
        .iter()
        .filter(|(_, o)| o["kind"] == "Rollout")
        .count();
    let templates = objects.len() - rollouts;
    assert!(
        rollouts >= 200 && templates >= 80,
        "{rollouts} Rollouts, {templates} templates"
    );
    // A store holding every corpus template (in `apps`) and Rollout, so references resolve
    // and template writes re-check the Rollouts that use them.
    let mut store = MemoryStore::new();
    for (_, o) in &objects {
        let mut o = o.clone();
        if o["metadata"].is_object() && o["kind"] != "ClusterAnalysisTemplate" {
            o["metadata"]["namespace"] = json!("apps");
        }
        match o["kind"].as_str() {
            Some("Rollout") => {
                if let Ok(r) = serde_json::from_value::<Rollout>(o) {
                    store.insert_rollout(r);
                }
            }
            Some("AnalysisTemplate") => {
                if let Ok(t) = serde_json::from_value::<AnalysisTemplate>(o) {
                    store.insert_template(t);
                }
            }
            _ => {
                if let Ok(t) = serde_json::from_value::<AnalysisTemplate>(o) {
                    store.insert_cluster_template(t);
                }
            }
        }
    }
    let corpus = Admission::new(
        policy(
            Mode::Enforce,
            "status,hold,fail-closed",
            ControllerVersion::DEFAULT,
        ),
        Arc::new(SharedStore::ready(store)),
    );
    let mut all = policies();
    all.truncate(3);
    all.push(("corpus enforce all guards", corpus));
    for (file, object) in &objects {
        let kind = object["kind"].as_str().unwrap();
        let mut reviews = vec![
            (
                "CREATE",
                review(kind, resource(kind), None, "CREATE", object, None),
            ),
            (
                "UPDATE",
                review(kind, resource(kind), None, "UPDATE", object, Some(object)),
            ),
        ];
        if kind == "Rollout" {
            let mut old = object.clone();
            old["status"] = json!({"currentStepIndex": 1, "stableRS": "a", "currentPodHash": "b",
                "pauseConditions": [{"reason": "InconclusiveAnalysisRun", "startTime": "2026-01-01T00:00:00Z"}]});
            let mut status = review(
                kind,
                "rollouts",
                Some("status"),
                "UPDATE",
                object,
                Some(&old),
            );
            status["request"]["userInfo"]["username"] = json!(CONTROLLER);
            reviews.push(("status", status));
        }
        for (op, r) in &reviews {
            for (how, body) in serialisations(r).into_iter().take(2) {
                same_everywhere(&all, &body, &format!("{file} {kind} {op}, {how}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: malformed bodies

/// The documented leniency: a skipped value is checked for structure only, so `[1 2]` in the
/// `oldObject` of a Rollout validation (which never reads it) passes the lean reader, where
/// serde_json refuses the whole body.
#[test]
fn a_malformed_value_the_webhook_skips_is_tolerated() {
    let a = load_test_admission(Mode::Warn, "auto", ControllerVersion::DEFAULT);
    let base = load_test_review();
    for (what, pointer, text) in [
        ("[1 2] in oldObject", "/request/oldObject/spec/x", "[1 2]"),
        (
            "{\"a\" 1} in oldObject",
            "/request/oldObject/metadata/labels",
            r#"{"a" 1}"#,
        ),
        ("[1 2] in options", "/request/options/x", "[1 2]"),
        ("[1,,] in the envelope", "/x", "[1,,]"),
        (
            "bare words in the old pod template",
            "/request/oldObject/spec/template/x",
            "[yes no]",
        ),
        (
            "[1 2] in the old managedFields",
            "/request/oldObject/metadata/managedFields",
            "[1 2]",
        ),
        (
            "mismatched brackets in oldObject",
            "/request/oldObject/spec/x",
            "[1}",
        ),
        (
            "control character between tokens",
            "/request/options/x",
            "[1,\u{1}2]",
        ),
    ] {
        for (how, body) in with_raw_at(&base, pointer, text) {
            let lean = a.review(Endpoint::Validate, &body);
            let reference = a.review_reference(Endpoint::Validate, &body);
            assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err());
            assert_eq!(reference.status, 400, "{what}, {how}");
            assert_eq!(lean.status, 200, "{what}, {how}: {}", show(&lean.body));
            // The answer is the one for the same review without the malformation.
            let clean = a.review(Endpoint::Validate, &load_test_bytes());
            assert_eq!(
                (lean.outcome, lean.body),
                (clean.outcome, clean.body),
                "{what}"
            );
            // What the fuzz oracle allows: the body's structure holds.
            assert!(json::from_slice::<serde::de::IgnoredAny>(&body).is_ok());
        }
    }
}

/// Bodies broken where the webhook reads (or broken in their structure) get a 400 from both
/// readers, on both endpoints.
#[test]
fn a_malformed_value_the_webhook_reads_is_a_400_from_both() {
    let policies = policies();
    let base = load_test_review();
    let ordered = String::from_utf8(api_server_order(&base)).unwrap();
    let mut broken: Vec<(String, Vec<u8>)> = vec![
        (
            "duplicate uid".into(),
            ordered
                .replacen(r#""uid":"#, r#""uid":"x","uid":"#, 1)
                .into(),
        ),
        (
            "duplicate uid after the object".into(),
            ordered
                .replacen(r#","dryRun":"#, r#","uid":"x","dryRun":"#, 1)
                .into(),
        ),
        (
            "duplicate object".into(),
            ordered
                .replacen(r#""object":"#, r#""object":null,"object":"#, 1)
                .into(),
        ),
        (
            "duplicate operation".into(),
            ordered
                .replacen(r#""operation":"#, r#""operation":"CREATE","operation":"#, 1)
                .into(),
        ),
        (
            "duplicate request".into(),
            ordered
                .replacen(r#""request":"#, r#""request":null,"request":"#, 1)
                .into(),
        ),
        (
            "trailing garbage".into(),
            format!("{ordered} trailing").into(),
        ),
        ("two documents".into(), format!("{ordered}{ordered}").into()),
        (
            "trailing comma".into(),
            format!("{},}}", &ordered[..ordered.len() - 1]).into(),
        ),
        ("empty".into(), Vec::new()),
        ("whitespace".into(), b" \n".to_vec()),
        ("not JSON".into(), b"apiVersion: v1".to_vec()),
        ("a string".into(), br#""AdmissionReview""#.to_vec()),
        ("an array".into(), b"[]".to_vec()),
        ("null".into(), b"null".to_vec()),
        (
            "BOM".into(),
            [b"\xef\xbb\xbf".as_slice(), ordered.as_bytes()].concat(),
        ),
        (
            "raw control character in the uid".into(),
            ordered.replacen(r#""uid":""#, "\"uid\":\"\u{1}", 1).into(),
        ),
    ];
    let mut invalid_utf8 = ordered.clone().into_bytes();
    let at = ordered.find(r#""uid":""#).unwrap() + 7;
    invalid_utf8.insert(at, 0xff);
    broken.push(("invalid UTF-8 in the uid bytes".into(), invalid_utf8));
    let read_breaks: Vec<(&str, &str, &str)> = vec![
        (
            "invalid escape inside spec.strategy",
            "/request/object/spec/strategy/canary/steps/1/pause/duration",
            r#""5\qm""#,
        ),
        (
            "short \\u escape inside spec.strategy",
            "/request/object/spec/strategy/canary/steps/1/pause/duration",
            r#""5\u00m""#,
        ),
        (
            "invalid escape in a strategy key",
            "/request/object/spec/strategy/canary/steps/1",
            r#"{"pau\se":{}}"#,
        ),
        (
            "raw control character in the name",
            "/request/object/metadata/name",
            "\"check\u{1}out\"",
        ),
        ("invalid escape in the uid", "/request/uid", r#""a\x""#),
        ("lone surrogate uid", "/request/uid", r#""\ud800""#),
        (
            "missing comma in the envelope",
            "/request/dryRun",
            "false \"x\": 1",
        ),
        ("bare word in the request", "/request/dryRun", "maybe"),
        ("truncated literal", "/request/dryRun", "fals"),
        (
            "unclosed skipped array",
            "/request/object/spec/template/x",
            "[1, 2",
        ),
        (
            "extra closing bracket",
            "/request/object/spec/template/x",
            "[1, 2]]",
        ),
        (
            "unterminated skipped string",
            "/request/object/spec/template/x",
            "\"abc",
        ),
        (
            "raw control character in a skipped string",
            "/request/object/metadata/labels/x",
            "\"a\u{1}b\"",
        ),
        (
            "raw newline in a skipped string",
            "/request/options/x",
            "\"a\nb\"",
        ),
        (
            "raw tab in a skipped key",
            "/request/oldObject/metadata/labels",
            "{\"a\tb\":1}",
        ),
        (
            "invalid escape in a skipped string",
            "/request/options/x",
            r#""\a""#,
        ),
        (
            "short \\u escape in a skipped string",
            "/request/oldObject/metadata/labels/x",
            r#""\u12""#,
        ),
        (
            "invalid escape in the old object",
            "/request/oldObject/spec/x",
            r#"["\z"]"#,
        ),
        (
            "backslash outside a string",
            "/request/oldObject/spec/x",
            r#"[1, \ 2]"#,
        ),
    ];
    for (what, pointer, text) in read_breaks {
        for (how, body) in with_raw_at(&base, pointer, text) {
            broken.push((format!("{what}, {how}"), body));
        }
    }
    // Grammar errors the structure check lets through, where the Rollout view reads them in
    // the envelope pass (validating, `operation` before `object`); elsewhere see
    // `a_malformed_object_read_after_the_envelope_pass_is_a_400`.
    let mut grammar: Vec<(String, Vec<u8>)> = Vec::new();
    for (pointer, texts) in GRAMMAR_BREAKS {
        for text in *texts {
            let mut r = base.clone();
            set(&mut r, pointer, json!(marker(0)));
            grammar.push((
                format!("{text} at {pointer}"),
                raw(&api_server_order(&r), &[text]),
            ));
        }
    }
    for (what, body) in &grammar {
        assert!(serde_json::from_slice::<Value>(body).is_err(), "{what}");
        for (name, a) in &policies {
            let reply = same(a, Endpoint::Validate, body, &format!("{what} [{name}]"));
            assert_eq!(reply.status, 400, "{what} [{name}]");
        }
    }
    // A truncated body, cut anywhere (every byte near the ends, every 7th in between).
    let whole = load_test_bytes();
    let cuts = (0..whole.len())
        .filter(|&i| i < 300 || i + 300 > whole.len() || i % 7 == 0)
        .collect::<Vec<_>>();
    for cut in cuts {
        broken.push((format!("cut at {cut}"), whole[..cut].to_vec()));
    }
    for (what, body) in &broken {
        // (serde_json reads a `Value` with duplicate keys; the derives refuse them.)
        assert!(
            serde_json::from_slice::<Value>(body).is_err()
                || !body.starts_with(b"{")
                || what.starts_with("duplicate"),
            "{what}: serde_json accepts this"
        );
        let statuses = same_everywhere(&policies[..2], body, what);
        assert!(statuses.iter().all(|s| *s == 400), "{what}: {statuses:?}");
    }
}

/// A body with invalid UTF-8 inside a skipped string: serde_json skips such strings without
/// checking them and answers; the lean reader refuses the body and leaves it to serde_json, so
/// the answers are the same.
#[test]
fn invalid_utf8_in_a_skipped_string_gets_the_reference_answer() {
    let policies = policies();
    let base = load_test_review();
    for pointer in [
        "/request/options/x",
        "/x",
        "/request/object/metadata/labels/x",
    ] {
        let mut r = base.clone();
        set(&mut r, pointer, json!(marker(0)));
        let body = api_server_order(&r);
        let text = String::from_utf8(body).unwrap();
        let at = text.find(&marker(0)).unwrap();
        let mut bytes = text.into_bytes();
        bytes[at] = 0xff;
        bytes[at + 1] = 0xfe;
        assert!(json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err());
        same_everywhere(&policies, &bytes, &format!("invalid UTF-8 at {pointer}"));
    }
}

/// The contract for bodies serde_json refuses: the lean path may answer 200 only when the
/// malformation lies in a value the webhook skips. An `object` (or `oldObject`) that the
/// envelope pass kept raw (skipped, structure only) is read afterwards: its view through
/// `view()` (lean reader, then serde_json for the error), the whole object as a `Value` by
/// serde_json when a guard patches. Where that read meets the malformation (`/mutate`,
/// template validation, a Rollout validation whose `operation` comes after `object`, the
/// status guard's old object), the review is answered 200 with "could not read the ...; it was
/// not checked" and no check or guard; serde_json alone answers 400 (the API server then
/// applies the failurePolicy).
#[test]
fn a_malformed_object_read_after_the_envelope_pass_is_a_400() {
    let mut failures = Vec::new();
    let mut cases = 0;
    // The smallest: a Rollout created on /mutate with `[1 2]` where the view reads.
    let a = web_admission(Mode::Warn, "auto", ControllerVersion::DEFAULT);
    let minimal: [&[u8]; 2] = [
        br#"{"request":{"uid":"u","kind":{"group":"argoproj.io","kind":"Rollout"},"operation":"CREATE","object":{"spec":{"replicas":[1 2]}}}}"#,
        // What the strict fuzz run minimised to: a raw NUL between tokens of `object`.
        b"{\"request\":{\"uid\":\"4\",\"kind\":{\"group\":\"argoproj.io\",\"kind\":\"Rollout\"},\"operation\":\"CREATE\",\"object\":{\0}}}",
    ];
    for body in minimal {
        for endpoint in ENDPOINTS {
            cases += 1;
            let (lean, reference) = (a.review(endpoint, body), a.review_reference(endpoint, body));
            assert_eq!(reference.status, 400);
            if lean.status != 400 {
                failures.push(format!(
                    "minimal, {endpoint:?}: {} {}",
                    lean.status,
                    show(&lean.body)
                ));
            }
        }
    }
    for (what, a, endpoint, review, pointer) in malformed_object_cases() {
        for text in ["[1 2]", "[1,]", "{\"a\" 1}", "06", "[1}"] {
            let mut r = review.clone();
            set(&mut r, pointer, json!(marker(0)));
            for (how, body) in [
                ("api order", raw(&api_server_order(&r), &[text])),
                ("sorted", raw(&serde_json::to_vec(&r).unwrap(), &[text])),
            ] {
                cases += 1;
                let lean = a.review(endpoint, &body);
                let reference = a.review_reference(endpoint, &body);
                assert_eq!(reference.status, 400, "{what}, {how}");
                if lean.status != 400 {
                    failures.push(format!(
                        "{what}, {text}, {how}: {} {}",
                        lean.status,
                        show(&lean.body)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Values with a grammar error that the structure check of a skipped value lets through,
/// placed where the webhook reads.
const GRAMMAR_BREAKS: &[(&str, &[&str])] = &[
    (
        "/request/object/spec/replicas",
        &["06", "-", ".5", "+5", "NaN", "1.", "1e", "tru", "nul"],
    ),
    (
        "/request/object/spec/strategy/canary/steps",
        &[
            "[1 2]",
            "[{}{}]",
            "[,]",
            "[1,]",
            "[{\"setWeight\" 10}]",
            "[1}",
        ],
    ),
    (
        "/request/object/spec/strategy/canary/steps/1/pause",
        &["{\"duration\":\"5m\",}", "{,}", "{\"duration\"}", "{1:2}"],
    ),
    (
        "/request/object/metadata/annotations",
        &[
            "{\"rollout-guard.io/mode\":\"enforce\" \"x\":1}",
            "{\"rollout-guard.io/mode\" \"off\"}",
        ],
    ),
];

/// Reviews whose `object` or `oldObject` the webhook reads with serde_json after the
/// envelope pass, and where in them to put a malformation.
fn malformed_object_cases() -> Vec<(&'static str, Admission, Endpoint, Value, &'static str)> {
    let base = load_test_review();
    let steps = "/request/object/spec/strategy/canary/steps";
    let mut status = base.clone();
    status["request"]["subResource"] = json!("status");
    status["request"]["userInfo"]["username"] = json!(CONTROLLER);
    status["request"]["oldObject"]["status"]["pauseConditions"] =
        json!([{"reason": "InconclusiveAnalysisRun", "startTime": "2026-11-20T09:10:00Z"}]);
    let mut template = base.clone();
    template["request"]["kind"]["kind"] = json!("AnalysisTemplate");
    template["request"]["object"] = reviews::template_web();
    let warn = || load_test_admission(Mode::Warn, "status,hold", ControllerVersion::DEFAULT);
    let enforce = || load_test_admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT);
    vec![
        (
            "Rollout steps on /mutate",
            warn(),
            Endpoint::Mutate,
            base.clone(),
            steps,
        ),
        (
            "Rollout steps on /validate (enforce)",
            enforce(),
            Endpoint::Validate,
            base.clone(),
            steps,
        ),
        (
            "template metrics on /validate",
            enforce(),
            Endpoint::Validate,
            template.clone(),
            "/request/object/spec/metrics",
        ),
        (
            "template metrics on /mutate",
            load_test_admission(Mode::Warn, "fail-closed", ControllerVersion::DEFAULT),
            Endpoint::Mutate,
            template,
            "/request/object/spec/metrics",
        ),
        (
            "old status on a controller /status write",
            warn(),
            Endpoint::Mutate,
            status,
            "/request/oldObject/status/conditions",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tests: the views, reader against reader

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

/// Reads a view of `text` with both readers: the same view (by its `Debug` text) or the lean
/// reader leaves it to serde_json, which it may only do for floats (and deep nesting, which
/// these texts do not have). Returns whether the lean reader read it.
fn same_view<'a, T: serde::Deserialize<'a> + std::fmt::Debug>(
    text: &'a str,
    floats: bool,
    what: &str,
) -> bool {
    let lean = json::from_slice::<T>(text.as_bytes());
    let reference = serde_json::from_str::<T>(text);
    match (&lean, &reference) {
        (Ok(l), Ok(r)) => assert_eq!(format!("{l:?}"), format!("{r:?}"), "{what}"),
        (Ok(l), Err(e)) => {
            panic!("{what}: the lean reader reads what serde_json refuses ({e}): {l:?}")
        }
        (Err(e), Ok(_)) => assert!(
            floats,
            "{what}: the lean reader gives up ({e}) without a float"
        ),
        (Err(_), Err(_)) => {}
    }
    lean.is_ok()
}

/// The views the rules read, straight from an object's JSON text, by the lean reader and by
/// serde_json. `review_reference` cannot show this on its own: both it and `review` read the
/// views of objects kept raw through the same lean-first `view()` (since e9ec1fc), so only the
/// envelope pass differs between them.
#[test]
fn views_read_by_both_readers_are_the_same() {
    let mut objects: Vec<(String, Value)> = corpus_objects();
    let base = load_test_review();
    objects.push(("load-test object".into(), base["request"]["object"].clone()));
    objects.push((
        "load-test old object".into(),
        base["request"]["oldObject"].clone(),
    ));
    objects.push(("dangerous rollout".into(), dangerous_rollout()));
    objects.push(("web template".into(), template_web()));
    // Every object with each read field given an awkward value.
    let mut edited = Vec::new();
    for (what, o) in &objects {
        for (pointer, value) in [
            ("/spec/strategy/canary/steps/0/setWeight", json!(20.0)),
            ("/spec/strategy/canary/steps/0/setWeight", json!(u64::MAX)),
            ("/spec/strategy/canary/steps/0/setWeight", json!("2\"0")),
            ("/spec/replicas", json!(i64::MIN)),
            ("/spec/replicas", json!("6")),
            (
                "/metadata/annotations",
                json!({"rollout-guard.io/mode": 5, "x": [1.5]}),
            ),
            ("/metadata/annotations", Value::Null),
            ("/metadata/name", json!("ünï\u{1}\"\\")),
            ("/spec/metrics/0/count", json!(-0.0)),
            (
                "/spec/metrics/0/provider",
                json!({"kayenta": {"threshold": {"pass": 90.5}}}),
            ),
            ("/spec/metrics/0/successCondition", json!(["result"])),
            (
                "/status",
                json!({"pauseConditions": null, "currentStepIndex": "1"}),
            ),
        ] {
            let mut o = o.clone();
            if let Some((parent, _)) = pointer.rsplit_once('/')
                && o.pointer(parent).is_some_and(Value::is_object)
            {
                set(&mut o, pointer, value);
                edited.push((format!("{what} with {pointer}"), o));
            }
        }
    }
    objects.extend(edited);
    let (mut read, mut total) = (0, 0);
    for (what, o) in &objects {
        let floats = has_float(o);
        for text in [
            serde_json::to_string(o).unwrap(),
            serde_json::to_string_pretty(o).unwrap(),
        ] {
            total += 2;
            read += usize::from(same_view::<Rollout>(&text, floats, what));
            read += usize::from(same_view::<AnalysisTemplate>(&text, floats, what));
        }
    }
    assert!(
        read * 4 > total * 3,
        "the lean reader read only {read} of {total} views"
    );
}
