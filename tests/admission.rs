//! The admission answer as the API server reads it: reviews built on a real captured envelope,
//! decoded back from the wire, patches applied back to the object (and cross-checked with
//! `kubectl patch --local` when kubectl is installed), idempotence of every guard.

use std::sync::Arc;

use base64::Engine as _;
use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::SharedStore;
use rollout_guard::cli::Mode;
use rollout_guard::guards::GuardSet;
use rollout_guard::model::AnalysisTemplate;
use rollout_guard::review::{Endpoint, Outcome, Reviewer};
use rollout_guard::templates::MemoryStore;
use rollout_guard::version::ControllerVersion;
use serde_json::{Value, json};

mod reviews;

use reviews::{CONTROLLER, api_server_order, dangerous_rollout, review, template_web};

fn as_user(mut r: Value, user: &str) -> Value {
    r["request"]["userInfo"]["username"] = json!(user);
    r
}

fn admission(
    mode: Mode,
    guards: &str,
    version: ControllerVersion,
    rollouts: &[Value],
) -> Admission {
    admission_over(mode, guards, version, &[template_web()], rollouts)
}

/// An Admission over exactly these templates and Rollouts.
fn admission_over(
    mode: Mode,
    guards: &str,
    version: ControllerVersion,
    templates: &[Value],
    rollouts: &[Value],
) -> Admission {
    let mut store = MemoryStore::new();
    for t in templates {
        store.insert_template(serde_json::from_value::<AnalysisTemplate>(t.clone()).unwrap());
    }
    for r in rollouts {
        store.insert_rollout(serde_json::from_value(r.clone()).unwrap());
    }
    let policy = Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Admission::new(policy, Arc::new(SharedStore::ready(store)))
}

/// `template_web` without its failureCondition: a metric that can no longer end Inconclusive.
fn safe_template() -> Value {
    let mut safe = template_web();
    safe["spec"]["metrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("failureCondition");
    safe
}

/// `template` with a second metric whose limit Argo refuses (`inconclusiveLimit: -1`): a
/// deny-class finding that no guard touches.
fn with_refused_limit(mut template: Value) -> Value {
    let mut limits = template["spec"]["metrics"][0].clone();
    limits["name"] = json!("limits");
    limits["inconclusiveLimit"] = json!(-1);
    template["spec"]["metrics"]
        .as_array_mut()
        .unwrap()
        .push(limits);
    template
}

/// An enforce-mode answer that let an update through because its spec is unchanged: warned,
/// under the line that says why its findings do not refuse it.
fn assert_let_through_unchanged(answer: &Answer, what: &str) {
    assert_eq!(answer.outcome, Outcome::Warned, "{what}: {}", answer.body);
    let warnings = answer.warnings();
    assert!(
        warnings[0]
            .starts_with("rollout-guard: mode enforce: this update leaves the spec as it was"),
        "{what}: {warnings:?}"
    );
}

/// A review of a person's UPDATE of a Rollout from `old` to `new`.
fn rollout_update(new: &Value, old: &Value) -> Value {
    review("Rollout", "rollouts", None, "UPDATE", new, Some(old))
}

/// The status of a canary in flight at `step` (a new pod hash, not yet stable).
fn in_flight(step: u64) -> Value {
    json!({"currentPodHash": "new", "stableRS": "old", "currentStepIndex": step})
}

/// What the API server does with a write: the mutating review of `new`, its patch applied,
/// then the validating review of the result. Returns the object as it would be stored and the
/// validating answer.
fn mutate_then_validate(
    a: &Admission,
    review_of: &dyn Fn(&Value) -> Value,
    new: &Value,
) -> (Value, Answer) {
    let mutated = ask(a, Endpoint::Mutate, &review_of(new));
    let stored = mutated
        .patch()
        .map_or_else(|| new.clone(), |p| apply(new, &p));
    let answer = ask(a, Endpoint::Validate, &review_of(&stored));
    (stored, answer)
}

/// A review creating `rollout`, as the API server sends it.
fn rollout_create(rollout: &Value) -> Value {
    review("Rollout", "rollouts", None, "CREATE", rollout, None)
}

fn default_admission() -> Admission {
    admission(Mode::Warn, "auto", ControllerVersion::DEFAULT, &[])
}

struct Answer {
    status: u16,
    outcome: Outcome,
    body: Value,
}

impl Answer {
    fn response(&self) -> &Value {
        &self.body["response"]
    }
    fn warnings(&self) -> Vec<String> {
        self.response()["warnings"]
            .as_array()
            .map(|w| w.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
    /// The patch as the API server decodes it: base64 of a JSON array of operations.
    fn patch(&self) -> Option<Value> {
        let encoded = self.response()["patch"].as_str()?;
        assert_eq!(self.response()["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("patch is base64");
        Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
    }
}

fn ask(a: &Admission, endpoint: Endpoint, review: &Value) -> Answer {
    let reply = a.review(endpoint, &serde_json::to_vec(review).unwrap());
    let body: Value = serde_json::from_slice(&reply.body).expect("reply is JSON");
    if reply.status == 200 {
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(
            body["response"]["uid"], review["request"]["uid"],
            "uid must be echoed"
        );
    }
    Answer {
        status: reply.status,
        outcome: reply.outcome,
        body,
    }
}

/// Applies a patch with the json-patch crate and, when kubectl is installed, with
/// `kubectl patch --local` (the API server's own patch library); both must agree.
fn apply(object: &Value, patch: &Value) -> Value {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
    let mut ours = object.clone();
    json_patch::patch(&mut ours, &ops).expect("patch applies");
    if let Some(theirs) = kubectl_patch(object, patch) {
        assert_eq!(theirs, ours, "kubectl patch --local disagrees");
    }
    ours
}

fn kubectl_patch(object: &Value, patch: &Value) -> Option<Value> {
    let dir = tempfile::tempdir().ok()?;
    let file = dir.path().join("object.json");
    std::fs::write(&file, serde_json::to_vec(object).unwrap()).ok()?;
    let out = std::process::Command::new("kubectl")
        .args(["patch", "--local", "-f"])
        .arg(&file)
        .args(["--type=json", "-o", "json", "-p", &patch.to_string()])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl patch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn warns_about_a_dangerous_rollout_and_echoes_the_uid() {
    let a = default_admission();
    let answer = ask(
        &a,
        Endpoint::Validate,
        &rollout_create(&dangerous_rollout()),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.response()["allowed"], true);
    assert_eq!(answer.outcome, Outcome::Warned);
    let w = answer.warnings();
    assert!(w[0].starts_with("inconclusive-timed-pause: spec.strategy.canary.steps[1].pause.duration: `web` can end Inconclusive"), "{w:?}");
    assert!(w.iter().all(|l| !l.contains('\n') && l.len() <= 256));
}

#[test]
fn enforce_denies_with_rule_ids_and_paths() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let answer = ask(
        &a,
        Endpoint::Validate,
        &rollout_create(&dangerous_rollout()),
    );
    let r = answer.response();
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["reason"], "Invalid");
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("[inconclusive-timed-pause] spec.strategy.canary.steps[1].pause.duration"),
        "{msg}"
    );
    assert!(
        r.get("patch").is_none(),
        "a validating answer carries no patch"
    );
    assert_eq!(answer.outcome, Outcome::Denied);
}

#[test]
fn enforce_warns_the_controller_instead_of_denying_it() {
    // A Rollout made dangerous by a template edit is already stored: the controller's own
    // writes to it (the revision annotation) must not be refused, or the rollout stalls.
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let mut r = review(
        "Rollout",
        "rollouts",
        None,
        "UPDATE",
        &dangerous_rollout(),
        Some(&dangerous_rollout()),
    );
    r["request"]["userInfo"]["username"] = json!(CONTROLLER);
    let answer = ask(&a, Endpoint::Validate, &r);
    assert_eq!(answer.response()["allowed"], true);
    assert_eq!(answer.outcome, Outcome::Warned);
    // A person making the same write is refused only for what it brings: here the Rollout
    // was safe before (no background analysis).
    r["request"]["userInfo"]["username"] = json!("jane@example.com");
    let mut safe = dangerous_rollout();
    safe["spec"]["strategy"]["canary"]
        .as_object_mut()
        .unwrap()
        .remove("analysis");
    r["request"]["oldObject"] = safe;
    assert_eq!(ask(&a, Endpoint::Validate, &r).outcome, Outcome::Denied);
}

#[test]
fn enforce_lets_an_update_that_leaves_the_spec_alone_through() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let flagged = dangerous_rollout();
    let update = |new: &Value| rollout_update(new, &flagged);
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut new = flagged.clone();
        edit(&mut new);
        new
    };
    // `kubectl argo rollouts promote` / `restart`, a label, a pod template that only gains an
    // empty field (no new revision): the spec Argo acts on is the one it already had, and
    // refusing would only take control away from the person during an incident.
    for (what, new) in [
        ("promote", edited(&|r| r["spec"]["paused"] = json!(false))),
        (
            "restart",
            edited(&|r| r["spec"]["restartAt"] = json!("2026-11-27T08:00:00Z")),
        ),
        (
            "label",
            edited(&|r| r["metadata"]["labels"] = json!({"team": "web"})),
        ),
        (
            "empty field",
            edited(&|r| r["spec"]["template"]["metadata"]["annotations"] = json!({})),
        ),
    ] {
        let answer = ask(&a, Endpoint::Validate, &update(&new));
        assert_eq!(
            answer.response()["allowed"],
            true,
            "{what}: {}",
            answer.body
        );
        assert_let_through_unchanged(&answer, what);
        let warnings = answer.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("inconclusive-timed-pause: spec.strategy.canary.steps[1]")),
            "{what}: {warnings:?}"
        );
    }
    // A new revision walks a new canary into the flagged pause; any other spec edit is judged
    // whole, as are CREATEs and updates without a readable old object.
    let refused = [
        (
            "new image",
            "UPDATE",
            edited(&|r| r["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop:3")),
            Some(flagged.clone()),
        ),
        (
            "more replicas",
            "UPDATE",
            edited(&|r| r["spec"]["replicas"] = json!(5)),
            Some(flagged.clone()),
        ),
        // Zero values that change Argo's pod hash: a pointer field, a label with no value.
        (
            "pointer field set to false",
            "UPDATE",
            edited(&|r| {
                r["spec"]["template"]["spec"]["automountServiceAccountToken"] = json!(false)
            }),
            Some(flagged.clone()),
        ),
        (
            "label with an empty value",
            "UPDATE",
            edited(&|r| r["spec"]["template"]["metadata"]["labels"]["canary"] = json!("")),
            Some(flagged.clone()),
        ),
        ("create", "CREATE", flagged.clone(), None),
        ("no old object", "UPDATE", flagged.clone(), None),
        (
            "old object not an object",
            "UPDATE",
            flagged.clone(),
            Some(json!("not an object")),
        ),
    ];
    for (what, op, new, old) in refused {
        let answer = ask(
            &a,
            Endpoint::Validate,
            &review("Rollout", "rollouts", None, op, &new, old.as_ref()),
        );
        assert_eq!(answer.outcome, Outcome::Denied, "{what}: {}", answer.body);
    }
}

