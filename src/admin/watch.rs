//! What the Admin UI is shown of this node: its `server_stats` every
//! [`STATS_EVERY`], and its sockets (`all_sockets`, then `socket_connected`,
//! `socket_disconnected`, `room_joined`, `room_left`, `socket_updated`).
//!
//! socketioxide tells nobody when a socket joins or leaves a room, so the socket events
//! come from comparing this node's sockets with what it showed last time, on each tick
//! (a change reaches the UI within [`STATS_EVERY`]). A socket that came and went between
//! two ticks is not shown, as in a UI opened a moment later.
//!
//! Every node speaks for its own sockets only, to every `/admin` socket of the cluster
//! (the emits go through the adapter). A node does all this only while someone watches:
//! an `/admin` socket of its own, or one on another node, heard of on the cluster bus
//! ([`Topic::Admin`]): each node with `/admin` sockets says so every tick, and a new
//! `/admin` socket asks every node for its sockets at once. Without watchers a node
//! keeps nothing and sends nothing.
//!
//! What is shown of a socket is only what the UI needs to list it: its id, a client id
//! (a keyed hash of its engine.io connection, not the engine.io id), transport,
//! namespace, rooms, and of its handshake the address, the time and the path. Never its
//! `data` (the principal), headers (a bearer token, cookies) or query (`?token=`); those
//! are sent empty. No event a client sends or receives is forwarded
//! (`event_received`/`event_sent` are never emitted).
//!
//! [`Topic::Admin`]: crate::realtime::cluster_bus::Topic::Admin
//!
//! One file past 400 lines on purpose: the watcher's state, its wire shapes and the
//! cluster relay change together whenever the Admin UI's protocol does.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::NAMESPACE;
use crate::outbound::MeterSlot;

/// How often a node sends its `server_stats` and socket changes (the package's
/// interval; the UI marks a server unhealthy after 10 s without).
pub const STATS_EVERY: Duration = Duration::from_secs(2);

/// How long a node keeps watching after another node last said it has watchers.
const HEARD_FOR: Duration = Duration::from_secs(6);

/// When a socket connected (kept in its extensions while the Admin UI is on).
#[derive(Debug, Clone, Copy)]
pub struct ConnectedAt(pub SystemTime);

/// Node-to-node messages about watchers ([`Topic::Admin`](crate::realtime::cluster_bus::Topic::Admin)).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// The sender has `/admin` sockets: keep sending.
    Watching,
    /// A new `/admin` socket, in `room`: send it every socket of yours now.
    NewWatcher {
        /// The watcher's own room on `/admin`.
        room: String,
    },
}

/// A socket as the UI lists it (`serialize` in the package, stripped: see the module).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketView {
    id: String,
    client_id: String,
    transport: &'static str,
    nsp: String,
    /// Always empty: a socket's data is the principal, not the operator's to read here.
    data: Map<String, Value>,
    handshake: Handshake,
    rooms: Vec<String>,
}

/// What is shown of a socket's handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Handshake {
    address: String,
    /// Always empty (bearer tokens, cookies).
    headers: Map<String, Value>,
    /// Always empty (`?token=`).
    query: Map<String, Value>,
    issued: u64,
    secure: bool,
    time: String,
    url: String,
    xdomain: bool,
}

/// One line of the dashboard's histograms.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Aggregated {
    timestamp: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    count: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceCount {
    name: String,
    sockets_count: usize,
}

/// The package's `server_stats`, for one node.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    server_id: String,
    hostname: String,
    pid: u32,
    uptime: f64,
    clients_count: usize,
    polling_clients_count: usize,
    aggregated_events: Vec<Aggregated>,
    namespaces: Vec<NamespaceCount>,
}

/// A socket seen on a tick: its view and its engine.io connection.
#[derive(Debug, Clone)]
struct Seen {
    view: SocketView,
    rooms: BTreeSet<String>,
}

/// This node's sockets at one moment.
struct Taken {
    sockets: BTreeMap<(String, String), Seen>,
    /// engine.io connections with a socket, and whether each is long-polling.
    clients: BTreeMap<u64, bool>,
    namespaces: Vec<NamespaceCount>,
}

/// What the node showed last (while watched).
#[derive(Default)]
struct Shown {
    sockets: Option<BTreeMap<(String, String), Seen>>,
    clients: Option<HashSet<u64>>,
    pending: Vec<Aggregated>,
}

/// Who gets every socket of this node, apart from the changes every watcher gets.
pub enum Newcomer<'a, A: Adapter> {
    /// An `/admin` socket of this node: `all_sockets`.
    Local(&'a SocketRef<A>),
    /// An `/admin` socket of another node, by its room: `socket_connected` each.
    Remote(String),
}

