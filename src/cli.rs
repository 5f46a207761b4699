//! Command-line interface. Every flag of `serve` can also be set through an environment
//! variable prefixed `ROLLOUT_GUARD_`, so a Deployment can configure it without arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::version::ControllerVersion;

/// Catches the Argo Rollouts background-analysis Inconclusive trap, in CI and at admission.
#[derive(Debug, Parser)]
#[command(name = "rollout-guard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Rollout and AnalysisTemplate manifests offline (files, directories or `-`).
    Check(CheckArgs),
    /// Run the HTTPS admission webhook (validating and mutating) and the admin port.
    Serve(Box<ServeArgs>),
    /// Write a development CA and serving certificate into a directory.
    Certs(CertsArgs),
    /// Print the ValidatingWebhookConfiguration and MutatingWebhookConfiguration.
    Manifests(ManifestsArgs),
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Grouped by object, for people.
    Text,
    /// One JSON document with every finding and input error.
    Json,
    /// SARIF 2.1.0, for code-scanning annotations on pull requests.
    Sarif,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories (searched recursively for .yaml, .yml, .json); `-` reads stdin.
    #[arg(value_name = "PATH", default_value = "-")]
    pub paths: Vec<PathBuf>,
    /// Name to report what `-` reads from stdin under (findings, input errors, SARIF artifact
    /// locations) instead of `-`, such as the file a piped copy came from; lines stay those of
    /// the stream read. Not the name of a file the run also reads.
    #[arg(long, value_name = "NAME", default_value = "-")]
    pub stdin_name: String,
    /// Extra directory of AnalysisTemplates / ClusterAnalysisTemplates used to resolve references.
    #[arg(long, value_name = "DIR")]
    pub templates: Vec<PathBuf>,
    /// Argo Rollouts controller version the manifests run on (changes the verdict).
    #[arg(long, env = "ROLLOUT_GUARD_ARGO_ROLLOUTS_VERSION", default_value_t = ControllerVersion::DEFAULT)]
    pub argo_rollouts_version: ControllerVersion,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit with 1 when a finding is at or above this severity (default: what the webhook denies).
    #[arg(long, value_enum, default_value_t = crate::finding::Severity::DENY_THRESHOLD)]
    pub fail_on: crate::finding::Severity,
    /// Print the long explanation under each finding (text output).
    #[arg(long, short = 'v')]
    pub explain: bool,
    /// Exit 0 when the inputs hold no Kubernetes object at all, or stdin holds none (by
    /// default each is an input error: an empty stdin is most often a failed command before
    /// the pipe).
    #[arg(long)]
    pub allow_empty: bool,
}

