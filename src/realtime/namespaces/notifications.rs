//! `/notifications` (contract §5): a user's own notifications and broadcasts.
//!
//! Every state change is followed by `notification:count` to all of that user's
//! sockets (the `user:` room), so every device shows the same badge.

use crate::domain::user::UserId;
use crate::realtime::broadcast::Readable;
use socketioxide::adapter::Adapter;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::domain::notifications::{
    DEFAULT_PAGE, ListNotifications, Notification, NotificationCount, NotificationRef, Ping,
    ReadAll,
};
use crate::error::{AppError, AppResult};
use crate::realtime::announce;
use crate::realtime::events::notifications as ev;
use crate::realtime::handler::on;
use crate::realtime::rooms;
use crate::realtime::session::Session;
use crate::state::AppState;

/// Registers every `/notifications` event (from the connect middleware).
pub fn register_handlers<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session<A>>) {
    socket.join(rooms::user(session.user_id()));
    on(socket, session, ev::LIST, list_notifications);
    on(socket, session, ev::GET, get_notification);
    on(socket, session, ev::READ, read_notification);
    on(socket, session, ev::READ_ALL, read_all_notifications);
    on(socket, session, ev::DELETE, delete_notification);
    on(socket, session, ev::PING, ping);
}

/// After CONNECT: the user's unread count.
pub async fn on_connected<A: Adapter>(app: AppState<A>, socket: SocketRef<A>, user_id: UserId) {
    match app.store.notification_count(&user_id).await {
        Ok(count) => {
            if let Err(e) = socket.emit(ev::COUNT, &Readable(&NotificationCount { count })) {
                tracing::debug!(error = %e, "notification:count not delivered");
            }
        }
        Err(e) => AppError::from(e).log(),
    }
}

async fn list_notifications<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: ListNotifications,
) -> AppResult<Value> {
    Ok(json!(list(&s.app, s.user_id(), p).await?))
}

async fn get_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    Ok(json!(get(&s.app, s.user_id(), p.notification_id).await?))
}

async fn read_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    Ok(json!(read(&s.app, s.user_id(), p.notification_id).await?))
}

async fn read_all_notifications<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    _: ReadAll,
) -> AppResult<Value> {
    let count = read_all(&s.app, s.user_id()).await?;
    Ok(json!({ "count": count }))
}

async fn delete_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    delete(&s.app, s.user_id(), p.notification_id).await?;
    Ok(Value::Null)
}

// The operations, shared by the socket events above and their REST twins
// (`src/http/notifications.rs`): one set of rules, errors and announcements.

/// `notification:list`: `me`'s notifications (and broadcasts), newest first.
pub async fn list<A: Adapter>(
    app: &AppState<A>,
    me: &UserId,
    p: ListNotifications,
) -> AppResult<Vec<Notification>> {
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    app.store
        .list_notifications(me, p.unread_only, p.before, limit)
        .await?
        .ok_or_else(|| AppError::not_found("before: notification not found"))
}

/// `notification:get`.
pub async fn get<A: Adapter>(app: &AppState<A>, me: &UserId, id: Uuid) -> AppResult<Notification> {
    app.store
        .find_notification(me, id)
        .await?
        .ok_or_else(|| AppError::not_found("notification not found"))
}

/// `notification:read`: marks it read, tells every socket of `me`, pushes the count.
pub async fn read<A: Adapter>(app: &AppState<A>, me: &UserId, id: Uuid) -> AppResult<Notification> {
    let read = app
        .store
        .mark_notification_read(me, id)
        .await?
        .ok_or_else(|| AppError::not_found("notification not found"))?;
    announce::notifications::read(app, me, id).await;
    announce::notifications::counts(app, std::slice::from_ref(me)).await;
    Ok(read)
}

/// `notification:read_all`: how many were marked.
pub async fn read_all<A: Adapter>(app: &AppState<A>, me: &UserId) -> AppResult<i64> {
    let count = app.store.mark_all_notifications_read(me).await?;
    announce::notifications::read_all(app, me).await;
    announce::notifications::counts(app, std::slice::from_ref(me)).await;
    Ok(count)
}

/// `notification:delete`.
pub async fn delete<A: Adapter>(app: &AppState<A>, me: &UserId, id: Uuid) -> AppResult<()> {
    if !app.store.delete_notification(me, id).await? {
        return Err(AppError::not_found("notification not found"));
    }
    announce::notifications::deleted(app, me, id).await;
    announce::notifications::counts(app, std::slice::from_ref(me)).await;
    Ok(())
}

/// `pong`'s payload, also the reply to `ping`: the server's clock in milliseconds.
#[derive(Serialize)]
struct Pong {
    timestamp: i64,
}

async fn ping<A: Adapter>(_: Arc<Session<A>>, socket: SocketRef<A>, _: Ping) -> AppResult<Value> {
    let payload = Pong {
        timestamp: chrono::Utc::now().timestamp_millis(),
    };
    if let Err(e) = socket.emit(ev::PONG, &Readable(&payload)) {
        tracing::debug!(error = %e, "pong not delivered");
    }
    Ok(json!(payload))
}
