//! When to give up on a connection. A connection is watched, not its bytes:
//!
//! - while a request is being handled, the connection is left alone (the
//!   body read and the backends have timeouts of their own);
//! - once bytes arrive and no request has started from them, the client
//!   has `header_timeout` to complete a request head, on HTTP/1.1 and
//!   HTTP/2 alike (a stalled or trickled head, and a client that only sends
//!   HTTP/2 PINGs, are dropped);
//! - a connection with nothing in flight and nothing arriving is closed
//!   after `idle_timeout`.
//!
//! A new connection is treated as if bytes had just arrived: the first
//! request is due within `header_timeout`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// `pending_since` when no bytes wait for a request.
const NOTHING_PENDING: u64 = u64::MAX;

/// The state of one connection, shared by its stream, its service and its
/// watchdog.
pub(super) struct Watch {
    origin: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when the last request ended.
    quiet_since: AtomicU64,
    /// Milliseconds since `origin` when bytes first arrived that no request
    /// has started from yet, or `NOTHING_PENDING`.
    pending_since: AtomicU64,
    /// Wakes the watchdog when the deadline may have moved.
    changed: Notify,
}

impl Watch {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            quiet_since: AtomicU64::new(0),
            pending_since: AtomicU64::new(0),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.origin + Duration::from_millis(millis)
    }

    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let now = self.now();
            let swapped = self.pending_since.compare_exchange(
                NOTHING_PENDING,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if swapped.is_ok() {
                self.changed.notify_one();
            }
        }
    }

    /// A request has started; the guard marks its end when dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.pending_since.store(NOTHING_PENDING, Ordering::Release);
        self.changed.notify_one();
        RequestGuard(Arc::clone(self))
    }

    /// Resolves when the deadline may have moved.
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// When the connection must be closed if nothing changes; `None` while
    /// a request is in flight.
    pub(super) fn deadline(
        &self,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.pending_since.load(Ordering::Acquire) {
            NOTHING_PENDING => {
                Some(self.at(self.quiet_since.load(Ordering::Acquire)) + idle_timeout)
            }
            since => Some(self.at(since) + header_timeout),
        }
    }
}

/// Marks the end of a request when dropped, whether it completed or not.
pub(super) struct RequestGuard(Arc<Watch>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let watch = &self.0;
        watch.quiet_since.store(watch.now(), Ordering::Release);
        // Bytes read while the request ran (its body) belong to it.
        watch
            .pending_since
            .store(NOTHING_PENDING, Ordering::Release);
        watch.in_flight.fetch_sub(1, Ordering::AcqRel);
        watch.changed.notify_one();
    }
}

/// A stream that tells its [`Watch`] when bytes arrive.
pub(super) struct Watched<T> {
    inner: T,
    watch: Arc<Watch>,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, watch: Arc<Watch>) -> Self {
        Self { inner, watch }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_arrived();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn a_new_connection_owes_a_request_head_within_the_header_timeout() {
        let watch = Watch::new();
        assert_eq!(watch.deadline(HEAD, IDLE), Some(watch.origin + HEAD));
    }

    #[test]
    fn nothing_is_due_while_a_request_runs_then_the_idle_timeout_applies() {
        let watch = Watch::new();
        let guard = watch.request_started();
        watch.bytes_arrived();
        assert_eq!(watch.deadline(HEAD, IDLE), None);
        drop(guard);
        let quiet = watch.at(watch.quiet_since.load(Ordering::Acquire));
        assert_eq!(watch.deadline(HEAD, IDLE), Some(quiet + IDLE));
    }

    #[test]
    fn bytes_after_a_request_start_the_header_timeout_from_the_first_byte() {
        let watch = Watch::new();
        drop(watch.request_started());
        watch.bytes_arrived();
        let first = watch.pending_since.load(Ordering::Acquire);
        watch.bytes_arrived();
        assert_eq!(
            watch.pending_since.load(Ordering::Acquire),
            first,
            "later bytes do not extend it"
        );
        assert_eq!(watch.deadline(HEAD, IDLE), Some(watch.at(first) + HEAD));
    }
}
