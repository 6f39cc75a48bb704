//! The socket.io Admin UI (`@socket.io/admin-ui` 0.5): its server side on `/admin`,
//! what Node's `instrument(io, { auth: { type: "basic", username, password } })` does.
//!
//! Off unless `ADMIN_UI=true`; then `/admin` is not mounted and a client asking for it
//! gets socket.io's "Invalid namespace", as for any unknown namespace.
//!
//! - Login ([`login`]): `auth {username, password}` or `{sessionId}`; any failure is
//!   `connect_error` `invalid credentials`. A new session id is sent as `session`.
//! - On connect: `config` (the features below), `all_sockets` (this node's sockets),
//!   and every other node sends its own as `socket_connected`; then each node sends its
//!   `server_stats` and socket changes every two seconds ([`watch`]).
//! - Actions `join`, `leave` (`nsp, room, filter?`) and `_disconnect` (`nsp, close,
//!   filter?`), cluster-wide, as socket.io v4's `socketsJoin`/`socketsLeave`/
//!   `disconnectSockets`: `filter` is a room, or a socket id (a socket is not in a room
//!   of its own id in socketioxide, so an id is looked up among the namespace's
//!   sockets on every node). `emit` is not offered: the UI cannot send events to
//!   clients. `close` is ignored (the socket leaves the namespace; its connection stays
//!   for its other namespaces).
//!
//! The advertised features are the package's production set plus `ALL_EVENTS`, which
//! makes the UI show its Sockets, Rooms, Clients and Events pages for the socket list
//! this server sends. Unlike the package's development mode, no `event_received` or
//! `event_sent` ever follows: message contents never reach the UI.

pub mod files;
pub mod login;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::realtime::cluster_bus::Topic;
use crate::state::AppState;
use login::{Admitted, Login};
use watch::{Message, Newcomer, STATS_EVERY, Watch};

/// The namespace the UI connects to (the package's default `namespaceName`).
pub const NAMESPACE: &str = "/admin";

/// What `config` advertises (see the module).
const FEATURES: [&str; 8] = [
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];

/// Longest room name an action may name (ours are under 100 characters).
const MAX_ROOM_CHARS: usize = 256;

/// The Admin UI's state on one node.
pub struct Admin {
    login: Login,
    watch: Arc<Watch>,
}

/// The session id made at login, from the middleware to the connect handler.
#[derive(Debug, Clone)]
struct NewSession(String);

/// Mounts `/admin` when the Admin UI is on, and starts this node's ticks and its bus
/// reader. Returns the namespace's adapter initialisation to await.
pub fn register<A: Adapter + DefinedAdapter>(app: &AppState<A>) -> Option<A::InitRes> {
    let config = &app.config.admin_ui;
    let hash = config.password_hash.clone().filter(|_| config.enabled)?;
    let admin = Arc::new(Admin {
        login: Login::new(config.username.clone(), hash),
        watch: Watch::new(&app.config.engine.path),
    });
    let io = app.fanout.broadcaster.io().clone();
    let init = io.ns(NAMESPACE, handler(app, &admin));
    start_ticks(app, &admin);
    listen_to_other_nodes(app, &admin);
    Some(init)
}

fn handler<A: Adapter>(
    app: &AppState<A>,
    admin: &Arc<Admin>,
) -> impl ConnectHandler<A, (SocketRef<A>,)> + use<A> {
    let mw_admin = admin.clone();
    let mw_app = app.clone();
    let middleware = move |socket: SocketRef<A>, TryData(auth): TryData<Value>| {
        let admin = mw_admin.clone();
        let app = mw_app.clone();
        async move {
            let peer = socket
                .req_parts()
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip());
            let admitted = admin.login.admit(auth.ok().as_ref(), peer).await?;
            if let Admitted::NewSession(id) = admitted {
                socket.extensions.insert(NewSession(id));
            }
            // Before CONNECT is sent, so an action the UI sends at once finds them.
            register_actions(&app, &socket);
            Ok::<(), login::InvalidCredentials>(())
        }
    };
    let connect_admin = admin.clone();
    let connect_app = app.clone();
    let on_connect = move |socket: SocketRef<A>| {
        let admin = connect_admin.clone();
        let app = connect_app.clone();
        async move {
            if let Some(NewSession(id)) = socket.extensions.get::<NewSession>() {
                let _ = socket.emit("session", &id);
            }
            let _ = socket.emit("config", &json!({ "supportedFeatures": FEATURES }));
            let room = watcher_room(&socket);
            socket.join(room.clone());
            let io = app.fanout.broadcaster.io();
            let stats = admin.watch.sweep(io, Some(Newcomer::Local(&socket))).await;
            emit_stats(io, &stats).await;
            if let Some(bus) = app.cluster_bus() {
                // Logged and counted by the bus; the UI then sees this node only.
                let _ = bus
                    .publish(Topic::Admin, &Message::NewWatcher { room })
                    .await;
            }
        }
    };
    on_connect.with(middleware)
}

/// An `/admin` socket's own room, which other nodes send their sockets to.
fn watcher_room<A: Adapter>(socket: &SocketRef<A>) -> String {
    format!("admin-watcher:{}", socket.id)
}

async fn emit_stats<A: Adapter>(io: &SocketIo<A>, stats: &watch::ServerStats) {
    if let Some(admin) = io.of(NAMESPACE)
        && let Err(e) = admin.emit("server_stats", stats).await
    {
        tracing::debug!(error = %e, "server_stats not delivered to every watcher");
    }
}

