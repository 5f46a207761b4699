//! The HTTPS admission port: accepts TLS connections, serves HTTP/1.1 with keep-alive, applies
//! the transport rules (method, path, media type, body size, deadline, concurrency) and hands
//! each body to a [`Reviewer`]. It records metrics and logs one line per review, and on
//! shutdown turns readiness off, stops accepting and drains in-flight requests within a bound.
//!
//! Order for the binary: install the rustls crypto provider, [`crate::logging::init_logging`],
//! then [`serve`] (or [`Server::bind`] + [`Server::run`] to learn the bound addresses) with
//! [`shutdown_signal`] as the shutdown future.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use futures::StreamExt as _;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::admin::{self, AdminState};
use crate::cli::ServeArgs;
use crate::conn::{self, IDLE_TIMEOUT, Timeouts, WRITE_TIMEOUT};
use crate::metrics::{Metrics, Rejection};
use crate::review::{Endpoint, Outcome, Reply, Reviewer};
use crate::tls::{self, CertResolver};

/// Bodies at least this large are reviewed on the blocking pool. Measured here (release,
/// serde_json): decoding costs 0.3 ns/byte skipping everything and 2.3 ns/byte building a full
/// `Value` tree, while a `spawn_blocking` round trip costs 5 µs (p50; 10 µs p99). Below 64 KiB
/// a review holds a worker for at most ~150 µs, so it stays inline where the hand-off would
/// double the cost of a typical 5-20 KB review; a 7 MiB body (2-30 ms) must not stall every
/// other connection on its worker thread. A reviewer may also decline a small one whose cost
/// grows with the cluster ([`Reviewer::review_inline`]).
pub const INLINE_REVIEW_LIMIT: usize = 64 * 1024;

/// The limits the transport enforces, from the `serve` flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_buffered_body_bytes: usize,
    /// Time the body has to arrive once the head is in; the review deadline bounds it too.
    pub body_timeout: Duration,
    /// Deadline of a review when the request has no `?timeout=`.
    pub review_timeout: Duration,
    pub max_concurrent_reviews: usize,
    /// Reviews on the blocking pool at once ([`INLINE_REVIEW_LIMIT`]). They only compute, so
    /// more of them than cores adds no throughput, only memory: a guard's JSON trees of a
    /// large object take many times its size. Not the cores by default: a pod without a CPU
    /// limit sees every core of its node, and memory is what the limit protects.
    pub max_blocking_reviews: usize,
}

impl Limits {
    pub fn from_args(args: &ServeArgs) -> Self {
        Self {
            max_body_bytes: args.max_body_bytes,
            max_buffered_body_bytes: args.max_buffered_body_bytes,
            body_timeout: args.body_timeout,
            review_timeout: args.review_timeout,
            max_concurrent_reviews: args.max_concurrent_reviews,
            max_blocking_reviews: args.max_blocking_reviews,
        }
    }
}

/// What the admission handlers share. Cloning is one `Arc` clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    reviewer: Arc<dyn Reviewer>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    /// Slots for reviews on the blocking pool ([`Limits::max_blocking_reviews`]).
    blocking: Arc<Semaphore>,
    /// Room for request bodies in memory ([`Limits::max_buffered_body_bytes`]).
    body_room: Arc<BodyRoom>,
    limits: Limits,
}

/// Room for request bodies in memory, in bytes, taken as a body's bytes arrive and given back
/// when the body is dropped (after its review). A declared `Content-Length` reserves nothing:
/// a client holds room only for bytes it has sent. Not first come, first served: a request
/// whose next chunk fits takes room at once even while a larger one waits, so a pending large
/// chunk never holds up small requests; every waiter retries whenever room is given back.
///
/// A body that waits keeps what it holds, so bodies that together need more than the room
/// could wait on each other until their deadlines. So one waiting body at a time may read on
/// past the room (`overdraft`), and only that one: a body larger than all the room needs the
/// same overdraft to go on. Memory stays within the room plus one body, and some body always
/// makes progress.
#[derive(Debug)]
struct BodyRoom {
    total: usize,
    free: std::sync::atomic::AtomicUsize,
    given_back: Notify,
    /// Bodies waiting for room: only then does giving room back wake anyone.
    waiting: std::sync::atomic::AtomicUsize,
    /// A body is reading past the room.
    overdraft: std::sync::atomic::AtomicBool,
}

