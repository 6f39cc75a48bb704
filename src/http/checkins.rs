//! Event check-ins (contract §7.5): a backend posts each check-in of a session, which
//! reaches the session's `/ws/dashboard/:sessionID` connections on every node; staff
//! list a session's check-ins newest first.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::extract::{ApiQuery, Authenticated, JsonBody, ServiceCaller};
use crate::domain::checkins::{Checkin, CreateCheckin, ListCheckins};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::ws::events;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new().route(
        "/sessions/{session_id}/checkins",
        get(list_checkins).post(create_checkin),
    )
}

fn parse_session(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::bad_request("sessionId: not a UUID"))
}

/// 201 with the stored check-in, once it is queued to this node's dashboards of the
/// session (and cast to the other nodes'). Rights first, then the path, then the body.
async fn create_checkin<A: Adapter>(
    State(app): State<AppState<A>>,
    ServiceCaller(_): ServiceCaller,
    Path(session_id): Path<String>,
    body: JsonBody,
) -> AppResult<(StatusCode, Json<Checkin>)> {
    let session_id = parse_session(&session_id)?;
    let body: CreateCheckin = body.decode()?;
    let checkin = app.store.insert_checkin(session_id, &body).await?;
    events::checkin_stored(&app.ws, &checkin);
    Ok((StatusCode::CREATED, Json(checkin)))
}

/// The session's newest check-ins first, `?limit=` 1..=100 (default 50), as a bare
/// array. Staff, manager, admin and service.
async fn list_checkins<A: Adapter>(
    State(app): State<AppState<A>>,
    Authenticated(me): Authenticated,
    Path(session_id): Path<String>,
    query: ApiQuery,
) -> AppResult<Json<Vec<Checkin>>> {
    if !me.is_staff_or_above() {
        return Err(AppError::forbidden(
            "only staff, manager, admin or service tokens may list check-ins",
        ));
    }
    let session_id = parse_session(&session_id)?;
    let q: ListCheckins = query.decode(&[("limit", "limit")], &[])?;
    Ok(Json(app.store.list_checkins(session_id, q.limit()).await?))
}
