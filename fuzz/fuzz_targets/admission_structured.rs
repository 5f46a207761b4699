//! Structure-aware: the fuzz input describes a Rollout or an (Cluster)AnalysisTemplate (steps,
//! pauses with odd durations, background/step analyses, template references, args, dryRun,
//! metrics and providers, status transitions, per-object annotations), plus a few raw edits
//! anywhere in the tree, so the inputs reach the rules and the guards. The answer must satisfy
//! `fuzz_oracle::review_and_check`, and every guard must be idempotent: re-submitting the
//! patched object (same old object, same user) yields no patch.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use fuzz_oracle::{CONTROLLER, admission, review, review_and_check, seed_rollout};
use libfuzzer_sys::fuzz_target;
use rollout_guard::admission::Admission;
use rollout_guard::review::Endpoint;
use serde_json::{Map, Value, json};

fn reviewers() -> &'static [Admission] {
    static R: OnceLock<Vec<Admission>> = OnceLock::new();
    R.get_or_init(|| (0..16).map(admission).collect())
}

// ---------------------------------------------------------------------------------------------
// Leaves: small vocabularies the rules care about, plus anything.

#[derive(Arbitrary, Debug)]
enum Dur {
    Int(i64),
    Small(u8),
    Known(u8),
    Any(String),
}

const DURATIONS: [&str; 20] = [
    "5m",
    "30s",
    "0",
    "0s",
    "1h30m",
    "-1s",
    "-500ms",
    "500ms",
    "1d",
    "",
    "1.5h",
    ".5s",
    "10",
    "+30s",
    "2h45m0.5s",
    "{{args.pause}}",
    "9223372036s",
    "1\u{b5}s",
    "5 m",
    "0.999999999999999999999999999999h",
];

