//! One plain WebSocket connection from upgrade to close, as one small task over the
//! bare socket: it waits on the socket's readiness, its outbox and one timer, and
//! holds no buffer while idle.
//!
//! - reading: when the socket is readable, what the kernel holds is read into a stack
//!   buffer and fed to the connection's [`Decoder`], which keeps bytes only while a
//!   frame or message is incomplete; each whole message goes through `handle.rs`;
//! - writing: replies and deliveries are written by whoever produced them
//!   ([`super::outbox`]); this task only finishes what the kernel refused, when the
//!   socket turns writable, also while a handler awaits the database;
//! - one timer: the next ping or the idle deadline, whichever is first;
//! - closing (`close.rs`, boxed: cold): the close frame after what may still go out,
//!   then the client's answer, each bounded.
//!
//! Measured (S6, 19,000 idle `/ws` connections): 2.8 KiB of RSS each, was 4.8 with
//! axum's `WebSocket`, whose task alone was 1.52 KiB (heaptrack: the join of a reader
//! and a writer, their `select!`s, a `Sleep`, an `Interval`, a `watch` receiver), plus
//! 0.5 KiB of tungstenite read buffer and 0.39 KiB of stream behind the split lock.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use socketioxide::adapter::Adapter;
use tokio::time::Instant;

use super::envelope::WsError;
use super::frame::{Decoder, Event, Frame, Violation};
use super::gateway;
use super::hub::{CloseReason, Dialect, Peer};
use crate::auth::Principal;
use crate::listener::Tracked;
use crate::metrics::RouteLabel;
use crate::realtime::lifetime::LifetimeKey;
use crate::realtime::rate_limit::RateLimiter;
use crate::state::AppState;

mod close;
mod handle;
mod start;

pub use start::{Registered, Start, register};

/// Bytes read from the socket at a time, on the stack: client messages are small (a
/// subscribe is ~80 bytes); a bigger one takes more reads.
const READ_CHUNK: usize = 4096;

/// Reads per readiness at most, so one client cannot hold its worker thread.
const READS_PER_TURN: usize = 16;

/// The route label of a dialect's connections.
fn route(dialect: Dialect) -> RouteLabel {
    RouteLabel {
        route: match dialect {
            Dialect::Envelope | Dialect::Bare => "/ws",
            Dialect::Dashboard => "/ws/dashboard",
            Dialect::Gateway => "/ws/:entity/:section",
        },
    }
}

/// Serves one upgraded connection until it closes: sets it up here, at once, and
/// returns the future that serves it.
///
/// The setup is not part of that future on purpose: an `async fn` keeps its arguments
/// for its whole life, so the socket and the `Start` (moved into the connection) would
/// be stored a second time in every idle connection's task.
pub fn run<A: Adapter>(
    app: AppState<A>,
    wire: Tracked,
    read: Bytes,
    start: Start,
    registered: Registered,
) -> impl Future<Output = ()> {
    let peer = registered.peer.clone();
    let route = route(peer.dialect());
    app.metrics.ws.connections.get_or_create(&route).inc();
    let mut decoder = Decoder::new(app.config.ws.max_message_bytes);
    // What the client sent right after its request, read by hyper.
    decoder.feed(&read);
    let mut conn = Box::new(Conn {
        decoder,
        client_close: None,
        broken: false,
        limiter: RateLimiter::new(app.config.rate_limit_per_sec, app.config.rate_limit_burst),
        app,
        peer: peer.clone(),
        principal: None,
        lifetime: None,
        gateway: None,
        registered,
        route,
    });
    match start {
        Start::Envelope(Some(token)) => conn.authenticate(&token, None),
        Start::Envelope(None) => {}
        Start::Bare(principal) => {
            if conn.adopt(principal).is_err() {
                // A fresh connection holds no channel: only a limit of 0 refuses it.
                let max = conn.app.ws.max_channels();
                conn.reply_error(&WsError::too_many_channels(max), None);
            }
        }
        // A dashboard joined its channel at registration and joins nothing else; with a
        // token, the token's expiry and operator disconnects end it as on `/ws`.
        Start::Dashboard { principal, .. } => {
            if let Some(principal) = principal {
                conn.lifetime = Some(conn.app.lifetimes.register(
                    principal.user_id.clone(),
                    principal.expires_at,
                    peer.clone(),
                ));
                conn.principal = Some(principal);
            }
        }
        // The gateway joined its channels at registration; its token's expiry and
        // operator disconnects end it as on `/ws`.
        Start::Gateway { context, principal } => {
            conn.lifetime = Some(conn.app.lifetimes.register(
                principal.user_id.clone(),
                principal.expires_at,
                peer.clone(),
            ));
            conn.principal = Some(principal);
            conn.gateway = Some(context);
        }
    }
    if !peer.outbox().attach(wire) {
        // One socket per connection: cannot happen, and would only be closed.
        peer.close(CloseReason::Error);
    }
    serve(conn)
}

/// Serves until the connection must close, closes it, then takes it out of the hub.
/// The connection's state is boxed (the task keeps a pointer, once).
async fn serve<A: Adapter>(mut conn: Box<Conn<A>>) {
    conn.live().await;
    // Cold, and larger than the loop: boxed, so an idle connection's task does not
    // carry its state.
    Box::pin(close::close(&mut conn)).await;
    let reason = conn.peer.closing().unwrap_or(CloseReason::Client);
    let Conn {
        app,
        registered,
        route,
        lifetime,
        principal,
        ..
    } = *conn;
    // Out of the hub (every channel, the registry).
    drop(registered);
    if let Some(key) = lifetime {
        app.lifetimes.remove(key);
    }
    app.metrics.ws.connections.get_or_create(&route).dec();
    tracing::debug!(
        user = principal
            .as_ref()
            .map(|p| tracing::field::display(&p.user_id)),
        reason = reason.label(),
        route = route.route,
        "plain WebSocket connection closed"
    );
}

