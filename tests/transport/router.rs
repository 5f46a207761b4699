//! The admission router in process (`tower::ServiceExt::oneshot`), without sockets: the
//! per-review log line and the metrics it records. Built as its own test binary
//! (`tests/router.rs`), not with the rest of `tests/transport`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use rollout_guard::metrics::{Metrics, ScrapeExtras};
use rollout_guard::server::{AppState, Limits, router};
use tower::ServiceExt as _;

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn state(metrics: Arc<Metrics>) -> AppState {
    let reviewer = Arc::new(TestReviewer {
        rules: vec!["background-analysis-inconclusive"],
        ..TestReviewer::default()
    });
    AppState::new(reviewer, metrics, limits())
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 1 << 20,
        max_buffered_body_bytes: 4 << 20,
        body_timeout: Duration::from_secs(5),
        review_timeout: Duration::from_secs(10),
        max_concurrent_reviews: 4,
        max_blocking_reviews: 2,
    }
}

fn post(path: &str, body: &'static [u8]) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn logs_one_line_per_review_with_summary_fields_and_no_object() {
    bounded(async {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || sink.clone())
            .finish();
        // current_thread runtime: the handler runs on this thread, under this subscriber.
        let _guard = tracing::subscriber::set_default(subscriber);

        let metrics = Arc::new(Metrics::new());
        let app = router(state(Arc::clone(&metrics)));
        let response = app
            .clone()
            .oneshot(post("/validate?timeout=3s", GKE_REVIEW))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(review["response"]["uid"], GKE_UID);

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["message"], "review");
        assert_eq!(line["uid"], GKE_UID);
        assert_eq!(line["kind"], "Pod");
        assert_eq!(line["namespace"], "colin-coder");
        assert_eq!(line["name"], "echo-pod");
        assert_eq!(line["operation"], "CREATE");
        assert_eq!(line["sub_resource"], "");
        assert_eq!(line["dry_run"], false);
        assert_eq!(line["outcome"], "warned");
        assert_eq!(line["rules"], "background-analysis-inconclusive");
        assert_eq!(line["endpoint"], "validate");
        assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
        // Object contents (container images, user names) never reach the log.
        assert!(
            !text.contains("jmalloc/echo-server") && !text.contains("userInfo"),
            "{text}"
        );

        // Rejections are not reviews: no line, a rejection counter instead.
        let response = app
            .oneshot(Request::get("/validate").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(text.lines().count(), 1);

        let scraped = metrics.render(&ScrapeExtras::default());
        assert_eq!(
            metric(
                &scraped,
                "rollout_guard_reviews_total{endpoint=\"validate\",outcome=\"warned\"}"
            ),
            1.0
        );
        assert_eq!(
            metric(
                &scraped,
                "rollout_guard_findings_total{rule=\"background-analysis-inconclusive\"}"
            ),
            1.0
        );
        assert_eq!(
            metric(
                &scraped,
                "rollout_guard_http_rejections_total{reason=\"method_not_allowed\"}"
            ),
            1.0
        );
    })
    .await;
}

/// Reviews that leave the async workers for the blocking pool (large bodies, declined ones)
/// run at most `max_blocking_reviews` at once: they only compute, and each may build JSON trees
/// many times its body's size. The others wait for a slot within their deadline.
#[tokio::test]
async fn blocking_reviews_run_at_most_max_blocking_reviews_at_once() {
    bounded(async {
        let reviewer = Arc::new(TestReviewer {
            decline_inline_on: Some(("colin-coder", Duration::from_millis(150))),
            ..TestReviewer::default()
        });
        let limits = Limits {
            max_concurrent_reviews: 8,
            max_blocking_reviews: 2,
            ..limits()
        };
        let app = router(AppState::new(
            Arc::clone(&reviewer) as Arc<dyn rollout_guard::review::Reviewer>,
            Arc::new(Metrics::new()),
            limits,
        ));
        let requests: Vec<_> = (0..6)
            .map(|_| {
                tokio::spawn(
                    app.clone()
                        .oneshot(post("/validate?timeout=5s", GKE_REVIEW)),
                )
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        assert_eq!(reviewer.calls.load(std::sync::atomic::Ordering::SeqCst), 6);
        assert_eq!(reviewer.peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    })
    .await;
}

/// No blocking slot before the deadline: the reviewer's overloaded answer, a 503 here.
#[tokio::test]
async fn a_blocking_review_without_a_slot_before_its_deadline_is_overloaded() {
    bounded(async {
        let reviewer = Arc::new(TestReviewer {
            decline_inline_on: Some(("colin-coder", Duration::from_millis(1500))),
            ..TestReviewer::default()
        });
        let limits = Limits {
            max_blocking_reviews: 1,
            ..limits()
        };
        let app = router(AppState::new(reviewer, Arc::new(Metrics::new()), limits));
        let first = tokio::spawn(
            app.clone()
                .oneshot(post("/validate?timeout=5s", GKE_REVIEW)),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = app
            .oneshot(post("/validate?timeout=1s", GKE_REVIEW))
            .await
            .unwrap();
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = second.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"error":"too many concurrent reviews"}"#);
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    })
    .await;
}
