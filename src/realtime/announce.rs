//! What happened, told to every dialect: one function per domain event, called once by
//! the handler or REST route that caused it.
//!
//! Each renders the event for socket.io (its rooms, through the [`Broadcaster`], on
//! every node through the adapter) and for plain WebSocket connections (`ws::events`:
//! envelope and bare renderings, each serialized once, cast to the other nodes). A
//! handler does not know how many dialects exist; a new one is added here.
//!
//! [`Broadcaster`]: crate::realtime::broadcast::Broadcaster

pub mod orders;

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::domain::chat::Message;
use crate::domain::notifications::Notification;
use crate::domain::user::UserId;
use crate::error::AppResult;
use crate::realtime::events::{chat, notifications, ns};
use crate::realtime::rooms;
use crate::state::AppState;
use crate::ws;

/// The connections of the actor that an announcement skips, because the actor answers
/// them itself (`message:created` skips the sender's socket, contract §9).
#[derive(Clone, Copy)]
pub struct Skip<'a, A: Adapter> {
    /// The socket.io socket that acted.
    pub socket: Option<&'a SocketRef<A>>,
    /// The `/ws` connection that acted, when it gets its own copy.
    pub plain: Option<u64>,
}

/// `message:deleted`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageDeleted {
    message_id: Uuid,
    conversation_id: Uuid,
}

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

/// A new message: `message:created` to the conversation's room (without the sender's
/// socket), `chat_message` to the members' plain connections (without `skip.plain`).
pub async fn message_created<A: Adapter>(
    app: &AppState<A>,
    message: &Message,
    members: &[UserId],
    skip: Skip<'_, A>,
) {
    let room = rooms::conversation(message.conversation_id);
    match skip.socket {
        Some(socket) => {
            app.fanout
                .broadcaster
                .emit_except_self(socket, room, chat::MESSAGE_CREATED, message)
                .await;
        }
        None => {
            app.fanout
                .broadcaster
                .emit(ns::CHAT, room, chat::MESSAGE_CREATED, message)
                .await;
        }
    }
    ws::events::message_created(&app.ws, message, members, skip.plain);
}

/// An edited message: `message:updated` to the room, the message in full to the
/// members' bare connections.
pub async fn message_updated<A: Adapter>(app: &AppState<A>, message: &Message) -> AppResult<()> {
    let room = rooms::conversation(message.conversation_id);
    app.fanout
        .broadcaster
        .emit(ns::CHAT, room, chat::MESSAGE_UPDATED, message)
        .await;
    if app.ws.has_audience() {
        let members = app.store.list_member_ids(message.conversation_id).await?;
        ws::events::message_changed(&app.ws, message, &members, false);
    }
    Ok(())
}

/// A deleted message: `message:deleted` to the room, the message flagged deleted to the
/// members' bare connections.
pub async fn message_deleted<A: Adapter>(app: &AppState<A>, message: &Message, members: &[UserId]) {
    let payload = MessageDeleted {
        message_id: message.id,
        conversation_id: message.conversation_id,
    };
    app.fanout
        .broadcaster
        .emit(
            ns::CHAT,
            rooms::conversation(message.conversation_id),
            chat::MESSAGE_DELETED,
            &payload,
        )
        .await;
    ws::events::message_changed(&app.ws, message, members, true);
}

/// A new notification: `notification:created` on `/notifications` and `/chat` to its
/// user's sockets (every socket of both for a broadcast one), `notification` to the
/// plain connections.
pub async fn notification_created<A: Adapter>(app: &AppState<A>, n: &Notification) {
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
pub async fn notification_read<A: Adapter>(app: &AppState<A>, user: &UserId, id: Uuid) {
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
pub async fn notifications_read_all<A: Adapter>(app: &AppState<A>, user: &UserId) {
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
pub async fn notification_deleted<A: Adapter>(app: &AppState<A>, user: &UserId, id: Uuid) {
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
