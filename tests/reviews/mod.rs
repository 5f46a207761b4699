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
