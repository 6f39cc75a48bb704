//! The cluster bus: every node-to-node message that is not a socket.io packet (order
//! events for batch sockets and followers, end-session requests, plain WebSocket
//! publishes), on the link the socket.io adapter already holds.
//!
//! The adapter only carries packets for sockets; what a node keeps in its own memory
//! (batch queues, its connection registry, plain WebSocket channels) needs messages of
//! its own. They ride the adapter's transport so a node opens no second one: Redis
//! PUBLISH/SUBSCRIBE on the adapter's connection ([`RedisLink`]), or NOTIFY/LISTEN on the
//! node's LISTEN connection ([`PgLink`]). With `ADAPTER=local` there is no bus.
//!
//! Each [`Topic`] has its own channel and one reader, fed through a bounded queue: a
//! reader that stops reading loses its topic's messages (counted) and never holds up
//! another topic. Messages of one sender on one topic arrive in the order they were
//! sent; a node does not receive its own. What a message means is left to its topic's
//! module (`order_bus`, `session_bus`, the `/ws` route).
//!
//! One file past 400 lines on purpose: the two transports (Redis, NOTIFY) implement one
//! contract (order, no echo, bounded queues) and are read side by side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::{BoxStream, FuturesOrdered};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide_redis::drivers::Driver as _;
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::cluster::BoxFuture;
use super::pg_link::PgLink;
use super::redis_link::RedisLink;
use crate::metrics::{BusLabels, ClusterBusMetrics, TopicLabel};
use crate::store::cluster_payloads;

/// Messages queued for one topic's reader; past it they are dropped and counted.
pub const READER_QUEUE: usize = 1024;

/// Largest envelope sent inline over NOTIFY (PostgreSQL refuses payloads of 8000
/// bytes); a bigger one goes through `cluster_bus_payloads` and NOTIFY carries its id.
const INLINE_LIMIT: usize = 7900;

/// Most stored payloads being loaded at once per topic; past it the topic stops taking
/// notifications until one is loaded (its link queue then fills and the link drops and
/// counts, instead of this task holding an unbounded backlog).
const MAX_LOADING: usize = 64;

/// What a message is about; each topic has its own channel, queue and reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Order events for batch sockets and followers on other nodes (`order_bus`).
    Orders,
    /// End a user's connections on every node (`session_bus`).
    Sessions,
    /// Plain WebSocket `{ channel, payload }` publishes, for every node's subscribers.
    Publish,
    /// Admin UI watchers, so that every node reports to them (`admin::watch`).
    Admin,
}

impl Topic {
    /// Every topic, in index order.
    pub const ALL: [Topic; 4] = [Topic::Orders, Topic::Sessions, Topic::Publish, Topic::Admin];

    /// The topic's name in channel names, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Orders => "orders",
            Topic::Sessions => "sessions",
            Topic::Publish => "publish",
            Topic::Admin => "admin",
        }
    }

    fn index(self) -> usize {
        match self {
            Topic::Orders => 0,
            Topic::Sessions => 1,
            Topic::Publish => 2,
            Topic::Admin => 3,
        }
    }
}

/// The link the bus rides: the socket.io adapter's own.
#[derive(Debug)]
pub enum BusTransport {
    /// `ADAPTER=redis`: PUBLISH/SUBSCRIBE on the adapter's connection.
    Redis(RedisLink),
    /// `ADAPTER=postgres`: LISTEN on the node's LISTEN connection, NOTIFY (and large
    /// payloads) through the pool.
    Postgres(PgLink, PgPool),
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The message did not serialize.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// NOTIFY, LISTEN or the payload table failed.
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    /// PUBLISH or SUBSCRIBE failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// What a node publishes: its id (so it can skip its own) and the message.
#[derive(Serialize)]
struct Outgoing<'a, T: ?Sized> {
    node: Uuid,
    message: &'a T,
}

/// A NOTIFY for an envelope stored in `cluster_bus_payloads`.
#[derive(Serialize)]
struct Pointer {
    node: Uuid,
    stored: i64,
}

