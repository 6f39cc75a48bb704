//! `POST /api/notifications` and `/api/notifications/broadcast` (contract §8), for
//! other backends (`service`) and admins; and the REST twins of the `/notifications`
//! events (seed 004: a mobile app lists its notifications when it starts and marks one
//! read from a push notification), for the caller's own notifications. A twin runs the
//! event's own operation ([`crate::realtime::namespaces::notifications`]): same rules,
//! errors and announcements to every socket of the user.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::extract::{ApiJson, ApiQuery, Authenticated, ServiceCaller, parse_id};
use crate::domain::notifications::{
    CreateBroadcast, CreateNotification, ListNotifications, Notification, Priority,
};
use crate::error::AppResult;
use crate::realtime::announce;
use crate::realtime::events::ns;
use crate::realtime::namespaces::notifications as op;
use crate::state::AppState;
use crate::store::notifications::NewNotification;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route(
            "/notifications",
            get(list_notifications).post(create_notification),
        )
        .route("/notifications/broadcast", post(create_broadcast))
        .route("/notifications/read-all", post(read_all_notifications))
        .route("/notifications/unread/count", get(unread_count))
        .route(
            "/notifications/{id}",
            get(get_notification).delete(delete_notification),
        )
        .route("/notifications/{id}/read", post(read_notification))
}

/// `GET /api/notifications?before=&limit=&unread=`: `notification:list`.
async fn list_notifications<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    query: ApiQuery,
) -> AppResult<Json<Vec<Notification>>> {
    let p: ListNotifications = query.decode(
        &[
            ("before", "before"),
            ("limit", "limit"),
            ("unread", "unreadOnly"),
            ("unreadOnly", "unreadOnly"),
        ],
        &[],
    )?;
    Ok(Json(op::list(&app, &me.user_id, p).await?))
}

/// `GET /api/notifications/:id`: `notification:get`.
async fn get_notification<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<Json<Notification>> {
    let id = parse_id(&id)?;
    Ok(Json(op::get(&app, &me.user_id, id).await?))
}

/// `POST /api/notifications/:id/read`: `notification:read`.
async fn read_notification<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<Json<Notification>> {
    let id = parse_id(&id)?;
    Ok(Json(op::read(&app, &me.user_id, id).await?))
}

/// `POST /api/notifications/read-all`: `notification:read_all`.
async fn read_all_notifications<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
) -> AppResult<Json<Value>> {
    let count = op::read_all(&app, &me.user_id).await?;
    Ok(Json(json!({ "count": count })))
}

/// `DELETE /api/notifications/:id`: `notification:delete`.
async fn delete_notification<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    op::delete(&app, &me.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/notifications/unread/count`: the `notification:count` badge.
async fn unread_count<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
) -> AppResult<Json<Value>> {
    let count = app.store.notification_count(&me.user_id).await?;
    Ok(Json(json!({ "count": count })))
}

async fn create_notification<A: Adapter>(
    State(app): State<AppState<A>>,
    _: ServiceCaller,
    ApiJson(body): ApiJson<CreateNotification>,
) -> AppResult<(StatusCode, Json<Notification>)> {
    let created = app
        .store
        .insert_notification(NewNotification {
            user_id: Some(&body.user_id),
            kind: body.kind,
            title: &body.title,
            content: &body.content,
            related_id: body.related_id.as_deref(),
            link: body.link.as_deref(),
            priority: body.priority,
        })
        .await?;
    announce::notifications::created(&app, &created).await;
    announce::notifications::counts(&app, &[body.user_id]).await;
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
    announce::notifications::created(&app, &created).await;
    let users = app
        .fanout
        .broadcaster
        .connected_user_ids(ns::NOTIFICATIONS)
        .await;
    announce::notifications::counts(&app, &users).await;
    Ok((StatusCode::CREATED, Json(created)))
}
