//! The webhook registration: a `ValidatingWebhookConfiguration` and a
//! `MutatingWebhookConfiguration` (admissionregistration.k8s.io/v1) pointing the API server at
//! `serve`, built from the k8s-openapi types so no field name can be misspelt.
//!
//! `rollout-guard manifests` prints them for a webhook behind a Service or, with `--url`, for
//! one running outside the cluster. The Helm chart renders the same webhooks; `tests/chart.rs`
//! compares the two, so the constants here are the single source of truth.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

use crate::cli::ManifestsArgs;

/// Path of the validating endpoint.
pub const VALIDATE_PATH: &str = "/validate";
/// Path of both mutating endpoints; the server picks the behaviour from `subResource`.
pub const MUTATE_PATH: &str = "/mutate";
/// Port of the Service in front of `serve` (some managed clusters only allow 443 to webhooks).
pub const SERVICE_PORT: i32 = 443;

/// Webhook names: fully qualified (the API server requires at least three DNS segments) and
/// what users see in `admission webhook "<name>" denied the request`.
pub const VALIDATE_WEBHOOK: &str = "validate.rollout-guard.io";
pub const MUTATE_WEBHOOK: &str = "mutate.rollout-guard.io";
pub const STATUS_WEBHOOK: &str = "status.rollout-guard.io";

/// Label that takes a whole namespace out of every webhook.
pub const IGNORE_NAMESPACE_LABEL: &str = "rollout-guard.io/ignore";
/// Label the API server sets on every namespace (1.21+); the only tamper-proof way to select by
/// name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

const GROUP: &str = "argoproj.io";
const VERSION: &str = "v1alpha1";

/// The YAML `rollout-guard manifests` prints: two documents.
pub fn render(args: &ManifestsArgs) -> anyhow::Result<String> {
    let (validating, mutating) = webhook_configurations(args)?;
    let target = match &args.url {
        Some(url) => format!("url {}", url.trim_end_matches('/')),
        None => format!("service {}/{}", args.namespace, args.service),
    };
    let mut out = format!(
        "# rollout-guard webhook configurations for {target}\n\
         # caBundle from {}; apply with `kubectl apply -f -`.\n",
        args.ca_file.display()
    );
    out.push_str(
        &serde_yaml::to_string(&validating)
            .context("cannot serialise the validating configuration")?,
    );
    out.push_str("---\n");
    out.push_str(
        &serde_yaml::to_string(&mutating).context("cannot serialise the mutating configuration")?,
    );
    Ok(out)
}

/// `rollout-guard manifests`: prints [`render`] on stdout.
pub fn run(args: &ManifestsArgs) -> anyhow::Result<()> {
    let yaml = render(args)?;
    std::io::stdout()
        .lock()
        .write_all(yaml.as_bytes())
        .context("cannot write to stdout")?;
    Ok(())
}

