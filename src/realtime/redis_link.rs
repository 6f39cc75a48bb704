//! The node's Redis connection for socketioxide-redis, kept alive across Redis restarts.
//!
//! socketioxide-redis' own driver subscribes on a plain multiplexed connection: once
//! Redis restarts, that connection is gone and broadcasts between nodes stop for good.
//! This driver uses redis' `ConnectionManager`, which reconnects and re-issues every
//! SUBSCRIBE; a watchdog drives the reconnection while nothing else uses the connection,
//! and the outage shows in logs and metrics.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushInfo, PushKind, RedisError, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{mpsc, oneshot};

use crate::realtime::cluster::LinkHealth;

type Routes = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// Handle to the node's Redis pub/sub connection (cheap to clone).
#[derive(Clone)]
pub struct RedisLink {
    conn: ConnectionManager,
    routes: Routes,
    subscriptions: mpsc::UnboundedSender<Subscription>,
    health: LinkHealth,
}

/// A change of the connection's channels, applied in the order requested.
enum Subscription {
    Subscribe(String, oneshot::Sender<Result<(), RedisError>>),
    Unsubscribe(String),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLink { .. }")
    }
}

impl RedisLink {
    /// Connects (RESP3 is required for pub/sub on a shared connection) and starts
    /// routing messages and watching the connection.
    pub async fn connect(client: redis::Client, health: LinkHealth) -> Result<Self, RedisError> {
        let routes: Routes = Arc::new(RwLock::new(HashMap::new()));
        let (pushes, rx) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(pushes)
            .set_automatic_resubscription()
            .set_max_delay(Duration::from_secs(1))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        health.connected();
        tokio::spawn(route(rx, routes.clone(), health.clone()));
        tokio::spawn(watch(conn.clone(), health.clone()));
        let (subscriptions, requests) = mpsc::unbounded_channel();
        tokio::spawn(subscribe_in_order(conn.clone(), requests));
        Ok(RedisLink {
            conn,
            routes,
            subscriptions,
            health,
        })
    }

    fn routes(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, mpsc::Sender<ChanItem>>> {
        self.routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Round trip to Redis (readiness).
    pub async fn ping(&self) -> Result<(), RedisError> {
        redis::cmd("PING")
            .query_async::<Value>(&mut self.conn.clone())
            .await
            .map(|_| ())
    }
}

/// Routes published messages to their channel's subscriber; notes disconnections.
async fn route(mut pushes: mpsc::UnboundedReceiver<PushInfo>, routes: Routes, health: LinkHealth) {
    while let Some(push) = pushes.recv().await {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let mut data = push.data.into_iter();
                let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
                    continue;
                };
                let (Ok(channel), Ok(payload)) = (
                    redis::from_redis_value::<String>(channel),
                    redis::from_redis_value::<Vec<u8>>(payload),
                ) else {
                    tracing::warn!("unreadable pub/sub message from Redis");
                    continue;
                };
                let tx = routes
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .get(&channel)
                    .cloned();
                if let Some(tx) = tx {
                    // Never wait on one subscriber: this loop serves every channel.
                    match tx.try_send((channel, payload)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full((channel, _))) => {
                            health.dropped(&channel);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            tracing::debug!("message for a closed subscriber");
                        }
                    }
                }
            }
            PushKind::Disconnection => health.lost(&"connection closed"),
            _ => {}
        }
    }
}

/// Applies SUBSCRIBE and UNSUBSCRIBE one after the other, so that a namespace deleted
/// and mounted again ends subscribed, whichever task asked first.
async fn subscribe_in_order(
    conn: ConnectionManager,
    mut requests: mpsc::UnboundedReceiver<Subscription>,
) {
    while let Some(request) = requests.recv().await {
        match request {
            Subscription::Subscribe(channel, reply) => {
                let _ = reply.send(conn.clone().subscribe(channel.as_str()).await);
            }
            Subscription::Unsubscribe(channel) => {
                if let Err(e) = conn.clone().unsubscribe(channel.as_str()).await {
                    tracing::debug!(channel, error = %e, "unsubscribe failed");
                }
            }
        }
    }
}

/// While the link is down, pings every second: the connection manager reconnects (and
/// resubscribes) on use, so this brings it back even when no one publishes.
async fn watch(conn: ConnectionManager, health: LinkHealth) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if health.is_up() {
            continue;
        }
        match redis::cmd("PING")
            .query_async::<Value>(&mut conn.clone())
            .await
        {
            Ok(_) => health.connected(),
            Err(e) => tracing::debug!(error = %e, "Redis not back yet"),
        }
    }
}

impl Driver for RedisLink {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        self.conn.clone().publish::<_, _, Value>(chan, val).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(size.max(1));
        {
            let mut routes = self.routes();
            routes.insert(chan.clone(), tx);
            self.health.set_channels(routes.len());
        }
        let (reply, done) = oneshot::channel();
        let gone = || RedisError::from((redis::ErrorKind::Io, "subscription task ended"));
        self.subscriptions
            .send(Subscription::Subscribe(chan, reply))
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())??;
        Ok(MessageStream::new(rx))
    }

    /// Returns at once: socketioxide closes a deleted namespace's adapter with
    /// `now_or_never`, which would drop a future waiting on Redis with its UNSUBSCRIBE
    /// unsent, leaving the channel subscribed (and resubscribed after every reconnect).
    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        {
            let mut routes = self.routes();
            routes.remove(&chan);
            self.health.set_channels(routes.len());
        }
        let _ = self.subscriptions.send(Subscription::Unsubscribe(chan));
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(count)
    }
}
