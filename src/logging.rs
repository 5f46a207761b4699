//! Process-wide logging: plain text for people or one JSON object per line for log pipelines,
//! filtered with tracing's `EnvFilter` syntax (`info`, `rollout_guard=debug,hyper=warn`).

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. Fails on an invalid filter or when one is already set.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(level).with_context(|| format!("invalid log level `{level}`"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let installed = match format {
        LogFormat::Plain => builder.with_target(false).try_init(),
        // Fields at the top level of each object, so pipelines index `uid`, `outcome`, ...
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_invalid_filter_before_installing_anything() {
        let error = init_logging(LogFormat::Json, "rollout_guard=[").unwrap_err();
        assert!(
            error.to_string().starts_with("invalid log level"),
            "{error}"
        );
    }
}
