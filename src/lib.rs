//! Switchboard: a Socket.IO-compatible realtime server (chat, notifications, restaurant
//! order boards) on axum, socketioxide and PostgreSQL.
//!
//! `main.rs` only reads configuration and calls [`serve`]; tests and examples start the
//! same server on a listener they bind themselves (port 0) and stop it with their own
//! shutdown future.

pub mod auth;
pub mod config;
pub mod domain;
pub mod embedded_pg;
pub mod error;
pub mod http;
pub mod metrics;
pub mod realtime;
pub mod state;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use socketioxide::SocketIo;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::auth::Verifier;
use crate::config::Config;
use crate::state::AppState;
use crate::store::Store;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The JWT key could not be read.
    #[error("JWT key: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// Database connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The embedded PostgreSQL could not start.
    #[error("{0}")]
    Embedded(#[from] embedded_pg::EmbeddedPgError),
    /// Listening or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens a pool on `url` with the configured size.
pub async fn connect_pool(config: &Config, url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
}

/// Builds the whole application (REST routes with socket.io layered on) over `pool`.
pub fn build_app(config: Config, pool: PgPool) -> Result<(Router, AppState), StartError> {
    let verifier = Verifier::new(&config.jwt)?;
    let max_payload = config.max_payload_bytes;
    let (io_layer, io) = SocketIo::builder()
        .max_payload(max_payload as u64)
        .ws_max_message_size(max_payload)
        .ws_max_frame_size(max_payload)
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .build_layer();
    let app = AppState::new(config, Store::new(pool), verifier, io);
    realtime::namespaces::register_all(&app);

    let router = http::router()
        .with_state(app.clone())
        .layer(DefaultBodyLimit::max(max_payload))
        .layer(io_layer)
        .layer(cors(&app.config))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refuse_foreign_websockets,
        ));
    Ok((router, app))
}

/// CORS for polling and REST: the allow-list with credentials, or any origin without.
fn cors(config: &Config) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .max_age(Duration::from_secs(600));
    match &config.allowed_origins {
        Some(origins) => {
            let list: Vec<HeaderValue> = origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            base.allow_origin(AllowOrigin::list(list))
                .allow_credentials(true)
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        }
        None => base.allow_origin(Any).allow_headers(Any),
    }
}

/// With `ALLOWED_ORIGINS` set, a websocket upgrade from another origin is refused with
/// 403 (browsers do not apply CORS to websockets, so the server must).
async fn refuse_foreign_websockets(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(allowed) = &app.config.allowed_origins {
        let is_upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if is_upgrade
            && let Some(origin) = origin
            && !allowed.iter().any(|a| a == origin.trim_end_matches('/'))
        {
            tracing::debug!(origin, "websocket upgrade from a foreign origin refused");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
    }
    next.run(req).await
}

/// Serves on `listener` until `shutdown` resolves, then: stops accepting, lets running
/// handlers finish their acks (up to `SHUTDOWN_GRACE_SECS`), disconnects every socket
/// so clients reconnect elsewhere, and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let grace = config.shutdown_grace;
    let (router, app) = build_app(config, pool)?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // Two small frames (an event then its ack) must not wait for the delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(server.into_future());
    tokio::select! {
        result = &mut server => return flatten(result),
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections, finishing in-flight events");
    let _ = stop_tx.send(true);
    let left = app.in_flight.wait_idle(grace).await;
    if left > 0 {
        tracing::warn!(left, "shutdown grace elapsed with events still running");
    }
    app.broadcaster.io().close().await;
    let result = match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => flatten(result),
        Err(_) => {
            tracing::warn!("connections still open after the grace period; closing");
            server.abort();
            Ok(())
        }
    };
    // Namespace handlers hold the state (and so the pool) for as long as the socket.io
    // instance lives; close the pool explicitly so no connection outlives the server.
    app.store.pool().close().await;
    result
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), StartError> {
    match result {
        Ok(inner) => inner.map_err(StartError::from),
        Err(e) => Err(StartError::Io(std::io::Error::other(e))),
    }
}
