//! `/healthz` (the process answers), `/readyz` (the database answers) and `/metrics`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use crate::metrics::PoolLabel;
use crate::state::AppState;

pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz<A: Adapter>(State(app): State<AppState<A>>) -> (StatusCode, Json<Value>) {
    let database = app.store.ping().await;
    let adapter = app.adapter_ready().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness: database unreachable");
    }
    if let Err(e) = &adapter {
        tracing::warn!(error = %e, "readiness: cluster adapter unreachable");
    }
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let body = json!({
        "status": if database.is_ok() && adapter.is_ok() { "ready" } else { "unavailable" },
        "database": word(database.is_ok()),
        "adapter": word(adapter.is_ok()),
    });
    let status = if database.is_ok() && adapter.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn metrics<A: Adapter>(State(app): State<AppState<A>>) -> impl axum::response::IntoResponse {
    let pool = app.store.pool();
    let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
    let size = i64::from(pool.size());
    let m = &app.metrics;
    m.pool.get_or_create(&PoolLabel { state: "idle" }).set(idle);
    m.pool
        .get_or_create(&PoolLabel { state: "in_use" })
        .set(size - idle);
    let namespaces = app.broadcaster.io().nsps().len();
    m.namespaces
        .set(i64::try_from(namespaces).unwrap_or(i64::MAX));
    let routes = app.dynamic.tracked();
    m.dynamic_routes
        .set(i64::try_from(routes).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}
