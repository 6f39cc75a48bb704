//! `POST /api/conversations`, `DELETE /api/conversations/:id` (contract §8).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::extract::{ApiJson, Authenticated};
use crate::domain::chat::{Conversation, CreateConversation};
use crate::error::{AppError, AppResult};
use crate::realtime::events::{chat as ev, ns};
use crate::realtime::namespaces::chat::push_unread_counts;
use crate::realtime::rooms;
use crate::state::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/conversations", post(create_conversation))
        .route("/conversations/{id}", delete(delete_conversation))
}

async fn create_conversation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    ApiJson(body): ApiJson<CreateConversation>,
) -> AppResult<(StatusCode, Json<Conversation>)> {
    let members = body
        .members(me.user_id, app.config.max_conversation_members)
        .map_err(AppError::bad_request)?;
    let conversation = app
        .store
        .insert_conversation(body.kind, body.name.as_deref(), &members)
        .await?;
    let targets: Vec<String> = members.iter().map(|u| rooms::user(*u)).collect();
    app.broadcaster
        .emit(ns::CHAT, targets, ev::CONVERSATION_CREATED, &conversation)
        .await;
    Ok((StatusCode::CREATED, Json(conversation)))
}

async fn delete_conversation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| AppError::bad_request("id: not a UUID"))?;
    let access = app
        .store
        .find_access(id, me.user_id)
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
    let room = rooms::conversation(id);
    let mut targets: Vec<String> = members.iter().map(|u| rooms::user(*u)).collect();
    targets.push(room.clone());
    let payload = serde_json::json!({ "conversationId": id });
    app.broadcaster
        .emit(ns::CHAT, targets, ev::CONVERSATION_DELETED, &payload)
        .await;
    app.broadcaster.leave(ns::CHAT, room.clone(), room).await;
    push_unread_counts(&app, &members).await;
    Ok(StatusCode::NO_CONTENT)
}