/// What arrives: an [`Outgoing`] or a [`Pointer`].
#[derive(Deserialize)]
struct Incoming {
    node: Uuid,
    #[serde(flatten)]
    body: Body,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Body {
    Message(Value),
    Stored(i64),
}

/// The node's end of the cluster bus (one per node, held by the app state).
#[derive(Debug)]
pub struct ClusterBus {
    node: Uuid,
    transport: BusTransport,
    channels: [String; Topic::ALL.len()],
    topics: [Arc<TopicState>; Topic::ALL.len()],
}

/// One topic's reader and counters, shared by the bus and the topic's receiving task.
#[derive(Debug)]
struct TopicState {
    topic: Topic,
    reader: Mutex<Option<mpsc::Sender<Value>>>,
    /// The reader's queue was full at the last message (logged once per stall).
    stalled: AtomicBool,
    sent: Counter,
    received: Counter,
    dropped: Counter,
    failures: Counter,
}

impl TopicState {
    fn new(topic: Topic, metrics: &ClusterBusMetrics) -> Self {
        let name = topic.name();
        let direction = |direction| BusLabels {
            topic: name,
            direction,
        };
        let label = TopicLabel { topic: name };
        // `get_or_create` returns a read guard on the family: two of them alive in one
        // expression deadlock when the second has to create its counter (a write). The
        // owned form drops its guard before returning.
        TopicState {
            topic,
            reader: Mutex::new(None),
            stalled: AtomicBool::new(false),
            sent: metrics.messages.get_or_create_owned(&direction("out")),
            received: metrics.messages.get_or_create_owned(&direction("in")),
            dropped: metrics.dropped.get_or_create_owned(&label),
            failures: metrics.publish_failures.get_or_create_owned(&label),
        }
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Value>>> {
        self.reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a message from another node to the reader without waiting: the receiving
    /// loop must keep taking messages from the link whatever the reader does.
    fn deliver(&self, message: Value) {
        self.received.inc();
        let Some(reader) = self.reader().clone() else {
            tracing::debug!(
                topic = self.topic.name(),
                "cluster bus message with no reader"
            );
            return;
        };
        match reader.try_send(message) {
            Ok(()) => {
                if self.stalled.swap(false, Ordering::Relaxed) {
                    tracing::info!(topic = self.topic.name(), "cluster bus reader caught up");
                }
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.inc();
                if !self.stalled.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        topic = self.topic.name(),
                        "cluster bus reader stalled: its messages are dropped until it reads again"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::debug!(topic = self.topic.name(), "cluster bus reader gone");
            }
        }
    }
}

impl ClusterBus {
    /// Subscribes every topic's channel (named after the adapter's `prefix`, so nodes
    /// with one prefix form one cluster) on `transport` and starts receiving.
    pub async fn start(
        transport: BusTransport,
        prefix: &str,
        metrics: &ClusterBusMetrics,
    ) -> Result<Self, BusError> {
        let node = Uuid::new_v4();
        let channels = Topic::ALL.map(|topic| channel_name(&transport, prefix, topic));
        let topics = Topic::ALL.map(|topic| Arc::new(TopicState::new(topic, metrics)));
        for topic in Topic::ALL {
            let channel = &channels[topic.index()];
            let (raw, pool): (BoxStream<'static, Vec<u8>>, _) = match &transport {
                BusTransport::Redis(link) => {
                    let stream = link.subscribe(channel.clone(), READER_QUEUE).await?;
                    (stream.map(|(_, payload)| payload).boxed(), None)
                }
                BusTransport::Postgres(link, pool) => {
                    let rx = link.subscribe(&[channel]).await?;
                    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                        let notification = rx.recv().await?;
                        Some((notification.payload().as_bytes().to_vec(), rx))
                    });
                    (stream.boxed(), Some(pool.clone()))
                }
            };
            tokio::spawn(receive(topics[topic.index()].clone(), node, raw, pool));
        }
        Ok(ClusterBus {
            node,
            transport,
            channels,
            topics,
        })
    }

    /// The queue of `topic`'s messages from other nodes. One reader per topic: a second
    /// call replaces the first reader (whose queue then ends).
    pub fn subscribe(&self, topic: Topic) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel(READER_QUEUE);
        let state = &self.topics[topic.index()];
        if state.reader().replace(tx).is_some() {
            tracing::warn!(topic = topic.name(), "cluster bus reader replaced");
        }
        rx
    }

    /// Sends `message` to every other node's `topic` reader. A failure is logged and
    /// counted here (`cluster_bus_publish_failures_total`); the caller only decides
    /// whether its own reply must say so.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: Topic,
        message: &T,
    ) -> Result<(), BusError> {
        let state = &self.topics[topic.index()];
        match self.send(topic, message).await {
            Ok(()) => {
                state.sent.inc();
                Ok(())
            }
            Err(e) => {
                state.failures.inc();
                tracing::warn!(topic = topic.name(), error = %e, "cluster bus message not published");
                Err(e)
            }
        }
    }

    async fn send<T: Serialize + ?Sized>(&self, topic: Topic, message: &T) -> Result<(), BusError> {
        let channel = &self.channels[topic.index()];
        let text = serde_json::to_string(&Outgoing {
            node: self.node,
            message,
        })?;
        match &self.transport {
            BusTransport::Redis(link) => {
                link.publish(channel.clone(), text.into_bytes()).await?;
            }
            BusTransport::Postgres(link, pool) => {
                let payload = if text.len() <= INLINE_LIMIT {
                    text
                } else {
                    serde_json::to_string(&Pointer {
                        node: self.node,
                        stored: cluster_payloads::keep(pool, &text).await?,
                    })?
                };
                // Coalesced with the adapters' notifications (`pg_notify.rs`).
                socketioxide_postgres::drivers::Driver::notify(link, channel, &payload).await?;
            }
        }
        Ok(())
    }
}

