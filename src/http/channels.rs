//! REST for plain WebSocket clients (contract §7.5): backends publish to channels and
//! grant users channels they could not subscribe to by the rules alone.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use socketioxide::adapter::Adapter;

use super::extract::{ApiJson, ServiceCaller};
use crate::domain::channels::{ChannelGrant, GrantChannel, Publish};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::ws::{self, Publication};

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route("/publish", post(publish)).route(
        "/channels/grants",
        post(grant_channel).delete(revoke_channel),
    )
}

/// The 202 body of `POST /api/publish`.
#[derive(Debug, Serialize)]
struct Published {
    channel: String,
    #[serde(rename = "type")]
    kind: String,
}

/// 202 `{channel, type}` once the payload is queued to this node's subscribers.
async fn publish<A: Adapter>(
    State(app): State<AppState<A>>,
    ServiceCaller(me): ServiceCaller,
    ApiJson(body): ApiJson<Publish>,
) -> (StatusCode, Json<Published>) {
    let publication = Publication::new(body.channel, body.kind, body.payload);
    let delivered = ws::publish(&app.ws, &publication);
    tracing::debug!(by = %me.user_id, delivered, "published to a /ws channel");
    let Publication { channel, kind, .. } = publication;
    (StatusCode::ACCEPTED, Json(Published { channel, kind }))
}

/// 201 with the grant, or 200 when the user held it already.
async fn grant_channel<A: Adapter>(
    State(app): State<AppState<A>>,
    ServiceCaller(me): ServiceCaller,
    ApiJson(body): ApiJson<GrantChannel>,
) -> AppResult<(StatusCode, Json<ChannelGrant>)> {
    let (grant, created) = app
        .store
        .insert_grant(&body.channel, &body.user_id, &me.user_id)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(grant)))
}

/// 204 once the grant is gone and the user's connections in the channel have been
/// told `unsubscribed` (this node's; other nodes need the cluster bus). 404 when the
/// user held no such grant.
async fn revoke_channel<A: Adapter>(
    State(app): State<AppState<A>>,
    ServiceCaller(_): ServiceCaller,
    ApiJson(body): ApiJson<GrantChannel>,
) -> AppResult<StatusCode> {
    if !app.store.delete_grant(&body.channel, &body.user_id).await? {
        return Err(AppError::not_found("no such grant"));
    }
    ws::unsubscribe_user(&app.ws, &body.channel, &body.user_id);
    Ok(StatusCode::NO_CONTENT)
}
