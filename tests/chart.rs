//! Consistency of `charts/rollout-guard` with the binary, without helm.
//!
//! No helm binary exists where this runs, so `chart/helm.rs` renders the chart with a small
//! implementation of exactly the template constructs the chart uses; anything else is an error,
//! so an unsupported construct fails the test instead of passing it (see the `renderer_*`
//! tests). What a real helm rendered of the chart is kept in
//! `tests/fixtures/chart/golden-*.yaml` (`tools/helm-golden/render.sh`), and the renderer must
//! make the same objects of the same values. On the rendered output this test checks what a cluster would reject or what
//! would drift from the server:
//! - every document is YAML with apiVersion, kind and metadata.name, and the known kinds
//!   survive a round trip through the k8s-openapi types (a misspelt field is dropped by the
//!   typed parse and shows up as a difference);
//! - every `ROLLOUT_GUARD_*` variable and argument the chart passes is one `serve` accepts,
//!   found through clap's own command description, and the values parse;
//! - ports, probe paths and webhook paths match the server;
//! - the webhook configurations equal what `rollout-guard manifests` prints.

#[path = "chart/helm.rs"]
mod helm;
#[path = "chart/schema.rs"]
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use rollout_guard::cli::{Cli, Command, ManifestsArgs};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const NAMESPACE: &str = "guard-system";

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/rollout-guard")
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Renders the chart; returns the YAML documents of every template (NOTES.txt is rendered and
/// checked to be non-empty, but it is not YAML).
fn render(overrides: &Value, release: &str) -> Vec<Value> {
    let chart = helm::Chart::load(&chart_dir()).unwrap();
    let files = chart
        .render(overrides, release, NAMESPACE)
        .unwrap_or_else(|e| panic!("chart does not render: {e}"));
    let mut docs = Vec::new();
    for (name, text) in &files {
        if name == "NOTES.txt" {
            assert!(text.contains(NAMESPACE), "NOTES.txt: {text}");
            continue;
        }
        assert!(name.ends_with(".yaml"), "unexpected template {name}");
        let parsed = helm::documents(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        for doc in parsed {
            for key in ["apiVersion", "kind"] {
                assert!(
                    doc[key].is_string(),
                    "{name}: document without {key}: {doc}"
                );
            }
            assert!(
                doc["metadata"]["name"].is_string(),
                "{name}: document without metadata.name: {doc}"
            );
            docs.push(doc);
        }
    }
    docs
}

fn defaults() -> Vec<Value> {
    render(&json!({}), "rollout-guard")
}

/// Parses into the k8s-openapi type and serialises back; a field the type does not know (a
/// typo, a wrong level of nesting) is dropped by the parse, so the round trip differs.
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{doc:#}", doc["kind"]));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, doc, "{} does not round-trip", doc["kind"]);
    typed
}

/// Every document of a kind.
fn all<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = all(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}");
    found[0]
}

fn check_kinds(docs: &[Value]) {
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap();
        match (api_version, doc["kind"].as_str().unwrap()) {
            ("apps/v1", "Deployment") => drop(round_trip::<Deployment>(doc)),
            ("v1", "Service") => drop(round_trip::<Service>(doc)),
            ("v1", "ServiceAccount") => drop(round_trip::<ServiceAccount>(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => drop(round_trip::<ClusterRole>(doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                drop(round_trip::<ClusterRoleBinding>(doc))
            }
            ("policy/v1", "PodDisruptionBudget") => drop(round_trip::<PodDisruptionBudget>(doc)),
            ("networking.k8s.io/v1", "NetworkPolicy") => drop(round_trip::<NetworkPolicy>(doc)),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                drop(round_trip::<ValidatingWebhookConfiguration>(doc))
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                drop(round_trip::<MutatingWebhookConfiguration>(doc))
            }
            // Custom resources without k8s-openapi types: checked field by field below.
            ("cert-manager.io/v1", "Issuer" | "Certificate") => {}
            ("monitoring.coreos.com/v1", "ServiceMonitor") => {}
            other => panic!("unexpected object {other:?}"),
        }
    }
}

fn deployment(docs: &[Value]) -> Deployment {
    round_trip(one(docs, "Deployment"))
}

fn container(docs: &[Value]) -> Container {
    let spec = deployment(docs).spec.template.spec.unwrap();
    assert_eq!(spec.containers.len(), 1);
    spec.containers.into_iter().next().unwrap()
}

#[test]
fn default_values_render_objects_the_api_server_accepts() {
    let docs = defaults();
    check_kinds(&docs);
    let kinds: BTreeMap<&str, usize> = docs.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d["kind"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("Certificate", 2),
            ("ClusterRole", 1),
            ("ClusterRoleBinding", 1),
            ("Deployment", 1),
            ("Issuer", 2),
            ("MutatingWebhookConfiguration", 1),
            ("PodDisruptionBudget", 1),
            ("Service", 1),
            ("ServiceAccount", 1),
            ("ValidatingWebhookConfiguration", 1),
        ])
    );
    for doc in &docs {
        let namespaced = !matches!(
            doc["kind"].as_str().unwrap(),
            "ClusterRole"
                | "ClusterRoleBinding"
                | "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
        );
        let namespace = &doc["metadata"]["namespace"];
        if namespaced {
            assert_eq!(namespace, NAMESPACE, "{}", doc["kind"]);
        } else {
            assert!(namespace.is_null(), "{} is cluster-scoped", doc["kind"]);
        }
    }
}

