//! What every admission answer must satisfy, whatever the body: the checks the fuzz targets
//! share. A failed check panics, which libFuzzer reports as a crash with the input.
//!
//! The rules come from WEBHOOK.md: HTTP 200 with an AdmissionReview echoing the uid for every
//! readable review (400 only for bodies that are not reviews), a patch only on the mutating
//! endpoint, only for CREATE/UPDATE, as base64 of an RFC 6902 patch that applies to the
//! request's `object`, and warnings the API server passes on intact.

use std::sync::Arc;

use base64::Engine as _;
use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::SharedStore;
use rollout_guard::cli::Mode;
use rollout_guard::guards::GuardSet;
use rollout_guard::model::AnalysisTemplate;
use rollout_guard::review::{Endpoint, Reviewer};
use rollout_guard::templates::MemoryStore;
use rollout_guard::version::ControllerVersion;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub const CONTROLLER: &str = "system:serviceaccount:argo-rollouts:argo-rollouts";
pub const NAMESPACE: &str = "apps";

/// Templates in the store: a condition provider that can end Inconclusive, a Kayenta metric
/// with `marginal < pass`, a nested template and a ClusterAnalysisTemplate.
pub fn templates() -> Vec<Value> {
    vec![
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "web-check", "namespace": NAMESPACE},
            "spec": {"args": [{"name": "host", "value": "svc"}],
                "metrics": [{"name": "web", "interval": "10s",
                "successCondition": "result.ok == true", "failureCondition": "result.ok == false",
                "provider": {"web": {"url": "http://{{args.host}}/health"}}}]}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "kayenta-check", "namespace": NAMESPACE},
            "spec": {"metrics": [{"name": "kayenta", "interval": "1m", "count": 3,
                "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": 75}}}}]}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "nested", "namespace": NAMESPACE},
            "spec": {"templates": [{"templateName": "web-check"}, {"templateName": "cluster-check", "clusterScope": true}]}}),
    ]
}

pub fn cluster_template() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterAnalysisTemplate",
        "metadata": {"name": "cluster-check"},
        "spec": {"metrics": [{"name": "errors", "interval": "30s", "inconclusiveLimit": 1,
            "successCondition": "result[0] < 0.01", "failureCondition": "result[0] > 0.05",
            "provider": {"prometheus": {"address": "http://prom", "query": "errors"}}}]}})
}

