//! HTTP rules over real TLS connections: keep-alive, status codes, limits, deadlines.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rollout_guard::review::NullReviewer;
use tokio::io::AsyncWriteExt;

use crate::support::*;

fn assert_json_error(response: &Response, status: u16) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(
        response.json()["error"].is_string(),
        "no error message: {}",
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_every_rule_with_json_on_one_keep_alive_connection() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--max-body-bytes", "8192"]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;
        let stream = connect_tls(server.https, pki.client_config(rustls::ALL_VERSIONS))
            .await
            .unwrap();
        let mut conn = HttpConn::new(stream);

        let ok = conn.post("/validate", GKE_REVIEW).await.unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.json()["response"]["uid"], GKE_UID);
        let ok = conn
            .request(
                "POST",
                "/mutate?timeout=10s",
                &[("content-type", "application/json; charset=utf-8")],
                GKE_REVIEW,
            )
            .await
            .unwrap();
        assert_eq!(ok.status, 200);

        let wrong_method = conn.request("GET", "/validate", &[], b"").await.unwrap();
        assert_json_error(&wrong_method, 405);
        assert_eq!(wrong_method.header("allow"), Some("POST"));
        let unknown = conn.post("/nope", GKE_REVIEW).await.unwrap();
        assert_json_error(&unknown, 404);
        let text = conn
            .request(
                "POST",
                "/validate",
                &[("content-type", "text/plain")],
                GKE_REVIEW,
            )
            .await
            .unwrap();
        assert_json_error(&text, 415);
        let missing_type = conn
            .request("POST", "/validate", &[], GKE_REVIEW)
            .await
            .unwrap();
        assert_json_error(&missing_type, 415);
        let not_a_review = conn.post("/validate", b"{\"hello\":1}").await.unwrap();
        assert_json_error(&not_a_review, 400);
        let empty = conn.post("/mutate", b"").await.unwrap();
        assert_json_error(&empty, 400);

        // The connection survived all of the above.
        let ok = conn.post("/validate", GKE_REVIEW).await.unwrap();
        assert_eq!(ok.status, 200);
        server.shutdown().await;
    })
    .await;
}

/// Found by review: a 404, 405 or 415 to a request with a large body left the body unread,
/// and hyper closed the connection after an answer that did not say so. A small body is read
/// and dropped (the connection stays); a large one gets `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_before_the_body_say_when_the_connection_ends() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &[]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;
        for (method, path, content_type, status) in [
            ("POST", "/nope", "application/json", 404),
            ("PUT", "/validate", "application/json", 405),
            ("POST", "/validate", "text/plain", 415),
        ] {
            let mut conn = HttpConn::new(
                connect_tls(server.https, pki.client_config(rustls::ALL_VERSIONS))
                    .await
                    .unwrap(),
            );
            let small = conn
                .request(method, path, &[("content-type", content_type)], GKE_REVIEW)
                .await
                .unwrap();
            assert_json_error(&small, status);
            assert_eq!(small.header("connection"), None, "{method} {path}");
            // Declared, not sent: the answer comes before the body either way, and a client
            // still writing it when the connection closes would see a broken pipe.
            let big = conn
                .request(
                    method,
                    path,
                    &[("content-type", content_type), ("content-length", "102400")],
                    b"",
                )
                .await
                .unwrap();
            assert_json_error(&big, status);
            assert_eq!(big.header("connection"), Some("close"), "{method} {path}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_large_bodies_by_content_length_and_while_streaming() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--max-body-bytes", "8192"]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;
        let config = || pki.client_config(rustls::ALL_VERSIONS);

        // Declared too large: refused before the body is sent.
        let mut conn = HttpConn::new(connect_tls(server.https, config()).await.unwrap());
        let response = conn
            .request(
                "POST",
                "/validate",
                &[
                    ("content-type", "application/json"),
                    ("content-length", "9000000"),
                ],
                b"",
            )
            .await
            .unwrap();
        assert_json_error(&response, 413);
        // The body is left unsent and unread: the answer says the connection ends.
        assert_eq!(response.header("connection"), Some("close"));

        // Chunked, no length: refused once the limit is crossed.
        let mut conn = HttpConn::new(connect_tls(server.https, config()).await.unwrap());
        let chunk = vec![b' '; 4096];
        let mut wire = b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(&chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        conn.stream.write_all(&wire).await.unwrap();
        let response = conn.read_response().await.unwrap();
        assert_json_error(&response, 413);
        assert_eq!(response.header("connection"), Some("close"));

        // Exactly at the limit is accepted (and reviewed: this body is no review).
        let at_limit = vec![b' '; 8192];
        let response = post_once(&pki, server.https, "/validate", &at_limit)
            .await
            .unwrap();
        assert_json_error(&response, 400);
        server.shutdown().await;
    })
    .await;
}