/// Every [`STATS_EVERY`]: this node's changes and stats, while anyone watches; and,
/// while this node has watchers, a word to the other nodes that someone does.
fn start_ticks<A: Adapter>(app: &AppState<A>, admin: &Arc<Admin>) {
    let app = app.clone();
    let admin = admin.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STATS_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let io = app.fanout.broadcaster.io();
            if Watch::local_watchers(io) > 0
                && let Some(bus) = app.cluster_bus()
            {
                let _ = bus.publish(Topic::Admin, &Message::Watching).await;
            }
            if let Some(stats) = admin.watch.tick(io).await {
                emit_stats(io, &stats).await;
            }
        }
    });
}

/// Watchers on other nodes: keep watching, and send a new one every socket of this node.
fn listen_to_other_nodes<A: Adapter>(app: &AppState<A>, admin: &Arc<Admin>) {
    let Some(bus) = app.cluster_bus() else {
        return;
    };
    let mut rx = bus.subscribe(Topic::Admin);
    let app = app.clone();
    let admin = admin.clone();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let io = app.fanout.broadcaster.io();
            admin.watch.heard(std::time::Instant::now());
            match serde_json::from_value::<Message>(message) {
                Ok(Message::Watching) => {}
                Ok(Message::NewWatcher { room }) => {
                    let stats = admin.watch.sweep(io, Some(Newcomer::Remote(room))).await;
                    emit_stats(io, &stats).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable Admin UI message from another node");
                }
            }
        }
    });
}

/// The arguments of `join`/`leave` (`nsp, room, filter?`) and `_disconnect` (`nsp,
/// close, filter?`): one to three values, the rest ignored. (A tuple type, so that
/// socketioxide hands over every argument, not only the first.)
#[derive(Debug)]
struct Args(Vec<Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the action's arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut args = Vec::with_capacity(3);
                while let Some(value) = seq.next_element::<Value>()? {
                    if args.len() < 3 {
                        args.push(value);
                    }
                }
                Ok(Args(args))
            }
        }
        deserializer.deserialize_tuple(3, ArgsVisitor)
    }
}

/// An action, decoded.
#[derive(Debug, Serialize)]
enum Action {
    Join(String),
    Leave(String),
    Disconnect,
}

fn register_actions<A: Adapter>(app: &AppState<A>, socket: &SocketRef<A>) {
    for name in ["join", "leave", "_disconnect"] {
        let app = app.clone();
        socket.on(name, move |TryData(args): TryData<Args>| {
            let app = app.clone();
            async move {
                let Ok(Args(args)) = args else {
                    tracing::debug!(action = name, "Admin UI action with unreadable arguments");
                    return;
                };
                let text = |i: usize| args.get(i).and_then(Value::as_str);
                let (Some(nsp), filter) = (text(0), text(2)) else {
                    return;
                };
                let action = match name {
                    "_disconnect" => Action::Disconnect,
                    _ => {
                        let Some(room) = text(1)
                            .filter(|r| !r.is_empty() && r.chars().count() <= MAX_ROOM_CHARS)
                        else {
                            return;
                        };
                        if name == "join" {
                            Action::Join(room.to_owned())
                        } else {
                            Action::Leave(room.to_owned())
                        }
                    }
                };
                run_action(&app, nsp, filter, action).await;
            }
        });
    }
}

/// Runs `action` on the sockets of `nsp` that `filter` selects, on every node.
async fn run_action<A: Adapter>(
    app: &AppState<A>,
    nsp: &str,
    filter: Option<&str>,
    action: Action,
) {
    let io = app.fanout.broadcaster.io();
    // The UI's own namespace is not listed, so not acted on either.
    let Some(op) = io.of(nsp).filter(|_| nsp != NAMESPACE) else {
        tracing::debug!(nsp, "Admin UI action on an unknown namespace");
        return;
    };
    tracing::info!(nsp, ?filter, ?action, "Admin UI action");
    // A socket id: the socket, wherever it is.
    if let Some(id) = filter.and_then(|f| f.parse::<socketioxide::socket::Sid>().ok()) {
        let found = match op.clone().fetch_sockets().await {
            Ok(sockets) => sockets.into_iter().find(|s| s.data().id == id),
            Err(e) => {
                tracing::warn!(nsp, error = %e, "Admin UI action: sockets not fetched");
                return;
            }
        };
        if let Some(socket) = found {
            let result = match action {
                Action::Join(room) => socket.join(room).await.map_err(|e| e.to_string()),
                Action::Leave(room) => socket.leave(room).await.map_err(|e| e.to_string()),
                Action::Disconnect => socket.disconnect().await.map_err(|e| e.to_string()),
            };
            if let Err(e) = result {
                tracing::warn!(nsp, error = %e, "Admin UI action failed");
            }
            return;
        }
    }
    let op = match filter {
        Some(room) => op.within(room.to_owned()),
        None => op,
    };
    let result = match action {
        Action::Join(room) => op.join(room).await.map_err(|e| e.to_string()),
        Action::Leave(room) => op.leave(room).await.map_err(|e| e.to_string()),
        Action::Disconnect => op.disconnect().await.map_err(|e| e.to_string()),
    };
    if let Err(e) = result {
        tracing::warn!(nsp, error = %e, "Admin UI action failed");
    }
}
