//! Emitting to rooms from handlers, REST routes and background tasks.
//!
//! A broadcast reports an error when any one target's buffer was full, even though the
//! others got it; the work behind it already succeeded, so failures are logged and
//! counted here and never turned into a failed reply.

use crate::domain::user::UserId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide_core::adapter::RoomParam;

use crate::metrics::NsLabel;

/// `data` as the JSON parser sends it, whatever the parser. Types that serialize
/// differently for binary formats do so under `PARSER=msgpack` (its serializer is not
/// "human readable"): a `Uuid` becomes 16 bytes, and a map keyed by `Uuid` gets byte
/// keys. Through this wrapper such a serializer gets the JSON value's shape instead
/// (strings); the JSON parser, human readable, serializes `data` directly, at no cost.
/// Every emit goes through it (acks carry `serde_json::Value`s already).
pub struct Readable<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Readable<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            serde_json::to_value(self.0)
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer)
        }
    }
}

/// Sends events to rooms of a namespace.
pub struct Broadcaster<A: Adapter> {
    io: SocketIo<A>,
    failures: Counter,
    emits: Family<NsLabel, Counter>,
}

/// The `namespace` label of a namespace path: its family, as `switchboard_sockets_connected`
/// spells it (every restaurant namespace is `restaurant`).
pub fn ns_family(ns: &str) -> &'static str {
    use super::events::ns;
    match ns {
        ns::CHAT => ns::CHAT,
        ns::NOTIFICATIONS => ns::NOTIFICATIONS,
        _ => "restaurant",
    }
}

impl<A: Adapter> Broadcaster<A> {
    /// Wraps the socket.io handle; failures are counted on `failures`, emits on `emits`.
    pub fn new(io: SocketIo<A>, failures: Counter, emits: Family<NsLabel, Counter>) -> Self {
        Broadcaster {
            io,
            failures,
            emits,
        }
    }

    fn count(&self, ns: &str) {
        self.emits
            .get_or_create(&NsLabel {
                namespace: ns_family(ns),
            })
            .inc();
    }

    /// The socket.io handle.
    pub fn io(&self) -> &SocketIo<A> {
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
        self.count(ns);
        if let Err(e) = op.to(rooms).emit(event, &Readable(data)).await {
            self.failed(event, &e);
        }
    }

    /// Emits to the sockets of this node only, in any of `rooms` of namespace `ns`. A
    /// namespace that is gone meanwhile (its last socket left) had nobody to reach.
    pub async fn emit_local<T: Serialize + ?Sized>(
        &self,
        ns: &str,
        rooms: impl RoomParam,
        event: &str,
        data: &T,
    ) {
        let Some(op) = self.io.of(ns) else {
            return;
        };
        self.count(ns);
        if let Err(e) = op.local().to(rooms).emit(event, &Readable(data)).await {
            self.failed(event, &e);
        }
    }

    /// Emits to every socket of namespace `ns`.
    pub async fn emit_all<T: Serialize + ?Sized>(&self, ns: &str, event: &str, data: &T) {
        let Some(op) = self.io.of(ns) else {
            self.failed(event, &format_args!("namespace {ns} not registered"));
            return;
        };
        self.count(ns);
        if let Err(e) = op.emit(event, &Readable(data)).await {
            self.failed(event, &e);
        }
    }

    /// Emits to every socket in `rooms` except `socket` itself.
    pub async fn emit_except_self<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef<A>,
        rooms: impl RoomParam,
        event: &str,
        data: &T,
    ) {
        self.count(socket.ns());
        if let Err(e) = socket.to(rooms).emit(event, &Readable(data)).await {
            self.failed(event, &e);
        }
    }

    /// [`Self::emit_except_self`] for state that only its newest value matters
    /// (`typing`): sent volatile, as Node's `socket.volatile.to(room).emit()`. It
    /// bypasses each recipient's packet queue; a recipient that has not taken the
    /// previous volatile packet yet (a long-polling client between requests, a stalled
    /// websocket) gets only the newest one. So a client that stops reading holds at
    /// most one such packet, and one that comes back is not replayed stale states.
    pub async fn emit_volatile_except_self<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef<A>,
        rooms: impl RoomParam,
        event: &str,
        data: &T,
    ) {
        if let Err(e) = socket
            .volatile()
            .to(rooms)
            .emit(event, &Readable(data))
            .await
        {
            self.failed(event, &e);
        }
    }

    /// Makes every socket in `holders` leave `rooms` on every node: the leave goes
    /// through the adapter, then a request that every node answers (handled after the
    /// leave) confirms it is in effect everywhere before the caller replies.
    pub async fn leave(&self, ns: &str, holders: impl RoomParam, rooms: impl RoomParam) {
        let Some(op) = self.io.of(ns) else {
            return;
        };
        if let Err(e) = op.to(holders).leave(rooms).await {
            self.failed("leave", &e);
        }
        super::cluster::barrier(&self.io, ns).await;
    }

    /// Distinct users with a socket connected to `ns` on any node (from the cluster's
    /// `user:<id>` rooms).
    pub async fn connected_user_ids(&self, ns: &str) -> Vec<UserId> {
        let Some(op) = self.io.of(ns) else {
            return Vec::new();
        };
        let rooms = match op.rooms().await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(ns, error = %e, "could not list rooms across the cluster");
                return Vec::new();
            }
        };
        let mut ids: Vec<UserId> = rooms
            .iter()
            .filter_map(|r| super::rooms::parse_user(r))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}
