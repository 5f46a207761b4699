//! The rule engine: pure functions from objects (and a template store) to findings.
//!
//! [`check_rollout`] and [`check_template`] are the two entry points; `check` and the webhook
//! both call them, so offline and admission verdicts cannot drift apart.

pub mod analysis;
pub mod canary;
pub mod goregex;
pub mod inconclusive;
pub mod metric;

use crate::duration::PauseDuration;
use crate::finding::{Finding, Rule, Severity, normalize};
use crate::model::{AnalysisRef, AnalysisTemplate, Kind, ObjectRef, Rollout};
use crate::templates::{
    Flattened, RefOrigin, ResolvedTemplate, TemplateStore, flatten, flatten_from,
};
use crate::version::ControllerVersion;

use analysis::{Caller, Run, assemble};
use metric::{Runs, Undeclared, metric_findings};

pub use inconclusive::Trap;

/// Inputs that change verdicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    pub version: ControllerVersion,
    /// Write the long explanations that are composed per finding (D1's). `check` prints
    /// them; the webhook never sends one, so it leaves this off and spends nothing on them.
    pub explain: bool,
}

/// Findings about one Rollout (and the templates it uses), plus what a guard needs.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    /// Set when D1 matches.
    pub trap: Option<Trap>,
}

/// Runs every rule on a Rollout. Findings about its templates' metrics name the template.
pub fn check_rollout(rollout: &Rollout, store: &dyn TemplateStore, cfg: &Config) -> Evaluation {
    let object = ObjectRef::new(Kind::Rollout, &rollout.metadata);
    let namespace = rollout.metadata.namespace.as_deref().unwrap_or_default();
    let mut findings = Vec::new();
    let mut trap = None;

    if let Some(canary) = &rollout.spec.strategy.canary {
        for (i, step) in canary.steps.iter().enumerate() {
            if let Some(pause) = &step.pause
                && pause.length() == PauseDuration::Invalid
            {
                let raw = pause
                    .duration
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                findings.push(
                        Finding::new(
                            Rule::InvalidDuration,
                            Severity::Error,
                            &object,
                            format!("spec.strategy.canary.steps[{i}].pause.duration"),
                            format!(
                                "pause duration `{raw}` is invalid ({}): use seconds or a Go duration like 30s",
                                pause.duration.as_ref().map_or("", crate::duration::invalid_reason)
                            ),
                        )
                        .explain("Argo Rollouts marks the Rollout InvalidSpec for a negative or unparsable pause duration \
                                  (the API server accepts it). Units: ns, us, ms, s, m, h; there is no d. The \
                                  controller reads the seconds as a 32-bit integer: at most 2147483647 (about 68 years)."),
                    );
            }
        }
        if let Some(bg) = &canary.analysis {
            let path = "spec.strategy.canary.analysis";
            let flat = flatten_analysis(bg, &object, path, namespace, store);
            let run = run_for(&flat.templates, flat.findings, bg, &object, path);
            trap = inconclusive::background_findings(rollout, &object, &run, cfg, &mut findings);
            push_run(&mut findings, run, Undeclared::Refused);
        }
    }
    for (path, a) in rollout.foreground_analyses() {
        foreground(&mut findings, a, &object, &path, namespace, store);
    }
    normalize(&mut findings);
    Evaluation { findings, trap }
}

/// Runs the template-level rules on one AnalysisTemplate or ClusterAnalysisTemplate: its
/// metrics with its own defaults, its nested references, its dryRun rules.
pub fn check_template(
    template: &AnalysisTemplate,
    kind: Kind,
    store: &dyn TemplateStore,
    _cfg: &Config,
) -> Vec<Finding> {
    let object = ObjectRef::new(kind, &template.metadata);
    // A ClusterAnalysisTemplate's namespaced references resolve per Rollout.
    let namespace = match kind {
        Kind::ClusterAnalysisTemplate => None,
        _ => Some(template.metadata.namespace.as_deref().unwrap_or_default()),
    };
    let root = ResolvedTemplate {
        object: object.clone(),
        template: std::sync::Arc::new(template.clone()),
    };
    let flat = flatten_from(root, namespace, store);
    let left_out_namespaced = flat.left_out_namespaced;
    let run = assemble(
        &flat.templates,
        flat.findings,
        Caller {
            object: &object,
            path: None,
            analysis: None,
        },
    );
    // A template on its own is not a run: Argo merges the arguments of every template of a
    // run (flattenArgs), so an argument this template and those it nests do not declare may
    // come from another template of a Rollout's analysis. That cannot be proven wrong here:
    // a warning, and nothing when namespaced nested templates were left out (one of them may
    // declare it). Each Rollout using the template is checked with its whole run.
    let undeclared = if left_out_namespaced {
        Undeclared::Unknown
    } else {
        Undeclared::MayBeDeclaredElsewhere
    };
    let mut findings = Vec::new();
    push_run(&mut findings, run, undeclared);
    normalize(&mut findings);
    findings
}

/// The templates an analysis reaches.
fn flatten_analysis(
    a: &AnalysisRef,
    object: &ObjectRef,
    path: &str,
    namespace: &str,
    store: &dyn TemplateStore,
) -> Flattened {
    let origin = RefOrigin {
        object,
        parent: path,
    };
    flatten(&a.templates, origin, namespace, store)
}

/// The run an analysis starts from the templates it reaches (the run borrows them), with
/// the problems found reaching them.
fn run_for<'t>(
    templates: &'t [ResolvedTemplate],
    found: Vec<Finding>,
    a: &AnalysisRef,
    object: &ObjectRef,
    path: &str,
) -> Run<'t> {
    let caller = Caller {
        object,
        path: Some(path),
        analysis: Some(a),
    };
    assemble(templates, found, caller)
}

fn push_run(findings: &mut Vec<Finding>, run: Run, undeclared: Undeclared) {
    findings.extend(run.findings);
    findings.extend(
        run.metrics
            .iter()
            .flat_map(|m| metric_findings(m, undeclared)),
    );
}

/// Step analyses and blue-green analyses block until their run completes: a metric that
/// never ends would hold them forever.
fn foreground(
    findings: &mut Vec<Finding>,
    a: &AnalysisRef,
    object: &ObjectRef,
    path: &str,
    namespace: &str,
    store: &dyn TemplateStore,
) {
    let flat = flatten_analysis(a, object, path, namespace, store);
    let run = run_for(&flat.templates, flat.findings, a, object, path);
    for m in &run.metrics {
        if m.runs() == Some(Runs::Indefinite) {
            findings.push(
                Finding::new(
                    Rule::IndefiniteForegroundMetric,
                    Severity::Error,
                    object,
                    format!("{path}.templates"),
                    format!("metric `{}` of {} {} never ends (interval without count): set count for this analysis", m.name, m.template.kind, m.template.name),
                )
                .explain("A step or blue-green analysis waits for its AnalysisRun to complete; a metric with an interval \
                          and no count measures until the run is terminated, so the Rollout would wait forever."),
            );
        }
    }
    push_run(findings, run, Undeclared::Refused);
}

#[cfg(test)]
mod tests {
    //! Behaviour of the whole engine on small Rollouts; one test per DOMAIN.md edge case.
    use super::*;
    use crate::finding::Severity;
    use crate::templates::MemoryStore;
    use serde_json::{Value, json};

