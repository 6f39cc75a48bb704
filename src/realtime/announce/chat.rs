//! Chat events (contract §3): messages, reads, typing, members, conversations, unread
//! counts.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use super::Skip;
use crate::domain::chat::{Conversation, Message};
use crate::domain::time::rfc3339_ms;
use crate::domain::user::UserId;
use crate::error::{AppError, AppResult};
use crate::realtime::events::{chat, ns};
use crate::realtime::rooms;
use crate::state::AppState;
use crate::ws;

/// `message:deleted`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageDeleted {
    message_id: Uuid,
    conversation_id: Uuid,
}

/// `message:read`'s payload, also the reply to `message:read`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRead {
    message_id: Uuid,
    conversation_id: Uuid,
    reader_id: UserId,
    read_at: String,
}

/// `typing`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypingNow<'a> {
    conversation_id: Uuid,
    user_id: &'a UserId,
    is_typing: bool,
}

/// `members:added` and `members:removed`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member<'a> {
    conversation_id: Uuid,
    user_id: &'a UserId,
}

/// `conversation:deleted`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationDeleted {
    conversation_id: Uuid,
}

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

/// `reader` read up to `message_id`: `message:read` to the conversation's room.
/// Returns the payload.
pub async fn message_read<A: Adapter>(
    app: &AppState<A>,
    conversation_id: Uuid,
    message_id: Uuid,
    reader: &UserId,
    read_at: &chrono::DateTime<chrono::Utc>,
) -> MessageRead {
    let payload = MessageRead {
        message_id,
        conversation_id,
        reader_id: reader.clone(),
        read_at: rfc3339_ms(read_at),
    };
    app.fanout
        .broadcaster
        .emit(
            ns::CHAT,
            rooms::conversation(conversation_id),
            chat::MESSAGE_READ,
            &payload,
        )
        .await;
    payload
}

/// `user` typing or not: `typing` to the room, volatile, without the typist's socket.
pub async fn typing<A: Adapter>(
    app: &AppState<A>,
    socket: &SocketRef<A>,
    conversation_id: Uuid,
    user: &UserId,
    is_typing: bool,
) {
    let payload = TypingNow {
        conversation_id,
        user_id: user,
        is_typing,
    };
    app.fanout
        .broadcaster
        .emit_volatile_except_self(
            socket,
            rooms::conversation(conversation_id),
            chat::TYPING,
            &payload,
        )
        .await;
}

/// `user` added: `members:added` to the room and to the new member's sockets.
pub async fn member_added<A: Adapter>(app: &AppState<A>, conversation_id: Uuid, user: &UserId) {
    let payload = Member {
        conversation_id,
        user_id: user,
    };
    let targets = [rooms::conversation(conversation_id), rooms::user(user)];
    app.fanout
        .broadcaster
        .emit(ns::CHAT, targets, chat::MEMBERS_ADDED, &payload)
        .await;
}

/// `user` removed: `members:removed` to the room and to the removed user (who hears it
/// too), then the user's sockets leave the room (on every node).
pub async fn member_removed<A: Adapter>(app: &AppState<A>, conversation_id: Uuid, user: &UserId) {
    let room = rooms::conversation(conversation_id);
    let payload = Member {
        conversation_id,
        user_id: user,
    };
    let b = &app.fanout.broadcaster;
    b.emit(
        ns::CHAT,
        [room.clone(), rooms::user(user)],
        chat::MEMBERS_REMOVED,
        &payload,
    )
    .await;
    b.leave(ns::CHAT, rooms::user(user), room).await;
}

/// A new conversation: `conversation:created` to every member's sockets.
pub async fn conversation_created<A: Adapter>(
    app: &AppState<A>,
    conversation: &Conversation,
    members: &[UserId],
) {
    let targets: Vec<String> = members.iter().map(rooms::user).collect();
    app.fanout
        .broadcaster
        .emit(ns::CHAT, targets, chat::CONVERSATION_CREATED, conversation)
        .await;
}

/// A deleted conversation: `conversation:deleted` to its room and its former members,
/// whose sockets then leave the room; their unread counts follow.
pub async fn conversation_deleted<A: Adapter>(
    app: &AppState<A>,
    conversation_id: Uuid,
    members: &[UserId],
) {
    let room = rooms::conversation(conversation_id);
    let mut targets: Vec<String> = members.iter().map(rooms::user).collect();
    targets.push(room.clone());
    let payload = ConversationDeleted { conversation_id };
    let b = &app.fanout.broadcaster;
    b.emit(ns::CHAT, targets, chat::CONVERSATION_DELETED, &payload)
        .await;
    b.leave(ns::CHAT, room.clone(), room).await;
    unread_counts(app, members).await;
}

/// Sends each user its current unread counts (every device, through `user:` rooms).
pub async fn unread_counts<A: Adapter>(app: &AppState<A>, user_ids: &[UserId]) {
    if user_ids.is_empty() {
        return;
    }
    match app.store.unread_counts(user_ids).await {
        Ok(counts) => {
            for (user, count) in counts {
                app.fanout
                    .broadcaster
                    .emit(ns::CHAT, rooms::user(&user), chat::UNREAD_COUNT, &count)
                    .await;
            }
        }
        // The change itself succeeded; a missed count is corrected on the next one.
        Err(e) => AppError::from(e).log(),
    }
}
