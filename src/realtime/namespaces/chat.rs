//! `/chat` (contract §4): conversations, messages, read cursors, members.
//!
//! Membership is read from the database on every event, so a removed member loses
//! access at once, whatever rooms its sockets are in.
//!
//! Past 400 lines because `/chat` has ten events; each handler is the short
//! decode → authorize → store → announce → reply that its REST twin shares.

use crate::domain::user::UserId;
use crate::realtime::broadcast::Readable;
use socketioxide::adapter::Adapter;
use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domain::chat::Message;
use crate::domain::chat::{
    Access, ConversationRef, ConversationType, DEFAULT_PAGE, EditMessage, ListMessages,
    MemberChange, MessageRef, SendMessage, Typing,
};
use crate::error::{AppError, AppResult};
use crate::realtime::announce;
use crate::realtime::events::chat as ev;
use crate::realtime::handler::on;
use crate::realtime::rooms;
use crate::realtime::session::Session;
use crate::state::AppState;
use crate::store::chat::MemberAdded;
use crate::store::chat_send::{NewMessage, SendError};

/// Registers every `/chat` event on a freshly authenticated socket. Called from the
/// connect middleware, before the CONNECT packet goes out, so no early event is lost.
pub fn register_handlers<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session<A>>) {
    socket.join(rooms::user(session.user_id()));
    on(socket, session, ev::CONVERSATION_JOIN, join_conversation);
    on(socket, session, ev::CONVERSATION_LEAVE, leave_conversation);
    on(socket, session, ev::MESSAGE_SEND, send_message);
    on(socket, session, ev::MESSAGE_EDIT, edit_message);
    on(socket, session, ev::MESSAGE_DELETE, delete_message);
    on(socket, session, ev::MESSAGE_READ, read_message);
    on(socket, session, ev::MESSAGE_LIST, list_messages);
    on(socket, session, ev::TYPING, typing);
    on(socket, session, ev::MEMBERS_ADD, add_member);
    on(socket, session, ev::MEMBERS_REMOVE, remove_member);
}

/// After CONNECT: the socket's unread counts.
pub async fn on_connected<A: Adapter>(app: AppState<A>, socket: SocketRef<A>, user_id: UserId) {
    match app.store.unread_count(&user_id).await {
        Ok(count) => {
            if let Err(e) = socket.emit(ev::UNREAD_COUNT, &Readable(&count)) {
                tracing::debug!(error = %e, "unread:count not delivered");
            }
        }
        Err(e) => AppError::from(e).log(),
    }
}

/// The conversation exists and the acting user is in it.
async fn require_member<A: Adapter>(
    session: &Session<A>,
    conversation_id: Uuid,
) -> AppResult<Access> {
    member_access(&session.app, conversation_id, session.user_id()).await
}

/// The conversation exists and `user` is in it.
pub async fn member_access<A: Adapter>(
    app: &AppState<A>,
    conversation_id: Uuid,
    user: &UserId,
) -> AppResult<Access> {
    let access = app
        .store
        .find_access(conversation_id, user)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    if !access.is_member() {
        return Err(AppError::forbidden("not a member of this conversation"));
    }
    Ok(access)
}

async fn join_conversation<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: ConversationRef,
) -> AppResult<Value> {
    require_member(&s, p.conversation_id).await?;
    socket.join(rooms::conversation(p.conversation_id));
    Ok(Value::Null)
}

async fn leave_conversation<A: Adapter>(
    _s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: ConversationRef,
) -> AppResult<Value> {
    // Leaving a room one is not in is harmless, so this needs no membership check.
    socket.leave(rooms::conversation(p.conversation_id));
    Ok(Value::Null)
}

async fn send_message<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: SendMessage,
) -> AppResult<Value> {
    let from = Sender {
        principal: &s.principal,
        socket: Some(&socket),
        plain: None,
    };
    let message = send(&s.app, from, p, "text".to_owned()).await?;
    Ok(json!(message))
}

/// Who sends a message, and which of its own connections the announcement skips (it
/// answers them itself): its socket.io socket, or its `/ws` connection.
pub struct Sender<'a, A: Adapter> {
    /// The author.
    pub principal: &'a Principal,
    /// The socket.io socket that sent it (`message:created` skips it).
    pub socket: Option<&'a SocketRef<A>>,
    /// The `/ws` connection that sent it, when that connection gets its own copy.
    pub plain: Option<u64>,
}

