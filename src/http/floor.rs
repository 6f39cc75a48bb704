//! REST for the entity gateway's items (contract §7.5): restaurants' details, their
//! tables and their reservations. Every change answers like every REST route (201 with
//! the item, 200, 204) and is announced as `{entity}.snapshot` to the gateway
//! connections that may see it, on every node.
//!
//! Rights first, then the path, then the body; an item of a restaurant the caller has
//! nothing to do with is "not found", as orders are.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::extract::{Authenticated, JsonBody, parse_id};
use super::restaurants::authorize;
use crate::auth::{Principal, Role};
use crate::domain::floor::{
    CreateReservation, CreateTable, PatchReservation, PatchRestaurant, PatchTable, Reservation,
    RestaurantItem, Table, is_table_id,
};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::ws::gateway::snapshots::{self, Op};

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/restaurants/{id}", patch(patch_restaurant))
        .route("/restaurants/{id}/tables", post(create_table))
        .route(
            "/restaurants/{id}/tables/{table_id}",
            patch(patch_table).delete(delete_table),
        )
        .route("/restaurants/{id}/reservations", post(create_reservation))
        .route(
            "/reservations/{id}",
            patch(patch_reservation).delete(delete_reservation),
        )
}

/// A table id from the path; one that could never exist is simply not found.
fn table_id(raw: &str) -> AppResult<&str> {
    if is_table_id(raw) {
        Ok(raw)
    } else {
        Err(AppError::not_found("table not found"))
    }
}

/// `PATCH /api/restaurants/:id`: manager+ of it, admin, service.
async fn patch_restaurant<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<Json<RestaurantItem>> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Manager).await?;
    let body: PatchRestaurant = body.decode()?;
    let updated = app
        .store
        .patch_restaurant(restaurant_id, &body)
        .await?
        .ok_or_else(|| AppError::not_found("restaurant not found"))?;
    snapshots::restaurant(
        &app.ws,
        Op::Updated,
        &updated.item,
        Some(&updated.section_before),
    );
    Ok(Json(updated.item))
}

/// `POST /api/restaurants/:id/tables`: manager+ of it, admin, service. A taken id is
/// 409.
async fn create_table<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Table>)> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Manager).await?;
    let body: CreateTable = body.decode()?;
    let table = app.store.insert_table(restaurant_id, &body).await?;
    snapshots::table(&app.ws, Op::Created, &table, None);
    Ok((StatusCode::CREATED, Json(table)))
}

async fn patch_table<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path((id, table)): Path<(String, String)>,
    body: JsonBody,
) -> AppResult<Json<Table>> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Manager).await?;
    let table = table_id(&table)?;
    let body: PatchTable = body.decode()?;
    let updated = app
        .store
        .patch_table(restaurant_id, table, &body)
        .await?
        .ok_or_else(|| AppError::not_found("table not found"))?;
    snapshots::table(
        &app.ws,
        Op::Updated,
        &updated.item,
        Some(&updated.section_before),
    );
    Ok(Json(updated.item))
}

/// Deletes a table; reservations that held it lose their `table_id`, each announced.
async fn delete_table<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path((id, table)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Manager).await?;
    let table = table_id(&table)?;
    let deleted = app
        .store
        .delete_table(restaurant_id, table)
        .await?
        .ok_or_else(|| AppError::not_found("table not found"))?;
    for reservation in &deleted.released {
        snapshots::reservation(&app.ws, Op::Updated, reservation, None);
    }
    snapshots::table(&app.ws, Op::Deleted, &deleted.table, None);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/restaurants/:id/reservations`: staff+ of it, admin, service.
async fn create_reservation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Reservation>)> {
    let restaurant_id = parse_id(&id)?;
    authorize(&app, &me, restaurant_id, Role::Staff).await?;
    let body: CreateReservation = body.decode()?;
    let reservation = app.store.insert_reservation(restaurant_id, &body).await?;
    snapshots::reservation(&app.ws, Op::Created, &reservation, None);
    Ok((StatusCode::CREATED, Json(reservation)))
}

/// The reservation, once the caller may act on its restaurant: one of a restaurant the
/// caller has nothing to do with is "not found"; of its restaurant without the rank, 403.
async fn authorized_reservation<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    id: Uuid,
) -> AppResult<Reservation> {
    let reservation = app
        .store
        .find_reservation(id)
        .await?
        .ok_or_else(|| AppError::not_found("reservation not found"))?;
    if !me.is_service_or_admin() && !me.restaurants.contains(&reservation.restaurant_id) {
        return Err(AppError::not_found("reservation not found"));
    }
    authorize(app, me, reservation.restaurant_id, Role::Staff).await?;
    Ok(reservation)
}

async fn patch_reservation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    body: JsonBody,
) -> AppResult<Json<Reservation>> {
    let id = parse_id(&id)?;
    authorized_reservation(&app, &me, id).await?;
    let body: PatchReservation = body.decode()?;
    let updated = app
        .store
        .patch_reservation(id, &body)
        .await?
        .ok_or_else(|| AppError::not_found("reservation not found"))?;
    snapshots::reservation(
        &app.ws,
        Op::Updated,
        &updated.item,
        Some(&updated.section_before),
    );
    Ok(Json(updated.item))
}

async fn delete_reservation<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    authorized_reservation(&app, &me, id).await?;
    let deleted = app
        .store
        .delete_reservation(id)
        .await?
        .ok_or_else(|| AppError::not_found("reservation not found"))?;
    snapshots::reservation(&app.ws, Op::Deleted, &deleted, None);
    Ok(StatusCode::NO_CONTENT)
}
