//! The Inconclusive trap itself: D1 (a timed pause during which background analysis can end
//! Inconclusive), D2 (the full canary is then promoted while Inconclusive, >= 1.8.2) and D3
//! (pause steps the background analysis runs through), as DOMAIN §4 states them.

use std::borrow::Cow;
use std::fmt::Write;

use crate::duration::{HumanSeconds, PauseDuration};
use crate::finding::{Finding, Rule, Severity};
use crate::model::{Canary, ObjectRef, Rollout};
use crate::rules::Config;
use crate::rules::analysis::Run;
use crate::rules::canary::{self, StepKind, Walker};
use crate::rules::metric::{Reason, RunMetric, Verdict, can_inconclude};

const BG: &str = "spec.strategy.canary.analysis";

/// What the hold guard needs to know about a D1 Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    /// Indices of the timed pause steps at or after `startingStep`, with their seconds.
    pub timed_pauses: Vec<(usize, i64)>,
}

/// Pushes D1, D2 and D3 findings (and a startingStep past the steps) to `out`.
pub fn background_findings(
    rollout: &Rollout,
    object: &ObjectRef,
    run: &Run,
    cfg: &Config,
    out: &mut Vec<Finding>,
) -> Option<Trap> {
    let canary = rollout.spec.strategy.canary.as_ref()?;
    let analysis = canary.analysis.as_ref()?;
    if analysis.templates.is_empty() {
        return None;
    }
    let steps = &canary.steps;
    let len = steps.len() as i64;
    let starting = analysis.starting_step.unwrap_or(0).max(0);
    if !steps.is_empty() && starting > len {
        out.push(
            Finding::new(
                Rule::StartingStepOutOfRange,
                Severity::Warning,
                object,
                format!("{BG}.startingStep"),
                format!("startingStep {starting} is past the last step ({} steps): the background analysis never starts", steps.len()),
            )
            .explain("Argo Rollouts starts background analysis when the step index reaches startingStep; \
                      past the end it is never reached. Use a step index, or len(steps) to analyse until promotion."),
        );
    }
    let eligible = || {
        steps
            .iter()
            .enumerate()
            .skip(starting as usize)
            .filter_map(|(i, s)| s.pause.as_ref().map(|p| (i, p.length())))
    };
    let timed: Vec<(usize, i64)> = eligible()
        .filter_map(|(i, d)| match d {
            PauseDuration::Seconds(s) => Some((i, s)),
            _ => None,
        })
        .collect();

    let mut inconclusive: Vec<(&RunMetric, Reason)> = Vec::new();
    let mut undecided: Vec<(&RunMetric, Reason)> = Vec::new();
    for m in run.metrics.iter().filter(|m| !m.dry_run) {
        match can_inconclude(m, cfg.version) {
            Verdict::Yes(why) => inconclusive.push((m, why)),
            Verdict::Unknown(why) => undecided.push((m, why)),
            Verdict::No => {}
        }
    }

    let trap = (!timed.is_empty() && !inconclusive.is_empty()).then_some(Trap {
        timed_pauses: timed,
    });
    if let Some(trap) = &trap {
        let (pause_index, secs) = trap.timed_pauses[0];
        out.push(d1(object, pause_index, secs, starting, &inconclusive, cfg));
        if cfg.version.records_inconclusive_pause()
            && let Some(f) = d2(rollout, canary, object, &trap.timed_pauses, cfg)
        {
            out.push(f);
        }
    }

    // D3: on >= 1.8.2 a pause reached while an Inconclusive pause is active is skipped (R1);
    // on <= 1.8.1 an indefinite pause hides the verdict from the human who promotes.
    let fixed = cfg.version.records_inconclusive_pause();
    // With D1, whose explanation covers the pauses after its timed one, only a pause before
    // that one is left to say (a manual gate the analysis can skip too).
    let d3 = match (fixed, &trap) {
        (true, Some(trap)) => eligible()
            .find(|(i, _)| (*i as i64) > starting)
            .filter(|(i, _)| *i < trap.timed_pauses[0].0),
        (true, None) => eligible().find(|(i, _)| (*i as i64) > starting),
        (false, _) => eligible().find(|(_, d)| *d == PauseDuration::Indefinite),
    };
    if let Some((i, d)) = d3 {
        let what = match d {
            PauseDuration::Seconds(s) => format!("{} pause", HumanSeconds(s)),
            _ => "indefinite pause".into(),
        };
        let (message, why) = if fixed {
            (
                format!(
                    "background analysis runs through this {what}: if it is Inconclusive by then, Argo skips the pause"
                ),
                "On controllers >= 1.8.2 an Inconclusive background run pauses the Rollout, but later pause steps \
                 reached while that pause is active complete at once because status.controllerPause is still set. \
                 Nobody sees those pauses.",
            )
        } else {
            (
                format!(
                    "background analysis runs through this {what}; <=1.8.1 hides an Inconclusive verdict: upgrade to >=1.8.2"
                ),
                "Controllers up to 1.8.1 re-create the background AnalysisRun during pause steps instead of \
                 recording the Inconclusive pause (upstream issue #3850), so the human who promotes never learns \
                 the verdict. Upgrading to >= 1.8.2 is the fix.",
            )
        };
        // The fixed text as it is; a copy only when metrics are named after it.
        let explanation: Cow<'static, str> = if undecided.is_empty() {
            why.into()
        } else {
            format!(
                "{why} Metrics that may end Inconclusive depending on arguments: {}.",
                names(&undecided)
            )
            .into()
        };
        out.push(
            Finding::new(
                Rule::PauseDuringBackgroundAnalysis,
                Severity::Info,
                object,
                format!("spec.strategy.canary.steps[{i}].pause"),
                message,
            )
            .explain(explanation),
        );
    }
    trap
}