// The orderings of `free` and `waiting` are SeqCst: a body that counts itself as waiting and
// then finds no room, and a body that gives room back and then finds no waiter, cannot both
// happen (with acquire/release alone they could, and the waiter would sleep to its deadline).
impl BodyRoom {
    fn new(total: usize) -> Self {
        let total = total.max(1);
        Self {
            total,
            free: std::sync::atomic::AtomicUsize::new(total),
            given_back: Notify::new(),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            overdraft: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |free| {
                free.checked_sub(bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize, overdraft: bool) {
        if bytes > 0 {
            self.free.fetch_add(bytes, Ordering::SeqCst);
        }
        if overdraft {
            self.overdraft.store(false, Ordering::SeqCst);
        }
        if (bytes > 0 || overdraft) && self.waiting.load(Ordering::SeqCst) > 0 {
            self.given_back.notify_waiters();
        }
    }
}

/// The room one body holds; given back on drop.
#[derive(Debug)]
struct Held {
    room: Arc<BodyRoom>,
    bytes: usize,
    /// This body reads on past the room ([`BodyRoom::overdraft`]).
    overdraft: bool,
}

impl Held {
    fn new(room: &Arc<BodyRoom>) -> Self {
        Self {
            room: Arc::clone(room),
            bytes: 0,
            overdraft: false,
        }
    }

    /// Takes room for `bytes` more, waiting until that much is free, unless no other body
    /// reads past the room: then this one does. A body holds at most all the room: bytes that
    /// would take it past that read on past the room, which only one body may do at a time,
    /// so a body larger than the room waits for the overdraft and then goes on alone.
    async fn grow(&mut self, bytes: usize) {
        if bytes == 0 || self.overdraft {
            return;
        }
        // Within what this body may hold; otherwise only the overdraft lets it go on.
        let fits = bytes <= self.room.total - self.bytes;
        // The usual case: room is free, and no waiter is registered.
        if fits && self.room.try_take(bytes) {
            self.bytes += bytes;
            return;
        }
        /// Counts a waiting body while it lives, also when the wait is cancelled (its deadline).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let room = Arc::clone(&self.room);
        room.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&room.waiting);
        loop {
            // Created before the attempts, so room given back in between is not missed
            // (a `Notified` sees every `notify_waiters` from its creation on).
            let given_back = room.given_back.notified();
            tokio::pin!(given_back);
            given_back.as_mut().enable();
            if fits && room.try_take(bytes) {
                self.bytes += bytes;
                return;
            }
            if room
                .overdraft
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.overdraft = true;
                return;
            }
            given_back.await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.room.give_back(self.bytes, self.overdraft);
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(reviewer: Arc<dyn Reviewer>, metrics: Arc<Metrics>, limits: Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                reviewer,
                metrics,
                permits: Arc::new(Semaphore::new(limits.max_concurrent_reviews.max(1))),
                blocking: Arc::new(Semaphore::new(limits.max_blocking_reviews.max(1))),
                body_room: Arc::new(BodyRoom::new(limits.max_buffered_body_bytes)),
                limits,
            }),
        }
    }
}

/// The admission routes: `POST /validate` and `POST /mutate`. Every answer is JSON.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", any(validate))
        .route("/mutate", any(mutate))
        .fallback(not_found)
        .with_state(state)
}

async fn validate(State(state): State<AppState>, request: Request) -> Response {
    handle(&state.inner, Endpoint::Validate, request).await
}

async fn mutate(State(state): State<AppState>, request: Request) -> Response {
    handle(&state.inner, Endpoint::Mutate, request).await
}

async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    refuse_before_body(&state.inner, request, Rejection::NotFound).await
}

/// The most of a refused request's body that is read and dropped to keep its connection.
const DRAINED_BODY_BYTES: u64 = 64 * 1024;

