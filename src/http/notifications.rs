//! `POST /api/notifications` and `/api/notifications/broadcast` (contract §8), for
//! other backends (`service`) and admins.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use socketioxide::adapter::Adapter;

use super::extract::{ApiJson, ServiceCaller};
use crate::domain::notifications::{CreateBroadcast, CreateNotification, Notification};
use crate::error::AppResult;
use crate::realtime::events::{notifications as ev, ns};
use crate::realtime::namespaces::notifications::push_counts;
use crate::realtime::rooms;
use crate::state::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/notifications", post(create_notification))
        .route("/notifications/broadcast", post(create_broadcast))
}

async fn create_notification<A: Adapter>(
    State(app): State<AppState<A>>,
    _: ServiceCaller,
    ApiJson(body): ApiJson<CreateNotification>,
) -> AppResult<(StatusCode, Json<Notification>)> {
    let created = app
        .store
        .insert_notification(
            Some(body.user_id),
            body.kind,
            &body.title,
            &body.content,
            body.related_id.as_deref(),
        )
        .await?;
    let room = rooms::user(body.user_id);
    app.broadcaster
        .emit(ns::NOTIFICATIONS, room.clone(), ev::CREATED, &created)
        .await;
    app.broadcaster
        .emit(ns::CHAT, room, ev::CREATED, &created)
        .await;
    push_counts(&app, &[body.user_id]).await;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn create_broadcast<A: Adapter>(
    State(app): State<AppState<A>>,
    _: ServiceCaller,
    ApiJson(body): ApiJson<CreateBroadcast>,
) -> AppResult<(StatusCode, Json<Notification>)> {
    let created = app
        .store
        .insert_notification(None, body.kind, &body.title, &body.content, None)
        .await?;
    for namespace in [ns::NOTIFICATIONS, ns::CHAT] {
        app.broadcaster
            .emit_all(namespace, ev::CREATED, &created)
            .await;
    }
    let users = app.broadcaster.connected_user_ids(ns::NOTIFICATIONS).await;
    push_counts(&app, &users).await;
    Ok((StatusCode::CREATED, Json(created)))
}
