//! `/healthz` (the process answers), `/readyz` (the database and cluster links answered
//! the background probe lately, and the node is not shutting down) and `/metrics`.
//!
//! `/readyz` reads the probe's last result instead of asking the database itself: a
//! load balancer or an attacker polling it costs no database round trip.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use tokio::time::Instant;

use crate::metrics::{PoolLabel, TransportLabel};
use crate::state::AppState;

/// How often the background probe asks the database and the cluster links.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long one probe may wait for an answer before counting it as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A probe result older than this no longer says ready (the probe itself is stuck).
const STALE_AFTER: Duration = Duration::from_secs(5);

/// The health, readiness and metrics routes.
pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The last readiness probe's result, shared by the probe task and `/readyz`, and
/// whether the node is draining (shutting down: never ready again).
#[derive(Debug, Default)]
pub struct Readiness {
    probed: Mutex<Option<Probed>>,
    draining: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Probed {
    at: Instant,
    database: bool,
    adapter: bool,
}

impl Readiness {
    fn last(&self) -> Option<Probed> {
        *self
            .probed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a result; returns the previous one.
    fn record(&self, probed: Probed) -> Option<Probed> {
        self.probed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(probed)
    }

    /// From now on `/readyz` answers 503 (the shutdown signal arrived).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the shutdown signal arrived.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Asks the database and the cluster links once and records the answer, logging only
/// changes (a probe every second must not fill the log while the database is down).
pub async fn probe_readiness<A: Adapter>(app: &AppState<A>) {
    let database = tokio::time::timeout(PROBE_TIMEOUT, ping_database(app)).await;
    let database = match database {
        Ok(result) => result,
        Err(_) => Err("no answer within 2 s".to_owned()),
    };
    let adapter = match tokio::time::timeout(PROBE_TIMEOUT, app.adapter_ready()).await {
        Ok(result) => result,
        Err(_) => Err("no answer within 2 s".to_owned()),
    };
    let previous = app.readiness.record(Probed {
        at: Instant::now(),
        database: database.is_ok(),
        adapter: adapter.is_ok(),
    });
    let (was_db, was_adapter) = previous.map_or((true, true), |p| (p.database, p.adapter));
    match (&database, was_db) {
        (Err(e), true) => tracing::warn!(error = %e, "readiness: database unreachable"),
        (Ok(()), false) => tracing::info!("readiness: database reachable again"),
        _ => {}
    }
    match (&adapter, was_adapter) {
        (Err(e), true) => tracing::warn!(error = %e, "readiness: cluster adapter unreachable"),
        (Ok(()), false) => tracing::info!("readiness: cluster adapter reachable again"),
        _ => {}
    }
}

/// One `select 1`, tried again at once when it fails, up to one more time than the
/// pool holds connections. The pool lends connections without checking them (see
/// `connect_pool`), so after an outage every idle one is dead and fails its query once;
/// a single attempt per probe would take a second per dead connection to report ready.
async fn ping_database<A: Adapter>(app: &AppState<A>) -> Result<(), String> {
    let attempts = app.store.pool().size() + 1;
    let mut last = String::new();
    for _ in 0..attempts {
        match app.store.ping().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Probes every [`PROBE_EVERY`] until aborted (`serve` aborts it at shutdown).
pub fn spawn_readiness_probe<A: Adapter>(app: AppState<A>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PROBE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            probe_readiness(&app).await;
        }
    })
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz<A: Adapter>(State(app): State<AppState<A>>) -> (StatusCode, Json<Value>) {
    let fresh = app
        .readiness
        .last()
        .filter(|probed| probed.at.elapsed() <= STALE_AFTER);
    let word = |ok: Option<bool>| match ok {
        Some(true) => "ok",
        Some(false) => "unreachable",
        None => "unknown",
    };
    let database = fresh.map(|p| p.database);
    let adapter = fresh.map(|p| p.adapter);
    // Draining wins over a good probe: the load balancer must stop sending clients here
    // before the connections are closed.
    let draining = app.readiness.is_draining();
    let ready = !draining && database == Some(true) && adapter == Some(true);
    let status = if draining {
        "draining"
    } else if ready {
        "ready"
    } else {
        "unavailable"
    };
    let body = json!({
        "status": status,
        "database": word(database),
        "adapter": word(adapter),
    });
    let status = if ready {
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
    let (polling, websocket) = sessions_by_transport(&app);
    for (transport, n) in [("polling", polling), ("websocket", websocket)] {
        m.socketio_connections
            .get_or_create(&TransportLabel { transport })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let namespaces = app.fanout.broadcaster.io().nsps().len();
    m.namespaces
        .set(i64::try_from(namespaces).unwrap_or(i64::MAX));
    let routes = app.fanout.dynamic.tracked();
    m.dynamic_routes
        .set(i64::try_from(routes).unwrap_or(i64::MAX));
    // Stable in tokio 1.54 (no `tokio_unstable` needed). A leak of per-socket tasks
    // shows here long before it shows in RSS.
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    m.tokio_tasks_alive
        .set(i64::try_from(tasks).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

/// This node's engine.io sessions with a namespace socket, by current transport
/// (long-polling, websocket). One pass over the sockets per scrape.
fn sessions_by_transport<A: Adapter>(app: &AppState<A>) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let (mut polling, mut websocket) = (0, 0);
    for ns in app.fanout.broadcaster.io().nsps() {
        for socket in ns.sockets() {
            if seen.insert(socket.id) {
                match socket.transport_type() {
                    socketioxide::TransportType::Polling => polling += 1,
                    socketioxide::TransportType::Websocket => websocket += 1,
                }
            }
        }
    }
    (polling, websocket)
}
