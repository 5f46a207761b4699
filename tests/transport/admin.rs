//! The admin port: probes and the Prometheus exposition.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probes_and_metrics_report_state_without_changing_it() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let reviewer = Arc::new(TestReviewer {
            rules: vec!["background-analysis-inconclusive"],
            ..TestReviewer::default()
        });
        let server = TestServer::start(&serve_args(&certs, &[]), reviewer.clone()).await;

        let livez = admin_get(server.admin, "/livez").await;
        assert_eq!((livez.status, livez.text().as_str()), (200, "ok"));
        let readyz = admin_get(server.admin, "/readyz").await;
        assert_eq!((readyz.status, readyz.text().as_str()), (200, "ok"));
        reviewer.not_ready.store(true, Ordering::SeqCst);
        let readyz = admin_get(server.admin, "/readyz").await;
        assert_eq!(
            (readyz.status, readyz.text().as_str()),
            (503, "templates not synced")
        );
        reviewer.not_ready.store(false, Ordering::SeqCst);

        for path in ["/validate", "/validate", "/mutate", "/nope"] {
            post_once(&pki, server.https, path, GKE_REVIEW)
                .await
                .unwrap();
        }

        let scrape = admin_get(server.admin, "/metrics").await;
        assert_eq!(scrape.status, 200);
        assert_eq!(
            scrape.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = scrape.text();
        for family in [
            "rollout_guard_admission_duration_seconds histogram",
            "rollout_guard_reviews_total counter",
            "rollout_guard_findings_total counter",
            "rollout_guard_cache_entries gauge",
            "rollout_guard_tls_reloads_total counter",
            "rollout_guard_inflight_reviews gauge",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}\n")),
                "{family}\n{text}"
            );
        }
        let validate = "endpoint=\"validate\"";
        assert_eq!(
            metric(
                &text,
                &format!("rollout_guard_reviews_total{{{validate},outcome=\"warned\"}}")
            ),
            2.0
        );
        assert_eq!(
            metric(
                &text,
                "rollout_guard_reviews_total{endpoint=\"mutate\",outcome=\"warned\"}"
            ),
            1.0
        );
        assert_eq!(
            metric(
                &text,
                &format!("rollout_guard_admission_duration_seconds_count{{{validate}}}")
            ),
            2.0
        );
        assert_eq!(
            metric(
                &text,
                &format!(
                    "rollout_guard_admission_duration_seconds_bucket{{{validate},le=\"+Inf\"}}"
                )
            ),
            2.0
        );
        assert_eq!(
            metric(
                &text,
                "rollout_guard_findings_total{rule=\"background-analysis-inconclusive\"}"
            ),
            3.0
        );
        assert_eq!(
            metric(
                &text,
                "rollout_guard_cache_entries{kind=\"analysistemplates\"}"
            ),
            3.0
        );
        assert_eq!(
            metric(
                &text,
                "rollout_guard_http_rejections_total{reason=\"not_found\"}"
            ),
            1.0
        );
        assert_eq!(metric(&text, "rollout_guard_tls_reloads_total "), 0.0);
        assert_eq!(metric(&text, "rollout_guard_inflight_reviews "), 0.0);
        // Labels stay low-cardinality: no names, namespaces or uids.
        assert!(!text.contains("echo-pod") && !text.contains(GKE_UID));

        // Nothing on the admin port changes state.
        let mut conn = HttpConn::new(tokio::net::TcpStream::connect(server.admin).await.unwrap());
        let post = conn.request("POST", "/metrics", &[], b"").await.unwrap();
        assert_eq!(post.status, 405);
        assert_eq!(admin_get(server.admin, "/nope").await.status, 404);
        let again = admin_get(server.admin, "/metrics").await.text();
        assert_eq!(
            metric(
                &again,
                &format!("rollout_guard_reviews_total{{{validate},outcome=\"warned\"}}")
            ),
            2.0
        );
        server.shutdown().await;
    })
    .await;
}

/// The admin port bounds its connections as the HTTPS port does: a request head within
/// `--header-timeout`, idle keep-alive time within the idle timeout. Before, it kept idle and
/// half-sent connections forever: 140 of them under `ulimit -n 128` left the HTTPS port
/// unable to accept (EMFILE).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_and_half_sent_admin_connections_are_closed() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--header-timeout", "500ms"]);
        let idle = Duration::from_secs(3);
        let reviewer = Arc::new(TestReviewer::default());
        let server =
            TestServer::start_with(&args, reviewer, |server| server.with_idle_timeout(idle)).await;
        let admin = server.admin;
        let started = Instant::now();
        let mut silent = HttpConn::new(TcpStream::connect(admin).await.unwrap());
        let mut half = HttpConn::new(TcpStream::connect(admin).await.unwrap());
        half.stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n")
            .await
            .unwrap();
        let mut kept = HttpConn::new(TcpStream::connect(admin).await.unwrap());
        let livez = kept.request("GET", "/livez", &[], b"").await.unwrap();
        assert_eq!((livez.status, livez.text().as_str()), (200, "ok"));

        // A connection that sends nothing, and one that stops in the middle of its head.
        for conn in [&mut silent, &mut half] {
            assert!(
                conn.closed_within(Duration::from_secs(5)).await,
                "admin connection still open"
            );
        }
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(4), "{waited:?}");

        // Idle longer than the header timeout, shorter than the idle timeout: still served.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let readyz = kept.request("GET", "/readyz", &[], b"").await.unwrap();
        assert_eq!((readyz.status, readyz.text().as_str()), (200, "ok"));
        let answered = Instant::now();
        assert!(
            kept.closed_within(idle + Duration::from_secs(5)).await,
            "idle admin connection still open"
        );
        let waited = answered.elapsed();
        assert!(waited > Duration::from_secs(2), "{waited:?}");

        // The port still serves, and shuts down with a keep-alive connection open.
        let mut open = HttpConn::new(TcpStream::connect(admin).await.unwrap());
        let metrics = open.request("GET", "/metrics", &[], b"").await.unwrap();
        assert_eq!(metrics.status, 200);
        let stopping = Instant::now();
        server.shutdown().await;
        assert!(open.closed_within(Duration::from_secs(1)).await);
        assert!(stopping.elapsed() < Duration::from_secs(5));
    })
    .await;
}
