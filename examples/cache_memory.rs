//! Memory of the watch-backed cache with many objects: fills a [`SharedStore`] with N
//! AnalysisTemplates and N Rollouts through the watch's own path
//! ([`rollout_guard::cluster::apply_event`]: JSON -> kube `DynamicObject` -> `reduce` to the
//! partial views), in pages of 500 as kube's watcher lists them, and reports the process's
//! resident memory before and after (`/proc/self/status`).
//!
//! ```text
//! cargo run --release --example cache_memory            # 10k templates + 10k Rollouts
//! cargo run --release --example cache_memory -- 20000 50  # 20k each, pages of 50
//! ```
//!
//! The objects are realistic: each Rollout is the load-test Rollout
//! (`tests/fixtures/load/rollout-update-review.json`: pod template with two containers,
//! managedFields, last-applied-configuration, status) renamed per object; each template carries
//! two Prometheus metrics, managedFields and its own last-applied-configuration.

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use rollout_guard::catalog::{Catalog, SharedStore};
use rollout_guard::cluster::{SyncState, apply_event};
use rollout_guard::model::Kind;
use rollout_guard::templates::TemplateStore;
use serde_json::{Value, json};

/// kube's watcher lists in pages of this many objects (watcher::Config's default).
const DEFAULT_PAGE: usize = 500;
const NAMESPACES: usize = 100;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(label: &str) -> u64 {
    let (rss, hwm) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    println!(
        "{label:<28} VmRSS {:>7.1} MiB   VmHWM {:>7.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    rss
}

fn rollout(base: &Value, i: usize) -> Value {
    let mut r = base.clone();
    let ns = format!("team-{}", i % NAMESPACES);
    let name = format!("service-{i}");
    r["metadata"]["name"] = json!(name);
    r["metadata"]["namespace"] = json!(ns);
    r["metadata"]["uid"] = json!(format!("6f3a2c1e-8b47-4d2a-9e0c-{i:012}"));
    // Each Rollout names two of its namespace's templates.
    let t = i / NAMESPACES;
    r["spec"]["strategy"]["canary"]["analysis"]["templates"] = json!([
        {"templateName": format!("success-rate-{}", t % 50)},
        {"templateName": format!("latency-{}", (t + 1) % 50)}
    ]);
    let applied = r["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_default()
        .replace("\"checkout\"", &format!("\"{name}\""));
    r["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(applied);
    r
}

fn template(i: usize) -> Value {
    let ns = format!("team-{}", i % NAMESPACES);
    // Per namespace: success-rate-0, latency-0, success-rate-1, latency-1, ...
    let j = i / NAMESPACES;
    let name = if j.is_multiple_of(2) {
        format!("success-rate-{}", j / 2)
    } else {
        format!("latency-{}", j / 2)
    };
    let metric = |metric: &str, query: &str| {
        json!({"name": metric, "interval": "1m", "count": 10, "failureLimit": 2,
            "successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.90",
            "provider": {"prometheus": {"address": "http://prometheus.observability.svc:9090",
                "query": query}}})
    };
    let spec = json!({
        "args": [{"name": "service"}, {"name": "namespace"}],
        "metrics": [
            metric("success-rate", "sum(rate(http_requests_total{service=\"{{args.service}}\",namespace=\"{{args.namespace}}\",code!~\"5..\"}[2m])) / sum(rate(http_requests_total{service=\"{{args.service}}\",namespace=\"{{args.namespace}}\"}[2m]))"),
            metric("p99-latency", "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service=\"{{args.service}}\",namespace=\"{{args.namespace}}\"}[2m])))"),
        ]
    });
    let applied = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"annotations": {}, "name": name, "namespace": ns}, "spec": spec});
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": name, "namespace": ns,
            "uid": format!("0b8e1f7a-3c2d-4e5f-8a9b-{i:012}"),
            "resourceVersion": format!("{}", 77_000_000 + i), "generation": 3,
            "creationTimestamp": "2026-09-14T10:02:33Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n")},
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "argoproj.io/v1alpha1", "time": "2026-11-02T15:40:12Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                    "f:spec": {".": {}, "f:args": {}, "f:metrics": {}}}
            }]
        },
        "spec": spec
    })
}

/// Lists `count` objects of `kind` into the store the way the watcher does: Init, a page of
/// InitApply at a time (each a DynamicObject decoded from JSON text), InitDone. Returns the
/// bytes of JSON listed.
fn list(
    store: &SharedStore,
    sync: &SyncState,
    kind: Kind,
    count: usize,
    page_size: usize,
    make: impl Fn(usize) -> Value,
) -> usize {
    let mut buffer = None;
    let mut bytes = 0;
    apply_event(store, sync, kind, &mut buffer, Event::Init);
    for start in (0..count).step_by(page_size) {
        let page: Vec<String> = (start..(start + page_size).min(count))
            .map(|i| make(i).to_string())
            .collect();
        let objects: Vec<DynamicObject> = page
            .iter()
            .map(|text| serde_json::from_str(text).expect("a DynamicObject"))
            .collect();
        bytes += page.iter().map(String::len).sum::<usize>();
        drop(page);
        for object in objects {
            apply_event(store, sync, kind, &mut buffer, Event::InitApply(object));
        }
    }
    apply_event(store, sync, kind, &mut buffer, Event::InitDone);
    bytes
}

/// The server's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 10_000,
    };
    let page_size: usize = match std::env::args().nth(2) {
        Some(n) => n.parse()?,
        None => DEFAULT_PAGE,
    };
    let review: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/load/rollout-update-review.json"
    ))?;
    let base = review["request"]["object"].clone();

    let start = report("start");
    let store = SharedStore::new();
    let sync = SyncState::default();
    let template_bytes = list(
        &store,
        &sync,
        Kind::AnalysisTemplate,
        count,
        page_size,
        template,
    );
    report(&format!("+{count} AnalysisTemplates"));
    let rollout_bytes = list(&store, &sync, Kind::Rollout, count, page_size, |i| {
        rollout(&base, i)
    });
    apply_event(
        &store,
        &sync,
        Kind::ClusterAnalysisTemplate,
        &mut None,
        Event::InitDone,
    );
    let end = report(&format!("+{count} Rollouts"));

    // The cache is what the rules see: a reference resolves, a template's users are found.
    assert!(store.synced());
    assert!(
        store
            .analysis_template("team-7", "success-rate-0")
            .is_some()
    );
    assert!(
        !store
            .rollouts_referencing(Kind::AnalysisTemplate, "team-7", "success-rate-0")
            .is_empty()
    );
    println!("sizes: {:?}", store.sizes());
    println!(
        "listed JSON: templates {:.1} MiB, Rollouts {:.1} MiB; cache growth {:.1} MiB ({:.0} bytes per object)",
        template_bytes as f64 / 1048576.0,
        rollout_bytes as f64 / 1048576.0,
        (end - start) as f64 / 1024.0,
        (end - start) as f64 * 1024.0 / (2 * count) as f64
    );
    Ok(())
}
