//! Namespace registration and the connect-time identity check they share.
//!
//! Everything that can refuse a connection happens in the connect middleware, which
//! runs before socketioxide sends CONNECT: a refused client gets `connect_error` with
//! the code as its message. Event handlers are registered there too, so an event the
//! client emits the moment it is connected always finds its handler.

pub mod chat;
pub mod notifications;
pub mod restaurant;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;

use super::ack::Dialect;
use super::events::ns;
use super::handler::on_unknown;
use super::session::Session;
use crate::auth::{Principal, token_from_handshake};
use crate::error::AppError;
use crate::metrics::NsLabel;
use crate::realtime::orders as fanout;
use crate::state::AppState;

/// A refused connection; `Display` is exactly the wire code.
#[derive(Debug)]
pub struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Verifies the handshake's token (auth payload, header, or query).
fn authenticate(
    app: &AppState,
    socket: &SocketRef,
    auth: Option<&Value>,
) -> Result<Principal, AppError> {
    let token = token_from_handshake(auth, socket.req_parts()).ok_or(AppError::Unauthenticated)?;
    app.verifier.verify(&token)
}

fn on_disconnect(socket: &SocketRef, app: &AppState, label: &'static str) {
    let app = app.clone();
    socket.on_disconnect(
        move |socket: SocketRef, reason: DisconnectReason| async move {
            app.metrics
                .sockets
                .get_or_create(&NsLabel { namespace: label })
                .dec();
            tracing::debug!(ns = %socket.ns(), sid = %socket.id, ?reason, "socket disconnected");
        },
    );
}

/// Mounts every namespace on the socket.io instance held by `app`.
pub fn register_all(app: &AppState) {
    let chat = Family {
        dialect: Dialect::Chat,
        register: chat::register_handlers,
        admit: None,
        on_connected: Some(|app, socket, user| Box::pin(chat::on_connected(app, socket, user))),
    };
    let notifications = Family {
        dialect: Dialect::Chat,
        register: notifications::register_handlers,
        admit: None,
        on_connected: Some(|app, socket, user| {
            Box::pin(notifications::on_connected(app, socket, user))
        }),
    };
    let board = Family {
        dialect: Dialect::Restaurant,
        register: restaurant::register_handlers,
        admit: None,
        on_connected: None,
    };
    let per_restaurant = Family {
        admit: Some(|app, socket, principal| Box::pin(admit_to_restaurant(app, socket, principal))),
        ..board
    };
    let io = app.broadcaster.io().clone();
    io.ns(ns::CHAT, chat.handler(app));
    io.ns(ns::NOTIFICATIONS, notifications.handler(app));
    io.ns(ns::ROOT, board.handler(app));
    io.ns(ns::RESTAURANT, board.handler(app));
    if let Err(e) = io.dyn_ns(ns::RESTAURANT_DYNAMIC, per_restaurant.handler(app)) {
        // The pattern is a constant; this only fails if it is malformed.
        tracing::error!(error = %e, "could not mount /restaurants/{{id}}");
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Admit = fn(AppState, SocketRef, Principal) -> BoxFuture<Result<(), AppError>>;
type OnConnected = fn(AppState, SocketRef, i64) -> BoxFuture<()>;

/// What differs between namespace families; authentication and dispatch are shared.
#[derive(Clone, Copy)]
struct Family {
    dialect: Dialect,
    /// Registers the event handlers (runs in the middleware, before CONNECT).
    register: fn(&SocketRef, &Arc<Session>),
    /// Extra admission check after the token (dynamic restaurant namespaces).
    admit: Option<Admit>,
    /// Runs after CONNECT (initial counts).
    on_connected: Option<OnConnected>,
}

impl Family {
    fn handler(
        self,
        app: &AppState,
    ) -> impl ConnectHandler<socketioxide::adapter::LocalAdapter, (SocketRef,)> {
        let mw_app = app.clone();
        let middleware = move |socket: SocketRef, TryData(auth): TryData<Value>| {
            let app = mw_app.clone();
            async move {
                let refuse = |e: AppError| Refusal(self.dialect.code(e.code()));
                let path: &'static str = if self.dialect == Dialect::Chat {
                    ns_name(&socket)
                } else {
                    "restaurant"
                };
                let principal = authenticate(&app, &socket, auth.ok().as_ref()).map_err(refuse)?;
                if let Some(admit) = self.admit {
                    admit(app.clone(), socket.clone(), principal.clone())
                        .await
                        .map_err(|e| {
                            e.log();
                            refuse(e)
                        })?;
                }
                tracing::debug!(ns = %socket.ns(), sid = %socket.id, user = principal.user_id, "socket authenticated");
                socket.extensions.insert(principal.clone());
                on_disconnect(&socket, &app, path);
                let session = Arc::new(Session::new(app, principal, self.dialect, path));
                (self.register)(&socket, &session);
                on_unknown(&socket, &session);
                Ok::<(), Refusal>(())
            }
        };
        let connect_app = app.clone();
        let on_connect = move |socket: SocketRef| {
            let app = connect_app.clone();
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
                    run(app, socket, principal.user_id).await;
                }
            }
        };
        on_connect.with(middleware)
    }
}

/// Static names for the chat-dialect namespaces (session spans want `&'static str`).
fn ns_name(socket: &SocketRef) -> &'static str {
    if socket.ns() == ns::NOTIFICATIONS {
        ns::NOTIFICATIONS
    } else {
        ns::CHAT
    }
}

/// `/restaurants/<id>`: the id must be a restaurant this principal may use; the socket
/// then starts in that restaurant's room. A path that names no restaurant leaves no
/// namespace behind (each distinct path would otherwise stay in memory).
async fn admit_to_restaurant(
    app: AppState,
    socket: SocketRef,
    principal: Principal,
) -> Result<(), AppError> {
    let path = socket.ns().to_owned();
    let id = path
        .rsplit('/')
        .next()
        .and_then(|raw| uuid::Uuid::parse_str(raw).ok());
    let result = match id {
        Some(id) => restaurant::check_access(&app, &principal, id)
            .await
            .map(|()| id),
        None => Err(AppError::InvalidRestaurant),
    };
    match result {
        Ok(id) => {
            app.dynamic_paths.record(id, &path);
            fanout::join_board(&socket, id, false);
            Ok(())
        }
        Err(e) => {
            if matches!(e, AppError::InvalidRestaurant) || id.is_none() {
                let io = app.broadcaster.io().clone();
                tokio::spawn(async move {
                    if io.of(&path).is_some_and(|op| op.sockets().is_empty()) {
                        io.delete_ns(&path);
                    }
                });
            }
            Err(e)
        }
    }
}