/// The two configurations as typed objects.
pub fn webhook_configurations(
    args: &ManifestsArgs,
) -> anyhow::Result<(ValidatingWebhookConfiguration, MutatingWebhookConfiguration)> {
    check_dns_label("--service", &args.service)?;
    check_dns_label("--namespace", &args.namespace)?;
    let failure_policy = match args.failure_policy.as_str() {
        "Ignore" | "Fail" => args.failure_policy.clone(),
        other => bail!("--failure-policy must be Ignore or Fail, not {other:?}"),
    };
    for (flag, seconds) in [
        ("--timeout-seconds", args.timeout_seconds),
        ("--status-timeout-seconds", args.status_timeout_seconds),
    ] {
        if !(1..=30).contains(&seconds) {
            bail!("{flag} must be between 1 and 30, not {seconds}");
        }
    }
    if let Some(url) = &args.url {
        check_url(url)?;
    }
    // PEM bytes; `ByteString` serialises them as the base64 `caBundle` wants.
    let ca_bundle = crate::certs::read_ca_pem(&args.ca_file)?;
    let client_config = |path: &str| WebhookClientConfig {
        ca_bundle: Some(ByteString(ca_bundle.clone())),
        service: args.url.is_none().then(|| ServiceReference {
            name: args.service.clone(),
            namespace: args.namespace.clone(),
            path: Some(path.to_owned()),
            port: Some(SERVICE_PORT),
        }),
        url: args
            .url
            .as_ref()
            .map(|base| format!("{}{path}", base.trim_end_matches('/'))),
    };
    let namespace_selector = namespace_selector(&args.namespace);
    let timeout = Some(i32::from(args.timeout_seconds));
    let status_timeout = Some(i32::from(args.status_timeout_seconds));
    let metadata = ObjectMeta {
        name: Some(args.service.clone()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_owned(),
            "rollout-guard".to_owned(),
        )])),
        ..ObjectMeta::default()
    };

    let validating = ValidatingWebhookConfiguration {
        metadata: metadata.clone(),
        webhooks: Some(vec![ValidatingWebhook {
            name: VALIDATE_WEBHOOK.to_owned(),
            client_config: client_config(VALIDATE_PATH),
            rules: Some(object_rules()),
            failure_policy: Some(failure_policy.clone()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector.clone()),
            side_effects: "None".to_owned(),
            timeout_seconds: timeout,
            admission_review_versions: vec!["v1".to_owned()],
            ..ValidatingWebhook::default()
        }]),
    };

    let mutating = MutatingWebhookConfiguration {
        metadata,
        webhooks: Some(vec![
            MutatingWebhook {
                name: MUTATE_WEBHOOK.to_owned(),
                client_config: client_config(MUTATE_PATH),
                rules: Some(object_rules()),
                failure_policy: Some(failure_policy),
                match_policy: Some("Equivalent".to_owned()),
                namespace_selector: Some(namespace_selector.clone()),
                side_effects: "None".to_owned(),
                timeout_seconds: timeout,
                admission_review_versions: vec!["v1".to_owned()],
                reinvocation_policy: Some("Never".to_owned()),
                ..MutatingWebhook::default()
            },
            // The controller writes status on every reconcile: an unreachable webhook must never
            // stall rollouts, so this one always fails open whatever --failure-policy says, and
            // has its own short timeout: what an unreachable webhook costs each status write.
            MutatingWebhook {
                name: STATUS_WEBHOOK.to_owned(),
                client_config: client_config(MUTATE_PATH),
                rules: Some(vec![rule(&["UPDATE"], &["rollouts/status"], "Namespaced")]),
                failure_policy: Some("Ignore".to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                namespace_selector: Some(namespace_selector),
                side_effects: "None".to_owned(),
                timeout_seconds: status_timeout,
                admission_review_versions: vec!["v1".to_owned()],
                reinvocation_policy: Some("Never".to_owned()),
                ..MutatingWebhook::default()
            },
        ]),
    };
    Ok((validating, mutating))
}

/// Rollouts and AnalysisTemplates live in namespaces, ClusterAnalysisTemplates do not; a rule
/// carries one scope, so they are two rules.
fn object_rules() -> Vec<RuleWithOperations> {
    vec![
        rule(
            &["CREATE", "UPDATE"],
            &["rollouts", "analysistemplates"],
            "Namespaced",
        ),
        rule(
            &["CREATE", "UPDATE"],
            &["clusteranalysistemplates"],
            "Cluster",
        ),
    ]
}

fn rule(operations: &[&str], resources: &[&str], scope: &str) -> RuleWithOperations {
    let owned = |items: &[&str]| Some(items.iter().map(|s| (*s).to_owned()).collect());
    RuleWithOperations {
        api_groups: owned(&[GROUP]),
        api_versions: owned(&[VERSION]),
        operations: owned(operations),
        resources: owned(resources),
        scope: Some(scope.to_owned()),
    }
}

/// Skips kube-system, the webhook's own namespace (so a broken webhook cannot block its own
/// repair) and namespaces labelled `rollout-guard.io/ignore: "true"`. `NotIn` also matches
/// namespaces without the label. Cluster-scoped objects (ClusterAnalysisTemplates) are not
/// filtered by a namespaceSelector.
pub fn namespace_selector(own_namespace: &str) -> LabelSelector {
    let mut excluded = vec!["kube-system".to_owned()];
    if own_namespace != "kube-system" {
        excluded.push(own_namespace.to_owned());
    }
    LabelSelector {
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(excluded),
            },
            LabelSelectorRequirement {
                key: IGNORE_NAMESPACE_LABEL.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec!["true".to_owned()]),
            },
        ]),
        match_labels: None,
    }
}

