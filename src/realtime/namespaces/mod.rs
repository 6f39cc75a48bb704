//! Namespace registration and the connect-time identity check they share.
//!
//! Everything that can refuse a connection happens in the connect middleware, which
//! runs before socketioxide sends CONNECT: a refused client gets `connect_error` with
//! the code as its message. Event handlers are registered there too, so an event the
//! client emits the moment it is connected always finds its handler.
//!
//! A refusal is for "you may not" only. When admission fails on our side (the database),
//! the transport is closed instead, so that socket.io-client reconnects by itself.

pub mod chat;
pub mod notifications;
pub mod restaurant;

use crate::domain::user::UserId;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;

use super::ack::Dialect;
use super::cluster::BoxFuture;
use super::events::ns;
use super::handler::on_unknown;
use super::lifetime::{LifetimeKey, SocketConnection};
use super::session::Session;
use crate::auth::{Principal, token_from_handshake};
use crate::error::{AppError, ErrorCode};
use crate::metrics::{CodeLabel, DisconnectLabels, NsLabel};
use crate::outbound::MeterSlot;
use crate::realtime::dynamic::{self, Hold};
use crate::realtime::orders;
use crate::state::AppState;

/// A refused connection; `Display` is exactly the wire code.
#[derive(Debug)]
pub struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// How long a cut waits for a websocket upgrade in flight to finish.
const UPGRADE_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// Closes the transport of a socket being refused for a fault of ours (see
/// [`crate::outbound::Meters::close_transport`]), once any websocket upgrade in flight
/// has finished. engine.io-client pauses long-polling as soon as the server answers its
/// upgrade probe and resumes only through the upgrade; a probe closed in between leaves
/// the client paused and deaf until its ping timeout (45 s by default) instead of
/// reconnecting at once. The CONNECT is held unanswered meanwhile, so the refusal
/// socketioxide queues afterwards never reaches the client.
async fn cut_transport<A: Adapter>(app: &AppState<A>, socket: &SocketRef<A>) {
    let upgrading = || {
        socket
            .req_parts()
            .extensions
            .get::<Arc<MeterSlot>>()
            .is_some_and(|slot| slot.is_websocket())
            && socket.transport_type() == socketioxide::TransportType::Polling
    };
    let deadline = tokio::time::Instant::now() + UPGRADE_SETTLE;
    while upgrading() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.meters
        .close_transport(socket.req_parts(), socket.id.as_str());
}

/// Verifies the handshake's token (auth payload, header, or query).
fn authenticate<A: Adapter>(
    app: &AppState<A>,
    socket: &SocketRef<A>,
    auth: Option<&Value>,
) -> Result<Principal, AppError> {
    let token = token_from_handshake(auth, socket.req_parts()).ok_or(AppError::Unauthenticated)?;
    app.verifier.verify(&token)
}

fn on_disconnect<A: Adapter>(socket: &SocketRef<A>, app: &AppState<A>, label: &'static str) {
    let app = app.clone();
    socket.on_disconnect(
        move |socket: SocketRef<A>, reason: DisconnectReason| async move {
            if let Some(key) = socket.extensions.get::<LifetimeKey>() {
                app.lifetimes.remove(key);
            }
            app.metrics
                .sockets
                .get_or_create(&NsLabel { namespace: label })
                .dec();
            app.metrics
                .disconnects
                .get_or_create(&DisconnectLabels {
                    namespace: label,
                    reason: disconnect_label(reason),
                })
                .inc();
            tracing::debug!(ns = %socket.ns(), sid = %socket.id, ?reason, "socket disconnected");
        },
    );
}

/// The `reason` label of `switchboard_disconnects_total`.
fn disconnect_label(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "multiple_http_polling",
        DisconnectReason::PacketParsingError => "packet_parsing_error",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::ClientNSDisconnect => "client_namespace_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_namespace_disconnect",
        DisconnectReason::ClosingServer => "closing_server",
    }
}