/// What the validating side does with findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Allow everything; findings become warnings.
    Warn,
    /// Deny findings at or above the deny threshold; the rest become warnings.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Enforce => "enforce",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Where the server reads AnalysisTemplates, ClusterAnalysisTemplates and Rollouts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TemplateSource {
    /// `--templates DIR` when given, else the cluster when one is configured, else nothing.
    Auto,
    /// Watch the cluster (in-cluster config or KUBECONFIG).
    Cluster,
    /// Only the files under `--templates` (an empty store without it).
    Files,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS address of the admission endpoints (/validate, /mutate).
    #[arg(long, env = "ROLLOUT_GUARD_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// Plain-HTTP admin address (/livez, /readyz, /metrics).
    #[arg(long, env = "ROLLOUT_GUARD_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// PEM certificate chain served to the API server (re-read while running).
    #[arg(long, env = "ROLLOUT_GUARD_TLS_CERT", default_value = "certs/tls.crt")]
    pub tls_cert: PathBuf,
    /// PEM private key of the serving certificate (re-read while running).
    #[arg(long, env = "ROLLOUT_GUARD_TLS_KEY", default_value = "certs/tls.key")]
    pub tls_key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate it signed (mTLS).
    #[arg(long, env = "ROLLOUT_GUARD_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the certificate files are re-read (content comparison).
    #[arg(long, env = "ROLLOUT_GUARD_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_positive_duration)]
    pub tls_reload_interval: Duration,
    /// Create development certificates when none exist: `true` or `false`. Unset: create
    /// them unless running in a pod (`KUBERNETES_SERVICE_HOST` set).
    #[arg(long, env = "ROLLOUT_GUARD_DEV_CERTS", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub dev_certs: Option<bool>,
    /// warn: allow and warn; enforce: deny findings at or above the deny threshold.
    #[arg(long, env = "ROLLOUT_GUARD_MODE", value_enum, default_value_t = Mode::Warn)]
    pub mode: Mode,
    /// Argo Rollouts controller version in the cluster (changes verdicts and default guards).
    #[arg(long, env = "ROLLOUT_GUARD_ARGO_ROLLOUTS_VERSION", default_value_t = ControllerVersion::DEFAULT)]
    pub argo_rollouts_version: ControllerVersion,
    /// Identity the Argo Rollouts controller writes status as (the status guard acts only on it).
    #[arg(
        long,
        env = "ROLLOUT_GUARD_CONTROLLER_USER",
        default_value = crate::admission::DEFAULT_CONTROLLER_USER
    )]
    pub controller_user: String,
    /// Directory of manifests (templates, Rollouts) to use instead of the cluster.
    #[arg(long, env = "ROLLOUT_GUARD_TEMPLATES")]
    pub templates: Option<PathBuf>,
    /// Where templates come from.
    #[arg(long, env = "ROLLOUT_GUARD_TEMPLATE_SOURCE", value_enum, default_value_t = TemplateSource::Auto)]
    pub template_source: TemplateSource,
    /// Guards that are on: comma-separated from status, hold, fail-closed; `auto` picks by
    /// controller version (status on >= 1.8.2, hold before); `none` turns them all off.
    #[arg(long, env = "ROLLOUT_GUARD_GUARDS", default_value = "auto", value_parser = parse_guards)]
    pub guards: crate::guards::GuardSet,
    /// Deadline of one review when the API server sends no `?timeout=`.
    #[arg(long, env = "ROLLOUT_GUARD_REVIEW_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub review_timeout: Duration,
    /// Reviews handled at once; further ones wait for a slot within their deadline.
    #[arg(
        long,
        env = "ROLLOUT_GUARD_MAX_CONCURRENT_REVIEWS",
        default_value_t = 512,
        value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u32).range(1..), |n| n as usize)
    )]
    pub max_concurrent_reviews: usize,
    /// Reviews on the blocking pool at once: bodies of 64 KiB and more, and template
    /// validations. Each may build JSON trees many times its body's size, so this bounds
    /// memory (`benches/large_bodies.sh`: 16 concurrent 2.4 MB guard reviews peak at 159-179
    /// MiB with 2 of them at a time); more than the cores adds no throughput.
    #[arg(
        long,
        env = "ROLLOUT_GUARD_MAX_BLOCKING_REVIEWS",
        default_value_t = 2,
        value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..), usize::from)
    )]
    pub max_blocking_reviews: usize,
    /// Largest accepted request body, in bytes (the API server sends up to about 7 MiB). At
    /// least 4 KiB: below that no review fits, and every one would get a 413.
    #[arg(
        long,
        env = "ROLLOUT_GUARD_MAX_BODY_BYTES",
        default_value_t = 8 * 1024 * 1024,
        value_parser = at_least_4_kib
    )]
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, in bytes, counted as they arrive (a declared
    /// Content-Length reserves nothing), plus one body that may read on past it; a request
    /// waits for room for its next bytes within its body deadline, then gets a 503. A single
    /// body larger than this still passes, alone.
    #[arg(
        long,
        env = "ROLLOUT_GUARD_MAX_BUFFERED_BODY_BYTES",
        default_value_t = 64 * 1024 * 1024,
        value_parser = at_least_4_kib
    )]
    pub max_buffered_body_bytes: usize,
    /// Time a client has to send its request headers.
    #[arg(long, env = "ROLLOUT_GUARD_HEADER_TIMEOUT", default_value = "5s", value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Time a client has to send its request body once the headers are in (and never more
    /// than the review deadline); later it gets a 408. Bounds how long a slow sender holds
    /// room in `--max-buffered-body-bytes`.
    #[arg(long, env = "ROLLOUT_GUARD_BODY_TIMEOUT", default_value = "5s", value_parser = parse_positive_duration)]
    pub body_timeout: Duration,
    /// After SIGTERM, how long readiness is off while the listener still accepts: the time
    /// Kubernetes needs to take the pod out of the Service's endpoints.
    #[arg(long, env = "ROLLOUT_GUARD_SHUTDOWN_DELAY", default_value = "3s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Bound on draining in-flight reviews after SIGTERM (after the shutdown delay).
    #[arg(long, env = "ROLLOUT_GUARD_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Log format.
    #[arg(long, env = "ROLLOUT_GUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `rollout_guard=debug`.
    #[arg(long, env = "ROLLOUT_GUARD_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Directory the CA and serving certificate are written to.
    #[arg(long, default_value = "certs")]
    pub out_dir: PathBuf,
    /// Service name the API server dials.
    #[arg(long, default_value = "rollout-guard")]
    pub service: String,
    /// Namespace of that Service.
    #[arg(long, default_value = "rollout-guard")]
    pub namespace: String,
    /// Validity of the serving certificate, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// Service name (in-cluster form).
    #[arg(long, default_value = "rollout-guard", conflicts_with = "url")]
    pub service: String,
    /// Namespace of the Service, excluded from the webhooks together with kube-system.
    #[arg(long, default_value = "rollout-guard")]
    pub namespace: String,
    /// Base URL of a webhook running outside the cluster, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    pub url: Option<String>,
    /// PEM CA bundle for `caBundle` (default: certs/ca.crt).
    #[arg(long, default_value = "certs/ca.crt")]
    pub ca_file: PathBuf,
    /// failurePolicy of the validating and the rollouts mutating webhooks.
    #[arg(long, default_value = "Ignore", value_parser = ["Ignore", "Fail"])]
    pub failure_policy: String,
    /// timeoutSeconds of the validating and the object-mutating webhooks (1-30).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=30))]
    pub timeout_seconds: u8,
    /// timeoutSeconds of the rollouts/status webhook (1-30): it fails open on the Argo
    /// controller's status writes, so an unreachable webhook costs each write this long.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=30))]
    pub status_timeout_seconds: u8,
}

