//! The fan-out handle: every way an event leaves this node, built before the state.
//!
//! It owns the socket.io [`Broadcaster`] (rooms, through the adapter), the table of
//! `/restaurants/<id>` paths ([`DynamicNamespaces`]), the plain WebSocket [`Hub`] and the
//! [`ClusterBus`] to the other nodes. Order routing (`orders.rs`, `order_bus.rs`) needs
//! nothing else, so it takes a `&Fanout`, not the application state.
//!
//! One thing it cannot do alone: in a cluster, the node that causes a restaurant's event
//! mounts that restaurant's namespace first (so the adapter carries the event to tablets
//! on other nodes), and mounting needs the namespace's handlers, which need the state
//! that holds this handle. So [`Fanout::mount`] asks: it sends the path to a
//! [`MountRequests`] queue that the builder serves once the state exists, and waits for
//! the answer. Nothing is set after construction.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::sync::{OnceCell, mpsc, oneshot};

use super::broadcast::Broadcaster;
use super::cluster::BoxFuture;
use super::cluster_bus::ClusterBus;
use super::dynamic::DynamicNamespaces;
use crate::config::{AdapterKind, Config};
use crate::metrics::Metrics;
use crate::ws::Hub;

/// Mount requests waiting for the builder's mount task; past this, senders wait.
const MOUNT_QUEUE: usize = 256;

/// One path to mount, and who waits for it.
type MountRequest = (String, oneshot::Sender<()>);

/// Cheap-to-clone handle to the fan-out parts.
pub struct Fanout<A: Adapter>(Arc<Parts<A>>);

impl<A: Adapter> Clone for Fanout<A> {
    fn clone(&self) -> Self {
        Fanout(self.0.clone())
    }
}

/// The parts, reached through [`Fanout`]'s `Deref`.
pub struct Parts<A: Adapter> {
    /// Socket.io emits to rooms, on every node through the adapter.
    pub broadcaster: Broadcaster<A>,
    /// `/restaurants/<id>` namespaces in use on this node, and the restaurants each carries.
    pub dynamic: Arc<DynamicNamespaces<A>>,
    /// Plain WebSocket connections and their channels.
    pub ws: Hub,
    /// Node-to-node messages besides socket.io packets (cluster only).
    cluster_bus: Option<ClusterBus>,
    /// Whether a restaurant's own namespace must be mounted before sending to it.
    clustered: bool,
    /// How often a batch-mode socket gets its `orders:batch_update`.
    pub order_batch: Duration,
    mounts: mpsc::Sender<MountRequest>,
}

impl<A: Adapter> Deref for Fanout<A> {
    type Target = Parts<A>;
    fn deref(&self) -> &Parts<A> {
        &self.0
    }
}

impl<A: Adapter> Fanout<A> {
    /// The fan-out over `io`, `hub` and `cluster_bus` (`None` on a single node), and the
    /// queue of mount requests the builder must serve ([`MountRequests::serve`]).
    pub fn new(
        io: SocketIo<A>,
        hub: Hub,
        cluster_bus: Option<ClusterBus>,
        config: &Config,
        metrics: &Metrics,
    ) -> (Self, MountRequests) {
        let (mounts, requests) = mpsc::channel(MOUNT_QUEUE);
        let parts = Parts {
            dynamic: DynamicNamespaces::new(io.clone()),
            broadcaster: Broadcaster::new(
                io,
                metrics.broadcast_failures.clone(),
                metrics.socketio_emits.clone(),
            ),
            ws: hub,
            cluster_bus,
            clustered: match config.adapter {
                AdapterKind::Local => false,
                AdapterKind::Redis | AdapterKind::Postgres => true,
            },
            order_batch: config.order_batch,
            mounts,
        };
        (Fanout(Arc::new(parts)), MountRequests(requests))
    }

    /// The cluster bus, when running as a cluster.
    pub fn cluster_bus(&self) -> Option<&ClusterBus> {
        self.cluster_bus.as_ref()
    }

    /// Whether this node is one of a cluster (events must reach namespaces that only
    /// other nodes have).
    pub fn clustered(&self) -> bool {
        self.clustered
    }

    /// Makes sure `path` exists on this node, so its events reach the other nodes, and
    /// keeps it mounted. Returns at once when it is mounted already.
    pub async fn mount(&self, path: String) {
        // Pinned first: a path this node sends to is never deleted under it.
        self.dynamic.pin(&path);
        // Called on every restaurant event in a cluster: nothing to ask once mounted.
        if self.broadcaster.io().of(&path).is_some() {
            return;
        }
        let (done, mounted) = oneshot::channel();
        if self.mounts.send((path.clone(), done)).await.is_err() {
            tracing::warn!(ns = %path, "no mount task: event stays on this node");
            return;
        }
        // A dropped answer is a failed mount, logged by the task; the next event retries.
        let _ = mounted.await;
    }
}

/// The receiving end of [`Fanout::mount`]'s requests.
pub struct MountRequests(mpsc::Receiver<MountRequest>);

impl MountRequests {
    /// Serves the requests on a task until every [`Fanout`] is dropped: `mount(path)`
    /// builds the namespace and resolves once its adapter is ready. Each path is
    /// mounted once even when the first events for a restaurant race each other; each
    /// request is answered when its path is mounted (a failed mount drops the answer, and
    /// the next event for the path tries again).
    pub fn serve<F>(self, mount: F)
    where
        F: Fn(String) -> BoxFuture<Result<(), String>> + Send + Sync + 'static,
    {
        let MountRequests(mut requests) = self;
        let mount = Arc::new(mount);
        let once: Arc<Mutex<HashMap<String, Arc<OnceCell<()>>>>> = Arc::default();
        tokio::spawn(async move {
            while let Some((path, done)) = requests.recv().await {
                let cell = once
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .entry(path.clone())
                    .or_default()
                    .clone();
                let mount = mount.clone();
                // A mount waits for its adapter (a round trip in a cluster): one task
                // each, so a slow path does not hold up another restaurant's.
                tokio::spawn(async move {
                    let mounted = cell
                        .get_or_try_init(|| async {
                            mount(path.clone()).await.map_err(|e| {
                                tracing::warn!(ns = %path, error = %e, "could not mount namespace for cluster routing");
                            })
                        })
                        .await;
                    if mounted.is_ok() {
                        let _ = done.send(());
                    }
                });
            }
        });
    }
}
