//! The write side of a session, bounded in time: a peer that accepts no
//! byte of what the session writes for `write_timeout_secs` (it sent a big
//! `<get>` and stopped reading) fails the write, and the session ends —
//! its locks released, its one reply's memory freed — instead of waiting
//! for it forever. A slow reader that keeps taking bytes is not cut.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use tokio::time::Sleep;

pub struct WriteDeadline<W> {
    inner: W,
    limit: Duration,
    /// Armed when a write first waits; disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<W> WriteDeadline<W> {
    pub fn new(inner: W, limit: Duration) -> WriteDeadline<W> {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    fn on<T>(&mut self, polled: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read nothing for {} s", limit.as_secs()),
                )))
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on(polled, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.on(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.on(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A pipe nobody reads: the write stalls once its buffer is full, and
    /// fails at the limit.
    #[tokio::test]
    async fn a_peer_that_stops_reading_fails_the_write() {
        let (w, _r) = tokio::io::duplex(1024);
        let mut w = WriteDeadline::new(w, Duration::from_millis(50));
        let e = w.write_all(&[0u8; 4096]).await.expect_err("stalled");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    /// A reader that keeps taking bytes is not cut, however much it takes
    /// in all.
    #[tokio::test]
    async fn a_reader_that_keeps_reading_is_served() {
        let (w, mut r) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            r.read_to_end(&mut all).await.expect("read");
            all.len()
        });
        let mut w = WriteDeadline::new(w, Duration::from_secs(20));
        w.write_all(&vec![7u8; 1 << 20]).await.expect("written");
        w.shutdown().await.expect("shut down");
        drop(w);
        assert_eq!(reader.await.expect("reader"), 1 << 20);
    }
}
