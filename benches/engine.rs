//! Criterion benchmarks of the rule engine: one flagged Rollout whose background analysis
//! uses three templates (one nested), and the whole corpus through `check`'s library path.
//!
//! The admission request path on the load-test review (`tests/fixtures/load/`, 17 KB UPDATE
//! of a flagged Rollout): the whole [`Admission::review`] next to the [`NullReviewer`], and its
//! parts (scanning the body, decoding the Rollout view, the rules). And a template write
//! re-checked against 1,000 and 10,000 Rollouts that use the template (`template_write/`).
//!
//! `cargo bench --bench engine` (`-- review/` for the request path only)

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};

/// The server's allocator, so the review figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::{SharedStore, load_dir};
use rollout_guard::input::load;
use rollout_guard::model::{AnalysisTemplate, Rollout};
use rollout_guard::review::{Endpoint, NullReviewer, Outcome, Reviewer};
use rollout_guard::rules::{Config, check_rollout};
use rollout_guard::templates::MemoryStore;
use serde_json::json;

fn flagged() -> (Rollout, MemoryStore) {
    let metric = |name: &str| {
        json!({"name": name, "interval": "30s", "successCondition": "result[0] >= 0.95",
            "failureCondition": "result[0] < 0.9", "provider": {"prometheus": {"query": "q"}}})
    };
    let mut store = MemoryStore::new();
    for (name, nested, metrics) in [
        (
            "success-rate",
            json!([{"templateName": "latency"}]),
            json!([metric("success"), metric("errors")]),
        ),
        ("latency", json!([]), json!([metric("p99"), metric("p50")])),
        (
            "saturation",
            json!([]),
            json!([metric("cpu"), {"name": "job", "provider": {"job": {}}}]),
        ),
    ] {
        let t: AnalysisTemplate = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"templates": nested, "metrics": metrics, "args": [{"name": "service"}]}
        }))
        .unwrap();
        store.insert_template(t);
    }
    let rollout: Rollout = serde_json::from_value(json!({
        "metadata": {"name": "shop", "namespace": "apps"},
        "spec": {"replicas": 4, "strategy": {"canary": {
            "analysis": {"templates": [{"templateName": "success-rate"}, {"templateName": "saturation"}],
                "args": [{"name": "service", "value": "shop"}], "startingStep": 1},
            "steps": [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50},
                {"pause": {"duration": "5m"}}, {"setWeight": 100}, {"pause": {"duration": "1m"}}]}}}
    }))
    .unwrap();
    (rollout, store)
}

fn corpus_dir() -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
    }
}

fn engine(c: &mut Criterion) {
    let (rollout, store) = flagged();
    // What the webhook runs (no long explanations) and what `check` runs (with them).
    let webhook = Config::default();
    let cfg = Config {
        explain: true,
        ..Config::default()
    };
    assert!(
        check_rollout(&rollout, &store, &webhook).trap.is_some(),
        "the benchmark Rollout must be flagged"
    );
    c.bench_function("check_rollout/flagged_three_templates", |b| {
        b.iter(|| check_rollout(black_box(&rollout), &store, &webhook))
    });
    c.bench_function("check_rollout/flagged_three_templates_explained", |b| {
        b.iter(|| check_rollout(black_box(&rollout), &store, &cfg))
    });

    let dir = corpus_dir();
    c.bench_function("check/whole_corpus_from_disk", |b| {
        b.iter(|| {
            let inputs = load(std::slice::from_ref(&dir));
            rollout_guard::check::check_loaded(inputs, Default::default(), &cfg)
        })
    });
    let inputs = || load(std::slice::from_ref(&dir));
    let sample = inputs();
    println!(
        "corpus: {} files, {} Argo objects",
        sample.files,
        sample.objects.len()
    );
    c.bench_function("check/whole_corpus_engine_only", |b| {
        b.iter_batched(
            inputs,
            |l| rollout_guard::check::check_loaded(l, Default::default(), &cfg),
            criterion::BatchSize::LargeInput,
        )
    });
}

