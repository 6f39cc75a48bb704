//! [`Running`]: what [`crate::serve()`] needs of a built application, whatever its
//! adapter, so serving and draining are written once rather than once per adapter.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::adapter::Adapter;
use sqlx::PgPool;

use crate::metrics::Metrics;
use crate::realtime::cluster::BoxFuture;
use crate::realtime::cluster_bus::ClusterBus;
use crate::state::{AppState, InFlight};
use crate::{http, outbound, realtime, shutdown, ws};

/// How long shutdown waits for plain WebSocket connections to send their close frames.
const PLAIN_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What `serve` needs of a built application, whatever its adapter.
pub trait Running: Send + Sync {
    /// Running event handlers.
    fn in_flight(&self) -> &InFlight;
    /// Stops plain WebSocket connections from taking new client messages.
    fn stop_reading(&self);
    /// Delivers every open batch-mode window of this node.
    fn flush_batches(&self);
    /// Disconnects every socket of this node.
    fn close(&self) -> BoxFuture<()>;
    /// The database pool.
    fn pool(&self) -> &PgPool;
    /// Metrics (the listener counts connections in them).
    fn metrics(&self) -> &Metrics;
    /// The connections' outbound meters.
    fn meters(&self) -> &Arc<outbound::Meters>;
    /// Probes readiness once (before serving, so `/readyz` is right from the start).
    fn probe_readiness(&self) -> BoxFuture<()>;
    /// Starts the background readiness probe that `/readyz` reads.
    fn spawn_readiness_probe(&self) -> tokio::task::JoinHandle<()>;
    /// The cluster bus (none on a single node).
    fn cluster_bus(&self) -> Option<&ClusterBus>;
    /// `/readyz` answers 503 and new sessions are refused from now on.
    fn start_draining(&self);
    /// Connections open now (see `shutdown::Drain::open`).
    fn open_connections(&self, drain: &shutdown::Drain) -> usize;
    /// Closes one wave of connections (see `shutdown::Drain::close_wave`).
    fn close_wave(&self, drain: &mut shutdown::Drain, waves_left: usize) -> shutdown::Wave;
}

impl<A: Adapter> Running for AppState<A> {
    fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }
    fn stop_reading(&self) {
        self.ws.stop_reading();
    }
    fn flush_batches(&self) {
        realtime::orders::flush_all_batches(&self.fanout);
    }
    fn close(&self) -> BoxFuture<()> {
        let io = self.fanout.broadcaster.io().clone();
        let plain = self.ws.clone();
        Box::pin(async move {
            plain.close_all(ws::CloseReason::Shutdown);
            io.close().await;
            // Their close frames (1001) are out before `serve` returns.
            let left = plain.wait_closed(PLAIN_CLOSE_WAIT).await;
            if left > 0 {
                tracing::warn!(left, "plain WebSocket connections still open at shutdown");
            }
        })
    }
    fn pool(&self) -> &PgPool {
        self.store.pool()
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn meters(&self) -> &Arc<outbound::Meters> {
        &self.meters
    }
    fn probe_readiness(&self) -> BoxFuture<()> {
        let app = self.clone();
        Box::pin(async move { http::health::probe_readiness(&app).await })
    }
    fn spawn_readiness_probe(&self) -> tokio::task::JoinHandle<()> {
        http::health::spawn_readiness_probe(self.clone())
    }
    fn cluster_bus(&self) -> Option<&ClusterBus> {
        AppState::cluster_bus(self)
    }
    fn start_draining(&self) {
        self.readiness.start_draining();
    }
    fn open_connections(&self, drain: &shutdown::Drain) -> usize {
        drain.open(self)
    }
    fn close_wave(&self, drain: &mut shutdown::Drain, waves_left: usize) -> shutdown::Wave {
        drain.close_wave(self, waves_left)
    }
}