/// `--guards`: a [`GuardSet`](crate::guards::GuardSet), but not an empty one (an unset
/// variable in a manifest, more likely than a wish to switch the guards off, which `none`
/// says). The annotation keeps reading an empty value as none, as it always has.
fn parse_guards(s: &str) -> Result<crate::guards::GuardSet, String> {
    if s.split(',').all(|part| part.trim().is_empty()) {
        return Err("no guard named: write `none` to switch the guards off".into());
    }
    s.parse()
}

/// A byte count of at least 4 KiB, for the body limits.
fn at_least_4_kib(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 4096 => Ok(n),
        Ok(_) => Err(format!("`{s}` bytes is too small: at least 4096")),
        Err(e) => Err(format!("`{s}` is not a number of bytes: {e}")),
    }
}

/// [`parse_duration`], refusing zero: for timeouts and intervals, where zero means nothing
/// sensible (every review would be late, the reload timer could not tick).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        Duration::ZERO => Err(format!("`{s}` must be longer than zero")),
        d => Ok(d),
    }
}

/// The longest duration a flag takes. Every timeout, delay and interval is far below it, and
/// it keeps the deadlines computed from them (`now + timeout`) clear of overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds, up to [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let parsed = match s.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => crate::duration::parse_go_duration(s)
            .and_then(|nanos| u64::try_from(nanos).ok())
            .map(Duration::from_nanos),
    };
    match parsed {
        Some(d) if d <= MAX_DURATION => Ok(d),
        Some(_) => Err(format!("`{s}` is longer than 24h")),
        // Also a value too long to count in nanoseconds (about 292 years).
        None => Err(format!(
            "`{s}` is not a duration of at most 24h, such as 500ms, 10s or 2m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["rollout-guard", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve(args) => Ok(*args),
            _ => unreachable!(),
        }
    }

    #[test]
    fn timeouts_intervals_and_bounds_must_be_positive() {
        for flag in [
            "--review-timeout",
            "--body-timeout",
            "--header-timeout",
            "--tls-reload-interval",
        ] {
            let error = serve(&[flag, "0s"]).unwrap_err().to_string();
            assert!(
                error.contains("must be longer than zero"),
                "{flag}: {error}"
            );
            assert!(serve(&[flag, "250ms"]).is_ok(), "{flag}");
        }
        for flag in [
            "--review-timeout",
            "--shutdown-delay",
            "--shutdown-timeout",
            "--tls-reload-interval",
        ] {
            for huge in ["25h", "100000000000h", "18446744073709551615", "86401"] {
                let error = serve(&[flag, huge]).unwrap_err().to_string();
                assert!(
                    error.contains("longer than 24h") || error.contains("at most 24h"),
                    "{flag} {huge}: {error}"
                );
            }
            assert!(serve(&[flag, "24h"]).is_ok(), "{flag}");
        }
        assert!(serve(&["--shutdown-delay", "0s"]).is_ok());
        for flag in ["--max-body-bytes", "--max-buffered-body-bytes"] {
            for small in ["0", "4095"] {
                let error = serve(&[flag, small]).unwrap_err().to_string();
                assert!(error.contains("at least 4096"), "{flag} {small}: {error}");
            }
            assert!(serve(&[flag, "4096"]).is_ok(), "{flag}");
        }
        for empty in ["", " ", ",", " , "] {
            let error = serve(&["--guards", empty]).unwrap_err().to_string();
            assert!(error.contains("write `none`"), "{empty:?}: {error}");
        }
        assert!(serve(&["--max-concurrent-reviews", "0"]).is_err());
        assert_eq!(
            serve(&["--max-concurrent-reviews", "3"])
                .unwrap()
                .max_concurrent_reviews,
            3
        );
        // A drain may be skipped: zero stays valid there.
        assert!(serve(&["--shutdown-delay", "0s", "--shutdown-timeout", "0s"]).is_ok());
        assert!(serve(&["--guards", "none,hold"]).is_err());
    }
}