/// Starts one review of `body` that `reviewer` holds (its `delay`), and returns once the
/// reviewer has it: whatever it occupies stays taken until the task ends.
async fn hold_one_review(
    pki: &Arc<Pki>,
    https: std::net::SocketAddr,
    body: &'static [u8],
    reviewer: &TestReviewer,
) -> tokio::task::JoinHandle<std::io::Result<Response>> {
    let holder = {
        let pki = Arc::clone(pki);
        tokio::spawn(async move { post_once(&pki, https, "/validate?timeout=10s", body).await })
    };
    while reviewer.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    holder
}

/// Posts `body` to `path`, expects a 503, and returns it with the time it took.
async fn refused(
    pki: &Pki,
    https: std::net::SocketAddr,
    path: &str,
    body: &[u8],
) -> (Response, Duration) {
    let started = Instant::now();
    let response = post_once(pki, https, path, body).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status, 503, "{}", response.text());
    (response, waited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn waits_for_a_review_slot_until_the_timeout_parameter_then_answers_overloaded() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(
            &certs,
            &["--max-concurrent-reviews", "1", "--review-timeout", "300ms"],
        );
        // The review in the slot waits at the gate until both refusals are seen.
        let reviewer = Arc::new(TestReviewer::default());
        reviewer.gate.shut();
        let server = TestServer::start(&args, reviewer.clone()).await;
        let https = server.https;

        // Occupy the only slot.
        let pki = Arc::new(pki);
        let holder = hold_one_review(&pki, https, GKE_REVIEW, &reviewer).await;

        // `?timeout=200ms` gives up after 180 ms (a tenth kept in reserve).
        let (_, waited) = refused(&pki, https, "/validate?timeout=200ms", GKE_REVIEW).await;
        assert!(
            waited >= Duration::from_millis(170) && waited < Duration::from_millis(700),
            "{waited:?}"
        );

        // An unparsable timeout falls back to --review-timeout (300 ms, so 270 ms).
        let (_, waited) = refused(&pki, https, "/validate?timeout=soon", GKE_REVIEW).await;
        assert!(
            waited >= Duration::from_millis(260) && waited < Duration::from_millis(800),
            "{waited:?}"
        );

        // A long enough timeout waits for the slot and gets a real review.
        let waiting = {
            let pki = Arc::clone(&pki);
            tokio::spawn(
                async move { post_once(&pki, https, "/mutate?timeout=5s", GKE_REVIEW).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        reviewer.gate.open();
        let response = waiting.await.unwrap().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["response"]["uid"], GKE_UID);
        assert_eq!(holder.await.unwrap().unwrap().status, 200);
        assert_eq!(reviewer.calls.load(Ordering::SeqCst), 2);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn bodies_in_memory_are_bounded_and_a_request_waits_for_room_until_its_timeout() {
    bounded(async {
        let pki = Arc::new(Pki::new());
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--max-buffered-body-bytes", "1048576"]);
        let reviewer = Arc::new(TestReviewer {
            delay: Duration::from_millis(1200),
            ..TestReviewer::default()
        });
        let server = TestServer::start(&args, reviewer.clone()).await;
        let https = server.https;
        // A review padded to 700 KB: 684 of the 1,024 KiB of room while it is reviewed.
        let mut big = GKE_REVIEW.to_vec();
        big.resize(700_000, b' ');
        let big: &'static [u8] = Box::leak(big.into_boxed_slice());

        let holder = hold_one_review(&pki, https, big, &reviewer).await;
        // A second one does not fit: it reads on past the room, the one body that may.
        let past = {
            let pki = Arc::clone(&pki);
            tokio::spawn(async move { post_once(&pki, https, "/validate?timeout=10s", big).await })
        };
        while reviewer.calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A third one does not fit either: it waits (a tenth of its timeout kept), then gets
        // a 503.
        let (response, waited) = refused(&pki, https, "/validate?timeout=200ms", big).await;
        assert!(response.text().contains("too many request bodies"));
        assert!(
            waited >= Duration::from_millis(170) && waited < Duration::from_millis(700),
            "{waited:?}"
        );
        // A small one fits beside it and is answered (after its own 1.2 s review).
        let response = post_once(&pki, https, "/validate?timeout=10s", GKE_REVIEW)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        // A big one with time to wait gets room once the first is done.
        let response = post_once(&pki, https, "/validate?timeout=10s", big)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["response"]["uid"], GKE_UID);
        assert_eq!(holder.await.unwrap().unwrap().status, 200);
        assert_eq!(past.await.unwrap().unwrap().status, 200);
        let metrics = admin_get(server.admin, "/metrics").await.text();
        assert!(
            metrics.contains(r#"rollout_guard_http_rejections_total{reason="bodies_buffered"} 1"#),
            "{metrics}"
        );
        server.shutdown().await;
    })
    .await;
}

/// Opens a connection, sends a request head and the start of its body, and leaves it there.
async fn stalled_body(
    pki: &Pki,
    https: std::net::SocketAddr,
    path: &str,
    framing: (&str, &str),
    start: &[u8],
) -> HttpConn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let stream = connect_tls(https, pki.client_config(rustls::ALL_VERSIONS))
        .await
        .unwrap();
    let mut conn = HttpConn::new(stream);
    let mut wire = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n{}: {}\r\n\r\n",
        framing.0, framing.1
    )
    .into_bytes();
    wire.extend_from_slice(start);
    conn.stream.write_all(&wire).await.unwrap();
    conn.stream.flush().await.unwrap();
    conn
}

/// The reviewer's reproduction: heads that declare 8 MiB (or send chunked) followed by one
/// byte used to reserve their whole declared size (all of the room here) for their 30 s
/// deadline, and every other review got a 503. Room now follows the bytes that arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declared_length_reserves_no_room_so_stalled_bodies_starve_no_one() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--max-buffered-body-bytes", "1048576"]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;
        let https = server.https;
        let path = "/validate?timeout=30s";
        let mut stalled = Vec::new();
        for _ in 0..3 {
            let length = ("content-length", "8388608");
            stalled.push(stalled_body(&pki, https, path, length, b"{").await);
            let chunked = ("transfer-encoding", "chunked");
            stalled.push(stalled_body(&pki, https, path, chunked, b"1\r\n{\r\n").await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Before: a 503 `too many request bodies in memory` after the 2.7 s budget.
        let started = Instant::now();
        for _ in 0..3 {
            let response = post_once(&pki, https, "/validate?timeout=3s", GKE_REVIEW)
                .await
                .unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(2500), "{waited:?}");
        // The stalled ones are still there, only holding their byte.
        for conn in &mut stalled {
            assert!(!conn.closed_within(Duration::from_millis(1)).await);
        }
        drop(stalled);

        // A body larger than all the room still passes, alone.
        let padding = "x".repeat(3 << 20);
        let large = format!(r#"{{"request":{{"uid":"large-1","object":{{"data":"{padding}"}}}}}}"#);
        let response = post_once(&pki, https, "/validate?timeout=10s", large.as_bytes())
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["response"]["uid"], "large-1");
        let metrics = admin_get(server.admin, "/metrics").await.text();
        assert!(
            !metrics.contains(r#"{reason="bodies_buffered"} 1"#),
            "{metrics}"
        );
        server.shutdown().await;
    })
    .await;
}

/// Two honest bodies that together need more than the room, sent side by side: each holds
/// what arrived and waits for more. Before, they waited on each other until one's deadline
/// (a 503 after 2.7 s); one may now read on past the room, and both are answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_bodies_beyond_the_room_sent_side_by_side_are_both_served() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let flags = [
            "--max-buffered-body-bytes",
            "1048576",
            "--body-timeout",
            "3s",
        ];
        let server = TestServer::start(&serve_args(&certs, &flags), Arc::new(NullReviewer)).await;
        let body = |uid: &str| {
            let padding = "x".repeat(700 * 1024);
            format!(r#"{{"request":{{"uid":"{uid}","object":{{"data":"{padding}"}}}}}}"#)
                .into_bytes()
        };
        let (a, b) = (body("a"), body("b"));
        let split = 500 * 1024;
        let path = "/validate?timeout=10s";
        let (la, lb) = (a.len().to_string(), b.len().to_string());
        let mut ca = stalled_body(
            &pki,
            server.https,
            path,
            ("content-length", &la),
            &a[..split],
        )
        .await;
        let mut cb = stalled_body(
            &pki,
            server.https,
            path,
            ("content-length", &lb),
            &b[..split],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        ca.stream.write_all(&a[split..]).await.unwrap();
        ca.stream.flush().await.unwrap();
        cb.stream.write_all(&b[split..]).await.unwrap();
        cb.stream.flush().await.unwrap();
        let (ra, rb) = tokio::join!(ca.read_response(), cb.read_response());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let waited = started.elapsed();
        assert_eq!(
            (ra.status, rb.status),
            (200, 200),
            "{} {}",
            ra.text(),
            rb.text()
        );
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        server.shutdown().await;
    })
    .await;
}

