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

use crate::domain::user::UserId;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use axum::extract::ws::Message;
use tokio::sync::{Notify, mpsc, watch};

use super::outbox::{Outbox, Refused};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::{ReasonLabel, TypeLabel, WsMetrics};
use crate::realtime::lifetime::{Connection, Expired};

/// Shards of the channel map: enough that concurrent subscribes rarely meet.
const SHARDS: usize = 32;

/// Why a connection ends, with the close code the server sends for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed (a close frame), or its connection went away without one.
    Client,
    /// A protocol violation (invalid UTF-8, a bad frame), or a write that failed.
    Error,
    /// Nothing arrived for `WS_IDLE_TIMEOUT_SECS`.
    Idle,
    /// Its send queue was full: the client does not read (1013).
    SlowConsumer,
    /// A message over `WS_MAX_MESSAGE_BYTES` (1009).
    TooBig,
    /// The server is shutting down (1001).
    Shutdown,
    /// The token it authenticated with expired (4001).
    TokenExpired,
    /// An operator ended the user's sessions (1008).
    Disconnected,
}

impl CloseReason {
    /// The close frame the server sends, or `None` when the client closed first (its
    /// close is answered by the protocol) or the connection is broken.
    pub fn frame(self) -> Option<(u16, &'static str)> {
        match self {
            CloseReason::Client | CloseReason::Error => None,
            CloseReason::Idle => Some((1000, "idle timeout")),
            CloseReason::SlowConsumer => Some((1013, "slow consumer: send queue full")),
            CloseReason::TooBig => Some((1009, "message too big")),
            CloseReason::Shutdown => Some((1001, "server shutting down")),
            CloseReason::TokenExpired => Some((4001, "token expired")),
            CloseReason::Disconnected => Some((1008, "disconnected by an operator")),
        }
    }

    /// The `reason` label of `switchboard_ws_closes_total`.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Error => "error",
            CloseReason::Idle => "idle",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::TooBig => "too_big",
            CloseReason::Shutdown => "shutdown",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::Disconnected => "disconnected",
        }
    }
}

/// The wire format a connection speaks (contract §7.2, §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Seed 003: `{type, payload, id?, timestamp}` both ways.
    Envelope,
    /// Seed 002: bare JSON objects (chat messages, notification events).
    Bare,
    /// Seed 002's check-in dashboard (`/ws/dashboard/:sessionID`, contract §7.6): bare
    /// check-in objects of one session, nothing else.
    Dashboard,
    /// Seed 000's entity gateway (`/ws/:entity/:section`, contract §7.4):
    /// `{event, entity, section, data, metadata}` messages.
    Gateway,
}

/// One event rendered for each dialect that gets it (each rendering serialized once,
/// its bytes shared by every queue); `None`: that dialect does not get the event.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    /// For envelope connections.
    pub envelope: Option<Message>,
    /// For bare connections.
    pub bare: Option<Message>,
    /// For check-in dashboards.
    pub dashboard: Option<Message>,
    /// For entity gateway connections.
    pub gateway: Option<Message>,
}

impl Frames {
    /// Only envelope connections get it.
    pub fn envelope(message: Message) -> Self {
        Frames {
            envelope: Some(message),
            ..Frames::default()
        }
    }

    /// Only check-in dashboards get it.
    pub fn dashboard(message: Message) -> Self {
        Frames {
            dashboard: Some(message),
            ..Frames::default()
        }
    }

    /// Only entity gateway connections get it.
    pub fn gateway(message: Message) -> Self {
        Frames {
            gateway: Some(message),
            ..Frames::default()
        }
    }

    fn for_dialect(&self, dialect: Dialect) -> Option<&Message> {
        match dialect {
            Dialect::Envelope => self.envelope.as_ref(),
            Dialect::Bare => self.bare.as_ref(),
            Dialect::Dashboard => self.dashboard.as_ref(),
            Dialect::Gateway => self.gateway.as_ref(),
        }
    }