/// A D1 Rollout: background analysis with timed pauses after the starting step.
pub fn seed_rollout() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": NAMESPACE, "annotations": {"team": "payments"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "c", "image": "shop:2"}]}},
            "strategy": {"canary": {
                "analysis": {"templates": [{"templateName": "web-check"}], "startingStep": 1},
                "steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}, {"pause": {"duration": 120}}]}}}})
}

/// An admission reviewer for one of 16 policies (mode × guards × controller version).
pub fn admission(config: u8) -> Admission {
    let mut store = MemoryStore::new();
    for t in templates() {
        store.insert_template(serde_json::from_value::<AnalysisTemplate>(t).unwrap());
    }
    store.insert_cluster_template(serde_json::from_value(cluster_template()).unwrap());
    store.insert_rollout(serde_json::from_value(seed_rollout()).unwrap());
    let mode = if config & 1 == 0 {
        Mode::Warn
    } else {
        Mode::Enforce
    };
    let version = if config & 2 == 0 {
        ControllerVersion::DEFAULT
    } else {
        ControllerVersion::new(1, 8, 1)
    };
    let guards = match (config >> 2) & 3 {
        0 => "auto",
        1 => "hold",
        2 => "status,fail-closed",
        _ => "status,hold,fail-closed",
    };
    let policy = Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Admission::new(policy, Arc::new(SharedStore::ready(store)))
}

/// An envelope like the API server's, around `object` (and `old`).
#[allow(clippy::too_many_arguments)]
pub fn review(
    uid: &str,
    kind: &str,
    sub: Option<&str>,
    op: &str,
    user: &str,
    object: &Value,
    old: Option<&Value>,
    dry_run: bool,
) -> Value {
    let resource = match kind {
        "Rollout" => "rollouts",
        "AnalysisTemplate" => "analysistemplates",
        _ => "clusteranalysistemplates",
    };
    let gvk = json!({"group": "argoproj.io", "version": "v1alpha1", "kind": kind});
    let gvr = json!({"group": "argoproj.io", "version": "v1alpha1", "resource": resource});
    let mut req = json!({
        "uid": uid, "kind": gvk, "requestKind": gvk, "resource": gvr, "requestResource": gvr,
        // The API server always sends a string (or nothing, for generateName).
        "name": object.pointer("/metadata/name").filter(|n| n.is_string()).cloned().unwrap_or(Value::Null),
        "namespace": NAMESPACE, "operation": op,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": object, "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": dry_run, "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    });
    if let Some(s) = sub {
        req["subResource"] = json!(s);
        req["requestSubResource"] = json!(s);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// The request fields the checks need, read the way the reviewer reads them (unknown fields
/// ignored, `object` kept raw).
#[derive(Deserialize)]
struct LeanReview {
    request: LeanRequest,
}

#[derive(Deserialize)]
struct LeanRequest {
    uid: String,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    object: Option<Box<RawValue>>,
}

/// What one answer said, after every check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: u16,
    pub allowed: Option<bool>,
    pub warnings: Vec<String>,
    /// The decoded RFC 6902 patch.
    pub patch: Option<Value>,
    /// The request's `object` with the patch applied.
    pub patched: Option<Value>,
    pub body: Vec<u8>,
}

/// Reviews `body` on `endpoint` and checks everything the API server relies on. Panics (a
/// fuzzer crash) when a rule is broken.
pub fn review_and_check(a: &Admission, endpoint: Endpoint, body: &[u8]) -> Verdict {
    let reply = a.review(endpoint, body);
    assert!(
        reply.status == 200 || reply.status == 400,
        "status {}",
        reply.status
    );
    let again = a.review(endpoint, body);
    assert_eq!(
        (again.status, &again.body),
        (reply.status, &reply.body),
        "same body, different answer"
    );
    let out: Value = serde_json::from_slice(&reply.body).expect("the answer is JSON");
    if reply.status == 400 {
        assert!(out.get("error").and_then(Value::as_str).is_some(), "{out}");
        return Verdict {
            status: 400,
            allowed: None,
            warnings: Vec::new(),
            patch: None,
            patched: None,
            body: reply.body,
        };
    }
    let request = serde_json::from_slice::<LeanReview>(body)
        .expect("a 200 answers a readable review")
        .request;
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    let response = &out["response"];
    assert_eq!(
        response["uid"].as_str(),
        Some(request.uid.as_str()),
        "uid echoed"
    );
    let allowed = response["allowed"].as_bool().expect("allowed is a bool");
    if !allowed {
        let code = response["status"]["code"]
            .as_u64()
            .expect("a denial has a code");
        assert!(code >= 400, "denial code {code}");
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "a denial says why");
    }
    let warnings = check_warnings(response);

    let patch = response.get("patch").map(|p| {
        let encoded = p.as_str().expect("patch is a base64 string");
        assert_eq!(
            response["patchType"], "JSONPatch",
            "patch without patchType"
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("patch is base64");
        serde_json::from_slice::<Value>(&bytes).expect("patch is JSON")
    });
    if patch.is_none() {
        assert!(
            response.get("patchType").is_none(),
            "patchType without patch"
        );
    }
    let patched = patch.as_ref().map(|patch| {
        assert_eq!(
            endpoint,
            Endpoint::Mutate,
            "a validating answer carries a patch"
        );
        assert!(allowed, "a denial carries a patch");
        let op = request.operation.as_deref().unwrap_or_default();
        assert!(op == "CREATE" || op == "UPDATE", "a patch on {op}");
        let ops: json_patch::Patch =
            serde_json::from_value(patch.clone()).expect("patch is RFC 6902");
        assert!(!ops.0.is_empty(), "an empty patch is sent as no patch");
        let raw = request.object.as_ref().expect("a patch needs an object");
        let mut object: Value = serde_json::from_str(raw.get()).expect("object is JSON");
        json_patch::patch(&mut object, &ops).expect("the patch applies to the object");
        object
    });
    Verdict {
        status: 200,
        allowed: Some(allowed),
        warnings,
        patch,
        patched,
        body: reply.body,
    }
}

/// WEBHOOK.md: one line each, no control characters, at most 256 characters each and 4096 in
/// total, no exact duplicates (the API server drops them).
pub fn check_warnings(response: &Value) -> Vec<String> {
    let Some(list) = response.get("warnings") else {
        return Vec::new();
    };
    let list: Vec<String> = list
        .as_array()
        .expect("warnings is an array")
        .iter()
        .map(|w| w.as_str().expect("a warning is a string").to_owned())
        .collect();
    assert!(!list.is_empty(), "warnings present but empty");
    let mut total = 0;
    for (i, w) in list.iter().enumerate() {
        assert!(!w.is_empty(), "empty warning");
        assert!(!w.chars().any(char::is_control), "control character: {w:?}");
        assert!(w.len() <= 256, "warning of {} bytes: {w:?}", w.len());
        assert!(!list[..i].contains(w), "duplicate warning {w:?}");
        total += w.len();
    }
    assert!(total <= 4096, "warnings total {total} bytes");
    list
}
