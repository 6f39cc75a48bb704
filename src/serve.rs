//! Serving a built application on a listener until a shutdown future resolves, then
//! draining it (the steps are described in [`crate::shutdown`]).
//!
//! It leaves the accept loop and its timeouts to [`crate::listener`], what a drain
//! wave closes to [`crate::shutdown`], and building the application to [`crate::app`].

use std::future::Future;
use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::app::{StartError, build_app};
use crate::config::Config;
use crate::{listener, notify, shutdown};

/// Serves on `listener` until `shutdown` resolves, then drains (see `shutdown.rs`):
/// `/readyz` turns 503 at once and new sessions are refused; open connections are
/// closed in waves over `SHUTDOWN_GRACE_SECS` so their clients reconnect elsewhere
/// spread over that window; then it stops accepting, lets running handlers finish their
/// acks (until the window ends), closes what is left, and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let grace = config.shutdown_grace;
    let notify_socket = config.notify_socket.clone();
    let limits_config = config.clone();
    let (router, app) = build_app(config, pool).await?;
    let limits = listener::Limits::new(&limits_config, app.metrics(), app.meters().clone());
    app.probe_readiness().await;
    let probe = app.spawn_readiness_probe();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = listener::run(listener, router, limits, stop_rx);
    let mut server = tokio::spawn(server);
    notify::notify(notify_socket.as_deref(), "READY=1");
    tokio::select! {
        result = &mut server => {
            probe.abort();
            return flatten(result);
        }
        () = shutdown => {}
    }
    notify::notify(notify_socket.as_deref(), "STOPPING=1");
    let signalled = tokio::time::Instant::now();
    let deadline = signalled + grace;
    app.start_draining();
    let mut drain = shutdown::Drain::default();
    let waves = shutdown::wave_count(app.open_connections(&drain));
    tracing::info!(
        waves,
        grace_secs = grace.as_secs(),
        "shutting down: /readyz answers 503, closing connections in waves"
    );
    for wave in 0..waves {
        tokio::time::sleep_until(signalled + shutdown::wave_offset(grace, wave, waves)).await;
        let done = app.close_wave(&mut drain, waves - wave);
        tracing::debug!(
            wave,
            closed = done.closed,
            open = done.open,
            "shutdown wave"
        );
        if done.open == 0 {
            break;
        }
    }
    // The listener keeps answering /readyz (503) and REST through the waves; now it
    // stops accepting.
    let _ = stop_tx.send(true);
    // A /ws client with a backlog of messages would otherwise keep the server busy
    // (and waiting) until the deadline.
    app.stop_reading();
    let left = app
        .in_flight()
        .wait_idle(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    if left > 0 {
        tracing::warn!(left, "shutdown grace elapsed with events still running");
    }
    // Handlers are done: no order event can join a window after this.
    app.flush_batches();
    app.close().await;
    // Every event and REST request has finished and every socket is closed; what can
    // still hold the server is an engine.io long-poll with no namespace socket, which
    // socketioxide does not close. Give connections a moment, then drop them.
    let linger = grace.min(Duration::from_secs(1));
    let result = match tokio::time::timeout(linger, &mut server).await {
        Ok(result) => flatten(result),
        Err(_) => {
            tracing::info!("closing the connections still open after shutdown");
            server.abort();
            Ok(())
        }
    };
    probe.abort();
    // Namespace handlers hold the state (and so the pool) for as long as the socket.io
    // instance lives; close the pool explicitly so no connection outlives the server.
    app.pool().close().await;
    result
}

/// The server task's end as ours: its own error, or a panic or abort as an I/O error.
fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), StartError> {
    match result {
        Ok(inner) => inner.map_err(StartError::from),
        Err(e) => Err(StartError::Io(std::io::Error::other(e))),
    }
}