    const V181: ControllerVersion = ControllerVersion::new(1, 8, 1);
    const V182: ControllerVersion = ControllerVersion::new(1, 8, 2);
    const V19: ControllerVersion = ControllerVersion::new(1, 9, 0);
    const V110: ControllerVersion = ControllerVersion::new(1, 10, 0);

    /// A web metric with both conditions: can end Inconclusive.
    fn both() -> Value {
        json!({"name": "web", "interval": "10s", "successCondition": "result == 1",
               "failureCondition": "result == 0", "provider": {"web": {"url": "http://x"}}})
    }

    fn template(name: &str, metrics: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
               "metadata": {"name": name, "namespace": "apps"}, "spec": {"metrics": metrics}})
    }

    fn store_of(templates: &[Value]) -> MemoryStore {
        let mut s = MemoryStore::new();
        for t in templates {
            let parsed: AnalysisTemplate = serde_json::from_value(t.clone()).unwrap();
            if t["kind"] == "ClusterAnalysisTemplate" {
                s.insert_cluster_template(parsed);
            } else {
                s.insert_template(parsed);
            }
        }
        s
    }

    /// A canary with background analysis of `t` and the given steps.
    fn rollout(steps: Value, analysis: Value) -> Rollout {
        serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "apps"},
            "spec": {"replicas": 4, "strategy": {"canary": {"steps": steps, "analysis": analysis}}}
        }))
        .unwrap()
    }

    fn bg(name: &str) -> Value {
        json!({"templates": [{"templateName": name}]})
    }

    fn eval(r: &Rollout, s: &MemoryStore, v: ControllerVersion) -> Evaluation {
        check_rollout(
            r,
            s,
            &Config {
                version: v,
                explain: true,
            },
        )
    }

    fn ids(e: &Evaluation) -> Vec<&'static str> {
        e.findings.iter().map(|f| f.rule.id()).collect()
    }

    fn find(e: &Evaluation, rule: Rule) -> &Finding {
        e.findings
            .iter()
            .find(|f| f.rule == rule)
            .unwrap_or_else(|| panic!("no {rule} in {:?}", ids(e)))
    }

    fn standard_steps() -> Value {
        json!([{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}])
    }

    #[test]
    fn flags_background_analysis_with_timed_pause_by_version() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r = rollout(standard_steps(), bg("t"));
        let old = eval(&r, &s, V181);
        let f = find(&old, Rule::InconclusiveTimedPause);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.path, "spec.strategy.canary.steps[1].pause.duration");
        assert!(
            f.message.contains("upgrade Argo Rollouts to >=1.8.2"),
            "{}",
            f.message
        );
        assert!(f.message.contains("inconclusiveLimit 0"));
        let new = eval(&r, &s, V182);
        assert_eq!(
            find(&new, Rule::InconclusiveTimedPause).severity,
            Severity::Medium
        );
        assert_eq!(new.trap.unwrap().timed_pauses, vec![(1, 300)]);
    }

    #[test]
    fn an_indefinite_metric_is_flagged_whatever_limit_an_argument_gives() {
        // The limit comes from the Pod at run time: an indefinite metric trips any limit.
        let mut m = both();
        m["inconclusiveLimit"] = json!("{{args.limit}}");
        let mut t = template("t", json!([m]));
        t["spec"]["args"] = json!([{"name": "limit"}]);
        let s = store_of(&[t]);
        let analysis = json!({"templates": [{"templateName": "t"}],
            "args": [{"name": "limit", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['limit']"}}}]});
        let r = rollout(standard_steps(), analysis);
        let old = eval(&r, &s, V181);
        assert_eq!(
            find(&old, Rule::InconclusiveTimedPause).severity,
            Severity::High
        );
        assert!(old.trap.is_some());
        let new = eval(&r, &s, V19);
        assert_eq!(
            find(&new, Rule::InconclusiveTimedPause).severity,
            Severity::Medium
        );
        // A counted metric still depends on the limit: no verdict is guessed.
        let mut counted = both();
        counted["count"] = json!(5);
        counted["inconclusiveLimit"] = json!("{{args.limit}}");
        let mut t = template("t", json!([counted]));
        t["spec"]["args"] = json!([{"name": "limit"}]);
        let e = eval(&r, &store_of(&[t]), V19);
        assert!(e.trap.is_none(), "{:?}", ids(&e));
    }

    #[test]
    fn a_rollout_argument_without_a_value_keeps_the_template_default() {
        // Argo's MergeArgs overrides a template argument only with a value or valueFrom.
        let mut m = both();
        m["inconclusiveLimit"] = json!("{{args.limit}}");
        let mut t = template("t", json!([m]));
        t["spec"]["args"] = json!([{"name": "limit", "value": "0"}]);
        let s = store_of(&[t]);
        let analysis = json!({"templates": [{"templateName": "t"}], "args": [{"name": "limit"}]});
        let e = eval(&rollout(standard_steps(), analysis), &s, V19);
        assert!(!ids(&e).contains(&"unresolved-argument"), "{:?}", ids(&e));
        assert!(
            find(&e, Rule::InconclusiveTimedPause)
                .message
                .contains("inconclusiveLimit 0"),
            "{:?}",
            e.findings
        );
    }

    #[test]
    fn one_condition_only_is_not_flagged() {
        let mut m = both();
        m.as_object_mut().unwrap().remove("failureCondition");
        let s = store_of(&[template("t", json!([m]))]);
        let e = eval(&rollout(standard_steps(), bg("t")), &s, V19);
        assert!(
            !ids(&e).contains(&"inconclusive-timed-pause"),
            "{:?}",
            ids(&e)
        );
        assert!(e.trap.is_none());
    }

    #[test]
    fn count_at_or_below_inconclusive_limit_is_not_flagged() {
        let mut m = both();
        m["count"] = json!(3);
        m["inconclusiveLimit"] = json!(3);
        let s = store_of(&[template("t", json!([m.clone()]))]);
        let e = eval(&rollout(standard_steps(), bg("t")), &s, V19);
        assert!(e.trap.is_none());
        assert!(ids(&e).contains(&"limit-never-trips"));
        m["count"] = json!(4);
        let s = store_of(&[template("t", json!([m]))]);
        assert!(
            eval(&rollout(standard_steps(), bg("t")), &s, V19)
                .trap
                .is_some()
        );
    }

    #[test]
    fn dry_run_metrics_do_not_count() {
        let s = store_of(&[template("t", json!([both()]))]);
        let mut a = bg("t");
        a["dryRun"] = json!([{"metricName": "we"}]);
        let e = eval(&rollout(standard_steps(), a), &s, V19);
        assert!(e.trap.is_none(), "{:?}", ids(&e));
    }

    /// dryRun patterns are Go regexes: `\Q...\E` is literal text there (the metric is dry
    /// run), while `(?x)` is a flag Go refuses (the run goes Error: deny-class).
    #[test]
    fn dry_run_patterns_are_read_as_go_reads_them() {
        let s = store_of(&[template("t", json!([both()]))]);
        let with = |pattern: &str| {
            let mut a = bg("t");
            a["dryRun"] = json!([{ "metricName": pattern }]);
            eval(&rollout(standard_steps(), a), &s, V19)
        };
        let e = with("\\Qwe\\E");
        assert!(
            e.trap.is_none() && e.findings.iter().all(|f| f.rule.id() != "invalid-dry-run"),
            "{:?}",
            ids(&e)
        );
        let e = with("(?x)we");
        assert!(ids(&e).contains(&"invalid-dry-run"), "{:?}", ids(&e));
        let e = with("w{1001}");
        assert!(ids(&e).contains(&"invalid-dry-run"), "{:?}", ids(&e));
    }

    /// A condition known only when the run starts (an argument's `valueFrom`) is unknown, not
    /// written: the metric is undecided (named in D3's explanation), never D1 on a guess.
    #[test]
    fn a_condition_from_value_from_is_undecided_not_flagged() {
        let mut metric = both();
        metric["failureCondition"] = json!("{{args.fc}}");
        let mut t = template("t", json!([metric]));
        t["spec"]["args"] = json!([{"name": "fc"}]);
        let s = store_of(&[t]);
        let with = |arg: Value| {
            let mut a = bg("t");
            a["args"] = json!([arg]);
            eval(&rollout(standard_steps(), a), &s, V19)
        };
        let e =
            with(json!({"name": "fc", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}));
        assert!(e.trap.is_none(), "{:?}", ids(&e));
        assert_eq!(ids(&e), ["pause-during-background-analysis"]);
        let e = with(json!({"name": "fc", "value": "result == 0"}));
        assert!(e.trap.is_some(), "{:?}", ids(&e));
    }

    #[test]
    fn pauses_before_starting_step_do_not_count() {
        let s = store_of(&[template("t", json!([both()]))]);
        let mut a = bg("t");
        a["startingStep"] = json!(2);
        let e = eval(&rollout(standard_steps(), a.clone()), &s, V19);
        assert!(e.trap.is_none(), "{:?}", ids(&e));
        a["startingStep"] = json!(1);
        assert!(eval(&rollout(standard_steps(), a), &s, V19).trap.is_some());
    }

    #[test]
    fn starting_step_past_the_steps_never_starts() {
        let s = store_of(&[template("t", json!([both()]))]);
        let mut a = bg("t");
        a["startingStep"] = json!(9);
        let e = eval(&rollout(standard_steps(), a.clone()), &s, V19);
        assert_eq!(ids(&e), ["starting-step-out-of-range"]);
        // == len(steps): starts after the last step; not out of range, and no pause after it.
        a["startingStep"] = json!(4);
        assert!(
            eval(&rollout(standard_steps(), a), &s, V19)
                .findings
                .is_empty()
        );
    }

    #[test]
    fn indefinite_pauses_are_not_the_timed_trap() {
        let s = store_of(&[template("t", json!([both()]))]);
        let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
        let e = eval(&rollout(steps.clone(), bg("t")), &s, V19);
        assert!(e.trap.is_none());
        // >= 1.8.2: a later pause can be skipped while an Inconclusive pause is active (D3).
        let d3 = find(&e, Rule::PauseDuringBackgroundAnalysis);
        assert_eq!(
            (d3.severity, d3.path.as_str()),
            (Severity::Info, "spec.strategy.canary.steps[1].pause")
        );
        // <= 1.8.1: the indefinite pause hides the verdict.
        let old = eval(&rollout(steps, bg("t")), &s, V181);
        assert!(
            find(&old, Rule::PauseDuringBackgroundAnalysis)
                .message
                .contains("<=1.8.1")
        );
    }

    #[test]
    fn d3_beside_d1_names_a_manual_gate_before_the_timed_pause() {
        let s = store_of(&[template("t", json!([both()]))]);
        // An indefinite gate at step 1, the trapped timed pause at step 3: D1 speaks of the
        // pauses after step 3, so the gate the analysis can skip is said on its own.
        let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                           {"pause": {"duration": "1m"}}]);
        let e = eval(&rollout(steps, bg("t")), &s, V19);
        assert!(e.trap.is_some());
        assert_eq!(
            find(&e, Rule::PauseDuringBackgroundAnalysis).path,
            "spec.strategy.canary.steps[1].pause"
        );
        // The first pause after the start is the trapped one: D1 alone.
        let e = eval(&rollout(standard_steps(), bg("t")), &s, V19);
        assert!(e.trap.is_some());
        assert!(
            !ids(&e).contains(&"pause-during-background-analysis"),
            "{:?}",
            ids(&e)
        );
        // A gate at the starting step is reached as the run starts, not while it is paused.
        let steps = json!([{"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1m"}}]);
        let e = eval(&rollout(steps, bg("t")), &s, V19);
        assert!(
            !ids(&e).contains(&"pause-during-background-analysis"),
            "{:?}",
            ids(&e)
        );
    }

    /// Argo reads an int-or-string limit with `IntValue()`: text that is not a whole number
    /// (spaces included) is 0, without an error. A warning, and the rules read 0 too.
    #[test]
    fn limits_that_are_not_whole_numbers_read_as_zero() {
        let limited = |field: &str, text: &str| {
            let mut m = both();
            m["count"] = json!(3);
            m["interval"] = json!("1m");
            m[field] = json!(text);
            store_of(&[template("t", json!([m]))])
        };
        for text in ["abc", "5 ", " 5", "1.5"] {
            let e = eval(
                &rollout(standard_steps(), bg("t")),
                &limited("count", text),
                V19,
            );
            let f = find(&e, Rule::InvalidMetricLimits);
            assert_eq!(
                (f.severity, f.path.as_str()),
                (Severity::Warning, "spec.metrics[0].count"),
                "{text:?}"
            );
            assert!(f.message.contains("reads it as 0"), "{}", f.message);
            // Count 0 with an interval: indefinite, so it can end Inconclusive.
            assert!(e.trap.is_some(), "{text:?}: {:?}", ids(&e));
        }
        // inconclusiveLimit `"3 "` is 0, not 3: count 3 is then above it.
        let e = eval(
            &rollout(standard_steps(), bg("t")),
            &limited("inconclusiveLimit", "3 "),
            V19,
        );
        assert!(e.trap.is_some(), "{:?}", ids(&e));
        assert!(!ids(&e).contains(&"limit-never-trips"), "{:?}", ids(&e));
        // Signs and leading zeros are whole numbers, as Go's strconv.Atoi reads them.
        for text in ["+3", "03"] {
            let e = eval(
                &rollout(standard_steps(), bg("t")),
                &limited("inconclusiveLimit", text),
                V19,
            );
            assert!(
                !ids(&e).contains(&"invalid-metric-limits"),
                "{text:?}: {:?}",
                ids(&e)
            );
            assert!(
                ids(&e).contains(&"limit-never-trips"),
                "{text:?}: {:?}",
                ids(&e)
            );
        }
    }

    #[test]
    fn metric_durations_with_spaces_are_invalid_as_in_go() {
        for field in ["interval", "initialDelay"] {
            for text in ["1m ", " 30s", "\t10s"] {
                let mut m = both();
                m[field] = json!(text);
                let s = store_of(&[template("t", json!([m]))]);
                let e = eval(&rollout(standard_steps(), bg("t")), &s, V19);
                let invalid = find(&e, Rule::InvalidDuration);
                assert_eq!(
                    (invalid.severity, invalid.path.as_str()),
                    (Severity::Error, format!("spec.metrics[0].{field}").as_str()),
                    "{field}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn d3_names_the_metrics_whose_verdict_depends_on_arguments() {
        let counted = json!({"name": "m", "interval": "1m", "count": "{{args.n}}",
            "successCondition": "a", "failureCondition": "b", "provider": {"web": {}}});
        let mut t = template("t", json!([counted]));
        t["spec"]["args"] = json!([{"name": "n"}]);
        let s = store_of(&[t]);
        let mut a = bg("t");
        a["args"] = json!([{"name": "n", "valueFrom": {"podTemplateHashValue": "Latest"}}]);
        let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
        let e = eval(&rollout(steps.clone(), a.clone()), &s, V19);
        let d3 = find(&e, Rule::PauseDuringBackgroundAnalysis);
        assert!(
            d3.explanation.starts_with("On controllers >= 1.8.2")
                && d3.explanation.ends_with(
                    "Nobody sees those pauses. Metrics that may end Inconclusive depending on \
                     arguments: `m`."
                ),
            "{}",
            d3.explanation
        );
        // Without such metrics the explanation is the fixed text alone.
        let plain = store_of(&[template("t", json!([both()]))]);
        let e = eval(&rollout(steps, bg("t")), &plain, V19);
        let d3 = find(&e, Rule::PauseDuringBackgroundAnalysis);
        assert!(
            d3.explanation.ends_with("Nobody sees those pauses."),
            "{}",
            d3.explanation
        );
    }

    #[test]
    fn zero_second_pause_is_timed_and_negative_is_invalid() {
        let s = store_of(&[template("t", json!([both()]))]);
        let steps = json!([{"setWeight": 20}, {"pause": {"duration": "500ms"}}]);
        assert!(eval(&rollout(steps, bg("t")), &s, V19).trap.is_some());
        let steps = json!([{"setWeight": 20}, {"pause": {"duration": "-5s"}}]);
        let e = eval(&rollout(steps, bg("t")), &s, V19);
        assert_eq!(find(&e, Rule::InvalidDuration).severity, Severity::Error);
        assert!(
            find(&e, Rule::InvalidDuration)
                .message
                .contains("(it is negative)"),
            "{}",
            find(&e, Rule::InvalidDuration).message
        );
        assert!(e.trap.is_none());
    }

    #[test]
    fn full_canary_after_the_last_timed_pause_is_promoted_while_inconclusive() {
        let s = store_of(&[template("t", json!([both()]))]);
        let mut r = rollout(
            json!([{"setWeight": 20}, {"pause": {"duration": "1m"}}]),
            bg("t"),
        );
        r.spec.replicas = Some(1);
        let e = eval(&r, &s, V19);
        let d2 = find(&e, Rule::InconclusivePromotion);
        assert_eq!(d2.severity, Severity::High);
        assert!(d2.message.contains("(1/1 pods)"), "{}", d2.message);
        // Not before the fix: 1.8.1 promotes anyway for another reason (D1 high).
        assert!(!ids(&eval(&r, &s, V181)).contains(&"inconclusive-promotion"));
        // Four replicas at 20%: one canary pod, not full, no D2.
        r.spec.replicas = Some(4);
        assert!(!ids(&eval(&r, &s, V19)).contains(&"inconclusive-promotion"));
    }

    #[test]
    fn replica_progress_threshold_makes_a_partial_canary_promotable_from_1_9() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r = |threshold: Value| -> Rollout {
            serde_json::from_value(json!({
                "metadata": {"name": "r", "namespace": "apps"},
                "spec": {"replicas": 10, "strategy": {"canary": {
                    "trafficRouting": {"nginx": {}}, "analysis": bg("t"),
                    "replicaProgressThreshold": threshold,
                    "steps": [{"setWeight": 90}, {"pause": {"duration": "1m"}}]}}}
            }))
            .unwrap()
        };
        // Nine of ten canary pods meet 90 Percent and 9 Pod: promoted while Inconclusive.
        for threshold in [
            json!({"type": "Percent", "value": 90}),
            json!({"type": "Pod", "value": 9}),
        ] {
            let e = eval(&r(threshold.clone()), &s, V19);
            let d2 = find(&e, Rule::InconclusivePromotion);
            assert!(
                d2.message
                    .contains("(9/10 pods, enough for replicaProgressThreshold)"),
                "{threshold}: {}",
                d2.message
            );
        }
        // Not met, not set, or a controller before 1.9 (the field does not exist there).
        for threshold in [json!({"type": "Percent", "value": 91}), Value::Null] {
            let e = eval(&r(threshold.clone()), &s, V19);
            assert!(
                e.trap.is_some() && !ids(&e).contains(&"inconclusive-promotion"),
                "{threshold}"
            );
        }
        let e = eval(&r(json!({"type": "Pod", "value": 1})), &s, V182);
        assert!(e.trap.is_some() && !ids(&e).contains(&"inconclusive-promotion"));
    }

    #[test]
    fn a_later_scale_up_already_meeting_the_threshold_does_not_halt_promotion() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r = |threshold: Value, tail: Value| -> Rollout {
            let mut steps = vec![
                json!({"setWeight": 90}),
                json!({"pause": {"duration": "1m"}}),
            ];
            steps.push(tail);
            serde_json::from_value(json!({
                "metadata": {"name": "r", "namespace": "apps"},
                "spec": {"replicas": 10, "strategy": {"canary": {
                    "trafficRouting": {"nginx": {}}, "analysis": bg("t"),
                    "replicaProgressThreshold": threshold, "steps": steps}}}
            }))
            .unwrap()
        };
        let d2 = |r: &Rollout| ids(&eval(r, &s, V19)).contains(&"inconclusive-promotion");
        let ninety = json!({"type": "Percent", "value": 90});
        // Scaling halts at 9 pods; 9 of the 10 that setWeight 100 wants meet 90%.
        assert!(d2(&r(ninety.clone(), json!({"setWeight": 100}))));
        // 95% of 10 is all 10 pods: the canary is not full at the pause.
        assert!(!d2(&r(
            json!({"type": "Percent", "value": 95}),
            json!({"setWeight": 100})
        )));
        // A scale-down is a scale change the threshold does not excuse.
        assert!(!d2(&r(ninety, json!({"setWeight": 50}))));
        // Without a threshold the later scale-up halts it.
        assert!(!d2(&r(Value::Null, json!({"setWeight": 100}))));
    }

    /// With traffic routing Argo raises the canary to minPodsPerReplicaSet
    /// (CheckMinPodsPerReplicaSet): 2 replicas, setWeight 10 and a minimum of 2 give the full
    /// canary, so after the last timed pause the Rollout is promoted while Inconclusive.
    #[test]
    fn min_pods_per_replica_set_can_make_the_canary_full() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r = |routed: bool, min: Option<i64>| -> Rollout {
            let mut canary = json!({"analysis": bg("t"),
                "steps": [{"setWeight": 10}, {"pause": {"duration": "10m"}}]});
            if routed {
                canary["trafficRouting"] = json!({"nginx": {"stableIngress": "x"}});
            }
            if let Some(min) = min {
                canary["minPodsPerReplicaSet"] = json!(min);
            }
            serde_json::from_value(json!({"metadata": {"name": "r", "namespace": "apps"},
                "spec": {"replicas": 2, "strategy": {"canary": canary}}}))
            .unwrap()
        };
        let d2 = |r: &Rollout, v| ids(&eval(r, &s, v)).contains(&"inconclusive-promotion");
        for v in [V182, V19] {
            assert!(d2(&r(true, Some(2)), v), "{v}");
            // One canary pod of two without the minimum, or without traffic routing.
            assert!(!d2(&r(true, None), v), "{v}");
            assert!(!d2(&r(false, Some(2)), v), "{v}");
        }
    }

    #[test]
    fn later_scaling_steps_block_promotion_unless_already_met() {
        let s = store_of(&[template("t", json!([both()]))]);
        let tail_scales = rollout(
            json!([{"setWeight": 100}, {"pause": {"duration": "1m"}}, {"setWeight": 50}]),
            bg("t"),
        );
        assert!(!ids(&eval(&tail_scales, &s, V19)).contains(&"inconclusive-promotion"));
        let tail_routes = rollout(
            json!([{"setWeight": 100}, {"pause": {"duration": "1m"}}, {"setHeaderRoute": {"name": "h"}}, {"pause": {}}, {"setWeight": 100}]),
            bg("t"),
        );
        assert!(ids(&eval(&tail_routes, &s, V19)).contains(&"inconclusive-promotion"));
        let plugin = rollout(
            json!([{"setWeight": 100}, {"pause": {"duration": "1m"}}, {"plugin": {"name": "p"}}]),
            bg("t"),
        );
        assert!(!ids(&eval(&plugin, &s, V19)).contains(&"inconclusive-promotion"));
    }

    #[test]
    fn basic_canary_without_surge_is_not_full_below_weight_50() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "apps"},
            "spec": {"strategy": {"canary": {"maxSurge": 0, "analysis": bg("t"),
                "steps": [{"setWeight": 40}, {"pause": {"duration": "1m"}}]}}}
        }))
        .unwrap();
        let e = eval(&r, &s, V19);
        assert!(
            e.trap.is_some() && !ids(&e).contains(&"inconclusive-promotion"),
            "{:?}",
            ids(&e)
        );
    }

    /// Argo splits a basic canary to the closest weight it can make, not by rounding up:
    /// three replicas at 70% run two canary pods, so the pause is not followed by a full
    /// canary (D2 does not apply); at 100% they are all canary and it does.
    #[test]
    fn basic_canary_is_full_only_as_argo_splits_it() {
        let s = store_of(&[template("t", json!([both()]))]);
        let at = |weight: i64| -> Rollout {
            serde_json::from_value(json!({
                "metadata": {"name": "r", "namespace": "apps"},
                "spec": {"replicas": 3, "strategy": {"canary": {"analysis": bg("t"),
                    "steps": [{"setWeight": weight}, {"pause": {"duration": "5m"}}]}}}
            }))
            .unwrap()
        };
        let e = eval(&at(70), &s, V19);
        assert!(
            e.trap.is_some() && !ids(&e).contains(&"inconclusive-promotion"),
            "{:?}",
            ids(&e)
        );
        assert!(ids(&eval(&at(100), &s, V19)).contains(&"inconclusive-promotion"));
    }

    #[test]
    fn kayenta_with_marginal_band_is_flagged() {
        let k = |marginal: i64| json!([{"name": "k", "interval": "5m", "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": marginal}}}}]);
        let s = store_of(&[template("t", k(75))]);
        assert!(
            eval(&rollout(standard_steps(), bg("t")), &s, V19)
                .trap
                .is_some()
        );
        let s = store_of(&[template("t", k(90))]);
        assert!(
            eval(&rollout(standard_steps(), bg("t")), &s, V19)
                .trap
                .is_none()
        );
    }

    #[test]
    fn job_metrics_inconclude_only_from_1_10() {
        let s = store_of(&[template(
            "t",
            json!([{"name": "j", "provider": {"job": {"spec": {}}}}]),
        )]);
        let r = rollout(standard_steps(), bg("t"));
        assert!(eval(&r, &s, V19).trap.is_none());
        assert!(eval(&r, &s, V110).trap.is_some());
    }

    #[test]
    fn cluster_scoped_templates_are_resolved_by_name() {
        let mut cat = template("shared", json!([both()]));
        cat["kind"] = json!("ClusterAnalysisTemplate");
        let s = store_of(&[cat]);
        let a = json!({"templates": [{"templateName": "shared", "clusterScope": true}]});
        let e = eval(&rollout(standard_steps(), a), &s, V19);
        assert!(e.trap.is_some());
        let f = find(&e, Rule::InconclusiveTimedPause);
        assert!(f.explanation.contains("ClusterAnalysisTemplate shared"));
        // Without clusterScope the namespaced lookup misses it.
        let e = eval(&rollout(standard_steps(), bg("shared")), &s, V19);
        assert!(e.trap.is_none());
        assert!(ids(&e).contains(&"missing-template"));
    }

    #[test]
    fn a_cluster_template_on_its_own_leaves_namespaced_references_to_each_rollout() {
        // `inner` exists only in `default`: checked on its own, the cluster template must not
        // take it for its own, nor call it missing. A Rollout resolves it in its namespace.
        let mut cat = template("shared", json!([]));
        cat["kind"] = json!("ClusterAnalysisTemplate");
        cat["metadata"].as_object_mut().unwrap().remove("namespace");
        cat["spec"]["templates"] = json!([{"templateName": "inner"}]);
        let mut inner = template(
            "inner",
            json!([{"name": "web", "count": 2, "failureLimit": 3,
            "provider": {"web": {"url": "http://x"}}}]),
        );
        inner["metadata"]["namespace"] = json!("default");
        let s = store_of(&[cat.clone(), inner.clone()]);
        let parsed: AnalysisTemplate = serde_json::from_value(cat).unwrap();
        let alone = check_template(
            &parsed,
            Kind::ClusterAnalysisTemplate,
            &s,
            &Config::default(),
        );
        assert!(alone.is_empty(), "{alone:?}");
        // The same template as an AnalysisTemplate in `default` does take `default/inner` (whose
        // limits Argo rejects), so the reference is really followed there.
        let own = check_template(&parsed, Kind::AnalysisTemplate, &s, &Config::default());
        assert!(
            own.iter().any(|f| f.rule == Rule::InvalidMetricLimits),
            "{own:?}"
        );
        // A Rollout in `default` reaches it through the cluster template.
        let mut r = rollout(
            standard_steps(),
            json!({"templates": [{"templateName": "shared", "clusterScope": true}]}),
        );
        r.metadata.namespace = Some("default".into());
        assert!(ids(&eval(&r, &s, V19)).contains(&"invalid-metric-limits"));
    }

    #[test]
    fn nested_templates_contribute_metrics_and_cycles_are_errors() {
        let outer = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "outer"}, "spec": {"templates": [{"templateName": "inner"}]}});
        let s = store_of(&[outer.clone(), template("inner", json!([both()]))]);
        assert!(
            eval(&rollout(standard_steps(), bg("outer")), &s, V19)
                .trap
                .is_some()
        );

        let mut inner = template("inner", json!([both()]));
        inner["spec"]["templates"] = json!([{"templateName": "outer"}]);
        let s = store_of(&[outer, inner]);
        let e = eval(&rollout(standard_steps(), bg("outer")), &s, V19);
        let cycle = find(&e, Rule::TemplateCycle);
        assert_eq!(cycle.severity, Severity::Error);
        assert_eq!(cycle.object.name, "inner");
    }

    #[test]
    fn missing_templates_warn_and_do_not_guess() {
        let e = eval(
            &rollout(standard_steps(), bg("nowhere")),
            &MemoryStore::new(),
            V19,
        );
        // D3 (info) depends only on the steps, so it still applies.
        assert_eq!(
            ids(&e),
            ["missing-template", "pause-during-background-analysis"]
        );
        assert_eq!(e.findings[0].severity, Severity::Warning);
        assert!(e.trap.is_none());
    }

    #[test]
    fn arguments_fill_placeholders_and_unresolved_ones_are_errors() {
        let mut m = both();
        m["count"] = json!("{{args.runs}}");
        m["inconclusiveLimit"] = json!("{{args.limit}}");
        let mut t = template("t", json!([m]));
        t["spec"]["args"] = json!([{"name": "runs", "value": "2"}, {"name": "limit"}]);
        let s = store_of(&[t]);
        let mut a = bg("t");
        let e = eval(&rollout(standard_steps(), a.clone()), &s, V19);
        assert_eq!(
            find(&e, Rule::UnresolvedArgument).path,
            "spec.strategy.canary.analysis.args"
        );
        assert!(e.trap.is_none(), "an unknown limit is not a guess");
        a["args"] = json!([{"name": "limit", "value": "1"}]);
        assert!(
            eval(&rollout(standard_steps(), a.clone()), &s, V19)
                .trap
                .is_some()
        );
        a["args"] = json!([{"name": "limit", "value": "1"}, {"name": "runs", "value": "1"}]);
        let e = eval(&rollout(standard_steps(), a), &s, V19);
        assert!(
            e.trap.is_none() && ids(&e).contains(&"limit-never-trips"),
            "{:?}",
            ids(&e)
        );
    }

    /// Argo merges the arguments of every template of a run (flattenArgs): a template may use
    /// one that a sibling template declares. On its own that is not provably wrong (a
    /// warning); in a Rollout's run without the sibling it is an error.
    #[test]
    fn a_template_alone_may_use_an_argument_a_sibling_declares() {
        let a = template(
            "a",
            json!([{"name": "m", "interval": "{{args.every}}", "provider": {"job": {"spec": {}}}}]),
        );
        let mut b = template(
            "b",
            json!([{"name": "n", "provider": {"job": {"spec": {}}}}]),
        );
        b["spec"]["args"] = json!([{"name": "every", "value": "1m"}]);
        let s = store_of(&[a.clone(), b]);
        let both = json!({"templates": [{"templateName": "a"}, {"templateName": "b"}]});
        let e = eval(&rollout(standard_steps(), both), &s, V19);
        assert!(!ids(&e).contains(&"unresolved-argument"), "{:?}", ids(&e));
        // Without the sibling, the run cannot start.
        let e = eval(&rollout(standard_steps(), bg("a")), &s, V19);
        let f = find(&e, Rule::UnresolvedArgument);
        assert_eq!(
            (f.severity, f.path.as_str()),
            (Severity::Error, "spec.metrics[0].interval")
        );
        // On its own: a warning that says where the argument must come from.
        let parsed: AnalysisTemplate = serde_json::from_value(a).unwrap();
        let alone = check_template(&parsed, Kind::AnalysisTemplate, &s, &Config::default());
        assert_eq!(alone.len(), 1, "{alone:?}");
        assert_eq!(
            (alone[0].rule, alone[0].severity, alone[0].path.as_str()),
            (
                Rule::UnresolvedArgument,
                Severity::Warning,
                "spec.metrics[0].interval"
            )
        );
        assert!(
            alone[0]
                .message
                .contains("another template of the same run"),
            "{}",
            alone[0].message
        );
        // Declared by the template itself: nothing to say.
        let mut own = template(
            "own",
            json!([{"name": "m", "interval": "{{args.every}}", "provider": {"job": {"spec": {}}}}]),
        );
        own["spec"]["args"] = json!([{"name": "every", "value": "1m"}]);
        let parsed: AnalysisTemplate = serde_json::from_value(own).unwrap();
        let alone = check_template(&parsed, Kind::AnalysisTemplate, &s, &Config::default());
        assert!(alone.is_empty(), "{alone:?}");
    }

    /// A ClusterAnalysisTemplate on its own leaves its namespaced nested templates to each
    /// Rollout: one of them may declare the argument, so nothing is said about it.
    #[test]
    fn a_cluster_template_alone_skips_arguments_when_namespaced_templates_were_left_out() {
        let mut outer = template(
            "outer",
            json!([{"name": "m", "count": "{{args.n}}", "interval": "1m", "provider": {"job": {"spec": {}}}}]),
        );
        outer["kind"] = json!("ClusterAnalysisTemplate");
        outer["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        outer["spec"]["templates"] = json!([{"templateName": "inner"}]);
        let mut inner = template(
            "inner",
            json!([{"name": "x", "provider": {"job": {"spec": {}}}}]),
        );
        inner["spec"]["args"] = json!([{"name": "n", "value": "3"}]);
        let s = store_of(&[outer.clone(), inner]);
        let parsed: AnalysisTemplate = serde_json::from_value(outer.clone()).unwrap();
        let alone = check_template(
            &parsed,
            Kind::ClusterAnalysisTemplate,
            &s,
            &Config::default(),
        );
        assert!(alone.is_empty(), "{alone:?}");
        // A Rollout in `apps` reaches `inner` and its argument.
        let r = rollout(
            standard_steps(),
            json!({"templates": [{"templateName": "outer", "clusterScope": true}]}),
        );
        assert!(!ids(&eval(&r, &s, V19)).contains(&"unresolved-argument"));
        // Nesting only cluster templates, nothing is left out: the warning stays.
        outer["spec"]["templates"] = json!([{"templateName": "other", "clusterScope": true}]);
        let parsed: AnalysisTemplate = serde_json::from_value(outer).unwrap();
        let alone = check_template(
            &parsed,
            Kind::ClusterAnalysisTemplate,
            &s,
            &Config::default(),
        );
        assert!(
            alone
                .iter()
                .any(|f| f.rule == Rule::UnresolvedArgument && f.severity == Severity::Warning),
            "{alone:?}"
        );
    }

    /// Argo reads a pause's seconds as an int32 (`strconv.ParseInt(s, 10, 32)`, then
    /// `time.ParseDuration`, else -1: InvalidSpec).
    #[test]
    fn pause_seconds_beyond_int32_are_invalid() {
        let r = |d: Value| {
            serde_json::from_value::<Rollout>(json!({"metadata": {"name": "r"},
                "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": d}}]}}}}))
            .unwrap()
        };
        let s = MemoryStore::new();
        for bad in [
            json!("3000000000"),
            json!(3_000_000_000_i64),
            json!("600000h"),
        ] {
            let e = eval(&r(bad.clone()), &s, V19);
            assert_eq!(ids(&e), ["invalid-duration"], "{bad}");
            assert_eq!(
                e.findings[0].path,
                "spec.strategy.canary.steps[1].pause.duration"
            );
        }
        for ok in [json!("2147483647"), json!(2_147_483_647), json!("596523h")] {
            assert!(eval(&r(ok.clone()), &s, V19).findings.is_empty(), "{ok}");
        }
    }

    /// A `{{args.x}}` nobody declares in a condition or the provider's query: upstream's
    /// ResolveMetricArgs fails, the run goes Error and a background run aborts the Rollout.
    #[test]
    fn undeclared_placeholders_in_conditions_or_query_are_unresolved() {
        let mut t = template(
            "t",
            json!([{"name": "m", "interval": "1m",
                "successCondition": "result[0] >= {{args.min}}",
                "failureCondition": "result[0] < 0.5",
                "provider": {"prometheus": {"query": "sum(rate(x{svc=\"{{args.service}}\"}[1m]))"}}}]),
        );
        t["spec"]["args"] = json!([{"name": "service-name"}]);
        let s = store_of(&[t.clone()]);
        let a = json!({"templates": [{"templateName": "t"}],
            "args": [{"name": "service-name", "value": "shop"}]});
        let e = eval(
            &rollout(json!([{"setWeight": 20}, {"pause": {}}]), a.clone()),
            &s,
            V19,
        );
        let unresolved: Vec<_> = e
            .findings
            .iter()
            .filter(|f| f.rule == Rule::UnresolvedArgument)
            .map(|f| (f.severity, f.path.as_str()))
            .collect();
        assert_eq!(
            unresolved,
            [
                (Severity::Error, "spec.metrics[0].provider"),
                (Severity::Error, "spec.metrics[0].successCondition"),
            ]
        );
        // Declared, they resolve.
        t["spec"]["args"] = json!([{"name": "service"}, {"name": "min", "value": "0.9"}]);
        let s = store_of(&[t]);
        let mut a = a;
        a["args"] = json!([{"name": "service", "value": "shop"}]);
        let e = eval(
            &rollout(json!([{"setWeight": 20}, {"pause": {}}]), a),
            &s,
            V19,
        );
        assert!(!ids(&e).contains(&"unresolved-argument"), "{:?}", ids(&e));
    }

    /// A condition an argument resolves to "" is unset upstream (EvaluateResult tests `!= ""`
    /// after substitution): one condition only, never Inconclusive.
    #[test]
    fn a_condition_resolved_to_empty_is_unset() {
        let mut m = both();
        m["failureCondition"] = json!("{{args.fail}}");
        let mut t = template("t", json!([m]));
        t["spec"]["args"] = json!([{"name": "fail", "value": ""}]);
        let s = store_of(&[t]);
        let e = eval(&rollout(standard_steps(), bg("t")), &s, V19);
        assert!(e.trap.is_none(), "{:?}", ids(&e));
        // The Rollout's value fills it: both conditions, the trap.
        let mut a = bg("t");
        a["args"] = json!([{"name": "fail", "value": "result == 0"}]);
        assert!(eval(&rollout(standard_steps(), a), &s, V19).trap.is_some());
    }

    #[test]
    fn indefinite_metrics_in_step_analysis_are_errors() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "apps"},
            "spec": {"strategy": {"canary": {"steps": [{"analysis": {"templates": [{"templateName": "t"}]}}]}}}
        }))
        .unwrap();
        let e = eval(&r, &s, V19);
        assert_eq!(ids(&e), ["indefinite-foreground-metric"]);
        assert_eq!(
            e.findings[0].path,
            "spec.strategy.canary.steps[0].analysis.templates"
        );
        let bg: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "apps"},
            "spec": {"strategy": {"blueGreen": {"prePromotionAnalysis": {"templates": [{"templateName": "t"}]}}}}
        }))
        .unwrap();
        assert_eq!(ids(&eval(&bg, &s, V19)), ["indefinite-foreground-metric"]);
    }

    #[test]
    fn template_rules_run_on_templates_alone() {
        let mut m = both();
        m["interval"] = json!("1d");
        let t: AnalysisTemplate = serde_json::from_value(template(
            "t",
            json!([m, {"name": "web", "provider": {"job": {}}}]),
        ))
        .unwrap();
        let f = check_template(
            &t,
            Kind::AnalysisTemplate,
            &MemoryStore::new(),
            &Config::default(),
        );
        let ids: Vec<_> = f.iter().map(|f| f.rule.id()).collect();
        assert_eq!(ids, ["invalid-duration", "duplicate-metric-name"]);
    }

    #[test]
    fn blue_green_and_plain_canaries_are_clean() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r"},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}]}}}
        }))
        .unwrap();
        assert!(eval(&r, &s, V19).findings.is_empty());
    }

    #[test]
    fn without_explanations_only_the_long_text_is_left_out() {
        let s = store_of(&[template("t", json!([both()]))]);
        let r = rollout(
            json!([{"setWeight": 20}, {"pause": {"duration": "1m"}}]),
            bg("t"),
        );
        for v in [V181, V19] {
            let full = eval(&r, &s, v);
            let terse = check_rollout(
                &r,
                &s,
                &Config {
                    version: v,
                    explain: false,
                },
            );
            assert_eq!(full.trap, terse.trap);
            assert_eq!(full.findings.len(), terse.findings.len());
            assert!(
                full.findings
                    .iter()
                    .any(|f| f.rule == Rule::InconclusiveTimedPause)
            );
            for (f, t) in full.findings.iter().zip(&terse.findings) {
                assert_eq!((f.rule, &f.path, &f.message), (t.rule, &t.path, &t.message));
                if f.rule == Rule::InconclusiveTimedPause {
                    assert!(f.explanation.contains("Fixes:"), "{}", f.explanation);
                    assert!(t.explanation.is_empty(), "{}", t.explanation);
                } else {
                    assert_eq!(f.explanation, t.explanation);
                }
            }
        }
    }

    #[test]
    fn messages_are_single_lines_of_reasonable_length() {
        let s = store_of(&[template("t", json!([both()]))]);
        let mut r = rollout(
            json!([{"setWeight": 20}, {"pause": {"duration": "1m"}}]),
            bg("t"),
        );
        r.spec.replicas = Some(1);
        for v in [V181, V19] {
            for f in eval(&r, &s, v).findings {
                assert!(
                    !f.message.contains('\n') && f.message.len() <= 160,
                    "{}: {}",
                    f.message.len(),
                    f.message
                );
                assert!(!f.explanation.is_empty());
            }
        }
    }

    /// Regression (found by the `admission_structured` fuzz target): replicas, weights,
    /// maxSurge and metric limits are unbounded integers from the object; multiplying or
    /// adding them overflowed (a panic in debug builds, wrapped nonsense in release).
    #[test]
    fn extreme_integers_do_not_overflow() {
        let max = i64::MAX;
        let metric = json!({"name": "web", "interval": "2562047h", "initialDelay": "2562047h",
            "count": max, "failureLimit": max, "consecutiveSuccessLimit": max,
            "inconclusiveLimit": max, "successCondition": "result == 1",
            "failureCondition": "result == 0", "provider": {"web": {"url": "http://x"}}});
        let s = store_of(&[template("t", json!([metric]))]);
        for (surge, routing, scale) in [
            (json!(0), None, json!({"replicas": 1})),
            (json!("9223372036854775807%"), None, json!({"weight": max})),
            (json!(1), Some(json!({"nginx": {}})), json!({"weight": max})),
        ] {
            let mut canary = json!({"maxSurge": surge,
                "analysis": {"templates": [{"templateName": "t"}], "startingStep": 1},
                "steps": [{"setWeight": 100}, {"pause": {"duration": "1m"}},
                    {"setCanaryScale": scale}, {"setWeight": max}]});
            if let Some(r) = routing {
                canary["trafficRouting"] = r;
            }
            let r: Rollout = serde_json::from_value(json!({
                "metadata": {"name": "r", "namespace": "apps"},
                "spec": {"replicas": max, "strategy": {"canary": canary}}
            }))
            .unwrap();
            for v in [V181, V19] {
                assert!(eval(&r, &s, v).trap.is_some());
            }
        }
    }

    /// D3 without D1 (>= 1.8.2): a pause at the starting step is reached as the run starts,
    /// not while it can be paused Inconclusive; the first pause after it is the one said.
    #[test]
    fn d3_without_d1_skips_a_pause_at_the_starting_step() {
        let s = store_of(&[template("t", json!([both()]))]);
        let steps = json!([{"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
        let e = eval(&rollout(steps, bg("t")), &s, V19);
        assert!(e.trap.is_none(), "{:?}", ids(&e));
        assert_eq!(
            find(&e, Rule::PauseDuringBackgroundAnalysis).path,
            "spec.strategy.canary.steps[2].pause"
        );
        let mut a = bg("t");
        a["startingStep"] = json!(1);
        let steps = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
        let e = eval(&rollout(steps, a), &s, V19);
        assert_eq!(
            find(&e, Rule::PauseDuringBackgroundAnalysis).path,
            "spec.strategy.canary.steps[3].pause"
        );
    }

    /// D1 names the first metric that can end Inconclusive and counts the others.
    #[test]
    fn d1_names_the_first_metric_and_counts_the_others() {
        let r = rollout(standard_steps(), bg("t"));
        let s = store_of(&[template("t", json!([both()]))]);
        let message = find(&eval(&r, &s, V19), Rule::InconclusiveTimedPause)
            .message
            .clone();
        assert!(
            message.starts_with("`web` can end Inconclusive (inconclusiveLimit 0)"),
            "{message}"
        );
        let mut other = both();
        other["name"] = json!("errors");
        let s = store_of(&[template("t", json!([both(), other]))]);
        let message = find(&eval(&r, &s, V19), Rule::InconclusiveTimedPause)
            .message
            .clone();
        assert!(
            message.starts_with("`web` (+1 more) can end Inconclusive"),
            "{message}"
        );
    }

    /// DOMAIN D1 "say whether inconclusiveLimit is 0/unset": the explanation says that the
    /// first inconclusive measurement ends the run only when the limit is 0.
    #[test]
    fn d1_explains_a_zero_limit_only_when_it_is_zero() {
        let zero = "inconclusiveLimit is 0 (the default)";
        let r = rollout(standard_steps(), bg("t"));
        let s = store_of(&[template("t", json!([both()]))]);
        let f = find(&eval(&r, &s, V19), Rule::InconclusiveTimedPause).clone();
        assert!(f.explanation.contains(zero), "{}", f.explanation);
        let mut m = both();
        m["inconclusiveLimit"] = json!(2);
        let s = store_of(&[template("t", json!([m]))]);
        let f = find(&eval(&r, &s, V19), Rule::InconclusiveTimedPause).clone();
        assert!(f.message.contains("(inconclusiveLimit 2)"), "{}", f.message);
        assert!(!f.explanation.contains(zero), "{}", f.explanation);
    }

    /// DOMAIN D1: the earliest verdict comes about initialDelay + L x interval after the run
    /// starts, and only when startingStep is the pause's own index can it be compared with
    /// the pause's duration.
    #[test]
    fn d1_times_the_earliest_verdict_only_when_the_run_starts_at_the_pause() {
        let s = |limit: i64| {
            let mut m = both();
            m["interval"] = json!("1m");
            m["initialDelay"] = json!("30s");
            m["inconclusiveLimit"] = json!(limit);
            store_of(&[template("t", json!([m]))])
        };
        let steps = json!([{"setWeight": 20}, {"pause": {"duration": "5m"}}]);
        let at = |starting: i64| {
            let mut a = bg("t");
            a["startingStep"] = json!(starting);
            rollout(steps.clone(), a)
        };
        // 30s + 2 x 1m = 2m30s, within the 5m pause.
        let f = find(&eval(&at(1), &s(2), V19), Rule::InconclusiveTimedPause).clone();
        assert!(
            f.explanation.contains(
                "The run starts at this pause; the earliest verdict of `web` comes about 2m30s after that"
            ) && f.explanation.contains("within the 5m pause"),
            "{}",
            f.explanation
        );
        // 30s + 5 x 1m = 5m30s, after it.
        let f = find(&eval(&at(1), &s(5), V19), Rule::InconclusiveTimedPause).clone();
        assert!(
            f.explanation.contains("comes about 5m30s after that")
                && f.explanation.contains("after the 5m pause"),
            "{}",
            f.explanation
        );
        // The run starts before the pause: when the pause begins is not known, so no timing.
        let f = find(&eval(&at(0), &s(2), V19), Rule::InconclusiveTimedPause).clone();
        assert!(
            !f.explanation.contains("The run starts at this pause"),
            "{}",
            f.explanation
        );
    }

    /// D2 looks only at the steps after the timed pause: a step analysis before it has
    /// completed by then, while one after it halts the Rollout (a foreground step waits).
    #[test]
    fn only_blocking_steps_after_the_timed_pause_stop_promotion() {
        let smoke = template(
            "smoke",
            json!([{"name": "smoke", "provider": {"job": {"spec": {}}}}]),
        );
        let s = store_of(&[template("t", json!([both()])), smoke]);
        let gate = json!({"analysis": {"templates": [{"templateName": "smoke"}]}});
        let before = rollout(
            json!([{"setWeight": 100}, gate.clone(), {"pause": {"duration": "1m"}}]),
            bg("t"),
        );
        let e = eval(&before, &s, V19);
        assert_eq!(
            find(&e, Rule::InconclusivePromotion).path,
            "spec.strategy.canary.steps[2].pause.duration"
        );
        let after = rollout(
            json!([{"setWeight": 100}, {"pause": {"duration": "1m"}}, gate]),
            bg("t"),
        );
        let e = eval(&after, &s, V19);
        assert!(
            e.trap.is_some() && !ids(&e).contains(&"inconclusive-promotion"),
            "{:?}",
            ids(&e)
        );
    }

    /// DOMAIN (e) with §3: a streak metric takes no inconclusive measurement; its run ends
    /// Inconclusive at the count-th measurement without the streak. The explanation times it
    /// so, and offers no failureCondition fix, which cannot change a streak's verdict.
    #[test]
    fn d1_times_a_streak_by_its_count_and_offers_only_the_fixes_that_apply() {
        let streak = json!({"name": "streak", "interval": "1m", "count": 10,
            "consecutiveSuccessLimit": 3, "successCondition": "result == 1",
            "provider": {"web": {"url": "http://x"}}});
        let s = store_of(&[template("t", json!([streak]))]);
        let mut a = bg("t");
        a["startingStep"] = json!(1);
        let steps = json!([{"setWeight": 20}, {"pause": {"duration": "5m"}}]);
        let f = find(
            &eval(&rollout(steps, a), &s, V19),
            Rule::InconclusiveTimedPause,
        )
        .clone();
        assert!(
            f.explanation
                .contains("comes about 9m after that (initialDelay + (count - 1) x interval")
                && f.explanation.contains("after the 5m pause"),
            "{}",
            f.explanation
        );
        assert!(
            !f.explanation.contains("first inconclusive measurement"),
            "{}",
            f.explanation
        );
        assert!(
            !f.explanation.contains("failureCondition"),
            "{}",
            f.explanation
        );
        assert!(
            f.explanation
                .ends_with("or run rollout-guard's status guard (>= 1.8.2)."),
            "{}",
            f.explanation
        );
    }
}
