//! Application state shared by REST routes and socket handlers.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socketioxide::SocketIo;
use tokio::sync::Notify;

use crate::auth::Verifier;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::realtime::broadcast::Broadcaster;
use crate::realtime::orders::DynamicPaths;
use crate::store::Store;

/// Cheap-to-clone handle to everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts.
#[derive(Debug)]
pub struct Inner {
    /// Settings.
    pub config: Config,
    /// Database.
    pub store: Store,
    /// Token verification.
    pub verifier: Verifier,
    /// Socket.io emits.
    pub broadcaster: Broadcaster,
    /// Handlers running now (graceful shutdown waits for them).
    pub in_flight: InFlight,
    /// `/restaurants/<id>` namespaces that exist, per restaurant.
    pub dynamic_paths: DynamicPaths,
    /// Prometheus metrics.
    pub metrics: Metrics,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(config: Config, store: Store, verifier: Verifier, io: SocketIo) -> Self {
        let metrics = Metrics::default();
        let broadcaster = Broadcaster::new(io, metrics.broadcast_failures.clone());
        AppState(Arc::new(Inner {
            config,
            store,
            verifier,
            broadcaster,
            in_flight: InFlight::default(),
            dynamic_paths: DynamicPaths::default(),
            metrics,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
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