#[test]
fn every_optional_part_renders() {
    let docs = render(&fixture("chart-values-everything.yaml"), "prod");
    check_kinds(&docs);
    for kind in ["ServiceMonitor", "NetworkPolicy"] {
        one(&docs, kind);
    }
    assert!(all(&docs, "Certificate").is_empty(), "cert-manager is off");
    assert!(
        all(&docs, "ServiceAccount").is_empty(),
        "serviceAccount.create is off"
    );
    let pod = deployment(&docs).spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("existing-sa"));
    let volume = &pod.volumes.unwrap()[0];
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("my-webhook-tls")
    );
}

#[test]
fn missing_tls_values_fail_the_render() {
    let chart = helm::Chart::load(&chart_dir()).unwrap();
    let no_cert_manager = json!({"tls": {"certManager": {"enabled": false}}});
    let err = chart
        .render(&no_cert_manager, "rollout-guard", NAMESPACE)
        .unwrap_err();
    assert!(err.contains("tls.existingSecret is required"), "{err}");
    let no_bundle = json!({"tls": {"certManager": {"enabled": false}, "existingSecret": "s"}});
    let err = chart
        .render(&no_bundle, "rollout-guard", NAMESPACE)
        .unwrap_err();
    assert!(err.contains("tls.caBundle is required"), "{err}");
}

/// `serve`'s flags by environment variable, from clap's own description of the CLI.
fn serve_flags_by_env() -> BTreeMap<String, String> {
    let cli = Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("serve subcommand");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            Some((env, arg.get_long()?.to_owned()))
        })
        .collect()
}

/// Turns the container's args and env into a command line and lets clap parse it, the way the
/// binary reads them (env vars become the flags they stand for: setting process environment
/// variables in a test would need `unsafe`).
fn parse_container(container: &Container) -> rollout_guard::cli::ServeArgs {
    let flags = serve_flags_by_env();
    assert!(
        container.command.is_none(),
        "the image ENTRYPOINT is the binary"
    );
    let args = container.args.clone().unwrap_or_default();
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let mut argv = vec!["rollout-guard".to_owned()];
    argv.extend(args);
    for var in container.env.clone().unwrap_or_default() {
        if !var.name.starts_with("ROLLOUT_GUARD_") {
            continue;
        }
        let long = flags.get(&var.name).unwrap_or_else(|| {
            panic!(
                "{} is not an environment variable of `serve` (known: {:?})",
                var.name,
                flags.keys()
            )
        });
        let value = var
            .value
            .unwrap_or_else(|| panic!("{} must have a literal value", var.name));
        argv.push(format!("--{long}={value}"));
    }
    let cli = <Cli as clap::Parser>::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("serve rejects {argv:?}:\n{e}"));
    match cli.command {
        Command::Serve(serve) => *serve,
        _ => unreachable!(),
    }
}

#[test]
fn container_configuration_is_accepted_by_serve() {
    for (values, release) in [
        (json!({}), "rollout-guard"),
        (fixture("chart-values-everything.yaml"), "prod"),
    ] {
        let docs = render(&values, release);
        let container = container(&docs);
        let serve = parse_container(&container);

        assert_eq!(serve.addr.port(), 10250);
        assert_eq!(serve.admin_addr.port(), 8080);
        assert!(
            serve.dev_certs == Some(false),
            "pods must never create their own certificates"
        );

        let mount = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "tls")
            .expect("tls volume mount");
        assert_eq!(mount.read_only, Some(true));
        assert!(
            mount.sub_path.is_none(),
            "subPath mounts never see renewals"
        );
        let dir = Path::new(&mount.mount_path);
        assert_eq!(serve.tls_cert, dir.join("tls.crt"));
        assert_eq!(serve.tls_key, dir.join("tls.key"));

        let grace = deployment(&docs)
            .spec
            .template
            .spec
            .unwrap()
            .termination_grace_period_seconds
            .unwrap();
        assert!(
            u128::from(grace.unsigned_abs()) * 1000
                > (serve.shutdown_delay + serve.shutdown_timeout).as_millis(),
            "terminationGracePeriodSeconds {grace} must exceed the shutdown delay {:?} + timeout {:?}",
            serve.shutdown_delay,
            serve.shutdown_timeout
        );
    }
}

#[test]
fn values_reach_the_server() {
    let docs = render(&fixture("chart-values-everything.yaml"), "prod");
    let serve = parse_container(&container(&docs));
    assert_eq!(serve.mode, rollout_guard::cli::Mode::Enforce);
    assert_eq!(serve.guards.to_string(), "status,hold");
    assert_eq!(serve.argo_rollouts_version.to_string(), "1.8.2");
    assert_eq!(
        serve.controller_user,
        "system:serviceaccount:ops:argo-rollouts"
    );
    assert_eq!(serve.log_format, rollout_guard::cli::LogFormat::Plain);
    assert_eq!(
        serve.max_concurrent_reviews, 64,
        "extraEnv is passed through"
    );
    // mTLS: the CA bundle from extraVolumes, mounted by extraVolumeMounts where the flag reads.
    let ca = serve
        .tls_client_ca
        .expect("ROLLOUT_GUARD_TLS_CLIENT_CA from extraEnv");
    let deployment: Deployment = round_trip(one(&docs, "Deployment"));
    let pod = deployment.spec.template.spec.unwrap();
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| ca.starts_with(&m.mount_path))
        .expect("a mount holding the CA bundle");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume");
    assert_eq!(
        volume.config_map.as_ref().unwrap().name,
        "apiserver-client-ca"
    );
    assert!(
        pod.volumes.iter().flatten().any(|v| v.name == "tls"),
        "the TLS volume stays"
    );
}

