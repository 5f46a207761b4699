//! Per-connection timeouts that tell a slow request head from an idle keep-alive connection.
//! hyper's `header_read_timeout` starts its timer whenever it waits for a request head, idle
//! time included, so it would close the API server's pooled connections after a few idle
//! seconds. Go clients then race: a POST sent on a connection we are closing fails without a
//! retry (POST is not replayable), and the webhook's failurePolicy decides. Here the head
//! timer starts at the head's first byte (or at the handshake for the first request), and an
//! idle connection gets a longer idle timeout, above Go's 90 s `IdleConnTimeout` so that the
//! client, not the server, closes pooled connections.
//!
//! Writes are bounded too: a client that stops reading its answers (pipelining, or stalled)
//! would otherwise hold its connection forever, since hyper waits on the write and reads
//! nothing more. A write or flush that makes no progress for the write timeout fails.
//!
//! Both ports serve their connections through [`serve_connection`]: the HTTPS port over TLS,
//! the admin port over plain TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use futures::task::AtomicWaker;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// How long a keep-alive connection may sit between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a write may wait for the client to read: the API server's webhook timeout is at
/// most 30 s, so by then it has given up on the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection's bounds: the request head, the idle time between requests, and a stalled
/// write.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub write: Duration,
}

/// What the service tells the I/O wrapper: a request is being handled, and how many began.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    busy: AtomicBool,
    /// The reader that last read while busy (with no timer armed), woken when the request is
    /// done so that it reads again and arms the idle timer.
    reader: AtomicWaker,
}

/// Marks a request as being handled until dropped.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
        // hyper may have read ahead while the request was handled (a request without a body
        // leaves it waiting for the next head): that read armed no idle timer, and nothing
        // would poll it again until the client sends. Found on the admin port, where an idle
        // keep-alive connection after a GET stayed open past the idle timeout.
        self.0.reader.wake();
    }
}

impl Activity {
    /// Called by the service when hyper hands it a request (the head is complete).
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.busy.store(true, Ordering::Release);
        self.started.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }
}

/// Accepts connections on `listener` until `shutdown` resolves (checked first, so a steady
/// stream of connections cannot hold it off), handing each to `serve` with a watcher of
/// `graceful` taken at accept, so that the drain also waits for connections still in their
/// handshake. A failed accept (typically EMFILE) backs off for 50 ms instead of spinning on
/// the error. `port` names the listener in that warning. Returns the listener, for the
/// caller to close when it chooses.
pub async fn accept_until(
    listener: TcpListener,
    port: &'static str,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, SocketAddr, Watcher),
) -> TcpListener {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return listener,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => serve(tcp, peer, graceful.watcher()),
                Err(error) => {
                    tracing::warn!(port, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The HTTP/1.1 settings of both ports: keep-alive, and no header timer of hyper's, which
/// cannot tell a slow head from an idle keep-alive connection; [`Timed`] bounds both instead.
pub fn http1() -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None);
    http
}

/// Serves `router` on one connection under `timeouts` ([`Timed`]), watched by `watcher` for
/// a graceful shutdown. `amend` may change each answer before it is written.
pub async fn serve_connection<I, A>(
    http: &http1::Builder,
    io: I,
    timeouts: Timeouts,
    router: Router,
    watcher: Watcher,
    amend: A,
) -> hyper::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Fn(&mut Response) + Clone + Send + Sync + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = Timed::new(io, Arc::clone(&activity), timeouts);
    let service = hyper::service::service_fn(move |request| {
        let busy = activity.begin();
        let response = router.clone().oneshot(request);
        let amend = amend.clone();
        async move {
            let mut response = response.await;
            if let Ok(response) = &mut response {
                amend(response);
            }
            drop(busy);
            response
        }
    });
    watcher
        .watch(http.serve_connection(TokioIo::new(io), service))
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Between requests, no byte of the next head yet.
    Idle,
    /// Reading a request head.
    Head,
}