    fn is_empty(&self) -> bool {
        self.envelope.is_none()
            && self.bare.is_none()
            && self.dashboard.is_none()
            && self.gateway.is_none()
    }
}

/// A subscribe that could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyChannels;

#[derive(Default)]
struct Subscriptions {
    channels: HashSet<Arc<str>>,
    /// Set when the connection is removed: nothing joins after that.
    gone: bool,
}

/// One connection as the registry sees it: its queue, its channels, how to close it.
pub struct Peer {
    id: u64,
    dialect: Dialect,
    /// Its bounded queue and why it must close.
    outbox: Outbox,
    /// Who the connection acts as; `None` until it authenticates.
    user: std::sync::RwLock<Option<UserId>>,
    subscriptions: Mutex<Subscriptions>,
    /// `switchboard_ws_closes_total`, counted when the reason is decided (the close
    /// frame may take a while to reach a client that does not read).
    closes: Family<ReasonLabel, Counter>,
    /// `switchboard_ws_dropped_total`: messages that did not fit in the queue, or came
    /// after the connection began closing.
    dropped: Counter,
    /// A client message is being handled: a shutdown wave leaves the connection for a
    /// later wave, so the reply goes out before the close frame.
    busy: AtomicBool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Peer {
    fn subscriptions(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message without waiting. A full queue closes the connection as a slow
    /// consumer; false when the message was not queued.
    pub fn push(&self, message: Message) -> bool {
        match self.outbox.push(message) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.dropped.inc();
                self.close(CloseReason::SlowConsumer);
                false
            }
            Err(Refused::Shut) => {
                self.dropped.inc();
                false
            }
        }
    }

    /// The queue the connection's task drains, and its close signal.
    pub(super) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Marks a client message as being handled until the guard drops.
    pub fn handling(&self) -> Handling<'_> {
        self.busy.store(true, Ordering::SeqCst);
        Handling(self)
    }

    /// The registry's id of this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The dialect it speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn is_authenticated(&self) -> bool {
        self.user
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Asks the connection to close for `reason` (the first reason wins, and is the
    /// one counted).
    pub fn close(&self, reason: CloseReason) {
        if self.outbox.close(reason) {
            self.closes
                .get_or_create(&ReasonLabel {
                    reason: reason.label(),
                })
                .inc();
        }
    }

    /// Why the connection is closing, once it is.
    pub fn closing(&self) -> Option<CloseReason> {
        self.outbox.closing()
    }

    /// Records who the connection acts as (for revoking grants).
    pub fn set_user(&self, user: &UserId) {
        *self.user.write().unwrap_or_else(|p| p.into_inner()) = Some(user.clone());
    }

    fn is_user(&self, user: &UserId) -> bool {
        self.user.read().unwrap_or_else(|p| p.into_inner()).as_ref() == Some(user)
    }
}

/// A client message in hand (see [`Peer::handling`]).
#[derive(Debug)]
pub struct Handling<'a>(&'a Peer);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

/// Token expiry and operator disconnects reach a `/ws` connection through the shared
/// lifetime registry.
impl Connection for Peer {
    fn expire(&self, _: &Expired) -> bool {
        self.close(CloseReason::TokenExpired);
        true
    }

    fn end(&self) -> bool {
        self.close(CloseReason::Disconnected);
        true
    }
}

type Shard = RwLock<HashMap<Arc<str>, HashMap<u64, Arc<Peer>>>>;

struct Inner {
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
    draining: watch::Sender<bool>,
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
            draining: watch::channel(false).0,
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

