//! The plain-HTTP admin port for kubelet and Prometheus: `GET /livez`, `GET /readyz` and
//! `GET /metrics`. It only reads state. It runs on its own port so probes and scrapes never
//! need the serving certificate and never compete with admission traffic for limits.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::conn::{self, Timeouts};
use crate::metrics::{Metrics, ScrapeExtras};
use crate::review::Reviewer;
use crate::tls::CertResolver;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub reviewer: Arc<dyn Reviewer>,
    pub metrics: Arc<Metrics>,
    pub tls: Arc<CertResolver>,
    /// Set when shutdown begins, before the HTTPS listener closes.
    pub shutting_down: Arc<AtomicBool>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("tls", &self.tls)
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

/// The admin routes (GET and HEAD only; anything else is 405, unknown paths 404).
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits
/// for open connections: a request in progress is answered, idle ones are closed. Each
/// connection is bounded like the HTTPS port's ([`conn::serve_connection`]): its request
/// heads by `timeouts.header`, idle keep-alive time by `timeouts.idle`, stalled writes by
/// `timeouts.write`; so idle or half-sent connections cannot pile up and use up the
/// process's file descriptors, which the HTTPS port needs too.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = conn::http1();
    let graceful = GracefulShutdown::new();
    let listener = conn::accept_until(
        listener,
        "admin",
        &graceful,
        shutdown,
        |tcp, peer, watcher| {
            let http = http.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let served =
                    conn::serve_connection(&http, tcp, timeouts, router, watcher, |_| {}).await;
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "admin connection ended with an error");
                }
            });
        },
    )
    .await;
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn livez() -> &'static str {
    "ok"
}

/// Why the server is not ready, or `None` when it is.
pub fn not_ready_reason(state: &AdminState) -> Option<&'static str> {
    if state.shutting_down.load(Ordering::SeqCst) {
        Some("shutting down")
    } else if !state.tls.is_loaded() {
        Some("no serving certificate loaded")
    } else if !state.reviewer.ready() {
        Some("templates not synced")
    } else {
        None
    }
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match not_ready_reason(&state) {
        None => (StatusCode::OK, "ok").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let text = state.metrics.render(&ScrapeExtras {
        cache_sizes: state.reviewer.cache_sizes(),
        tls_reloads: state.tls.reloads(),
        tls_reload_errors: state.tls.reload_errors(),
        tls_reload_failing: state.tls.reload_failing(),
        tls_expiry: state.tls.expires_at(),
    });
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