/// Refuses a request whose body is of no use (wrong path, method or content type). A body of
/// up to [`DRAINED_BODY_BYTES`] declared by `Content-Length` is read and dropped within the
/// body timeout, so the connection stays open for the next request; a larger, chunked or slow
/// one is left unread and the answer says the connection ends (`Connection: close`), which
/// is what hyper then does, as for the 413.
async fn refuse_before_body(state: &Inner, request: Request, rejection: Rejection) -> Response {
    let refused = reject(&state.metrics, rejection);
    let headers = request.headers();
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    match content_length(headers) {
        None | Some(0) if !chunked => return refused,
        Some(length) if length <= DRAINED_BODY_BYTES && !chunked => {
            let drain = axum::body::to_bytes(request.into_body(), DRAINED_BODY_BYTES as usize);
            if let Ok(Ok(_)) = tokio::time::timeout(state.limits.body_timeout, drain).await {
                return refused;
            }
        }
        _ => {}
    }
    closing(refused)
}

fn json(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn reject(metrics: &Metrics, rejection: Rejection) -> Response {
    metrics.record_rejection(rejection);
    let (status, body): (StatusCode, &'static [u8]) = match rejection {
        Rejection::NotFound => (StatusCode::NOT_FOUND, br#"{"error":"not found"}"#),
        Rejection::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            br#"{"error":"method not allowed, use POST"}"#,
        ),
        Rejection::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            br#"{"error":"content-type must be application/json"}"#,
        ),
        Rejection::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            br#"{"error":"request body too large"}"#,
        ),
        Rejection::BodyTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            br#"{"error":"request body not received before the deadline"}"#,
        ),
        Rejection::BodyError => (
            StatusCode::BAD_REQUEST,
            br#"{"error":"request body could not be read"}"#,
        ),
        // A 5xx makes the API server apply the webhook's failurePolicy.
        Rejection::BodiesBuffered => (
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"error":"too many request bodies in memory, retry"}"#,
        ),
    };
    let mut response = json(status, Body::from(Bytes::from_static(body)));
    if rejection == Rejection::MethodNotAllowed {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Marks `response` as the connection's last (`Connection: close`).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `application/json`, with or without parameters such as `; charset=utf-8`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The API server's ceiling for `timeoutSeconds`; a longer `?timeout=` is not one it sent.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// The `timeout` query parameter the API server appends (`?timeout=10s`), as a Go duration,
/// capped at 30 s.
pub fn timeout_from_query(query: &str) -> Option<Duration> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))?;
    // The API server sends short values like `10s`; refusing long ones keeps arbitrary client
    // input (dozens of fraction digits) away from the duration parser's arithmetic.
    if value.len() > 16 {
        return None;
    }
    match crate::duration::parse_go_duration(value)? {
        nanos if nanos > 0 => Some(Duration::from_nanos(nanos as u64).min(MAX_TIMEOUT)),
        _ => None,
    }
}

/// How long we may take: the caller's timeout less a tenth (at most 500 ms), so that even an
/// "overloaded" answer reaches the API server before it gives up and counts a failed call.
fn budget(timeout: Duration) -> Duration {
    timeout - (timeout / 10).min(Duration::from_millis(500))
}

enum BodyError {
    TooLarge,
    Read,
    /// The body did not arrive before its deadline.
    Timeout,
    /// No room for its bytes before the deadline.
    NoRoom,
}

/// What a body buffer starts with at most, whatever `Content-Length` says: a client that
/// declares 8 MiB and sends one byte gets no 8 MiB allocation.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Collects the body by `deadline`, enforcing `limit` while streaming and taking room in
/// `held` for each chunk as it arrives (the chunk is then in memory: waiting for room stops
/// reading the rest). A body that arrives in one chunk is returned as is; otherwise it is
/// copied into a buffer that starts small and doubles, never past `Content-Length`.
async fn read_body(
    body: Body,
    limit: usize,
    length: Option<u64>,
    held: &mut Held,
    deadline: tokio::time::Instant,
) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut next = async || match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk.map(Some).map_err(|_| BodyError::Read),
    };
    let Some(first) = next().await? else {
        return Ok(Bytes::new());
    };
    if first.len() > limit {
        return Err(BodyError::TooLarge);
    }
    take_room(held, first.len(), deadline).await?;
    let Some(second) = next().await? else {
        return Ok(first);
    };
    // Where the buffer may grow to: the declared length, or the limit without one.
    let expected = length
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(limit)
        .min(limit);
    let mut buffer = Vec::with_capacity(expected.min(INITIAL_BODY_CAPACITY));
    buffer.extend_from_slice(&first);
    drop(first);
    let mut chunk = second;
    loop {
        let len = buffer.len() + chunk.len();
        if len > limit {
            return Err(BodyError::TooLarge);
        }
        take_room(held, chunk.len(), deadline).await?;
        if len > buffer.capacity() {
            let grown = (buffer.capacity() * 2).min(expected).max(len);
            buffer.reserve_exact(grown - buffer.len());
        }
        buffer.extend_from_slice(&chunk);
        chunk = match next().await? {
            None => return Ok(Bytes::from(buffer)),
            Some(chunk) => chunk,
        };
    }
}