#[test]
fn the_spec_comparison_reads_old_object_as_the_reference_reader_does() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let flagged = dangerous_rollout();
    let mut promoted = flagged.clone();
    promoted["spec"]["paused"] = json!(false);
    let body = String::from_utf8(api_server_order(&rollout_update(&promoted, &flagged))).unwrap();
    // The lean reader skips oldObject; once a would-be denial reads it, a body serde_json
    // refuses gets the reference reader's 400, not an answer.
    // Only oldObject's steps (the second occurrence) are broken.
    let steps = r#""steps":[{"setWeight":20}"#;
    let second = body.rfind(steps).unwrap();
    assert!(body.find(steps).unwrap() < second);
    let broken = format!(
        "{}{}{}",
        &body[..second],
        r#""steps":[1 2,{"setWeight":20}"#,
        &body[second + steps.len()..]
    );
    let endpoint = Endpoint::Validate;
    let reply = a.review(endpoint, broken.as_bytes());
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.body,
        a.review_reference(endpoint, broken.as_bytes()).body
    );
    let fine = a.review(endpoint, body.as_bytes());
    assert_eq!(fine.outcome, Outcome::Warned);
    assert_eq!(
        fine.body,
        a.review_reference(endpoint, body.as_bytes()).body
    );
    // Only the spec is compared: a lone surrogate escape (grammatical JSON, which serde_json
    // refuses to decode into a string) in oldObject's metadata is never read, by either reader.
    let metadata =
        r#""oldObject":{"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout","metadata":{"#;
    let at = body.find(metadata).unwrap() + metadata.len();
    let odd = format!(
        "{}{}{}",
        &body[..at],
        r#""labels":{"odd":"\ud800"},"#,
        &body[at..]
    );
    let reply = a.review(endpoint, odd.as_bytes());
    assert_eq!(
        reply.outcome,
        Outcome::Warned,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.body,
        a.review_reference(endpoint, odd.as_bytes()).body
    );
}

#[test]
fn enforce_lets_an_unrelated_edit_of_a_flagged_template_through() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    // A template a Rollout cannot run (a limit Argo refuses) is a deny-class finding.
    let mut broken = template_web();
    broken["spec"]["metrics"][0]["inconclusiveLimit"] = json!(-1);
    let mut relabelled = broken.clone();
    relabelled["metadata"]["labels"] = json!({"team": "web"});
    let update = |new: &Value| {
        review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            "UPDATE",
            new,
            Some(&broken),
        )
    };
    let answer = ask(&a, Endpoint::Validate, &update(&relabelled));
    assert_eq!(answer.outcome, Outcome::Warned, "{}", answer.body);
    let mut retimed = broken.clone();
    retimed["spec"]["metrics"][0]["interval"] = json!("20s");
    assert_eq!(
        ask(&a, Endpoint::Validate, &update(&retimed)).outcome,
        Outcome::Denied
    );
    let create = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "CREATE",
        &relabelled,
        None,
    );
    assert_eq!(
        ask(&a, Endpoint::Validate, &create).outcome,
        Outcome::Denied
    );
}

#[test]
fn enforce_judges_a_template_edit_against_the_old_spec_as_fail_closed_leaves_it() {
    // A template stored before fail-closed was switched on, with a deny-class finding that
    // fail-closed does not touch (a limit Argo refuses on a second metric). A label edit
    // reaches the validating webhook with fail-closed's edit in its spec: still no spec
    // change of the user's, so not refused.
    let a = admission(
        Mode::Enforce,
        "fail-closed",
        ControllerVersion::DEFAULT,
        &[],
    );
    let broken = with_refused_limit(template_web());
    let update = |new: &Value, op: &str| {
        let old = (op == "UPDATE").then_some(&broken);
        review("AnalysisTemplate", "analysistemplates", None, op, new, old)
    };
    let admitted = |new: &Value, op: &str| {
        let (stored, answer) = mutate_then_validate(&a, &|new| update(new, op), new);
        assert_ne!(
            stored["spec"], new["spec"],
            "fail-closed edits the template"
        );
        answer
    };
    let mut relabelled = broken.clone();
    relabelled["metadata"]["labels"] = json!({"team": "web"});
    assert_let_through_unchanged(&admitted(&relabelled, "UPDATE"), "label");
    // A change of the user's own is judged whole, guard or not.
    let mut retimed = relabelled.clone();
    retimed["spec"]["metrics"][0]["interval"] = json!("20s");
    assert_eq!(admitted(&retimed, "UPDATE").outcome, Outcome::Denied);
    assert_eq!(admitted(&relabelled, "CREATE").outcome, Outcome::Denied);
    // Without the guard on for the object, its edit is the user's (here: written by hand).
    let mutated = ask(&a, Endpoint::Mutate, &update(&relabelled, "UPDATE"));
    let mut by_hand = apply(&relabelled, &mutated.patch().unwrap());
    by_hand["metadata"]["annotations"] = json!({"rollout-guard.io/guards": "none"});
    assert_eq!(
        ask(&a, Endpoint::Validate, &update(&by_hand, "UPDATE")).outcome,
        Outcome::Denied
    );
}

