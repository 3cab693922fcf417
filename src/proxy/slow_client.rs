//! A client stream that gives up on a client which stops reading.
//!
//! Without it a crawler (or an attacker) that never reads its answer holds its connection slot
//! for as long as it likes: hyper has no write timeout. [`WriteStallGuard`] fails a write that
//! has made no progress for `proxy.client_write_timeout`, which closes the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps a client stream; reads pass through, writes stalled past `timeout` fail.
pub struct WriteStallGuard<S> {
    inner: S,
    timeout: Duration,
    /// Armed when a write first returned `Pending`; disarmed by any progress. Allocated on the
    /// first stall only, since most connections never stall.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl<S> WriteStallGuard<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: None, armed: false }
    }

    /// Called when the inner write is pending: `Ready(error)` once the stall has lasted too long.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let at = Instant::now() + self.timeout;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if !self.armed {
            deadline.as_mut().reset(at);
            self.armed = true;
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?} (proxy.client_write_timeout)", self.timeout),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.stalled(cx).map(Err),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallGuard<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallGuard<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_reading_is_cut_off_after_the_timeout() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut guarded = WriteStallGuard::new(near, Duration::from_secs(60));
        let started = Instant::now();
        let error = loop {
            if let Err(e) = guarded.write_all(&[0u8; 1024]).await {
                break e;
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("client_write_timeout"), "{error}");
        assert!(started.elapsed() >= Duration::from_secs(60));
        // The far end still holds the bytes written before the stall.
        let mut buf = [0u8; 64];
        assert_eq!(far.read(&mut buf).await.expect("read"), 64);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_never_cut_off() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut guarded = WriteStallGuard::new(near, Duration::from_secs(60));
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 64];
            loop {
                // Reads 64 bytes every 59 s: each stall stays under the timeout.
                tokio::time::sleep(Duration::from_secs(59)).await;
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        guarded.write_all(&[1u8; 640]).await.expect("every write completes");
        guarded.shutdown().await.expect("shutdown");
        drop(guarded);
        assert_eq!(reader.await.expect("reader"), 640);
    }
}
