//! What differs between a single node and a cluster: waiting for remote adapters to be
//! subscribed, mounting `/restaurants/<id>` on demand so events caused on this node
//! reach sockets of that namespace on other nodes, and the barrier that makes a forced
//! room leave take effect on every node before the reply.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use socketioxide::adapter::Adapter;

use crate::metrics::{LinkLabel, Metrics};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The result of mounting a namespace, awaitable whatever the adapter.
pub trait NsInit: Send + 'static {
    /// Resolves once the namespace's adapter is ready (remote adapters: subscribed).
    fn ready(self) -> BoxFuture<Result<(), String>>;
}

impl NsInit for () {
    fn ready(self) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

impl<D: socketioxide_postgres::drivers::Driver> NsInit for socketioxide_postgres::InitRes<D> {
    fn ready(self) -> BoxFuture<Result<(), String>> {
        Box::pin(async move { self.await.map_err(|e| e.to_string()) })
    }
}

impl<D: socketioxide_redis::drivers::Driver> NsInit for socketioxide_redis::InitRes<D> {
    fn ready(self) -> BoxFuture<Result<(), String>> {
        Box::pin(async move { self.await.map_err(|e| e.to_string()) })
    }
}

/// Checks the cluster adapter's own connection (Redis); `None` when the database ping
/// already covers it (local, or PostgreSQL on the same database).
pub type AdapterProbe = Box<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>;

/// After a forced leave through the adapter: a request that every node answers. Nodes
/// handle requests in order, so once all have answered, each has applied the leave.
pub async fn barrier<A: Adapter>(io: &socketioxide::SocketIo<A>, ns: &str) {
    if let Some(op) = io.of(ns)
        && let Err(e) = op.rooms().await
    {
        tracing::warn!(ns, error = %e, "cluster barrier incomplete");
    }
}

/// The state of one cluster link (the node's LISTEN connection, or its Redis
/// connection), kept in logs and in the `cluster_link_*` metrics.
#[derive(Clone, Debug)]
pub struct LinkHealth {
    link: &'static str,
    up: Arc<AtomicBool>,
    gauge: Gauge,
    losses: Counter,
    restores: Counter,
    dropped: Counter,
    channels: Gauge,
}

impl LinkHealth {
    /// A link that is not connected yet.
    pub fn new(metrics: &Metrics, link: &'static str) -> Self {
        let label = LinkLabel { link };
        let gauge = metrics.link_up.get_or_create(&label).clone();
        gauge.set(0);
        LinkHealth {
            link,
            up: Arc::new(AtomicBool::new(false)),
            gauge,
            losses: metrics.link_losses.get_or_create(&label).clone(),
            restores: metrics.link_restores.get_or_create(&label).clone(),
            dropped: metrics.link_dropped.get_or_create(&label).clone(),
            channels: metrics.link_channels.get_or_create(&label).clone(),
        }
    }

    /// The number of channels the link is subscribed to (each mounted namespace holds
    /// a few; they must fall back when namespaces go).
    pub fn set_channels(&self, count: usize) {
        self.channels.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The link is connected with its subscriptions in place.
    pub fn connected(&self) {
        if !self.up.swap(true, Ordering::SeqCst) {
            self.gauge.set(1);
            if self.losses.get() > 0 {
                self.restores.inc();
                tracing::info!(link = self.link, "cluster link restored; broadcasts resume");
            } else {
                tracing::debug!(link = self.link, "cluster link connected");
            }
        }
    }

    /// The link went away; it is being re-established.
    pub fn lost(&self, reason: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::SeqCst) {
            self.gauge.set(0);
            self.losses.inc();
            tracing::warn!(
                link = self.link,
                %reason,
                "cluster link lost; reconnecting (broadcasts between nodes pause)"
            );
        }
    }

    /// A message for a subscriber whose queue is full was dropped: the link's loop
    /// never waits for one slow subscriber (it would stall every other one).
    pub fn dropped(&self, channel: &str) {
        self.dropped.inc();
        tracing::warn!(
            link = self.link,
            channel,
            "cluster message dropped: subscriber queue full"
        );
    }

    /// Whether the link is connected now.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }
}
