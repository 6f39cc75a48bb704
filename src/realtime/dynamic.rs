//! `/restaurants/<id>` namespaces: which paths are in use on this node, when a path's
//! namespace is deleted, and which restaurants' events each path must carry.
//!
//! socketioxide mounts a dynamic namespace as soon as a CONNECT names a matching path,
//! before any middleware runs (and in a cluster runs its adapter's init: LISTEN or
//! SUBSCRIBE channels and tasks). So every socket that reaches the middleware of such a
//! namespace first takes a [`Hold`] on its path. A refused socket drops its hold at
//! once; an admitted one keeps it in its extensions until the socket itself is dropped.
//! When a path's last hold goes, its namespace is deleted (which closes its adapter),
//! unless this node mounted it for cluster routing ([`DynamicNamespaces::pin`]). A
//! stranger's CONNECTs therefore leave nothing behind, whatever the reason of refusal.
//!
//! The deletion waits [`DELETE_GRACE`] first. socketioxide looks a CONNECT's namespace up
//! on one task and runs its middleware on another; a namespace deleted in between is
//! [`Stale`] to that socket, which then has to reconnect. Without the wait that happens
//! whenever a tablet reloads (its old socket's hold goes as its new CONNECT arrives) or
//! two clients connect to a quiet path at once and one is refused. At most
//! [`MAX_PENDING_DELETIONS`] paths wait; past that (a flood of refused CONNECTs to
//! fresh paths) deletion is immediate, so what a stranger leaves stays bounded.
//!
//! The same holds record the restaurants a socket follows (its own, and any it joined),
//! which is how events of restaurant B find a socket on `/restaurants/A` that joined B.
//! What is sent where is `orders.rs`'s business.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use uuid::Uuid;

/// Prefix of the per-restaurant namespaces.
const PREFIX: &str = "/restaurants/";

/// How long a path's namespace outlives its last hold (see the module docs).
pub const DELETE_GRACE: Duration = Duration::from_secs(1);

/// Paths whose deletion may wait out [`DELETE_GRACE`] at once; others go at once.
pub const MAX_PENDING_DELETIONS: usize = 1024;

/// The namespace path of a restaurant: the one spelling that is admitted.
pub fn restaurant_path(restaurant_id: Uuid) -> String {
    format!("{PREFIX}{restaurant_id}")
}

/// The restaurant a namespace path names, if the path is `/restaurants/` followed by a
/// UUID in its canonical spelling (lowercase, hyphenated). Any other spelling of the
/// same UUID (uppercase, braced, `urn:uuid:`, no hyphens) is refused rather than mapped:
/// a socket lives on the namespace it asked for, and a second spelling would be a second
/// namespace that events would also have to be sent to.
pub fn restaurant_of_path(path: &str) -> Option<Uuid> {
    let raw = path.strip_prefix(PREFIX)?;
    let id = Uuid::try_parse(raw).ok()?;
    (id.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == raw).then_some(id)
}

/// A socket reached the middleware of a namespace that is no longer this node's
/// namespace for its path (it was deleted between the socket's CONNECT and now). The
/// socket must come back on a fresh connection.
#[derive(Debug, Clone, Copy)]
pub struct Stale;

/// The node's table of dynamic restaurant namespaces.
pub struct DynamicNamespaces<A: Adapter> {
    io: SocketIo<A>,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Live holds per path: sockets being admitted or admitted and not yet dropped.
    holds: HashMap<String, usize>,
    /// Paths this node mounted to route its own events in a cluster; never deleted.
    pinned: HashSet<String>,
    /// Restaurant → path → sockets on that path that follow the restaurant.
    carried: HashMap<Uuid, HashMap<String, usize>>,
    /// Paths without holds whose deletion waits, with when their last hold went.
    pending: HashMap<String, Instant>,
}

impl<A: Adapter> std::fmt::Debug for DynamicNamespaces<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicNamespaces")
            .field("table", &*self.table())
            .finish()
    }
}