#[test]
fn listen_address_reaches_both_listeners() {
    let addrs = |values: &Value| {
        let serve = parse_container(&container(&render(values, "rollout-guard")));
        (serve.addr.to_string(), serve.admin_addr.to_string())
    };
    assert_eq!(
        addrs(&json!({})),
        ("0.0.0.0:10250".to_owned(), "0.0.0.0:8080".to_owned()),
        "IPv4 by default: binding [::] fails where the kernel has IPv6 disabled"
    );
    for (address, https, admin) in [
        ("0.0.0.0", "0.0.0.0:10250", "0.0.0.0:8080"),
        ("[::]", "[::]:10250", "[::]:8080"),
    ] {
        let values = json!({"listenAddress": address});
        assert_eq!(schema_errors(&values), Vec::<String>::new(), "{address}");
        assert_eq!(
            addrs(&values),
            (https.to_owned(), admin.to_owned()),
            "{address}"
        );
    }
    // Anything else is refused before install: what serve could not parse once the port is
    // appended, and a fixed address, which a pod does not know before it starts.
    for bad in [
        "::",
        "0.0.0.0:8080",
        "[::]:10250",
        "localhost",
        "",
        "999.1.1.1",
        "[1]",
        "[:::::]",
        "10.0.0.7",
    ] {
        let errors = schema_errors(&json!({"listenAddress": bad}));
        assert!(
            errors.iter().any(|e| e.starts_with("listenAddress")),
            "{bad:?} not rejected: {errors:?}"
        );
    }
}

#[test]
fn ports_and_probes_match_the_server() {
    let docs = defaults();
    let container = container(&docs);
    let ports: BTreeMap<String, i32> = container
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([("admin".to_owned(), 8080), ("https".to_owned(), 10250)])
    );
    for (probe, path) in [
        (container.liveness_probe.unwrap(), "/livez"),
        (container.readiness_probe.unwrap(), "/readyz"),
    ] {
        let get = probe.http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("admin".into())
        );
        assert!(get.scheme.is_none() || get.scheme.as_deref() == Some("HTTP"));
    }

    let service: Service = round_trip(one(&docs, "Service"));
    let service_ports: BTreeMap<String, (i32, String)> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .map(|p| {
            let target = match p.target_port.unwrap() {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s,
                other => panic!("target by name, not {other:?}"),
            };
            (p.name.unwrap(), (p.port, target))
        })
        .collect();
    assert_eq!(
        service_ports,
        BTreeMap::from([
            ("https".to_owned(), (443, "https".to_owned())),
            ("metrics".to_owned(), (8080, "admin".to_owned())),
        ])
    );

    let everything = render(&fixture("chart-values-everything.yaml"), "prod");
    let monitor = one(&everything, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let policy: NetworkPolicy = round_trip(one(&everything, "NetworkPolicy"));
    let open_ports: BTreeSet<String> = policy
        .spec
        .unwrap()
        .ingress
        .unwrap()
        .iter()
        .flat_map(|rule| rule.ports.clone().unwrap_or_default())
        .map(|p| format!("{:?}", p.port.unwrap()))
        .collect();
    assert_eq!(
        open_ports,
        BTreeSet::from(["Int(8080)".to_owned(), "Int(10250)".to_owned()])
    );
}

