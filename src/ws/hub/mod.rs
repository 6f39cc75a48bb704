//! The channel registry of plain WebSocket connections: channel → connections and
//! connection → channels, and the one place that queues a message to a connection.
//!
//! Channels are spread over [`SHARDS`] read-write locks by hash, so deliveries (read
//! locks) on different channels never wait for each other, and subscribes (a write lock
//! on one shard) only wait for deliveries on the channels of that shard. A connection's
//! own channel set sits behind its own mutex. Lock order is always the connection's set
//! first, then a shard; code that starts from a shard (a revoked grant) collects what it
//! needs, releases the shard, and then goes through the connection.
//!
//! Delivery never waits: each connection has one bounded queue, and a message that
//! does not fit closes that connection (1013, a slow consumer) instead of holding up
//! the others. A message is rendered once and its bytes are shared by every queue.

//!
//! Here the registry and its lifecycle (register, remove, shutdown); `channels.rs`
//! membership and delivery; `peer.rs` one connection's side.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::outbox::Outbox;
use crate::metrics::WsMetrics;

mod channels;
mod peer;
#[cfg(test)]
mod tests;

pub use peer::{CloseReason, Dialect, Frames, Peer, TooManyChannels};

/// Shards of the channel map: enough that concurrent subscribes rarely meet.
const SHARDS: usize = 32;

type Shard = RwLock<HashMap<Arc<str>, HashMap<u64, Arc<Peer>>>>;

pub(super) struct Inner {
    shards: Box<[Shard]>,
    hasher: RandomState,
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
    /// Wakes [`Hub::wait_closed`] when the last connection is removed.
    emptied: Notify,
    next_id: AtomicU64,
    /// Set by [`Hub::close_all`]: a connection whose upgrade completes afterwards is
    /// closed at once with the same reason.
    closed_with: Mutex<Option<CloseReason>>,
    /// Set by [`Hub::stop_reading`] (shutdown): connections finish the message in hand
    /// and take no more.
    draining: AtomicBool,
    max_channels: usize,
    metrics: WsMetrics,
    /// Where deliveries are cast to the other nodes (in a cluster).
    cluster: Option<mpsc::Sender<super::cluster::Cast>>,
}

/// The registry. Cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// An empty registry; each connection may hold `max_channels` channels.
    pub fn new(
        max_channels: usize,
        metrics: WsMetrics,
        cluster: Option<mpsc::Sender<super::cluster::Cast>>,
    ) -> Self {
        Hub(Arc::new(Inner {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::new(),
            peers: Mutex::default(),
            emptied: Notify::new(),
            next_id: AtomicU64::new(1),
            closed_with: Mutex::new(None),
            draining: AtomicBool::new(false),
            max_channels,
            metrics,
            cluster,
        }))
    }

    /// Deliveries are cast to other nodes too.
    pub fn in_cluster(&self) -> bool {
        self.0.cluster.is_some()
    }

    /// Someone may want a delivery: a connection of this node, or other nodes.
    pub fn has_audience(&self) -> bool {
        self.connections() > 0 || self.0.cluster.is_some()
    }

    /// Queues `cast` for the other nodes (nothing outside a cluster). A full queue
    /// drops it, counted.
    pub fn cast(&self, cast: super::cluster::Cast) {
        let Some(tx) = &self.0.cluster else {
            return;
        };
        if tx.try_send(cast).is_err() {
            self.0.metrics.cluster_casts_dropped.inc();
            tracing::warn!("a /ws delivery was not cast to the other nodes: queue full");
        }
    }

    pub(super) fn shard(&self, channel: &str) -> &Shard {
        let hash = self.0.hasher.hash_one(channel);
        // The modulo keeps the index below SHARDS, so the cast cannot truncate.
        &self.0.shards[(hash % SHARDS as u64) as usize]
    }

    pub(super) fn peers(&self) -> MutexGuard<'_, HashMap<u64, Arc<Peer>>> {
        self.0.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a connection whose queue holds at most `queue` messages.
    pub fn register(&self, queue: usize, dialect: Dialect) -> Arc<Peer> {
        let peer = Arc::new(Peer {
            id: self.0.next_id.fetch_add(1, Ordering::Relaxed),
            dialect,
            outbox: Outbox::new(queue),
            user: std::sync::RwLock::new(None),
            subscriptions: Mutex::default(),
            closes: self.0.metrics.closes.clone(),
            dropped: self.0.metrics.dropped.clone(),
            busy: AtomicBool::new(false),
        });
        self.peers().insert(peer.id, peer.clone());
        if self.0.draining.load(Ordering::SeqCst) {
            peer.outbox().drain();
        }
        let closed_with = *self.0.closed_with.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = closed_with {
            peer.close(reason);
        }
        peer
    }

    /// Removes a closed connection from every channel and from the registry.
    pub fn remove(&self, peer: &Peer) {
        {
            let mut subscriptions = peer.subscriptions();
            subscriptions.gone = true;
            for channel in std::mem::take(&mut subscriptions.channels) {
                self.forget(peer.id, &channel);
            }
        }
        let mut peers = self.peers();
        peers.remove(&peer.id);
        if peers.is_empty() {
            self.0.emptied.notify_waiters();
        }
    }

    /// Tells every connection, present and future, to stop taking client messages
    /// (shutdown's first step: what is in hand is finished and answered, nothing new
    /// starts while the server waits for it).
    pub fn stop_reading(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
        let peers: Vec<Arc<Peer>> = self.peers().values().cloned().collect();
        for peer in peers {
            peer.outbox().drain();
        }
    }

    /// Asks every connection to close for `reason` (shutdown).
    /// Connections that register afterwards are closed at once for the same reason.
    pub fn close_all(&self, reason: CloseReason) {
        *self.0.closed_with.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        let peers: Vec<Arc<Peer>> = self.peers().values().cloned().collect();
        for peer in peers {
            peer.close(reason);
        }
    }

    /// Connections not closing yet.
    pub fn open_peers(&self) -> usize {
        self.peers()
            .values()
            .filter(|peer| peer.closing().is_none())
            .count()
    }

    /// Asks up to `n` connections that are neither closing nor handling a message to
    /// close for `reason` (a shutdown wave); returns how many it asked.
    pub fn close_idle(&self, n: usize, reason: CloseReason) -> usize {
        if n == 0 {
            return 0;
        }
        let chosen: Vec<Arc<Peer>> = self
            .peers()
            .values()
            .filter(|peer| peer.closing().is_none() && !peer.busy.load(Ordering::SeqCst))
            .take(n)
            .cloned()
            .collect();
        for peer in &chosen {
            peer.close(reason);
        }
        chosen.len()
    }

    /// Waits until every connection is removed, or `limit` passes; returns how many
    /// are left.
    pub async fn wait_closed(&self, limit: Duration) -> usize {
        let wait = async {
            loop {
                let emptied = self.0.emptied.notified();
                if self.connections() == 0 {
                    return;
                }
                emptied.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.connections()
    }

    /// Connections registered now.
    pub fn connections(&self) -> usize {
        self.peers().len()
    }

    /// The most channels one connection may hold.
    pub fn max_channels(&self) -> usize {
        self.0.max_channels
    }

    /// The metrics this registry counts in.
    pub fn metrics(&self) -> &WsMetrics {
        &self.0.metrics
    }
}
