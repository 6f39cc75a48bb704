//! Emitting to rooms from handlers, REST routes and background tasks.
//!
//! A broadcast reports an error when any one target's buffer was full, even though the
//! others got it; the work behind it already succeeded, so failures are logged and
//! counted here and never turned into a failed reply.

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::SocketRef;
use socketioxide_core::adapter::RoomParam;

/// Sends events to rooms of a namespace.
#[derive(Debug)]
pub struct Broadcaster {
    io: SocketIo<LocalAdapter>,
    failures: Counter,
}

impl Broadcaster {
    /// Wraps the socket.io handle; failures are counted on `failures`.
    pub fn new(io: SocketIo<LocalAdapter>, failures: Counter) -> Self {
        Broadcaster { io, failures }
    }

    /// The socket.io handle.
    pub fn io(&self) -> &SocketIo<LocalAdapter> {
        &self.io
    }

    fn failed(&self, event: &str, error: &dyn std::fmt::Display) {
        self.failures.inc();
        tracing::warn!(event, error = %error, "broadcast did not reach every socket");
    }

    /// Emits to every socket in any of `rooms` of namespace `ns`, each socket once.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        rooms: impl RoomParam,
        event: &str,
        data: &T,
    ) {
        let Some(op) = self.io.of(ns) else {
            self.failed(event, &format_args!("namespace {ns} not registered"));
            return;
        };
        if let Err(e) = op.to(rooms).emit(event, data).await {
            self.failed(event, &e);
        }
    }

    /// Emits to every socket of namespace `ns`.
    pub async fn emit_all<T: Serialize + ?Sized>(&self, ns: &str, event: &str, data: &T) {
        let Some(op) = self.io.of(ns) else {
            self.failed(event, &format_args!("namespace {ns} not registered"));
            return;
        };
        if let Err(e) = op.emit(event, data).await {
            self.failed(event, &e);
        }
    }

    /// Emits to every socket in `rooms` except `socket` itself.
    pub async fn emit_except_self<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        rooms: impl RoomParam,
        event: &str,
        data: &T,
    ) {
        if let Err(e) = socket.to(rooms).emit(event, data).await {
            self.failed(event, &e);
        }
    }

    /// Makes every socket in `holders` leave `rooms` (through the adapter, so it also
    /// applies to sockets on other nodes once a cluster adapter is used).
    pub async fn leave(&self, ns: &str, holders: impl RoomParam, rooms: impl RoomParam) {
        let Some(op) = self.io.of(ns) else {
            return;
        };
        if let Err(e) = op.to(holders).leave(rooms).await {
            self.failed("leave", &e);
        }
    }

    /// Distinct users with a socket connected to `ns` on this node.
    pub fn connected_user_ids(&self, ns: &str) -> Vec<i64> {
        let Some(op) = self.io.of(ns) else {
            return Vec::new();
        };
        let mut ids: Vec<i64> = op
            .sockets()
            .into_iter()
            .filter_map(|s| {
                s.extensions
                    .get::<crate::auth::Principal>()
                    .map(|p| p.user_id)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
