//! A small Prometheus registry made of atomics: recording on the request path is a few
//! relaxed atomic adds, with no locks and no allocation; rendering the text exposition format
//! (0.0.4) happens only when `/metrics` is scraped. Labels are low-cardinality by construction:
//! endpoints and outcomes are enums, rule ids are `&'static str` from the rule set.

use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::finding::Rule;
use crate::review::{Endpoint, Outcome, Summary};

/// Upper bounds of the admission duration histogram, in seconds (100 µs to 10 s).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

const ENDPOINTS: [Endpoint; 2] = [Endpoint::Validate, Endpoint::Mutate];

/// Why the transport answered a request itself, without a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    PayloadTooLarge,
    BodyTimeout,
    BodyError,
    /// No room for the body within `--max-buffered-body-bytes` before the deadline.
    BodiesBuffered,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::BodyTimeout,
        Self::BodyError,
        Self::BodiesBuffered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyError => "body_error",
            Self::BodiesBuffered => "bodies_buffered",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// Per-bucket counts (not cumulative; the last slot is `+Inf` only).
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = DURATION_BUCKETS.partition_point(|&bound| bound < secs);
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Process-wide admission metrics. Share it behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    durations: [Histogram; 2],
    reviews: [[AtomicU64; Outcome::ALL.len()]; 2],
    /// Findings of each rule of [`Rule::ALL`], counted without a lock: every review with
    /// findings counts them, from every worker.
    findings: [AtomicU64; Rule::ALL.len()],
    /// Any other rule id a reviewer reports, with its count (the write lock is taken once per
    /// id for the life of the process).
    other_findings: RwLock<Vec<(&'static str, AtomicU64)>>,
    rejections: [AtomicU64; Rejection::ALL.len()],
    inflight: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Values read from elsewhere at scrape time.
#[derive(Debug, Default)]
pub struct ScrapeExtras {
    pub cache_sizes: Vec<(&'static str, usize)>,
    pub tls_reloads: u64,
    pub tls_reload_errors: u64,
    pub tls_reload_failing: bool,
    /// `notAfter` of the served certificate (Unix seconds), once one is loaded.
    pub tls_expiry: Option<i64>,
}

fn endpoint_index(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Validate => 0,
        Endpoint::Mutate => 1,
    }
}

fn outcome_index(outcome: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|&o| o == outcome)
        .unwrap_or(Outcome::ALL.len() - 1)
}