/// `--body-timeout` bounds the body even when the review deadline is far off: a sender that
/// stops after one byte gets a 408 and its room back long before `?timeout=30s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_must_arrive_within_the_body_timeout() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--body-timeout", "500ms"]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;
        let started = Instant::now();
        let length = ("content-length", "1000");
        let mut conn =
            stalled_body(&pki, server.https, "/validate?timeout=30s", length, b"{").await;
        let response = conn.read_response().await.unwrap();
        let waited = started.elapsed();
        assert_json_error(&response, 408);
        assert_eq!(response.header("connection"), Some("close"));
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // A body that arrives in time is unaffected.
        let response = post_once(&pki, server.https, "/validate?timeout=30s", GKE_REVIEW)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let metrics = admin_get(server.admin, "/metrics").await.text();
        assert_eq!(
            metric(
                &metrics,
                r#"rollout_guard_http_rejections_total{reason="body_timeout"}"#
            ),
            1.0
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn header_timeout_closes_a_slow_client_without_stalling_others() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--header-timeout", "400ms"]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;

        let stream = connect_tls(server.https, pki.client_config(rustls::ALL_VERSIONS))
            .await
            .unwrap();
        let mut slow = HttpConn::new(stream);
        slow.stream
            .write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\n")
            .await
            .unwrap();
        slow.stream.flush().await.unwrap();

        // Meanwhile other clients are served at once.
        let started = Instant::now();
        let response = post_once(&pki, server.https, "/validate", GKE_REVIEW)
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert!(started.elapsed() < Duration::from_millis(300));

        let started = Instant::now();
        assert!(
            slow.closed_within(Duration::from_secs(3)).await,
            "slow client still connected"
        );
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(1500), "{waited:?}");

        // A connection that completes its handshake but never sends a request: same bound.
        let stream = connect_tls(server.https, pki.client_config(rustls::ALL_VERSIONS))
            .await
            .unwrap();
        let started = Instant::now();
        assert!(
            HttpConn::new(stream)
                .closed_within(Duration::from_secs(3))
                .await
        );
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(1500), "{waited:?}");

        // A client that never finishes its handshake is dropped by the same bound.
        let mut idle = tokio::net::TcpStream::connect(server.https).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::io::AsyncReadExt::read(&mut idle, &mut byte),
        )
        .await
        .expect("handshake timeout did not close the connection");
        assert!(matches!(read, Ok(0) | Err(_)));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_review_costs_one_request_not_the_server() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let reviewer = Arc::new(TestReviewer {
            panic_on: Some("boom"),
            ..TestReviewer::default()
        });
        let server = TestServer::start(&serve_args(&certs, &[]), reviewer).await;
        let stream = connect_tls(server.https, pki.client_config(rustls::ALL_VERSIONS))
            .await
            .unwrap();
        let mut conn = HttpConn::new(stream);
        let response = conn
            .post("/validate", br#"{"request":{"uid":"boom"}}"#)
            .await
            .unwrap();
        assert_json_error(&response, 500);
        // Same connection, and a large body that goes to the blocking pool.
        let large = format!(
            r#"{{"request":{{"uid":"boom","object":"{}"}}}}"#,
            "x".repeat(200 * 1024)
        );
        let response = conn.post("/validate", large.as_bytes()).await.unwrap();
        assert_json_error(&response, 500);
        let response = conn.post("/validate", GKE_REVIEW).await.unwrap();
        assert_eq!(response.status, 200);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviews_a_multi_megabyte_body_without_stalling_small_ones() {
    bounded(async {
        let pki = Arc::new(Pki::new());
        let certs = CertDir::with(&pki.server_leaf());
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;
        // 7 MiB: an object and an old object of 3.5 MiB each, the API server's worst case.
        let padding = "x".repeat(7 * 1024 * 1024);
        let large = format!(r#"{{"request":{{"uid":"large-1","object":{{"data":"{padding}"}}}}}}"#);
        let https = server.https;
        let big = {
            let pki = Arc::clone(&pki);
            tokio::spawn(async move { post_once(&pki, https, "/validate", large.as_bytes()).await })
        };
        for _ in 0..20 {
            let response = post_once(&pki, https, "/validate", GKE_REVIEW)
                .await
                .unwrap();
            assert_eq!(response.status, 200);
        }
        let response = big.await.unwrap().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["response"]["uid"], "large-1");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_keep_alive_connections_outlive_the_header_timeout_until_the_idle_timeout() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &["--header-timeout", "300ms"]);
        let server = TestServer::start_with(&args, Arc::new(NullReviewer), |server| {
            server.with_idle_timeout(Duration::from_millis(1200))
        })
        .await;
        let config = pki.client_config(rustls::ALL_VERSIONS);
        let mut conn = HttpConn::new(connect_tls(server.https, config).await.unwrap());
        assert_eq!(
            conn.post("/validate", GKE_REVIEW).await.unwrap().status,
            200
        );

        // Idle for twice the header timeout: the pooled connection is still usable.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            conn.post("/validate", GKE_REVIEW).await.unwrap().status,
            200
        );

        // A head started after an idle spell still gets only the header timeout.
        conn.stream
            .write_all(b"POST /validate HTTP/1.1\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        assert!(conn.closed_within(Duration::from_secs(2)).await);
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(900), "{waited:?}");

        // Idle past the idle timeout: closed by the server.
        let config = pki.client_config(rustls::ALL_VERSIONS);
        let mut conn = HttpConn::new(connect_tls(server.https, config).await.unwrap());
        assert_eq!(conn.post("/mutate", GKE_REVIEW).await.unwrap().status, 200);
        let started = Instant::now();
        assert!(conn.closed_within(Duration::from_secs(3)).await);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1100) && waited < Duration::from_millis(2000),
            "{waited:?}"
        );

        // Same after a request without a body (its answer is ready before hyper reads on).
        let config = pki.client_config(rustls::ALL_VERSIONS);
        let mut conn = HttpConn::new(connect_tls(server.https, config).await.unwrap());
        let wrong_method = conn.request("GET", "/validate", &[], b"").await.unwrap();
        assert_eq!(wrong_method.status, 405);
        let started = Instant::now();
        assert!(conn.closed_within(Duration::from_secs(5)).await);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(1100), "{waited:?}");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_answers_is_disconnected_after_the_write_timeout() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &[]);
        let write_timeout = Duration::from_millis(500);
        let server = TestServer::start_with(&args, Arc::new(NullReviewer), |server| {
            server.with_write_timeout(write_timeout)
        })
        .await;
        // A small receive window, so that the answers back up after a few of them.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(server.https).await.unwrap();
        let tls = tls_over(tcp, pki.client_config(rustls::ALL_VERSIONS))
            .await
            .unwrap();
        let (_unread, mut write) = tokio::io::split(tls);
        let json = [("content-type", "application/json")];
        let request = wire_request("POST", "/validate", &json, GKE_REVIEW);

        // Pipelined reviews, no answer read. The server's writes stall, it stops reading, our
        // writes stall in turn; after the write timeout it closes and they fail.
        let started = Instant::now();
        let mut sent = 0usize;
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                write.write_all(&request).await?;
                sent += 1;
            }
        })
        .await;
        let error: std::io::Error = match outcome {
            Ok(Err(error)) => error,
            Ok(Ok(())) => unreachable!("the loop only ends on an error"),
            Err(_) => {
                panic!("still connected 10 s after the answers stopped being read ({sent} sent)")
            }
        };
        assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{error}"
        );
        assert!(
            started.elapsed() >= write_timeout,
            "{:?}",
            started.elapsed()
        );
        assert!(
            sent > 1,
            "the server should have answered some reviews first: {sent}"
        );
        server.shutdown().await;
    })
    .await;
}