/// Wraps a connection's stream; reads fail with `TimedOut` when a head or an idle period
/// outlasts its bound, and writes when the client reads nothing for the write timeout, which
/// makes hyper close the connection.
pub struct Timed<S> {
    inner: S,
    activity: Arc<Activity>,
    seen: u64,
    waiting: Waiting,
    deadline: Pin<Box<Sleep>>,
    timeouts: Timeouts,
    /// Armed when a write or flush first waits, dropped when one completes: a write that never
    /// waits costs no timer.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> Timed<S> {
    /// Starts in the head state: a new connection owes its first request head within
    /// `timeouts.header`.
    pub fn new(inner: S, activity: Arc<Activity>, timeouts: Timeouts) -> Self {
        Self {
            inner,
            activity,
            seen: 0,
            waiting: Waiting::Head,
            deadline: Box::pin(tokio::time::sleep(timeouts.header)),
            timeouts,
            stalled: None,
        }
    }

    /// Passes a write-side result through, failing a wait that has lasted the write timeout.
    fn bound_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let write = self.timeouts.write;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(write)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.activity.busy.load(Ordering::Acquire) {
            // Reading a body: the handler's deadline bounds it, not this wrapper.
            this.activity.reader.register(cx.waker());
            if !this.activity.busy.load(Ordering::Acquire) {
                // Done in between: its wake may have gone to an older waker.
                cx.waker().wake_by_ref();
            }
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let started = this.activity.started.load(Ordering::Acquire);
        if started != this.seen {
            // A request finished since we last looked: the connection is idle now.
            this.seen = started;
            this.waiting = Waiting::Idle;
            let at = Instant::now() + this.timeouts.idle;
            this.deadline.as_mut().reset(at);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.waiting == Waiting::Idle && buf.filled().len() > before {
                    this.waiting = Waiting::Head;
                    let at = Instant::now() + this.timeouts.header;
                    this.deadline.as_mut().reset(at);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    match this.waiting {
                        Waiting::Idle => "keep-alive connection idle too long",
                        Waiting::Head => "request head not received in time",
                    },
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bound_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bound_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.bound_write(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.bound_write(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SHORT: Duration = Duration::from_millis(300);

    fn timed(inner: tokio::io::DuplexStream) -> Timed<tokio::io::DuplexStream> {
        let long = Duration::from_secs(60);
        let timeouts = Timeouts {
            header: long,
            idle: long,
            write: SHORT,
        };
        Timed::new(inner, Arc::new(Activity::default()), timeouts)
    }

    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_write_timeout() {
        // 64 bytes of room and nobody reading: the write waits from its 65th byte on.
        let (near, _far) = tokio::io::duplex(64);
        let mut io = timed(near);
        let started = std::time::Instant::now();
        let error = tokio::time::timeout(Duration::from_secs(10), io.write_all(&[b'x'; 4096]))
            .await
            .expect("the stalled write should have failed, not waited on")
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        let waited = started.elapsed();
        assert!(
            waited >= SHORT && waited < Duration::from_secs(10),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_client_that_keeps_reading_is_not_cut_off() {
        // Each wait is shorter than the write timeout, the whole write much longer.
        let (near, mut far) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut chunk = [0u8; 64];
            loop {
                tokio::time::sleep(SHORT / 3).await;
                match far.read(&mut chunk).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let mut io = timed(near);
        let started = std::time::Instant::now();
        io.write_all(&[b'x'; 1024]).await.unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap(), 1024);
        assert!(
            started.elapsed() > SHORT * 2,
            "the write should have waited several times"
        );
    }

    #[tokio::test]
    async fn a_write_that_never_waits_arms_no_timer() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut io = timed(near);
        io.write_all(b"answer").await.unwrap();
        io.flush().await.unwrap();
        assert!(io.stalled.is_none());
    }
}