/// `message:send` on any route: stores the message (membership checked where it is
/// written, under the member-row locks), then announces it to the conversation on
/// every dialect and pushes unread counts, before the caller answers.
pub async fn send<A: Adapter>(
    app: &AppState<A>,
    from: Sender<'_, A>,
    p: SendMessage,
    message_type: String,
) -> AppResult<Message> {
    let user = &from.principal.user_id;
    let outcome = app
        .store
        .send_message(NewMessage {
            conversation_id: p.conversation_id,
            sender_id: user.clone(),
            content: p.content,
            attachments: p.attachments,
            client_id: p.client_id,
            message_type,
            sender_name: from.principal.name.clone(),
        })
        .await;
    let sent = match outcome {
        Ok(sent) => sent,
        Err(SendError::Db(e)) => return Err(e.into()),
        Err(SendError::NotMember) => {
            // Which refusal: no such conversation, or not one of its members.
            member_access(app, p.conversation_id, user).await?;
            return Err(AppError::forbidden("not a member of this conversation"));
        }
    };
    let message = sent.message;
    if sent.created {
        let skip = announce::Skip {
            socket: from.socket,
            plain: from.plain,
        };
        announce::chat::message_created(app, &message, &sent.members, skip).await;
        // Before the ack: a client that waits for each ack sees one count per send.
        announce::chat::unread_counts(app, &sent.readers).await;
    }
    Ok(message)
}

async fn edit_message<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: EditMessage,
) -> AppResult<Value> {
    Ok(json!(edit(&s.app, &s.principal, p).await?))
}

async fn delete_message<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: MessageRef,
) -> AppResult<Value> {
    delete(&s.app, &s.principal, p.message_id).await?;
    Ok(Value::Null)
}

async fn read_message<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: MessageRef,
) -> AppResult<Value> {
    read(&s.app, &s.principal, p.message_id).await?;
    Ok(Value::Null)
}

async fn list_messages<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: ListMessages,
) -> AppResult<Value> {
    Ok(json!(list(&s.app, &s.principal, p).await?))
}

async fn typing<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: Typing,
) -> AppResult<Value> {
    require_member(&s, p.conversation_id).await?;
    announce::chat::typing(&s.app, &socket, p.conversation_id, s.user_id(), p.is_typing).await;
    Ok(Value::Null)
}

async fn add_member<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: MemberChange,
) -> AppResult<Value> {
    add(&s.app, &s.principal, p).await?;
    Ok(Value::Null)
}

async fn remove_member<A: Adapter>(
    s: Arc<Session<A>>,
    _socket: SocketRef<A>,
    p: MemberChange,
) -> AppResult<Value> {
    remove(&s.app, &s.principal, p).await?;
    Ok(Value::Null)
}

// The operations, shared by the socket events above and their REST twins
// (`src/http/conversations.rs`): one set of rules, errors and announcements. `me` is
// the acting principal; no socket is acting, so every announcement goes to the whole
// room (`message:send` alone skips the sending socket, through [`Sender`]).

/// `message:edit`: the sender changes its message's content; the room hears
/// `message:updated`, bare `/ws` members the message in full.
pub async fn edit<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    p: EditMessage,
) -> AppResult<Message> {
    let store = &app.store;
    let found = store
        .find_message(p.message_id)
        .await?
        .ok_or_else(|| AppError::not_found("message not found"))?;
    member_access(app, found.message.conversation_id, &me.user_id).await?;
    if found.message.sender_id != me.user_id {
        return Err(AppError::forbidden("only the sender may edit a message"));
    }
    let message = store
        .update_message_content(p.message_id, &me.user_id, &p.content)
        .await?
        .ok_or_else(|| AppError::not_found("message not found"))?;
    announce::chat::message_updated(app, &message).await?;
    Ok(message)
}

