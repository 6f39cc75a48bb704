//! Restaurant and order routes (contract §8): other backends and staff tools create and
//! change orders here; every change is announced on the restaurant namespaces.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::extract::{ApiQuery, Authenticated, JsonBody, ServiceCaller, parse_id};
use crate::auth::{Principal, Role};
use crate::domain::floor::RestaurantItem;
use crate::domain::input::decode;
use crate::domain::orders::{
    BoardQuery, CreateOrder, CreateRestaurant, DeleteOrder, KitchenAlert, Order, PatchOrder,
};
use crate::error::{AppError, AppResult};
use crate::realtime::announce;
use crate::realtime::namespaces::restaurant::board;
use crate::state::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/restaurants", post(create_restaurant))
        .route(
            "/restaurants/{id}/orders",
            get(list_orders).post(create_order),
        )
        .route("/restaurants/{id}/alerts", post(create_alert))
        .route("/orders/{id}", patch(patch_order).delete(delete_order))
}

/// REST rule: `service` and `admin` act anywhere; others need the restaurant in their
/// token and at least `min` in `user < staff < manager < admin`. Then it must exist.
pub(super) async fn authorize<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    restaurant_id: Uuid,
    min: Role,
) -> AppResult<()> {
    let anywhere = me.has_role(Role::Service) || me.is_admin();
    let member = me.restaurants.contains(&restaurant_id) && me.rank() >= min;
    if !(anywhere || member) {
        return Err(AppError::forbidden("not allowed for this restaurant"));
    }
    if !app.store.restaurant_exists(restaurant_id).await? {
        return Err(AppError::not_found("restaurant not found"));
    }
    Ok(())
}

/// The order, once the caller may act on its restaurant. An order of a restaurant the
/// caller has nothing to do with is "not found", so other restaurants' order ids cannot
/// be probed; a caller of that restaurant without the rank gets 403.
async fn authorized_order<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    order_id: Uuid,
    min: Role,
) -> AppResult<Order> {
    let order = app
        .store
        .find_order(order_id)
        .await?
        .ok_or_else(|| AppError::not_found("order not found"))?;
    let anywhere = me.has_role(Role::Service) || me.is_admin();
    if !anywhere && !me.restaurants.contains(&order.restaurant_id) {
        return Err(AppError::not_found("order not found"));
    }
    authorize(app, me, order.restaurant_id, min).await?;
    Ok(order)
}

async fn create_restaurant<A: Adapter>(
    State(app): State<AppState<A>>,
    _: ServiceCaller,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<RestaurantItem>)> {
    let body: CreateRestaurant = body.decode()?;
    // Not announced on the entity gateway: contract §8 gives this route no event (the
    // gateway's restaurant snapshots come from `PATCH /api/restaurants/:id`).
    let created = app.store.insert_restaurant(&body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The twin of `orders:sync`: the board as a bare `Order[]`, oldest first, capped like
/// the sync; `X-Truncated: true` when more matched (narrow with `status`).
async fn list_orders<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    query: ApiQuery,
) -> AppResult<axum::response::Response> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::User).await?;
    let q: BoardQuery = query.decode(
        &[
            ("status", "statuses"),
            ("statuses", "statuses"),
            ("station", "station"),
        ],
        &["statuses"],
    )?;
    let (orders, truncated) = board(&app, restaurant_id, q.statuses, q.station).await?;
    let mut response = Json(orders).into_response();
    if truncated {
        response
            .headers_mut()
            .insert("x-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn create_order<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Order>)> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Staff).await?;
    let body: CreateOrder = body.decode()?;
    let order = app.store.insert_order(restaurant_id, &body).await?;
    announce::orders::created(&app, &order).await;
    Ok((StatusCode::CREATED, Json(order)))
}

async fn patch_order<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<Json<Order>> {
    let order_id = parse_id(&id)?;
    let before = authorized_order(&app, &me, order_id, Role::Staff).await?;
    let body: PatchOrder = body.decode()?;
    let patched = app.store.patch_order(order_id, &body).await?;
    announce::orders::patched(&app, &before, &patched, &me.user_id.to_string()).await;
    Ok(Json(patched.order))
}

async fn delete_order<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> AppResult<StatusCode> {
    // Size first (413 in our error shape, not axum's plain text), as on every route.
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::bad_request(format!("body: {}", rejection.body_text()))
        }
    })?;
    let order_id = parse_id(&id)?;
    authorized_order(&app, &me, order_id, Role::Manager).await?;
    // The body is optional: `{ reason? }` or nothing.
    let body: DeleteOrder = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOrder::default()
    } else {
        let value: Value = serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("body: {e}")))?;
        decode(value)?
    };
    let order = app
        .store
        .mark_order_deleted(order_id, body.reason.as_deref())
        .await?
        .ok_or_else(|| AppError::not_found("order not found"))?;
    announce::orders::deleted(&app, &order, body.reason.as_deref()).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_alert<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<KitchenAlert>)> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Staff).await?;
    let alert: KitchenAlert = body.decode()?;
    announce::orders::kitchen_alert(&app, restaurant_id, &alert).await;
    Ok((StatusCode::CREATED, Json(alert)))
}