impl<A: Adapter> DynamicNamespaces<A> {
    /// An empty table for the namespaces of `io`.
    pub fn new(io: SocketIo<A>) -> Arc<Self> {
        Arc::new(DynamicNamespaces {
            io,
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a hold on the socket's namespace path, first thing in its connect middleware.
    ///
    /// The namespace the socket was handed must still be the node's namespace for that
    /// path: socketioxide looked it up when the CONNECT arrived, and another socket's
    /// refusal may have deleted it since. Such a socket would be admitted into a
    /// namespace nothing routes to, so it is [`Stale`]. The check and the count happen
    /// under the lock that deletion takes too, so a path is never deleted between them.
    pub fn hold(self: &Arc<Self>, socket: &SocketRef<A>) -> Result<Arc<Hold<A>>, Stale> {
        let path = socket.ns();
        let mut table = self.table();
        // socketioxide allocates a namespace's path once, when it builds the namespace;
        // the socket's path and the registered namespace's path are the same bytes only
        // if they are the same namespace (both are alive here, so addresses are not reused).
        let current = self
            .io
            .of(path)
            .is_some_and(|op| std::ptr::eq(op.ns_path().as_ptr(), path.as_ptr()));
        if !current {
            return Err(Stale);
        }
        *table.holds.entry(path.to_owned()).or_default() += 1;
        Ok(Arc::new(Hold {
            owner: self.clone(),
            path: path.to_owned(),
            carries: Mutex::new(Vec::new()),
        }))
    }

    /// Keeps `path` mounted for good: this node sends its restaurant's events there.
    pub fn pin(&self, path: &str) {
        let mut table = self.table();
        // Called on every event in a cluster: no allocation once pinned.
        if !table.pinned.contains(path) {
            table.pinned.insert(path.to_owned());
        }
    }

    /// Dynamic paths on this node that carry `restaurant_id`'s events.
    pub fn paths_of(&self, restaurant_id: Uuid) -> Vec<String> {
        self.table()
            .carried
            .get(&restaurant_id)
            .map(|paths| paths.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Entries kept: held paths, pinned paths, paths waiting for deletion and
    /// (restaurant, path) routes. For
    /// `/metrics` and tests: each must fall back once sockets are gone.
    pub fn tracked(&self) -> usize {
        let table = self.table();
        table.holds.len()
            + table.pinned.len()
            + table.pending.len()
            + table.carried.values().map(HashMap::len).sum::<usize>()
    }

    fn release(self: &Arc<Self>, path: &str, carries: &[Uuid]) {
        let mut table = self.table();
        for restaurant in carries {
            if let Some(paths) = table.carried.get_mut(restaurant) {
                if let Some(count) = paths.get_mut(path) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        paths.remove(path);
                    }
                }
                if paths.is_empty() {
                    table.carried.remove(restaurant);
                }
            }
        }
        let last = match table.holds.get_mut(path) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                table.holds.remove(path);
                true
            }
            None => false,
        };
        if !last {
            return;
        }
        // A hold may be dropped inside socketioxide while it holds the namespace's socket
        // map (a disconnected socket's last reference); deleting the namespace reads that
        // map, so the deletion runs on its own task.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let owner = self.clone();
        let path = path.to_owned();
        let now = Instant::now();
        if let Some(released) = table.pending.get_mut(&path) {
            // Its task is already waiting; it waits on from this release.
            *released = now;
            return;
        }
        if table.pending.len() >= MAX_PENDING_DELETIONS {
            drop(table);
            runtime.spawn(async move { owner.delete_if_unused(&path) });
            return;
        }
        table.pending.insert(path.clone(), now);
        drop(table);
        runtime.spawn(async move {
            let mut until = now + DELETE_GRACE;
            loop {
                tokio::time::sleep_until(until).await;
                let mut table = owner.table();
                match table.pending.get(&path) {
                    Some(released) if *released + DELETE_GRACE > until => {
                        until = *released + DELETE_GRACE;
                    }
                    _ => {
                        table.pending.remove(&path);
                        break;
                    }
                }
            }
            owner.delete_if_unused(&path);
        });
    }

    /// Deletes the namespace of `path` if nothing holds it: no socket being admitted,
    /// no socket connected, not pinned. Runs under the table's lock, so no hold can be
    /// taken on the namespace while it goes.
    fn delete_if_unused(&self, path: &str) {
        let table = self.table();
        if table.holds.contains_key(path) || table.pinned.contains(path) {
            return;
        }
        let Some(op) = self.io.of(path) else {
            return;
        };
        if !op.sockets().is_empty() {
            tracing::warn!(ns = path, "namespace without holds still has sockets; kept");
            return;
        }
        self.io.delete_ns(path);
        tracing::debug!(ns = path, "unused dynamic namespace deleted");
    }
}

/// One socket's use of a dynamic namespace path (see the module docs). Dropping the last
/// hold of a path deletes its namespace.
pub struct Hold<A: Adapter> {
    owner: Arc<DynamicNamespaces<A>>,
    path: String,
    /// Restaurants whose events this socket's path carries because of this socket.
    carries: Mutex<Vec<Uuid>>,
}

impl<A: Adapter> std::fmt::Debug for Hold<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold").field("path", &self.path).finish()
    }
}

impl<A: Adapter> Hold<A> {
    /// Makes the path carry `restaurant_id`'s events for as long as this socket lives
    /// (its own restaurant at admission, or one it joined later).
    pub fn carry(&self, restaurant_id: Uuid) {
        let mut carries = self.carries.lock().unwrap_or_else(|p| p.into_inner());
        if carries.contains(&restaurant_id) {
            return;
        }
        carries.push(restaurant_id);
        let mut table = self.owner.table();
        *table
            .carried
            .entry(restaurant_id)
            .or_default()
            .entry(self.path.clone())
            .or_default() += 1;
    }
}

impl<A: Adapter> Drop for Hold<A> {
    fn drop(&mut self) {
        let carries = std::mem::take(&mut *self.carries.lock().unwrap_or_else(|p| p.into_inner()));
        self.owner.release(&self.path, &carries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_spelling_names_a_restaurant() {
        let id = Uuid::new_v4();
        assert_eq!(restaurant_of_path(&restaurant_path(id)), Some(id));
        let upper = format!("/restaurants/{}", id.to_string().to_uppercase());
        let braced = format!("/restaurants/{{{id}}}");
        let urn = format!("/restaurants/{}", id.urn());
        let simple = format!("/restaurants/{}", id.simple());
        for path in [upper, braced, urn, simple] {
            assert_eq!(restaurant_of_path(&path), None, "{path}");
        }
        assert_eq!(restaurant_of_path("/restaurants/not-a-uuid"), None);
        assert_eq!(restaurant_of_path(&format!("/restaurant/{id}")), None);
    }
}