async fn take_room(
    held: &mut Held,
    bytes: usize,
    deadline: tokio::time::Instant,
) -> Result<(), BodyError> {
    tokio::time::timeout_at(deadline, held.grow(bytes))
        .await
        .map_err(|_| BodyError::NoRoom)
}

async fn handle(state: &Inner, endpoint: Endpoint, request: Request) -> Response {
    let started = Instant::now();
    if request.method() != Method::POST {
        return refuse_before_body(state, request, Rejection::MethodNotAllowed).await;
    }
    if !is_json(request.headers()) {
        return refuse_before_body(state, request, Rejection::UnsupportedMediaType).await;
    }
    let limit = state.limits.max_body_bytes;
    let length = content_length(request.headers());
    if length.is_some_and(|l| l > limit as u64) {
        // Refused before reading a byte; hyper closes the connection rather than drain it,
        // and the answer says so.
        return closing(reject(&state.metrics, Rejection::PayloadTooLarge));
    }
    let timeout = request
        .uri()
        .query()
        .and_then(timeout_from_query)
        .unwrap_or(state.limits.review_timeout);
    let started_at = tokio::time::Instant::from_std(started);
    let deadline = started_at + budget(timeout);
    // The API server writes the body right after the head; a client that trickles it holds
    // room for what it sent, but only until this.
    let body_deadline = deadline.min(started_at + state.limits.body_timeout);

    let _inflight = state.metrics.inflight();
    // The room the body takes as it arrives, held until its review is done.
    let mut room = Held::new(&state.body_room);
    let body = match read_body(request.into_body(), limit, length, &mut room, body_deadline).await {
        Ok(body) => body,
        // The rest of the body is left unread: the connection ends with this answer. (A
        // request refused before its body, as with 415, keeps it when the body is small:
        // `refuse_before_body`.)
        Err(error) => {
            let rejection = match error {
                BodyError::TooLarge => Rejection::PayloadTooLarge,
                BodyError::Read => Rejection::BodyError,
                BodyError::Timeout => Rejection::BodyTimeout,
                BodyError::NoRoom => Rejection::BodiesBuffered,
            };
            return closing(reject(&state.metrics, rejection));
        }
    };

    let permit = Arc::clone(&state.permits).acquire_owned();
    let reply = match tokio::time::timeout_at(deadline, permit).await {
        Ok(Ok(permit)) => review(state, endpoint, body, (permit, room), deadline).await,
        // No slot before the deadline (the semaphore is never closed).
        Ok(Err(_)) | Err(_) => state.reviewer.overloaded(endpoint, &body),
    };

    let elapsed = started.elapsed();
    state
        .metrics
        .record_review(endpoint, reply.outcome, reply.summary.as_ref(), elapsed);
    log_review(endpoint, &reply, elapsed);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, Body::from(reply.body))
}

/// `permit` is the review slot and the body's room: both are held while the body is. A review
/// that goes to the blocking pool waits for a slot there within the deadline, and is answered
/// as overloaded without one.
async fn review(
    state: &Inner,
    endpoint: Endpoint,
    body: Bytes,
    permit: (OwnedSemaphorePermit, Held),
    deadline: tokio::time::Instant,
) -> Reply {
    let reviewer = &state.reviewer;
    if body.len() < INLINE_REVIEW_LIMIT
        && let Some(reply) = guarded(endpoint, || reviewer.review_inline(endpoint, &body))
            .unwrap_or_else(|()| Some(internal_error()))
    {
        drop(permit);
        return reply;
    }
    let slot = Arc::clone(&state.blocking).acquire_owned();
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, slot).await else {
        // No slot before the deadline (the semaphore is never closed).
        return reviewer.overloaded(endpoint, &body);
    };
    let reviewer = Arc::clone(reviewer);
    // The permits travel with the work: a client that hangs up mid-review must not free a
    // slot while its review still occupies a blocking thread.
    tokio::task::spawn_blocking(move || {
        let reply = review_guarded(reviewer.as_ref(), endpoint, &body);
        drop((permit, slot));
        reply
    })
    .await
    .unwrap_or_else(|_| internal_error())
}

