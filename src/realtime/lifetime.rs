//! How long a connection's identity lasts: every token-authenticated connection of this
//! node, the moment its token stops being accepted, and who it belongs to.
//!
//! One task and one ordered set serve every connection, not a timer per socket: at the
//! earliest deadline the task tells the connection (`session:expired`) and closes it.
//! The same registry finds a user's connections when an operator ends them
//! (`POST /api/users/:userId/disconnect`). It knows only this node's connections: in a
//! cluster every node ends its own (the request reaches them through
//! [`super::session_bus`]).
//!
//! What a connection is stays outside: socket.io sockets register through
//! [`SocketConnection`]; a plain WebSocket route registers its own [`Connection`].
//! A connection registers when it is established and is removed when it closes, so a
//! connection that closes before its token expires leaves nothing behind.

use crate::domain::user::UserId;
use crate::realtime::broadcast::Readable;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::events::session as ev;

/// A connection whose identity came from a token.
pub trait Connection: Send + Sync + 'static {
    /// The token is no longer accepted: tell the client why (`session:expired`) and
    /// close. False when the connection is too busy to take it now (tried again soon).
    fn expire(&self, notice: &Expired) -> bool;
    /// An operator ended the user's sessions: close. False when it could not be done.
    fn end(&self) -> bool;
}

/// The `session:expired` payload.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expired {
    /// Always `"token expired"`.
    pub reason: &'static str,
    /// The token's `exp`.
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub expired_at: DateTime<Utc>,
}

/// A registered connection; remove it when the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LifetimeKey(u64);

/// How soon a connection too busy to be told is tried again.
const RETRY: Duration = Duration::from_secs(1);

struct Entry {
    deadline: Instant,
    user_id: UserId,
    notice: Expired,
    connection: Arc<dyn Connection>,
}

#[derive(Default)]
struct Table {
    next_key: u64,
    /// Deadlines in order; the key makes equal deadlines distinct.
    deadlines: BTreeSet<(Instant, u64)>,
    entries: HashMap<u64, Entry>,
    by_user: HashMap<UserId, HashSet<u64>>,
}

impl Table {
    fn insert(&mut self, key: u64, entry: Entry) {
        self.deadlines.insert((entry.deadline, key));
        self.by_user
            .entry(entry.user_id.clone())
            .or_default()
            .insert(key);
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: u64) -> Option<Entry> {
        let entry = self.entries.remove(&key)?;
        self.deadlines.remove(&(entry.deadline, key));
        if let Some(keys) = self.by_user.get_mut(&entry.user_id) {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_user.remove(&entry.user_id);
            }
        }
        Some(entry)
    }
}

struct Shared {
    table: Mutex<Table>,
    /// Wakes the task when a deadline earlier than the one it sleeps to arrives.
    wake: Arc<Notify>,
    /// Registered connections (`switchboard_session_lifetimes`).
    gauge: Gauge,
    /// `JWT_LEEWAY_SECS`: a token is accepted until `exp` plus this.
    leeway_secs: i64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Lets the task see that the registry is gone and end.
        self.wake.notify_one();
    }
}

/// The registry of this node's connections and their deadlines. Cheap to clone.
#[derive(Clone)]
pub struct Lifetimes(Arc<Shared>);

impl std::fmt::Debug for Lifetimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifetimes")
            .field("registered", &self.len())
            .finish()
    }
}

impl Lifetimes {
    /// An empty registry; `gauge` follows its size. Call [`Lifetimes::start`] once.
    pub fn new(leeway_secs: u64, gauge: Gauge) -> Self {
        Lifetimes(Arc::new(Shared {
            table: Mutex::default(),
            wake: Arc::new(Notify::new()),
            gauge,
            leeway_secs: i64::try_from(leeway_secs).unwrap_or(i64::MAX),
        }))
    }

    /// Starts the one task that expires connections; it ends when the registry is dropped.
    pub fn start(&self) {
        tokio::spawn(run(Arc::downgrade(&self.0), self.0.wake.clone()));
    }

    /// Registers a connection of `user_id` whose token has `exp` = `expires_at` (Unix
    /// seconds). It expires when the verifier would refuse the token: `exp` plus the
    /// leeway (at once if that has passed).
    pub fn register(
        &self,
        user_id: UserId,
        expires_at: i64,
        connection: Arc<dyn Connection>,
    ) -> LifetimeKey {
        let now = Utc::now();
        let cutoff_ms = expires_at
            .saturating_add(self.0.leeway_secs)
            .saturating_mul(1000);
        let left = u64::try_from(cutoff_ms.saturating_sub(now.timestamp_millis())).unwrap_or(0);
        // Far-future tokens: `Instant` cannot hold centuries; a year is as good as never.
        let left = Duration::from_millis(left).min(Duration::from_secs(365 * 24 * 3600));
        let entry = Entry {
            deadline: Instant::now() + left,
            user_id,
            notice: Expired {
                reason: "token expired",
                expired_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(now),
            },
            connection,
        };
        let deadline = entry.deadline;
        let (key, earliest) = {
            let mut table = self.0.lock();
            let key = table.next_key;
            table.next_key += 1;
            let earliest = table
                .deadlines
                .first()
                .is_none_or(|(first, _)| deadline < *first);
            table.insert(key, entry);
            self.0.gauge.set(gauge_value(table.entries.len()));
            (key, earliest)
        };
        if earliest {
            self.0.wake.notify_one();
        }
        LifetimeKey(key)
    }

