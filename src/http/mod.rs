//! REST under `/api`, health and readiness, the plain WebSocket routes; JSON errors as `{ error: { code, message } }`.

pub mod access;
mod channels;
mod checkins;
pub mod client_bundle;
mod conversations;
mod extract;
mod floor;
pub mod health;
pub(crate) mod layers;
mod notifications;
pub mod rate_limit;
mod restaurants;
pub(crate) mod static_file;
mod users;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use socketioxide::adapter::Adapter;

use crate::error::AppError;
use crate::state::AppState;

/// Every HTTP route of the server (socket.io and the layers are put on by `app`).
pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .nest(
            "/api",
            conversations::router()
                .merge(channels::router())
                .merge(checkins::router())
                .merge(floor::router())
                .merge(notifications::router())
                .merge(restaurants::router())
                .merge(users::router()),
        )
        .merge(health::router())
        .merge(crate::ws::router())
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let code = self.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": code.chat(), "message": self.public_message() } });
        (status, axum::Json(body)).into_response()
    }
}