/// Registers a connected socket to end when its token expires (or when an operator
/// ends its user's sessions). From the connect handler: a socket refused later, or
/// whose CONNECT could not be sent, never gets a disconnect handler call, so it must
/// not be registered before.
fn track_lifetime<A: Adapter>(app: &AppState<A>, socket: &SocketRef<A>) {
    let Some(principal) = socket.extensions.get::<Principal>() else {
        return;
    };
    let connection = SocketConnection::new(app.fanout.broadcaster.io().clone(), socket);
    let key = app.lifetimes.register(
        principal.user_id.clone(),
        principal.expires_at,
        Arc::new(connection),
    );
    socket.extensions.insert(key);
    // Closed meanwhile: its disconnect handler may have run before the key was there
    // (`connected` turns false before that handler runs).
    if !socket.connected() {
        app.lifetimes.remove(key);
    }
}

/// Mounts every namespace on the socket.io instance held by `app`. Returns the adapter
/// initialisations to await (remote adapters subscribe to their channels there) and
/// the family of `/restaurants/<id>`, which cluster routing mounts on demand.
pub fn register_all<A: Adapter + DefinedAdapter>(
    app: &AppState<A>,
) -> (Vec<A::InitRes>, Family<A>) {
    let chat = Family::<A> {
        dialect: Dialect::Chat,
        register: chat::register_handlers::<A>,
        admit: None,
        on_connected: Some(|app, socket, user| Box::pin(chat::on_connected(app, socket, user))),
    };
    let notifications = Family::<A> {
        dialect: Dialect::Chat,
        register: notifications::register_handlers::<A>,
        admit: None,
        on_connected: Some(|app, socket, user| {
            Box::pin(notifications::on_connected(app, socket, user))
        }),
    };
    let board = Family::<A> {
        dialect: Dialect::Restaurant,
        register: restaurant::register_handlers::<A>,
        admit: None,
        on_connected: Some(|app, socket, user| {
            Box::pin(restaurant::on_connected(app, socket, user))
        }),
    };
    let per_restaurant = Family::<A> {
        admit: Some(|app, socket, principal, hold| {
            Box::pin(admit_to_restaurant(app, socket, principal, hold))
        }),
        ..board
    };
    let io = app.fanout.broadcaster.io().clone();
    let inits = vec![
        io.ns(ns::CHAT, chat.handler(app)),
        io.ns(ns::NOTIFICATIONS, notifications.handler(app)),
        io.ns(ns::ROOT, board.handler(app)),
        io.ns(ns::RESTAURANT, board.handler(app)),
    ];
    if let Err(e) = io.dyn_ns(ns::RESTAURANT_DYNAMIC, per_restaurant.handler(app)) {
        // The pattern is a constant; this only fails if it is malformed.
        tracing::error!(error = %e, "could not mount /restaurants/{{id}}");
    }
    (inits, per_restaurant)
}

type Admit<A> = fn(
    AppState<A>,
    SocketRef<A>,
    Principal,
    Option<Arc<Hold<A>>>,
) -> BoxFuture<Result<(), AppError>>;
type OnConnected<A> = fn(AppState<A>, SocketRef<A>, UserId) -> BoxFuture<()>;

/// What differs between namespace families; authentication and dispatch are shared.
pub struct Family<A: Adapter> {
    dialect: Dialect,
    /// Registers the event handlers (runs in the middleware, before CONNECT).
    register: fn(&SocketRef<A>, &Arc<Session<A>>),
    /// Extra admission check after the token (dynamic restaurant namespaces, whose
    /// sockets hold their path: see `dynamic.rs`).
    admit: Option<Admit<A>>,
    /// Runs after CONNECT (initial counts).
    on_connected: Option<OnConnected<A>>,
}

impl<A: Adapter> Clone for Family<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A: Adapter> Copy for Family<A> {}

