//! Fault tests: the real server running the real reviewer ([`Admission`] with a template in
//! its store), fed realistic Rollout reviews (the captured GKE envelope with a Rollout as the
//! object) over TLS on 127.0.0.1, then abused: slow and vanishing clients, idle connections,
//! bodies at and over the limit, hostile JSON, wrong methods and media types, TLS garbage,
//! certificate rotation and shutdown under load. After every case a normal review on a fresh
//! connection must still succeed, readiness must stay 200 and the in-flight gauge must go
//! back to 0.
//!
//! The tests take turns (one lock) so that the figures, memory included, are their own.
//! `cargo test --test faults -- --nocapture` prints them; `docs/faults.md` records a run.
//! Times are printed, never asserted beyond generous bounds.

#[path = "transport/support.rs"]
#[allow(dead_code)] // shared with the transport tests, which use helpers these do not
mod support;

use std::collections::HashSet;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollout_guard::admission::{Admission, Policy};
use rollout_guard::catalog::SharedStore;
use rollout_guard::cli::Mode;
use rollout_guard::guards::GuardSet;
use rollout_guard::model::AnalysisTemplate;
use rollout_guard::review::{Endpoint, NullReviewer, Reply, Reviewer};
use rollout_guard::templates::MemoryStore;
use rollout_guard::version::ControllerVersion;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use support::*;

// ---------------------------------------------------------------------------------------------
// Bounds and turn-taking

/// The tests take turns: figures (RSS, file descriptors, latencies) then describe one test,
/// and two shared cores are not split four ways.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The fault suite's bound; the lock is taken outside it.
const SUITE_BOUND: Duration = Duration::from_secs(45);

async fn within<T>(bound: Duration, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, test)
        .await
        .expect("test exceeded its time bound")
}

/// Generous bound for anything the API server would wait for (its default timeout is 10 s).
const ANSWER_BOUND: Duration = Duration::from_secs(10);
/// Generous margin on top of a server-side timeout before a close counts as missing.
const CLOSE_MARGIN: Duration = Duration::from_secs(5);

/// The `--header-timeout` of the fault server: small, so slow clients are cut quickly.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// `--max-body-bytes` of the fault server (the default, spelled out).
const MAX_BODY: usize = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Realistic reviews

mod reviews;

use reviews::{CONTROLLER, template_web};

/// The support module's dangerous Rollout with the hold guard switched on, so /mutate runs
/// the patch path too.
fn dangerous_rollout() -> Value {
    let mut rollout = reviews::dangerous_rollout();
    rollout["metadata"]["annotations"]["rollout-guard.io/guards"] = json!("hold");
    rollout
}

/// A Rollout CREATE review on the captured envelope, with its own uid.
fn review_of(uid: &str, object: Value) -> Value {
    let mut r = reviews::review("Rollout", "rollouts", None, "CREATE", &object, None);
    r["request"]["uid"] = json!(uid);
    r
}

fn next_uid() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "fa0175e5-0000-4000-8000-{:012}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn rollout_review(uid: &str) -> Vec<u8> {
    serde_json::to_vec(&review_of(uid, dangerous_rollout())).unwrap()
}

/// The reviewer `serve` builds: warn mode, default guards, one template in a synced store.
fn admission() -> Arc<Admission> {
    let mut store = MemoryStore::new();
    store.insert_template(serde_json::from_value::<AnalysisTemplate>(template_web()).unwrap());
    let version = ControllerVersion::DEFAULT;
    let policy = Policy {
        mode: Mode::Warn,
        version,
        guards: "auto".parse::<GuardSet>().unwrap().resolve(version),
        controller_user: CONTROLLER.into(),
    };
    Arc::new(Admission::new(policy, Arc::new(SharedStore::ready(store))))
}

/// A 200 AdmissionReview answering `uid`, allowed (warn mode never denies).
fn assert_answers(response: &Response, uid: &str, what: &str) -> Value {
    assert_eq!(response.status, 200, "{what}: {}", short(&response.text()));
    let body = response.json();
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1", "{what}");
    assert_eq!(body["kind"], "AdmissionReview", "{what}");
    assert_eq!(body["response"]["uid"], uid, "{what}: uid not echoed");
    assert_eq!(body["response"]["allowed"], true, "{what}");
    body
}

