//! What a socket carries for its whole life: who it is, its rate limits, its dialect.

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::auth::Principal;
use crate::outbound::{MeterSlot, json_size};
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
        Session {
            app,
            principal,
            limiter,
            dialect,
            ns,
            outbound,
        }
    }

    /// Charges a reply or direct emit of `data` queued for this socket to its
    /// connection's byte budget (`MAX_SOCKET_BUFFER_BYTES`); over it, the connection is
    /// closed. Long-polling sockets are not charged: a client that stops polling is
    /// closed by engine.io's ping timeout, and its queue is bounded in packets.
    pub fn charge(&self, socket: &SocketRef<A>, data: &serde_json::Value) {
        if let Some(slot) = &self.outbound
            && socket.transport_type() == socketioxide::TransportType::Websocket
        {
            self.app.meters.charge(slot, json_size(data));
        }
    }

    /// The acting user.
    pub fn user_id(&self) -> i64 {
        self.principal.user_id
    }
}