#[test]
fn enforce_judges_a_rollout_edit_against_the_old_spec_as_hold_leaves_it() {
    // A flagged Rollout, fully promoted, stored before hold was switched on; its template has
    // a deny-class finding hold does not touch (a limit Argo refuses on a second metric). A
    // label edit reaches the validating webhook with hold's edit (indefinite pauses) in its
    // spec: no spec change of the user's, so not refused.
    let template = with_refused_limit(template_web());
    let mut old = dangerous_rollout();
    old["status"] = json!({"currentPodHash": "abc", "stableRS": "abc"});
    let update = |new: &Value| rollout_update(new, &old);
    for guards in ["none", "hold"] {
        let a = admission_over(
            Mode::Enforce,
            guards,
            ControllerVersion::DEFAULT,
            std::slice::from_ref(&template),
            &[],
        );
        let admitted = |new: &Value| {
            let (stored, answer) = mutate_then_validate(&a, &update, new);
            assert_eq!(stored["spec"] != new["spec"], guards == "hold", "{guards}");
            answer
        };
        let mut relabelled = old.clone();
        relabelled["metadata"]["labels"] = json!({"team": "web"});
        assert_let_through_unchanged(&admitted(&relabelled), guards);
        // A new revision or other steps are judged whole, guard or not.
        let mut new_image = relabelled.clone();
        new_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop:3");
        assert_eq!(admitted(&new_image).outcome, Outcome::Denied, "{guards}");
        let mut reweighted = relabelled.clone();
        reweighted["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(30);
        assert_eq!(admitted(&reweighted).outcome, Outcome::Denied, "{guards}");
    }

    // A canary in flight: hold leaves its steps alone (holding them would restart it), so a
    // label edit stores the old spec and passes, while an edit of a held pause's duration,
    // or removing the durations by hand, changes the steps Argo walks and is judged whole.
    let mut old = dangerous_rollout();
    old["status"] = in_flight(1);
    let update = |new: &Value| rollout_update(new, &old);
    let a = admission_over(
        Mode::Enforce,
        "hold",
        ControllerVersion::DEFAULT,
        std::slice::from_ref(&template),
        &[],
    );
    let admitted = |new: &Value| mutate_then_validate(&a, &update, new).1;
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "web"});
    assert_eq!(admitted(&relabelled).outcome, Outcome::Warned);
    let mut retimed = old.clone();
    retimed["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] = json!("10m");
    assert_eq!(admitted(&retimed).outcome, Outcome::Denied);
    let mut unpaused = old.clone();
    for step in unpaused["spec"]["strategy"]["canary"]["steps"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(pause) = step.get_mut("pause") {
            *pause = json!({});
        }
    }
    unpaused["spec"]["paused"] = json!(true);
    assert_eq!(admitted(&unpaused).outcome, Outcome::Denied);
}

#[test]
fn per_object_annotation_sets_the_mode_or_opts_out() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let mut r = dangerous_rollout();
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("warn");
    assert_eq!(
        ask(&a, Endpoint::Validate, &rollout_create(&r)).outcome,
        Outcome::Warned
    );
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("off");
    assert_eq!(
        ask(&a, Endpoint::Validate, &rollout_create(&r)).outcome,
        Outcome::Allowed
    );
}

#[test]
fn dry_run_gets_exactly_the_same_answer() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let wet = rollout_create(&dangerous_rollout());
    let mut dry = wet.clone();
    dry["request"]["dryRun"] = json!(true);
    assert_eq!(
        ask(&a, Endpoint::Validate, &wet).body,
        ask(&a, Endpoint::Validate, &dry).body
    );
}

#[test]
fn safe_rollouts_and_deletes_are_allowed_silently() {
    let a = default_admission();
    let mut safe = dangerous_rollout();
    safe["spec"]["strategy"]["canary"]["steps"] = json!([{"setWeight": 20}, {"pause": {}}]);
    safe["spec"]["strategy"]["canary"]["analysis"]["startingStep"] = json!(2);
    let answer = ask(&a, Endpoint::Validate, &rollout_update(&safe, &safe));
    assert_eq!(
        (answer.outcome, answer.warnings().len()),
        (Outcome::Allowed, 0),
        "{:?}",
        answer.warnings()
    );
    let mut del = review(
        "Rollout",
        "rollouts",
        None,
        "DELETE",
        &Value::Null,
        Some(&dangerous_rollout()),
    );
    del["request"]["object"] = Value::Null;
    let hold = admission(Mode::Warn, "hold", ControllerVersion::DEFAULT, &[]);
    let answer = ask(&hold, Endpoint::Mutate, &del);
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(answer.patch().is_none(), "never patch DELETE");
}

#[test]
fn bodies_that_are_not_reviews_get_400_with_a_reason() {
    let a = default_admission();
    for body in [
        &b"not json"[..],
        b"{}",
        b"{\"request\": {\"uid\": \"\"}}",
        b"[1,2]",
    ] {
        let reply = a.review(Endpoint::Validate, body);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
        let v: Value = serde_json::from_slice(&reply.body).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
        // An overloaded server refuses them with the same words.
        if body != b"not json" && body != b"[1,2]" {
            assert_eq!(a.overloaded(Endpoint::Validate, body).body, reply.body);
        }
    }
}

#[test]
fn only_v1_admission_reviews_are_answered() {
    let a = default_admission();
    let good = rollout_create(&dangerous_rollout());
    for (field, value, expected) in [
        (
            "apiVersion",
            json!("admission.k8s.io/v1beta1"),
            "apiVersion \"admission.k8s.io/v1beta1\" is not supported",
        ),
        (
            "kind",
            json!("ConversionReview"),
            "body is a \"ConversionReview\", not an AdmissionReview",
        ),
    ] {
        let mut other = good.clone();
        other[field] = value.clone();
        // The API server's field order (request last) too, which the lean reader reads.
        let original = if field == "kind" {
            r#""kind":"AdmissionReview""#.to_owned()
        } else {
            r#""apiVersion":"admission.k8s.io/v1""#.to_owned()
        };
        let ordered = String::from_utf8(api_server_order(&good))
            .unwrap()
            .replacen(&original, &format!("{}:{value}", json!(field)), 1);
        for body in [serde_json::to_vec(&other).unwrap(), ordered.into_bytes()] {
            for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                let reply = a.review(endpoint, &body);
                assert_eq!(reply.status, 400, "{field}");
                let error: Value = serde_json::from_slice(&reply.body).unwrap();
                let error = error["error"].as_str().unwrap();
                assert!(error.contains(expected), "{error}");
                // The reference reader says the same, and so does an overloaded server.
                assert_eq!(a.review_reference(endpoint, &body).body, reply.body);
                assert_eq!(a.overloaded(endpoint, &body).body, reply.body);
            }
        }
    }
    // A field given twice is refused alike by both readers, a first `null` included.
    let twice = String::from_utf8(api_server_order(&good))
        .unwrap()
        .replacen(
            r#""apiVersion":"admission.k8s.io/v1""#,
            r#""apiVersion":null,"apiVersion":"admission.k8s.io/v1""#,
            1,
        );
    let reply = a.review(Endpoint::Validate, twice.as_bytes());
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        a.review_reference(Endpoint::Validate, twice.as_bytes())
            .body
    );
    // The envelope's type may be left out (reviews built by hand); v1 is assumed.
    let mut bare = good.clone();
    bare.as_object_mut().unwrap().remove("apiVersion");
    bare.as_object_mut().unwrap().remove("kind");
    assert_eq!(ask(&a, Endpoint::Validate, &bare).status, 200);
    assert_eq!(ask(&a, Endpoint::Validate, &good).status, 200);
}

#[test]
fn a_review_with_an_unexpected_object_still_gets_an_admission_review() {
    let a = default_admission();
    let mut odd = rollout_create(&dangerous_rollout());
    odd["request"]["object"]["spec"]["strategy"] = json!("not a map");
    let answer = ask(&a, Endpoint::Validate, &odd);
    assert_eq!(
        (answer.status, answer.response()["allowed"].clone()),
        (200, json!(true))
    );
    assert!(
        answer.warnings()[0].contains("could not read the Rollout"),
        "{:?}",
        answer.warnings()
    );
}

/// Regression (found by the property tests): serde quotes the wrongly typed value in its
/// message, so a long string used to produce a warning far past 256 characters, with `\n`.
#[test]
fn a_long_wrongly_typed_value_still_gets_a_warning_the_api_server_keeps() {
    let a = default_admission();
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let mut odd = rollout_create(&dangerous_rollout());
        odd["request"]["object"]["spec"]["replicas"] = json!("many\n".repeat(200));
        let answer = ask(&a, endpoint, &odd);
        let w = answer.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("rollout-guard: could not read the Rollout"),
            "{w:?}"
        );
        assert!(
            w[0].len() <= 256 && !w[0].chars().any(char::is_control),
            "{w:?}"
        );
    }
}

/// The user sees the field, not a position in the request body they never wrote.
#[test]
fn an_unreadable_object_is_named_by_its_field_path() {
    let a = default_admission();
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let mut odd = rollout_create(&dangerous_rollout());
        odd["request"]["object"]["spec"]["strategy"]["canary"]["steps"] = json!({"not": "a list"});
        let w = ask(&a, endpoint, &odd).warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("could not read the Rollout: spec.strategy.canary.steps: invalid type: map, expected a sequence"),
            "{endpoint:?}: {w:?}"
        );
        assert!(!w[0].contains("column"), "{w:?}");
    }
}