#[test]
fn pods_run_restricted_and_spread() {
    let docs = defaults();
    let deployment = deployment(&docs);
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    assert_eq!(
        pod_security.seccomp_profile.unwrap().type_,
        "RuntimeDefault"
    );
    let c = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(c.run_as_non_root, Some(true));
    assert_eq!(c.run_as_user, Some(65532));
    assert_eq!(c.read_only_root_filesystem, Some(true));
    assert_eq!(c.allow_privilege_escalation, Some(false));
    assert_eq!(c.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(c.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert!(
        pod.containers[0]
            .resources
            .as_ref()
            .unwrap()
            .requests
            .is_some()
    );

    let selector = spec.selector.match_labels.unwrap();
    let spread = pod.topology_spread_constraints.unwrap();
    assert_eq!(
        spread[0]
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref(),
        Some(&selector)
    );
    let anti = pod.affinity.unwrap().pod_anti_affinity.unwrap();
    let preferred = anti
        .preferred_during_scheduling_ignored_during_execution
        .unwrap();
    assert_eq!(
        preferred[0]
            .pod_affinity_term
            .label_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref(),
        Some(&selector)
    );
    assert!(
        anti.required_during_scheduling_ignored_during_execution
            .is_none()
    );

    let pdb: PodDisruptionBudget = round_trip(one(&docs, "PodDisruptionBudget"));
    let pdb = pdb.spec.unwrap();
    assert_eq!(
        (pdb.min_available, pdb.max_unavailable),
        (
            None,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        ),
        "a bound on unavailable pods lets a single replica be drained"
    );
    assert_eq!(pdb.selector.unwrap().match_labels.unwrap(), selector);
    assert_eq!(
        pdb.unhealthy_pod_eviction_policy.as_deref(),
        Some("AlwaysAllow"),
        "running pods that never became ready must not block a drain"
    );
    let service: Service = round_trip(one(&docs, "Service"));
    assert_eq!(service.spec.unwrap().selector.unwrap(), selector);
}

#[test]
fn rbac_reads_only_the_three_watched_kinds_and_namespaces() {
    let docs = defaults();
    let role: ClusterRole = round_trip(one(&docs, "ClusterRole"));
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].api_groups, Some(vec!["argoproj.io".to_owned()]));
    let resources: BTreeSet<_> = rules[0].resources.clone().unwrap().into_iter().collect();
    assert_eq!(
        resources,
        BTreeSet::from(
            ["rollouts", "analysistemplates", "clusteranalysistemplates"].map(String::from)
        )
    );
    assert_eq!(rules[0].verbs, ["get", "list", "watch"]);
    assert_eq!(rules[1].api_groups, Some(vec![String::new()]));
    assert_eq!(rules[1].resources, Some(vec!["namespaces".to_owned()]));
    assert_eq!(rules[1].verbs, ["get", "list", "watch"]);

    let binding: ClusterRoleBinding = round_trip(one(&docs, "ClusterRoleBinding"));
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
    let subject = &binding.subjects.unwrap()[0];
    let account: ServiceAccount = round_trip(one(&docs, "ServiceAccount"));
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
    assert_eq!(subject.namespace.as_deref(), Some(NAMESPACE));
    let pod = deployment(&docs).spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name, account.metadata.name);
}

/// What `rollout-guard manifests` prints for this service, as JSON documents.
fn manifests(
    service: &str,
    ca_file: &Path,
    failure_policy: &str,
    timeout: u8,
    status_timeout: u8,
) -> Vec<Value> {
    let yaml = rollout_guard::manifests::render(&ManifestsArgs {
        service: service.to_owned(),
        namespace: NAMESPACE.to_owned(),
        url: None,
        ca_file: ca_file.to_path_buf(),
        failure_policy: failure_policy.to_owned(),
        timeout_seconds: timeout,
        status_timeout_seconds: status_timeout,
    })
    .unwrap();
    helm::documents(&yaml).unwrap()
}