fn review(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load");
    let body = std::fs::read(root.join("rollout-update-review.json")).unwrap();
    let (store, errors) = load_dir(&root.join("templates"));
    assert!(errors.is_empty(), "{errors:?}");
    let catalog = std::sync::Arc::new(SharedStore::ready(store));
    let admission = Admission::new(Policy::default(), catalog.clone());
    assert_eq!(
        admission.review(Endpoint::Validate, &body).outcome,
        Outcome::Warned
    );
    c.bench_function("review/null", |b| {
        b.iter(|| NullReviewer.review(Endpoint::Validate, black_box(&body)))
    });
    c.bench_function("review/validate", |b| {
        b.iter(|| admission.review(Endpoint::Validate, black_box(&body)))
    });
    // The same review with serde_json as the only reader: what the lean reader saves.
    c.bench_function("review/validate_serde_json", |b| {
        b.iter(|| admission.review_reference(Endpoint::Validate, black_box(&body)))
    });
    c.bench_function("review/mutate", |b| {
        b.iter(|| admission.review(Endpoint::Mutate, black_box(&body)))
    });
    c.bench_function("review/parts/scan_body", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap())
    });
    c.bench_function("review/parts/lean_skip_body", |b| {
        b.iter(|| {
            rollout_guard::json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).unwrap()
        })
    });
    c.bench_function("review/parts/utf8_body", |b| {
        b.iter(|| std::str::from_utf8(black_box(&body)).unwrap().len())
    });
    c.bench_function("review/parts/utf8_body_simd", |b| {
        b.iter(|| simdutf8::basic::from_utf8(black_box(&body)).unwrap().len())
    });
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let object = serde_json::to_string(&envelope["request"]["object"]).unwrap();
    c.bench_function("review/parts/rollout_view", |b| {
        b.iter(|| serde_json::from_str::<Rollout>(black_box(&object)).unwrap())
    });
    c.bench_function("review/parts/rollout_view_lean", |b| {
        b.iter(|| rollout_guard::json::from_slice::<Rollout>(black_box(object.as_bytes())).unwrap())
    });
    let old_object = serde_json::to_string(&envelope["request"]["oldObject"]).unwrap();
    c.bench_function("review/parts/skip_old_object_lean", |b| {
        b.iter(|| {
            rollout_guard::json::skip_value(black_box(&old_object))
                .unwrap()
                .len()
        })
    });
    let rollout: Rollout = serde_json::from_str(&object).unwrap();
    let cfg = Config::default();
    c.bench_function("review/parts/check_rollout", |b| {
        b.iter(|| check_rollout(black_box(&rollout), catalog.as_ref(), &cfg))
    });
}

/// An AnalysisTemplate UPDATE validated while N cached Rollouts use the template: each is
/// re-checked against the edited template (and, when it is dangerous, the stored one). The
/// server runs these on the blocking pool (`Reviewer::review_inline` declines them).
fn template_write(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/load");
    let review: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("rollout-update-review.json")).unwrap())
            .unwrap();
    let rollout = &review["request"]["object"];
    let template_doc = std::fs::read_to_string(root.join("templates/analysis-templates.yaml"))
        .unwrap()
        .split("\n---")
        .map(|d| serde_yaml::from_str::<serde_json::Value>(d).unwrap())
        .find(|d| d["metadata"]["name"] == "success-rate")
        .unwrap();
    let mut request = review["request"].clone();
    request["kind"] =
        json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "AnalysisTemplate"});
    request["resource"] =
        json!({"group": "argoproj.io", "version": "v1alpha1", "resource": "analysistemplates"});
    request["name"] = json!("success-rate");
    request["object"] = template_doc.clone();
    request["oldObject"] = template_doc;
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
    }))
    .unwrap();
    let mut group = c.benchmark_group("template_write");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        let (mut store, _) = load_dir(&root.join("templates"));
        for i in 0..n {
            let mut r = rollout.clone();
            r["metadata"]["name"] = json!(format!("service-{i}"));
            store.insert_rollout(serde_json::from_value(r).unwrap());
        }
        let admission = Admission::new(
            Policy::default(),
            std::sync::Arc::new(SharedStore::ready(store)),
        );
        assert_eq!(
            admission.review(Endpoint::Validate, &body).outcome,
            Outcome::Warned,
            "every referencing Rollout stays dangerous"
        );
        group.bench_function(format!("referenced_by_{n}_rollouts"), |b| {
            b.iter(|| admission.review(Endpoint::Validate, black_box(&body)))
        });
    }
    group.finish();
}

criterion_group!(benches, engine, review, template_write);
criterion_main!(benches);
