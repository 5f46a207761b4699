//! Graceful shutdown: readiness off, listener closed, in-flight reviews answered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 16)]
async fn drains_in_flight_reviews_after_readiness_goes_off() {
    bounded(async {
        let pki = Arc::new(Pki::new());
        let certs = CertDir::with(&pki.server_leaf());
        // The reviews wait at the gate until the listener has closed (readiness off within
        // 200 ms, connections refused within 250 ms): a fixed delay raced the six requests'
        // start on a loaded machine (300 ms, then 1 s, let the first finish too early).
        let reviewer = Arc::new(TestReviewer::default());
        reviewer.gate.shut();
        let mut server = TestServer::start(&serve_args(&certs, &[]), reviewer.clone()).await;
        let https = server.https;
        assert_eq!(admin_get(server.admin, "/readyz").await.status, 200);

        // An idle keep-alive connection, and six requests in flight on their own connections.
        let config = pki.client_config(rustls::ALL_VERSIONS);
        let mut idle = HttpConn::new(connect_tls(https, config).await.unwrap());
        let mut in_flight = Vec::new();
        for _ in 0..6 {
            let pki = pki.clone();
            in_flight.push(tokio::spawn(async move {
                post_once(&pki, https, "/validate", GKE_REVIEW).await
            }));
        }
        while reviewer.calls.load(Ordering::SeqCst) < 6 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        server.begin_shutdown();
        let started = Instant::now();
        loop {
            let readyz = admin_get(server.admin, "/readyz").await;
            if readyz.status == 503 {
                assert_eq!(readyz.text(), "shutting down");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(200),
                "still ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Reviews are still running, yet new connections are refused.
        loop {
            match tokio::net::TcpStream::connect(https).await {
                Err(_) => break,
                Ok(_) => {
                    assert!(
                        started.elapsed() < Duration::from_millis(250),
                        "still accepting"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        assert!(in_flight.iter().all(|task| !task.is_finished()));
        assert!(
            idle.closed_within(Duration::from_secs(2)).await,
            "idle connection kept open"
        );
        // Still draining: the reviews end only now, and must be answered.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(in_flight.iter().all(|task| !task.is_finished()));
        reviewer.gate.open();

        for task in in_flight {
            let response = task.await.unwrap().expect("in-flight request dropped");
            assert_eq!(response.status, 200);
            assert_eq!(response.json()["response"]["uid"], GKE_UID);
        }
        server.wait_stopped().await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(tokio::net::TcpStream::connect(https).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn shutdown_timeout_bounds_a_drain_that_does_not_finish() {
    bounded(async {
        let pki = Arc::new(Pki::new());
        let certs = CertDir::with(&pki.server_leaf());
        let reviewer = Arc::new(TestReviewer {
            delay: Duration::from_millis(1500),
            ..TestReviewer::default()
        });
        let args = serve_args(&certs, &["--shutdown-timeout", "300ms"]);
        let mut server = TestServer::start(&args, reviewer.clone()).await;
        let https = server.https;
        let slow = {
            let pki = pki.clone();
            tokio::spawn(async move { post_once(&pki, https, "/validate", GKE_REVIEW).await })
        };
        while reviewer.calls.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        server.begin_shutdown();
        server.wait_stopped().await;
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(1400),
            "{took:?}"
        );
        slow.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_accepting_for_the_shutdown_delay_after_readiness_goes_off() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let mut server = TestServer::start_with(
            &serve_args(&certs, &[]),
            Arc::new(rollout_guard::review::NullReviewer),
            |server| server.with_shutdown_delay(Duration::from_millis(600)),
        )
        .await;
        server.begin_shutdown();
        let started = Instant::now();
        while admin_get(server.admin, "/readyz").await.status != 503 {
            assert!(
                started.elapsed() < Duration::from_millis(200),
                "still ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Not ready, yet a new connection is still served during the delay, and told to
        // close so that pooled connections retire before the drain.
        let response = post_once(&pki, server.https, "/validate", GKE_REVIEW)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("connection"), Some("close"));
        assert!(started.elapsed() < Duration::from_millis(500));
        let https = server.https;
        server.wait_stopped().await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert!(tokio::net::TcpStream::connect(https).await.is_err());
    })
    .await;
}