/// One async worker: a review the reviewer declines inline runs on the blocking pool, so a
/// second connection's review is answered while it sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_review_declined_inline_leaves_the_async_worker_free() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, &[]);
        let slow = Duration::from_millis(1500);
        let reviewer = Arc::new(TestReviewer {
            decline_inline_on: Some(("colin-coder", slow)),
            ..TestReviewer::default()
        });
        let server = TestServer::start(&args, reviewer).await;
        let config = pki.client_config(rustls::ALL_VERSIONS);
        let mut heavy = HttpConn::new(connect_tls(server.https, config.clone()).await.unwrap());
        let mut light = HttpConn::new(connect_tls(server.https, config).await.unwrap());

        let started = Instant::now();
        let heavy_answer = tokio::spawn(async move { heavy.post("/validate", GKE_REVIEW).await });
        // Let the heavy review reach the reviewer first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let other = String::from_utf8(GKE_REVIEW.to_vec())
            .unwrap()
            .replace("colin-coder", "other-coder");
        assert_ne!(other.as_bytes(), GKE_REVIEW);
        let answer = light.post("/validate", other.as_bytes()).await.unwrap();
        assert_eq!(answer.status, 200);
        let light_took = started.elapsed();
        assert!(
            light_took < slow,
            "waited behind the declined review: {light_took:?}"
        );

        let heavy_answer = heavy_answer.await.unwrap().unwrap();
        assert_eq!(heavy_answer.status, 200);
        assert_eq!(heavy_answer.json()["response"]["uid"], GKE_UID);
        assert!(started.elapsed() >= slow);
        server.shutdown().await;
    })
    .await;
}