/// Counts one review in flight until dropped (so a cancelled request still decrements).
#[derive(Debug)]
pub struct InflightGuard<'a>(&'a Metrics);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a review as in flight until the guard drops.
    pub fn inflight(&self) -> InflightGuard<'_> {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(self)
    }

    /// Records one answered review: its latency, outcome and the rules it found.
    pub fn record_review(
        &self,
        endpoint: Endpoint,
        outcome: Outcome,
        summary: Option<&Summary>,
        elapsed: Duration,
    ) {
        let e = endpoint_index(endpoint);
        self.durations[e].observe(elapsed);
        self.reviews[e][outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
        if let Some(summary) = summary {
            for &rule in &summary.rules {
                self.record_finding(rule);
            }
        }
    }

    fn record_finding(&self, rule: &'static str) {
        if let Some(i) = Rule::ALL.iter().position(|r| r.id() == rule) {
            self.findings[i].fetch_add(1, Ordering::Relaxed);
            return;
        }
        {
            let findings = self
                .other_findings
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((_, count)) = findings.iter().find(|(id, _)| *id == rule) {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut findings = self
            .other_findings
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Another thread may have added it between the two locks.
        match findings.iter().find(|(id, _)| *id == rule) {
            Some((_, count)) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            None => findings.push((rule, AtomicU64::new(1))),
        }
    }

    /// Records a request the transport answered without a review.
    pub fn record_rejection(&self, rejection: Rejection) {
        let i = Rejection::ALL
            .iter()
            .position(|&r| r == rejection)
            .unwrap_or(0);
        self.rejections[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Reviews answered so far for one endpoint and outcome.
    pub fn reviews(&self, endpoint: Endpoint, outcome: Outcome) -> u64 {
        self.reviews[endpoint_index(endpoint)][outcome_index(outcome)].load(Ordering::Relaxed)
    }

    /// Renders every family in the Prometheus text exposition format 0.0.4.
    pub fn render(&self, extras: &ScrapeExtras) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; the results are ignored on purpose.
        let _ = self.render_into(&mut out, extras);
        out
    }

    fn render_into(&self, out: &mut String, extras: &ScrapeExtras) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP rollout_guard_admission_duration_seconds Time from request to answer of one admission review."
        )?;
        writeln!(
            out,
            "# TYPE rollout_guard_admission_duration_seconds histogram"
        )?;
        for (endpoint, histogram) in ENDPOINTS.iter().zip(&self.durations) {
            let endpoint = endpoint.as_str();
            let mut cumulative = 0u64;
            for (bound, count) in DURATION_BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += count.load(Ordering::Relaxed);
                writeln!(
                    out,
                    "rollout_guard_admission_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {cumulative}"
                )?;
            }
            cumulative += histogram.buckets[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
            writeln!(
                out,
                "rollout_guard_admission_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {cumulative}"
            )?;
            let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            writeln!(
                out,
                "rollout_guard_admission_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}"
            )?;
            // The count is the +Inf bucket, so the two can never disagree within one scrape.
            writeln!(
                out,
                "rollout_guard_admission_duration_seconds_count{{endpoint=\"{endpoint}\"}} {cumulative}"
            )?;
        }

        writeln!(
            out,
            "# HELP rollout_guard_reviews_total Admission reviews answered, by endpoint and outcome."
        )?;
        writeln!(out, "# TYPE rollout_guard_reviews_total counter")?;
        for (endpoint, counts) in ENDPOINTS.iter().zip(&self.reviews) {
            for (outcome, count) in Outcome::ALL.iter().zip(counts) {
                writeln!(
                    out,
                    "rollout_guard_reviews_total{{endpoint=\"{}\",outcome=\"{}\"}} {}",
                    endpoint.as_str(),
                    outcome.as_str(),
                    count.load(Ordering::Relaxed)
                )?;
            }
        }

        writeln!(
            out,
            "# HELP rollout_guard_findings_total Admission reviews whose answer reported the rule, once per rule and review."
        )?;
        writeln!(out, "# TYPE rollout_guard_findings_total counter")?;
        // Every rule from the start, at 0 until it is found: `rate()` and `increase()` then see
        // the first finding of a rule too.
        let known = Rule::ALL.iter().map(|r| r.id()).zip(&self.findings);
        let others = self
            .other_findings
            .read()
            .unwrap_or_else(|e| e.into_inner());
        for (rule, count) in known.chain(others.iter().map(|(id, count)| (*id, count))) {
            writeln!(
                out,
                "rollout_guard_findings_total{{rule=\"{}\"}} {}",
                LabelValue(rule),
                count.load(Ordering::Relaxed)
            )?;
        }

        writeln!(
            out,
            "# HELP rollout_guard_http_rejections_total Requests answered by the transport without a review, by reason."
        )?;
        writeln!(out, "# TYPE rollout_guard_http_rejections_total counter")?;
        for (reason, count) in Rejection::ALL.iter().zip(&self.rejections) {
            writeln!(
                out,
                "rollout_guard_http_rejections_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                count.load(Ordering::Relaxed)
            )?;
        }

        writeln!(
            out,
            "# HELP rollout_guard_cache_entries Objects held in the in-memory caches, by kind."
        )?;
        writeln!(out, "# TYPE rollout_guard_cache_entries gauge")?;
        for (kind, size) in &extras.cache_sizes {
            writeln!(
                out,
                "rollout_guard_cache_entries{{kind=\"{}\"}} {size}",
                LabelValue(kind)
            )?;
        }

        writeln!(
            out,
            "# HELP rollout_guard_tls_reloads_total Serving certificates swapped in after the first."
        )?;
        writeln!(out, "# TYPE rollout_guard_tls_reloads_total counter")?;
        writeln!(
            out,
            "rollout_guard_tls_reloads_total {}",
            extras.tls_reloads
        )?;
        writeln!(
            out,
            "# HELP rollout_guard_tls_reload_errors_total Certificate reloads that failed; the previous certificate stayed."
        )?;
        writeln!(out, "# TYPE rollout_guard_tls_reload_errors_total counter")?;
        writeln!(
            out,
            "rollout_guard_tls_reload_errors_total {}",
            extras.tls_reload_errors
        )?;
        writeln!(
            out,
            "# HELP rollout_guard_tls_reload_failing 1 while the certificate files cannot be served (a failed rotation); the previous certificate stays."
        )?;
        writeln!(out, "# TYPE rollout_guard_tls_reload_failing gauge")?;
        writeln!(
            out,
            "rollout_guard_tls_reload_failing {}",
            u8::from(extras.tls_reload_failing)
        )?;
        if let Some(expiry) = extras.tls_expiry {
            writeln!(
                out,
                "# HELP rollout_guard_tls_certificate_expiry_timestamp_seconds When the served certificate expires (notAfter, Unix time): alert well before it."
            )?;
            writeln!(
                out,
                "# TYPE rollout_guard_tls_certificate_expiry_timestamp_seconds gauge"
            )?;
            writeln!(
                out,
                "rollout_guard_tls_certificate_expiry_timestamp_seconds {expiry}"
            )?;
        }

        writeln!(
            out,
            "# HELP rollout_guard_inflight_reviews Admission requests being handled now."
        )?;
        writeln!(out, "# TYPE rollout_guard_inflight_reviews gauge")?;
        writeln!(
            out,
            "rollout_guard_inflight_reviews {}",
            self.inflight.load(Ordering::Relaxed)
        )
    }
}

/// Escapes a label value as the exposition format requires (`\\`, `\"`, `\n`).
struct LabelValue<'a>(&'a str);