/// `message:delete`: by its sender, the conversation's owner, or an admin (who need
/// not be a member); the room hears `message:deleted`, unread counts drop.
pub async fn delete<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    message_id: Uuid,
) -> AppResult<()> {
    let store = &app.store;
    let found = store
        .find_message(message_id)
        .await?
        .ok_or_else(|| AppError::not_found("message not found"))?;
    let conversation_id = found.message.conversation_id;
    // An admin may moderate a conversation it is not in; anyone else must be a member.
    let access = store
        .find_access(conversation_id, &me.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    if !access.is_member() && !me.is_admin() {
        return Err(AppError::forbidden("not a member of this conversation"));
    }
    if found.message.sender_id != me.user_id && !access.can_manage(me) {
        return Err(AppError::forbidden(
            "only the sender or the conversation owner may delete a message",
        ));
    }
    if !store.mark_message_deleted(message_id).await? {
        return Err(AppError::not_found("message not found"));
    }
    // Members who had not read it now have one unread message fewer.
    let mut others = store.list_member_ids(conversation_id).await?;
    announce::chat::message_deleted(app, &found.message, &others).await;
    others.retain(|u| *u != found.message.sender_id);
    announce::chat::unread_counts(app, &others).await;
    Ok(())
}

/// `message:read`: moves `me`'s read cursor to the message; the room hears
/// `message:read`, `me`'s devices their unread counts. Returns the event's payload.
pub async fn read<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    message_id: Uuid,
) -> AppResult<Value> {
    let found = app
        .store
        .find_message(message_id)
        .await?
        .ok_or_else(|| AppError::not_found("message not found"))?;
    let conversation_id = found.message.conversation_id;
    member_access(app, conversation_id, &me.user_id).await?;
    let read_at = app
        .store
        .mark_read(conversation_id, &me.user_id, found.seq)
        .await?;
    let payload =
        announce::chat::message_read(app, conversation_id, message_id, &me.user_id, &read_at).await;
    announce::chat::unread_counts(app, std::slice::from_ref(&me.user_id)).await;
    Ok(json!(payload))
}

/// `message:list`: a page of the conversation's messages (contract §9 paging).
pub async fn list<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    p: ListMessages,
) -> AppResult<Vec<Message>> {
    member_access(app, p.conversation_id, &me.user_id).await?;
    let store = &app.store;
    let seq_of = |field: &'static str, id: Option<Uuid>| async move {
        match id {
            None => Ok(None),
            Some(id) => store
                .find_message_seq(p.conversation_id, id)
                .await?
                .map(Some)
                .ok_or_else(|| {
                    AppError::not_found(format!("{field}: message not found in this conversation"))
                }),
        }
    };
    let before = seq_of("before", p.before).await?;
    let after = seq_of("after", p.after).await?;
    Ok(store
        .list_messages(
            p.conversation_id,
            before,
            after,
            p.limit.unwrap_or(DEFAULT_PAGE),
        )
        .await?)
}

/// `members:add`, by the owner or an admin: `Added` (the room and the new member hear
/// `members:added`) or `Already` (nothing announced).
pub async fn add<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    p: MemberChange,
) -> AppResult<MemberAdded> {
    let store = &app.store;
    let access = store
        .find_access(p.conversation_id, &me.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    if !access.can_manage(me) {
        return Err(AppError::forbidden(
            "only the conversation owner may add members",
        ));
    }
    if access.kind == ConversationType::Private {
        return Err(AppError::bad_request(
            "conversationId: members cannot be added to a private conversation",
        ));
    }
    let cap = app.config.max_conversation_members;
    let added = store
        .insert_member(p.conversation_id, &p.user_id, cap)
        .await?;
    if added == MemberAdded::Full {
        return Err(AppError::bad_request(format!(
            "conversationId: a conversation has at most {cap} members"
        )));
    }
    if added == MemberAdded::Added {
        announce::chat::member_added(app, p.conversation_id, &p.user_id).await;
    }
    Ok(added)
}

/// `members:remove`: the owner or an admin removes anyone, a member itself; the room
/// and the removed user hear `members:removed`, then its sockets leave the room.
pub async fn remove<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    p: MemberChange,
) -> AppResult<()> {
    let store = &app.store;
    let access = store
        .find_access(p.conversation_id, &me.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    let removing_self = p.user_id == me.user_id && access.is_member();
    if !removing_self && !access.can_manage(me) {
        return Err(AppError::forbidden(
            "only the conversation owner may remove other members",
        ));
    }
    if !store.delete_member(p.conversation_id, &p.user_id).await? {
        return Err(AppError::not_found(
            "userId: not a member of this conversation",
        ));
    }
    announce::chat::member_removed(app, p.conversation_id, &p.user_id).await;
    announce::chat::unread_counts(app, &[p.user_id]).await;
    Ok(())
}
