//! `POST /api/users/:userId/disconnect`: an operator ends every connection of a user on
//! every node (logout everywhere, a ban), whatever the namespace or protocol.

use crate::domain::user::UserId;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::extract::ServiceCaller;
use crate::error::{AppError, AppResult};
use crate::realtime::session_bus::end_user_sessions;
use crate::state::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/users/{user_id}/disconnect", post(disconnect_user))
}

/// 200 `{ userId, disconnected: true }` once this node's connections are closed and the
/// other nodes are told; admin or service only.
async fn disconnect_user<A: Adapter>(
    State(app): State<AppState<A>>,
    ServiceCaller(me): ServiceCaller,
    Path(raw): Path<String>,
) -> AppResult<Json<Value>> {
    let user_id = UserId::parse(&raw).ok_or_else(|| {
        AppError::bad_request(
            "userId: expected a user id: an integer or 1-128 printable characters",
        )
    })?;
    // A failure here is the other nodes not being told: a 500, so the caller retries.
    let ended = end_user_sessions(&app, &user_id).await?;
    tracing::info!(
        by = %me.user_id,
        user = %user_id,
        ended,
        "user disconnected by an operator"
    );
    Ok(Json(json!({ "userId": user_id, "disconnected": true })))
}