fn review_guarded(reviewer: &dyn Reviewer, endpoint: Endpoint, body: &[u8]) -> Reply {
    guarded(endpoint, || reviewer.review(endpoint, body)).unwrap_or_else(|()| internal_error())
}

/// A panicking reviewer must cost one request, not the connection or the worker thread.
fn guarded<T>(endpoint: Endpoint, review: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(AssertUnwindSafe(review)).map_err(|_| {
        tracing::error!(endpoint = endpoint.as_str(), "reviewer panicked");
    })
}

fn internal_error() -> Reply {
    Reply {
        status: 500,
        body: br#"{"error":"internal error"}"#.to_vec(),
        outcome: Outcome::Error,
        summary: None,
    }
}

/// Rule ids joined by commas, written straight into the log line without a temporary String.
struct Rules<'a>(&'a [&'static str]);

impl std::fmt::Display for Rules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(rule)?;
        }
        Ok(())
    }
}

fn log_review(endpoint: Endpoint, reply: &Reply, elapsed: Duration) {
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    match &reply.summary {
        Some(s) => tracing::info!(
            // Texts as `&str`, not `%` Display: the subscriber takes them without formatting.
            uid = s.uid.as_str(),
            kind = s.kind.as_str(),
            namespace = s.namespace.as_str(),
            name = s.name.as_str(),
            operation = s.operation.as_str(),
            sub_resource = s.sub_resource.as_str(),
            dry_run = s.dry_run,
            outcome = reply.outcome.as_str(),
            rules = %Rules(&s.rules),
            latency_ms,
            endpoint = endpoint.as_str(),
            status = reply.status,
            "review"
        ),
        None => tracing::info!(
            outcome = reply.outcome.as_str(),
            latency_ms,
            endpoint = endpoint.as_str(),
            status = reply.status,
            "review"
        ),
    }
}

/// Resolves on SIGTERM (what kubelet sends) or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