#[test]
fn hold_guard_patches_d1_rollouts_and_is_idempotent() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let rollout = dangerous_rollout();
    let answer = ask(&a, Endpoint::Mutate, &rollout_create(&rollout));
    assert_eq!(answer.outcome, Outcome::Mutated);
    let patched = apply(&rollout, &answer.patch().unwrap());
    let steps = &patched["spec"]["strategy"]["canary"]["steps"];
    assert_eq!(steps[1], json!({"pause": {}}));
    assert_eq!(steps[3], json!({"pause": {}}));
    assert_eq!(patched["metadata"]["annotations"]["team"], "payments");
    let record = patched["metadata"]["annotations"]["rollout-guard.io/held-pauses"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(record).unwrap(),
        json!({"1": "5m", "3": 120})
    );
    assert!(answer.warnings()[0].contains("hold"));
    // Mutating the mutated object yields no patch.
    let again = ask(&a, Endpoint::Mutate, &rollout_update(&patched, &patched));
    assert!(again.patch().is_none());
    assert_eq!(again.outcome, Outcome::Allowed);
}

/// Found by review: a sync re-sending Git's steps (durations back on the held pauses) to an
/// in-flight canary, where a later pause had been left timed (hold skipped), got every pause
/// held: steps unlike the stored ones, so Argo restarted the canary. Only the pauses held
/// before are held again, which leaves the steps exactly as stored.
#[test]
fn a_sync_in_flight_holds_again_only_what_was_held() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let git = dangerous_rollout();
    // Held on creation, then step 3 put back by hand... as a pause left timed in flight.
    let created = apply(
        &git,
        &ask(&a, Endpoint::Mutate, &rollout_create(&git))
            .patch()
            .unwrap(),
    );
    let mut stored = created.clone();
    stored["spec"]["strategy"]["canary"]["steps"][3] = json!({"pause": {"duration": 120}});
    stored["metadata"]["annotations"]["rollout-guard.io/held-pauses"] = json!(r#"{"1":"5m"}"#);
    stored["status"] = in_flight(1);
    let mut sync = git.clone();
    sync["metadata"]["annotations"] = stored["metadata"]["annotations"].clone();
    sync["status"] = stored["status"].clone();
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&sync, &stored));
    let after = apply(&sync, &answer.patch().unwrap());
    assert_eq!(
        after["spec"]["strategy"]["canary"]["steps"],
        stored["spec"]["strategy"]["canary"]["steps"],
        "{:?}",
        answer.warnings()
    );
    assert!(
        answer.warnings()[0].contains("steps stay as stored: pauses at steps 1 (5m) held again")
            && answer.warnings()[0].contains("timed pauses at steps 3 are left"),
        "{:?}",
        answer.warnings()
    );
    assert_eq!(held_record(&after), Some(json!({"1": "5m"})));
    // Idempotent: the answer seen again changes nothing.
    assert!(
        ask(&a, Endpoint::Mutate, &rollout_update(&after, &stored))
            .patch()
            .is_none()
    );

    // Found by a later review, each also in flight:
    let steps_of = |v: &Value| v["spec"]["strategy"]["canary"]["steps"].clone();
    // a replace without the guard's annotations gets the stored record back;
    let mut replace = sync.clone();
    replace["metadata"]["annotations"] = json!({"team": "payments"});
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&replace, &stored));
    let after = apply(&replace, &answer.patch().unwrap());
    assert_eq!(steps_of(&after), steps_of(&stored));
    assert_eq!(held_record(&after), Some(json!({"1": "5m"})));
    assert!(
        ask(&a, Endpoint::Mutate, &rollout_update(&after, &stored))
            .patch()
            .is_none()
    );
    // Git changing a held pause's duration: held, the new duration recorded;
    let mut longer = sync.clone();
    longer["spec"]["strategy"]["canary"]["steps"][1] = json!({"pause": {"duration": "7m"}});
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&longer, &stored));
    let after = apply(&longer, &answer.patch().unwrap());
    assert_eq!(steps_of(&after), steps_of(&stored));
    assert_eq!(held_record(&after), Some(json!({"1": "7m"})));
    assert!(answer.warnings()[0].contains("earlier durations for steps 1 (5m) replaced"));
    // a sync whose Rollout no longer matches D1 (startingStep past the pauses) too.
    let mut late = sync.clone();
    late["spec"]["strategy"]["canary"]["analysis"]["startingStep"] = json!(4);
    let mut stored_late = stored.clone();
    stored_late["spec"]["strategy"]["canary"]["analysis"]["startingStep"] = json!(4);
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&late, &stored_late));
    let after = apply(&late, &answer.patch().unwrap());
    assert_eq!(steps_of(&after), steps_of(&stored_late));
    // Anything else changed in the steps: the canary restarts anyway, so all is held.
    let mut edited = sync.clone();
    edited["spec"]["strategy"]["canary"]["steps"][2] = json!({"setWeight": 70});
    let after = apply(
        &edited,
        &ask(&a, Endpoint::Mutate, &rollout_update(&edited, &stored))
            .patch()
            .unwrap(),
    );
    assert_eq!(
        after["spec"]["strategy"]["canary"]["steps"][3],
        json!({"pause": {}})
    );
}

#[test]
fn hold_guard_never_restarts_an_in_flight_canary() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let mut stored = dangerous_rollout();
    stored["status"] = in_flight(1);
    // The controller's own update of an in-flight canary, steps unchanged.
    let mut update = stored.clone();
    update["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("2");
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&update, &stored));
    assert!(answer.patch().is_none());
    assert!(
        answer.warnings()[0].contains("hold skipped"),
        "{:?}",
        answer.warnings()
    );
    // A new revision restarts the canary anyway: hold applies.
    let mut new_revision = update.clone();
    new_revision["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop:3");
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &rollout_update(&new_revision, &stored)
        )
        .patch()
        .is_some()
    );
    // Fully promoted: nothing in flight to restart.
    let mut promoted = stored.clone();
    promoted["status"]["stableRS"] = json!("new");
    let mut update = promoted.clone();
    update["metadata"]["labels"] = json!({"x": "y"});
    assert!(
        ask(&a, Endpoint::Mutate, &rollout_update(&update, &promoted))
            .patch()
            .is_some()
    );
}

#[test]
fn guards_can_be_switched_per_object() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let mut r = dangerous_rollout();
    r["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("none");
    assert!(
        ask(&a, Endpoint::Mutate, &rollout_create(&r))
            .patch()
            .is_none()
    );
    let off = admission(Mode::Warn, "none", ControllerVersion::new(1, 8, 1), &[]);
    r["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("hold");
    assert!(
        ask(&off, Endpoint::Mutate, &rollout_create(&r))
            .patch()
            .is_some()
    );
}

fn with_status(index: i64, stable: &str, hash: &str, reasons: &[&str]) -> Value {
    let mut r = dangerous_rollout();
    let conditions: Vec<_> = reasons
        .iter()
        .map(|x| json!({"reason": x, "startTime": "2026-11-26T10:00:00Z"}))
        .collect();
    r["status"] = json!({"currentStepIndex": index, "stableRS": stable, "currentPodHash": hash,
        "pauseConditions": conditions, "controllerPause": true, "phase": "Paused"});
    r
}

fn status_review(new: &Value, old: &Value, user: &str) -> Value {
    as_user(
        review(
            "Rollout",
            "rollouts",
            Some("status"),
            "UPDATE",
            new,
            Some(old),
        ),
        user,
    )
}

#[test]
fn an_unreadable_old_object_is_said_to_be_the_old_one() {
    let a = default_admission();
    let new = with_status(2, "stable", "canary", &["InconclusiveAnalysisRun"]);
    let mut old = with_status(1, "stable", "canary", &["InconclusiveAnalysisRun"]);
    old["status"]["currentStepIndex"] = json!("one");
    let w = ask(&a, Endpoint::Mutate, &status_review(&new, &old, CONTROLLER)).warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("could not read the Rollout: its state before this change (oldObject): status.currentStepIndex: invalid type"),
        "{w:?}"
    );
}

