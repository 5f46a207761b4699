//! Per-connection timeouts that tell a slow request head from an idle keep-alive connection.
//! hyper's `header_read_timeout` starts its timer whenever it waits for a request head, idle
//! time included, so it would close the API server's pooled connections after a few idle
//! seconds. Go clients then race: a POST sent on a connection we are closing fails without a
//! retry (POST is not replayable), and the webhook's failurePolicy decides. Here the head
//! timer starts at the head's first byte (or at the handshake for the first request), and an
//! idle connection gets a longer idle timeout, above Go's 90 s `IdleConnTimeout` so that the
//! client, not the server, closes pooled connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a keep-alive connection may sit between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What the service tells the I/O wrapper: a request is being handled, and how many began.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    busy: AtomicBool,
}

/// Marks a request as being handled until dropped.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Between requests, no byte of the next head yet.
    Idle,
    /// Reading a request head.
    Head,
}

/// Wraps a connection's stream; reads fail with `TimedOut` when a head or an idle period
/// outlasts its bound, which makes hyper close the connection.
pub struct Timed<S> {
    inner: S,
    activity: Arc<Activity>,
    seen: u64,
    waiting: Waiting,
    deadline: Pin<Box<Sleep>>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl<S> Timed<S> {
    /// Starts in the head state: a new connection owes its first request head within
    /// `header_timeout`.
    pub fn new(
        inner: S,
        activity: Arc<Activity>,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            activity,
            seen: 0,
            waiting: Waiting::Head,
            deadline: Box::pin(tokio::time::sleep(header_timeout)),
            header_timeout,
            idle_timeout,
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
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let started = this.activity.started.load(Ordering::Acquire);
        if started != this.seen {
            // A request finished since we last looked: the connection is idle now.
            this.seen = started;
            this.waiting = Waiting::Idle;
            let at = Instant::now() + this.idle_timeout;
            this.deadline.as_mut().reset(at);
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.waiting == Waiting::Idle && buf.filled().len() > before {
                    this.waiting = Waiting::Head;
                    let at = Instant::now() + this.header_timeout;
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