/// Hands `topic`'s messages from other nodes to its reader, in arrival order. Loading
/// a payload that went through the table is a database round trip: it runs beside the
/// loop (ordered, so messages still arrive in the order they were sent), never inline.
async fn receive(
    state: Arc<TopicState>,
    node: Uuid,
    mut raw: BoxStream<'static, Vec<u8>>,
    pool: Option<PgPool>,
) {
    let mut pending: FuturesOrdered<BoxFuture<Option<Value>>> = FuturesOrdered::new();
    loop {
        tokio::select! {
            // Deliver what is loaded first; take new messages while under the bound.
            biased;
            Some(message) = pending.next(), if !pending.is_empty() => {
                if let Some(message) = message {
                    state.deliver(message);
                }
            }
            next = raw.next(), if pending.len() < MAX_LOADING => {
                let Some(bytes) = next else {
                    return;
                };
                match resolve(&bytes, node, pool.as_ref(), state.topic) {
                    Resolved::Skip => {}
                    // Nothing loading ahead of it: no need to queue behind a future.
                    Resolved::Ready(message) if pending.is_empty() => state.deliver(message),
                    Resolved::Ready(message) => {
                        pending.push_back(Box::pin(async move { Some(message) }));
                    }
                    Resolved::Loading(load) => pending.push_back(load),
                }
            }
        }
    }
}

enum Resolved {
    /// This node's own message, or an unreadable one.
    Skip,
    Ready(Value),
    Loading(BoxFuture<Option<Value>>),
}

fn resolve(raw: &[u8], node: Uuid, pool: Option<&PgPool>, topic: Topic) -> Resolved {
    let incoming = match serde_json::from_slice::<Incoming>(raw) {
        Ok(incoming) => incoming,
        Err(e) => {
            // Also what a node of an older version sends during a rolling upgrade.
            tracing::warn!(topic = topic.name(), error = %e, "unreadable cluster bus message");
            return Resolved::Skip;
        }
    };
    if incoming.node == node {
        return Resolved::Skip;
    }
    match (incoming.body, pool) {
        (Body::Message(message), _) => Resolved::Ready(message),
        (Body::Stored(id), Some(pool)) => {
            let pool = pool.clone();
            Resolved::Loading(Box::pin(async move {
                load(&pool, id)
                    .await
                    .map_err(|e| {
                        tracing::warn!(topic = topic.name(), stored = id, error = %e, "cluster bus payload not loaded");
                    })
                    .ok()
            }))
        }
        (Body::Stored(_), None) => {
            tracing::warn!(
                topic = topic.name(),
                "stored cluster bus payload on a Redis bus"
            );
            Resolved::Skip
        }
    }
}

async fn load(pool: &PgPool, id: i64) -> Result<Value, sqlx::Error> {
    let envelope = cluster_payloads::read(pool, id).await?;
    let incoming: Incoming =
        serde_json::from_value(envelope).map_err(|e| sqlx::Error::Decode(e.into()))?;
    match incoming.body {
        Body::Message(message) => Ok(message),
        Body::Stored(_) => Err(sqlx::Error::Decode(
            "a stored payload that points at another".into(),
        )),
    }
}

/// The channel of `topic` in the cluster named by `prefix`, the same on every node.
fn channel_name(transport: &BusTransport, prefix: &str, topic: Topic) -> String {
    match transport {
        // Beside the adapter's own `<prefix>-request#…` / `<prefix>-response#…` channels.
        BusTransport::Redis(_) => format!("{prefix}-switchboard-bus#{}", topic.name()),
        BusTransport::Postgres(..) => pg_channel_name(prefix, topic),
    }
}

/// A NOTIFY channel name under PostgreSQL's 63-byte limit, whatever the prefix
/// (FNV-1a, stable across builds).
fn pg_channel_name(prefix: &str, topic: Topic) -> String {
    let hash = prefix.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("switchboard_{}_{hash:016x}", topic.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_channel_names_fit_and_separate_clusters_and_topics() {
        let a = pg_channel_name("socket.io", Topic::Orders);
        assert!(a.len() < 64);
        assert_eq!(a, pg_channel_name("socket.io", Topic::Orders));
        assert_ne!(a, pg_channel_name("other", Topic::Orders));
        assert_ne!(a, pg_channel_name("socket.io", Topic::Sessions));
        assert!(pg_channel_name(&"x".repeat(500), Topic::Publish).len() < 64);
    }

    #[test]
    fn an_envelope_reads_back_as_its_message_and_sender() {
        let node = Uuid::new_v4();
        let message = serde_json::json!({ "channel": "news", "payload": [1, null] });
        let text = serde_json::to_string(&Outgoing {
            node,
            message: &message,
        })
        .unwrap();
        let incoming: Incoming = serde_json::from_str(&text).unwrap();
        assert_eq!(incoming.node, node);
        assert!(matches!(incoming.body, Body::Message(m) if m == message));
        let pointer = serde_json::to_string(&Pointer { node, stored: 7 }).unwrap();
        let incoming: Incoming = serde_json::from_str(&pointer).unwrap();
        assert!(matches!(incoming.body, Body::Stored(7)));
    }
}