/// The API server's rules for `clientConfig.url`: https, a host, no user info, query or
/// fragment.
fn check_url(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("https://") else {
        bail!(
            "--url {url:?} must start with https:// (the API server only calls webhooks over TLS)"
        );
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("--url {url:?} has no host");
    }
    if authority.contains('@') {
        bail!("--url {url:?} must not carry user information");
    }
    if url.contains('?') || url.contains('#') {
        bail!("--url {url:?} must not carry a query or fragment");
    }
    Ok(())
}

/// RFC 1123 label, as Service and namespace names must be.
fn check_dns_label(flag: &str, value: &str) -> anyhow::Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !valid {
        bail!(
            "{flag} {value:?} is not a DNS label (lowercase letters, digits and '-', at most 63)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use base64::Engine;
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    use super::*;

    fn ca_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::certs::generate(&crate::cli::CertsArgs {
            out_dir: dir.path().to_path_buf(),
            service: "rollout-guard".to_owned(),
            namespace: "rollout-guard".to_owned(),
            days: 1,
            force: false,
        })
        .unwrap();
        dir
    }

    fn args(ca: &Path) -> ManifestsArgs {
        ManifestsArgs {
            service: "rollout-guard".to_owned(),
            namespace: "guard-system".to_owned(),
            url: None,
            ca_file: ca.join("ca.crt"),
            failure_policy: "Fail".to_owned(),
            timeout_seconds: 5,
            status_timeout_seconds: 2,
        }
    }

    fn documents(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|doc| Value::deserialize(doc).unwrap())
            .collect()
    }

    /// Parses into the k8s-openapi type and back: a misspelt or unknown field is dropped by
    /// the typed parse, so the round trip would differ.
    fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
        let typed: T = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&typed).unwrap(), doc);
        typed
    }

    fn rendered(
        args: &ManifestsArgs,
    ) -> (
        ValidatingWebhookConfiguration,
        MutatingWebhookConfiguration,
        Vec<Value>,
    ) {
        let docs = documents(&render(args).unwrap());
        assert_eq!(docs.len(), 2);
        (round_trip(&docs[0]), round_trip(&docs[1]), docs)
    }

    /// Every webhook of both configurations as generic JSON.
    fn webhooks(docs: &[Value]) -> Vec<&Value> {
        docs.iter()
            .flat_map(|d| d["webhooks"].as_array().unwrap())
            .collect()
    }

    #[test]
    fn renders_two_typed_documents_that_round_trip() {
        let dir = ca_dir();
        let (validating, mutating, docs) = rendered(&args(dir.path()));
        assert_eq!(docs[0]["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(docs[0]["kind"], "ValidatingWebhookConfiguration");
        assert_eq!(docs[1]["kind"], "MutatingWebhookConfiguration");
        assert_eq!(validating.webhooks.unwrap().len(), 1);
        assert_eq!(mutating.webhooks.unwrap().len(), 2);
    }

    #[test]
    fn follows_the_api_server_validation_rules() {
        let dir = ca_dir();
        for url in [None, Some("https://127.0.0.1:8443/".to_owned())] {
            let args = ManifestsArgs {
                url: url.clone(),
                ..args(dir.path())
            };
            let (_, _, docs) = rendered(&args);
            for doc in &docs {
                let name = doc["metadata"]["name"].as_str().unwrap();
                check_dns_label("name", name).unwrap();
            }
            let all = webhooks(&docs);
            let mut names: Vec<&str> = all.iter().map(|w| w["name"].as_str().unwrap()).collect();
            for name in &names {
                assert!(
                    name.split('.').count() >= 3,
                    "{name} needs three DNS segments"
                );
            }
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), 3, "webhook names must be unique");
            for webhook in all {
                let name = &webhook["name"];
                assert!(
                    ["None", "NoneOnDryRun"].contains(&webhook["sideEffects"].as_str().unwrap()),
                    "{name}: sideEffects must allow dry-run"
                );
                let timeout = webhook["timeoutSeconds"].as_i64().unwrap();
                assert!(
                    (1..=30).contains(&timeout),
                    "{name}: timeoutSeconds {timeout}"
                );
                assert_eq!(
                    webhook["admissionReviewVersions"],
                    serde_json::json!(["v1"])
                );
                assert_eq!(webhook["matchPolicy"], "Equivalent");
                assert!(["Ignore", "Fail"].contains(&webhook["failurePolicy"].as_str().unwrap()));
                for rule in webhook["rules"].as_array().unwrap() {
                    assert!(["Namespaced", "Cluster"].contains(&rule["scope"].as_str().unwrap()));
                    assert_eq!(rule["apiGroups"], serde_json::json!(["argoproj.io"]));
                }

                let client = &webhook["clientConfig"];
                assert!(
                    client.get("url").is_some() != client.get("service").is_some(),
                    "{name}: exactly one of url and service"
                );
                let path = match (&url, client.get("url")) {
                    (Some(base), Some(u)) => {
                        let u = u.as_str().unwrap();
                        assert!(u.starts_with("https://127.0.0.1:8443/"), "{u}");
                        assert!(!u.contains("//validate") && !u.contains("//mutate"), "{u}");
                        check_url(u).unwrap();
                        u.strip_prefix(base.trim_end_matches('/'))
                            .unwrap()
                            .to_owned()
                    }
                    (None, None) => {
                        let service = &client["service"];
                        assert_eq!(service["port"], 443);
                        assert_eq!(service["name"], "rollout-guard");
                        assert_eq!(service["namespace"], "guard-system");
                        service["path"].as_str().unwrap().to_owned()
                    }
                    other => panic!("unexpected client config {other:?}"),
                };
                assert!(path.starts_with('/'), "{name}: path {path}");

                let bundle = base64::engine::general_purpose::STANDARD
                    .decode(client["caBundle"].as_str().unwrap())
                    .unwrap();
                let certs: Vec<_> = rustls_pemfile::certs(&mut bundle.as_slice())
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(certs.len(), 1, "{name}: caBundle must be a PEM certificate");
            }
        }
    }

    #[test]
    fn routes_each_webhook_to_its_endpoint_and_policy() {
        let dir = ca_dir();
        let (validating, mutating, _) = rendered(&args(dir.path()));
        let v = &validating.webhooks.unwrap()[0];
        assert_eq!(v.name, VALIDATE_WEBHOOK);
        assert_eq!(
            v.client_config.service.as_ref().unwrap().path.as_deref(),
            Some("/validate")
        );
        assert_eq!(v.failure_policy.as_deref(), Some("Fail"));
        let resources =
            |rules: &Option<Vec<RuleWithOperations>>| -> Vec<(String, String, Vec<String>)> {
                rules
                    .as_ref()
                    .unwrap()
                    .iter()
                    .flat_map(|r| {
                        r.resources.clone().unwrap().into_iter().map(move |res| {
                            (res, r.scope.clone().unwrap(), r.operations.clone().unwrap())
                        })
                    })
                    .collect()
            };
        let create_update = vec!["CREATE".to_owned(), "UPDATE".to_owned()];
        let objects = vec![
            (
                "rollouts".to_owned(),
                "Namespaced".to_owned(),
                create_update.clone(),
            ),
            (
                "analysistemplates".to_owned(),
                "Namespaced".to_owned(),
                create_update.clone(),
            ),
            (
                "clusteranalysistemplates".to_owned(),
                "Cluster".to_owned(),
                create_update,
            ),
        ];
        assert_eq!(resources(&v.rules), objects);

        let m = mutating.webhooks.unwrap();
        assert_eq!(m[0].name, MUTATE_WEBHOOK);
        assert_eq!(m[0].failure_policy.as_deref(), Some("Fail"));
        assert_eq!(resources(&m[0].rules), objects);
        assert_eq!(m[1].name, STATUS_WEBHOOK);
        assert_eq!(
            m[1].failure_policy.as_deref(),
            Some("Ignore"),
            "status always fails open"
        );
        assert_eq!(
            resources(&m[1].rules),
            vec![(
                "rollouts/status".to_owned(),
                "Namespaced".to_owned(),
                vec!["UPDATE".to_owned()]
            )]
        );
        for w in &m {
            assert_eq!(
                w.client_config.service.as_ref().unwrap().path.as_deref(),
                Some("/mutate")
            );
            assert_eq!(w.reinvocation_policy.as_deref(), Some("Never"));
        }
    }

    #[test]
    fn the_status_webhook_has_its_own_timeout() {
        let dir = ca_dir();
        let timeouts = |args: &ManifestsArgs| -> Vec<(String, i32)> {
            let (validating, mutating, _) = rendered(args);
            let v = validating
                .webhooks
                .unwrap()
                .into_iter()
                .map(|w| (w.name, w.timeout_seconds));
            let m = mutating
                .webhooks
                .unwrap()
                .into_iter()
                .map(|w| (w.name, w.timeout_seconds));
            v.chain(m).map(|(n, t)| (n, t.unwrap())).collect()
        };
        let custom = ManifestsArgs {
            timeout_seconds: 7,
            status_timeout_seconds: 3,
            ..args(dir.path())
        };
        assert_eq!(
            timeouts(&custom),
            [
                (VALIDATE_WEBHOOK.to_owned(), 7),
                (MUTATE_WEBHOOK.to_owned(), 7),
                (STATUS_WEBHOOK.to_owned(), 3),
            ]
        );

        // The command line's defaults: 5 s for the object webhooks, 2 s for the status one
        // (on the Argo controller's status writes, failing open), both limited to 1-30.
        let parse = |extra: &[&str]| -> Result<ManifestsArgs, clap::Error> {
            let mut argv = vec!["rollout-guard", "manifests"];
            argv.extend_from_slice(extra);
            match <crate::cli::Cli as clap::Parser>::try_parse_from(argv)?.command {
                crate::cli::Command::Manifests(m) => Ok(m),
                _ => unreachable!(),
            }
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(
            (defaults.timeout_seconds, defaults.status_timeout_seconds),
            (5, 2)
        );
        assert_eq!(
            parse(&["--status-timeout-seconds", "9"])
                .unwrap()
                .status_timeout_seconds,
            9
        );
        for bad in ["0", "31"] {
            let err = parse(&["--status-timeout-seconds", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
    }

    #[test]
    fn excludes_system_own_and_labelled_namespaces() {
        let dir = ca_dir();
        let (_, _, docs) = rendered(&args(dir.path()));
        for webhook in webhooks(&docs) {
            assert_eq!(
                webhook["namespaceSelector"],
                serde_json::json!({"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                     "values": ["kube-system", "guard-system"]},
                    {"key": "rollout-guard.io/ignore", "operator": "NotIn", "values": ["true"]},
                ]})
            );
        }
    }

    #[test]
    fn names_a_missing_or_broken_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ManifestsArgs {
            ca_file: dir.path().join("nope.crt"),
            ..args(dir.path())
        };
        let err = format!("{:#}", render(&missing).unwrap_err());
        assert!(err.contains("nope.crt"), "{err}");
        std::fs::write(
            dir.path().join("ca.crt"),
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        )
        .unwrap();
        let err = format!("{:#}", render(&args(dir.path())).unwrap_err());
        assert!(
            err.contains("ca.crt") && err.contains("no PEM certificate"),
            "{err}"
        );
    }

    #[test]
    fn rejects_what_the_api_server_would() {
        let dir = ca_dir();
        for (url, needle) in [
            ("http://127.0.0.1:8443", "https://"),
            ("https://user@host:8443", "user information"),
            ("https://host:8443/?x=1", "query"),
            ("https://", "no host"),
        ] {
            let bad = ManifestsArgs {
                url: Some(url.to_owned()),
                ..args(dir.path())
            };
            let err = render(&bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        let bad = ManifestsArgs {
            namespace: "Bad_NS".to_owned(),
            ..args(dir.path())
        };
        assert!(
            render(&bad)
                .unwrap_err()
                .to_string()
                .contains("--namespace")
        );
        let bad = ManifestsArgs {
            timeout_seconds: 31,
            ..args(dir.path())
        };
        assert!(
            render(&bad)
                .unwrap_err()
                .to_string()
                .contains("--timeout-seconds")
        );
        for seconds in [0, 31] {
            let bad = ManifestsArgs {
                status_timeout_seconds: seconds,
                ..args(dir.path())
            };
            assert!(
                render(&bad)
                    .unwrap_err()
                    .to_string()
                    .contains("--status-timeout-seconds")
            );
        }
    }
}
