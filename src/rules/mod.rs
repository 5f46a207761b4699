//! The rule engine: pure functions from objects (and a template store) to findings.
//!
//! [`check_rollout`] and [`check_template`] are the two entry points; `check` and the webhook
//! both call them, so offline and admission verdicts cannot drift apart.

pub mod analysis;
pub mod canary;
pub mod inconclusive;
pub mod metric;

use crate::duration::PauseDuration;
use crate::finding::{Finding, Rule, Severity, normalize};
use crate::model::{AnalysisRef, AnalysisTemplate, Kind, ObjectRef, Rollout};
use crate::templates::{
    RefOrigin, ResolvedTemplate, TemplateKey, TemplateStore, flatten, flatten_from,
};
use crate::version::ControllerVersion;

use analysis::{Caller, Run, assemble};
use metric::{Runs, metric_findings};

pub use inconclusive::Trap;

/// Inputs that change verdicts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    pub version: ControllerVersion,
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
                && PauseDuration::of(pause.duration.as_ref()) == PauseDuration::Invalid
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
                            format!("pause duration `{raw}` is negative or unparsable: use seconds or a Go duration like 30s"),
                        )
                        .explain("Argo Rollouts marks the Rollout InvalidSpec for a negative or unparsable pause duration \
                                  (the API server accepts it). Units: ns, us, ms, s, m, h; there is no d."),
                    );
            }
        }
        if let Some(bg) = &canary.analysis {
            let path = "spec.strategy.canary.analysis";
            let run = run_for(bg, &object, path, namespace, store);
            let (d, t) = inconclusive::background_findings(rollout, &object, &run, cfg);
            findings.extend(d);
            trap = t;
            push_run(&mut findings, run);
        }
        for (i, step) in canary.steps.iter().enumerate() {
            if let Some(a) = &step.analysis {
                let path = format!("spec.strategy.canary.steps[{i}].analysis");
                foreground(&mut findings, a, &object, &path, namespace, store);
            }
        }
    }
    if let Some(bg) = &rollout.spec.strategy.blue_green {
        for (field, a) in [
            ("prePromotionAnalysis", &bg.pre_promotion_analysis),
            ("postPromotionAnalysis", &bg.post_promotion_analysis),
        ] {
            if let Some(a) = a {
                let path = format!("spec.strategy.blueGreen.{field}");
                foreground(&mut findings, a, &object, &path, namespace, store);
            }
        }
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
    let namespace = template.metadata.namespace.as_deref().unwrap_or_default();
    let key = TemplateKey {
        cluster: kind == Kind::ClusterAnalysisTemplate,
        name: object.name.clone(),
    };
    let root = ResolvedTemplate {
        key,
        object: object.clone(),
        template: std::sync::Arc::new(template.clone()),
    };
    let flat = flatten_from(root, namespace, store);
    let run = assemble(
        flat,
        Caller {
            object: &object,
            path: None,
            analysis: None,
        },
    );
    let mut findings = Vec::new();
    push_run(&mut findings, run);
    normalize(&mut findings);
    findings
}

fn run_for(
    a: &AnalysisRef,
    object: &ObjectRef,
    path: &str,
    namespace: &str,
    store: &dyn TemplateStore,
) -> Run {
    let refs_path = format!("{path}.templates");
    let flat = flatten(
        &a.templates,
        RefOrigin {
            object,
            path: &refs_path,
        },
        namespace,
        store,
    );
    assemble(
        flat,
        Caller {
            object,
            path: Some(path),
            analysis: Some(a),
        },
    )
}

fn push_run(findings: &mut Vec<Finding>, run: Run) {
    findings.extend(run.findings);
    findings.extend(run.metrics.iter().flat_map(metric_findings));
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
    let run = run_for(a, object, path, namespace, store);
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
    push_run(findings, run);
}
