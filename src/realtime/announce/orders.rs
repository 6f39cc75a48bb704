//! Order events (contract §5, §8): one function per event, called once by the
//! `/restaurant*` handler or REST route that caused it, with its payload typed here.
//! Routing to rooms, station rooms, batch-mode sockets and other nodes is
//! `realtime::orders`'; plain connections following `order:<id>` get `order_update`.

use serde::Serialize;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use crate::domain::orders::{KitchenAlert, Order, OrderStatus, Station, stations_of};
use crate::domain::time::rfc3339_ms;
use crate::realtime::events::restaurant as ev;
use crate::realtime::orders;
use crate::state::AppState;
use crate::store::orders::{Moved, Patched, TableReady};
use crate::ws;

/// `order:status_changed`'s payload (the seed's mix: `restaurant_id` in snake case).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChanged {
    order_id: Uuid,
    previous_status: OrderStatus,
    status: OrderStatus,
    timestamp: String,
    #[serde(rename = "restaurant_id")]
    restaurant_id: Uuid,
}

impl StatusChanged {
    /// The payload for `order` moved from `previous`.
    pub fn new(previous: OrderStatus, order: &Order) -> Self {
        StatusChanged {
            order_id: order.id,
            previous_status: previous,
            status: order.status,
            timestamp: rfc3339_ms(&order.updated_at),
            restaurant_id: order.restaurant_id,
        }
    }
}

/// `order:updated`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderUpdated<'a> {
    order: &'a Order,
    changes: &'a [&'static str],
    updated_by: &'a str,
}

/// `order:deleted`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderDeleted<'a> {
    order_id: Uuid,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// `table:ready`'s payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TableIsReady<'a> {
    table_number: &'a str,
    order_ids: Vec<Uuid>,
    ready_at: String,
}

/// `table:completed`'s payload, also the reply to `table:complete`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableCompleted {
    table_number: String,
    restaurant_id: Uuid,
    order_ids: Vec<Uuid>,
    completed_at: String,
}

/// A new order: `order:created` to the restaurant and the stations of its items.
pub async fn created<A: Adapter>(app: &AppState<A>, order: &Order) {
    orders::emit_order_event(
        &app.fanout,
        order.restaurant_id,
        &order.stations(),
        ev::ORDER_CREATED,
        order,
    )
    .await;
}

/// A PATCH that changed something: `order:updated` to the stations before and after
/// (so a station losing its items hears it), then `order:status_changed` and
/// `table:ready` when due. `before` is the order as it was.
pub async fn patched<A: Adapter>(app: &AppState<A>, before: &Order, patched: &Patched, by: &str) {
    if patched.changes.is_empty() {
        return;
    }
    let order = &patched.order;
    let stations = stations_of([before, order]);
    let payload = OrderUpdated {
        order,
        changes: &patched.changes,
        updated_by: by,
    };
    orders::emit_order_event(
        &app.fanout,
        order.restaurant_id,
        &stations,
        ev::ORDER_UPDATED,
        &payload,
    )
    .await;
    if let Some(previous) = patched.previous_status {
        status_changed(app, &stations, previous, order).await;
    }
    if let Some(ready) = &patched.table_ready {
        table_ready(app, order.restaurant_id, ready).await;
    }
}

/// A status move (`order:update_status`): `order:status_changed` and `table:ready` when
/// due; returns the payload, which is also the reply (sent even when nothing moved).
pub async fn moved<A: Adapter>(app: &AppState<A>, moved: &Moved) -> StatusChanged {
    let order = &moved.order;
    if !moved.changed {
        // The order already had that status: success, nothing to announce.
        return StatusChanged::new(moved.previous, order);
    }
    let payload = status_changed(app, &order.stations(), moved.previous, order).await;
    if let Some(ready) = &moved.table_ready {
        table_ready(app, order.restaurant_id, ready).await;
    }
    payload
}

/// `order:status_changed` to the restaurant and the given station rooms, and
/// `order_update` to `/ws` subscribers of `order:<id>`.
async fn status_changed<A: Adapter>(
    app: &AppState<A>,
    stations: &[Station],
    previous: OrderStatus,
    order: &Order,
) -> StatusChanged {
    let payload = StatusChanged::new(previous, order);
    orders::emit_order_event(
        &app.fanout,
        order.restaurant_id,
        stations,
        ev::ORDER_STATUS_CHANGED,
        &payload,
    )
    .await;
    ws::events::order_status_changed(&app.fanout.ws, previous, order);
    payload
}

/// `table:ready` to the restaurant and the stations of the table's orders.
async fn table_ready<A: Adapter>(app: &AppState<A>, restaurant_id: Uuid, ready: &TableReady) {
    let payload = TableIsReady {
        table_number: &ready.table_number,
        order_ids: ready.orders.iter().map(|o| o.id).collect(),
        ready_at: rfc3339_ms(&chrono::Utc::now()),
    };
    let stations = stations_of(&ready.orders);
    orders::emit_order_event(
        &app.fanout,
        restaurant_id,
        &stations,
        ev::TABLE_READY,
        &payload,
    )
    .await;
}

/// A completed table (`table:complete`): `order:status_changed` for each order that
/// moved, then `table:completed` to the restaurant and their stations. Returns the
/// `table:completed` payload, the reply, even when no order was left to complete
/// (then nothing is announced).
pub async fn table_completed<A: Adapter>(
    app: &AppState<A>,
    restaurant_id: Uuid,
    table_number: &str,
    completed: &[(OrderStatus, Order)],
) -> TableCompleted {
    let payload = TableCompleted {
        table_number: table_number.to_owned(),
        restaurant_id,
        order_ids: completed.iter().map(|(_, o)| o.id).collect(),
        completed_at: rfc3339_ms(&chrono::Utc::now()),
    };
    if completed.is_empty() {
        return payload;
    }
    for (previous, order) in completed {
        status_changed(app, &order.stations(), *previous, order).await;
    }
    let stations = stations_of(completed.iter().map(|(_, order)| order));
    orders::emit_order_event(
        &app.fanout,
        restaurant_id,
        &stations,
        ev::TABLE_COMPLETED,
        &payload,
    )
    .await;
    payload
}

/// A deleted order: `order:deleted` to the restaurant and the stations of its items.
pub async fn deleted<A: Adapter>(app: &AppState<A>, order: &Order, reason: Option<&str>) {
    let payload = OrderDeleted {
        order_id: order.id,
        timestamp: rfc3339_ms(&chrono::Utc::now()),
        reason,
    };
    orders::emit_order_event(
        &app.fanout,
        order.restaurant_id,
        &order.stations(),
        ev::ORDER_DELETED,
        &payload,
    )
    .await;
}

/// `kitchen:alert` to every socket of the restaurant at once, batch mode or not.
pub async fn kitchen_alert<A: Adapter>(
    app: &AppState<A>,
    restaurant_id: Uuid,
    alert: &KitchenAlert,
) {
    orders::emit_alert(&app.fanout, restaurant_id, alert).await;
}
