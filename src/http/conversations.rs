//! `POST /api/conversations`, `DELETE /api/conversations/:id` (contract §8), and the
//! REST twins of the `/chat` events (seed 004: a backend posts into a conversation
//! without a socket; an app lists its conversations when it starts). A twin runs the
//! event's own operation ([`crate::realtime::namespaces::chat`]): same rules, errors
//! and announcements; no socket is acting, so every socket of the room hears the change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::extract::{ApiJson, ApiQuery, Authenticated, JsonBody, parse_id};
use crate::domain::chat::{
    Conversation, CreateConversation, EditMessage, ListMessages, MemberChange, Message, SendMessage,
};
use crate::domain::input::decode;
use crate::domain::time::rfc3339_ms;
use crate::error::{AppError, AppResult};
use crate::realtime::announce;
use crate::realtime::namespaces::chat::{self as op, Sender, member_access};
use crate::state::AppState;
use crate::store::chat::MemberAdded;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route(
            "/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/conversations/{id}",
            get(get_conversation).delete(delete_conversation),
        )
        .route(
            "/conversations/{id}/messages",
            get(list_messages).post(send_message),
        )
        .route(
            "/conversations/{id}/members",
            post(add_member).delete(remove_member),
        )
        .route(
            "/messages/{id}",
            axum::routing::patch(edit_message).delete(delete_message),
        )
        .route("/messages/{id}/read", post(read_message))
}

/// Default and largest page of `GET /api/conversations`.
const CONVERSATION_PAGE: i64 = 50;
const MAX_CONVERSATION_PAGE: i64 = 100;

/// `<activity µs>.<id>`: where the next page starts.
fn cursor(activity: &DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{}", activity.timestamp_micros(), id.simple())
}

fn parse_cursor(raw: &str) -> AppResult<(DateTime<Utc>, Uuid)> {
    let bad = || AppError::bad_request("cursor: not a cursor this server made");
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    if id.len() != 32 {
        return Err(bad());
    }
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// `GET /api/conversations?cursor=&limit=`: the caller's conversations, latest activity
/// first, `{ items, next_cursor }` (`null` on the last page).
async fn list_conversations<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    query: ApiQuery,
) -> AppResult<Json<Value>> {
    let mut after = None;
    let mut limit = CONVERSATION_PAGE;
    for (name, value) in &query.0 {
        match name.as_str() {
            "cursor" => after = Some(parse_cursor(value)?),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_CONVERSATION_PAGE).contains(l))
                    .ok_or_else(|| AppError::bad_request("limit: must be 1 to 100"))?;
            }
            _ => {}
        }
    }
    // One more than the page tells whether another follows.
    let mut entries = app
        .store
        .list_conversations(&me.user_id, after, limit + 1)
        .await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = match entries.last() {
        Some(last) if more => Some(cursor(&last.activity, last.conversation.id)),
        _ => None,
    };
    let items: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut item = json!(e.conversation);
            item["unread_count"] = json!(e.unread_count);
            item["last_activity_at"] = json!(rfc3339_ms(&e.activity));
            item
        })
        .collect();
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

/// `GET /api/conversations/:id`: members only (404 before 403).
async fn get_conversation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<Json<Conversation>> {
    let id = parse_id(&id)?;
    member_access(&app, id, &me.user_id).await?;
    let conversation = app
        .store
        .find_conversation(id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    Ok(Json(conversation))
}

/// `GET /api/conversations/:id/messages?before=&after=&limit=`: `message:list`.
async fn list_messages<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    query: ApiQuery,
) -> AppResult<Json<Vec<Message>>> {
    let id = parse_id(&id)?;
    let mut object = query.object(
        &[("before", "before"), ("after", "after"), ("limit", "limit")],
        &[],
    );
    object["conversationId"] = json!(id);
    let p: ListMessages = decode(object)?;
    Ok(Json(op::list(&app, &me, p).await?))
}

/// `POST /api/conversations/:id/messages` `{ content, attachments?, clientId? }`:
/// `message:send` (a repeated `clientId` answers the first message).
async fn send_message<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Message>)> {
    let id = parse_id(&id)?;
    // Rights before the body's fields.
    member_access(&app, id, &me.user_id).await?;
    let mut object = match body.0 {
        Value::Object(map) => Value::Object(map),
        Value::Array(_) => {
            return Err(AppError::bad_request(
                "payload: expected an object, not an array",
            ));
        }
        _ => Value::Object(Default::default()),
    };
    object["conversationId"] = json!(id);
    let p: SendMessage = decode(object)?;
    let from = Sender {
        principal: &me,
        socket: None,
        plain: None,
    };
    let message = op::send(&app, from, p, "text".to_owned()).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// `PATCH /api/messages/:id` `{ content }`: `message:edit`.
async fn edit_message<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<Json<Message>> {
    let id = parse_id(&id)?;
    let mut object = body.0;
    if !object.is_object() {
        return Err(AppError::bad_request("payload: expected an object"));
    }
    object["messageId"] = json!(id);
    let p: EditMessage = decode(object)?;
    Ok(Json(op::edit(&app, &me, p).await?))
}

/// `DELETE /api/messages/:id`: `message:delete`.
async fn delete_message<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    op::delete(&app, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/messages/:id/read`: `message:read`; `{ messageId, readerId, readAt }`.
async fn read_message<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let id = parse_id(&id)?;
    let read = op::read(&app, &me, id).await?;
    Ok(Json(json!({
        "messageId": read["messageId"],
        "readerId": read["readerId"],
        "readAt": read["readAt"],
    })))
}

/// `POST /api/conversations/:id/members` `{ userId }`: `members:add`; 201 when added,
/// 200 when already a member (nothing announced).
async fn add_member<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Value>)> {
    let id = parse_id(&id)?;
    let mut object = body.0;
    if !object.is_object() {
        return Err(AppError::bad_request("payload: expected an object"));
    }
    object["conversationId"] = json!(id);
    let p: MemberChange = decode(object)?;
    let user = p.user_id.clone();
    let status = match op::add(&app, &me, p).await? {
        MemberAdded::Added => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok((
        status,
        Json(json!({ "conversationId": id, "userId": user })),
    ))
}

/// `DELETE /api/conversations/:id/members?userId=`: `members:remove`; 404 for a
/// non-member.
async fn remove_member<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    query: ApiQuery,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    let mut object = query.object(&[("userId", "userId")], &[]);
    object["conversationId"] = json!(id);
    let p: MemberChange = decode(object)?;
    op::remove(&app, &me, p).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_conversation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    ApiJson(body): ApiJson<CreateConversation>,
) -> AppResult<(StatusCode, Json<Conversation>)> {
    let members = body
        .members(&me.user_id, app.config.max_conversation_members)
        .map_err(AppError::bad_request)?;
    let conversation = app
        .store
        .insert_conversation(body.kind, body.name.as_deref(), &members)
        .await?;
    announce::chat::conversation_created(&app, &conversation, &members).await;
    Ok((StatusCode::CREATED, Json(conversation)))
}

async fn delete_conversation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    let access = app
        .store
        .find_access(id, &me.user_id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    if !access.can_manage(&me) {
        return Err(AppError::forbidden(
            "only the owner or an admin may delete a conversation",
        ));
    }
    let members = app
        .store
        .delete_conversation(id)
        .await?
        .ok_or_else(|| AppError::not_found("conversation not found"))?;
    announce::chat::conversation_deleted(&app, id, &members).await;
    Ok(StatusCode::NO_CONTENT)
}