/// The bound listeners and everything the two ports share, ready to [`Server::run`].
pub struct Server {
    https: TcpListener,
    admin: TcpListener,
    https_addr: SocketAddr,
    admin_addr: SocketAddr,
    tls: Arc<CertResolver>,
    tls_config: Arc<rustls::ServerConfig>,
    state: AppState,
    admin_state: AdminState,
    shutting_down: Arc<AtomicBool>,
    header_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    shutdown_delay: Duration,
    shutdown_timeout: Duration,
    reload_interval: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("https_addr", &self.https_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the certificate (a missing one only delays readiness: the reload task keeps
    /// trying) and binds both ports. Fails on an unusable client CA or an address in use.
    pub async fn bind(args: &ServeArgs, reviewer: Arc<dyn Reviewer>) -> anyhow::Result<Self> {
        let tls = Arc::new(CertResolver::new(&args.tls_cert, &args.tls_key));
        match tls.reload() {
            Ok(_) => tracing::info!(cert = %args.tls_cert.display(), "serving certificate loaded"),
            Err(error) => tracing::warn!(
                %error,
                "no serving certificate yet; not ready until one loads"
            ),
        }
        let tls_config = tls::server_config(Arc::clone(&tls), args.tls_client_ca.as_deref())
            .context("cannot build the tls configuration")?;
        let https = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let admin = TcpListener::bind(args.admin_addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.admin_addr))?;
        let metrics = Arc::new(Metrics::new());
        let shutting_down = Arc::new(AtomicBool::new(false));
        Ok(Self {
            https_addr: https.local_addr()?,
            admin_addr: admin.local_addr()?,
            https,
            admin,
            state: AppState::new(
                Arc::clone(&reviewer),
                Arc::clone(&metrics),
                Limits::from_args(args),
            ),
            admin_state: AdminState {
                reviewer,
                metrics,
                tls: Arc::clone(&tls),
                shutting_down: Arc::clone(&shutting_down),
            },
            tls,
            tls_config,
            shutting_down,
            header_timeout: args.header_timeout,
            idle_timeout: IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: args.shutdown_timeout,
            reload_interval: args.tls_reload_interval,
        })
    }

    /// How long a write may wait for the client to read before the connection is closed
    /// (default [`WRITE_TIMEOUT`]).
    pub fn with_write_timeout(mut self, write_timeout: Duration) -> Self {
        self.write_timeout = write_timeout;
        self
    }

    /// How long a keep-alive connection may stay idle between requests (default
    /// [`IDLE_TIMEOUT`]: above Go's 90 s, so the API server closes its pooled connections
    /// before we do). The first request head and every later one get `--header-timeout`.
    /// Both ports, HTTPS and admin, use these bounds (Prometheus keeps its scrape
    /// connections open; kubelet probes open one per probe).
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// How long to keep accepting after readiness goes off (default none). Endpoints and
    /// kube-proxy rules lag readiness by a few seconds; connections routed meanwhile are
    /// refused unless the listener stays open that long. `--shutdown-timeout` still bounds
    /// the drain that follows.
    pub fn with_shutdown_delay(mut self, shutdown_delay: Duration) -> Self {
        self.shutdown_delay = shutdown_delay;
        self
    }

    /// The bound HTTPS address (useful with port 0).
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The bound admin address (useful with port 0).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Serves until `shutdown` resolves, then: readiness off, (after the shutdown delay, if
    /// any) listener closed, in-flight requests drained within `--shutdown-timeout`, admin
    /// port closed.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tracing::info!(https = %self.https_addr, admin = %self.admin_addr, "listening");
        let reloader = self.tls.spawn_reloader(self.reload_interval);

        // Both ports bound request heads, idle keep-alive time and stalled writes alike.
        let timeouts = Timeouts {
            header: self.header_timeout,
            idle: self.idle_timeout,
            write: self.write_timeout,
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin_task = tokio::spawn(admin::serve(
            self.admin,
            admin::router(self.admin_state),
            timeouts,
            async {
                let _ = admin_stopped.await;
            },
        ));

        let acceptor = TlsAcceptor::from(self.tls_config);
        let http = conn::http1();
        let router = router(self.state);
        let graceful = GracefulShutdown::new();
        let header_timeout = self.header_timeout;

        // Once shutdown is asked for, every answer says `Connection: close`, as Go's own
        // server does while shutting down. The API server's pooled connections survive the
        // endpoint update (conntrack keeps them routed), so they carry reviews through the
        // delay; closed by the drain instead, a request written as the close lands is lost,
        // and Go retries a POST only if none of it was written: a failed call. Retired one
        // answer at a time, the client learns of each close before it sends again.
        let draining = Arc::clone(&self.shutting_down);
        // Readiness goes off as soon as shutdown is asked for; the listener stays open for the
        // shutdown delay so that connections routed before the endpoints update still land.
        let shutting_down = Arc::clone(&self.shutting_down);
        let shutdown_delay = self.shutdown_delay;
        let shutdown = async move {
            shutdown.await;
            shutting_down.store(true, Ordering::SeqCst);
            tracing::info!(delay = ?shutdown_delay, "shutting down: not ready");
            if !shutdown_delay.is_zero() {
                tokio::time::sleep(shutdown_delay).await;
            }
        };
        let https = conn::accept_until(
            self.https,
            "https",
            &graceful,
            shutdown,
            |tcp, peer, watcher| {
                let acceptor = acceptor.clone();
                let http = http.clone();
                let router = router.clone();
                let draining = Arc::clone(&draining);
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let tls = match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => return log_handshake_error(peer, &error),
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    };
                    let amend = move |response: &mut Response| {
                        if draining.load(Ordering::SeqCst) {
                            response
                                .headers_mut()
                                .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        }
                    };
                    let served =
                        conn::serve_connection(&http, tls, timeouts, router, watcher, amend).await;
                    if let Err(error) = served {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            },
        )
        .await;

        drop(https);
        tracing::info!(connections = graceful.count(), "listener closed, draining");
        match tokio::time::timeout(self.shutdown_timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!("drained"),
            Err(_) => tracing::warn!(
                timeout = ?self.shutdown_timeout,
                "connections still open after the shutdown timeout; closing them"
            ),
        }
        reloader.abort();
        let _ = stop_admin.send(());
        match tokio::time::timeout(Duration::from_secs(1), admin_task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "admin server failed"),
            Ok(Err(error)) => tracing::warn!(%error, "admin server task failed"),
            Err(_) => tracing::warn!("admin server did not stop in time"),
        }
        Ok(())
    }
}

fn log_handshake_error(peer: SocketAddr, error: &std::io::Error) {
    // A client rejecting our certificate (wrong caBundle, missing SAN) deserves attention;
    // probes that connect and hang up do not.
    let alert = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::AlertReceived(_)));
    if alert {
        tracing::warn!(%peer, %error, "tls handshake failed");
    } else {
        tracing::debug!(%peer, %error, "tls handshake failed");
    }
}