impl<A: Adapter> Family<A> {
    /// The connect handler (with its middleware) of this family.
    pub fn handler(self, app: &AppState<A>) -> impl ConnectHandler<A, (SocketRef<A>,)> + use<A> {
        let mw_app = app.clone();
        let middleware = move |socket: SocketRef<A>, TryData(auth): TryData<Value>| {
            let app = mw_app.clone();
            async move {
                let refuse = |e: AppError| {
                    let code = self.dialect.code(e.code());
                    app.metrics
                        .connects_refused
                        .get_or_create(&CodeLabel { code })
                        .inc();
                    Refusal(code)
                };
                let path: &'static str = if self.dialect == Dialect::Chat {
                    ns_name(&socket)
                } else {
                    "restaurant"
                };
                // First, before anything can refuse: a refused socket's hold is dropped
                // on the way out, and with the last one its namespace goes. A socket
                // whose namespace another refusal deleted since its CONNECT arrived
                // (`Stale`) holds nothing; it still gets its refusal, if it has one.
                let hold = match self.admit {
                    Some(_) => app.fanout.dynamic.hold(&socket).ok(),
                    None => None,
                };
                let stale = self.admit.is_some() && hold.is_none();
                let principal = authenticate(&app, &socket, auth.ok().as_ref()).map_err(refuse)?;
                if let Some(admit) = self.admit
                    && let Err(e) =
                        admit(app.clone(), socket.clone(), principal.clone(), hold).await
                {
                    e.log();
                    if e.code() == ErrorCode::Internal {
                        // A fault of ours, not "you may not": socket.io-client never
                        // retries after connect_error, so a database blip during a
                        // reconnect wave would strand every tablet. A closed transport
                        // makes the client reconnect by itself, with its backoff; the
                        // connect_error socketioxide still queues never leaves.
                        cut_transport(&app, &socket).await;
                    }
                    return Err(refuse(e));
                }
                if stale {
                    // Admissible, but into a namespace nothing routes to any more: the
                    // client reconnects by itself on a closed transport and lands on
                    // the path's live namespace.
                    tracing::debug!(ns = %socket.ns(), sid = %socket.id, "namespace deleted while connecting; transport closed");
                    cut_transport(&app, &socket).await;
                    return Err(refuse(AppError::Internal("stale namespace".into())));
                }
                tracing::debug!(ns = %socket.ns(), sid = %socket.id, user = %principal.user_id, "socket authenticated");
                socket.extensions.insert(principal.clone());
                if app.config.admin_ui.enabled {
                    // The Admin UI lists when each socket connected.
                    socket.extensions.insert(crate::admin::watch::ConnectedAt(
                        std::time::SystemTime::now(),
                    ));
                }
                on_disconnect(&socket, &app, path);
                let outbound = socket
                    .req_parts()
                    .extensions
                    .get::<Arc<MeterSlot>>()
                    .cloned();
                let session = Arc::new(Session::new(app, principal, self.dialect, path, outbound));
                socket.extensions.insert(session.busy.clone());
                (self.register)(&socket, &session);
                on_unknown(&socket, &session);
                Ok::<(), Refusal>(())
            }
        };
        let connect_app = app.clone();
        let on_connect = move |socket: SocketRef<A>| {
            let app = connect_app.clone();
            track_lifetime(&app, &socket);
            async move {
                let label = if self.dialect == Dialect::Chat {
                    ns_name(&socket)
                } else {
                    "restaurant"
                };
                app.metrics
                    .sockets
                    .get_or_create(&NsLabel { namespace: label })
                    .inc();
                if let (Some(run), Some(principal)) =
                    (self.on_connected, socket.extensions.get::<Principal>())
                {
                    run(app, socket, principal.user_id.clone()).await;
                }
            }
        };
        on_connect.with(middleware)
    }
}

/// Static names for the chat-dialect namespaces (session spans want `&'static str`).
fn ns_name<A: Adapter>(socket: &SocketRef<A>) -> &'static str {
    if socket.ns() == ns::NOTIFICATIONS {
        ns::NOTIFICATIONS
    } else {
        ns::CHAT
    }
}

/// `/restaurants/<id>`: the id, spelled canonically, must be a restaurant this principal
/// may use; the socket then starts in that restaurant's room, and its hold on the path
/// (kept in its extensions for its whole life) says the path carries that restaurant.
/// Without a hold (a stale namespace) only the checks run.
async fn admit_to_restaurant<A: Adapter>(
    app: AppState<A>,
    socket: SocketRef<A>,
    principal: Principal,
    hold: Option<Arc<Hold<A>>>,
) -> Result<(), AppError> {
    let id = dynamic::restaurant_of_path(socket.ns()).ok_or(AppError::InvalidRestaurant)?;
    restaurant::check_access(&app, &principal, id).await?;
    let Some(hold) = hold else {
        return Ok(());
    };
    hold.carry(id);
    socket.extensions.insert(hold);
    orders::join_board(&socket, id, false);
    Ok(())
}
