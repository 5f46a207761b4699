//! One metric as a run sees it (arguments substituted), the metric-level rules of the deny
//! and warn classes, and `can_inconclude`: when a metric can end Inconclusive (DOMAIN §3, §4).

use std::fmt;

use crate::duration::parse_go_duration;
use crate::finding::{Finding, Rule, Severity};
use crate::model::{IntOrStr, Metric, ObjectRef, Text};
use crate::templates::{Args, Resolved, placeholders};
use crate::version::ControllerVersion;

/// Providers whose measurements are judged by `successCondition` / `failureCondition`.
const CONDITION_PROVIDERS: [&str; 9] = [
    "prometheus",
    "datadog",
    "newRelic",
    "wavefront",
    "cloudWatch",
    "graphite",
    "influxdb",
    "skywalking",
    "web",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderClass<'a> {
    /// A condition-evaluating provider (name kept for messages).
    Conditions(&'a str),
    Job,
    Kayenta {
        pass: Resolved<i64>,
        marginal: Resolved<i64>,
    },
    Plugin,
    /// A provider this version of rollout-guard does not know.
    Other(&'a str),
    Missing,
    Several(&'a [String]),
}

/// Whether a metric has a condition, after argument substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Set,
    /// Absent, blank, or emptied by an argument.
    Unset,
    /// Known only when the run starts (an argument's `valueFrom`): never a guess.
    Unknown,
}

/// How many measurements a metric takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// `interval` without `count`: until the run is terminated or its own limits end it.
    Indefinite,
    Times(i64),
}

/// A metric after argument substitution, with where it lives (borrowed from its template).
#[derive(Debug, Clone)]
pub struct RunMetric<'a> {
    pub template: &'a ObjectRef,
    /// `i` of `spec.metrics[i]` in the template.
    pub index: usize,
    pub name: &'a str,
    pub provider: ProviderClass<'a>,
    pub success_condition: Condition,
    pub failure_condition: Condition,
    pub count: Resolved<i64>,
    /// Nanoseconds.
    pub interval: Resolved<i64>,
    /// Nanoseconds.
    pub initial_delay: Resolved<i64>,
    pub failure_limit: Resolved<i64>,
    pub inconclusive_limit: Resolved<i64>,
    pub consecutive_error_limit: Resolved<i64>,
    pub consecutive_success_limit: Resolved<i64>,
    /// Matched by a dryRun rule: its phase does not count for the run.
    pub dry_run: bool,
    /// Limits whose text is not a whole number, with that text: Argo Rollouts reads them as
    /// 0 (`IntOrString.IntValue()` ignores the parse error), and so do the fields above.
    pub read_as_zero: Vec<(&'static str, String)>,
    /// `{{args.x}}` names that no template declares, with the field that uses them (the
    /// fields above, the conditions, or `provider`).
    pub undeclared_args: Vec<(&'a str, &'static str)>,
}

impl<'a> RunMetric<'a> {
    pub fn new(template: &'a ObjectRef, index: usize, metric: &'a Metric, args: &Args) -> Self {
        let provider = match &metric.provider {
            None => ProviderClass::Missing,
            Some(p) if p.kinds.is_empty() => ProviderClass::Missing,
            Some(p) if p.kinds.len() > 1 => ProviderClass::Several(&p.kinds),
            Some(p) => match p.kinds[0].as_str() {
                "job" => ProviderClass::Job,
                "plugin" => ProviderClass::Plugin,
                "kayenta" => {
                    let t = p.kayenta.as_ref();
                    ProviderClass::Kayenta {
                        pass: args.int(t.and_then(|t| t.pass.as_ref())),
                        marginal: args.int(t.and_then(|t| t.marginal.as_ref())),
                    }
                }
                k if CONDITION_PROVIDERS.contains(&k) => ProviderClass::Conditions(k),
                other => ProviderClass::Other(other),
            },
        };
        // Upstream tests a condition `!= ""` after substitution: one an argument empties is
        // unset. One that needs a value known only when the run starts (valueFrom) is set if
        // the rest of its text is not blank (`result > {{args.min}}`), else unknown.
        let set = |t: &Option<Text>| match args.text_value(t.as_ref().map(Text::as_str)) {
            Ok(Some(text)) if !text.trim().is_empty() => Condition::Set,
            Ok(_) => Condition::Unset,
            Err(()) => match t {
                Some(t) if !args.known_part(t.as_str()).trim().is_empty() => Condition::Set,
                _ => Condition::Unknown,
            },
        };
        let duration = |t: &Option<Text>| match args.text_value(t.as_ref().map(Text::as_str)) {
            Ok(None) => Resolved::Unset,
            Err(()) => Resolved::Unknown,
            // As written: Go's time.ParseDuration takes no surrounding spaces.
            Ok(Some(text)) => match parse_go_duration(&text) {
                Some(n) => Resolved::Known(n),
                None => Resolved::Invalid(text.into_owned()),
            },
        };
        let mut undeclared = Vec::new();
        let mut scan = |field: &'static str, text: Option<&'a str>| {
            for name in placeholders(text.unwrap_or_default()) {
                if args.get(name).is_none() {
                    undeclared.push((name, field));
                }
            }
        };
        fn int_text(v: &Option<IntOrStr>) -> Option<&str> {
            match v {
                Some(IntOrStr::Str(s)) => Some(s),
                _ => None,
            }
        }
        for (field, text) in [
            ("interval", &metric.interval),
            ("successCondition", &metric.success_condition),
            ("failureCondition", &metric.failure_condition),
            ("initialDelay", &metric.initial_delay),
        ] {
            scan(field, text.as_ref().map(Text::as_str));
        }
        for (field, value) in [
            ("count", &metric.count),
            ("failureLimit", &metric.failure_limit),
            ("inconclusiveLimit", &metric.inconclusive_limit),
            ("consecutiveErrorLimit", &metric.consecutive_error_limit),
            ("consecutiveSuccessLimit", &metric.consecutive_success_limit),
        ] {
            scan(field, int_text(value));
        }
        // Upstream substitutes the whole metric, the provider included (its placeholder
        // names were collected when it was read).
        for name in metric.provider.iter().flat_map(|p| &p.args) {
            if args.get(name).is_none() {
                undeclared.push((name.as_str(), "provider"));
            }
        }
        let mut read_as_zero = Vec::new();
        let mut limit =
            |field: &'static str, value: &Option<IntOrStr>| match args.int(value.as_ref()) {
                Resolved::Invalid(text) => {
                    read_as_zero.push((field, text));
                    Resolved::Known(0)
                }
                other => other,
            };
        let count = limit("count", &metric.count);
        let failure_limit = limit("failureLimit", &metric.failure_limit);
        let inconclusive_limit = limit("inconclusiveLimit", &metric.inconclusive_limit);
        let consecutive_error_limit =
            limit("consecutiveErrorLimit", &metric.consecutive_error_limit);
        let consecutive_success_limit =
            limit("consecutiveSuccessLimit", &metric.consecutive_success_limit);
        Self {
            template,
            index,
            name: &metric.name,
            provider,
            success_condition: set(&metric.success_condition),
            failure_condition: set(&metric.failure_condition),
            count,
            interval: duration(&metric.interval),
            initial_delay: duration(&metric.initial_delay),
            failure_limit,
            inconclusive_limit,
            consecutive_error_limit,
            consecutive_success_limit,
            dry_run: false,
            read_as_zero,
            undeclared_args: undeclared,
        }
    }

    /// `count` when set and positive (`count: 0` counts as unset upstream).
    pub fn explicit_count(&self) -> Resolved<i64> {
        match self.count {
            Resolved::Known(0) => Resolved::Unset,
            ref other => other.clone(),
        }
    }

    /// How many measurements the metric takes, when that is known and valid.
    pub fn runs(&self) -> Option<Runs> {
        match self.explicit_count() {
            Resolved::Known(n) if n > 0 => Some(Runs::Times(n)),
            Resolved::Unset => match self.interval {
                Resolved::Unset => Some(Runs::Times(1)),
                Resolved::Known(n) if n >= 0 => Some(Runs::Indefinite),
                _ => None,
            },
            _ => None,
        }
    }

    /// The field path of one of this metric's fields.
    pub fn field(&self, field: &str) -> String {
        format!("spec.metrics[{}].{field}", self.index)
    }

    /// `inconclusiveLimit` with its default, when known.
    pub fn inconclusive_limit_value(&self) -> Option<i64> {
        self.inconclusive_limit.known_or(0)
    }
}

