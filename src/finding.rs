//! What the rules produce: a finding with a stable rule id, a severity, the object, the field
//! path and a one-line message that says what is wrong and how to fix it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use clap::ValueEnum;
use serde::Serialize;

use crate::model::ObjectRef;

/// Ordered from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never blocks.
    Info,
    /// Probably a mistake, or a gap the webhook cannot see through (a missing template).
    Warning,
    /// The Inconclusive trap on a controller that records the pause (>= 1.8.2).
    Medium,
    /// The Inconclusive trap where the canary is promoted regardless.
    High,
    /// A spec Argo Rollouts rejects, aborts on or crashes on later anyway.
    Error,
}

impl Severity {
    /// The webhook denies findings at or above this level in `enforce` mode, and
    /// `check --fail-on` defaults to it.
    pub const DENY_THRESHOLD: Self = Self::Medium;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every rule, with its stable kebab-case id (which is also how it serialises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// D1: background analysis that can end Inconclusive during a timed pause.
    InconclusiveTimedPause,
    /// D2: after the timed pause the full canary is promoted while Inconclusive (>= 1.8.2).
    InconclusivePromotion,
    /// D3: pause steps that background analysis runs through.
    PauseDuringBackgroundAnalysis,
    InvalidDuration,
    InvalidMetricLimits,
    InvalidProvider,
    DuplicateMetricName,
    TemplateCycle,
    UnresolvedArgument,
    IndefiniteForegroundMetric,
    InvalidDryRun,
    MissingTemplate,
    StartingStepOutOfRange,
    LimitNeverTrips,
    MetricWithoutConditions,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::InconclusiveTimedPause,
        Rule::InconclusivePromotion,
        Rule::PauseDuringBackgroundAnalysis,
        Rule::InvalidDuration,
        Rule::InvalidMetricLimits,
        Rule::InvalidProvider,
        Rule::DuplicateMetricName,
        Rule::TemplateCycle,
        Rule::UnresolvedArgument,
        Rule::IndefiniteForegroundMetric,
        Rule::InvalidDryRun,
        Rule::MissingTemplate,
        Rule::StartingStepOutOfRange,
        Rule::LimitNeverTrips,
        Rule::MetricWithoutConditions,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::InconclusiveTimedPause => "inconclusive-timed-pause",
            Rule::InconclusivePromotion => "inconclusive-promotion",
            Rule::PauseDuringBackgroundAnalysis => "pause-during-background-analysis",
            Rule::InvalidDuration => "invalid-duration",
            Rule::InvalidMetricLimits => "invalid-metric-limits",
            Rule::InvalidProvider => "invalid-provider",
            Rule::DuplicateMetricName => "duplicate-metric-name",
            Rule::TemplateCycle => "template-cycle",
            Rule::UnresolvedArgument => "unresolved-argument",
            Rule::IndefiniteForegroundMetric => "indefinite-foreground-metric",
            Rule::InvalidDryRun => "invalid-dry-run",
            Rule::MissingTemplate => "missing-template",
            Rule::StartingStepOutOfRange => "starting-step-out-of-range",
            Rule::LimitNeverTrips => "limit-never-trips",
            Rule::MetricWithoutConditions => "metric-without-conditions",
        }
    }

    /// One sentence for rule listings (SARIF rule metadata, README).
    pub fn summary(self) -> &'static str {
        match self {
            Rule::InconclusiveTimedPause => {
                "Background analysis can end Inconclusive during a timed pause."
            }
            Rule::InconclusivePromotion => {
                "After a timed pause a full canary (or one meeting replicaProgressThreshold) is promoted while analysis is Inconclusive."
            }
            Rule::PauseDuringBackgroundAnalysis => {
                "A pause step runs while background analysis may be Inconclusive."
            }
            Rule::InvalidDuration => {
                "A pause, interval or initialDelay is negative or unparsable, or a pause is beyond int32 seconds."
            }
            Rule::InvalidMetricLimits => "Metric limits that Argo rejects when the run starts.",
            Rule::InvalidProvider => "A metric needs exactly one provider.",
            Rule::DuplicateMetricName => "The same metric name in two templates of one run.",
            Rule::TemplateCycle => "Nested templates that reference each other in a cycle.",
            Rule::UnresolvedArgument => "A template argument that nothing gives a value.",
            Rule::IndefiniteForegroundMetric => {
                "A metric that never ends, used by a step or blue-green analysis that waits for it."
            }
            Rule::InvalidDryRun => "A dryRun rule that is not a valid regex or matches no metric.",
            Rule::MissingTemplate => "A referenced template that does not exist (yet).",
            Rule::StartingStepOutOfRange => {
                "startingStep past the last step: the analysis never starts."
            }
            Rule::LimitNeverTrips => "A limit equal to count, so it can never trip.",
            Rule::MetricWithoutConditions => {
                "A metric with no conditions is always Successful on this provider."
            }
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The object that holds the field (a template's metric finding names the template).
    pub object: ObjectRef,
    /// Field path in the object, e.g. `spec.strategy.canary.steps[1].pause.duration`.
    pub path: String,
    /// One line (no newline, about 120 characters): what is wrong and how to fix it.
    pub message: String,
    /// Longer explanation for people (most are fixed texts, kept without a copy).
    pub explanation: Cow<'static, str>,
}

impl Finding {
    pub fn new(
        rule: Rule,
        severity: Severity,
        object: &ObjectRef,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            severity,
            object: object.clone(),
            path: path.into(),
            message: message.into(),
            explanation: Cow::Borrowed(""),
        }
    }

    pub fn explain(mut self, explanation: impl Into<Cow<'static, str>>) -> Self {
        self.explanation = explanation.into();
        self
    }

    /// The same finding again: rule, object, path and message (the explanation follows from
    /// them). What [`normalize`] drops.
    pub fn repeats(&self, other: &Finding) -> bool {
        self.rule == other.rule
            && self.object == other.object
            && self.path == other.path
            && self.message == other.message
    }

    /// Sort key that makes output deterministic: most serious first, then by place.
    pub fn order_key(&self) -> impl Ord + '_ {
        (
            std::cmp::Reverse(self.severity),
            &self.object,
            FieldOrder(&self.path),
            self.rule,
            &self.message,
        )
    }
}