#[test]
fn status_guard_holds_the_controller_while_inconclusive() {
    let a = default_admission();
    let old = with_status(1, "stable", "canary", &["InconclusiveAnalysisRun"]);
    // The timed pause expires and the controller advances, dropping the pause condition.
    let advancing = with_status(2, "stable", "canary", &[]);
    let answer = ask(
        &a,
        Endpoint::Mutate,
        &status_review(&advancing, &old, CONTROLLER),
    );
    let guarded = apply(&advancing, &answer.patch().expect("guard patches"));
    assert_eq!(guarded["status"]["currentStepIndex"], 1);
    assert_eq!(
        guarded["status"]["pauseConditions"][0]["reason"],
        "InconclusiveAnalysisRun"
    );
    let again = ask(
        &a,
        Endpoint::Mutate,
        &status_review(&guarded, &old, CONTROLLER),
    );
    assert!(again.patch().is_none(), "idempotent");

    // The controller promotes the full canary (R2).
    let promoting = with_status(4, "canary", "canary", &["InconclusiveAnalysisRun"]);
    let answer = ask(
        &a,
        Endpoint::Mutate,
        &status_review(&promoting, &old, CONTROLLER),
    );
    let guarded = apply(&promoting, &answer.patch().unwrap());
    assert_eq!(
        (
            guarded["status"]["stableRS"].as_str(),
            guarded["status"]["currentStepIndex"].as_i64()
        ),
        (Some("stable"), Some(1))
    );
}

#[test]
fn status_guard_lets_humans_and_user_requests_through() {
    let a = default_admission();
    let old = with_status(1, "stable", "canary", &["InconclusiveAnalysisRun"]);
    // kubectl argo rollouts promote: clears pauseConditions, as a human.
    let promote = with_status(1, "stable", "canary", &[]);
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &status_review(&promote, &old, "alice@example.com")
        )
        .patch()
        .is_none()
    );
    // After the human cleared it, the controller's next write is not held.
    let next = with_status(2, "stable", "canary", &[]);
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &status_review(&next, &promote, CONTROLLER)
        )
        .patch()
        .is_none()
    );
    // promoteFull and abort, even when the controller writes them.
    let mut full = with_status(4, "canary", "canary", &[]);
    full["status"]["promoteFull"] = json!(true);
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &status_review(&full, &old, CONTROLLER)
        )
        .patch()
        .is_none()
    );
    let mut abort = with_status(0, "stable", "canary", &[]);
    abort["status"]["abort"] = json!(true);
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &status_review(&abort, &old, CONTROLLER)
        )
        .patch()
        .is_none()
    );
    // A new revision started.
    let revision = with_status(0, "stable", "newer", &[]);
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &status_review(&revision, &old, CONTROLLER)
        )
        .patch()
        .is_none()
    );
    // Off on 1.8.1 by default (hold is the default there).
    let old_controller = admission(Mode::Warn, "auto", ControllerVersion::new(1, 8, 1), &[]);
    let advancing = with_status(2, "stable", "canary", &[]);
    assert!(
        ask(
            &old_controller,
            Endpoint::Mutate,
            &status_review(&advancing, &old, CONTROLLER)
        )
        .patch()
        .is_none()
    );
}

#[test]
fn fail_closed_guard_patches_templates_when_switched_on() {
    let a = admission(Mode::Warn, "fail-closed", ControllerVersion::DEFAULT, &[]);
    let t = template_web();
    let answer = ask(
        &a,
        Endpoint::Mutate,
        &review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            "CREATE",
            &t,
            None,
        ),
    );
    let patched = apply(&t, &answer.patch().unwrap());
    assert_eq!(
        patched["spec"]["metrics"][0]["failureCondition"],
        "(result.ok == false) || !(result.ok == true)"
    );
    let again = ask(
        &a,
        Endpoint::Mutate,
        &review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            "UPDATE",
            &patched,
            Some(&patched),
        ),
    );
    assert!(again.patch().is_none());
    // Not on by default.
    assert!(
        ask(
            &default_admission(),
            Endpoint::Mutate,
            &review(
                "AnalysisTemplate",
                "analysistemplates",
                None,
                "CREATE",
                &t,
                None
            )
        )
        .patch()
        .is_none()
    );
}

#[test]
fn template_changes_are_checked_against_the_rollouts_that_use_them() {
    let a = admission(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        &[dangerous_rollout()],
    );
    let t = template_web();
    let answer = ask(
        &a,
        Endpoint::Validate,
        &review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            "UPDATE",
            &t,
            Some(&t),
        ),
    );
    let w = answer.warnings();
    assert!(
        w.iter()
            .any(|l| l.contains("Rollout/apps/shop stays dangerous with this template")),
        "{w:?}"
    );
    // A template that cannot end Inconclusive makes no Rollout dangerous.
    let safe = safe_template();
    let answer = ask(
        &a,
        Endpoint::Validate,
        &review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            "UPDATE",
            &safe,
            Some(&t),
        ),
    );
    assert!(answer.warnings().is_empty(), "{:?}", answer.warnings());
}

#[test]
fn overloaded_answers_still_echo_the_uid() {
    let a = default_admission();
    let r = rollout_create(&dangerous_rollout());
    let reply = a.overloaded(Endpoint::Validate, &serde_json::to_vec(&r).unwrap());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["response"]["uid"], r["request"]["uid"]);
    assert_eq!(body["response"]["allowed"], true, "warn mode fails open");
    assert_eq!(reply.outcome, Outcome::Error);
    // Its log line carries the uid too.
    assert_eq!(
        reply.summary.as_ref().map(|s| s.uid.as_str()),
        r["request"]["uid"].as_str()
    );
    let enforce = admission(Mode::Enforce, "auto", ControllerVersion::DEFAULT, &[]);
    let reply = enforce.overloaded(Endpoint::Validate, &serde_json::to_vec(&r).unwrap());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        (
            body["response"]["allowed"].clone(),
            body["response"]["status"]["code"].clone()
        ),
        (json!(false), json!(429))
    );
    let reply = enforce.overloaded(Endpoint::Mutate, &serde_json::to_vec(&r).unwrap());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(body["response"]["allowed"] == true && body["response"].get("patch").is_none());
    // The controller is never refused, nor is a write that would not be judged.
    let allowed = |review: &Value| {
        let reply = enforce.overloaded(Endpoint::Validate, &serde_json::to_vec(review).unwrap());
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        body["response"]["allowed"] == true
    };
    assert!(allowed(&as_user(r.clone(), CONTROLLER)));
    let mut delete = r.clone();
    delete["request"]["operation"] = json!("DELETE");
    assert!(allowed(&delete));
    assert!(!allowed(&as_user(r, "jane@example.com")));
}

#[test]
fn a_template_edit_that_makes_a_rollout_dangerous_says_so() {
    let safe = safe_template();
    let a = admission_over(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        std::slice::from_ref(&safe),
        &[dangerous_rollout()],
    );
    let edit = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "UPDATE",
        &template_web(),
        Some(&safe),
    );
    let w = ask(&a, Endpoint::Validate, &edit).warnings();
    assert!(
        w.iter().any(|l| l.starts_with(
            "inconclusive-timed-pause: Rollout/apps/shop becomes dangerous with this template"
        )),
        "{w:?}"
    );
}

fn load_test_review() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/load/rollout-update-review.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load_test_admission(mode: Mode) -> Admission {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/load/templates");
    let (store, errors) = rollout_guard::catalog::load_dir(std::path::Path::new(dir));
    assert!(errors.is_empty(), "{errors:?}");
    let version = ControllerVersion::DEFAULT;
    let policy = Policy {
        mode,
        version,
        guards: GuardSet::AUTO.resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Admission::new(policy, Arc::new(SharedStore::ready(store)))
}

#[test]
fn the_load_test_review_is_warned_about_its_timed_pause() {
    let a = load_test_admission(Mode::Warn);
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/load/rollout-update-review.json"
    ))
    .unwrap();
    let reply = a.review(Endpoint::Validate, &body);
    assert_eq!(reply.outcome, Outcome::Warned);
    let answer: Value = serde_json::from_slice(&reply.body).unwrap();
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert!(
        warnings[0].as_str().unwrap().starts_with(
            "inconclusive-timed-pause: spec.strategy.canary.steps[1].pause.duration: `success-rate` can end Inconclusive"
        ),
        "{warnings:?}"
    );
}