/// Whether a metric can end Inconclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// Yes, with the reason.
    Yes(Reason<'a>),
    No,
    /// Depends on a value known only when the run starts.
    Unknown(Reason<'a>),
}

/// Why a metric can end Inconclusive, or what that depends on: `Display` says it in words
/// (formatted only into a finding that is emitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason<'a> {
    /// A condition-evaluating provider (named) with both conditions.
    BothConditions(&'a str),
    KayentaBand {
        marginal: i64,
        pass: i64,
    },
    Plugin,
    /// A job metric on >= 1.10.
    Job,
    /// `consecutiveSuccessLimit` (>= 1.8).
    Streak(i64),
    StreakDependsOnArgs,
    KayentaDependsOnArgs,
    /// A condition-evaluating provider (named) whose other condition is set, or both, known
    /// only when the run starts.
    ConditionsDependOnArgs(&'a str),
    /// The inner reason applies if count and inconclusiveLimit allow it, and they depend on
    /// an argument.
    CountDependsOnArgs(Box<Reason<'a>>),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BothConditions(p) => write!(
                f,
                "{p} with successCondition and failureCondition: a value matching neither is Inconclusive"
            ),
            Reason::KayentaBand { marginal, pass } => write!(
                f,
                "kayenta scores from {marginal} (marginal) up to {pass} (pass) are Inconclusive"
            ),
            Reason::Plugin => f.write_str("a plugin provider can return Inconclusive"),
            Reason::Job => f.write_str(
                "job metrics end Inconclusive on image-pull failures and terminated jobs (>= 1.10)",
            ),
            Reason::Streak(n) => write!(
                f,
                "consecutiveSuccessLimit {n}: reaching count without {n} successes in a row ends Inconclusive"
            ),
            Reason::StreakDependsOnArgs => {
                f.write_str("consecutiveSuccessLimit or failureLimit depends on an argument")
            }
            Reason::KayentaDependsOnArgs => f.write_str("kayenta thresholds depend on arguments"),
            Reason::ConditionsDependOnArgs(p) => write!(
                f,
                "{p} with a successCondition or failureCondition known only when the run starts"
            ),
            Reason::CountDependsOnArgs(reason) => write!(
                f,
                "{reason}, but count or inconclusiveLimit depends on an argument"
            ),
        }
    }
}