    fn shard(&self, channel: &str) -> &Shard {
        let hash = self.0.hasher.hash_one(channel);
        // The modulo keeps the index below SHARDS, so the cast cannot truncate.
        &self.0.shards[(hash % SHARDS as u64) as usize]
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<u64, Arc<Peer>>> {
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
        let closed_with = *self.0.closed_with.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = closed_with {
            peer.close(reason);
        }
        peer
    }

    /// Joins `peer` to `channel`; `Ok(false)` when it was already in it.
    pub fn subscribe(&self, peer: &Arc<Peer>, channel: &str) -> Result<bool, TooManyChannels> {
        let mut subscriptions = peer.subscriptions();
        if subscriptions.gone || subscriptions.channels.contains(channel) {
            return Ok(false);
        }
        if subscriptions.channels.len() >= self.0.max_channels {
            return Err(TooManyChannels);
        }
        let name: Arc<str> = Arc::from(channel);
        subscriptions.channels.insert(name.clone());
        self.join_shard(peer, name);
        Ok(true)
    }

    /// Joins `peer` to `channel` whatever it holds already: for channels the server
    /// chooses from a verified token (an entity gateway connection's restaurants), which
    /// the client cannot grow. `false` when it was already in it or is gone.
    pub fn subscribe_server(&self, peer: &Arc<Peer>, channel: &str) -> bool {
        let mut subscriptions = peer.subscriptions();
        if subscriptions.gone || subscriptions.channels.contains(channel) {
            return false;
        }
        let name: Arc<str> = Arc::from(channel);
        subscriptions.channels.insert(name.clone());
        self.join_shard(peer, name);
        true
    }

    /// The shard half of a subscribe (the caller holds the connection's set).
    fn join_shard(&self, peer: &Arc<Peer>, name: Arc<str>) {
        let mut shard = self.shard(&name).write().unwrap_or_else(|p| p.into_inner());
        match shard.entry(name) {
            Entry::Occupied(mut members) => {
                members.get_mut().insert(peer.id, peer.clone());
            }
            Entry::Vacant(slot) => {
                slot.insert(HashMap::from([(peer.id, peer.clone())]));
                self.0.metrics.hub_channels.inc();
            }
        }
        self.0.metrics.hub_entries.inc();
    }

    /// Takes `peer` out of `channel`; false when it was not in it.
    pub fn unsubscribe(&self, peer: &Peer, channel: &str) -> bool {
        let mut subscriptions = peer.subscriptions();
        if !subscriptions.channels.remove(channel) {
            return false;
        }
        self.forget(peer.id, channel);
        true
    }

    /// Takes `peer` out of every channel that is not `public:`; returns their names.
    pub fn leave_private(&self, peer: &Peer) -> Vec<Arc<str>> {
        let mut subscriptions = peer.subscriptions();
        let private: Vec<Arc<str>> = subscriptions
            .channels
            .iter()
            .filter(|c| !c.starts_with("public:"))
            .cloned()
            .collect();
        for channel in &private {
            subscriptions.channels.remove(channel);
            self.forget(peer.id, channel);
        }
        private
    }

    /// The shard half of an unsubscribe (the caller holds the connection's set).
    fn forget(&self, id: u64, channel: &str) {
        let mut shard = self
            .shard(channel)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(members) = shard.get_mut(channel)
            && members.remove(&id).is_some()
        {
            self.0.metrics.hub_entries.dec();
            if members.is_empty() {
                shard.remove(channel);
                self.0.metrics.hub_channels.dec();
            }
        }
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

    /// Queues `message` to every connection in `channel`, counted under `kind`;
    /// returns how many took it.
    pub fn deliver(&self, channel: &str, message: &Message, kind: &'static str) -> usize {
        self.deliver_frames(channel, &Frames::envelope(message.clone()), kind, None)
    }

    /// Queues to every connection in `channel` the rendering of its dialect (none when
    /// `frames` has none for it), except the connection `except`; counted under
    /// `kind`. Returns how many took it.
    pub fn deliver_frames(
        &self,
        channel: &str,
        frames: &Frames,
        kind: &'static str,
        except: Option<u64>,
    ) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let delivered = {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let Some(members) = shard.get(channel) else {
                return 0;
            };
            members
                .values()
                .filter(|peer| Some(peer.id) != except)
                .filter_map(|peer| Some((peer, frames.for_dialect(peer.dialect)?)))
                .filter(|(peer, message)| peer.push((*message).clone()))
                .count()
        };
        self.count_out(kind, delivered);
        delivered
    }

    /// Queues `frames` to every connection in any of `channels`, once per connection
    /// however many of them it is in (a grant on another user's `user:` channel puts a
    /// connection in two members' channels), except the connection `except`; counted
    /// under `kind`. Returns how many took it.
    pub fn deliver_frames_to(
        &self,
        channels: &[String],
        frames: &Frames,
        kind: &'static str,
        except: Option<u64>,
    ) -> usize {
        if let [channel] = channels {
            return self.deliver_frames(channel, frames, kind, except);
        }
        if frames.is_empty() {
            return 0;
        }
        let mut seen = HashSet::new();
        let mut delivered = 0;
        for channel in channels {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let Some(members) = shard.get(channel.as_str()) else {
                continue;
            };
            for peer in members.values() {
                if Some(peer.id) == except || !seen.insert(peer.id) {
                    continue;
                }
                if let Some(message) = frames.for_dialect(peer.dialect)
                    && peer.push(message.clone())
                {
                    delivered += 1;
                }
            }
        }
        self.count_out(kind, delivered);
        delivered
    }

    /// Queues to every authenticated connection (a broadcast notification).
    pub fn deliver_authenticated(&self, frames: &Frames, kind: &'static str) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let peers: Vec<Arc<Peer>> = self
            .peers()
            .values()
            .filter(|peer| peer.is_authenticated())
            .cloned()
            .collect();
        let delivered = peers
            .iter()
            .filter_map(|peer| Some((peer, frames.for_dialect(peer.dialect)?)))
            .filter(|(peer, message)| peer.push((*message).clone()))
            .count();
        self.count_out(kind, delivered);
        delivered
    }

    /// Counts `n` messages of `kind` queued.
    pub fn count_out(&self, kind: &'static str, n: usize) {
        if n > 0 {
            self.0
                .metrics
                .messages_out
                .get_or_create(&TypeLabel { r#type: kind })
                .inc_by(n as u64);
        }
    }

    /// The connections of `user` in `channel`, taken out of it (a revoked grant).
    pub fn revoke(&self, channel: &str, user: &UserId) -> Vec<Arc<Peer>> {
        let members: Vec<Arc<Peer>> = {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            shard
                .get(channel)
                .into_iter()
                .flat_map(|members| members.values())
                .filter(|peer| peer.is_user(user))
                .cloned()
                .collect()
        };
        members
            .into_iter()
            .filter(|peer| self.unsubscribe(peer, channel))
            .collect()
    }

    /// Tells every connection, present and future, to stop taking client messages
    /// (shutdown's first step: what is in hand is finished and answered, nothing new
    /// starts while the server waits for it).
    pub fn stop_reading(&self) {
        self.0.draining.send_replace(true);
    }

    /// Becomes true when connections must stop taking client messages.
    pub fn draining(&self) -> watch::Receiver<bool> {
        self.0.draining.subscribe()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    /// The oldest message queued to `peer`.
    fn next(peer: &Peer) -> Option<Message> {
        peer.outbox().try_pop()
    }

    #[tokio::test]
    async fn delivery_reaches_members_once_and_removal_leaves_nothing() {
        let metrics = WsMetrics::default();
        let hub = Hub::new(2, metrics.clone(), None);
        let a = hub.register(4, Dialect::Envelope);
        let b = hub.register(4, Dialect::Envelope);
        assert_eq!(hub.subscribe(&a, "public:x"), Ok(true));
        assert_eq!(hub.subscribe(&a, "public:x"), Ok(false));
        assert_eq!(hub.subscribe(&b, "public:x"), Ok(true));
        assert_eq!(hub.subscribe(&a, "order:1"), Ok(true));
        assert_eq!(hub.subscribe(&a, "order:2"), Err(TooManyChannels));
        assert_eq!(
            (metrics.hub_entries.get(), metrics.hub_channels.get()),
            (3, 2)
        );
        assert_eq!(hub.deliver("public:x", &text("m"), "published"), 2);
        assert_eq!(next(&a), Some(text("m")));
        assert_eq!(next(&b), Some(text("m")));
        assert!(next(&a).is_none());
        hub.remove(&a);
        hub.remove(&b);
        assert_eq!(hub.subscribe(&a, "public:y"), Ok(false));
        assert_eq!(
            (metrics.hub_entries.get(), metrics.hub_channels.get()),
            (0, 0)
        );
        assert_eq!(hub.connections(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_connection() {
        let hub = Hub::new(10, WsMetrics::default(), None);
        let slow = hub.register(1, Dialect::Envelope);
        let ok = hub.register(8, Dialect::Envelope);
        hub.subscribe(&slow, "public:x").unwrap();
        hub.subscribe(&ok, "public:x").unwrap();
        hub.deliver("public:x", &text("1"), "published");
        hub.deliver("public:x", &text("2"), "published");
        assert_eq!(slow.closing(), Some(CloseReason::SlowConsumer));
        assert_eq!(ok.closing(), None);
        assert_eq!(next(&ok), Some(text("1")));
        assert_eq!(next(&ok), Some(text("2")));
    }

    #[tokio::test]
    async fn closing_all_reaches_present_and_late_connections() {
        let hub = Hub::new(10, WsMetrics::default(), None);
        let early = hub.register(4, Dialect::Envelope);
        hub.close_all(CloseReason::Shutdown);
        let late = hub.register(4, Dialect::Envelope);
        assert_eq!(early.closing(), Some(CloseReason::Shutdown));
        assert_eq!(late.closing(), Some(CloseReason::Shutdown));
        hub.remove(&early);
        assert_eq!(hub.wait_closed(Duration::from_millis(10)).await, 1);
        hub.remove(&late);
        assert_eq!(hub.wait_closed(Duration::from_secs(1)).await, 0);
    }

    #[tokio::test]
    async fn each_dialect_gets_only_its_own_rendering() {
        let hub = Hub::new(10, WsMetrics::default(), None);
        let env = hub.register(4, Dialect::Envelope);
        let bare = hub.register(4, Dialect::Bare);
        let dash = hub.register(4, Dialect::Dashboard);
        env.set_user(&UserId::from(1));
        bare.set_user(&UserId::from(1));
        for peer in [&env, &bare, &dash] {
            hub.subscribe(peer, "c:1").unwrap();
        }
        let domain = Frames {
            envelope: Some(text("e")),
            bare: Some(text("b")),
            ..Frames::default()
        };
        assert_eq!(hub.deliver_frames("c:1", &domain, "x", None), 2);
        assert_eq!(hub.deliver_authenticated(&domain, "x"), 2);
        assert!(next(&dash).is_none(), "no domain event reaches a dashboard");
        assert_eq!(
            hub.deliver_frames("c:1", &Frames::dashboard(text("d")), "checkin", None),
            1
        );
        assert_eq!(next(&dash), Some(text("d")));
        for (peer, own) in [(&env, "e"), (&bare, "b")] {
            assert_eq!(next(peer), Some(text(own)));
            assert_eq!(next(peer), Some(text(own)));
            assert!(next(peer).is_none());
        }
    }

    #[tokio::test]
    async fn revoking_takes_out_only_that_users_connections() {
        let hub = Hub::new(10, WsMetrics::default(), None);
        let a = hub.register(4, Dialect::Envelope);
        let b = hub.register(4, Dialect::Envelope);
        a.set_user(&UserId::from(1));
        b.set_user(&UserId::from(2));
        hub.subscribe(&a, "order:9").unwrap();
        hub.subscribe(&b, "order:9").unwrap();
        let revoked = hub.revoke("order:9", &UserId::from(1));
        assert_eq!(revoked.len(), 1);
        assert_eq!(hub.deliver("order:9", &text("m"), "published"), 1);
        assert!(hub.revoke("order:9", &UserId::from(1)).is_empty());
    }
}