/// One node's watch state.
pub struct Watch {
    shown: tokio::sync::Mutex<Shown>,
    heard_until: Mutex<Option<Instant>>,
    hasher: std::collections::hash_map::RandomState,
    server_id: String,
    hostname: String,
    started: Instant,
    engine_path: String,
}

impl Watch {
    /// Nothing shown yet; `engine_path` is `SOCKETIO_PATH` (the handshake's path).
    pub fn new(engine_path: &str) -> Arc<Self> {
        let hostname = hostname();
        let pid = std::process::id();
        // Several nodes may share a host (and tests run two in one process): the
        // package's `hostname#pid` plus a short random tag tells them apart.
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Arc::new(Watch {
            shown: tokio::sync::Mutex::default(),
            heard_until: Mutex::default(),
            hasher: Default::default(),
            server_id: format!("{hostname}#{pid}#{}", tag.get(..6).unwrap_or_default()),
            hostname,
            started: Instant::now(),
            engine_path: engine_path.to_owned(),
        })
    }

    /// Another node has watchers.
    pub fn heard(&self, now: Instant) {
        *self.heard_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(now + HEARD_FOR);
    }

    fn heard_lately(&self, now: Instant) -> bool {
        self.heard_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| until > now)
    }

    /// `/admin` sockets on this node.
    pub fn local_watchers<A: Adapter>(io: &SocketIo<A>) -> usize {
        io.of(NAMESPACE).map_or(0, |op| {
            op.sockets().into_iter().filter(|s| s.connected()).count()
        })
    }

    /// One tick: whether anyone watches; if so, the changes since the last tick go to
    /// every watcher and the node's stats are returned for sending.
    pub async fn tick<A: Adapter>(&self, io: &SocketIo<A>) -> Option<ServerStats> {
        let now = Instant::now();
        if Self::local_watchers(io) == 0 && !self.heard_lately(now) {
            *self.shown.lock().await = Shown::default();
            return None;
        }
        Some(self.sweep(io, None).await)
    }

    /// Sends the changes since the last sweep to every watcher (and, to `newcomer`,
    /// every socket of this node), and returns the node's stats.
    pub async fn sweep<A: Adapter>(
        &self,
        io: &SocketIo<A>,
        newcomer: Option<Newcomer<'_, A>>,
    ) -> ServerStats {
        let mut shown = self.shown.lock().await;
        let taken = self.take(io);
        let when = chrono::Utc::now();
        let date = crate::domain::time::rfc3339_ms(&when);
        let second = u64::try_from(when.timestamp()).unwrap_or_default() * 1000;

        if let Some(before) = &shown.clients {
            let opened = taken.clients.keys().filter(|c| !before.contains(c)).count();
            let closed = before
                .iter()
                .filter(|c| !taken.clients.contains_key(c))
                .count();
            for (kind, count) in [("rawConnection", opened), ("rawDisconnection", closed)] {
                if count > 0 {
                    shown.pending.push(Aggregated {
                        timestamp: second,
                        kind,
                        count: count as u64,
                    });
                }
            }
        }
        shown.clients = Some(taken.clients.keys().copied().collect());

        let admin = io.of(NAMESPACE);
        match (&shown.sockets, &admin) {
            // Nothing shown yet by this node: a newcomer gets everything below; other
            // watchers (a node that started while the UI was open) get it as changes.
            (None, Some(admin)) if newcomer.is_none() => {
                for seen in taken.sockets.values() {
                    let event = ("socket_connected", (seen.view.clone(), date.clone()));
                    emit(admin, event.0, &event.1).await;
                }
            }
            (Some(before), Some(admin)) => {
                changes(admin, before, &taken.sockets, &date).await;
            }
            _ => {}
        }
        match (newcomer, &admin) {
            (Some(Newcomer::Local(socket)), _) => {
                let list: Vec<&SocketView> = taken.sockets.values().map(|s| &s.view).collect();
                if let Err(e) = socket.emit("all_sockets", &list) {
                    tracing::debug!(error = %e, "all_sockets not sent");
                }
            }
            (Some(Newcomer::Remote(room)), Some(admin)) => {
                for seen in taken.sockets.values() {
                    let to = admin.clone().to(room.clone());
                    emit(&to, "socket_connected", &(seen.view.clone(), date.clone())).await;
                }
            }
            _ => {}
        }

        let polling = taken.clients.values().filter(|p| **p).count();
        let stats = ServerStats {
            server_id: self.server_id.clone(),
            hostname: self.hostname.clone(),
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            clients_count: taken.clients.len(),
            polling_clients_count: polling,
            aggregated_events: std::mem::take(&mut shown.pending),
            namespaces: taken.namespaces,
        };
        shown.sockets = Some(taken.sockets);
        stats
    }

    /// This node's sockets now.
    fn take<A: Adapter>(&self, io: &SocketIo<A>) -> Taken {
        let mut taken = Taken {
            sockets: BTreeMap::new(),
            clients: BTreeMap::new(),
            namespaces: Vec::new(),
        };
        for op in io.nsps() {
            let path = op.ns_path().to_owned();
            let sockets: Vec<SocketRef<A>> =
                op.sockets().into_iter().filter(|s| s.connected()).collect();
            taken.namespaces.push(NamespaceCount {
                name: path.clone(),
                sockets_count: sockets.len(),
            });
            for socket in sockets {
                let client = self.client_of(&socket);
                let polling = socket.transport_type() == socketioxide::TransportType::Polling;
                taken.clients.insert(client, polling);
                // The UI's own sockets are not listed: watching is not an activity.
                if path == NAMESPACE {
                    continue;
                }
                let seen = self.view(&socket, client, &path);
                taken
                    .sockets
                    .insert((path.clone(), socket.id.to_string()), seen);
            }
        }
        taken.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        taken
    }

    /// The socket's engine.io connection, as a keyed hash of its handshake's slot (one
    /// per engine.io session, shared by its sockets on every namespace).
    fn client_of<A: Adapter>(&self, socket: &SocketRef<A>) -> u64 {
        match socket.req_parts().extensions.get::<Arc<MeterSlot>>() {
            Some(slot) => self.hasher.hash_one(Arc::as_ptr(slot) as usize),
            None => self.hasher.hash_one(socket.id.as_str()),
        }
    }

    fn view<A: Adapter>(&self, socket: &SocketRef<A>, client: u64, path: &str) -> Seen {
        let parts = socket.req_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        // As the package: the address a proxy forwarded, else the peer's.
        let address = header("cf-connecting-ip")
            .or_else(|| header("x-forwarded-for").and_then(|v| v.split(',').next()))
            .map(|v| v.trim().to_owned())
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|info| info.0.ip().to_string())
            })
            .unwrap_or_default();
        let connected = socket
            .extensions
            .get::<ConnectedAt>()
            .map_or(SystemTime::now(), |at| at.0);
        let issued = connected
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let rooms: BTreeSet<String> = socket.rooms().into_iter().map(|r| r.to_string()).collect();
        let transport = match socket.transport_type() {
            socketioxide::TransportType::Polling => "polling",
            socketioxide::TransportType::Websocket => "websocket",
        };
        let view = SocketView {
            id: socket.id.to_string(),
            client_id: format!("{:012x}", client & 0xffff_ffff_ffff),
            transport,
            nsp: path.to_owned(),
            data: Map::new(),
            handshake: Handshake {
                address,
                headers: Map::new(),
                query: Map::new(),
                issued,
                secure: header("x-forwarded-proto") == Some("https"),
                time: crate::domain::time::rfc3339_ms(&chrono::DateTime::<chrono::Utc>::from(
                    connected,
                )),
                // The path only: the query may carry `?token=`.
                url: format!("{}/", self.engine_path),
                xdomain: header("origin").is_some(),
            },
            rooms: rooms.iter().cloned().collect(),
        };
        Seen { view, rooms }
    }
}

