//! Certificate reload as kubelet performs it: a symlink swap of the Secret volume.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rollout_guard::review::NullReviewer;
use rustls::pki_types::CertificateDer;

use crate::support::*;

/// The leaf certificate a fresh handshake is served.
async fn served_leaf(pki: &Pki, addr: std::net::SocketAddr) -> CertificateDer<'static> {
    let stream = connect_tls(addr, pki.client_config(rustls::ALL_VERSIONS))
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn symlink_swap_reloads_the_certificate_under_load_without_failures() {
    bounded(async {
        let pki = Arc::new(Pki::new());
        let (old, new) = (pki.server_leaf(), pki.server_leaf());
        let mut certs = CertDir::with(&old);
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;
        let https = server.https;
        assert_eq!(served_leaf(&pki, https).await, old.cert_der);

        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for worker in 0..4 {
            let (pki, stop, ok, failed) = (pki.clone(), stop.clone(), ok.clone(), failed.clone());
            workers.push(tokio::spawn(async move {
                // Worker 0 keeps one connection across the swap; the others reconnect each time.
                let mut kept = None;
                while !stop.load(Ordering::SeqCst) {
                    let result = if worker == 0 {
                        if kept.is_none() {
                            let config = pki.client_config(rustls::ALL_VERSIONS);
                            kept = Some(HttpConn::new(connect_tls(https, config).await.unwrap()));
                        }
                        kept.as_mut().unwrap().post("/validate", GKE_REVIEW).await
                    } else {
                        post_once(&pki, https, "/mutate", GKE_REVIEW).await
                    };
                    match result {
                        Ok(response) if response.status == 200 => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            }));
        }

        tokio::time::sleep(Duration::from_millis(300)).await;
        certs.swap(&new);
        let swapped = Instant::now();
        while served_leaf(&pki, https).await != new.cert_der {
            assert!(
                swapped.elapsed() < Duration::from_secs(3),
                "new certificate never served"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        for worker in workers {
            worker.await.unwrap();
        }
        assert_eq!(failed.load(Ordering::SeqCst), 0);
        assert!(
            ok.load(Ordering::SeqCst) >= 20,
            "only {} requests ran",
            ok.load(Ordering::SeqCst)
        );
        for _ in 0..5 {
            assert_eq!(served_leaf(&pki, https).await, new.cert_der);
        }
        let metrics = admin_get(server.admin, "/metrics").await.text();
        assert_eq!(metric(&metrics, "rollout_guard_tls_reloads_total "), 1.0);

        // A new certificate with the old key does not match: logged, counted, old one kept.
        let mismatched = pki.server_leaf();
        certs.swap_raw(&mismatched.cert_pem, &new.key_pem);
        let started = Instant::now();
        loop {
            let metrics = admin_get(server.admin, "/metrics").await.text();
            if metric(&metrics, "rollout_guard_tls_reload_errors_total ") >= 1.0 {
                assert_eq!(metric(&metrics, "rollout_guard_tls_reloads_total "), 1.0);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "bad pair never noticed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(served_leaf(&pki, https).await, new.cert_der);
        assert_eq!(admin_get(server.admin, "/readyz").await.status, 200);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stays_unready_until_a_certificate_appears() {
    bounded(async {
        let pki = Pki::new();
        let mut certs = CertDir::empty();
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;

        let readyz = admin_get(server.admin, "/readyz").await;
        assert_eq!(readyz.status, 503);
        assert_eq!(readyz.text(), "no serving certificate loaded");
        assert!(
            post_once(&pki, server.https, "/validate", GKE_REVIEW)
                .await
                .is_err()
        );

        certs.swap(&pki.server_leaf());
        let started = Instant::now();
        while admin_get(server.admin, "/readyz").await.status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "never became ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let response = post_once(&pki, server.https, "/validate", GKE_REVIEW)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        // The first certificate is a load, not a reload.
        let metrics = admin_get(server.admin, "/metrics").await.text();
        assert_eq!(metric(&metrics, "rollout_guard_tls_reloads_total "), 0.0);
        server.shutdown().await;
    })
    .await;
}