#[test]
fn field_order_never_changes_the_answer() {
    let base = load_test_review();
    let variants: Vec<(&str, Value)> = {
        let mut v = vec![("as captured", base.clone())];
        let mut off = base.clone();
        off["request"]["object"]["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("off");
        v.push(("opted out", off));
        let mut enforce = base.clone();
        enforce["request"]["object"]["metadata"]["annotations"]["rollout-guard.io/mode"] =
            json!("enforce");
        v.push(("enforced", enforce));
        let mut status = base.clone();
        status["request"]["subResource"] = json!("status");
        v.push(("status write", status));
        let mut unreadable = base.clone();
        unreadable["request"]["object"]["spec"]["strategy"]["canary"]["steps"] = json!("many");
        v.push(("unreadable object", unreadable));
        let mut null = base.clone();
        null["request"]["object"] = Value::Null;
        v.push(("null object", null));
        let mut create = base.clone();
        create["request"]["operation"] = json!("CREATE");
        create["request"]["oldObject"] = Value::Null;
        create["request"]["object"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        v.push(("create without namespace", create));
        let mut delete = base.clone();
        delete["request"]["operation"] = json!("DELETE");
        v.push(("delete", delete));
        let mut template = base.clone();
        template["request"]["kind"]["kind"] = json!("AnalysisTemplate");
        v.push(("another kind", template));
        v
    };
    for mode in [Mode::Warn, Mode::Enforce] {
        let a = load_test_admission(mode);
        for (what, review) in &variants {
            for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                let ordered = a.review(endpoint, &api_server_order(review));
                let sorted = a.review(endpoint, &serde_json::to_vec(review).unwrap());
                assert_eq!(
                    (ordered.status, ordered.outcome, &ordered.body),
                    (sorted.status, sorted.outcome, &sorted.body),
                    "{what}, {endpoint:?}, {mode:?}: {}",
                    String::from_utf8_lossy(&ordered.body)
                );
            }
        }
    }
    // Malformed in ways the single pass must not paper over.
    let a = load_test_admission(Mode::Warn);
    let body = String::from_utf8(api_server_order(&base)).unwrap();
    for broken in [
        body.replacen(r#""uid":"#, r#""uid":"x","uid":"#, 1),
        body.replacen(r#""object":"#, r#""object":null,"object":"#, 1),
        format!("{body} trailing"),
        body.replacen(r#""request":"#, r#""request":null,"request":"#, 1),
    ] {
        let reply = a.review(Endpoint::Validate, broken.as_bytes());
        assert_eq!(
            reply.status,
            400,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}

#[test]
fn template_validations_are_declined_inline_and_answered_on_the_blocking_path() {
    let a = admission(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        &[dangerous_rollout()],
    );
    let t = template_web();
    let mut cluster_t = t.clone();
    cluster_t["kind"] = json!("ClusterAnalysisTemplate");
    cluster_t["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let template_edit = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "UPDATE",
        &t,
        Some(&t),
    );
    let cluster_create = review(
        "ClusterAnalysisTemplate",
        "clusteranalysistemplates",
        None,
        "CREATE",
        &cluster_t,
        None,
    );
    for r in [&template_edit, &cluster_create] {
        let body = serde_json::to_vec(r).unwrap();
        // Their cost grows with the cached Rollouts: the server runs them off the async workers.
        assert!(
            a.review_inline(Endpoint::Validate, &body).is_none(),
            "{}",
            r["request"]["kind"]
        );
        // The mutating side (fail-closed) costs the same whatever the cluster: inline.
        let mutated = a.review_inline(Endpoint::Mutate, &body).expect("inline");
        assert_eq!(mutated.status, 200);
    }
    // `review` answers what was declined, in full.
    let body = serde_json::to_vec(&template_edit).unwrap();
    let full = a.review(Endpoint::Validate, &body);
    assert!(
        String::from_utf8_lossy(&full.body).contains("Rollout/apps/shop stays dangerous"),
        "{}",
        String::from_utf8_lossy(&full.body)
    );

    // Rollout writes, deletes of templates and bodies that are not reviews stay inline, with
    // the answer `review` gives.
    let rollout = rollout_create(&dangerous_rollout());
    let delete = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "DELETE",
        &t,
        Some(&t),
    );
    for body in [
        serde_json::to_vec(&rollout).unwrap(),
        serde_json::to_vec(&delete).unwrap(),
        b"not json".to_vec(),
    ] {
        let inline = a.review_inline(Endpoint::Validate, &body).expect("inline");
        let direct = a.review(Endpoint::Validate, &body);
        assert_eq!((inline.status, inline.body), (direct.status, direct.body));
    }
}

#[test]
fn a_template_edit_from_files_without_namespaces_is_checked_as_edited() {
    // Manifests for `--templates` usually name no namespace: the Rollout is then in `default`,
    // and so is the edited template the API server reviews.
    let strip = |mut v: Value| {
        v["metadata"].as_object_mut().unwrap().remove("namespace");
        v
    };
    let safe = strip(safe_template());
    let a = admission_over(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        std::slice::from_ref(&safe),
        &[strip(dangerous_rollout())],
    );
    let mut edit = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "UPDATE",
        &strip(template_web()),
        Some(&safe),
    );
    edit["request"]["namespace"] = json!("default");
    let w = ask(&a, Endpoint::Validate, &edit).warnings();
    assert!(
        w.iter().any(|l| l.starts_with(
            "inconclusive-timed-pause: Rollout/shop becomes dangerous with this template"
        )),
        "{w:?}"
    );
}

#[test]
fn status_guard_lets_the_controller_carry_out_a_requested_full_promotion() {
    // `promote --full` writes only `promoteFull: true` (a human: passes). With the canary
    // already full, the controller's next write promotes in one go: it clears the pause, sets
    // stableRS and resets promoteFull. Undoing that would make full promotion impossible.
    let a = default_admission();
    let mut old = with_status(3, "stable", "canary", &["InconclusiveAnalysisRun"]);
    old["status"]["promoteFull"] = json!(true);
    let mut new = with_status(4, "canary", "canary", &[]);
    new["status"]["promoteFull"] = json!(false);
    let answer = ask(&a, Endpoint::Mutate, &status_review(&new, &old, CONTROLLER));
    assert!(answer.patch().is_none(), "{:?}", answer.patch());
    // Likewise the controller's write after a human's abort.
    let mut old = with_status(3, "stable", "canary", &["InconclusiveAnalysisRun"]);
    old["status"]["abort"] = json!(true);
    let new = with_status(0, "stable", "canary", &[]);
    let answer = ask(&a, Endpoint::Mutate, &status_review(&new, &old, CONTROLLER));
    assert!(answer.patch().is_none(), "{:?}", answer.patch());
}

#[test]
fn fail_closed_rebuilds_from_the_original_when_only_the_success_condition_changes() {
    let a = admission(Mode::Warn, "fail-closed", ControllerVersion::DEFAULT, &[]);
    let t = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": "rate", "namespace": "apps"},
        "spec": {"metrics": [{"name": "m", "interval": "1m",
            "successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.9",
            "provider": {"prometheus": {"address": "http://p", "query": "q"}}}]}});
    let create = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "CREATE",
        &t,
        None,
    );
    let closed = apply(&t, &ask(&a, Endpoint::Mutate, &create).patch().unwrap());
    // `kubectl edit` of the live object: the rewritten failureCondition stays as it is.
    let mut edited = closed.clone();
    edited["spec"]["metrics"][0]["successCondition"] = json!("result[0] >= 0.92");
    let update = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "UPDATE",
        &edited,
        Some(&closed),
    );
    let after = apply(
        &edited,
        &ask(&a, Endpoint::Mutate, &update).patch().unwrap(),
    );
    let record: Value = serde_json::from_str(
        after["metadata"]["annotations"]["rollout-guard.io/fail-closed"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        after["spec"]["metrics"][0]["failureCondition"],
        "(result[0] < 0.9) || !(result[0] >= 0.92)",
        "no stale !(result[0] >= 0.95) left in the condition"
    );
    assert_eq!(record["m"]["failureCondition"], "result[0] < 0.9");
    // And the result is closed: mutating it again changes nothing.
    let again = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "UPDATE",
        &after,
        Some(&closed),
    );
    assert!(ask(&a, Endpoint::Mutate, &again).patch().is_none());
}