/// DOMAIN §4 `can_inconclude(m)`: (a) a condition-evaluating provider with both conditions,
/// (b) Kayenta with `marginal < pass`, (c) a plugin, (d) a job on >= 1.10, each also needing
/// an indefinite metric or `count > inconclusiveLimit`; or (e) `consecutiveSuccessLimit > 0`
/// with `failureLimit != -1` on >= 1.8.
pub fn can_inconclude<'a>(m: &RunMetric<'a>, version: ControllerVersion) -> Verdict<'a> {
    let streak = match (&m.consecutive_success_limit, m.failure_limit.known_or(0)) {
        (Resolved::Known(n), Some(fl)) if *n > 0 && fl != -1 => {
            if version.has_consecutive_success_limit() {
                return Verdict::Yes(Reason::Streak(*n));
            }
            Verdict::No
        }
        (Resolved::Unknown, _) | (Resolved::Known(1..), None) => {
            Verdict::Unknown(Reason::StreakDependsOnArgs)
        }
        _ => Verdict::No,
    };
    let base = match &m.provider {
        ProviderClass::Conditions(p) => match (m.success_condition, m.failure_condition) {
            (Condition::Set, Condition::Set) => Verdict::Yes(Reason::BothConditions(p)),
            (Condition::Unset, _) | (_, Condition::Unset) => Verdict::No,
            _ => Verdict::Unknown(Reason::ConditionsDependOnArgs(p)),
        },
        ProviderClass::Kayenta { pass, marginal } => match (pass, marginal) {
            (Resolved::Known(p), Resolved::Known(mg)) if mg < p => {
                Verdict::Yes(Reason::KayentaBand {
                    marginal: *mg,
                    pass: *p,
                })
            }
            (Resolved::Known(_), Resolved::Known(_)) => Verdict::No,
            (Resolved::Unknown, _) | (_, Resolved::Unknown) => {
                Verdict::Unknown(Reason::KayentaDependsOnArgs)
            }
            // Missing or not integers: reported by `metric_findings`, never a guess here.
            _ => Verdict::No,
        },
        ProviderClass::Plugin => Verdict::Yes(Reason::Plugin),
        ProviderClass::Job if version.job_can_inconclude() => Verdict::Yes(Reason::Job),
        _ => Verdict::No,
    };
    let base = match base {
        Verdict::Yes(reason) => match (m.runs(), m.inconclusive_limit_value()) {
            // Indefinite: any limit L trips after L + 1 Inconclusive measurements, so a
            // limit known only when the run starts changes nothing.
            (Some(Runs::Indefinite), _) => Verdict::Yes(reason),
            (Some(Runs::Times(n)), Some(limit)) if n > limit => Verdict::Yes(reason),
            (Some(_), Some(_)) => Verdict::No,
            (None, _)
                if !matches!(m.explicit_count(), Resolved::Unknown)
                    && !matches!(m.interval, Resolved::Unknown) =>
            {
                Verdict::No
            }
            _ => Verdict::Unknown(Reason::CountDependsOnArgs(Box::new(reason))),
        },
        // Undecided only while the count allows it at all.
        Verdict::Unknown(reason) => match (m.runs(), m.inconclusive_limit_value()) {
            (Some(Runs::Times(n)), Some(limit)) if n <= limit => Verdict::No,
            _ => Verdict::Unknown(reason),
        },
        other => other,
    };
    match (base, streak) {
        (Verdict::Yes(r), _) | (_, Verdict::Yes(r)) => Verdict::Yes(r),
        (Verdict::Unknown(r), _) | (_, Verdict::Unknown(r)) => Verdict::Unknown(r),
        _ => Verdict::No,
    }
}

/// How a run judges an argument that its templates use and none declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undeclared {
    /// A Rollout's run: Argo Rollouts cannot start it. An error.
    Refused,
    /// A template checked on its own: another template of a Rollout's run may declare it
    /// (Argo merges every template's arguments), so a warning.
    MayBeDeclaredElsewhere,
    /// A template checked on its own whose nested namespaced templates were left out: one of
    /// them may declare it. Nothing is said; each Rollout's run is judged whole.
    Unknown,
}

