//! The README shows real output: each block after a `<!-- readme-test: NAME -->` marker is
//! compared with what the code produces for the manifests in `docs/examples/`, so the text a
//! user reads in the walk-through is the text the server (or `check`) really prints.

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
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ROLLOUT_FILE: &str = "docs/examples/shop-rollout.yaml";

/// The body of the first fenced block after `<!-- readme-test: name -->`, without the
/// command line (`$ ...`).
fn block(name: &str) -> (String, String) {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let marker = format!("<!-- readme-test: {name} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[..body.find("```").unwrap()];
    let (command, output) = body.split_once('\n').unwrap();
    (
        command.trim_start_matches("$ ").to_owned(),
        output.to_owned(),
    )
}

fn yaml(file: &str) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap()).unwrap()
}

fn admission(mode: Mode, guards: &str) -> Admission {
    let mut store = MemoryStore::new();
    let mut t: AnalysisTemplate =
        serde_json::from_value(yaml("docs/examples/success-rate-template.yaml")).unwrap();
    t.metadata.namespace = Some("shop".into());
    store.insert_template(t);
    let version = ControllerVersion::DEFAULT;
    let policy = Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: "system:serviceaccount:argo-rollouts:argo-rollouts".into(),
    };
    Admission::new(policy, Arc::new(SharedStore::ready(store)))
}

/// A server-side dry-run CREATE of `object` in namespace `shop`, as kubectl sends it.
fn review(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "5f1c0a4e-1d7b-4f0e-9a53-2b0e6c1e7d10",
            "kind": {"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout"},
            "resource": {"group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts"},
            "name": "shop", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "alice@example.com"},
            "object": object, "oldObject": null, "dryRun": true}
    }))
    .unwrap()
}

fn answer(a: &Admission, endpoint: Endpoint, object: &Value) -> Value {
    serde_json::from_slice(&a.review(endpoint, &review(object)).body).unwrap()
}

/// What kubectl prints: mutating warnings, then validating ones on the mutated object, then
/// the result line or the denial.
fn kubectl_apply(mode: Mode, guards: &str, object: Value) -> String {
    let a = admission(mode, guards);
    let mut out = String::new();
    let mutated = answer(&a, Endpoint::Mutate, &object);
    let mut object = object;
    for w in mutated["response"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("Warning: {}\n", w.as_str().unwrap()));
    }
    if let Some(patch) = mutated["response"]["patch"].as_str() {
        let ops: json_patch::Patch = serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(patch)
                .unwrap(),
        )
        .unwrap();
        json_patch::patch(&mut object, &ops).unwrap();
    }
    let validated = answer(&a, Endpoint::Validate, &object);
    for w in validated["response"]["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("Warning: {}\n", w.as_str().unwrap()));
    }
    if validated["response"]["allowed"] == false {
        // What kubectl prints for the API server's error (k8s.io/kubectl cmd/util checkErr):
        // the API server keeps the webhook's status and prefixes the message; `apply` adds
        // the source; reason Invalid without details reads "The request is invalid: ...",
        // any other reason "Error from server (Reason): ...".
        let status = &validated["response"]["status"];
        let error = format!(
            "error when creating \"{ROLLOUT_FILE}\": admission webhook \"validate.rollout-guard.io\" denied the request: {}",
            status["message"].as_str().unwrap()
        );
        let line = match status["reason"].as_str() {
            Some("Invalid") if status.get("details").is_none() => {
                format!("The request is invalid: {error}")
            }
            Some(reason) => format!("Error from server ({reason}): {error}"),
            None => format!("Error from server: {error}"),
        };
        out.push_str(&line);
        out.push('\n');
    } else {
        out.push_str("rollout.argoproj.io/shop created (server dry run)\n");
    }
    out
}

/// Compares a README block with the real output. `README_UPDATE=1 cargo test --test readme`
/// rewrites the blocks instead (then review the diff).
fn assert_block(name: &str, actual: &str) {
    let (command, expected) = block(name);
    if std::env::var_os("README_UPDATE").is_some() && expected != actual {
        let path = format!("{ROOT}/README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let old = format!("$ {command}\n{expected}```");
        let new = format!("$ {command}\n{actual}```");
        std::fs::write(&path, readme.replacen(&old, &new, 1)).unwrap();
        return;
    }
    assert_eq!(
        expected, actual,
        "README block `{name}` is stale; the code prints:\n{actual}"
    );
}

#[test]
fn check_output_in_the_readme_is_real() {
    let (command, _) = block("check");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-guard"))
        .current_dir(ROOT)
        .args(&args)
        .output()
        .unwrap();
    assert_block("check", &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn warn_mode_walkthrough_is_real() {
    assert_block(
        "warn",
        &kubectl_apply(Mode::Warn, "auto", yaml(ROLLOUT_FILE)),
    );
}

#[test]
fn enforce_mode_walkthrough_is_real() {
    assert_block(
        "deny",
        &kubectl_apply(Mode::Enforce, "auto", yaml(ROLLOUT_FILE)),
    );
}

#[test]
fn hold_guard_walkthrough_is_real() {
    let mut rollout = yaml(ROLLOUT_FILE);
    rollout["metadata"]["annotations"] = json!({"rollout-guard.io/guards": "status,hold"});
    assert_block("hold", &kubectl_apply(Mode::Warn, "auto", rollout));
}