/// Regression: removing `successCondition` from a closed metric left the rewritten
/// failureCondition and its record, so values between the thresholds kept failing.
#[test]
fn fail_closed_puts_the_original_back_when_the_success_condition_is_removed() {
    let a = admission(Mode::Warn, "fail-closed", ControllerVersion::DEFAULT, &[]);
    let t = template_web();
    let review_of = |op: &str, object: &Value, old: Option<&Value>| {
        review(
            "AnalysisTemplate",
            "analysistemplates",
            None,
            op,
            object,
            old,
        )
    };
    let closed = apply(
        &t,
        &ask(&a, Endpoint::Mutate, &review_of("CREATE", &t, None))
            .patch()
            .unwrap(),
    );
    let mut edited = closed.clone();
    edited["spec"]["metrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("successCondition");
    let answer = ask(
        &a,
        Endpoint::Mutate,
        &review_of("UPDATE", &edited, Some(&closed)),
    );
    assert_eq!(answer.outcome, Outcome::Mutated);
    let after = apply(&edited, &answer.patch().unwrap());
    assert_eq!(
        after["spec"]["metrics"][0]["failureCondition"],
        "result.ok == false"
    );
    assert!(
        after["metadata"]
            .get("annotations")
            .and_then(|a| a.get("rollout-guard.io/fail-closed"))
            .is_none(),
        "the empty record goes: {after}"
    );
    let again = ask(
        &a,
        Endpoint::Mutate,
        &review_of("UPDATE", &after, Some(&edited)),
    );
    assert!(again.patch().is_none(), "{:?}", again.patch());
    // The user rewrote the failure condition in the same update: theirs stays, the record goes.
    let mut rewritten = edited.clone();
    rewritten["spec"]["metrics"][0]["failureCondition"] = json!("result.code == 500");
    let answer = ask(
        &a,
        Endpoint::Mutate,
        &review_of("UPDATE", &rewritten, Some(&closed)),
    );
    let after = apply(&rewritten, &answer.patch().unwrap());
    assert_eq!(
        after["spec"]["metrics"][0]["failureCondition"],
        "result.code == 500"
    );
    assert!(
        after["metadata"]
            .get("annotations")
            .is_none_or(|a| a.get("rollout-guard.io/fail-closed").is_none())
    );
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &review_of("UPDATE", &after, Some(&rewritten))
        )
        .patch()
        .is_none()
    );
    // Both conditions kept: the closed template is left as it is.
    assert!(
        ask(
            &a,
            Endpoint::Mutate,
            &review_of("UPDATE", &closed, Some(&closed))
        )
        .patch()
        .is_none()
    );
}

#[test]
fn the_hold_record_keeps_only_steps_that_are_still_held_pauses() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let rollout = dangerous_rollout();
    let create = rollout_create(&rollout);
    let held = apply(
        &rollout,
        &ask(&a, Endpoint::Mutate, &create).patch().unwrap(),
    );
    // Git inserts a step in front: the held pause moves from index 1 to 2.
    let mut update = held.clone();
    update["spec"]["strategy"]["canary"]["steps"] = json!([
        {"setWeight": 10}, {"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 60}
    ]);
    let second = rollout_update(&update, &held);
    let after = apply(
        &update,
        &ask(&a, Endpoint::Mutate, &second).patch().expect("held"),
    );
    let record: Value = serde_json::from_str(
        after["metadata"]["annotations"]["rollout-guard.io/held-pauses"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        record,
        json!({"2": "5m"}),
        "no entry for the setWeight steps 1 and 3"
    );
}

fn held_record(rollout: &Value) -> Option<Value> {
    rollout["metadata"]["annotations"]
        .get("rollout-guard.io/held-pauses")
        .map(|r| serde_json::from_str(r.as_str().unwrap()).unwrap())
}

/// Regression: once nothing was left to hold, the record was never pruned: a held step turned
/// into a setWeight (no timed pause left, so no D1) kept its entry.
#[test]
fn the_hold_record_is_pruned_when_there_is_nothing_left_to_hold() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let rollout = dangerous_rollout();
    let create = rollout_create(&rollout);
    let held = apply(
        &rollout,
        &ask(&a, Endpoint::Mutate, &create).patch().unwrap(),
    );
    let update = |new: &Value, old: &Value| rollout_update(new, old);
    // Step 3 becomes a setWeight: its entry goes, step 1's stays; the steps are left alone.
    let mut edited = held.clone();
    edited["spec"]["strategy"]["canary"]["steps"][3] = json!({"setWeight": 80});
    let answer = ask(&a, Endpoint::Mutate, &update(&edited, &held));
    assert_eq!(answer.outcome, Outcome::Mutated);
    assert!(
        answer.warnings()[0].contains("no longer held"),
        "{:?}",
        answer.warnings()
    );
    let after = apply(&edited, &answer.patch().unwrap());
    assert_eq!(after["spec"], edited["spec"]);
    assert_eq!(held_record(&after), Some(json!({"1": "5m"})));
    assert_eq!(after["metadata"]["annotations"]["team"], "payments");
    assert!(
        ask(&a, Endpoint::Mutate, &update(&after, &edited))
            .patch()
            .is_none()
    );
    // Every held step gone: so is the record.
    let mut emptied = held.clone();
    emptied["spec"]["strategy"]["canary"]["steps"] = json!([{"setWeight": 50}, {"setWeight": 100}]);
    let after = apply(
        &emptied,
        &ask(&a, Endpoint::Mutate, &update(&emptied, &held))
            .patch()
            .unwrap(),
    );
    assert_eq!(held_record(&after), None);
    assert_eq!(
        after["metadata"]["annotations"],
        json!({"team": "payments"})
    );
    assert!(
        ask(&a, Endpoint::Mutate, &update(&after, &emptied))
            .patch()
            .is_none()
    );
    // The hold switched off for the object: it edits nothing, the record included.
    let mut off = edited.clone();
    off["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("none");
    assert!(
        ask(&a, Endpoint::Mutate, &update(&off, &held))
            .patch()
            .is_none()
    );
    // Deletes are never patched.
    let delete = review("Rollout", "rollouts", None, "DELETE", &edited, Some(&held));
    assert!(ask(&a, Endpoint::Mutate, &delete).patch().is_none());
}

/// A Rollout that stops matching D1 keeps its held pauses indefinite: putting durations back
/// would change the steps (restarting an in-flight canary) and could reopen the trap when D1
/// was lost only for a while (a template applied later). Its record still follows the steps.
#[test]
fn held_pauses_stay_held_when_the_rollout_no_longer_matches() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let rollout = dangerous_rollout();
    let create = rollout_create(&rollout);
    let mut held = apply(
        &rollout,
        &ask(&a, Endpoint::Mutate, &create).patch().unwrap(),
    );
    held["status"] = in_flight(1);
    let update = |new: &Value, old: &Value| rollout_update(new, old);
    let mut unmatched = held.clone();
    unmatched["spec"]["strategy"]["canary"]
        .as_object_mut()
        .unwrap()
        .remove("analysis");
    assert!(
        ask(&a, Endpoint::Mutate, &update(&unmatched, &held))
            .patch()
            .is_none(),
        "no durations put back, and the record still matches the steps"
    );
    // The user times pause 3 again themselves: only the record follows.
    let mut retimed = unmatched.clone();
    retimed["spec"]["strategy"]["canary"]["steps"][3] = json!({"pause": {"duration": "2m"}});
    let after = apply(
        &retimed,
        &ask(&a, Endpoint::Mutate, &update(&retimed, &unmatched))
            .patch()
            .unwrap(),
    );
    assert_eq!(after["spec"], retimed["spec"]);
    assert_eq!(held_record(&after), Some(json!({"1": "5m"})));
}

/// The controller's own update of an in-flight canary is never made to change the steps, but
/// a stale record is still pruned (the record is metadata, not steps).
#[test]
fn a_skipped_hold_still_prunes_a_stale_record() {
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let mut stored = dangerous_rollout();
    stored["metadata"]["annotations"]["rollout-guard.io/held-pauses"] = json!(r#"{"2":"1m"}"#);
    stored["status"] = in_flight(1);
    let mut update = stored.clone();
    update["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("2");
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&update, &stored));
    assert!(
        answer.warnings().iter().any(|w| w.contains("hold skipped")),
        "{:?}",
        answer.warnings()
    );
    let after = apply(&update, &answer.patch().expect("the record is pruned"));
    assert_eq!(after["spec"], update["spec"], "the steps are left alone");
    assert_eq!(held_record(&after), None);
}