/// A field path in the order a reader counts: `steps[2]` before `steps[10]`. Runs of digits
/// compare by value (then by length, so `01` and `1` differ), everything else byte by byte;
/// equal only when the paths are.
#[derive(Debug, PartialEq, Eq)]
struct FieldOrder<'a>(&'a str);

impl Ord for FieldOrder<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        fn digits(s: &[u8]) -> usize {
            s.iter().take_while(|c| c.is_ascii_digit()).count()
        }
        fn value(n: &[u8]) -> &[u8] {
            &n[n.iter().take_while(|&&c| c == b'0').count()..]
        }
        let (mut a, mut b) = (self.0.as_bytes(), other.0.as_bytes());
        loop {
            match (a.first(), b.first()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                    let (da, db) = (digits(a), digits(b));
                    let (va, vb) = (value(&a[..da]), value(&b[..db]));
                    let order = (va.len(), va, da).cmp(&(vb.len(), vb, db));
                    if order != Ordering::Equal {
                        return order;
                    }
                    (a, b) = (&a[da..], &b[db..]);
                }
                (Some(x), Some(y)) => {
                    if x != y {
                        return x.cmp(y);
                    }
                    (a, b) = (&a[1..], &b[1..]);
                }
            }
        }
    }
}

impl PartialOrd for FieldOrder<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts and removes exact repeats (the same template checked directly and through a Rollout).
pub fn normalize(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    findings.dedup_by(|a, b| a.repeats(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_sort_as_a_reader_counts() {
        let mut paths = vec![
            "spec.steps[10].pause",
            "spec.steps[2].pause",
            "spec.steps[2]",
            "spec.metrics[0].interval",
            "spec.steps[01].pause",
            "spec.steps[1].pause",
            "spec.steps[100]",
        ];
        paths.sort_by(|a, b| FieldOrder(a).cmp(&FieldOrder(b)));
        assert_eq!(
            paths,
            [
                "spec.metrics[0].interval",
                "spec.steps[1].pause",
                "spec.steps[01].pause",
                "spec.steps[2]",
                "spec.steps[2].pause",
                "spec.steps[10].pause",
                "spec.steps[100]",
            ]
        );
        assert_eq!(FieldOrder("a[7]").cmp(&FieldOrder("a[7]")), Ordering::Equal);
    }

    proptest::proptest! {
        /// A total order: antisymmetric, and equal exactly when the paths are.
        #[test]
        fn field_order_is_a_total_order(a in "[a-c0-2\\[\\].]{0,8}", b in "[a-c0-2\\[\\].]{0,8}") {
            let ab = FieldOrder(&a).cmp(&FieldOrder(&b));
            proptest::prop_assert_eq!(ab, FieldOrder(&b).cmp(&FieldOrder(&a)).reverse());
            proptest::prop_assert_eq!(ab == Ordering::Equal, a == b);
        }
    }

    #[test]
    fn rule_ids_are_unique_kebab_case() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        for id in &ids {
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{id}"
            );
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Warning < Severity::DENY_THRESHOLD);
        assert!(Severity::High > Severity::Medium && Severity::Error > Severity::High);
    }
}
