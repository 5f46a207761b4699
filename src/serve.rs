//! `rollout-guard serve`: the composition root. Picks the template source (files, the
//! cluster, or nothing), makes development certificates when none exist outside a pod,
//! builds the [`Admission`] reviewer and hands it to the HTTPS server.

use std::sync::Arc;

use anyhow::Context as _;
use tracing::{info, warn};

use crate::admission::{Admission, Policy};
use crate::catalog::{Catalog, SharedStore, load_catalog};
use crate::cli::{ServeArgs, TemplateSource};
use crate::templates::MemoryStore;

/// Where templates came from, for the start-up log.
enum Source {
    Files(String),
    Cluster,
    Empty,
}

/// Whether the server is running in a pod: the kubelet sets `KUBERNETES_SERVICE_HOST`.
fn in_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|host| !host.is_empty())
}

/// Whether to create development certificates when none exist. By default not in a pod,
/// where the certificate comes from a Secret and a missing one is a fault to show, not to
/// cover; anywhere else (also on a machine with a kubeconfig) the server can start. An
/// explicit `--dev-certs` decides either way (a development container run in a pod).
fn makes_dev_certs(flag: Option<bool>, in_pod: bool) -> bool {
    flag.unwrap_or(!in_pod)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init_logging(args.log_format, &args.log_level)?;
    let version = args.argo_rollouts_version;
    let guards = args.guards.resolve(version);

    let (catalog, source) = template_source(&args).await?;
    let no_certs = !args.tls_cert.exists() && !args.tls_key.exists();
    if no_certs
        && makes_dev_certs(args.dev_certs, in_pod())
        && crate::certs::ensure_dev_certs(&args.tls_cert, &args.tls_key).with_context(|| {
            format!(
                "cannot create development certificates next to {}",
                args.tls_cert.display()
            )
        })?
    {
        info!(
            cert = %args.tls_cert.display(),
            key = %args.tls_key.display(),
            "created development certificates (none found)"
        );
    }
    match &source {
        Source::Files(dir) => info!(source = "files", dir = %dir, "templates from files"),
        Source::Cluster => info!(source = "cluster", "templates from the cluster (watching)"),
        Source::Empty => info!(
            source = "none",
            "no cluster and no --templates: every template reference will be reported missing"
        ),
    }
    info!(mode = args.mode.as_str(), argo_rollouts_version = %version, guards = %guards, controller_user = %args.controller_user, "policy");

    let policy = Policy {
        mode: args.mode,
        version,
        guards,
        controller_user: args.controller_user.clone(),
    };
    let reviewer = Arc::new(Admission::new(policy, catalog));
    crate::server::Server::bind(&args, reviewer)
        .await?
        .with_shutdown_delay(args.shutdown_delay)
        .run(crate::server::shutdown_signal())
        .await
}

async fn template_source(
    args: &ServeArgs,
) -> anyhow::Result<(Arc<dyn Catalog + Send + Sync>, Source)> {
    let files = |dir: &std::path::Path| {
        let (store, errors) = load_catalog(dir);
        for e in &errors {
            warn!(error = %e, "skipping a manifest under --templates");
        }
        let catalog: Arc<dyn Catalog + Send + Sync> = Arc::new(store);
        (catalog, Source::Files(dir.display().to_string()))
    };
    match (args.template_source, &args.templates) {
        (TemplateSource::Files, Some(dir)) | (TemplateSource::Auto, Some(dir)) => Ok(files(dir)),
        (TemplateSource::Files, None) => {
            anyhow::bail!("--template-source files needs --templates DIR: the directory to read")
        }
        (TemplateSource::Cluster, Some(dir)) => anyhow::bail!(
            "--templates {} is not read with --template-source cluster: drop one of the two \
             (auto or files reads the directory)",
            dir.display()
        ),
        (TemplateSource::Cluster, None) => {
            let client = kube::Client::try_default()
                .await
                .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
            Ok(cluster(client))
        }
        (TemplateSource::Auto, None) => match kube::Config::infer().await {
            Ok(config) => {
                let client =
                    kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
                Ok(cluster(client))
            }
            Err(_) => Ok((
                Arc::new(SharedStore::ready(MemoryStore::new())),
                Source::Empty,
            )),
        },
    }
}

fn cluster(client: kube::Client) -> (Arc<dyn Catalog + Send + Sync>, Source) {
    let store = Arc::new(SharedStore::new());
    crate::cluster::spawn_watchers(client, store.clone());
    (store, Source::Cluster)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    /// The error `template_source` refuses `serve` with these flags with.
    async fn refused(flags: &[&str]) -> String {
        let cli = Cli::try_parse_from(["rollout-guard", "serve"].iter().chain(flags)).unwrap();
        let Command::Serve(args) = cli.command else {
            unreachable!("parsed as serve")
        };
        match template_source(&args).await {
            Ok(_) => panic!("{flags:?} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn development_certificates_by_default_only_outside_a_pod() {
        assert!(makes_dev_certs(None, false));
        assert!(!makes_dev_certs(None, true));
        for in_pod in [false, true] {
            assert!(makes_dev_certs(Some(true), in_pod));
            assert!(!makes_dev_certs(Some(false), in_pod));
        }
    }

    #[test]
    fn dev_certs_is_unset_unless_given() {
        let parse = |flags: &[&str]| {
            let cli = Cli::try_parse_from(["rollout-guard", "serve"].iter().chain(flags)).unwrap();
            let Command::Serve(args) = cli.command else {
                unreachable!("parsed as serve")
            };
            args.dev_certs
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--dev-certs", "true"]), Some(true));
        assert_eq!(parse(&["--dev-certs", "false"]), Some(false));
    }

    #[tokio::test]
    async fn a_templates_dir_with_the_cluster_source_is_refused_not_dropped() {
        let error = refused(&["--template-source", "cluster", "--templates", "somewhere"]).await;
        assert!(
            error.starts_with("--templates somewhere is not read"),
            "{error}"
        );
        let error = refused(&["--template-source", "files"]).await;
        assert!(error.contains("needs --templates DIR"), "{error}");
    }
}
