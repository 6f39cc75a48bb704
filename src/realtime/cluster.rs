//! What differs between a single node and a cluster: waiting for remote adapters to be
//! subscribed, mounting `/restaurants/<id>` on demand so events caused on this node
//! reach sockets of that namespace on other nodes, and the barrier that makes a forced
//! room leave take effect on every node before the reply.

use std::future::Future;
use std::pin::Pin;

use socketioxide::adapter::Adapter;

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

/// Mounts `/restaurants/<id>` on this node (set by `lib.rs`, where the adapter is known).
pub type Mounter = Box<dyn Fn(String) -> BoxFuture<()> + Send + Sync>;

/// After a forced leave through the adapter: a request that every node answers. Nodes
/// handle requests in order, so once all have answered, each has applied the leave.
pub async fn barrier<A: Adapter>(io: &socketioxide::SocketIo<A>, ns: &str) {
    if let Some(op) = io.of(ns)
        && let Err(e) = op.rooms().await
    {
        tracing::warn!(ns, error = %e, "cluster barrier incomplete");
    }
}