/// What woke the connection's task.
enum Step {
    Close,
    Write,
    Read,
    Timer,
}

/// One connection's state; a message's handler may change it.
struct Conn<A: Adapter> {
    app: AppState<A>,
    peer: Arc<Peer>,
    principal: Option<Principal>,
    lifetime: Option<LifetimeKey>,
    limiter: RateLimiter,
    /// An entity gateway connection's entity and section.
    gateway: Option<gateway::Context>,
    /// Its place in the hub, left when the connection ends.
    registered: Registered,
    /// Its route's label in the metrics.
    route: RouteLabel,
    /// The client's bytes not yet a whole message.
    decoder: Decoder,
    /// The client's close frame, once it sent one (with its status code, if any).
    client_close: Option<Option<u16>>,
    /// The client broke the protocol: what it sends next is not parsed.
    broken: bool,
}

impl<A: Adapter> Conn<A> {
    /// Reads, handles, writes what the kernel refused, pings and watches for idleness
    /// until the connection must close.
    async fn live(&mut self) {
        let peer = self.peer.clone();
        let outbox = peer.outbox();
        let Some(wire) = outbox.wire() else {
            return;
        };
        let ping_every = self.app.config.ws.ping_interval;
        let idle = self.app.config.ws.idle_timeout;
        let mut last_read = Instant::now();
        let mut next_ping = last_read + ping_every;
        let timer = tokio::time::sleep_until(next_ping.min(last_read + idle));
        tokio::pin!(timer);
        // Frames the client sent with its request.
        self.handle_events().await;
        loop {
            let step = poll_fn(|cx| {
                let status = outbox.poll_status(cx);
                if status.closing.is_some() {
                    return Poll::Ready(Step::Close);
                }
                if status.queued && wire.poll_write_ready(cx).is_ready() {
                    return Poll::Ready(Step::Write);
                }
                // Shutdown: nothing new is taken; the close (1001) follows once every
                // connection's message in hand is answered.
                if !status.draining && wire.poll_read_ready(cx).is_ready() {
                    return Poll::Ready(Step::Read);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Step::Timer);
                }
                Poll::Pending
            })
            .await;
            match step {
                Step::Close => return,
                Step::Write => {
                    if outbox.flush().is_err() {
                        // A client that went away without a close frame.
                        peer.close(CloseReason::Client);
                    }
                }
                Step::Read => match self.read_available(wire) {
                    Ok(true) => {
                        last_read = Instant::now();
                        self.handle_events().await;
                    }
                    Ok(false) => {}
                    Err(_) => peer.close(CloseReason::Client),
                },
                Step::Timer => {
                    let now = Instant::now();
                    if now >= last_read + idle {
                        peer.close(CloseReason::Idle);
                        continue;
                    }
                    if now >= next_ping {
                        peer.push_control(&Frame::ping());
                        next_ping = now + ping_every;
                    }
                    timer.as_mut().reset(next_ping.min(last_read + idle));
                }
            }
        }
    }

    /// Reads what the kernel holds into the decoder; true when it held something. An
    /// error is the end of the connection (end of stream included).
    fn read_available(&mut self, wire: &Tracked) -> std::io::Result<bool> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut got = false;
        for _ in 0..READS_PER_TURN {
            match wire.try_read(&mut chunk) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    if !self.broken {
                        self.decoder.feed(&chunk[..n]);
                    }
                    got = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Handles every whole message the decoder holds, until the connection must close.
    async fn handle_events(&mut self) {
        let peer = self.peer.clone();
        // Shutdown: the message in hand is finished, what the client sent after it is
        // not taken (the close, 1001, follows once it is answered).
        while peer.closing().is_none() && !peer.outbox().is_draining() && !self.broken {
            let event = match self.decoder.next() {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(violation) => {
                    self.broken = true;
                    self.decoder = Decoder::new(0);
                    peer.close(match violation {
                        Violation::Protocol => CloseReason::Protocol,
                        Violation::InvalidUtf8 => CloseReason::InvalidData,
                        Violation::TooBig => CloseReason::TooBig,
                    });
                    return;
                }
            };
            match event {
                Event::Text(text) => {
                    let _handling = peer.handling();
                    // Boxed: the handlers' futures (a chat message's database round
                    // trips) are several times the rest of the connection's state,
                    // which every idle connection would otherwise carry.
                    let handler = Box::pin(self.on_text(&text));
                    write_while(&peer, handler).await;
                }
                Event::Binary => self.on_binary(),
                Event::Ping(payload) => peer.push_control(&Frame::pong(&payload)),
                // Only proves liveness, as any frame does.
                Event::Pong => {}
                Event::Close(code) => {
                    self.client_close = Some(code);
                    peer.close(CloseReason::Client);
                }
            }
        }
    }
}

/// Runs `handler` to its end while writing what the kernel refused before (a slow
/// reader's queue keeps moving while a chat message is stored).
async fn write_while(peer: &Peer, handler: impl Future<Output = ()>) {
    let outbox = peer.outbox();
    let mut handler = std::pin::pin!(handler);
    poll_fn(|cx| {
        if handler.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if let Some(wire) = outbox.wire() {
            while outbox.poll_status(cx).queued && wire.poll_write_ready(cx).is_ready() {
                match outbox.flush() {
                    Ok(true) => break,
                    // Refused again: the readiness was cleared, poll it again.
                    Ok(false) => {}
                    Err(_) => {
                        peer.close(CloseReason::Client);
                        break;
                    }
                }
            }
        }
        Poll::Pending
    })
    .await;
}
