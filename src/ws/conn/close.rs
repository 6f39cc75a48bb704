//! The close phase: what may still go out, the close frame, and the client's answer,
//! each bounded. Cold: boxed by the caller, so no idle connection carries it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use socketioxide::adapter::Adapter;

use super::super::frame::{Event, Frame};
use super::super::hub::CloseReason;
use super::super::outbox::write_queue;
use super::Conn;
use crate::listener::Tracked;

/// How long the close frame may take to leave: a client that stopped reading for a
/// moment (a phone waking up) still learns why it was closed (1013) after what fitted
/// in the buffers; one that never reads is dropped after this.
const CLOSE_WRITE: Duration = Duration::from_secs(5);

/// How long the server waits for the client's answer to its close frame before it
/// drops the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Stops sending, writes what may still go out and the close frame (bounded by
/// [`CLOSE_WRITE`]), then waits for the client's close (bounded by [`CLOSE_WAIT`]).
pub(super) async fn close<A: Adapter>(conn: &mut Conn<A>) {
    let peer = conn.peer.clone();
    let outbox = peer.outbox();
    let (queued, partial) = outbox.shut();
    let reason = peer.closing().unwrap_or(CloseReason::Error);
    let Some(wire) = outbox.wire() else {
        return;
    };
    // Replies already queued (to messages handled before a shutdown, say) go out
    // before the close frame; a slow consumer's queue is what it would not read, and a
    // client that closed or broke the connection takes nothing more. A frame already
    // begun is finished either way: the close frame must start on a frame boundary.
    let mut tail: VecDeque<Bytes> =
        if reason.frame().is_some() && reason != CloseReason::SlowConsumer {
            queued
        } else {
            queued.into_iter().take(usize::from(partial)).collect()
        };
    let frame = match (reason.frame(), conn.client_close) {
        (Some((code, why)), _) => Some(Frame::close(code, why)),
        // The client's close is answered with its code (RFC 6455 §5.5.1).
        (None, Some(Some(code))) if reason == CloseReason::Client => Some(Frame::close(code, "")),
        (None, Some(None)) if reason == CloseReason::Client => Some(Frame::close_empty()),
        _ => None,
    };
    if frame.is_none() && tail.is_empty() {
        return;
    }
    tail.extend(frame.map(Frame::into_bytes));
    let written = tokio::time::timeout(CLOSE_WRITE, write_all(wire, &mut tail)).await;
    // After the server's close frame the client answers with its own; reading it lets
    // the TCP connection end cleanly rather than be reset under the frame.
    if matches!(written, Ok(Ok(()))) && reason.frame().is_some() {
        let _ = tokio::time::timeout(CLOSE_WAIT, await_close(conn, wire)).await;
    }
}

/// Writes `tail` whole, waiting for the socket as needed.
async fn write_all(wire: &Tracked, tail: &mut VecDeque<Bytes>) -> std::io::Result<()> {
    let mut partial = false;
    loop {
        match write_queue(wire, tail, &mut partial) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll_fn(|cx| wire.poll_write_ready(cx)).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads until the client's close frame or the end of the stream; what a client that
/// broke the protocol sends is discarded unparsed.
async fn await_close<A: Adapter>(conn: &mut Conn<A>, wire: &Tracked) {
    loop {
        if poll_fn(|cx| wire.poll_read_ready(cx)).await.is_err() {
            return;
        }
        if conn.read_available(wire).is_err() {
            return;
        }
        while !conn.broken {
            match conn.decoder.next() {
                Ok(Some(Event::Close(_))) => return,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => conn.broken = true,
            }
        }
    }
}