#[test]
fn hold_skips_a_template_edit_that_starts_no_new_revision() {
    // `resources: {}` is the same pod template to Argo (no new pod hash), so no new revision
    // starts, and changing the steps now would restart the in-flight canary.
    let a = admission(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    let mut stored = dangerous_rollout();
    stored["status"] = in_flight(2);
    let mut update = stored.clone();
    update["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
    let r = rollout_update(&update, &stored);
    let answer = ask(&a, Endpoint::Mutate, &r);
    assert!(answer.patch().is_none(), "{:?}", answer.patch());
    assert!(
        answer.warnings().iter().any(|w| w.contains("hold skipped")),
        "{:?}",
        answer.warnings()
    );
    // Nor is a Go zero value in a non-pointer field (Helm charts render `""` and `false`).
    let mut zeros = stored.clone();
    zeros["spec"]["template"]["spec"]["serviceAccountName"] = json!("");
    zeros["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
    zeros["spec"]["template"]["spec"]["containers"][0]["args"] = json!([]);
    let answer = ask(&a, Endpoint::Mutate, &rollout_update(&zeros, &stored));
    assert!(answer.patch().is_none(), "{:?}", answer.patch());
    // A real template change is a new revision: the hold applies.
    update["spec"]["template"]["spec"]["containers"][0]["image"] = json!("shop:3");
    let r = rollout_update(&update, &stored);
    assert!(ask(&a, Endpoint::Mutate, &r).patch().is_some());
}

/// An Admission whose namespaces carry these `rollout-guard.io/` annotations.
fn admission_in_namespaces(
    mode: Mode,
    guards: &str,
    version: ControllerVersion,
    namespaces: &[(&str, &str, &str)],
) -> Admission {
    let mut store = MemoryStore::new();
    store.insert_template(serde_json::from_value::<AnalysisTemplate>(template_web()).unwrap());
    let catalog = SharedStore::ready(store);
    for (namespace, key, value) in namespaces {
        let annotations = [(key.to_string(), value.to_string())].into();
        catalog.set_namespace(namespace, annotations);
    }
    let policy = Policy {
        mode,
        version,
        guards: guards.parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Admission::new(policy, Arc::new(catalog))
}

fn create(rollout: &Value) -> Value {
    review("Rollout", "rollouts", None, "CREATE", rollout, None)
}

/// In another namespace than `apps`, where the reviews' request says they are.
fn elsewhere(rollout: &Value) -> Value {
    let mut r = rollout.clone();
    r["metadata"]["namespace"] = json!("other");
    let mut review = create(&r);
    review["request"]["namespace"] = json!("other");
    review
}

#[test]
fn a_namespace_annotation_sets_the_mode_and_the_objects_own_wins() {
    let mode = "rollout-guard.io/mode";
    let enforce_apps = admission_in_namespaces(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        &[("apps", mode, "enforce")],
    );
    let r = dangerous_rollout();
    assert_eq!(
        ask(&enforce_apps, Endpoint::Validate, &create(&r)).outcome,
        Outcome::Denied
    );
    // Other namespaces keep the server's mode.
    assert_eq!(
        ask(&enforce_apps, Endpoint::Validate, &elsewhere(&r)).outcome,
        Outcome::Warned
    );
    // The object's own annotation wins over its namespace's.
    let mut own = r.clone();
    own["metadata"]["annotations"][mode] = json!("warn");
    assert_eq!(
        ask(&enforce_apps, Endpoint::Validate, &create(&own)).outcome,
        Outcome::Warned
    );

    // A namespace can opt out, or relax an enforcing server.
    let off_apps = admission_in_namespaces(
        Mode::Enforce,
        "auto",
        ControllerVersion::DEFAULT,
        &[("apps", mode, "off"), ("other", mode, "warn")],
    );
    let answer = ask(&off_apps, Endpoint::Validate, &create(&r));
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(answer.warnings().is_empty(), "{:?}", answer.warnings());
    assert_eq!(
        ask(&off_apps, Endpoint::Validate, &elsewhere(&r)).outcome,
        Outcome::Warned
    );
    // A template in the namespace follows it too.
    let mut flawed = template_web();
    flawed["spec"]["metrics"][0]["count"] = json!("{{args.nobody-declares-this}}");
    let template = review(
        "AnalysisTemplate",
        "analysistemplates",
        None,
        "CREATE",
        &flawed,
        None,
    );
    let checked = ask(&enforce_apps, Endpoint::Validate, &template);
    let skipped = ask(&off_apps, Endpoint::Validate, &template);
    assert!(!checked.warnings().is_empty() || checked.outcome == Outcome::Denied);
    assert_eq!(skipped.outcome, Outcome::Allowed);
    assert!(skipped.warnings().is_empty(), "{:?}", skipped.warnings());
}

#[test]
fn a_namespace_annotation_sets_the_guards() {
    let guards = "rollout-guard.io/guards";
    let a = admission_in_namespaces(
        Mode::Warn,
        "hold",
        ControllerVersion::new(1, 8, 1),
        &[("apps", guards, "none")],
    );
    let r = dangerous_rollout();
    assert!(ask(&a, Endpoint::Mutate, &create(&r)).patch().is_none());
    let plain = admission_in_namespaces(Mode::Warn, "hold", ControllerVersion::new(1, 8, 1), &[]);
    assert!(ask(&plain, Endpoint::Mutate, &create(&r)).patch().is_some());
    let mut own = r.clone();
    own["metadata"]["annotations"][guards] = json!("hold");
    assert!(ask(&a, Endpoint::Mutate, &create(&own)).patch().is_some());
}

#[test]
fn settings_not_understood_are_named_in_a_warning_and_case_does_not_matter() {
    let a = admission(Mode::Enforce, "auto", ControllerVersion::new(1, 8, 1), &[]);
    let mut r = dangerous_rollout();
    // Case is not a reason to be refused.
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("Off");
    assert_eq!(
        ask(&a, Endpoint::Validate, &create(&r)).outcome,
        Outcome::Allowed
    );
    // A value that means nothing: the server's mode applies, and the answer says why.
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("disabled");
    let answer = ask(&a, Endpoint::Validate, &create(&r));
    assert_eq!(answer.outcome, Outcome::Denied);
    let warnings = answer.warnings();
    assert_eq!(
        warnings.first().map(String::as_str),
        Some(
            r#"rollout-guard: the object's annotation rollout-guard.io/mode: "disabled" is not understood (expected warn, enforce or off); ignored"#
        ),
        "{warnings:?}"
    );

    // `off` switches the guards off, like the mode; an unknown guard is named.
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("warn");
    r["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("OFF");
    let answer = ask(&a, Endpoint::Mutate, &create(&r));
    assert!(answer.patch().is_none());
    assert!(answer.warnings().is_empty(), "{:?}", answer.warnings());
    r["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("sometimes");
    let answer = ask(&a, Endpoint::Mutate, &create(&r));
    assert!(answer.patch().is_some(), "the server's guards apply");
    assert!(
        answer.warnings().iter().any(|w| w.starts_with(
            r#"rollout-guard: the object's annotation rollout-guard.io/guards: "sometimes" is not understood"#
        )),
        "{:?}",
        answer.warnings()
    );

    // The same for a namespace's, which names the namespace.
    let ns = admission_in_namespaces(
        Mode::Warn,
        "auto",
        ControllerVersion::DEFAULT,
        &[("apps", "rollout-guard.io/mode", "strict")],
    );
    let answer = ask(&ns, Endpoint::Validate, &create(&dangerous_rollout()));
    assert_eq!(answer.outcome, Outcome::Warned);
    assert!(
        answer.warnings().iter().any(|w| w.starts_with(
            r#"rollout-guard: namespace apps's annotation rollout-guard.io/mode: "strict" is not understood"#
        )),
        "{:?}",
        answer.warnings()
    );
}

/// A note about a setting goes through the same budget as the findings: the last line still
/// counts exactly the findings left out.
#[test]
fn a_note_in_front_of_a_full_budget_keeps_the_count_of_what_was_left_out() {
    let a = admission(Mode::Warn, "none", ControllerVersion::DEFAULT, &[]);
    let mut r = dangerous_rollout();
    let steps: Vec<Value> = (0..80)
        .map(|i| json!({"pause": {"duration": format!("soon-{i:03}-and-a-longer-text-so-that-each-warning-takes-room")}}))
        .collect();
    r["spec"]["strategy"]["canary"]["steps"] = json!(steps);
    // Lines shown, plus the count the last line gives of those left out.
    let accounted = |warnings: &[String]| {
        let last = warnings.last().unwrap();
        let left_out: usize = last
            .strip_prefix("rollout-guard: ")
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {last:?}"));
        warnings.len() - 1 + left_out
    };
    let plain = ask(&a, Endpoint::Validate, &create(&r)).warnings();
    r["metadata"]["annotations"]["rollout-guard.io/mode"] = json!("strict");
    let noted = ask(&a, Endpoint::Validate, &create(&r)).warnings();
    assert!(noted[0].contains("not understood"), "{noted:?}");
    assert_eq!(accounted(&noted), accounted(&plain) + 1, "{noted:?}");
}
