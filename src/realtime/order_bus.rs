//! Order events across a cluster: caused on one node, queued on every other node's
//! batch-mode sockets, and sent to the sockets that follow a restaurant from another
//! restaurant's namespace (which the adapter does not reach: see `orders.rs`).
//!
//! A single-mode socket gets its events through the socket.io adapter, but a batch-mode
//! socket's queue lives in its own node's memory and the adapter only carries packets for
//! sockets. So each order event is also published on the cluster bus ([`Topic::Orders`]);
//! every other node queues it on its own batch sockets, which flush on their own timers
//! (contract §10: batch mode batches on the node that holds the socket). Events of one
//! node arrive in the order they were sent.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::cluster_bus::{ClusterBus, Topic};
use super::fanout::Fanout;
use super::orders;
use crate::domain::orders::Station;

/// One order event for the other nodes, as published.
#[derive(Debug, Serialize)]
struct Outgoing<'a> {
    restaurant: Uuid,
    stations: &'a [Station],
    /// `{ event, data }`, as queued.
    item: &'a Value,
    /// A `kitchen:alert`: not queued on batch sockets (the adapter delivered it to them),
    /// only sent to sockets on other restaurants' paths that follow this restaurant.
    alert: bool,
}

/// [`Outgoing`], as received.
#[derive(Debug, Deserialize)]
struct Incoming {
    restaurant: Uuid,
    stations: Vec<Station>,
    item: Value,
    #[serde(default)]
    alert: bool,
}

/// Sends an order event (or, with `alert`, a `kitchen:alert`) to the other nodes:
/// their batch sockets, and their sockets on other restaurants' paths that follow
/// this restaurant. A failure is only logged and counted (by the bus): the event
/// already reached every other socket through the adapter.
pub async fn publish(
    bus: &ClusterBus,
    restaurant: Uuid,
    stations: &[Station],
    item: &Value,
    alert: bool,
) {
    let event = Outgoing {
        restaurant,
        stations,
        item,
        alert,
    };
    // Logged and counted by the bus.
    let _ = bus.publish(Topic::Orders, &event).await;
}

/// Queues what other nodes publish on this node's sockets (cluster only), in arrival
/// order.
pub fn start<A: Adapter>(fanout: &Fanout<A>) {
    let Some(bus) = fanout.cluster_bus() else {
        return;
    };
    let mut rx = bus.subscribe(Topic::Orders);
    let fanout = fanout.clone();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            match serde_json::from_value::<Incoming>(message) {
                Ok(event) => {
                    orders::deliver_from_other_node(
                        &fanout,
                        event.restaurant,
                        &event.stations,
                        &event.item,
                        event.alert,
                    )
                    .await;
                }
                Err(e) => tracing::warn!(error = %e, "unreadable order event from another node"),
            }
        }
    });
}