fn names(metrics: &[(&RunMetric, Reason)]) -> String {
    metrics
        .iter()
        .map(|(m, _)| format!("`{}`", m.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn d1(
    object: &ObjectRef,
    pause_index: usize,
    secs: i64,
    starting: i64,
    metrics: &[(&RunMetric, Reason)],
    cfg: &Config,
) -> Finding {
    // Written in place (writing to a String cannot fail): this finding is on every
    // admission of a flagged Rollout.
    let (first, _) = metrics[0];
    let fixed = cfg.version.records_inconclusive_pause();
    let pause = HumanSeconds(secs);
    let mut message = String::with_capacity(192);
    let _ = write!(message, "`{}`", first.name);
    if metrics.len() > 1 {
        let _ = write!(message, " (+{} more)", metrics.len() - 1);
    }
    match first.inconclusive_limit_value() {
        Some(l) => {
            let _ = write!(message, " can end Inconclusive (inconclusiveLimit {l})");
        }
        None => message.push_str(" can end Inconclusive (inconclusiveLimit from an argument)"),
    }
    let severity = if fixed {
        let _ = write!(
            message,
            " in this {pause} pause, which still expires: hold it or fail on inconclusive"
        );
        Severity::Medium
    } else {
        let _ = write!(
            message,
            " in this {pause} pause; <=1.8.1 promotes anyway: upgrade Argo Rollouts to >=1.8.2"
        );
        Severity::High
    };
    let explanation = if cfg.explain {
        d1_explanation(pause_index, pause, starting, metrics, cfg)
    } else {
        String::new()
    };
    Finding::new(
        Rule::InconclusiveTimedPause,
        severity,
        object,
        format!("spec.strategy.canary.steps[{pause_index}].pause.duration"),
        message,
    )
    .explain(explanation)
}

/// D1's explanation for people: the mechanism on this controller, each metric's reason, the
/// timing when the run starts at the pause, and the fixes.
fn d1_explanation(
    pause_index: usize,
    pause: HumanSeconds,
    starting: i64,
    metrics: &[(&RunMetric, Reason)],
    cfg: &Config,
) -> String {
    let (first, why_first) = &metrics[0];
    // A streak (`consecutiveSuccessLimit`, DOMAIN (e)) takes no inconclusive measurement: the
    // run ends Inconclusive when `count` measurements pass without the streak, so its timing
    // and fixes differ from a metric whose measurements can be inconclusive.
    let streak = |why: &Reason| matches!(why, Reason::Streak(_) | Reason::StreakDependsOnArgs);
    let mut explanation = String::with_capacity(1024);
    if cfg.version.records_inconclusive_pause() {
        let _ = write!(
            explanation,
            "Argo Rollouts {} records the Inconclusive pause, but the timed pause's own clock still completes the step; \
             later pause steps are then skipped and a full canary can be promoted. ",
            cfg.version
        );
    } else {
        let _ = write!(
            explanation,
            "Argo Rollouts {} re-creates an Inconclusive background AnalysisRun during a pause step instead of pausing \
             (upstream issue #3850, fixed by PR #3873 in 1.8.2): the timed pause runs out and the canary goes on to \
             promotion. Upgrading to >= 1.8.2 is the real fix. ",
            cfg.version
        );
    }
    for (m, why) in metrics {
        let _ = write!(
            explanation,
            "Metric `{}` of {} {}: {why}. ",
            m.name, m.template.kind, m.template.name
        );
    }
    if !streak(why_first) && first.inconclusive_limit_value() == Some(0) {
        explanation.push_str("inconclusiveLimit is 0 (the default), so the first inconclusive measurement ends the run. ");
    }
    let delay = first.initial_delay.known().unwrap_or(0);
    let earliest = match (streak(why_first), first.interval.known()) {
        _ if starting != pause_index as i64 => None,
        (false, Some(interval)) => first.inconclusive_limit_value().map(|limit| {
            let at = delay.saturating_add(limit.saturating_mul(interval));
            (at, "initialDelay + inconclusiveLimit x interval")
        }),
        (true, Some(interval)) => first.explicit_count().known().map(|count| {
            let at = delay.saturating_add(count.saturating_sub(1).saturating_mul(interval));
            (at, "initialDelay + (count - 1) x interval: a streak's verdict comes with the last measurement")
        }),
        (_, None) => None,
    };
    if let Some((at, formula)) = earliest {
        let earliest = at / 1_000_000_000;
        let relation = if earliest <= pause.0 {
            "within"
        } else {
            "after"
        };
        let _ = write!(
            explanation,
            "The run starts at this pause; the earliest verdict of `{}` comes about {} after that ({formula}, plus \
             query time), {relation} the {pause} pause. ",
            first.name,
            HumanSeconds(earliest)
        );
    }
    explanation.push_str(if metrics.iter().all(|(_, why)| streak(why)) {
        "Fixes: make the pause indefinite (rollout-guard's hold guard does this), or run rollout-guard's status \
         guard (>= 1.8.2)."
    } else {
        "Fixes: make the pause indefinite (rollout-guard's hold guard does this), run rollout-guard's status guard \
         (>= 1.8.2), or make inconclusive count as failure (failureCondition: (F) || !(S))."
    });
    explanation.truncate(explanation.trim_end().len());
    explanation
}

/// D2: after a timed pause the Rollout completes without a ReplicaSet scale change and the
/// canary is already full, so `shouldFullPromote` promotes while Inconclusive (R2).
fn d2(
    rollout: &Rollout,
    canary: &Canary,
    object: &ObjectRef,
    timed: &[(usize, i64)],
    cfg: &Config,
) -> Option<Finding> {
    let replicas = rollout.spec.replicas.unwrap_or(1);
    if replicas <= 0 {
        return None;
    }
    // >= 1.9 also finishes steps and promotes once `replicaProgressThreshold` of the desired
    // canary pods are available (DOMAIN R2; the CRD: "for the given next step").
    let threshold = cfg
        .version
        .full_promote_at_or_above()
        .then_some(canary.replica_progress_threshold.as_deref())
        .flatten();
    let met = |available: i64, desired: i64| {
        threshold
            .and_then(|t| canary::threshold_pods(t, desired))
            .is_some_and(|n| available >= n)
    };
    let full = |c: i64| {
        if cfg.version.full_promote_at_or_above() {
            c >= replicas || met(c, replicas)
        } else {
            c == replicas
        }
    };
    for &(p, secs) in timed {
        let mut walker = Walker::new(canary, replicas);
        for step in &canary.steps[..=p] {
            walker.apply(step);
        }
        let at_pause = walker.pods();
        if !full(at_pause.canary) {
            continue;
        }
        // Scaling halts while the Inconclusive pause is recorded, so a later step completes
        // only if the pods it wants are already there, or enough of them for the threshold.
        let tail_is_free = canary.steps[p + 1..]
            .iter()
            .all(|step| match canary::kind(step) {
                StepKind::Pause | StepKind::Route | StepKind::Empty => true,
                StepKind::SetWeight | StepKind::SetCanaryScale => {
                    walker.apply(step);
                    let wanted = walker.pods();
                    wanted == at_pause
                        || (wanted.stable == at_pause.stable
                            && wanted.canary > at_pause.canary
                            && met(at_pause.canary, wanted.canary))
                }
                StepKind::Blocking => false,
            });
        if !tail_is_free {
            continue;
        }
        let canary_pods = if at_pause.canary >= replicas {
            format!("the full canary ({}/{replicas} pods)", at_pause.canary)
        } else {
            format!(
                "the canary ({}/{replicas} pods, enough for replicaProgressThreshold)",
                at_pause.canary
            )
        };
        let message = format!(
            "after this {} pause {canary_pods} is promoted even if Inconclusive: use the status guard or hold the pause",
            HumanSeconds(secs),
        );
        let explanation = format!(
            "When the step index reaches the end, Argo Rollouts {} promotes as soon as the canary is full (from 1.9: or \
             meets replicaProgressThreshold), ignoring the Inconclusive pause. Nothing after this pause needs a \
             ReplicaSet size it does not already have, so nothing halts it. With replicas: 1 any weight gives a full \
             canary. Fixes: rollout-guard's status guard, an indefinite pause, or failing on inconclusive \
             measurements.",
            cfg.version
        );
        return Some(
            Finding::new(
                Rule::InconclusivePromotion,
                Severity::High,
                object,
                format!("spec.strategy.canary.steps[{p}].pause.duration"),
                message,
            )
            .explain(explanation),
        );
    }
    None
}