/// Metric-level findings of the deny and warn classes; `undeclared` says how arguments
/// nobody declares are judged.
pub fn metric_findings(m: &RunMetric, undeclared: Undeclared) -> Vec<Finding> {
    let mut out = Vec::new();
    let obj = m.template;
    let name = m.name;
    let mut deny = |rule: Rule, field: &str, message: String, why: &'static str| {
        out.push(Finding::new(rule, Severity::Error, obj, m.field(field), message).explain(why));
    };

    for (field, value) in [
        ("interval", &m.interval),
        ("initialDelay", &m.initial_delay),
    ] {
        match value {
            Resolved::Invalid(text) => deny(
                Rule::InvalidDuration,
                field,
                format!(
                    "metric `{name}` {field} `{text}` is not a duration: use a Go duration such as 30s or 5m"
                ),
                "Argo Rollouts parses metric durations with Go's time.ParseDuration: a number needs a unit \
                 (ns, us, ms, s, m, h; no d). The run fails with an Error.",
            ),
            Resolved::Known(n) if *n < 0 => deny(
                Rule::InvalidDuration,
                field,
                format!("metric `{name}` {field} is negative: use a positive duration"),
                "A negative duration makes the AnalysisRun invalid.",
            ),
            _ => {}
        }
    }

    match &m.provider {
        ProviderClass::Missing => deny(
            Rule::InvalidProvider,
            "provider",
            format!(
                "metric `{name}` has no provider: set exactly one, such as prometheus, web or job"
            ),
            "Argo Rollouts rejects a metric without a provider when the run starts.",
        ),
        ProviderClass::Several(kinds) => deny(
            Rule::InvalidProvider,
            "provider",
            format!(
                "metric `{name}` sets several providers ({}): keep exactly one",
                {
                    let mut kinds = kinds.to_vec();
                    kinds.sort_unstable();
                    kinds.join(", ")
                }
            ),
            "Argo Rollouts rejects a metric with more than one provider when the run starts.",
        ),
        ProviderClass::Kayenta { pass, marginal } => {
            for (field, value) in [("pass", pass), ("marginal", marginal)] {
                match value {
                    Resolved::Unset => deny(
                        Rule::InvalidProvider,
                        "provider.kayenta.threshold",
                        format!(
                            "kayenta metric `{name}` has no threshold.{field}: set threshold.pass and threshold.marginal"
                        ),
                        "The Kayenta provider requires threshold.pass and threshold.marginal (the CRD marks them \
                         required; `thresholds` is a common misspelling).",
                    ),
                    Resolved::Invalid(text) => deny(
                        Rule::InvalidProvider,
                        "provider.kayenta.threshold",
                        format!(
                            "kayenta metric `{name}` threshold.{field} `{text}` is not an integer"
                        ),
                        "Kayenta thresholds are integer scores.",
                    ),
                    _ => {}
                }
            }
        }
        _ => {}
    }

    let limits_why = "Argo Rollouts validates metric limits when the AnalysisRun starts; a background run \
                      that fails validation goes Error and aborts the Rollout.";
    let count = m.explicit_count().known();
    let fl = m.failure_limit.known_or(0);
    let il = m.inconclusive_limit.known_or(0);
    let csl = m.consecutive_success_limit.known_or(0);
    if let Resolved::Known(n) = m.inconclusive_limit
        && n < 0
    {
        deny(
            Rule::InvalidMetricLimits,
            "inconclusiveLimit",
            format!("metric `{name}` inconclusiveLimit {n} is negative: use 0 or more"),
            limits_why,
        );
    }
    if let Resolved::Known(n) = m.failure_limit
        && n < -1
    {
        deny(
            Rule::InvalidMetricLimits,
            "failureLimit",
            format!("metric `{name}` failureLimit {n} is below -1: use -1 (off) or 0 or more"),
            limits_why,
        );
    }
    if let (Some(-1), Some(c)) = (fl, csl)
        && c <= 0
    {
        deny(
            Rule::InvalidMetricLimits,
            "failureLimit",
            format!(
                "metric `{name}` failureLimit -1 needs consecutiveSuccessLimit > 0: set one or use failureLimit >= 0"
            ),
            limits_why,
        );
    }
    for (field, value) in [
        ("consecutiveSuccessLimit", &m.consecutive_success_limit),
        ("consecutiveErrorLimit", &m.consecutive_error_limit),
    ] {
        if let Resolved::Known(n) = value
            && *n < 0
        {
            deny(
                Rule::InvalidMetricLimits,
                field,
                format!("metric `{name}` {field} {n} is negative: use 0 or more"),
                limits_why,
            );
        }
    }
    if let Some(count) = count.filter(|c| *c > 0) {
        if let Some(il) = il.filter(|il| count < *il) {
            deny(
                Rule::InvalidMetricLimits,
                "count",
                format!(
                    "metric `{name}` count {count} is below inconclusiveLimit {il}: raise count or lower the limit"
                ),
                limits_why,
            );
        }
        if let (Some(fl), Some(csl)) = (fl, csl)
            && count < fl.saturating_add(csl)
        {
            deny(
                Rule::InvalidMetricLimits,
                "count",
                format!(
                    "metric `{name}` count {count} is below failureLimit + consecutiveSuccessLimit ({}): raise count",
                    fl.saturating_add(csl)
                ),
                limits_why,
            );
        }
        if count > 1 && m.interval == Resolved::Unset {
            deny(
                Rule::InvalidMetricLimits,
                "interval",
                format!(
                    "metric `{name}` has count {count} but no interval: set an interval such as 1m"
                ),
                limits_why,
            );
        }
    }
    // Arguments nobody declares: an error in a Rollout's run; a warning for a template on its
    // own, since another template of the run may declare them; nothing when that is unknown.
    let judged = match undeclared {
        Undeclared::Refused => Some((
            Severity::Error,
            "Argo Rollouts fails to start a run whose templates use an argument nobody declares.",
        )),
        Undeclared::MayBeDeclaredElsewhere => Some((
            Severity::Warning,
            "Argo Rollouts merges the arguments of every template of a run, so a template may use one that \
             another template referenced by the same analysis declares. A Rollout whose run has no template \
             declaring it cannot start the run; each Rollout using this template is checked with its whole run.",
        )),
        Undeclared::Unknown => None,
    };
    if let Some((severity, why)) = judged {
        for (arg, field) in &m.undeclared_args {
            let message = if severity == Severity::Error {
                format!(
                    "metric `{name}` uses {{{{args.{arg}}}}} but no template declares `{arg}`: add it to spec.args"
                )
            } else {
                format!(
                    "metric `{name}` uses {{{{args.{arg}}}}}, not declared here: another template of the same run must declare `{arg}`"
                )
            };
            out.push(
                Finding::new(
                    Rule::UnresolvedArgument,
                    severity,
                    obj,
                    m.field(field),
                    message,
                )
                .explain(why),
            );
        }
    }

    let mut warn = |rule: Rule, field: &str, message: String, why: &'static str| {
        out.push(Finding::new(rule, Severity::Warning, obj, m.field(field), message).explain(why));
    };
    if let Some(count) = count.filter(|c| *c > 0) {
        if il == Some(count) {
            warn(
                Rule::LimitNeverTrips,
                "inconclusiveLimit",
                format!(
                    "metric `{name}` inconclusiveLimit equals count ({count}): it can never trip; lower it"
                ),
                "A metric ends Inconclusive only when inconclusive measurements exceed the limit; with count \
                 equal to it, an all-inconclusive run ends Successful.",
            );
        }
        if let (Some(fl), Some(csl)) = (fl, csl)
            && fl >= 0
            && count == fl.saturating_add(csl)
        {
            warn(
                Rule::LimitNeverTrips,
                "failureLimit",
                format!(
                    "metric `{name}` count equals failureLimit + consecutiveSuccessLimit ({count}): the failure limit can never trip"
                ),
                "Failures must exceed failureLimit to fail the metric; with so few measurements that cannot happen.",
            );
        }
    }
    if let ProviderClass::Conditions(p) = &m.provider
        && m.success_condition == Condition::Unset
        && m.failure_condition == Condition::Unset
    {
        warn(
            Rule::MetricWithoutConditions,
            "successCondition",
            format!(
                "metric `{name}` ({p}) has no successCondition or failureCondition: it is always Successful"
            ),
            "Argo Rollouts evaluates a measurement without conditions as Successful (its docs say Inconclusive); \
                 only query errors count. Add the condition the metric is meant to check.",
        );
    }
    // Not a denial: Argo Rollouts runs the metric, with 0 (which the rules use too).
    out.extend(m
        .read_as_zero
        .iter()
        .map(|(field, text)| {
            Finding::new(
                Rule::InvalidMetricLimits,
                Severity::Warning,
                obj,
                m.field(field),
                format!("metric `{name}` {field} `{text}` is not a whole number, so Argo Rollouts reads it as 0: set a whole number"),
            )
            .explain(
                "Argo Rollouts reads count and the limits with IntOrString.IntValue(), which gives 0 for \
                 text that is not a whole number (surrounding spaces included) without an error.",
            )
        })
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use serde_json::{Value, json};

    /// A run metric borrows its metric and template: leaked here, as a test is short-lived.
    fn metric(spec: Value) -> RunMetric<'static> {
        let m: &'static Metric = Box::leak(Box::new(serde_json::from_value(spec).unwrap()));
        let obj = Box::leak(Box::new(ObjectRef {
            kind: Kind::AnalysisTemplate,
            namespace: None,
            name: "t".into(),
        }));
        RunMetric::new(obj, 0, m, &Args::default())
    }

    fn prom(extra: Value) -> RunMetric<'static> {
        let mut base = json!({
            "name": "m", "interval": "1m",
            "successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.9",
            "provider": {"prometheus": {"query": "q"}}
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        metric(base)
    }

    const V19: ControllerVersion = ControllerVersion::new(1, 9, 0);

    fn yes(v: Verdict<'_>) -> bool {
        matches!(v, Verdict::Yes(_))
    }

    fn rules(m: &RunMetric) -> Vec<&'static str> {
        metric_findings(m, Undeclared::Refused)
            .iter()
            .map(|f| f.rule.id())
            .collect()
    }

    #[test]
    fn both_conditions_on_an_indefinite_metric_can_inconclude() {
        assert!(yes(can_inconclude(&prom(json!({})), V19)));
    }

    #[test]
    fn one_condition_only_cannot_inconclude() {
        assert_eq!(
            can_inconclude(&prom(json!({"failureCondition": null})), V19),
            Verdict::No
        );
        assert_eq!(
            can_inconclude(&prom(json!({"successCondition": null})), V19),
            Verdict::No
        );
    }

    #[test]
    fn count_must_exceed_inconclusive_limit() {
        let at = prom(json!({"count": 3, "inconclusiveLimit": 3}));
        assert_eq!(can_inconclude(&at, V19), Verdict::No);
        assert!(yes(can_inconclude(
            &prom(json!({"count": 4, "inconclusiveLimit": 3})),
            V19
        )));
        // Measures once without count or interval: 1 > 0.
        assert!(yes(can_inconclude(&prom(json!({"interval": null})), V19)));
        assert_eq!(
            can_inconclude(
                &prom(json!({"interval": null, "inconclusiveLimit": 1})),
                V19
            ),
            Verdict::No
        );
        // count 0 counts as unset: indefinite with an interval.
        assert!(yes(can_inconclude(
            &prom(json!({"count": 0, "inconclusiveLimit": 5})),
            V19
        )));
    }

    #[test]
    fn kayenta_needs_a_marginal_band() {
        let k = |pass: i64, marginal: i64| {
            metric(json!({"name": "k", "interval": "5m",
                "provider": {"kayenta": {"threshold": {"pass": pass, "marginal": marginal}}}}))
        };
        assert!(yes(can_inconclude(&k(90, 75), V19)));
        assert_eq!(can_inconclude(&k(90, 90), V19), Verdict::No);
    }

    #[test]
    fn kayenta_without_thresholds_is_invalid_not_unknown() {
        let m = metric(
            json!({"name": "k", "interval": "5m", "provider": {"kayenta": {"thresholds": {"pass": 90}}}}),
        );
        assert_eq!(can_inconclude(&m, V19), Verdict::No);
        let f = metric_findings(&m, Undeclared::Refused);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.rule == Rule::InvalidProvider
            && f.path == "spec.metrics[0].provider.kayenta.threshold"));
    }

    #[test]
    fn several_providers_are_named_in_one_order() {
        let m = metric(json!({"name": "m", "successCondition": "true",
            "provider": {"web": {"url": "u"}, "prometheus": {"query": "q"}}}));
        let f = metric_findings(&m, Undeclared::Refused);
        let several = f
            .iter()
            .find(|f| f.rule == Rule::InvalidProvider)
            .expect("an invalid-provider finding");
        assert!(
            several.message.contains("(prometheus, web)"),
            "{}",
            several.message
        );
    }

    #[test]
    fn plugins_can_inconclude_and_jobs_only_from_1_10() {
        let plugin = metric(json!({"name": "p", "provider": {"plugin": {"x/y": {}}}}));
        assert!(yes(can_inconclude(&plugin, V19)));
        let job = metric(json!({"name": "j", "provider": {"job": {"spec": {}}}}));
        assert_eq!(can_inconclude(&job, V19), Verdict::No);
        assert!(yes(can_inconclude(&job, ControllerVersion::new(1, 10, 0))));
    }

    #[test]
    fn consecutive_success_limit_can_inconclude_from_1_8() {
        let m = metric(
            json!({"name": "c", "interval": "1m", "count": 5, "consecutiveSuccessLimit": 3,
            "successCondition": "true", "provider": {"web": {"url": "u"}}}),
        );
        assert!(yes(can_inconclude(&m, V19)));
        assert_eq!(
            can_inconclude(&m, ControllerVersion::new(1, 7, 2)),
            Verdict::No
        );
        let off = metric(
            json!({"name": "c", "interval": "1m", "count": 5, "consecutiveSuccessLimit": 3,
            "failureLimit": -1, "successCondition": "true", "provider": {"web": {"url": "u"}}}),
        );
        assert_eq!(can_inconclude(&off, V19), Verdict::No);
    }

    #[test]
    fn conditions_are_ignored_on_unknown_and_job_providers() {
        let m = metric(
            json!({"name": "x", "successCondition": "a", "failureCondition": "b",
            "provider": {"job": {}}}),
        );
        assert_eq!(can_inconclude(&m, V19), Verdict::No);
    }

    #[test]
    fn unresolved_count_is_unknown_not_guessed() {
        let m: Metric =
            serde_json::from_value(json!({"name": "m", "interval": "1m", "count": "{{args.n}}",
            "successCondition": "a", "failureCondition": "b", "provider": {"web": {}}}))
            .unwrap();
        let declared: Vec<crate::model::Arg> = serde_json::from_value(
            json!([{"name": "n", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]),
        )
        .unwrap();
        let obj = ObjectRef {
            kind: Kind::AnalysisTemplate,
            namespace: None,
            name: "t".into(),
        };
        let rm = RunMetric::new(&obj, 0, &m, &Args::merge(&declared, &[]));
        assert!(matches!(can_inconclude(&rm, V19), Verdict::Unknown(_)));
        assert!(metric_findings(&rm, Undeclared::Refused).is_empty());
    }

    /// Upstream resolves the whole metric (conditions and provider included) and fails the
    /// run on any `{{args.x}}` no template declares.
    #[test]
    fn undeclared_arguments_in_conditions_and_provider_are_unresolved() {
        let m = prom(json!({"successCondition": "result[0] >= {{args.min}}",
            "failureCondition": "result[0] < {{ args.max }}",
            "provider": {"prometheus": {"query": "up{svc=\"{{args.svc}}\"}"}}}));
        let fields: Vec<_> = metric_findings(&m, Undeclared::Refused)
            .iter()
            .map(|f| (f.rule.id(), f.path.clone()))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "unresolved-argument",
                    "spec.metrics[0].successCondition".into()
                ),
                (
                    "unresolved-argument",
                    "spec.metrics[0].failureCondition".into()
                ),
                ("unresolved-argument", "spec.metrics[0].provider".into()),
            ]
        );
        // Declared (with or without a value known now): nothing to say about them.
        let spec: Metric = serde_json::from_value(json!({"name": "m", "interval": "1m",
            "successCondition": "result[0] >= {{args.min}}", "failureCondition": "result[0] < 1",
            "provider": {"prometheus": {"query": "up{svc=\"{{args.svc}}\"}"}}}))
        .unwrap();
        let declared: Vec<crate::model::Arg> = serde_json::from_value(json!([
            {"name": "min", "value": "0.9"},
            {"name": "svc", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}
        ]))
        .unwrap();
        let obj = ObjectRef {
            kind: Kind::AnalysisTemplate,
            namespace: None,
            name: "t".into(),
        };
        let rm = RunMetric::new(&obj, 0, &spec, &Args::merge(&declared, &[]));
        assert!(
            metric_findings(&rm, Undeclared::Refused).is_empty(),
            "{:?}",
            metric_findings(&rm, Undeclared::Refused)
        );
    }

    /// A condition is set when it is not empty after substitution (upstream's `!= ""`).
    #[test]
    fn a_condition_an_argument_empties_is_unset() {
        let spec: Metric = serde_json::from_value(json!({"name": "m", "interval": "1m",
            "successCondition": "result == 1", "failureCondition": "{{args.fail}}",
            "provider": {"web": {"url": "u"}}}))
        .unwrap();
        let obj = ObjectRef {
            kind: Kind::AnalysisTemplate,
            namespace: None,
            name: "t".into(),
        };
        let with = |arg: Value| {
            let declared: Vec<crate::model::Arg> = serde_json::from_value(json!([arg])).unwrap();
            let rm = RunMetric::new(&obj, 0, &spec, &Args::merge(&declared, &[]));
            (rm.success_condition, rm.failure_condition)
        };
        use Condition::{Set, Unknown, Unset};
        assert_eq!(with(json!({"name": "fail", "value": ""})), (Set, Unset));
        assert_eq!(
            with(json!({"name": "fail", "value": "result == 0"})),
            (Set, Set)
        );
        // Known only when the run starts: unknown, so the metric is undecided, not flagged
        // (DOMAIN §4: an unresolved value is never a guess).
        assert_eq!(
            with(json!({"name": "fail", "valueFrom": {"fieldRef": {"fieldPath": "x"}}})),
            (Set, Unknown)
        );
        // Text around the placeholder is there whatever the value: written.
        let partly: Metric = serde_json::from_value(json!({"name": "m", "interval": "1m",
            "successCondition": "result == 1", "failureCondition": "result[0] > {{args.fail}}",
            "provider": {"web": {"url": "u"}}}))
        .unwrap();
        let declared: Vec<crate::model::Arg> = serde_json::from_value(
            json!([{"name": "fail", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]),
        )
        .unwrap();
        let rm = RunMetric::new(&obj, 0, &partly, &Args::merge(&declared, &[]));
        assert_eq!((rm.success_condition, rm.failure_condition), (Set, Set));
        let empty: Vec<crate::model::Arg> =
            serde_json::from_value(json!([{"name": "fail", "value": ""}])).unwrap();
        let rm = RunMetric::new(&obj, 0, &spec, &Args::merge(&empty, &[]));
        assert_eq!(can_inconclude(&rm, V19), Verdict::No);
    }

    #[test]
    fn flags_bad_durations() {
        assert_eq!(
            rules(&prom(json!({"interval": "30"}))),
            ["invalid-duration"]
        );
        assert_eq!(
            rules(&prom(json!({"initialDelay": "-5s"}))),
            ["invalid-duration"]
        );
        assert_eq!(
            rules(&prom(json!({"interval": "1d"}))),
            ["invalid-duration"]
        );
        assert!(rules(&prom(json!({"interval": "1h30m", "initialDelay": "0"}))).is_empty());
    }

    #[test]
    fn flags_limits_upstream_rejects() {
        assert_eq!(
            rules(&prom(json!({"inconclusiveLimit": -1}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"failureLimit": -2}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"failureLimit": -1}))),
            ["invalid-metric-limits"]
        );
        assert!(
            rules(&prom(
                json!({"failureLimit": -1, "consecutiveSuccessLimit": 2})
            ))
            .is_empty()
        );
        assert_eq!(
            rules(&prom(json!({"consecutiveErrorLimit": -1}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"consecutiveSuccessLimit": -1}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"count": 2, "inconclusiveLimit": 3}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(
                json!({"count": 3, "failureLimit": 2, "consecutiveSuccessLimit": 2})
            )),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"count": 3, "interval": null}))),
            ["invalid-metric-limits"]
        );
        assert_eq!(
            rules(&prom(json!({"count": "three"}))),
            ["invalid-metric-limits"]
        );
        assert!(
            rules(&prom(
                json!({"count": 5, "failureLimit": 2, "inconclusiveLimit": 1})
            ))
            .is_empty()
        );
    }

    #[test]
    fn flags_provider_count() {
        let none = metric(json!({"name": "m"}));
        assert_eq!(rules(&none), ["invalid-provider"]);
        let two = metric(json!({"name": "m", "successCondition": "x",
            "provider": {"web": {}, "prometheus": {}}}));
        assert_eq!(rules(&two), ["invalid-provider"]);
    }

    #[test]
    fn warns_when_a_limit_can_never_trip() {
        assert_eq!(
            rules(&prom(json!({"count": 3, "inconclusiveLimit": 3}))),
            ["limit-never-trips"]
        );
        assert_eq!(
            rules(&prom(
                json!({"count": 1, "failureLimit": 1, "interval": null})
            )),
            ["limit-never-trips"]
        );
        assert!(rules(&prom(json!({"count": 2, "failureLimit": 1}))).is_empty());
    }

    #[test]
    fn warns_about_metrics_without_conditions() {
        let m = prom(json!({"successCondition": null, "failureCondition": null}));
        assert_eq!(rules(&m), ["metric-without-conditions"]);
        let job = metric(json!({"name": "j", "provider": {"job": {}}}));
        assert!(rules(&job).is_empty());
    }

    #[test]
    fn paths_point_at_the_field() {
        let f = &metric_findings(&prom(json!({"interval": "5"})), Undeclared::Refused)[0];
        assert_eq!(f.path, "spec.metrics[0].interval");
        assert!(!f.message.contains('\n'));
    }

    /// A run metric whose templates declare `args` (a `valueFrom` is known only when the run
    /// starts).
    fn with_args(spec: Value, args: Value) -> RunMetric<'static> {
        let m: &'static Metric = Box::leak(Box::new(serde_json::from_value(spec).unwrap()));
        let declared: Vec<crate::model::Arg> = serde_json::from_value(args).unwrap();
        let obj = Box::leak(Box::new(ObjectRef {
            kind: Kind::AnalysisTemplate,
            namespace: None,
            name: "t".into(),
        }));
        RunMetric::new(obj, 0, m, &Args::merge(&declared, &[]))
    }

    fn from_pod(name: &str) -> Value {
        json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['x']"}}})
    }

    /// A negative or unparsable interval is deny-class (the run goes Error): the metric takes
    /// no measurement, so it is neither indefinite nor undecided.
    #[test]
    fn an_invalid_interval_cannot_inconclude() {
        for interval in ["-1m", "1d"] {
            let m = prom(json!({ "interval": interval }));
            assert_eq!(m.runs(), None, "{interval}");
            assert_eq!(can_inconclude(&m, V19), Verdict::No, "{interval}");
            assert_eq!(rules(&m), ["invalid-duration"], "{interval}");
        }
    }

    /// 0 is the default of inconclusiveLimit, consecutiveErrorLimit's floor and
    /// consecutiveSuccessLimit's "off": written out, none is rejected, and a streak of 0
    /// cannot end a metric Inconclusive (DOMAIN §2, §4 (e)).
    #[test]
    fn limits_written_as_zero_are_valid_and_zero_streak_is_off() {
        for field in [
            "inconclusiveLimit",
            "consecutiveErrorLimit",
            "consecutiveSuccessLimit",
        ] {
            let mut extra = json!({"count": 5});
            extra[field] = json!(0);
            assert!(rules(&prom(extra)).is_empty(), "{field}");
        }
        let one_condition = prom(json!({"failureCondition": null, "count": 5,
            "consecutiveSuccessLimit": 0}));
        assert_eq!(can_inconclude(&one_condition, V19), Verdict::No);
    }

    /// DOMAIN §4: a value known only when the run starts is unknown, never a guess, whether
    /// it is the streak, a Kayenta threshold or a condition; a known count at or below the
    /// limit still rules Inconclusive out.
    #[test]
    fn values_known_only_at_run_start_leave_the_verdict_unknown() {
        let streak = |csl: Value, fl: Value| {
            with_args(
                json!({"name": "s", "interval": "1m", "count": 5, "successCondition": "true",
                    "consecutiveSuccessLimit": csl, "failureLimit": fl,
                    "provider": {"web": {"url": "u"}}}),
                json!([from_pod("streak"), from_pod("fl")]),
            )
        };
        for m in [
            streak(json!("{{args.streak}}"), json!(0)),
            streak(json!(3), json!("{{args.fl}}")),
        ] {
            assert_eq!(
                can_inconclude(&m, V19),
                Verdict::Unknown(Reason::StreakDependsOnArgs)
            );
        }
        let kayenta = with_args(
            json!({"name": "k", "interval": "5m", "provider": {"kayenta":
                {"threshold": {"pass": "{{args.pass}}", "marginal": 75}}}}),
            json!([from_pod("pass")]),
        );
        assert_eq!(
            can_inconclude(&kayenta, V19),
            Verdict::Unknown(Reason::KayentaDependsOnArgs)
        );
        let conditions = |count: i64| {
            with_args(
                json!({"name": "c", "interval": "1m", "count": count, "inconclusiveLimit": 3,
                    "successCondition": "result == 1", "failureCondition": "{{args.fc}}",
                    "provider": {"web": {"url": "u"}}}),
                json!([from_pod("fc")]),
            )
        };
        assert_eq!(
            can_inconclude(&conditions(4), V19),
            Verdict::Unknown(Reason::ConditionsDependOnArgs("web"))
        );
        assert_eq!(can_inconclude(&conditions(3), V19), Verdict::No);
    }

    #[test]
    fn kayenta_thresholds_that_are_not_integers_are_invalid() {
        let m = metric(json!({"name": "k", "interval": "5m",
            "provider": {"kayenta": {"threshold": {"pass": "high", "marginal": 75}}}}));
        assert_eq!(can_inconclude(&m, V19), Verdict::No);
        let f = metric_findings(&m, Undeclared::Refused);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].rule, f[0].severity, f[0].path.as_str()),
            (
                Rule::InvalidProvider,
                Severity::Error,
                "spec.metrics[0].provider.kayenta.threshold"
            )
        );
        assert!(
            f[0].message
                .contains("threshold.pass `high` is not an integer"),
            "{}",
            f[0].message
        );
    }

    /// The reason is said in words in D1's explanation.
    #[test]
    fn reasons_say_why_in_words() {
        let Verdict::Yes(reason) = can_inconclude(&prom(json!({})), V19) else {
            panic!("prometheus with both conditions can end Inconclusive");
        };
        assert_eq!(
            reason.to_string(),
            "prometheus with successCondition and failureCondition: a value matching neither is Inconclusive"
        );
        assert_eq!(
            Reason::KayentaBand {
                marginal: 75,
                pass: 90
            }
            .to_string(),
            "kayenta scores from 75 (marginal) up to 90 (pass) are Inconclusive"
        );
        assert_eq!(
            Reason::CountDependsOnArgs(Box::new(Reason::Plugin)).to_string(),
            "a plugin provider can return Inconclusive, but count or inconclusiveLimit depends on an argument"
        );
    }
}
