//! One AnalysisRun as Argo would start it from a list of template references: the templates
//! reached, their metrics with arguments substituted and dry-run marked, and the run-level
//! problems (unresolved arguments, duplicate metric names, bad dryRun rules).

use std::collections::{BTreeMap, HashMap};

use crate::finding::{Finding, Rule, Severity};
use crate::model::{AnalysisRef, Arg, DryRun, Kind, ObjectRef, Text};
use crate::rules::goregex::{self, Refused};
use crate::rules::metric::RunMetric;
use crate::templates::{ArgValue, Args, ResolvedTemplate};

/// A run's metrics (borrowed from its templates) and the problems found while assembling it.
#[derive(Debug, Clone, Default)]
pub struct Run<'t> {
    pub metrics: Vec<RunMetric<'t>>,
    pub findings: Vec<Finding>,
}

/// Who asks for the run: a Rollout's analysis (with its args and dryRun) or a template on
/// its own (its defaults only).
pub struct Caller<'a> {
    pub object: &'a ObjectRef,
    /// Path of the analysis block, e.g. `spec.strategy.canary.analysis`; `None` for a template
    /// checked on its own.
    pub path: Option<&'a str>,
    pub analysis: Option<&'a AnalysisRef>,
}

/// The run of the templates a flattening reached; `findings` are the flattening's, to which
/// the run's own are added.
pub fn assemble<'t>(
    templates: &'t [ResolvedTemplate],
    mut findings: Vec<Finding>,
    caller: Caller<'_>,
) -> Run<'t> {
    // Whether the run's metrics are all known: only then can a dryRun rule be said to match
    // none of them.
    let complete =
        caller.path.is_some() && !findings.iter().any(|f| f.rule == Rule::MissingTemplate);
    let supplied: &[Arg] = caller
        .analysis
        .map(|a| a.args.as_slice())
        .unwrap_or_default();
    // Argo flattens the namespaced templates' arguments first, then the cluster ones
    // (`getAnalysisTemplatesFromRefs` keeps two lists).
    let ordered = || {
        let cluster = |t: &&ResolvedTemplate| t.object.kind == Kind::ClusterAnalysisTemplate;
        templates
            .iter()
            .filter(move |t| !cluster(t))
            .chain(templates.iter().filter(cluster))
    };
    let args = Args::merge(ordered().flat_map(|t| &t.template.spec.args), supplied);
    conflicting_values(ordered(), &mut findings);

    if let Some(path) = caller.path {
        for t in templates {
            for arg in &t.template.spec.args {
                // Reported where it is declared without a value (a `valueFrom` declaration
                // that a later bare one replaced is not the one to fix).
                let bare = arg.value.is_none() && arg.value_from.is_none();
                if bare && args.get(&arg.name) == Some(&ArgValue::Missing) {
                    findings.push(
                        Finding::new(
                            Rule::UnresolvedArgument,
                            Severity::Error,
                            caller.object,
                            format!("{path}.args"),
                            format!(
                                "argument `{}` of {} {} has no value: add it to {path}.args",
                                arg.name, t.object.kind, t.object.name
                            ),
                        )
                        .explain(
                            "Argo Rollouts cannot start an AnalysisRun while a template argument has \
                             neither a default nor a value from the Rollout.",
                        ),
                    );
                }
            }
        }
    }

    let mut metrics = Vec::with_capacity(
        templates
            .iter()
            .map(|t| t.template.spec.metrics.len())
            .sum(),
    );
    // A run has a handful of metrics: comparing names beats hashing each one.
    let mut owners: BTreeMap<&str, &ObjectRef> = BTreeMap::new();
    for t in templates {
        for (i, m) in t.template.spec.metrics.iter().enumerate() {
            if let Some(first) = owners.get(m.name.as_str()) {
                let other = if **first == t.object {
                    "this template".to_owned()
                } else {
                    format!("{} {}", first.kind, first.name)
                };
                findings.push(
                    Finding::new(
                        Rule::DuplicateMetricName,
                        Severity::Error,
                        &t.object,
                        format!("spec.metrics[{i}].name"),
                        format!("metric name `{}` is also used in {other}: rename one of them", m.name),
                    )
                    .explain("Argo Rollouts rejects an AnalysisRun whose templates define the same metric name twice."),
                );
            } else {
                owners.insert(&m.name, &t.object);
            }
            metrics.push(RunMetric::new(&t.object, i, m, &args));
        }
    }

    // (object, path of the block that holds `dryRun`, index, rule)
    let mut rules: Vec<(&ObjectRef, &str, usize, &DryRun)> = Vec::new();
    if let (Some(a), Some(path)) = (caller.analysis, caller.path) {
        rules.extend(
            a.dry_run
                .iter()
                .enumerate()
                .map(|(i, d)| (caller.object, path, i, d)),
        );
    }
    for t in templates {
        rules.extend(
            t.template
                .spec
                .dry_run
                .iter()
                .enumerate()
                .map(|(i, d)| (&t.object, "spec", i, d)),
        );
    }
    let mut seen_patterns: HashMap<&str, ()> = HashMap::new();
    for (object, parent, i, rule) in rules {
        let pattern = rule.metric_name.as_str();
        let deny = |message: String, why: &'static str| {
            Finding::new(
                Rule::InvalidDryRun,
                Severity::Error,
                object,
                format!("{parent}.dryRun[{i}].metricName"),
                message,
            )
            .explain(why)
        };
        if seen_patterns.insert(pattern, ()).is_some() {
            findings.push(deny(
                format!("dryRun metricName `{pattern}` is listed twice: keep one"),
                "Argo Rollouts rejects a run whose dryRun lists (Rollout and templates merged) repeat a metricName.",
            ));
            continue;
        }
        match goregex::compile(pattern) {
            Err(Refused::TooLarge(why)) => findings.push(
                Finding::new(
                    Rule::InvalidDryRun,
                    Severity::Warning,
                    object,
                    format!("{parent}.dryRun[{i}].metricName"),
                    format!(
                        "dryRun metricName `{pattern}` is too large to evaluate here ({why}): no metric is taken as dry-run by it"
                    ),
                )
                .explain(
                    "Go may take the pattern, but compiled here it is over the regex engine's size \
                     limit, so which metrics it makes dry-run is not known. A shorter pattern can be \
                     checked.",
                ),
            ),
            Err(Refused::ByGo(why)) => findings.push(deny(
                format!("dryRun metricName `{pattern}` is not a valid Go regex ({why}): use `.*` for every metric"),
                "Argo Rollouts matches dryRun metric names as Go regular expressions. An invalid pattern such \
                 as `*` matches nothing, every rule must match a metric, so the run goes Error and a \
                 background run aborts the Rollout.",
            )),
            Ok(re) => {
                let mut matched = false;
                for m in metrics.iter_mut().filter(|m| re.is_match(m.name)) {
                    m.dry_run = true;
                    matched = true;
                }
                // A template on its own is not a run (a Rollout may combine it with the
                // template whose metric a rule names), and a missing template's metrics are
                // not known: the rule may match those.
                if !matched && !metrics.is_empty() && complete {
                    findings.push(deny(
                        format!("dryRun metricName `{pattern}` matches no metric of the run: fix the name or remove the rule"),
                        "Every dryRun rule must match a metric, or Argo Rollouts fails the run.",
                    ));
                }
            }
        }
    }

    Run { metrics, findings }
}