/// What changed between two looks, to every watcher.
async fn changes<A: Adapter>(
    admin: &socketioxide::operators::BroadcastOperators<A>,
    before: &BTreeMap<(String, String), Seen>,
    now: &BTreeMap<(String, String), Seen>,
    date: &str,
) {
    for (key, seen) in now {
        let Some(old) = before.get(key) else {
            emit(admin, "socket_connected", &(seen.view.clone(), date)).await;
            continue;
        };
        let (nsp, id) = key;
        for room in seen.rooms.difference(&old.rooms) {
            emit(admin, "room_joined", &(nsp, room, id, date)).await;
        }
        for room in old.rooms.difference(&seen.rooms) {
            emit(admin, "room_left", &(nsp, room, id, date)).await;
        }
        if seen.view.transport != old.view.transport {
            let update =
                serde_json::json!({ "id": id, "nsp": nsp, "transport": seen.view.transport });
            emit(admin, "socket_updated", &update).await;
        }
    }
    for (nsp, id) in before.keys().filter(|k| !now.contains_key(*k)) {
        // The reason is not known here (socketioxide tells the namespace's own handler).
        emit(
            admin,
            "socket_disconnected",
            &(nsp, id, "disconnected", date),
        )
        .await;
    }
}

/// Emits to the watchers `to` selects; a failure is logged (the next tick goes on).
async fn emit<A: Adapter, T: Serialize + ?Sized>(
    to: &socketioxide::operators::BroadcastOperators<A>,
    event: &str,
    data: &T,
) {
    if let Err(e) = to.clone().emit(event.to_owned(), data).await {
        tracing::debug!(event, error = %e, "Admin UI event not delivered to every watcher");
    }
}

/// The machine's name, as `os.hostname()` gives it to the package.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "switchboard".to_owned())
}