fn assert_json_error(response: &Response, status: u16, what: &str) -> String {
    assert_eq!(
        response.status,
        status,
        "{what}: {}",
        short(&response.text())
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    let error = response.json()["error"].as_str().map(str::to_owned);
    error.unwrap_or_else(|| panic!("{what}: no error message: {}", response.text()))
}

fn short(text: &str) -> String {
    let mut out: String = text.chars().take(90).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    // Printed inside a Markdown table cell and code span.
    out.replace('|', "/").replace('`', "'")
}

/// What the answer body says, shortly: the first warning, the patch, or the error.
fn gist(response: &Response) -> String {
    let body = response.json();
    if let Some(error) = body["error"].as_str() {
        return format!("`{}`", short(error));
    }
    let r = &body["response"];
    let mut parts = vec![format!("allowed={}", r["allowed"])];
    if r["patch"].is_string() {
        parts.push("patch".into());
    }
    if let Some(w) = r["warnings"].as_array().and_then(|w| w.first()) {
        parts.push(format!(
            "warning `{}`",
            short(w.as_str().unwrap_or_default())
        ));
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------------
// The server under test

struct Harness {
    pki: Arc<Pki>,
    certs: CertDir,
    server: TestServer,
}

impl Harness {
    async fn start(extra: &[&str]) -> Self {
        Self::start_with(extra, admission(), Duration::ZERO).await
    }

    async fn start_with(extra: &[&str], reviewer: Arc<dyn Reviewer>, delay: Duration) -> Self {
        let pki = Arc::new(Pki::new());
        let certs = CertDir::with(&pki.server_leaf());
        let args = serve_args(&certs, extra);
        let server =
            TestServer::start_with(&args, reviewer, |server| server.with_shutdown_delay(delay))
                .await;
        Self { pki, certs, server }
    }

    fn https(&self) -> SocketAddr {
        self.server.https
    }

    fn config(&self) -> rustls::ClientConfig {
        self.pki.client_config(rustls::ALL_VERSIONS)
    }

    async fn connect(&self) -> TlsStream<TcpStream> {
        connect_tls(self.https(), self.config()).await.unwrap()
    }

    /// A normal review on a fresh connection; returns how long it took.
    async fn review(&self, what: &str) -> Duration {
        let uid = next_uid();
        let started = Instant::now();
        let response = post_once(
            &self.pki,
            self.https(),
            "/validate?timeout=10s",
            &rollout_review(&uid),
        )
        .await
        .unwrap_or_else(|e| panic!("{what}: normal review failed: {e}"));
        let took = started.elapsed();
        let body = assert_answers(&response, &uid, what);
        assert!(
            body["response"]["warnings"][0]
                .as_str()
                .is_some_and(|w| w.starts_with("inconclusive-timed-pause")),
            "{what}: the real reviewer did not warn: {body}"
        );
        took
    }

    async fn metrics(&self) -> String {
        admin_get(self.server.admin, "/metrics").await.text()
    }

    /// Waits for the in-flight gauge to read 0 (the server notices a vanished client only
    /// when it next reads or writes); returns how long that took.
    async fn inflight_settles(&self, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            let metrics = self.metrics().await;
            if metric(&metrics, "rollout_guard_inflight_reviews ") == 0.0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < CLOSE_MARGIN,
                "{what}: in-flight reviews never went back to 0:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The server is healthy: a normal review on a fresh connection succeeds, readiness is
    /// 200 and nothing is left in flight.
    async fn assert_healthy(&self, what: &str) {
        self.review(what).await;
        let readyz = admin_get(self.server.admin, "/readyz").await;
        assert_eq!(readyz.status, 200, "{what}: not ready: {}", readyz.text());
        self.inflight_settles(what).await;
    }
}

/// One line of the figures table.
struct Row {
    case: String,
    answer: String,
    took: Duration,
}

fn row(rows: &mut Vec<Row>, case: impl Into<String>, answer: impl Into<String>, took: Duration) {
    rows.push(Row {
        case: case.into(),
        answer: answer.into(),
        took,
    });
}

fn print_rows(title: &str, rows: &[Row]) {
    let mut out = format!(
        "\n## {title}\n\n| case | observed answer | time | healthy after |\n|---|---|---|---|\n"
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} ms | yes |\n",
            r.case,
            r.answer,
            r.took.as_secs_f64() * 1e3
        ));
    }
    println!("{out}");
}

// ---------------------------------------------------------------------------------------------
// Wire helpers

fn head(path: &str, extra: &[(&str, &str)]) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: localhost\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

fn json_head(path: &str, length: usize) -> String {
    head(
        path,
        &[
            ("content-type", "application/json"),
            ("content-length", &length.to_string()),
        ],
    )
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut wire = Vec::with_capacity(body.len() + body.len() / chunk * 16 + 16);
    for piece in body.chunks(chunk) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

/// How a request is framed on the wire.
#[derive(Clone, Copy)]
enum Framing {
    Length,
    Chunked,
}

/// Sends `body` to `path` on a fresh TLS connection while reading the answer, as Go's
/// transport does: a server that answers early (413) is heard even if it stops reading.
async fn exchange(
    h: &Harness,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    framing: Framing,
) -> (Response, Duration) {
    let mut headers = Vec::new();
    if let Some(ct) = content_type {
        headers.push(("content-type", ct.to_owned()));
    }
    let wire_body = match framing {
        Framing::Length => {
            headers.push(("content-length", body.len().to_string()));
            body
        }
        Framing::Chunked => {
            headers.push(("transfer-encoding", "chunked".to_owned()));
            chunked(&body, 64 * 1024)
        }
    };
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mut wire = head(path, &headers).into_bytes();
    wire.extend_from_slice(&wire_body);
    drop(wire_body);

    let stream = h.connect().await;
    let started = Instant::now();
    let (read, mut write) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        // The server may answer and close before the body is through (413): not an error.
        let _ = write.write_all(&wire).await;
        let _ = write.flush().await;
        write
    });
    let mut reader = HttpConn::new(read);
    let response = tokio::time::timeout(ANSWER_BOUND, reader.read_response())
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within {ANSWER_BOUND:?}"))
        .unwrap_or_else(|e| panic!("{path}: connection failed before an answer: {e}"));
    let took = started.elapsed();
    writer.abort();
    (response, took)
}

/// Reads until the peer closes (EOF or reset); `None` if it is still open after `within`.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, within: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Writes `bytes` one at a time, `pace` apart, until the peer closes; returns the bytes sent
/// by then, or `None` if the connection is still open once `limit` has passed.
async fn trickle_until_closed<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    pace: Duration,
    limit: Duration,
) -> Option<usize> {
    let started = Instant::now();
    let mut byte = [0u8; 1];
    for (sent, b) in bytes.iter().enumerate() {
        if stream.write_all(&[*b]).await.is_err() || stream.flush().await.is_err() {
            return Some(sent);
        }
        match tokio::time::timeout(pace, stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => return Some(sent + 1),
            Ok(Ok(_)) => panic!("the server answered a request head that never ended"),
            Err(_) => {}
        }
        if started.elapsed() > limit {
            return None;
        }
    }
    panic!("trickled the whole head without being cut off")
}

