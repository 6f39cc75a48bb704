//! Namespace registration and the connect-time identity check they share.
//!
//! Everything that can refuse a connection happens in the connect middleware, which
//! runs before socketioxide sends CONNECT: a refused client gets `connect_error` with
//! the code as its message. Event handlers are registered there too, so an event the
//! client emits the moment it is connected always finds its handler.

pub mod chat;
pub mod notifications;

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
use crate::error::{AppError, ErrorCode};
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

fn log_disconnect(socket: &SocketRef) {
    socket.on_disconnect(|socket: SocketRef, reason: DisconnectReason| async move {
        tracing::debug!(ns = %socket.ns(), sid = %socket.id, ?reason, "socket disconnected");
    });
}

/// Mounts every namespace on the socket.io instance held by `app`.
pub fn register_all(app: &AppState) {
    mount(
        app,
        ns::CHAT,
        chat::register_handlers,
        |app, socket, user| Box::pin(chat::on_connected(app, socket, user)),
    );
    mount(
        app,
        ns::NOTIFICATIONS,
        notifications::register_handlers,
        |app, socket, user| Box::pin(notifications::on_connected(app, socket, user)),
    );
}

type Registrar = fn(&SocketRef, &Arc<Session>);
type OnConnected = fn(AppState, SocketRef, i64) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Mounts a chat-dialect namespace: authenticate in the middleware (refusing with
/// `AUTH_INVALID`), register the handlers there, then run `on_connected` after CONNECT.
fn mount(app: &AppState, path: &'static str, register: Registrar, on_connected: OnConnected) {
    let io = app.broadcaster.io().clone();
    let mw_app = app.clone();
    let middleware = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let app = mw_app.clone();
        async move {
            let principal = authenticate(&app, &socket, auth.ok().as_ref())
                .map_err(|_| Refusal(ErrorCode::AuthInvalid.chat()))?;
            tracing::debug!(ns = path, sid = %socket.id, user = principal.user_id, "socket authenticated");
            socket.extensions.insert(principal.clone());
            let session = Arc::new(Session::new(app, principal, Dialect::Chat, path));
            register(&socket, &session);
            on_unknown(&socket, &session);
            log_disconnect(&socket);
            Ok::<(), Refusal>(())
        }
    };
    let connect_app = app.clone();
    let on_connect = move |socket: SocketRef| {
        let app = connect_app.clone();
        async move {
            if let Some(principal) = socket.extensions.get::<Principal>() {
                on_connected(app, socket, principal.user_id).await;
            }
        }
    };
    io.ns(path, on_connect.with(middleware));
}