/// Binds both ports and serves until `shutdown` resolves; see [`Server::run`].
pub async fn serve(
    args: &ServeArgs,
    reviewer: Arc<dyn Reviewer>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    Server::bind(args, reviewer).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_server_timeout_parameter() {
        assert_eq!(
            timeout_from_query("timeout=10s"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            timeout_from_query("dryRun=All&timeout=500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            timeout_from_query("timeout=2.5s"),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            timeout_from_query("timeout=1h"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            timeout_from_query("timeout=0.999999999999999999999999999999h"),
            None
        );
        assert_eq!(timeout_from_query("timeout=abc"), None);
        assert_eq!(timeout_from_query("timeout=0s"), None);
        assert_eq!(timeout_from_query("timeout=-1s"), None);
        assert_eq!(timeout_from_query("xtimeout=10s"), None);
        assert_eq!(timeout_from_query(""), None);
    }

    #[test]
    fn keeps_a_margin_before_the_callers_deadline() {
        assert_eq!(budget(Duration::from_secs(10)), Duration::from_millis(9500));
        assert_eq!(budget(Duration::from_secs(1)), Duration::from_millis(900));
        assert_eq!(
            budget(Duration::from_millis(100)),
            Duration::from_millis(90)
        );
    }

    /// A body that reads past the room, as the first body that finds none free does.
    async fn past_the_room(room: &Arc<BodyRoom>) -> Held {
        assert_eq!(room.free.load(Ordering::SeqCst), 0, "for a room all held");
        let mut over = Held::new(room);
        over.grow(1).await;
        assert!(over.overdraft);
        over
    }

    /// Not first come, first served: a take that does not fit waits without holding up a
    /// smaller one that does (tokio's semaphore is FIFO and would queue it behind).
    #[tokio::test]
    async fn a_waiting_large_take_does_not_hold_up_a_smaller_one() {
        let room = Arc::new(BodyRoom::new(100));
        let mut first = Held::new(&room);
        first.grow(60).await;
        let mut over = Held::new(&room);
        over.grow(50).await;
        assert!(
            over.overdraft,
            "the first body without room reads on past it"
        );
        let large = tokio::spawn({
            let room = Arc::clone(&room);
            async move {
                let mut held = Held::new(&room);
                held.grow(50).await;
                held
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!large.is_finished(), "50 bytes do not fit beside 60 of 100");
        let mut small = Held::new(&room);
        tokio::time::timeout(Duration::from_secs(5), small.grow(30))
            .await
            .expect("30 bytes fit and must not wait behind the pending 50");
        drop(first);
        let large = tokio::time::timeout(Duration::from_secs(5), large)
            .await
            .expect("room given back wakes the waiter")
            .unwrap();
        assert_eq!((large.bytes, small.bytes), (50, 30));
        drop((large, small, over));
        assert_eq!(room.free.load(Ordering::SeqCst), 100);
        assert!(!room.overdraft.load(Ordering::SeqCst));
    }

    /// Bodies that together need more than the room do not wait on each other: one reads on
    /// past it, and once it is done the other gets its room.
    #[tokio::test]
    async fn bodies_that_together_need_more_than_the_room_do_not_wait_on_each_other() {
        let room = Arc::new(BodyRoom::new(100));
        let (mut a, mut b) = (Held::new(&room), Held::new(&room));
        a.grow(50).await;
        b.grow(50).await;
        tokio::time::timeout(Duration::from_secs(5), a.grow(30))
            .await
            .expect("one body reads on past the room");
        assert!(a.overdraft);
        let waited = tokio::time::timeout(Duration::from_millis(50), b.grow(30)).await;
        assert!(waited.is_err(), "only one body at a time is past the room");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), b.grow(30))
            .await
            .expect("the room given back, and the overdraft, let the other go on");
        assert_eq!(b.bytes, 80);
        drop(b);
        assert_eq!(room.free.load(Ordering::SeqCst), 100);
    }

    /// Giving room back wakes waiters only when there are some; a wait cut off by its
    /// deadline stops counting as one.
    #[tokio::test]
    async fn a_cancelled_wait_for_room_stops_counting_as_a_waiter() {
        let room = Arc::new(BodyRoom::new(10));
        let mut all = Held::new(&room);
        all.grow(10).await;
        let over = past_the_room(&room).await;
        let mut late = Held::new(&room);
        let waited = tokio::time::timeout(Duration::from_millis(50), late.grow(5)).await;
        assert!(waited.is_err(), "no room while all of it is held");
        assert_eq!(room.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(late.bytes, 0);
        drop((all, over));
        late.grow(5).await;
        assert_eq!(room.free.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_larger_than_all_the_room_goes_on_alone_past_it() {
        let room = Arc::new(BodyRoom::new(100));
        let mut large = Held::new(&room);
        for _ in 0..5 {
            tokio::time::timeout(Duration::from_secs(5), large.grow(70))
                .await
                .expect("a body alone never waits");
        }
        // 70 fit, the next 70 would not: the body reads on past the room, holding what it took.
        assert_eq!((large.bytes, large.overdraft), (70, true));
        assert!(room.overdraft.load(Ordering::SeqCst));
        let mut other = Held::new(&room);
        other.grow(30).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), other.grow(1))
                .await
                .is_err(),
            "the room is all held and the one overdraft taken"
        );
        drop(large);
        tokio::time::timeout(Duration::from_secs(5), other.grow(1))
            .await
            .unwrap();
        drop(other);
        assert_eq!(room.free.load(Ordering::SeqCst), 100);
        assert!(!room.overdraft.load(Ordering::SeqCst));
    }

    /// Regression: a body that held all the room went on past it without the overdraft, so a
    /// second large body took the overdraft too and both read past the room at once.
    #[tokio::test]
    async fn only_one_body_at_a_time_reads_past_the_room() {
        let room = Arc::new(BodyRoom::new(100));
        let (mut a, mut b) = (Held::new(&room), Held::new(&room));
        tokio::time::timeout(Duration::from_secs(5), a.grow(3000))
            .await
            .expect("the first large body goes on");
        assert!(a.overdraft, "larger than the room: past it");
        let waited = tokio::time::timeout(Duration::from_millis(50), b.grow(3000)).await;
        assert!(
            waited.is_err(),
            "a second large body must wait for the first"
        );
        assert!(!b.overdraft);
        // Small bodies still get the room the large one did not take.
        let mut small = Held::new(&room);
        tokio::time::timeout(Duration::from_secs(5), small.grow(100))
            .await
            .expect("the room is free");
        drop(small);
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), b.grow(3000))
            .await
            .expect("the overdraft given back lets the second go on");
        assert!(b.overdraft);
        drop(b);
        assert_eq!(room.free.load(Ordering::SeqCst), 100);
        assert!(!room.overdraft.load(Ordering::SeqCst));
    }

    /// Room follows the bytes that arrived, not the declared length.
    #[tokio::test]
    async fn a_body_holds_room_for_the_bytes_it_sent_not_its_content_length() {
        let room = Arc::new(BodyRoom::new(1 << 20));
        let chunks: Vec<Result<Bytes, std::io::Error>> = ["{\"a\":", "1", "}"]
            .into_iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let mut held = Held::new(&room);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let Ok(read) = read_body(body, 8 << 20, Some(8 << 20), &mut held, deadline).await else {
            panic!("the body should have been read");
        };
        assert_eq!(&read[..], br#"{"a":1}"#);
        assert_eq!(held.bytes, 7);
        assert_eq!(room.free.load(Ordering::SeqCst), (1 << 20) - 7);
        drop(held);
        assert_eq!(room.free.load(Ordering::SeqCst), 1 << 20);
    }

    #[test]
    fn accepts_json_media_types_with_parameters_only() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("Application/JSON;charset=UTF-8"));
        assert!(!with("application/jsonx"));
        assert!(!with("text/plain"));
        assert!(!with("application/yaml"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