    /// Forgets a connection (it closed). Removing twice is harmless.
    pub fn remove(&self, key: LifetimeKey) {
        let mut table = self.0.lock();
        let _ = table.remove(key.0);
        self.0.gauge.set(gauge_value(table.entries.len()));
    }

    /// This node's connections of `user_id`.
    pub fn connections_of(&self, user_id: &UserId) -> Vec<Arc<dyn Connection>> {
        let table = self.0.lock();
        table
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|key| table.entries.get(key))
            .map(|entry| entry.connection.clone())
            .collect()
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.0.lock().entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn gauge_value(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// The expiry task: sleeps until the earliest deadline (or a new earlier one), then
/// expires every connection that is due.
async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        let Some(registry) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<(u64, Entry)> = {
            let mut table = registry.lock();
            let keys: Vec<u64> = table
                .deadlines
                .iter()
                .take_while(|(deadline, _)| *deadline <= now)
                .map(|(_, key)| *key)
                .collect();
            let due = keys
                .into_iter()
                .filter_map(|key| table.remove(key).map(|entry| (key, entry)))
                .collect();
            registry.gauge.set(gauge_value(table.entries.len()));
            due
        };
        // Outside the lock: a connection's close runs its own cleanup, which removes
        // from this registry.
        for (key, mut entry) in due {
            if !entry.connection.expire(&entry.notice) {
                entry.deadline = now + RETRY;
                let mut table = registry.lock();
                table.insert(key, entry);
                registry.gauge.set(gauge_value(table.entries.len()));
            }
        }
        let next = registry
            .lock()
            .deadlines
            .first()
            .map(|(deadline, _)| *deadline);
        drop(registry);
        // `notify_one` keeps a permit when nobody waits, so a register between the read
        // above and this wait is not missed.
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// A socket.io socket, found by namespace and id when it is due (the registry holds no
/// reference to the socket itself).
pub struct SocketConnection<A: Adapter> {
    io: SocketIo<A>,
    ns: String,
    sid: Sid,
    /// `session:expired` was queued; a retry (DISCONNECT did not fit) does not repeat it.
    told: AtomicBool,
}

impl<A: Adapter> SocketConnection<A> {
    /// The handle of `socket`.
    pub fn new(io: SocketIo<A>, socket: &SocketRef<A>) -> Self {
        SocketConnection {
            io,
            ns: socket.ns().to_owned(),
            sid: socket.id,
            told: AtomicBool::new(false),
        }
    }

    fn socket(&self) -> Option<SocketRef<A>> {
        self.io.of(&self.ns)?.get_socket(self.sid)
    }
}

/// Sends socket.io DISCONNECT for the namespace (the client does not reconnect by
/// itself, as after `socket.disconnect()` in Node); false when its queue is full.
fn disconnect<A: Adapter>(socket: SocketRef<A>) -> bool {
    !matches!(socket.disconnect(), Err(SocketError::InternalChannelFull))
}

impl<A: Adapter> Connection for SocketConnection<A> {
    fn expire(&self, notice: &Expired) -> bool {
        let Some(socket) = self.socket() else {
            return true;
        };
        if !self.told.load(Ordering::Relaxed) {
            if let Err(SendError::Socket(SocketError::InternalChannelFull)) =
                socket.emit(ev::SESSION_EXPIRED, &Readable(notice))
            {
                return false;
            }
            self.told.store(true, Ordering::Relaxed);
        }
        disconnect(socket)
    }

    fn end(&self) -> bool {
        self.socket().is_none_or(disconnect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Probe {
        expired: AtomicUsize,
        notify: Notify,
    }

    impl Connection for Probe {
        fn expire(&self, _: &Expired) -> bool {
            self.expired.fetch_add(1, Ordering::SeqCst);
            self.notify.notify_one();
            true
        }
        fn end(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn due_connections_expire_in_order_and_removed_ones_never() {
        let lifetimes = Lifetimes::new(0, Gauge::default());
        lifetimes.start();
        let now = Utc::now().timestamp();
        let later = Arc::new(Probe::default());
        let removed = Arc::new(Probe::default());
        let soon = Arc::new(Probe::default());
        lifetimes.register(UserId::from(1), now + 3600, later.clone());
        let key = lifetimes.register(UserId::from(2), now + 1, removed.clone());
        lifetimes.register(UserId::from(3), now + 1, soon.clone());
        assert_eq!(lifetimes.len(), 3);
        assert_eq!(lifetimes.connections_of(&UserId::from(3)).len(), 1);
        lifetimes.remove(key);
        tokio::time::timeout(Duration::from_secs(5), soon.notify.notified())
            .await
            .unwrap();
        assert_eq!(soon.expired.load(Ordering::SeqCst), 1);
        assert_eq!(removed.expired.load(Ordering::SeqCst), 0);
        assert_eq!(later.expired.load(Ordering::SeqCst), 0);
        assert_eq!(lifetimes.len(), 1);
        assert!(lifetimes.connections_of(&UserId::from(3)).is_empty());
    }
}