impl Dur {
    fn json(&self) -> Value {
        match self {
            Self::Int(n) => json!(n),
            Self::Small(n) => json!(n),
            Self::Known(i) => json!(DURATIONS[usize::from(*i) % DURATIONS.len()]),
            Self::Any(s) => json!(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Int {
    Small(i8),
    Any(i64),
    Text(String),
    Placeholder,
}

impl Int {
    fn json(&self) -> Value {
        match self {
            Self::Small(n) => json!(n),
            Self::Any(n) => json!(n),
            Self::Text(s) => json!(s),
            Self::Placeholder => json!("{{args.count}}"),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Known(u8),
    Any(String),
}

const TEMPLATE_NAMES: [&str; 6] = [
    "web-check",
    "kayenta-check",
    "nested",
    "cluster-check",
    "missing",
    "self",
];

impl Name {
    fn json(&self) -> Value {
        match self {
            Self::Known(i) => json!(TEMPLATE_NAMES[usize::from(*i) % TEMPLATE_NAMES.len()]),
            Self::Any(s) => json!(s),
        }
    }
}

/// Any JSON leaf or a small container: what a raw edit writes somewhere in the tree.
#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    EmptyObject,
    EmptyArray,
    Object(String, Box<Leaf>),
}

impl Leaf {
    fn json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => json!(b),
            Self::Int(n) => json!(n),
            Self::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Str(s) => json!(s),
            Self::EmptyObject => json!({}),
            Self::EmptyArray => json!([]),
            Self::Object(k, v) => json!({ k: v.json() }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rollouts

#[derive(Arbitrary, Debug, Clone)]
struct TemplateRefIn {
    name: Name,
    cluster: Option<bool>,
}

#[derive(Arbitrary, Debug, Clone)]
struct ArgIn {
    name: Name,
    value: Option<String>,
    value_from: bool,
}

#[derive(Arbitrary, Debug)]
struct AnalysisIn {
    templates: Vec<TemplateRefIn>,
    args: Vec<ArgIn>,
    dry_run: Vec<String>,
    starting_step: Option<i8>,
}

impl AnalysisIn {
    fn json(&self) -> Value {
        let mut a = Map::new();
        let templates: Vec<Value> = self
            .templates
            .iter()
            .take(4)
            .map(|t| {
                let mut r = json!({"templateName": t.name.json()});
                if let Some(c) = t.cluster {
                    r["clusterScope"] = json!(c);
                }
                r
            })
            .collect();
        a.insert("templates".into(), json!(templates));
        if !self.args.is_empty() {
            let args: Vec<Value> = self
                .args
                .iter()
                .take(4)
                .map(|arg| {
                    let mut v = json!({"name": arg.name.json()});
                    if let Some(value) = &arg.value {
                        v["value"] = json!(value);
                    }
                    if arg.value_from {
                        v["valueFrom"] = json!({"podTemplateHashValue": "Latest"});
                    }
                    v
                })
                .collect();
            a.insert("args".into(), json!(args));
        }
        if !self.dry_run.is_empty() {
            let rules: Vec<Value> = self
                .dry_run
                .iter()
                .take(3)
                .map(|m| json!({"metricName": m}))
                .collect();
            a.insert("dryRun".into(), json!(rules));
        }
        if let Some(s) = self.starting_step {
            a.insert("startingStep".into(), json!(s));
        }
        Value::Object(a)
    }
}

#[derive(Arbitrary, Debug)]
enum StepIn {
    SetWeight(Int),
    Pause(Option<Dur>),
    Analysis(AnalysisIn),
    SetCanaryScale {
        replicas: Option<i8>,
        weight: Option<i8>,
        match_traffic_weight: Option<bool>,
    },
    SetHeaderRoute,
    SetMirrorRoute,
    Experiment,
    Plugin,
    Raw(Leaf),
}

impl StepIn {
    fn json(&self) -> Value {
        match self {
            Self::SetWeight(w) => json!({"setWeight": w.json()}),
            Self::Pause(None) => json!({"pause": {}}),
            Self::Pause(Some(d)) => json!({"pause": {"duration": d.json()}}),
            Self::Analysis(a) => json!({"analysis": a.json()}),
            Self::SetCanaryScale {
                replicas,
                weight,
                match_traffic_weight,
            } => {
                let mut s = Map::new();
                if let Some(r) = replicas {
                    s.insert("replicas".into(), json!(r));
                }
                if let Some(w) = weight {
                    s.insert("weight".into(), json!(w));
                }
                if let Some(m) = match_traffic_weight {
                    s.insert("matchTrafficWeight".into(), json!(m));
                }
                json!({ "setCanaryScale": s })
            }
            Self::SetHeaderRoute => json!({"setHeaderRoute": {"name": "h"}}),
            Self::SetMirrorRoute => json!({"setMirrorRoute": {"name": "m"}}),
            Self::Experiment => json!({"experiment": {"templates": []}}),
            Self::Plugin => json!({"plugin": {"name": "p"}}),
            Self::Raw(l) => l.json(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Reason {
    Inconclusive,
    Step,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct StatusIn {
    reasons: Vec<Reason>,
    current_step_index: Option<i8>,
    stable_rs: Option<u8>,
    current_pod_hash: Option<u8>,
    promote_full: Option<bool>,
    abort: Option<bool>,
    controller_pause: Option<bool>,
}

impl StatusIn {
    fn json(&self) -> Value {
        let conditions: Vec<Value> = self
            .reasons
            .iter()
            .take(3)
            .map(|r| {
                let reason = match r {
                    Reason::Inconclusive => "InconclusiveAnalysisRun".to_owned(),
                    Reason::Step => "CanaryPauseStep".to_owned(),
                    Reason::Other(s) => s.clone(),
                };
                json!({"reason": reason, "startTime": "2026-01-01T00:00:00Z"})
            })
            .collect();
        let mut s = json!({"pauseConditions": conditions});
        let hash = |n: u8| json!(format!("rs-{}", n % 4));
        if let Some(i) = self.current_step_index {
            s["currentStepIndex"] = json!(i);
        }
        if let Some(h) = self.stable_rs {
            s["stableRS"] = hash(h);
        }
        if let Some(h) = self.current_pod_hash {
            s["currentPodHash"] = hash(h);
        }
        if let Some(b) = self.promote_full {
            s["promoteFull"] = json!(b);
        }
        if let Some(b) = self.abort {
            s["abort"] = json!(b);
        }
        if let Some(b) = self.controller_pause {
            s["controllerPause"] = json!(b);
        }
        s
    }
}

#[derive(Arbitrary, Debug)]
enum Annotation {
    None,
    Mode(u8),
    Guards(u8),
    HeldPauses(String),
    FailClosed(String),
    Any(String, String),
}

const MODES: [&str; 5] = ["warn", "enforce", "off", " enforce ", "bogus"];
const GUARDS: [&str; 7] = [
    "auto",
    "none",
    "hold",
    "status",
    "fail-closed",
    "status,hold,fail-closed",
    "bogus",
];

impl Annotation {
    fn apply(&self, annotations: &mut Map<String, Value>) {
        let (k, v) = match self {
            Self::None => return,
            Self::Mode(i) => (
                "rollout-guard.io/mode".to_owned(),
                MODES[usize::from(*i) % MODES.len()].to_owned(),
            ),
            Self::Guards(i) => (
                "rollout-guard.io/guards".to_owned(),
                GUARDS[usize::from(*i) % GUARDS.len()].to_owned(),
            ),
            Self::HeldPauses(s) => ("rollout-guard.io/held-pauses".to_owned(), s.clone()),
            Self::FailClosed(s) => ("rollout-guard.io/fail-closed".to_owned(), s.clone()),
            Self::Any(k, v) => (k.clone(), v.clone()),
        };
        annotations.insert(k, json!(v));
    }
}

#[derive(Arbitrary, Debug)]
struct RolloutIn {
    steps: Option<Vec<StepIn>>,
    background: Option<AnalysisIn>,
    replicas: Option<Int>,
    max_surge: Option<Int>,
    dynamic_stable_scale: Option<bool>,
    traffic_routing: bool,
    paused: Option<bool>,
    blue_green: Option<(Option<AnalysisIn>, Option<AnalysisIn>)>,
    annotations: Vec<Annotation>,
    status: Option<StatusIn>,
}

impl RolloutIn {
    fn json(&self) -> Value {
        let mut r = seed_rollout();
        let spec = &mut r["spec"];
        if let Some((pre, post)) = &self.blue_green {
            let mut bg = json!({"activeService": "a"});
            if let Some(a) = pre {
                bg["prePromotionAnalysis"] = a.json();
            }
            if let Some(a) = post {
                bg["postPromotionAnalysis"] = a.json();
            }
            spec["strategy"] = json!({ "blueGreen": bg });
        } else {
            let canary = &mut spec["strategy"]["canary"];
            if let Some(steps) = &self.steps {
                canary["steps"] = steps.iter().take(10).map(StepIn::json).collect();
            }
            if let Some(a) = &self.background {
                canary["analysis"] = a.json();
            }
            if let Some(m) = &self.max_surge {
                canary["maxSurge"] = m.json();
            }
            if let Some(d) = self.dynamic_stable_scale {
                canary["dynamicStableScale"] = json!(d);
            }
            if self.traffic_routing {
                canary["trafficRouting"] = json!({"nginx": {"stableIngress": "i"}});
            }
        }
        if let Some(n) = &self.replicas {
            spec["replicas"] = n.json();
        }
        if let Some(p) = self.paused {
            spec["paused"] = json!(p);
        }
        if let Some(a) = r["metadata"]["annotations"].as_object_mut() {
            for an in self.annotations.iter().take(4) {
                an.apply(a);
            }
        }
        if let Some(s) = &self.status {
            r["status"] = s.json();
        }
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

#[derive(Arbitrary, Debug)]
enum ProviderIn {
    Prometheus,
    Web,
    Datadog,
    Job,
    Kayenta {
        pass: Option<Int>,
        marginal: Option<Int>,
    },
    Plugin,
    None,
    Two,
    Raw(Leaf),
}

impl ProviderIn {
    fn json(&self) -> Option<Value> {
        Some(match self {
            Self::Prometheus => json!({"prometheus": {"query": "up"}}),
            Self::Web => json!({"web": {"url": "http://x"}}),
            Self::Datadog => json!({"datadog": {"query": "q"}}),
            Self::Job => json!({"job": {"spec": {}}}),
            Self::Kayenta { pass, marginal } => {
                let mut t = Map::new();
                if let Some(p) = pass {
                    t.insert("pass".into(), p.json());
                }
                if let Some(m) = marginal {
                    t.insert("marginal".into(), m.json());
                }
                json!({"kayenta": {"threshold": t}})
            }
            Self::Plugin => json!({"plugin": {"argoproj-labs/x": {}}}),
            Self::None => return None,
            Self::Two => json!({"prometheus": {}, "web": {}}),
            Self::Raw(l) => l.json(),
        })
    }
}

#[derive(Arbitrary, Debug)]
enum Condition {
    Known(u8),
    Any(String),
}

const CONDITIONS: [&str; 6] = [
    "result[0] >= 0.95",
    "result[0] < 0.9",
    "  ",
    "(result[0] < 0.9) || !(result[0] >= 0.95)",
    "{{args.threshold}}",
    "result.ok == true",
];

impl Condition {
    fn json(&self) -> Value {
        match self {
            Self::Known(i) => json!(CONDITIONS[usize::from(*i) % CONDITIONS.len()]),
            Self::Any(s) => json!(s),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct MetricIn {
    name: Name,
    interval: Option<Dur>,
    initial_delay: Option<Dur>,
    count: Option<Int>,
    success: Option<Condition>,
    failure: Option<Condition>,
    failure_limit: Option<Int>,
    inconclusive_limit: Option<Int>,
    consecutive_error_limit: Option<Int>,
    consecutive_success_limit: Option<Int>,
    provider: ProviderIn,
}

impl MetricIn {
    fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.json());
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put("interval", self.interval.as_ref().map(Dur::json));
        put("initialDelay", self.initial_delay.as_ref().map(Dur::json));
        put("count", self.count.as_ref().map(Int::json));
        put(
            "successCondition",
            self.success.as_ref().map(Condition::json),
        );
        put(
            "failureCondition",
            self.failure.as_ref().map(Condition::json),
        );
        put("failureLimit", self.failure_limit.as_ref().map(Int::json));
        put(
            "inconclusiveLimit",
            self.inconclusive_limit.as_ref().map(Int::json),
        );
        put(
            "consecutiveErrorLimit",
            self.consecutive_error_limit.as_ref().map(Int::json),
        );
        put(
            "consecutiveSuccessLimit",
            self.consecutive_success_limit.as_ref().map(Int::json),
        );
        put("provider", self.provider.json());
        Value::Object(m)
    }
}

#[derive(Arbitrary, Debug)]
struct TemplateIn {
    name: Name,
    metrics: Vec<MetricIn>,
    args: Vec<ArgIn>,
    dry_run: Vec<String>,
    nested: Vec<TemplateRefIn>,
    annotations: Vec<Annotation>,
}

impl TemplateIn {
    fn json(&self, kind: &str) -> Value {
        // Same encoding as a Rollout's analysis for args, dryRun and nested references.
        let refs = AnalysisIn {
            templates: self.nested.clone(),
            args: self.args.clone(),
            dry_run: self.dry_run.clone(),
            starting_step: None,
        }
        .json();
        let mut spec =
            json!({"metrics": self.metrics.iter().take(5).map(MetricIn::json).collect::<Vec<_>>()});
        for key in ["args", "dryRun"] {
            if let Some(v) = refs.get(key) {
                spec[key] = v.clone();
            }
        }
        if !self.nested.is_empty() {
            spec["templates"] = refs["templates"].clone();
        }
        let mut metadata = json!({"name": self.name.json(), "annotations": {}});
        if kind != "ClusterAnalysisTemplate" {
            metadata["namespace"] = json!(fuzz_oracle::NAMESPACE);
        }
        if let Some(a) = metadata["annotations"].as_object_mut() {
            for an in self.annotations.iter().take(3) {
                an.apply(a);
            }
        }
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec})
    }
}

// ---------------------------------------------------------------------------------------------
// Raw edits: set a node chosen by walking the tree with fuzz-chosen indices.

#[derive(Arbitrary, Debug)]
struct Edit {
    walk: Vec<u8>,
    value: Leaf,
}

fn apply_edit(root: &mut Value, edit: &Edit) {
    // Walk immutably to a JSON Pointer, then write there.
    let mut pointer = String::new();
    let mut node = &*root;
    for &i in edit.walk.iter().take(8) {
        let (token, next) = match node {
            Value::Object(m) if !m.is_empty() => {
                let (k, v) = m.iter().nth(usize::from(i) % m.len()).unwrap();
                (k.replace('~', "~0").replace('/', "~1"), v)
            }
            Value::Array(a) if !a.is_empty() => {
                let n = usize::from(i) % a.len();
                (n.to_string(), &a[n])
            }
            _ => break,
        };
        pointer.push('/');
        pointer.push_str(&token);
        node = next;
    }
    if let Some(target) = root.pointer_mut(&pointer) {
        *target = edit.value.json();
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Subject {
    Rollout(Box<RolloutIn>),
    Template(Box<TemplateIn>),
    ClusterTemplate(Box<TemplateIn>),
}

#[derive(Arbitrary, Debug)]
enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    subject: Subject,
    operation: Operation,
    status_write: bool,
    controller: bool,
    dry_run: bool,
    /// For UPDATE: the old object is the new one with this status (or unchanged).
    old_status: Option<StatusIn>,
    old_steps_differ: bool,
    edits: Vec<Edit>,
}

fn stats() -> bool {
    static S: OnceLock<bool> = OnceLock::new();
    *S.get_or_init(|| std::env::var_os("FUZZ_STATS").is_some())
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let input = Input::arbitrary(u)?;
    let a = &reviewers()[usize::from(input.config & 15)];
    let (kind, mut object) = match &input.subject {
        Subject::Rollout(r) => ("Rollout", r.json()),
        Subject::Template(t) => ("AnalysisTemplate", t.json("AnalysisTemplate")),
        Subject::ClusterTemplate(t) => {
            ("ClusterAnalysisTemplate", t.json("ClusterAnalysisTemplate"))
        }
    };
    let op = match input.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    let old = (op != "CREATE").then(|| {
        let mut old = object.clone();
        if let Some(s) = &input.old_status {
            old["status"] = s.json();
        }
        if input.old_steps_differ
            && let Some(steps) = old.pointer_mut("/spec/strategy/canary/steps")
        {
            *steps = json!([{"setWeight": 50}, {"pause": {"duration": "1m"}}]);
        }
        old
    });
    for edit in input.edits.iter().take(3) {
        apply_edit(&mut object, edit);
    }
    let sub = input.status_write.then_some("status");
    let user = if input.controller {
        CONTROLLER
    } else {
        "jane@example.com"
    };
    let body = |object: &Value| {
        serde_json::to_vec(&review(
            "3f2b6a1e-0c4d-4a8e-9d61-2f1f0e9c7b55",
            kind,
            sub,
            op,
            user,
            object,
            old.as_ref(),
            input.dry_run,
        ))
        .unwrap()
    };
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let verdict = review_and_check(a, endpoint, &body(&object));
        assert_eq!(
            verdict.status,
            200,
            "a well-formed review gets a 200: {}",
            String::from_utf8_lossy(&verdict.body)
        );
        if stats() {
            // Which paths the corpus reaches: `FUZZ_STATS=1 ... -runs=0 corpus/...`.
            let outcome = match (&verdict.patch, verdict.allowed) {
                (Some(_), _) => "patched",
                (None, Some(false)) => "denied",
                _ if !verdict.warnings.is_empty() => "warned",
                _ => "allowed",
            };
            eprintln!(
                "STATS {endpoint:?} {kind} {op} {} {outcome}",
                sub.unwrap_or("main")
            );
        }
        if let Some(patched) = verdict.patched {
            let second = review_and_check(a, endpoint, &body(&patched));
            assert!(
                second.patch.is_none(),
                "guard not idempotent: {:?} then {:?}",
                verdict.patch,
                second.patch
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