fn client_hello(h: &Harness) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        Arc::new(h.config()),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn status_field(name: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

// ---------------------------------------------------------------------------------------------
// Cases 1-7 and 10: one server, one case after the other, then the memory figures

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_leave_the_server_answering_with_bounded_memory() {
    let _turn = SERIAL.lock().await;
    within(SUITE_BOUND, async {
        let header_timeout = format!("{}s", HEADER_TIMEOUT.as_secs());
        let max_body = MAX_BODY.to_string();
        let h = Harness::start(&[
            "--header-timeout",
            &header_timeout,
            "--max-body-bytes",
            &max_body,
        ])
        .await;
        // Warm up (lazy statics, the first handshake) before the memory baseline.
        h.assert_healthy("warm-up").await;
        let rss_start = status_field("VmRSS:").unwrap_or(0);
        // glibc keeps freed multi-MiB buffers (it raises its mmap threshold after the first
        // one is freed, and each thread has its own arena): measured here, RSS climbs by
        // 70-110 MiB over the first passes of the large bodies and then levels off, while with
        // MALLOC_MMAP_THRESHOLD_=131072 it stays within 10 MiB of the start. One pass of the
        // large-body cases first, so that the bound below measures growth, not that retention.
        bodies_at_the_limit(&h, &mut Vec::new()).await;
        hostile_json(&h, &mut Vec::new()).await;
        let rss_before = status_field("VmRSS:").unwrap_or(0);

        let mut rows = Vec::new();
        slow_clients(&h, &mut rows).await;
        dropped_connections(&h, &mut rows).await;
        idle_connections(&mut rows).await;
        bodies_at_the_limit(&h, &mut rows).await;
        hostile_json(&h, &mut rows).await;
        wrong_requests(&h, &mut rows).await;
        tls_garbage(&h, &mut rows).await;
        print_rows(
            "Fault cases (one server, --header-timeout 1s, --max-body-bytes 8388608)",
            &rows,
        );

        // Case 10: memory stays bounded once the clients are gone.
        h.assert_healthy("after all fault cases").await;
        let rss_after = status_field("VmRSS:").unwrap_or(0);
        let peak = status_field("VmHWM:").unwrap_or(0);
        println!(
            "\n## Memory\n\n| VmRSS at start | after one pass of the large bodies | after all \
             fault cases | peak (VmHWM) |\n|---|---|---|---|\n| {} MiB | {} MiB | {} MiB | {} MiB |\n",
            rss_start / 1024,
            rss_before / 1024,
            rss_after / 1024,
            peak / 1024
        );
        assert!(
            rss_after < rss_before + 100 * 1024,
            "RSS grew from {rss_before} kB to {rss_after} kB"
        );
        let metrics = h.metrics().await;
        assert_eq!(metric(&metrics, "rollout_guard_inflight_reviews "), 0.0);
        h.server.shutdown().await;
    })
    .await;
}

/// Case 1: slow heads are cut at `--header-timeout`; slow bodies are bounded by the review
/// deadline, not the header timeout, and never stall other clients.
async fn slow_clients(h: &Harness, rows: &mut Vec<Row>) {
    let uid = next_uid();
    let body = rollout_review(&uid);

    // A head trickled one byte per 100 ms (10 B/s): cut at the header timeout.
    let mut stream = h.connect().await;
    let started = Instant::now();
    let long_head = head(
        "/validate?timeout=10s",
        &[
            ("content-type", "application/json"),
            ("content-length", &body.len().to_string()),
            ("user-agent", "kube-apiserver-admission"),
            ("accept", "application/json, */*"),
        ],
    );
    let sent = trickle_until_closed(
        &mut stream,
        long_head.as_bytes(),
        Duration::from_millis(100),
        HEADER_TIMEOUT + CLOSE_MARGIN,
    )
    .await
    .expect("a head trickled past the header timeout was never cut off");
    let took = started.elapsed();
    h.assert_healthy("slow head").await;
    row(
        rows,
        "head trickled 1 byte / 100 ms past `--header-timeout 1s`",
        format!(
            "closed, no answer, after {sent} of {} head bytes",
            long_head.len()
        ),
        took,
    );

    // A body trickled within the deadline (1.5 s, past the header timeout): answered.
    let mut stream = h.connect().await;
    let started = Instant::now();
    stream
        .write_all(json_head("/validate?timeout=10s", body.len()).as_bytes())
        .await
        .unwrap();
    for piece in body.chunks(body.len().div_ceil(20)) {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(75)).await;
    }
    let mut conn = HttpConn::new(stream);
    let response = tokio::time::timeout(ANSWER_BOUND, conn.read_response())
        .await
        .expect("no answer to a slow body")
        .unwrap();
    let took = started.elapsed();
    assert_answers(&response, &uid, "body trickled within the deadline");
    h.assert_healthy("slow body within the deadline").await;
    row(
        rows,
        "body trickled in 20 pieces over 1.5 s, `?timeout=10s`",
        format!("{} AdmissionReview ({})", response.status, gist(&response)),
        took,
    );

    // A body trickled past its deadline (`?timeout=1s`, 900 ms budget, 4 s of body): 408,
    // and other clients are answered meanwhile.
    let uid = next_uid();
    let body = rollout_review(&uid);
    let stream = h.connect().await;
    let started = Instant::now();
    let (read, mut write) = tokio::io::split(stream);
    let wire_head = json_head("/validate?timeout=1s", body.len());
    let trickler = tokio::spawn(async move {
        let _ = write.write_all(wire_head.as_bytes()).await;
        for piece in body.chunks(body.len().div_ceil(40)) {
            if write.write_all(piece).await.is_err() || write.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = h.review("another client while a body trickles").await;
    let mut reader = HttpConn::new(read);
    let response = tokio::time::timeout(ANSWER_BOUND, reader.read_response())
        .await
        .expect("no answer to a body past its deadline")
        .unwrap();
    let took = started.elapsed();
    let error = assert_json_error(&response, 408, "body past its deadline");
    let closed = closed_within(&mut reader.stream, CLOSE_MARGIN)
        .await
        .is_some();
    trickler.abort();
    h.assert_healthy("slow body past the deadline").await;
    row(
        rows,
        "body trickled over 4 s, `?timeout=1s` (900 ms budget)",
        format!(
            "408 `{error}`; connection {}; a normal review meanwhile took {:.0} ms",
            if closed { "then closed" } else { "kept open" },
            other.as_secs_f64() * 1e3
        ),
        took,
    );
}

/// Case 2: clients that vanish mid-request cost nothing: no panic, the gauge returns to 0.
async fn dropped_connections(h: &Harness, rows: &mut Vec<Row>) {
    const TIMES: usize = 25;
    let large_uid = next_uid();
    let mut large = review_of(&large_uid, dangerous_rollout());
    large["request"]["object"]["metadata"]["annotations"]["filler"] = json!("x".repeat(1 << 20));
    let large = serde_json::to_vec(&large).unwrap();

    let small = rollout_review(&next_uid());
    let small_head = json_head("/validate?timeout=10s", small.len());
    let cut = |head: &str, body: &[u8], head_part: usize, body_part: usize| {
        let mut wire = head.as_bytes()[..head_part].to_vec();
        wire.extend_from_slice(&body[..body_part]);
        wire
    };
    let large_head = json_head("/mutate?timeout=10s", large.len());
    let variants: [(&str, Vec<u8>); 4] = [
        (
            "half the head",
            cut(&small_head, &small, small_head.len() / 2, 0),
        ),
        (
            "the head and half the body",
            cut(&small_head, &small, small_head.len(), small.len() / 2),
        ),
        (
            "the whole request, before reading the answer",
            cut(&small_head, &small, small_head.len(), small.len()),
        ),
        (
            "a whole 1 MiB /mutate request (blocking pool), before reading the answer",
            cut(&large_head, &large, large_head.len(), large.len()),
        ),
    ];
    for (what, wire) in variants {
        let started = Instant::now();
        for _ in 0..TIMES {
            let mut stream = h.connect().await;
            stream.write_all(&wire).await.unwrap();
            stream.flush().await.unwrap();
            drop(stream);
        }
        let settled = h.inflight_settles(what).await;
        let took = started.elapsed();
        h.assert_healthy(what).await;
        row(
            rows,
            format!("{TIMES} connections dropped after {what}"),
            format!(
                "no panic; `rollout_guard_inflight_reviews 0` {:.0} ms after the last drop",
                settled.as_secs_f64() * 1e3
            ),
            took,
        );
    }
}

/// Case 3: hundreds of idle connections (before and after the handshake) do not slow a
/// normal review. Its own server: the fault server's 1 s header timeout would cut them.
async fn idle_connections(rows: &mut Vec<Row>) {
    const RAW: usize = 150;
    const TLS: usize = 150;
    let h = Harness::start(&["--header-timeout", "20s"]).await;
    h.assert_healthy("idle server").await;
    let fds_before = open_fds();

    let started = Instant::now();
    let mut raw = Vec::with_capacity(RAW);
    for _ in 0..RAW {
        raw.push(TcpStream::connect(h.https()).await.unwrap());
    }
    let mut tls = Vec::with_capacity(TLS);
    for _ in 0..TLS {
        tls.push(h.connect().await);
    }
    let opened = started.elapsed();
    let fds_open = open_fds();

    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        slowest = slowest.max(
            h.review(&format!("review {i} among idle connections"))
                .await,
        );
    }
    // The idle connections are all still there: none was cut to make room.
    for (i, stream) in tls.iter_mut().enumerate().step_by(15) {
        let mut conn = HttpConn::new(stream);
        let uid = next_uid();
        let response = conn
            .post("/validate?timeout=10s", &rollout_review(&uid))
            .await
            .unwrap_or_else(|e| panic!("idle connection {i} was closed: {e}"));
        assert_answers(&response, &uid, "late request on an idle connection");
    }
    drop(raw);
    drop(tls);
    let closing = Instant::now();
    let fds_after = loop {
        let fds = open_fds();
        if fds <= fds_before + 10 || closing.elapsed() > CLOSE_MARGIN {
            break fds;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        fds_after <= fds_before + 10,
        "file descriptors not released: {fds_before} before, {fds_after} after"
    );
    h.assert_healthy("after idle connections closed").await;
    h.server.shutdown().await;
    row(
        rows,
        format!(
            "{RAW} TCP connections sending nothing + {TLS} TLS connections idle after the \
             handshake (opened in {:.0} ms)",
            opened.as_secs_f64() * 1e3
        ),
        format!(
            "10 normal reviews on fresh connections all 200, slowest shown; 10 idle TLS \
             connections still served; open fds {fds_before} → {fds_open} → {fds_after} after close"
        ),
        slowest,
    );
}

/// A review whose total size is exactly `size`, padded with an annotation.
fn review_of_size(uid: &str, size: usize) -> Vec<u8> {
    let mut rollout = dangerous_rollout();
    rollout["metadata"]["annotations"]["filler"] = json!("");
    let base = serde_json::to_vec(&review_of(uid, rollout.clone()))
        .unwrap()
        .len();
    rollout["metadata"]["annotations"]["filler"] = json!("x".repeat(size - base));
    let body = serde_json::to_vec(&review_of(uid, rollout)).unwrap();
    assert_eq!(body.len(), size);
    body
}

/// Case 4: bodies of exactly `--max-body-bytes` are read and reviewed; one byte more is 413,
/// whether announced by Content-Length or found while streaming chunks.
async fn bodies_at_the_limit(h: &Harness, rows: &mut Vec<Row>) {
    for framing in [Framing::Length, Framing::Chunked] {
        let name = match framing {
            Framing::Length => "Content-Length",
            Framing::Chunked => "chunked",
        };
        let uid = next_uid();
        let body = review_of_size(&uid, MAX_BODY);
        let (response, took) = exchange(
            h,
            "/validate?timeout=10s",
            Some("application/json"),
            body,
            framing,
        )
        .await;
        assert_answers(&response, &uid, "review at the limit");
        h.assert_healthy("review at the limit").await;
        row(
            rows,
            format!("review of exactly 8 MiB ({name})"),
            format!("200 AdmissionReview ({})", gist(&response)),
            took,
        );

        let mut not_a_review = format!("{{\"hello\":\"{}\"}}", "y".repeat(MAX_BODY)).into_bytes();
        not_a_review.truncate(MAX_BODY - 2);
        not_a_review.extend_from_slice(b"\"}");
        let (response, took) = exchange(
            h,
            "/validate?timeout=10s",
            Some("application/json"),
            not_a_review,
            framing,
        )
        .await;
        let error = assert_json_error(&response, 400, "non-review at the limit");
        h.assert_healthy("non-review at the limit").await;
        row(
            rows,
            format!("JSON that is no review, exactly 8 MiB ({name})"),
            format!("400 `{}`", short(&error)),
            took,
        );

        let uid = next_uid();
        let body = review_of_size(&uid, MAX_BODY + 1);
        let (response, took) = exchange(
            h,
            "/validate?timeout=10s",
            Some("application/json"),
            body,
            framing,
        )
        .await;
        let error = assert_json_error(&response, 413, "one byte over the limit");
        h.assert_healthy("one byte over the limit").await;
        row(
            rows,
            format!("review of 8 MiB + 1 byte ({name}, body sent while reading)"),
            format!("413 `{error}`"),
            took,
        );
    }
}

/// A body to send: (case, path, body, expected status, uid when the answer is a review).
type JsonCase = (String, &'static str, Vec<u8>, u16, Option<String>);

/// Case 5: hostile JSON is answered within the deadline, 400 or 200 with an AdmissionReview.
async fn hostile_json(h: &Harness, rows: &mut Vec<Row>) {
    const DEPTH: usize = 100_000;
    let mut cases: Vec<JsonCase> = Vec::new();
    cases.push((
        format!("{DEPTH} `[` and nothing else"),
        "/validate?timeout=10s",
        "[".repeat(DEPTH).into_bytes(),
        400,
        None,
    ));
    for (field, path) in [
        ("spec", "/validate?timeout=10s"),
        ("spec", "/mutate?timeout=10s"),
        ("x-unknown", "/validate?timeout=10s"),
        ("x-unknown", "/mutate?timeout=10s"),
    ] {
        let uid = next_uid();
        let mut rollout = dangerous_rollout();
        rollout[field] = json!("@@DEEP@@");
        let text = serde_json::to_string(&review_of(&uid, rollout)).unwrap();
        let deep = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
        let body = text.replace("\"@@DEEP@@\"", &deep).into_bytes();
        cases.push((
            format!(
                "Rollout review with {DEPTH}-deep nested arrays as `{field}` ({})",
                path.split('?').next().unwrap()
            ),
            path,
            body,
            200,
            Some(uid),
        ));
    }
    for path in ["/validate?timeout=10s", "/mutate?timeout=10s"] {
        let uid = next_uid();
        let mut rollout = dangerous_rollout();
        rollout["metadata"]["annotations"]["giant"] = json!("g".repeat(6 << 20));
        let body = serde_json::to_vec(&review_of(&uid, rollout)).unwrap();
        cases.push((
            format!(
                "6 MiB Rollout review (one giant annotation) ({})",
                path.split('?').next().unwrap()
            ),
            path,
            body,
            200,
            Some(uid),
        ));
    }
    for field in ["replicas", "x-unknown"] {
        let uid = next_uid();
        let mut rollout = dangerous_rollout();
        rollout["spec"][field] = json!("@@NUMBER@@");
        let text = serde_json::to_string(&review_of(&uid, rollout)).unwrap();
        let digits: String = (0..10_000)
            .map(|i| char::from(b'1' + (i % 9) as u8))
            .collect();
        let body = text.replace("\"@@NUMBER@@\"", &digits).into_bytes();
        cases.push((
            format!("a 10 000-digit number as `spec.{field}`"),
            "/validate?timeout=10s",
            body,
            200,
            Some(uid),
        ));
    }
    for (where_, marker) in [("an annotation", "payments"), ("the uid", "fa0175e5")] {
        let uid = next_uid();
        let text = String::from_utf8(rollout_review(&uid)).unwrap();
        let at = text.find(marker).unwrap();
        let mut body = text.into_bytes();
        body[at] = 0xff;
        body[at + 1] = 0xfe;
        cases.push((
            format!("invalid UTF-8 (0xff 0xfe) in {where_}"),
            "/validate?timeout=10s",
            body,
            400,
            None,
        ));
    }

    for (case, path, body, expected, uid) in cases {
        let (response, took) =
            exchange(h, path, Some("application/json"), body, Framing::Length).await;
        assert!(took < ANSWER_BOUND, "{case}: answered after {took:?}");
        let answer = match &uid {
            Some(uid) => {
                assert_answers(&response, uid, &case);
                format!("200 AdmissionReview ({})", gist(&response))
            }
            None => format!(
                "{} {}",
                response.status,
                gist_error(&response, expected, &case)
            ),
        };
        assert_eq!(response.status, expected, "{case}");
        h.assert_healthy(&case).await;
        row(rows, case, answer, took);
    }
}

fn gist_error(response: &Response, status: u16, what: &str) -> String {
    format!("`{}`", short(&assert_json_error(response, status, what)))
}

/// A request to send: (case, method, path, headers, expected status).
type RequestCase = (
    String,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    u16,
);

/// Case 6: wrong media types, methods and paths get their JSON error.
async fn wrong_requests(h: &Harness, rows: &mut Vec<Row>) {
    let uid = next_uid();
    let body = rollout_review(&uid);
    let mut cases: Vec<RequestCase> = Vec::new();
    for ct in [
        Some("text/plain"),
        None,
        Some("multipart/form-data; boundary=x"),
        Some("application/yaml"),
    ] {
        let headers = ct.map(|ct| vec![("content-type", ct)]).unwrap_or_default();
        cases.push((
            format!("POST /validate with {}", ct.unwrap_or("no content-type")),
            "POST",
            "/validate",
            headers,
            415,
        ));
    }
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        cases.push((
            format!("{method} /validate"),
            method,
            "/validate",
            vec![("content-type", "application/json")],
            405,
        ));
    }
    cases.push((
        "GET /mutate".into(),
        "GET",
        "/mutate",
        vec![("content-type", "application/json")],
        405,
    ));
    for path in ["/", "/validate/x", "/VALIDATE", "/metrics", "/readyz"] {
        cases.push((
            format!("POST {path}"),
            "POST",
            path,
            vec![("content-type", "application/json")],
            404,
        ));
    }
    for (case, method, path, headers, expected) in cases {
        let mut conn = HttpConn::new(h.connect().await);
        let started = Instant::now();
        let response = conn.request(method, path, &headers, &body).await.unwrap();
        let took = started.elapsed();
        let error = assert_json_error(&response, expected, &case);
        if expected == 405 {
            assert_eq!(response.header("allow"), Some("POST"), "{case}");
        }
        // The same connection still serves a normal review.
        let uid = next_uid();
        let again = conn
            .post("/validate?timeout=10s", &rollout_review(&uid))
            .await
            .unwrap();
        assert_answers(&again, &uid, &case);
        h.assert_healthy(&case).await;
        row(
            rows,
            case,
            format!("{expected} `{error}`; same connection then serves a review"),
            took,
        );
    }
}

/// Case 7: bytes that are not TLS (or not all of it) close the connection, nothing more.
async fn tls_garbage(h: &Harness, rows: &mut Vec<Row>) {
    let hello = client_hello(h);
    let plaintext = {
        let body = rollout_review(&next_uid());
        let mut wire = json_head("/validate?timeout=10s", body.len()).into_bytes();
        wire.extend_from_slice(&body);
        wire
    };
    let cases: [(&str, Vec<u8>, bool); 5] = [
        (
            "16 KiB of random bytes instead of a ClientHello",
            pseudo_random(16 * 1024, 0x9e37_79b9_7f4a_7c15),
            false,
        ),
        (
            "a plaintext HTTP review sent to the HTTPS port",
            plaintext,
            false,
        ),
        (
            "a ClientHello record header announcing 16 KiB, then 5 bytes",
            vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, 0x03],
            false,
        ),
        (
            "half a ClientHello, then silence",
            hello[..hello.len() / 2].to_vec(),
            false,
        ),
        (
            "half a ClientHello, then the client half-closes",
            hello[..hello.len() / 2].to_vec(),
            true,
        ),
    ];
    for (case, bytes, half_close) in cases {
        let mut tcp = TcpStream::connect(h.https()).await.unwrap();
        let started = Instant::now();
        let _ = tcp.write_all(&bytes).await;
        if half_close {
            tcp.shutdown().await.unwrap();
        }
        let got = closed_within(&mut tcp, HEADER_TIMEOUT + CLOSE_MARGIN)
            .await
            .unwrap_or_else(|| panic!("{case}: connection still open"));
        let took = started.elapsed();
        h.assert_healthy(case).await;
        let answer = match got.as_slice() {
            [] => "closed, nothing sent back".to_owned(),
            [0x15, _, _, _, _, _, description, ..] => {
                format!("TLS alert {description} sent, then closed")
            }
            other => format!("{} bytes sent back, then closed", other.len()),
        };
        row(rows, case, answer, took);
    }
}

// ---------------------------------------------------------------------------------------------
// Case 8: certificate rotation under load

/// The leaf certificate a fresh handshake is served.
async fn served_leaf(pki: &Pki, addr: SocketAddr) -> CertificateDer<'static> {
    let stream = connect_tls(addr, pki.client_config(rustls::ALL_VERSIONS))
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[derive(Default)]
struct Load {
    ok: AtomicUsize,
    failed: Mutex<Vec<String>>,
    connections: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificate_rotation_under_load_fails_no_review() {
    let _turn = SERIAL.lock().await;
    within(SUITE_BOUND, async {
        const CLIENTS: usize = 4;
        const RUN: Duration = Duration::from_secs(2);
        let mut h = Harness::start(&[]).await;
        let https = h.https();
        let leaves = [h.pki.server_leaf(), h.pki.server_leaf()];
        h.assert_healthy("before rotation").await;

        let stop = Arc::new(AtomicBool::new(false));
        let load = Arc::new(Load::default());
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (pki, stop, load) = (h.pki.clone(), stop.clone(), load.clone());
            // Client 0 keeps one connection throughout, client 1 opens one per review, the
            // others reconnect every 3 and 7 reviews: pooled and fresh handshakes mixed.
            let reuse = [usize::MAX, 1, 3, 7][client];
            clients.push(tokio::spawn(async move {
                let mut conn = None;
                let mut used = 0;
                while !stop.load(Ordering::SeqCst) {
                    if conn.is_none() || used == reuse {
                        let config = pki.client_config(rustls::ALL_VERSIONS);
                        match connect_tls(https, config).await {
                            Ok(stream) => conn = Some(HttpConn::new(stream)),
                            Err(e) => {
                                load.failed.lock().unwrap().push(format!("connect: {e}"));
                                conn = None;
                                continue;
                            }
                        }
                        load.connections.fetch_add(1, Ordering::SeqCst);
                        used = 0;
                    }
                    used += 1;
                    let uid = next_uid();
                    let path = if uid.ends_with(['0', '2', '4', '6', '8']) {
                        "/validate?timeout=10s"
                    } else {
                        "/mutate?timeout=10s"
                    };
                    let result = conn
                        .as_mut()
                        .unwrap()
                        .post(path, &rollout_review(&uid))
                        .await;
                    match result {
                        Ok(r) if r.status == 200 && r.json()["response"]["uid"] == uid.as_str() => {
                            load.ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => load
                            .failed
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", r.status, short(&r.text()))),
                        Err(e) => {
                            load.failed.lock().unwrap().push(format!("{path}: {e}"));
                            conn = None;
                        }
                    }
                }
            }));
        }

        let started = Instant::now();
        let mut swaps = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            tokio::time::sleep_until((started + RUN * (i as u32 + 1) / 3).into()).await;
            let before = load.ok.load(Ordering::SeqCst);
            h.certs.swap(leaf);
            let swapped = Instant::now();
            while served_leaf(&h.pki, https).await != leaf.cert_der {
                assert!(
                    swapped.elapsed() < CLOSE_MARGIN,
                    "rotation {}: the new certificate was never served",
                    i + 1
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            swaps.push((swapped.elapsed(), before));
        }
        tokio::time::sleep_until((started + RUN).into()).await;
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.unwrap();
        }
        let ran = started.elapsed();

        let failed = load.failed.lock().unwrap().clone();
        assert!(failed.is_empty(), "failed reviews: {failed:?}");
        let ok = load.ok.load(Ordering::SeqCst);
        assert!(ok > 0, "no review ran");
        for _ in 0..5 {
            assert_eq!(served_leaf(&h.pki, https).await, leaves[1].cert_der);
        }
        let metrics = h.metrics().await;
        assert_eq!(metric(&metrics, "rollout_guard_tls_reloads_total "), 2.0);
        h.assert_healthy("after rotation").await;
        h.server.shutdown().await;

        let mut out = format!(
            "\n## Rotation under load\n\n{CLIENTS} clients for {:.1} s (one keep-alive \
             connection; one connection per review; reconnect every 3 and every 7 reviews), \
             /validate and /mutate of a Rollout review, two kubelet-style symlink swaps, \
             `--tls-reload-interval 100ms`.\n\n\
             | figure | value |\n|---|---|\n\
             | reviews answered 200 | {ok} |\n| failed reviews | 0 |\n\
             | TLS connections opened by the clients | {} |\n",
            ran.as_secs_f64(),
            load.connections.load(Ordering::SeqCst)
        );
        for (i, (took, before)) in swaps.iter().enumerate() {
            out.push_str(&format!(
                "| swap {}: new certificate on fresh handshakes after | {:.0} ms (swap after {before} reviews) |\n",
                i + 1,
                took.as_secs_f64() * 1e3
            ));
        }
        println!("{out}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Case 9: shutdown while reviews are in flight

/// The real reviewer, with every third review held 200 ms (as a slow review would be) so
/// that shutdown always finds some in flight. It records which uids reached it.
struct SlowSome {
    inner: Arc<Admission>,
    calls: AtomicUsize,
    inflight: AtomicUsize,
    reached: Mutex<HashSet<String>>,
}

impl Reviewer for SlowSome {
    fn review(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        let uid = NullReviewer::find_uid(body).map(|u| String::from_utf8_lossy(u).into_owned());
        self.reached.lock().unwrap().insert(uid.unwrap_or_default());
        self.inflight.fetch_add(1, Ordering::SeqCst);
        if self.calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(3) {
            std::thread::sleep(Duration::from_millis(200));
        }
        let reply = self.inner.review(endpoint, body);
        self.inflight.fetch_sub(1, Ordering::SeqCst);
        reply
    }

    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        self.inner.overloaded(endpoint, body)
    }

    fn ready(&self) -> bool {
        self.inner.ready()
    }

    fn cache_sizes(&self) -> Vec<(&'static str, usize)> {
        self.inner.cache_sizes()
    }
}

#[derive(Default)]
struct Drain {
    answered: Mutex<HashSet<String>>,
    wrong: Mutex<Vec<String>>,
    /// Requests written on a pooled keep-alive connection (one that had served a review) that
    /// the server closed without an answer.
    unread_pooled: Mutex<Vec<String>>,
    /// The same on a fresh connection (accepted, handshake done, closed by the drain before
    /// its first request was read).
    unread_fresh: Mutex<Vec<String>>,
    refused: AtomicUsize,
    handshake_failed: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn shutdown_under_load_answers_every_accepted_review() {
    let _turn = SERIAL.lock().await;
    within(SUITE_BOUND, async {
        const CLIENTS: usize = 6;
        const DELAY: Duration = Duration::from_millis(1500);
        const LOAD: &str = "load-";
        let reviewer = Arc::new(SlowSome {
            inner: admission(),
            calls: AtomicUsize::new(0),
            inflight: AtomicUsize::new(0),
            reached: Mutex::new(HashSet::new()),
        });
        let mut h = Harness::start_with(&["--shutdown-timeout", "5s"], reviewer.clone(), DELAY).await;
        let https = h.https();
        h.assert_healthy("before shutdown").await;

        let drain = Arc::new(Drain::default());
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let (pki, drain) = (h.pki.clone(), drain.clone());
            // Even clients keep their connection; odd ones open one per review.
            let keep_alive = client % 2 == 0;
            clients.push(tokio::spawn(async move {
                let mut conn: Option<HttpConn<TlsStream<TcpStream>>> = None;
                let mut pooled = false;
                loop {
                    if conn.is_none() {
                        pooled = false;
                        let config = pki.client_config(rustls::ALL_VERSIONS);
                        match connect_tls(https, config).await {
                            Ok(stream) => conn = Some(HttpConn::new(stream)),
                            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                                drain.refused.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                            Err(_) => {
                                // Accepted by the kernel, never by the server (the listener
                                // closed with it in the backlog): try again.
                                drain.handshake_failed.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                        }
                    }
                    let uid = format!("{LOAD}{}", next_uid());
                    let result = conn
                        .as_mut()
                        .unwrap()
                        .post("/validate?timeout=10s", &rollout_review(&uid))
                        .await;
                    match result {
                        Ok(r) if r.status == 200 && r.json()["response"]["uid"] == uid.as_str() => {
                            drain.answered.lock().unwrap().insert(uid);
                            pooled = true;
                            if !keep_alive || r.header("connection") == Some("close") {
                                conn = None;
                            }
                        }
                        Ok(r) => {
                            drain
                                .wrong
                                .lock()
                                .unwrap()
                                .push(format!("{uid}: {} {}", r.status, short(&r.text())));
                            conn = None;
                        }
                        Err(_) => {
                            let unread = if pooled {
                                &drain.unread_pooled
                            } else {
                                &drain.unread_fresh
                            };
                            unread.lock().unwrap().push(uid);
                            conn = None;
                        }
                    }
                }
            }));
        }

        // Let the load run, then ask for shutdown while reviews are in flight.
        tokio::time::sleep(Duration::from_millis(600)).await;
        while reviewer.inflight.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let inflight_at_signal = reviewer.inflight.load(Ordering::SeqCst);
        let answered_at_signal = drain.answered.lock().unwrap().len();
        h.server.begin_shutdown();
        let signalled = Instant::now();

        // Readiness goes off first...
        loop {
            let readyz = admin_get(h.server.admin, "/readyz").await;
            if readyz.status == 503 {
                assert_eq!(readyz.text(), "shutting down");
                break;
            }
            assert!(signalled.elapsed() < DELAY, "still ready during the delay");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let unready_after = signalled.elapsed();
        // ...while the listener still takes new connections and answers them: once it is
        // closed a connection is refused (or reset from the backlog), so an answer at all
        // proves the order, however slow the machine.
        let probe = h.review("fresh connection after readiness went off").await;
        let probe_done = signalled.elapsed();

        // Then new connections are refused.
        let refused_after = loop {
            match TcpStream::connect(https).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break signalled.elapsed(),
                _ => {
                    assert!(
                        signalled.elapsed() < DELAY + CLOSE_MARGIN,
                        "still accepting long after the shutdown delay"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        assert!(
            refused_after >= DELAY,
            "refused after {refused_after:?}, before the shutdown delay"
        );
        for client in clients {
            client.await.unwrap();
        }
        h.server.wait_stopped().await;
        let stopped_after = signalled.elapsed();

        let answered = drain.answered.lock().unwrap().clone();
        let reached = reviewer.reached.lock().unwrap().clone();
        let unread_pooled = drain.unread_pooled.lock().unwrap().clone();
        let unread_fresh = drain.unread_fresh.lock().unwrap().clone();
        let wrong = drain.wrong.lock().unwrap().clone();
        assert!(wrong.is_empty(), "wrong answers: {wrong:?}");
        // The load's reviews only: the health probes also reach the reviewer.
        let reached: HashSet<String> = reached
            .into_iter()
            .filter(|uid| uid.starts_with(LOAD))
            .collect();
        let dropped: Vec<_> = reached
            .iter()
            .filter(|uid| !answered.contains(*uid))
            .collect();
        assert!(
            dropped.is_empty(),
            "reviews reached the reviewer but were never answered: {dropped:?}"
        );
        // Every answer after the signal said `Connection: close`, so no pooled connection was
        // closed under a request (a failed call: Go retries a POST only if none was written).
        assert!(
            unread_pooled.is_empty(),
            "requests on pooled connections closed unanswered: {unread_pooled:?}"
        );
        assert!(
            unread_pooled
                .iter()
                .chain(&unread_fresh)
                .all(|uid| !reached.contains(uid)),
            "a request the client saw fail had been reviewed"
        );
        assert_eq!(drain.refused.load(Ordering::SeqCst), CLIENTS);

        println!(
            "\n## Shutdown under load\n\n{CLIENTS} clients (3 keep-alive, 3 one connection per \
             review) sending Rollout reviews to /validate; every third review held 200 ms; \
             shutdown delay {DELAY:?}, `--shutdown-timeout 5s`.\n\n\
             | figure | value |\n|---|---|\n\
             | reviews in flight when shutdown was asked for | {inflight_at_signal} |\n\
             | readiness 503 after | {:.0} ms |\n\
             | fresh review after readiness went off answered at | {:.0} ms (took {:.0} ms) |\n\
             | new connections refused after | {:.0} ms |\n\
             | `run` returned after | {:.0} ms |\n\
             | reviews that reached the reviewer | {} |\n\
             | of which answered 200 to the client | {} (dropped: 0) |\n\
             | answered after shutdown was asked for | {} |\n\
             | requests on pooled keep-alive connections closed unanswered (never reviewed) | {} |\n\
             | requests on fresh connections closed unanswered (never reviewed) | {} |\n\
             | handshakes cut when the listener closed (never reviewed) | {} |\n\
             | connections refused (one per client, then it stops) | {} |\n",
            unready_after.as_secs_f64() * 1e3,
            probe_done.as_secs_f64() * 1e3,
            probe.as_secs_f64() * 1e3,
            refused_after.as_secs_f64() * 1e3,
            stopped_after.as_secs_f64() * 1e3,
            reached.len(),
            reached.iter().filter(|u| answered.contains(*u)).count(),
            answered.len() - answered_at_signal,
            unread_pooled.len(),
            unread_fresh.len(),
            drain.handshake_failed.load(Ordering::SeqCst),
            drain.refused.load(Ordering::SeqCst),
        );
    })
    .await;
}