/// Two templates of one run that give an argument different values: Argo's `flattenArgs`
/// refuses the run ("specified multiple times with different values") before the Rollout's
/// own values are applied, so no Rollout argument can settle it. Each declaration whose value
/// differs from the first one is reported on its own template.
fn conflicting_values<'t>(
    templates: impl Iterator<Item = &'t ResolvedTemplate>,
    findings: &mut Vec<Finding>,
) {
    // (name, first value, its template): a run has a handful of arguments.
    let mut first: Vec<(&str, &str, &ObjectRef)> = Vec::new();
    for t in templates {
        for (i, arg) in t.template.spec.args.iter().enumerate() {
            let Some(value) = arg.value.as_ref().map(Text::as_str) else {
                continue;
            };
            match first.iter().find(|(name, ..)| *name == arg.name) {
                None => first.push((&arg.name, value, &t.object)),
                Some((_, earlier, _)) if *earlier == value => {}
                Some((_, earlier, owner)) => {
                    let other = if **owner == t.object {
                        "earlier in this template".to_owned()
                    } else {
                        format!("in {} {}", owner.kind, owner.name)
                    };
                    findings.push(
                        Finding::new(
                            Rule::UnresolvedArgument,
                            Severity::Error,
                            &t.object,
                            format!("spec.args[{i}].value"),
                            format!(
                                "argument `{}` is {value:?} here but {earlier:?} {other}: Argo Rollouts \
                                 refuses a run whose templates disagree; give it one value",
                                arg.name
                            ),
                        )
                        .explain(
                            "Argo Rollouts merges the arguments of all templates of a run and fails \
                             to create the AnalysisRun when two templates set the same argument to \
                             different values, whatever the Rollout passes.",
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AnalysisTemplate, Kind, TemplateRef};
    use crate::templates::{MemoryStore, RefOrigin, flatten};
    use serde_json::{Value, json};

    fn store(templates: Value) -> MemoryStore {
        let mut s = MemoryStore::new();
        for t in templates.as_array().unwrap() {
            s.insert_template(serde_json::from_value::<AnalysisTemplate>(t.clone()).unwrap());
        }
        s
    }

    /// A run borrows its templates: leaked here, as a test is short-lived.
    fn run(s: &MemoryStore, analysis: Value) -> Run<'static> {
        let a: AnalysisRef = serde_json::from_value(analysis).unwrap();
        let obj = ObjectRef {
            kind: Kind::Rollout,
            namespace: Some("ns".into()),
            name: "r".into(),
        };
        let path = "spec.strategy.canary.analysis";
        let flat = flatten(
            &a.templates,
            RefOrigin {
                object: &obj,
                parent: path,
            },
            "ns",
            s,
        );
        let flat = Box::leak(Box::new(flat));
        assemble(
            &flat.templates,
            std::mem::take(&mut flat.findings),
            Caller {
                object: &obj,
                path: Some(path),
                analysis: Some(&a),
            },
        )
    }

    fn ids(r: &Run) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule.id()).collect()
    }

    fn tpl(name: &str, metrics: &[&str]) -> Value {
        let metrics: Vec<_> = metrics
            .iter()
            .map(|m| json!({"name": m, "provider": {"job": {}}}))
            .collect();
        json!({"metadata": {"name": name}, "spec": {"metrics": metrics}})
    }

    #[test]
    fn marks_dry_run_metrics_with_unanchored_regexes() {
        let s = store(json!([tpl("t", &["error-rate", "latency"])]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": "rate"}]}),
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(r.metrics[0].dry_run && !r.metrics[1].dry_run);
    }

    #[test]
    fn a_pattern_too_large_to_compile_here_is_a_warning_not_a_denial() {
        let s = store(json!([tpl("t", &["m"])]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": "\\pL{1000}"}]}),
        );
        assert_eq!(ids(&r), ["invalid-dry-run"]);
        assert_eq!(r.findings[0].severity, Severity::Warning);
        assert!(
            r.findings[0].message.contains("too large"),
            "{}",
            r.findings[0].message
        );
        assert!(!r.metrics[0].dry_run);
        // Go's `[\w-.]` is a class of word characters, `-` and `.`.
        let ok = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": "^[\\w-.]+$"}]}),
        );
        assert!(
            ok.findings.is_empty() && ok.metrics[0].dry_run,
            "{:?}",
            ok.findings
        );
    }

    #[test]
    fn star_is_not_a_valid_dry_run_pattern() {
        let s = store(json!([tpl("t", &["m"])]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": "*"}]}),
        );
        assert_eq!(ids(&r), ["invalid-dry-run"]);
        assert!(r.findings[0].message.contains("`.*`"));
        assert!(!r.metrics[0].dry_run);
        let ok = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": ".*"}]}),
        );
        assert!(ok.findings.is_empty() && ok.metrics[0].dry_run);
    }

    #[test]
    fn dry_run_rules_must_match_and_not_repeat() {
        let mut t = tpl("t", &["m"]);
        t["spec"]["dryRun"] = json!([{"metricName": "m"}]);
        let s = store(json!([t]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "dryRun": [{"metricName": "nope"}, {"metricName": "m"}]}),
        );
        assert_eq!(ids(&r), ["invalid-dry-run", "invalid-dry-run"]);
        assert_eq!(r.findings[1].object.kind, Kind::AnalysisTemplate);
    }

    #[test]
    fn a_dry_run_rule_is_not_judged_without_all_of_the_run() {
        use crate::templates::TemplateStore as _;
        // A rule naming a metric of a template that is missing (a warning) is not an error.
        let s = store(json!([tpl("t", &["web"])]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "t"}, {"templateName": "latency"}],
                   "dryRun": [{"metricName": "p99-latency"}]}),
        );
        assert_eq!(ids(&r), ["missing-template"]);
        // A template's own rule naming a sibling template's metric: valid in the run, and not
        // judged on the template alone.
        let mut a = tpl("a", &["from-a"]);
        a["spec"]["dryRun"] = json!([{"metricName": "from-b"}]);
        let s = store(json!([a, tpl("b", &["from-b"])]));
        let together = run(
            &s,
            json!({"templates": [{"templateName": "a"}, {"templateName": "b"}]}),
        );
        assert!(together.findings.is_empty(), "{:?}", together.findings);
        assert!(together.metrics[1].dry_run && !together.metrics[0].dry_run);
        let alone = crate::rules::check_template(
            s.analysis_template("ns", "a").unwrap().as_ref(),
            Kind::AnalysisTemplate,
            &s,
            &crate::rules::Config::default(),
        );
        assert!(alone.is_empty(), "{alone:?}");
        // Alone, a rule that is not a regex is still an error.
        let mut bad = tpl("c", &["m"]);
        bad["spec"]["dryRun"] = json!([{"metricName": "*"}]);
        let s = store(json!([bad]));
        let alone = crate::rules::check_template(
            s.analysis_template("ns", "c").unwrap().as_ref(),
            Kind::AnalysisTemplate,
            &s,
            &crate::rules::Config::default(),
        );
        assert_eq!(
            alone.iter().map(|f| f.rule.id()).collect::<Vec<_>>(),
            ["invalid-dry-run"]
        );
    }

    #[test]
    fn same_metric_name_in_two_templates_is_an_error() {
        let s = store(json!([tpl("a", &["m"]), tpl("b", &["m"])]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "a"}, {"templateName": "b"}]}),
        );
        assert_eq!(ids(&r), ["duplicate-metric-name"]);
        assert_eq!(r.findings[0].object.name, "b");
        // The same template twice is de-duplicated, not a clash.
        let once = run(
            &s,
            json!({"templates": [{"templateName": "a"}, {"templateName": "a"}]}),
        );
        assert!(once.findings.is_empty());
    }

    #[test]
    fn arguments_without_values_are_unresolved() {
        let mut t = tpl("t", &["m"]);
        t["spec"]["args"] = json!([{"name": "svc"}, {"name": "hash", "valueFrom": {"podTemplateHashValue": "Latest"}}]);
        let s = store(json!([t]));
        let r = run(&s, json!({"templates": [{"templateName": "t"}]}));
        assert_eq!(ids(&r), ["unresolved-argument"]);
        assert_eq!(r.findings[0].path, "spec.strategy.canary.analysis.args");
        let ok = run(
            &s,
            json!({"templates": [{"templateName": "t"}], "args": [{"name": "svc", "value": "x"}]}),
        );
        assert!(ok.findings.is_empty());
    }

    #[test]
    fn templates_that_disagree_on_an_argument_value_cannot_run() {
        let with_arg = |name: &str, value: Value| {
            let mut t = tpl(name, &[&format!("m-{name}")]);
            t["spec"]["args"] = json!([{"name": "svc", "value": value}]);
            t
        };
        let s = store(json!([
            with_arg("a", json!("checkout")),
            with_arg("b", json!("payments")),
            with_arg("c", json!("checkout")),
        ]));
        let both = json!([{"templateName": "a"}, {"templateName": "b"}]);
        let r = run(&s, json!({"templates": both}));
        assert_eq!(ids(&r), ["unresolved-argument"]);
        let f = &r.findings[0];
        assert_eq!(
            (f.object.name.as_str(), f.path.as_str()),
            ("b", "spec.args[0].value")
        );
        assert!(f.message.contains(r#""payments""#), "{}", f.message);
        assert!(
            f.message.contains(r#""checkout" in AnalysisTemplate a"#),
            "{}",
            f.message
        );
        // Argo refuses while flattening, before the Rollout's own values count.
        let supplied = run(
            &s,
            json!({"templates": both, "args": [{"name": "svc", "value": "x"}]}),
        );
        assert_eq!(ids(&supplied), ["unresolved-argument"]);
        // The same value twice, or a value and a bare declaration, agree.
        let same = run(
            &s,
            json!({"templates": [{"templateName": "a"}, {"templateName": "c"}]}),
        );
        assert!(same.findings.is_empty(), "{:?}", same.findings);
        let mut bare = tpl("d", &["m-d"]);
        bare["spec"]["args"] = json!([{"name": "svc"}]);
        let s = store(json!([with_arg("a", json!("checkout")), bare]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "d"}, {"templateName": "a"}]}),
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn a_bare_declaration_replaces_an_earlier_value_from_in_argo_order() {
        let secret =
            json!([{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]);
        let bare = json!([{"name": "token"}]);
        let template = |name: &str, args: &Value| {
            let mut t: AnalysisTemplate =
                serde_json::from_value(tpl(name, &[&format!("m-{name}")])).unwrap();
            t.spec.args = serde_json::from_value(args.clone()).unwrap();
            t
        };
        let refs = json!([
            {"templateName": "cluster", "clusterScope": true},
            {"templateName": "local"}
        ]);
        // Argo flattens the namespaced templates first, then the cluster ones, and a
        // declaration without `value` gives way to the next one, whatever it holds.
        let run_with = |local: &Value, cluster: &Value| {
            let mut s = MemoryStore::new();
            s.insert_template(template("local", local));
            s.insert_cluster_template(template("cluster", cluster));
            run(&s, json!({"templates": refs}))
        };
        let runtime = run_with(&bare, &secret);
        assert!(runtime.findings.is_empty(), "{:?}", runtime.findings);
        let missing = run_with(&secret, &bare);
        assert_eq!(ids(&missing), ["unresolved-argument"]);
        assert_eq!(
            missing.findings[0].path,
            "spec.strategy.canary.analysis.args"
        );
        assert!(
            missing.findings[0]
                .message
                .contains("ClusterAnalysisTemplate cluster"),
            "{}",
            missing.findings[0].message
        );
    }

    #[test]
    fn rollout_args_reach_nested_template_metrics() {
        let s = store(json!([
            {"metadata": {"name": "outer"}, "spec": {"templates": [{"templateName": "inner"}]}},
            {"metadata": {"name": "inner"}, "spec": {"args": [{"name": "n", "value": "1"}],
             "metrics": [{"name": "m", "count": "{{args.n}}", "interval": "1m", "provider": {"job": {}}}]}}
        ]));
        let r = run(
            &s,
            json!({"templates": [{"templateName": "outer"}], "args": [{"name": "n", "value": "7"}]}),
        );
        assert_eq!(r.metrics[0].count, crate::templates::Resolved::Known(7));
        let _ = TemplateRef::default();
    }
}
