//! Application state shared by REST routes and socket handlers.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socketioxide::adapter::Adapter;
use tokio::sync::Notify;

use crate::auth::Verifier;
use crate::config::Config;
use crate::http::health::Readiness;
use crate::metrics::Metrics;
use crate::outbound::Meters;
use crate::realtime::cluster::AdapterProbe;
use crate::realtime::cluster_bus::ClusterBus;
use crate::realtime::fanout::Fanout;
use crate::realtime::lifetime::Lifetimes;
use crate::store::Store;
use crate::ws;

/// Cheap-to-clone handle to everything a handler needs, generic over the socket.io
/// adapter (`LocalAdapter` for one node, a remote adapter for a cluster).
pub struct AppState<A: Adapter>(Arc<Inner<A>>);

impl<A: Adapter> Clone for AppState<A> {
    fn clone(&self) -> Self {
        AppState(self.0.clone())
    }
}

impl<A: Adapter> std::fmt::Debug for AppState<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState { .. }")
    }
}

/// The shared parts.
pub struct Inner<A: Adapter> {
    /// Settings.
    pub config: Config,
    /// Database.
    pub store: Store,
    /// Token verification.
    pub verifier: Verifier,
    /// Every way an event leaves this node: socket.io rooms, plain connections, the
    /// other nodes.
    pub fanout: Fanout<A>,
    /// Handlers running now (graceful shutdown waits for them).
    pub in_flight: InFlight,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Outbound byte budget and stall limit of every connection.
    pub meters: Arc<Meters>,
    /// Health of the adapter's own connection, when it has one.
    adapter_probe: Option<AdapterProbe>,
    /// This node's token-authenticated connections and when their tokens expire.
    pub lifetimes: Lifetimes,
    /// The background readiness probe's last result, read by `/readyz`.
    pub readiness: Readiness,
    /// Plain WebSocket connections and their channels (the hub `fanout` delivers to).
    pub ws: ws::Hub,
}

impl<A: Adapter> AppState<A> {
    /// Bundles the parts around `fanout` (built first: see `realtime::fanout`).
    pub fn new(
        config: Config,
        store: Store,
        verifier: Verifier,
        fanout: Fanout<A>,
        metrics: Metrics,
        adapter_probe: Option<AdapterProbe>,
    ) -> Self {
        let meters = Meters::new(
            config.max_socket_buffer_bytes,
            config.write_stall_timeout,
            metrics.slow_consumers.clone(),
            &config.engine,
        );
        let lifetimes = Lifetimes::new(config.jwt.leeway_secs, metrics.session_lifetimes.clone());
        let ws = fanout.ws.clone();
        AppState(Arc::new(Inner {
            config,
            store,
            verifier,
            fanout,
            in_flight: InFlight::default(),
            metrics,
            meters,
            adapter_probe,
            lifetimes,
            readiness: Readiness::default(),
            ws,
        }))
    }

    /// The cluster bus, when running as a cluster.
    pub fn cluster_bus(&self) -> Option<&ClusterBus> {
        self.fanout.cluster_bus()
    }

    /// Whether the adapter's own connection answers (always true without one).
    pub async fn adapter_ready(&self) -> Result<(), String> {
        match &self.0.adapter_probe {
            Some(probe) => probe().await,
            None => Ok(()),
        }
    }
}

impl<A: Adapter> Deref for AppState<A> {
    type Target = Inner<A>;
    fn deref(&self) -> &Inner<A> {
        &self.0
    }
}

/// Counts running event handlers so shutdown can let them finish their acks.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Decrements the in-flight count when dropped.
#[derive(Debug)]
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    /// Marks one handler as running until the guard drops.
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    /// Waits until no handler runs, or `limit` passes. Returns how many were left.
    pub async fn wait_idle(&self, limit: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
