//! Order events across a cluster: caused on one node, queued on every other node's
//! batch-mode sockets, and sent to the sockets that follow a restaurant from another
//! restaurant's namespace (which the adapter does not reach: see `orders.rs`).
//!
//! A single-mode socket gets its events through the socket.io adapter, but a batch-mode
//! socket's queue lives in its own node's memory and the adapter only carries packets for
//! sockets. So each order event is also published on a PostgreSQL NOTIFY channel of the
//! cluster (the database is shared whatever the adapter); every other node queues it on
//! its own batch sockets, which flush on their own timers (contract §10: batch mode
//! batches on the node that holds the socket). Notifications of one sender arrive in the
//! order they were sent. Payloads above NOTIFY's 8000-byte limit go through a table.

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use sqlx::PgPool;
use sqlx::postgres::PgNotification;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::cluster::BoxFuture;
use super::orders;
use super::pg_link::PgLink;
use crate::domain::orders::Station;
use crate::state::AppState;

/// Largest message sent inline (PostgreSQL refuses NOTIFY payloads of 8000 bytes).
const INLINE_LIMIT: usize = 7900;

/// One order event for batch-mode sockets.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// Sending node (it has queued the event on its own sockets already).
    node: Uuid,
    restaurant: Uuid,
    stations: Vec<Station>,
    /// `{ event, data }`, as queued.
    item: Value,
    /// A `kitchen:alert`: not queued on batch sockets (the adapter delivered it to them),
    /// only sent to sockets on other restaurants' paths that follow this restaurant.
    #[serde(default)]
    alert: bool,
}

/// What goes over NOTIFY: the message, or the id of the row that holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Envelope {
    Stored { node: Uuid, stored: i64 },
    Inline(Message),
}

/// Publishes this node's order events to the other nodes' batch sockets.
#[derive(Debug)]
pub struct OrderBus {
    node: Uuid,
    channel: String,
    pool: PgPool,
}

impl OrderBus {
    /// Listens on the cluster's channel (named after `prefix`, like the adapter's own) and
    /// queues what other nodes publish on this node's batch sockets.
    pub async fn start<A: Adapter>(
        app: &AppState<A>,
        link: &PgLink,
        prefix: &str,
    ) -> Result<Self, sqlx::Error> {
        let channel = channel_name(prefix);
        let node = Uuid::new_v4();
        let rx = link.subscribe(&[&channel]).await?;
        let pool = app.store.pool().clone();
        tokio::spawn(receive(app.clone(), rx, node, pool.clone()));
        Ok(OrderBus {
            node,
            channel,
            pool,
        })
    }

    /// Sends an order event (or, with `alert`, a `kitchen:alert`) to the other nodes:
    /// their batch sockets, and their sockets on other restaurants' paths that follow
    /// this restaurant. A failure is logged: the event already reached every other
    /// socket through the adapter.
    pub async fn publish(&self, restaurant: Uuid, stations: &[Station], item: &Value, alert: bool) {
        let message = Message {
            node: self.node,
            restaurant,
            stations: stations.to_vec(),
            item: item.clone(),
            alert,
        };
        if let Err(e) = self.send(&message).await {
            tracing::warn!(%restaurant, error = %e, "order event not published to other nodes' batch sockets");
        }
    }

    async fn send(&self, message: &Message) -> Result<(), sqlx::Error> {
        let text = serde_json::to_string(message).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let payload = if text.len() <= INLINE_LIMIT {
            text
        } else {
            let stored: i64 = sqlx::query_scalar(
                "insert into cluster_bus_payloads (payload) values ($1::text::jsonb) returning id",
            )
            .bind(&text)
            .fetch_one(&self.pool)
            .await?;
            // Every node has read a row long before this.
            sqlx::query(
                "delete from cluster_bus_payloads where created_at < now() - interval '10 minutes'",
            )
            .execute(&self.pool)
            .await?;
            serde_json::to_string(&Envelope::Stored {
                node: self.node,
                stored,
            })
            .map_err(|e| sqlx::Error::Encode(e.into()))?
        };
        sqlx::query("select pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Most stored payloads being loaded at once; past it the bus stops taking
/// notifications until one is loaded (its queue then fills and the link drops and
/// counts, instead of this task holding an unbounded backlog).
const MAX_LOADING: usize = 64;

/// Queues what other nodes publish, in arrival order. Loading a payload that went
/// through the table is a database round trip: it runs beside the loop (ordered, so
/// events still queue in the order they were sent), never inline in it.
async fn receive<A: Adapter>(
    app: AppState<A>,
    mut rx: mpsc::Receiver<PgNotification>,
    node: Uuid,
    pool: PgPool,
) {
    let mut pending: FuturesOrdered<BoxFuture<Option<Message>>> = FuturesOrdered::new();
    loop {
        tokio::select! {
            // Deliver what is ready first; take new notifications while under the bound.
            biased;
            Some(message) = pending.next(), if !pending.is_empty() => {
                if let Some(message) = message
                    && message.node != node
                {
                    orders::deliver_from_other_node(
                        &app,
                        message.restaurant,
                        &message.stations,
                        &message.item,
                        message.alert,
                    )
                    .await;
                }
            }
            notification = rx.recv(), if pending.len() < MAX_LOADING => {
                let Some(notification) = notification else {
                    return;
                };
                if let Some(next) = resolve(notification.payload(), node, &pool) {
                    pending.push_back(next);
                }
            }
        }
    }
}

/// The message a notification carries: at once when inline, from the table when
/// stored; `None` for this node's own or an unreadable notification.
fn resolve(payload: &str, node: Uuid, pool: &PgPool) -> Option<BoxFuture<Option<Message>>> {
    match serde_json::from_str::<Envelope>(payload) {
        Ok(Envelope::Inline(message)) => Some(Box::pin(async move { Some(message) })),
        Ok(Envelope::Stored { node: from, .. }) if from == node => None,
        Ok(Envelope::Stored { stored, .. }) => {
            let pool = pool.clone();
            Some(Box::pin(async move {
                load(&pool, stored)
                    .await
                    .map_err(|e| {
                        tracing::warn!(stored, error = %e, "order event for batch sockets not loaded");
                    })
                    .ok()
            }))
        }
        Err(e) => {
            tracing::warn!(error = %e, "unreadable order event from another node");
            None
        }
    }
}

async fn load(pool: &PgPool, id: i64) -> Result<Message, sqlx::Error> {
    let sqlx::types::Json(message): sqlx::types::Json<Message> =
        sqlx::query_scalar("select payload from cluster_bus_payloads where id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    Ok(message)
}

/// A NOTIFY channel name under PostgreSQL's 63-byte limit, the same on every node with
/// the same prefix (FNV-1a, stable across builds).
fn channel_name(prefix: &str) -> String {
    format!("switchboard_orders_{:016x}", prefix_hash(prefix))
}

/// FNV-1a of a cluster prefix: names NOTIFY channels of one cluster on every node.
pub(super) fn prefix_hash(prefix: &str) -> u64 {
    prefix.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_and_separate_clusters() {
        let a = channel_name("socket.io");
        assert!(a.len() < 64);
        assert_eq!(a, channel_name("socket.io"));
        assert_ne!(a, channel_name("other"));
        assert!(channel_name(&"x".repeat(500)).len() < 64);
    }
}
