//! `POST /api/notifications` and `/api/notifications/broadcast` (contract §8), for
//! other backends (`service`) and admins.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use socketioxide::adapter::Adapter;

use super::extract::{ApiJson, ServiceCaller};
use crate::domain::notifications::{CreateBroadcast, CreateNotification, Notification, Priority};
use crate::error::AppResult;
use crate::realtime::events::{notifications as ev, ns};
use crate::realtime::namespaces::notifications::push_counts;
use crate::realtime::rooms;
use crate::state::AppState;
use crate::store::notifications::NewNotification;
use crate::ws;

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
        .insert_notification(NewNotification {
            user_id: Some(body.user_id),
            kind: body.kind,
            title: &body.title,
            content: &body.content,
            related_id: body.related_id.as_deref(),
            link: body.link.as_deref(),
            priority: body.priority,
        })
        .await?;
    let room = rooms::user(body.user_id);
    app.broadcaster
        .emit(ns::NOTIFICATIONS, room.clone(), ev::CREATED, &created)
        .await;
    app.broadcaster
        .emit(ns::CHAT, room, ev::CREATED, &created)
        .await;
    ws::events::notification_created(&app.ws, &created);
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
        .insert_notification(NewNotification {
            user_id: None,
            kind: body.kind,
            title: &body.title,
            content: &body.content,
            related_id: None,
            link: None,
            priority: Priority::Normal,
        })
        .await?;
    for namespace in [ns::NOTIFICATIONS, ns::CHAT] {
        app.broadcaster
            .emit_all(namespace, ev::CREATED, &created)
            .await;
    }
    ws::events::notification_created(&app.ws, &created);
    let users = app.broadcaster.connected_user_ids(ns::NOTIFICATIONS).await;
    push_counts(&app, &users).await;
    Ok((StatusCode::CREATED, Json(created)))
}
