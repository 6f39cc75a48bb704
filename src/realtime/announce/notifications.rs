//! Notification events (contract §4): created, read, read all, deleted, unread counts.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use crate::domain::notifications::{Notification, NotificationCount};
use crate::domain::user::UserId;
use crate::error::AppError;
use crate::realtime::events::{notifications, ns};
use crate::realtime::rooms;
use crate::state::AppState;
use crate::ws;

/// `notification:read`'s payload (the seed's mix: `notificationId`, `is_read`).
#[derive(Serialize)]
struct NotificationRead {
    #[serde(rename = "notificationId")]
    notification_id: Uuid,
    is_read: bool,
}

/// `notification:deleted`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDeleted {
    notification_id: Uuid,
}

/// `notification:read_all`'s payload: `{}`.
#[derive(Serialize)]
struct ReadAll {}

/// A new notification: `notification:created` on `/notifications` and `/chat` to its
/// user's sockets (every socket of both for a broadcast one), `notification` to the
/// plain connections.
pub async fn created<A: Adapter>(app: &AppState<A>, n: &Notification) {
    for namespace in [ns::NOTIFICATIONS, ns::CHAT] {
        match &n.user_id {
            Some(user) => {
                app.fanout
                    .broadcaster
                    .emit(namespace, rooms::user(user), notifications::CREATED, n)
                    .await;
            }
            None => {
                app.fanout
                    .broadcaster
                    .emit_all(namespace, notifications::CREATED, n)
                    .await;
            }
        }
    }
    ws::events::notification_created(&app.ws, n);
}

/// A notification read by `user`: to every socket and plain connection of the user.
pub async fn read<A: Adapter>(app: &AppState<A>, user: &UserId, id: Uuid) {
    let payload = NotificationRead {
        notification_id: id,
        is_read: true,
    };
    app.fanout
        .broadcaster
        .emit(
            ns::NOTIFICATIONS,
            rooms::user(user),
            notifications::READ,
            &payload,
        )
        .await;
    ws::events::notification_read(&app.ws, user, id);
}

/// Every notification of `user` read.
pub async fn read_all<A: Adapter>(app: &AppState<A>, user: &UserId) {
    app.fanout
        .broadcaster
        .emit(
            ns::NOTIFICATIONS,
            rooms::user(user),
            notifications::READ_ALL,
            &ReadAll {},
        )
        .await;
    ws::events::notifications_read_all(&app.ws, user);
}

/// A notification of `user` deleted.
pub async fn deleted<A: Adapter>(app: &AppState<A>, user: &UserId, id: Uuid) {
    let payload = NotificationDeleted {
        notification_id: id,
    };
    app.fanout
        .broadcaster
        .emit(
            ns::NOTIFICATIONS,
            rooms::user(user),
            notifications::DELETED,
            &payload,
        )
        .await;
    ws::events::notification_deleted(&app.ws, user, id);
}

/// Sends each user its unread count on every one of its sockets.
pub async fn counts<A: Adapter>(app: &AppState<A>, user_ids: &[UserId]) {
    if user_ids.is_empty() {
        return;
    }
    match app.store.notification_counts(user_ids).await {
        Ok(counts) => {
            for (user, count) in counts {
                let payload = NotificationCount { count };
                app.fanout
                    .broadcaster
                    .emit(
                        ns::NOTIFICATIONS,
                        rooms::user(&user),
                        notifications::COUNT,
                        &payload,
                    )
                    .await;
            }
        }
        // The change itself succeeded; the next change corrects the badge.
        Err(e) => AppError::from(e).log(),
    }
}
