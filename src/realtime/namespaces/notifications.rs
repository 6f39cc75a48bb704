//! `/notifications` (contract §5): a user's own notifications and broadcasts.
//!
//! Every state change is followed by `notification:count` to all of that user's
//! sockets (the `user:` room), so every device shows the same badge.

use socketioxide::adapter::Adapter;
use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;

use crate::domain::notifications::{
    DEFAULT_PAGE, ListNotifications, NotificationCount, NotificationRef, Ping, ReadAll,
};
use crate::error::{AppError, AppResult};
use crate::realtime::events::{notifications as ev, ns};
use crate::realtime::handler::on;
use crate::realtime::rooms;
use crate::realtime::session::Session;
use crate::state::AppState;
use crate::ws;

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
pub async fn on_connected<A: Adapter>(app: AppState<A>, socket: SocketRef<A>, user_id: i64) {
    match app.store.notification_count(user_id).await {
        Ok(count) => {
            if let Err(e) = socket.emit(ev::COUNT, &NotificationCount { count }) {
                tracing::debug!(error = %e, "notification:count not delivered");
            }
        }
        Err(e) => AppError::from(e).log(),
    }
}

/// Sends each user its unread count on every one of its sockets.
pub async fn push_counts<A: Adapter>(app: &AppState<A>, user_ids: &[i64]) {
    if user_ids.is_empty() {
        return;
    }
    match app.store.notification_counts(user_ids).await {
        Ok(counts) => {
            for (user, count) in counts {
                let payload = NotificationCount { count };
                app.broadcaster
                    .emit(ns::NOTIFICATIONS, rooms::user(user), ev::COUNT, &payload)
                    .await;
            }
        }
        // The change itself succeeded; the next change corrects the badge.
        Err(e) => AppError::from(e).log(),
    }
}

async fn list_notifications<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: ListNotifications,
) -> AppResult<Value> {
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    let page = s
        .app
        .store
        .list_notifications(s.user_id(), p.unread_only, p.before, limit)
        .await?
        .ok_or_else(|| AppError::not_found("before: notification not found"))?;
    Ok(json!(page))
}

async fn get_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    let found = s
        .app
        .store
        .find_notification(s.user_id(), p.notification_id)
        .await?
        .ok_or_else(|| AppError::not_found("notification not found"))?;
    Ok(json!(found))
}

async fn read_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    let me = s.user_id();
    let read = s
        .app
        .store
        .mark_notification_read(me, p.notification_id)
        .await?
        .ok_or_else(|| AppError::not_found("notification not found"))?;
    let payload = json!({ "notificationId": p.notification_id, "is_read": true });
    s.app
        .broadcaster
        .emit(ns::NOTIFICATIONS, rooms::user(me), ev::READ, &payload)
        .await;
    ws::events::notification_read(&s.app.ws, me, p.notification_id);
    push_counts(&s.app, &[me]).await;
    Ok(json!(read))
}

async fn read_all_notifications<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    _: ReadAll,
) -> AppResult<Value> {
    let me = s.user_id();
    let count = s.app.store.mark_all_notifications_read(me).await?;
    s.app
        .broadcaster
        .emit(ns::NOTIFICATIONS, rooms::user(me), ev::READ_ALL, &json!({}))
        .await;
    ws::events::notifications_read_all(&s.app.ws, me);
    push_counts(&s.app, &[me]).await;
    Ok(json!({ "count": count }))
}

async fn delete_notification<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: NotificationRef,
) -> AppResult<Value> {
    let me = s.user_id();
    if !s
        .app
        .store
        .delete_notification(me, p.notification_id)
        .await?
    {
        return Err(AppError::not_found("notification not found"));
    }
    let payload = json!({ "notificationId": p.notification_id });
    s.app
        .broadcaster
        .emit(ns::NOTIFICATIONS, rooms::user(me), ev::DELETED, &payload)
        .await;
    ws::events::notification_deleted(&s.app.ws, me, p.notification_id);
    push_counts(&s.app, &[me]).await;
    Ok(Value::Null)
}

async fn ping<A: Adapter>(_: Arc<Session<A>>, socket: SocketRef<A>, _: Ping) -> AppResult<Value> {
    let timestamp = chrono::Utc::now().timestamp_millis();
    let payload = json!({ "timestamp": timestamp });
    if let Err(e) = socket.emit(ev::PONG, &payload) {
        tracing::debug!(error = %e, "pong not delivered");
    }
    Ok(payload)
}