impl std::fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix} in\n{text}"))
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let m = Metrics::new();
        m.record_review(
            Endpoint::Validate,
            Outcome::Allowed,
            None,
            Duration::from_micros(50),
        );
        m.record_review(
            Endpoint::Validate,
            Outcome::Denied,
            None,
            Duration::from_millis(3),
        );
        m.record_review(
            Endpoint::Validate,
            Outcome::Denied,
            None,
            Duration::from_secs(20),
        );
        let text = m.render(&ScrapeExtras::default());
        let b = "rollout_guard_admission_duration_seconds_bucket{endpoint=\"validate\",";
        assert!(line(&text, &format!("{b}le=\"0.0001\"}}")).ends_with(" 1"));
        assert!(line(&text, &format!("{b}le=\"0.0025\"}}")).ends_with(" 1"));
        assert!(line(&text, &format!("{b}le=\"0.005\"}}")).ends_with(" 2"));
        assert!(line(&text, &format!("{b}le=\"10\"}}")).ends_with(" 2"));
        assert!(line(&text, &format!("{b}le=\"+Inf\"}}")).ends_with(" 3"));
        assert!(
            line(
                &text,
                "rollout_guard_admission_duration_seconds_count{endpoint=\"validate\"}"
            )
            .ends_with(" 3")
        );
        assert!(
            line(
                &text,
                "rollout_guard_reviews_total{endpoint=\"validate\",outcome=\"denied\"}"
            )
            .ends_with(" 2")
        );
        assert!(
            line(
                &text,
                "rollout_guard_reviews_total{endpoint=\"mutate\",outcome=\"allowed\"}"
            )
            .ends_with(" 0")
        );
    }

    #[test]
    fn counts_findings_per_rule_and_renders_extras() {
        let m = Metrics::new();
        let summary = Summary {
            // Ids are counted as reviewers report them, from the rule set or not.
            rules: vec![
                "inconclusive-timed-pause",
                "background-analysis-inconclusive",
                "odd\"rule",
            ],
            ..Summary::default()
        };
        for _ in 0..3 {
            m.record_review(
                Endpoint::Mutate,
                Outcome::Warned,
                Some(&summary),
                Duration::from_millis(1),
            );
        }
        m.record_rejection(Rejection::PayloadTooLarge);
        let guard = m.inflight();
        let text = m.render(&ScrapeExtras {
            cache_sizes: vec![("analysistemplates", 7)],
            tls_reloads: 2,
            tls_reload_errors: 1,
            tls_reload_failing: true,
            tls_expiry: Some(1_900_000_000),
        });
        drop(guard);
        assert!(
            line(
                &text,
                "rollout_guard_findings_total{rule=\"background-analysis-inconclusive\"}"
            )
            .ends_with(" 3")
        );
        assert!(line(&text, "rollout_guard_findings_total{rule=\"odd\\\"rule\"}").ends_with(" 3"));
        assert!(
            line(
                &text,
                "rollout_guard_findings_total{rule=\"inconclusive-timed-pause\"}"
            )
            .ends_with(" 3")
        );
        // Every rule is listed from the start, at 0 until found, so a rate sees its first.
        assert_eq!(
            line(
                &text,
                "rollout_guard_findings_total{rule=\"template-cycle\"}"
            ),
            "rollout_guard_findings_total{rule=\"template-cycle\"} 0"
        );
        assert!(
            line(
                &text,
                "rollout_guard_http_rejections_total{reason=\"payload_too_large\"}"
            )
            .ends_with(" 1")
        );
        assert_eq!(
            line(&text, "rollout_guard_cache_entries{"),
            "rollout_guard_cache_entries{kind=\"analysistemplates\"} 7"
        );
        assert_eq!(
            line(&text, "rollout_guard_tls_reloads_total "),
            "rollout_guard_tls_reloads_total 2"
        );
        assert_eq!(
            line(&text, "rollout_guard_tls_reload_failing "),
            "rollout_guard_tls_reload_failing 1"
        );
        assert_eq!(
            line(
                &text,
                "rollout_guard_tls_certificate_expiry_timestamp_seconds "
            ),
            "rollout_guard_tls_certificate_expiry_timestamp_seconds 1900000000"
        );
        // No certificate yet: no value rather than a made-up one.
        assert!(
            !m.render(&ScrapeExtras::default())
                .contains("rollout_guard_tls_certificate_expiry_timestamp_seconds")
        );
        assert_eq!(
            line(&text, "rollout_guard_inflight_reviews "),
            "rollout_guard_inflight_reviews 1"
        );
        assert!(
            m.render(&ScrapeExtras::default())
                .contains("rollout_guard_inflight_reviews 0\n")
        );
    }
}
