//! What a socket carries for its whole life: who it is, its rate limits, its dialect.

use crate::domain::user::UserId;
use std::sync::{Arc, Mutex};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::auth::Principal;
use crate::outbound::{MeterSlot, encoded_size};
use crate::realtime::ack::Dialect;
use crate::realtime::rate_limit::RateLimiter;
use crate::state::AppState;

/// Per-socket context, shared by all of the socket's event handlers.
pub struct Session<A: Adapter> {
    /// Application state.
    pub app: AppState<A>,
    /// Identity fixed at connect.
    pub principal: Principal,
    /// Token buckets.
    pub limiter: RateLimiter,
    /// Envelope dialect of the namespace.
    pub dialect: Dialect,
    /// Namespace path (for logs and broadcasts).
    pub ns: &'static str,
    /// The connection the socket's packets leave by (absent on a connection the
    /// listener did not meter: never in production, possible under other servers).
    outbound: Option<Arc<MeterSlot>>,
    /// On the restaurant namespaces, the socket's events are handled one at a time, in
    /// the order they arrived (see [`Turns`]).
    turns: Option<Turns>,
    /// Events being handled (also in the socket's extensions, for shutdown waves).
    pub busy: Arc<crate::shutdown::Busy>,
}

/// One event at a time per socket, in arrival order.
///
/// socketioxide runs each event's handler on a task of its own, so two events of one
/// socket may be handled in either order. Seed 001's tablets emit `join:restaurant`
/// and `orders:sync` back to back, without acks, and expect the sync to see the join
/// (a Node server joins the room synchronously). Each event takes its turn when it
/// arrives (socketioxide calls the handler synchronously, in the socket's packet
/// order) and waits for the turn before it to end: a chain of one-shot channels, so a
/// turn also ends when its task ends in any other way.
#[derive(Debug, Default)]
pub struct Turns {
    last: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

/// An event's place in its socket's chain: wait for the one before, hold this one
/// until the event is handled.
#[derive(Debug)]
pub struct Turn {
    before: Option<tokio::sync::oneshot::Receiver<()>>,
    _mine: tokio::sync::oneshot::Sender<()>,
}

impl Turns {
    /// The next turn (call synchronously when the event arrives).
    pub fn take(&self) -> Turn {
        let (mine, next) = tokio::sync::oneshot::channel();
        let before = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(next);
        Turn {
            before,
            _mine: mine,
        }
    }
}

impl Turn {
    /// Waits until every earlier event of the socket is handled; the turn is this
    /// event's until it is dropped.
    pub async fn wait(&mut self) {
        if let Some(before) = self.before.take() {
            // Sent or dropped: either way the earlier event is over.
            let _ = before.await;
        }
    }
}

impl<A: Adapter> Session<A> {
    /// A new session for a verified principal.
    pub fn new(
        app: AppState<A>,
        principal: Principal,
        dialect: Dialect,
        ns: &'static str,
        outbound: Option<Arc<MeterSlot>>,
    ) -> Self {
        let limiter = RateLimiter::new(app.config.rate_limit_per_sec, app.config.rate_limit_burst);
        let turns = (dialect == Dialect::Restaurant).then(Turns::default);
        Session {
            app,
            principal,
            limiter,
            dialect,
            ns,
            outbound,
            turns,
            busy: Arc::default(),
        }
    }

    /// This event's turn, on namespaces whose events are handled in order.
    pub fn turn(&self) -> Option<Turn> {
        self.turns.as_ref().map(Turns::take)
    }

    /// Charges a reply or direct emit of `data` queued for this socket to its
    /// connection's byte budget (`MAX_SOCKET_BUFFER_BYTES`); over it, the connection is
    /// closed. Long-polling sockets are not charged: a client that stops polling is
    /// closed by engine.io's ping timeout, and its queue is bounded in packets.
    pub fn charge(&self, socket: &SocketRef<A>, data: &serde_json::Value) {
        if let Some(slot) = &self.outbound
            && socket.transport_type() == socketioxide::TransportType::Websocket
        {
            self.app
                .meters
                .charge(slot, encoded_size(self.app.config.engine.parser, data));
        }
    }

    /// The acting user.
    pub fn user_id(&self) -> &UserId {
        &self.principal.user_id
    }
}
