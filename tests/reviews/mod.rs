//! Admission reviews for the integration tests, built on the captured GKE envelope. Each test
//! binary includes this module with `mod reviews;` and uses part of it.
#![allow(dead_code)]

use serde_json::{Value, json};

/// The Argo controller's identity in a default install.
pub const CONTROLLER: &str = "system:serviceaccount:argo-rollouts:argo-rollouts";

const ENVELOPE: &str = include_str!("../fixtures/admission/gke_pod_create_admissionreview_v1.json");

/// The captured GKE AdmissionReview (its uid, userInfo, options and field order).
pub fn envelope() -> Value {
    serde_json::from_str(ENVELOPE).unwrap()
}

/// A review of `object` (and `old`) in namespace `apps` on the captured envelope, with the
/// `argoproj.io/v1alpha1` kind and resource.
pub fn review(
    kind: &str,
    resource: &str,
    sub: Option<&str>,
    op: &str,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let mut r = envelope();
    let req = r["request"].as_object_mut().unwrap();
    let gvk = json!({"group": "argoproj.io", "version": "v1alpha1", "kind": kind});
    let gvr = json!({"group": "argoproj.io", "version": "v1alpha1", "resource": resource});
    req.insert("kind".into(), gvk.clone());
    req.insert("requestKind".into(), gvk);
    req.insert("resource".into(), gvr.clone());
    req.insert("requestResource".into(), gvr);
    if let Some(s) = sub {
        req.insert("subResource".into(), json!(s));
        req.insert("requestSubResource".into(), json!(s));
    }
    req.insert("name".into(), object["metadata"]["name"].clone());
    req.insert("namespace".into(), json!("apps"));
    req.insert("operation".into(), json!(op));
    req.insert("object".into(), object.clone());
    req.insert("oldObject".into(), old.cloned().unwrap_or(Value::Null));
    r
}

/// A web metric with both conditions: can end Inconclusive.
pub fn template_web() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "web-check", "namespace": "apps"},
        "spec": {"metrics": [{"name": "web", "interval": "10s",
            "successCondition": "result.ok == true", "failureCondition": "result.ok == false",
            "provider": {"web": {"url": "http://svc/health"}}}]}})
}

/// A Rollout whose timed pauses can run into an Inconclusive background analysis of
/// [`template_web`] (D1).
pub fn dangerous_rollout() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "shop", "namespace": "apps", "annotations": {"team": "payments"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "c", "image": "shop:2"}]}},
            "strategy": {"canary": {
                "analysis": {"templates": [{"templateName": "web-check"}], "startingStep": 1},
                "steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}, {"pause": {"duration": 120}}]}}}})
}

/// The review as the API server writes it: `request`'s fields in the order of Go's
/// `AdmissionRequest` (serialising a `Value` sorts keys, which puts `operation` after
/// `object`), unknown request fields last.
pub fn api_server_order(review: &Value) -> Vec<u8> {
    const ORDER: [&str; 15] = [
        "uid",
        "kind",
        "resource",
        "subResource",
        "requestKind",
        "requestResource",
        "requestSubResource",
        "name",
        "namespace",
        "operation",
        "userInfo",
        "object",
        "oldObject",
        "dryRun",
        "options",
    ];
    let Some(req) = review["request"].as_object() else {
        return serde_json::to_vec(review).unwrap();
    };
    let fields: Vec<String> = ORDER
        .iter()
        .map(|k| k.to_string())
        .chain(req.keys().filter(|k| !ORDER.contains(&k.as_str())).cloned())
        .filter_map(|k| req.get(&k).map(|v| format!("{}:{v}", json!(k))))
        .collect();
    let mut top: Vec<String> = vec![
        r#""kind":"AdmissionReview""#.into(),
        r#""apiVersion":"admission.k8s.io/v1""#.into(),
    ];
    if let Some(o) = review.as_object() {
        for (k, v) in o {
            if !["kind", "apiVersion", "request"].contains(&k.as_str()) {
                top.push(format!("{}:{v}", json!(k)));
            }
        }
    }
    top.push(format!(r#""request":{{{}}}"#, fields.join(",")));
    format!("{{{}}}", top.join(",")).into_bytes()
}
