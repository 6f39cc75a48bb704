//! [`Tracked`]: the listener's TCP stream, metered. hyper reads and writes it through
//! `AsyncRead`/`AsyncWrite` until a plain WebSocket takes it back after the upgrade
//! and uses its `try_` methods.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Activity, Bytes, Slot};
use crate::outbound::Meter;

/// The TCP stream, noting each byte moved and holding the connection's slot; its
/// outbound meter counts what the kernel takes and can close it (a slow consumer).
///
/// A plain WebSocket takes it back from hyper after the upgrade ([`crate::ws`]) and
/// uses it without `AsyncRead`/`AsyncWrite`: readiness, then `try_` reads and writes
/// from whichever thread has a frame to send, counted the same way.
pub(crate) struct Tracked {
    pub(super) inner: TcpStream,
    pub(super) activity: Arc<Activity>,
    pub(super) meter: Arc<Meter>,
    pub(super) bytes: Bytes,
    pub(super) _slot: Slot,
}

impl Tracked {
    /// Reads what the kernel holds without waiting (`WouldBlock` when nothing).
    pub(crate) fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.meter.is_killed() {
            return Err(killed());
        }
        let n = self.inner.try_read(buf)?;
        if n > 0 {
            self.activity.touch();
            self.bytes.received.inc_by(n as u64);
        }
        Ok(n)
    }

    /// Writes what the kernel takes now (`WouldBlock` when nothing; it starts the
    /// meter's stall clock).
    pub(crate) fn try_write_vectored(
        &self,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::io::Result<usize> {
        if self.meter.is_killed() {
            return Err(killed());
        }
        match self.inner.try_write_vectored(bufs) {
            Ok(n) => {
                self.count_written(&Poll::Ready(Ok(n)));
                Ok(n)
            }
            Err(e) => {
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    self.count_written(&Poll::Pending);
                }
                Err(e)
            }
        }
    }

    /// Tells the meter what a write did (a stall starts its clock) and counts the bytes
    /// the kernel took.
    fn count_written(&self, result: &Poll<std::io::Result<usize>>) {
        self.meter.wrote(result, |n| *n);
        if let Poll::Ready(Ok(n)) = *result
            && n > 0
        {
            self.activity.touch();
            self.bytes.sent.inc_by(n as u64);
        }
    }

    /// Ready to read (or failed, or killed by its meter); registers the task otherwise.
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.meter.poll_read_allowed(cx))?;
        self.inner.poll_read_ready(cx)
    }

    /// Ready to write (or failed, or killed by its meter); registers the task otherwise.
    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.meter.poll_write_allowed(cx))?;
        self.inner.poll_write_ready(cx)
    }
}

/// The error a killed meter's connection reads and writes with.
fn killed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "slow consumer: connection closed by the server",
    )
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.meter.poll_read_allowed(cx))?;
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
            self.bytes
                .received
                .inc_by((buf.filled().len() - before) as u64);
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.meter.poll_write_allowed(cx))?;
        let result = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count_written(&result);
        result
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        std::task::ready!(self.meter.poll_write_allowed(cx))?;
        let result = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count_written(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