/// The parts of a webhook configuration both sources must agree on: its name and webhooks
/// (normalised through the typed object, so key order and defaults cannot matter).
fn webhook_part(doc: &Value, keep_ca_bundle: bool) -> Value {
    let mut webhooks = doc["webhooks"].clone();
    for webhook in webhooks.as_array_mut().unwrap() {
        if !keep_ca_bundle {
            webhook["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
        }
    }
    json!({"kind": doc["kind"], "name": doc["metadata"]["name"], "webhooks": webhooks})
}

fn generated_ca() -> (tempfile::TempDir, rollout_guard::certs::Generated) {
    let dir = tempfile::tempdir().unwrap();
    let generated = rollout_guard::certs::generate(&rollout_guard::cli::CertsArgs {
        out_dir: dir.path().to_path_buf(),
        service: "rollout-guard".to_owned(),
        namespace: NAMESPACE.to_owned(),
        days: 1,
        force: false,
    })
    .unwrap();
    (dir, generated)
}

#[test]
fn webhooks_equal_what_manifests_prints_with_cert_manager() {
    let (_dir, ca) = generated_ca();
    for (release, service) in [
        ("rollout-guard", "rollout-guard"),
        ("prod", "prod-rollout-guard"),
    ] {
        // The chart's defaults against the command line's (5 s, 2 s), then other values.
        for (policy, timeout, status_timeout) in [("Ignore", 5, 2), ("Fail", 3, 1), ("Fail", 3, 4)]
        {
            let values = if (timeout, status_timeout) == (5, 2) {
                json!({"webhook": {"failurePolicy": policy}})
            } else {
                json!({"webhook": {"failurePolicy": policy, "timeoutSeconds": timeout,
                                   "statusTimeoutSeconds": status_timeout}})
            };
            let docs = render(&values, release);
            let printed = manifests(service, &ca.ca_cert, policy, timeout, status_timeout);
            for kind in [
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
            ] {
                let chart = one(&docs, kind);
                let cli = one(&printed, kind);
                assert_eq!(
                    webhook_part(chart, false),
                    webhook_part(cli, false),
                    "{kind} differs (release {release}, failurePolicy {policy})"
                );
                assert!(
                    chart["webhooks"][0]["clientConfig"]
                        .get("caBundle")
                        .is_none(),
                    "cert-manager injects caBundle"
                );
                assert_eq!(
                    chart["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                    format!("{NAMESPACE}/{service}-serving")
                );
            }

            // The annotation names the serving Certificate, whose Secret the pods mount and
            // whose names are what the API server dials.
            let serving = all(&docs, "Certificate")
                .into_iter()
                .find(|c| c["metadata"]["name"] == format!("{service}-serving"))
                .expect("serving Certificate");
            let dns: Vec<&str> = serving["spec"]["dnsNames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                dns.contains(&format!("{service}.{NAMESPACE}.svc").as_str()),
                "{dns:?}"
            );
            let pod = deployment(&docs).spec.template.spec.unwrap();
            assert_eq!(
                pod.volumes.unwrap()[0]
                    .secret
                    .as_ref()
                    .unwrap()
                    .secret_name
                    .as_deref(),
                serving["spec"]["secretName"].as_str()
            );
            let ca_issuer = &serving["spec"]["issuerRef"]["name"];
            let issuer = all(&docs, "Issuer")
                .into_iter()
                .find(|i| &i["metadata"]["name"] == ca_issuer)
                .expect("CA Issuer");
            let ca_cert = all(&docs, "Certificate")
                .into_iter()
                .find(|c| c["spec"]["isCA"] == true)
                .expect("CA Certificate");
            assert_eq!(
                issuer["spec"]["ca"]["secretName"],
                ca_cert["spec"]["secretName"]
            );
            let self_signed = all(&docs, "Issuer")
                .into_iter()
                .find(|i| i["metadata"]["name"] == ca_cert["spec"]["issuerRef"]["name"])
                .expect("self-signed Issuer");
            assert_eq!(self_signed["spec"]["selfSigned"], json!({}));

            let svc: Service = round_trip(one(&docs, "Service"));
            assert_eq!(svc.metadata.name.as_deref(), Some(service));
        }
    }
}

#[test]
fn webhooks_equal_what_manifests_prints_with_an_existing_secret() {
    let (_dir, ca) = generated_ca();
    let values = json!({
        "tls": {"certManager": {"enabled": false}, "existingSecret": "webhook-tls",
                "caBundle": ca.ca_bundle},
    });
    let docs = render(&values, "rollout-guard");
    let printed = manifests("rollout-guard", &ca.ca_cert, "Ignore", 5, 2);
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let chart = one(&docs, kind);
        assert_eq!(
            webhook_part(chart, true),
            webhook_part(one(&printed, kind), true),
            "{kind}"
        );
        assert!(
            chart["metadata"].get("annotations").is_none(),
            "no cert-manager annotation"
        );
    }
}

#[test]
fn status_webhook_fails_open_whatever_the_policy() {
    let docs = render(
        &json!({"webhook": {"failurePolicy": "Fail"}}),
        "rollout-guard",
    );
    let mutating: MutatingWebhookConfiguration =
        round_trip(one(&docs, "MutatingWebhookConfiguration"));
    let policies: BTreeMap<String, String> = mutating
        .webhooks
        .unwrap()
        .into_iter()
        .map(|w| (w.name, w.failure_policy.unwrap()))
        .collect();
    assert_eq!(
        policies,
        BTreeMap::from([
            ("mutate.rollout-guard.io".to_owned(), "Fail".to_owned()),
            ("status.rollout-guard.io".to_owned(), "Ignore".to_owned()),
        ])
    );
}

/// Leaf value paths of values.yaml (maps are walked, everything else is a leaf).
fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() && prefix != "resources" => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(v, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_value_is_documented() {
    let dir = chart_dir();
    let values_text = std::fs::read_to_string(dir.join("values.yaml")).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let values: Value = serde_yaml::from_str(&values_text).unwrap();
    let mut paths = Vec::new();
    leaves(&values, "", &mut paths);
    assert!(paths.len() > 30, "{paths:?}");
    let commented = commented_keys(&values_text);
    for path in &paths {
        assert!(
            readme.contains(&format!("`{path}`")),
            "charts/rollout-guard/README.md does not document `{path}`"
        );
        assert!(
            commented.contains(path),
            "values.yaml: `{path}` has no comment line above it"
        );
    }
}

/// Dotted paths of the keys in values.yaml whose line follows a comment line (by indentation,
/// so `enabled` under one map is not mistaken for `enabled` under another).
fn commented_keys(text: &str) -> BTreeSet<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut previous_is_comment = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            previous_is_comment = false;
            continue;
        }
        if trimmed.starts_with('#') {
            previous_is_comment = true;
            continue;
        }
        let indent = line.len() - trimmed.len();
        let key = trimmed.split(':').next().unwrap();
        let is_key = !trimmed.starts_with('-')
            && trimmed.contains(':')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_key {
            stack.retain(|(i, _)| *i < indent);
            stack.push((indent, key.to_owned()));
            let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
            if previous_is_comment {
                out.insert(path.join("."));
            }
        }
        previous_is_comment = false;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The renderer refuses what it does not implement (so the tests above cannot pass by accident).

#[test]
fn renderer_follows_go_template_semantics() {
    let values = json!({"name": "x", "list": [], "n": 0, "map": {"a": "b"}});
    let cases = [
        ("a  {{- \"1\" -}}  \n b", "a1b"),
        ("{{ if .Values.list }}yes{{ else }}no{{ end }}", "no"),
        (
            "{{ if .Values.n }}yes{{ else if .Values.name }}name{{ end }}",
            "name",
        ),
        ("{{ with .Values.map }}{{ .a }}{{ end }}", "b"),
        ("{{ with .Values.map }}{{ $.Values.name }}{{ end }}", "x"),
        ("{{ .Values.missing | default \"d\" }}", "d"),
        ("{{ .Values.name | quote }}", "\"x\""),
        ("{{ toYaml .Values.map | nindent 2 }}", "\n  a: b"),
        ("{{ printf \"%s-%s\" .Values.name \"y\" | trunc 3 }}", "x-y"),
        (
            "{{ $v := \"q\" }}{{ range .Values.map }}{{ $v }}{{ . }}{{ end }}",
            "qb",
        ),
        (
            "{{- define \"t\" -}}[{{ . }}]{{- end }}{{ include \"t\" .Values.name }}",
            "[x]",
        ),
        ("{{/* comment */}}ok", "ok"),
    ];
    for (src, want) in cases {
        assert_eq!(helm::render_source(src, &values).unwrap(), want, "{src}");
    }
}

#[test]
fn renderer_fails_loudly_on_unknown_constructs() {
    let values = json!({"map": {"a": 1}});
    for (src, needle) in [
        ("{{ .Values.typo }}", "missing"),
        ("{{ .Values.map }}", "map or list"),
        ("{{ .Values.typo.deeper }}", "non-map"),
        (
            "{{ lookup \"v1\" \"Secret\" \"ns\" \"n\" }}",
            "unsupported function",
        ),
        ("{{ template \"x\" . }}", "unsupported action"),
        ("{{ include \"undefined\" . }}", "undefined template"),
        ("{{ $undeclared }}", "undefined variable"),
        ("{{ if .Values.map }}never closed", "without `end`"),
        ("{{ printf \"%q\" \"x\" }}", "unsupported"),
    ] {
        let err = helm::render_source(src, &values).unwrap_err();
        assert!(err.contains(needle), "{src}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// The image and the install docs agree with the chart and the CLI.

/// The value of each instruction of the runtime (last) stage of the Dockerfile.
fn runtime_stage() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    let text = std::fs::read_to_string(path).unwrap();
    let last_from = text.rfind("\nFROM ").expect("a multi-stage Dockerfile");
    text[last_from..]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn image_runs_what_the_chart_expects() {
    let stage = runtime_stage();
    assert_eq!(stage["USER"], "65532:65532");
    assert_eq!(stage["ENTRYPOINT"], r#"["/rollout-guard"]"#);
    assert_eq!(stage["CMD"], r#"["serve"]"#);
    assert_eq!(stage["EXPOSE"], "8443 8080");
    let docs = defaults();
    let pod = deployment(&docs).spec.template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_user, Some(65532));
    assert_eq!(
        pod.containers[0].args.as_deref(),
        Some(&["serve".to_owned()][..])
    );

    let ignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"))
            .unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "certs"),
        "certs/ (private keys) must stay out of the build context"
    );
}

/// `rollout-guard ...` commands in the fenced shell blocks of a Markdown file, continuation
/// lines joined, comments and pipes cut off.
fn documented_commands(relative: &str) -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        for part in full.split(['|', ';']).flat_map(|p| p.split("&&")) {
            let words: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
            if words.first().map(String::as_str) == Some("rollout-guard") {
                commands.push(words);
            }
        }
    }
    commands
}

#[test]
fn documented_commands_parse() {
    let mut seen = 0;
    for file in [
        "docs/install.md",
        "charts/rollout-guard/README.md",
        "certs/README.md",
    ] {
        for argv in documented_commands(file) {
            <Cli as clap::Parser>::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{file}: `{}` does not parse:\n{e}", argv.join(" ")));
            seen += 1;
        }
    }
    assert!(seen >= 8, "only {seen} commands found");
}

// ---------------------------------------------------------------------------------------------
// values.schema.json: helm rejects bad values before anything reaches the cluster.

fn values_schema() -> Value {
    let path = chart_dir().join("values.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn schema_errors(overrides: &Value) -> Vec<String> {
    let chart = helm::Chart::load(&chart_dir()).unwrap();
    let mut values = chart.values.clone();
    helm::merge(&mut values, overrides);
    schema::validate(&values_schema(), &values).unwrap()
}

#[test]
fn schema_accepts_the_defaults_and_the_fixture() {
    assert_eq!(schema_errors(&json!({})), Vec::<String>::new());
    assert_eq!(
        schema_errors(&fixture("chart-values-everything.yaml")),
        Vec::<String>::new()
    );
}

#[test]
fn schema_rejects_what_serve_or_the_api_server_would() {
    for (overrides, needle) in [
        (json!({"mode": "enfroce"}), "mode"),
        (json!({"guards": "status,holdd"}), "guards"),
        (json!({"guards": "auto,status"}), "guards"),
        (
            json!({"argoRollouts": {"version": "latest"}}),
            "argoRollouts.version",
        ),
        (
            json!({"webhook": {"timeoutSeconds": 31}}),
            "webhook.timeoutSeconds",
        ),
        (
            json!({"webhook": {"failurePolicy": "fail"}}),
            "webhook.failurePolicy",
        ),
        (json!({"shutdownTimeout": "25 seconds"}), "shutdownTimeout"),
        (
            json!({"webhooks": {"failurePolicy": "Fail"}}),
            "webhooks: not a value",
        ),
        (
            json!({"tls": {"certmanager": {"enabled": false}}}),
            "tls.certmanager",
        ),
        (json!({"replicaCount": "2"}), "replicaCount"),
        (
            json!({"templateSource": "files"}),
            "templateSource: \"files\" is not one of",
        ),
        (
            json!({"webhook": {"statusTimeoutSeconds": 31}}),
            "webhook.statusTimeoutSeconds",
        ),
        (
            json!({"webhook": {"statusTimeoutSeconds": 0}}),
            "webhook.statusTimeoutSeconds",
        ),
        (
            json!({"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "Always"}}),
            "podDisruptionBudget.unhealthyPodEvictionPolicy",
        ),
        (json!({"listenAddress": "::"}), "listenAddress"),
    ] {
        let errors = schema_errors(&overrides);
        assert!(
            errors.iter().any(|e| e.starts_with(needle)),
            "{overrides} not rejected as expected: {errors:?}"
        );
    }
}

/// The duration values agree with `serve`'s parsers on the forms of Go's duration grammar
/// below (up to 24h): what the schema accepts, `serve` starts with, and the reverse. Longer values pass the schema (a pattern
/// cannot count) and `serve` refuses them at start with "longer than 24h".
#[test]
fn schema_durations_agree_with_serve() {
    use rollout_guard::cli::{parse_duration, parse_positive_duration};
    let samples = [
        "0",
        "0s",
        "0ms",
        "00",
        "0.0s",
        "0h0m",
        "1",
        "30",
        "250ms",
        "1.5s",
        "1m30s",
        "2h",
        "10us",
        "100ns",
        "24h",
        "25 seconds",
        "1d",
        "-1s",
        "s",
        "",
        "1.s",
        "10S",
        ".5s",
        "0.s",
        ".0s",
        "+1s",
        "+0s",
        "1\u{b5}s",
        "1\u{3bc}s",
        "1.5.5s",
        "1h-1m",
    ];
    for (key, parse) in [
        (
            "reviewTimeout",
            parse_positive_duration as fn(&str) -> Result<_, _>,
        ),
        ("shutdownDelay", parse_duration),
        ("shutdownTimeout", parse_duration),
    ] {
        for sample in samples {
            let schema_ok = schema_errors(&json!({ key: sample })).is_empty();
            let serve_ok = parse(sample).is_ok();
            assert_eq!(schema_ok, serve_ok, "{key}: {sample:?}");
        }
    }
}

/// The schema's enums are exactly what clap accepts for the matching `serve` flag, less what
/// the chart cannot support: `templateSource: files` needs a `--templates` directory the chart
/// neither mounts nor passes.
#[test]
fn schema_enums_match_the_cli() {
    let schema = values_schema();
    let cli = Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .unwrap();
    for (value, flag, unsupported) in [
        ("mode", "mode", &[][..]),
        ("logFormat", "log-format", &[]),
        ("templateSource", "template-source", &["files"]),
    ] {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap();
        let accepted: BTreeSet<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        for value in unsupported {
            assert!(
                accepted.contains(*value),
                "--{flag} no longer accepts {value}"
            );
        }
        let accepted: BTreeSet<String> = accepted
            .into_iter()
            .filter(|v| !unsupported.contains(&v.as_str()))
            .collect();
        let allowed: BTreeSet<String> = schema["properties"][value]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(allowed, accepted, "{value} vs --{flag}");
    }
    // Every value the schema's duration pattern admits for the timeouts must parse in serve.
    for duration in ["25s", "500ms", "2m", "1m30s", "30"] {
        let errors = schema_errors(&json!({"shutdownTimeout": duration}));
        assert!(errors.is_empty(), "{duration}: {errors:?}");
        rollout_guard::cli::parse_duration(duration).unwrap();
    }
}

#[test]
fn the_status_webhook_can_be_left_out() {
    let names = |docs: &[Value]| -> Vec<String> {
        one(docs, "MutatingWebhookConfiguration")["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&defaults()),
        ["mutate.rollout-guard.io", "status.rollout-guard.io"]
    );
    let without = render(
        &json!({"webhook": {"statusWebhook": false}}),
        "rollout-guard",
    );
    assert_eq!(names(&without), ["mutate.rollout-guard.io"]);
    // Everything else renders as before.
    let kinds = |docs: &[Value]| -> Vec<Value> { docs.iter().map(|d| d["kind"].clone()).collect() };
    assert_eq!(kinds(&without), kinds(&defaults()));
}

#[test]
fn unhealthy_pod_eviction_policy_is_a_value() {
    let policy = |docs: &[Value]| {
        let pdb: PodDisruptionBudget = round_trip(one(docs, "PodDisruptionBudget"));
        pdb.spec.unwrap().unhealthy_pod_eviction_policy
    };
    assert_eq!(policy(&defaults()).as_deref(), Some("AlwaysAllow"));
    let strict = json!({"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "IfHealthyBudget"}});
    assert_eq!(schema_errors(&strict), Vec::<String>::new());
    assert_eq!(
        policy(&render(&strict, "rollout-guard")).as_deref(),
        Some("IfHealthyBudget")
    );
    let mut everything = fixture("chart-values-everything.yaml");
    helm::merge(&mut everything, &strict);
    assert_eq!(schema_errors(&everything), Vec::<String>::new());
    assert_eq!(
        policy(&render(&everything, "prod")).as_deref(),
        Some("IfHealthyBudget")
    );
}

/// timeoutSeconds of each webhook, by name.
fn webhook_timeouts(docs: &[Value]) -> BTreeMap<String, i64> {
    [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ]
    .iter()
    .flat_map(|kind| one(docs, kind)["webhooks"].as_array().unwrap().clone())
    .map(|w| {
        (
            w["name"].as_str().unwrap().to_owned(),
            w["timeoutSeconds"].as_i64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn the_status_webhook_has_its_own_timeout() {
    let expected = |object: i64, status: i64| {
        BTreeMap::from([
            ("validate.rollout-guard.io".to_owned(), object),
            ("mutate.rollout-guard.io".to_owned(), object),
            ("status.rollout-guard.io".to_owned(), status),
        ])
    };
    assert_eq!(webhook_timeouts(&defaults()), expected(5, 2));
    let docs = render(
        &json!({"webhook": {"timeoutSeconds": 10, "statusTimeoutSeconds": 3}}),
        "rollout-guard",
    );
    assert_eq!(webhook_timeouts(&docs), expected(10, 3));
    let everything = render(&fixture("chart-values-everything.yaml"), "prod");
    assert_eq!(webhook_timeouts(&everything), expected(3, 2));

    // The chart's defaults are the defaults of `rollout-guard manifests`.
    let chart = helm::Chart::load(&chart_dir()).unwrap();
    let cli = <Cli as clap::Parser>::try_parse_from(["rollout-guard", "manifests"]).unwrap();
    let Command::Manifests(args) = cli.command else {
        unreachable!()
    };
    assert_eq!(
        chart.values["webhook"]["timeoutSeconds"],
        json!(args.timeout_seconds)
    );
    assert_eq!(
        chart.values["webhook"]["statusTimeoutSeconds"],
        json!(args.status_timeout_seconds)
    );
}

#[test]
fn notes_warn_about_the_unpublished_default_image() {
    let chart = helm::Chart::load(&chart_dir()).unwrap();
    let notes = |values: &Value| {
        chart.render(values, "rollout-guard", NAMESPACE).unwrap()["NOTES.txt"].clone()
    };
    let default = notes(&json!({}));
    assert!(
        default.contains("WARNING: image.repository") && default.contains("not\npublished"),
        "{default}"
    );
    let own =
        json!({"image": {"repository": "registry.example.com/rollout-guard", "tag": "0.1.0"}});
    assert!(!notes(&own).contains("WARNING"), "{}", notes(&own));
}

// ---------------------------------------------------------------------------------------------
// Real helm: tests/fixtures/chart/golden-*.yaml are what helm itself rendered of this chart
// (tools/helm-golden/render.sh). The renderer above must make the same objects of the same
// values, so the tests above check what a real install gets.

/// The objects of a render by (kind, name), in that order.
fn by_kind_and_name(docs: Vec<Value>) -> Vec<((String, String), Value)> {
    let mut keyed: Vec<_> = docs
        .into_iter()
        .map(|doc| {
            let key = (
                doc["kind"].as_str().unwrap_or_default().to_owned(),
                doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            (key, doc)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed
}

#[test]
fn renders_what_real_helm_rendered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/chart"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("golden-") && name.ends_with(".yaml")
        })
        .collect();
    goldens.sort();
    assert!(goldens.len() >= 3, "golden renders missing: {goldens:?}");

    for golden in goldens {
        let name = golden.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&golden).unwrap();
        // First line: `# helm template RELEASE charts/rollout-guard --namespace NS ... [--values FILE]`.
        let command: Vec<&str> = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# helm "))
            .unwrap_or_else(|| panic!("{name}: the first line is not the helm command"))
            .split_whitespace()
            .collect();
        assert_eq!(command[0], "template", "{name}: {command:?}");
        assert_eq!(command[2], "charts/rollout-guard", "{name}: {command:?}");
        let release = command[1];
        let option = |flag: &str| {
            let at = command.iter().position(|a| *a == flag)?;
            command.get(at + 1).copied()
        };
        assert_eq!(option("--namespace"), Some(NAMESPACE), "{name}");
        let values = match option("--values") {
            Some(file) => serde_yaml::from_str(&std::fs::read_to_string(root.join(file)).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {file}: {e}")),
            None => json!({}),
        };
        assert_eq!(
            schema_errors(&values),
            Vec::<String>::new(),
            "{name}: helm took these values, so the schema test's validator must too"
        );

        let helm = by_kind_and_name(helm::documents(&text).unwrap());
        let ours = by_kind_and_name(render(&values, release));
        let keys = |docs: &[((String, String), Value)]| -> Vec<(String, String)> {
            docs.iter().map(|(key, _)| key.clone()).collect()
        };
        assert_eq!(keys(&ours), keys(&helm), "{name}: objects differ");
        for ((key, ours), (_, helm)) in ours.iter().zip(&helm) {
            assert_eq!(ours, helm, "{name}: {key:?} differs from helm's render");
        }
    }
}
