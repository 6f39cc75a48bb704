//! Routing restaurant events: to the restaurant room and the station rooms of the orders
//! involved, on every restaurant namespace, each socket once; and batch mode, where a
//! socket receives one `orders:batch_update` array per `ORDER_BATCH_MS` window instead.
//!
//! Batch sockets sit in the `batch:` twins of the rooms (see `rooms::batched`), so
//! single emits skip them; this module queues the event on each of them, and a
//! per-socket task flushes the queue. Events keep the order in which they were routed.
//!
//! Which namespaces carry a restaurant's events is [`Routes`]' business (the table of
//! dynamic paths is `dynamic.rs`'s).

use crate::realtime::broadcast::Readable;
use socketioxide::adapter::Adapter;
use std::cell::LazyCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use super::dynamic;
use super::events::{ns, restaurant as ev};
use super::fanout::Fanout;
use super::order_bus;
use super::rooms;
use crate::domain::orders::Station;

/// Per-socket batch-mode state, kept in the socket's extensions.
#[derive(Debug, Default)]
pub struct Batch {
    enabled: AtomicBool,
    flushing: AtomicBool,
    queue: Mutex<Vec<Value>>,
}

impl Batch {
    /// Whether the socket is in batch mode.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    fn push(&self, item: Value) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(item);
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Turns batch mode on or off for a socket; on starts its flush task if not running.
pub fn set_batch<A: Adapter>(
    fanout: &Fanout<A>,
    socket: &SocketRef<A>,
    batch: &Arc<Batch>,
    on: bool,
) {
    let was_on = batch.enabled.swap(on, Ordering::SeqCst);
    if was_on && !on {
        // Deliver the open window now, so it cannot arrive after the single events
        // that follow the switch.
        let items = batch.take();
        if !items.is_empty()
            && let Err(e) = socket.emit(ev::ORDERS_BATCH_UPDATE, &Readable(&items))
        {
            tracing::warn!(sid = %socket.id, error = %e, "batch not delivered");
        }
    }
    if on && !batch.flushing.swap(true, Ordering::SeqCst) {
        let period = fanout.order_batch;
        let socket = socket.clone();
        let batch = batch.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if !socket.connected() {
                    break;
                }
                let items = batch.take();
                if !items.is_empty()
                    && let Err(e) = socket.emit(ev::ORDERS_BATCH_UPDATE, &Readable(&items))
                {
                    tracing::warn!(sid = %socket.id, error = %e, "batch not delivered");
                }
                if !batch.is_enabled() {
                    // Turned off: the last window is flushed; single events take over.
                    batch.flushing.store(false, Ordering::SeqCst);
                    // A concurrent re-enable may have lost the race for `flushing`.
                    if batch.is_enabled() && !batch.flushing.swap(true, Ordering::SeqCst) {
                        continue;
                    }
                    break;
                }
            }
        });
    }
}

/// Delivers the open batch window of every batch-mode socket of this node now. At
/// shutdown the sockets are about to be closed: what their windows hold would otherwise
/// be dropped with them (events that other tablets already received one by one).
pub fn flush_all_batches<A: Adapter>(fanout: &Fanout<A>) {
    for op in fanout.broadcaster.io().nsps() {
        for socket in op.sockets() {
            flush_batch(&socket);
        }
    }
}

/// Delivers `socket`'s open batch window now (a shutdown wave is about to close it);
/// true when it held something.
pub fn flush_batch<A: Adapter>(socket: &SocketRef<A>) -> bool {
    let Some(batch) = socket.extensions.get::<Arc<Batch>>() else {
        return false;
    };
    let items = batch.take();
    if items.is_empty() {
        return false;
    }
    if let Err(e) = socket.emit(ev::ORDERS_BATCH_UPDATE, &Readable(&items)) {
        tracing::warn!(sid = %socket.id, error = %e, "batch not delivered at shutdown");
    }
    true
}

/// Where this node sends a restaurant's events.
///
/// Sockets on `/`, `/restaurant` and the restaurant's own `/restaurants/<id>` get them
/// through the adapter, from whichever node causes the event (in a cluster that node
/// mounts the own path, since tablets on it may sit on other nodes). A socket on another
/// restaurant's path that joined this one is reached by its own node only: the node
/// that causes the event sends to its own such sockets, and every other node to its own
/// when the event arrives on the order bus, which each order event crosses anyway for
/// batch mode. So no node needs to know another's paths, and the hot path costs one map
/// lookup; sending on those paths through the adapter would reach the nodes that have
/// them only if every node mounted every such path.
struct Routes {
    /// Paths broadcast to through the adapter (every node).
    cluster: Vec<String>,
    /// Paths sent to on this node only.
    local: Vec<String>,
}

async fn routes<A: Adapter>(fanout: &Fanout<A>, restaurant_id: Uuid) -> Routes {
    let mut cluster = vec![ns::ROOT.to_owned(), ns::RESTAURANT.to_owned()];
    let mut local = fanout.dynamic.paths_of(restaurant_id);
    if fanout.clustered() {
        let own = dynamic::restaurant_path(restaurant_id);
        local.retain(|path| *path != own);
        fanout.mount(own.clone()).await;
        cluster.push(own);
    }
    Routes { cluster, local }
}

/// Restaurant, station and batch-twin rooms: every socket of the restaurant.
fn all_rooms(restaurant_id: Uuid) -> Vec<String> {
    let rooms = target_rooms(restaurant_id, &Station::ALL);
    let mut all: Vec<String> = rooms.iter().map(|r| rooms::batched(r)).collect();
    all.extend(rooms);
    all
}

/// Restaurant room plus the given station rooms.
fn target_rooms(restaurant_id: Uuid, stations: &[Station]) -> Vec<String> {
    let mut rooms = vec![rooms::restaurant(restaurant_id)];
    rooms.extend(stations.iter().map(|s| rooms::station(restaurant_id, *s)));
    rooms
}

/// Sends an order event (or `table:ready`/`table:completed`): immediately to sockets in
/// single mode, queued for sockets in batch mode.
pub async fn emit_order_event<A: Adapter, T: Serialize + ?Sized>(
    fanout: &Fanout<A>,
    restaurant_id: Uuid,
    stations: &[Station],
    event: &str,
    data: &T,
) {
    let rooms = target_rooms(restaurant_id, stations);
    let routes = routes(fanout, restaurant_id).await;
    for path in &routes.cluster {
        fanout
            .broadcaster
            .emit(path, rooms.clone(), event, data)
            .await;
    }
    for path in &routes.local {
        fanout
            .broadcaster
            .emit_local(path, rooms.clone(), event, data)
            .await;
    }
    // The `{ event, data }` element is built only when some socket or node needs it.
    let item = || json!({ "event": event, "data": data });
    queue_on_batch_sockets(fanout, restaurant_id, stations, item);
    if let Some(bus) = fanout.cluster_bus() {
        order_bus::publish(bus, restaurant_id, stations, &item(), false).await;
    }
}

/// Queues the item (`{ event, data }`, made by `item` once, if any socket needs it) on
/// this node's batch-mode sockets of the restaurant room and the given station rooms,
/// each socket once.
pub fn queue_on_batch_sockets<A: Adapter>(
    fanout: &Fanout<A>,
    restaurant_id: Uuid,
    stations: &[Station],
    item: impl FnOnce() -> Value,
) {
    let item = LazyCell::new(item);
    let batch_rooms: Vec<String> = target_rooms(restaurant_id, stations)
        .iter()
        .map(|r| rooms::batched(r))
        .collect();
    let mut paths = vec![ns::ROOT.to_owned(), ns::RESTAURANT.to_owned()];
    paths.extend(fanout.dynamic.paths_of(restaurant_id));
    for path in paths {
        let Some(op) = fanout.broadcaster.io().of(&path) else {
            continue;
        };
        for socket in op.to(batch_rooms.clone()).sockets() {
            match socket.extensions.get::<Arc<Batch>>() {
                Some(batch) => batch.push(LazyCell::force(&item).clone()),
                None => tracing::warn!(sid = %socket.id, "batch room member without batch state"),
            }
        }
    }
}

/// Sends `kitchen:alert` to every socket of the restaurant (its room and every station
/// room) at once, batch mode or not.
pub async fn emit_alert<A: Adapter, T: Serialize + ?Sized>(
    fanout: &Fanout<A>,
    restaurant_id: Uuid,
    data: &T,
) {
    let all = all_rooms(restaurant_id);
    let routes = routes(fanout, restaurant_id).await;
    for path in &routes.cluster {
        fanout
            .broadcaster
            .emit(path, all.clone(), ev::KITCHEN_ALERT, data)
            .await;
    }
    for path in &routes.local {
        fanout
            .broadcaster
            .emit_local(path, all.clone(), ev::KITCHEN_ALERT, data)
            .await;
    }
    if let Some(bus) = fanout.cluster_bus() {
        let item = json!({ "event": ev::KITCHEN_ALERT, "data": data });
        order_bus::publish(bus, restaurant_id, &[], &item, true).await;
    }
}

/// An event another node caused, arrived on the order bus: queued on this node's batch
/// sockets (alerts excepted: they are sent at once, through the adapter), and sent to
/// this node's sockets on other restaurants' paths that follow this restaurant (see
/// [`Routes`]).
pub async fn deliver_from_other_node<A: Adapter>(
    fanout: &Fanout<A>,
    restaurant_id: Uuid,
    stations: &[Station],
    item: &Value,
    alert: bool,
) {
    if !alert {
        queue_on_batch_sockets(fanout, restaurant_id, stations, || item.clone());
    }
    let own = dynamic::restaurant_path(restaurant_id);
    let mut paths = fanout.dynamic.paths_of(restaurant_id);
    paths.retain(|path| *path != own);
    if paths.is_empty() {
        return;
    }
    let (Some(event), Some(data)) = (item.get("event").and_then(Value::as_str), item.get("data"))
    else {
        tracing::warn!(%restaurant_id, "order event from another node without event or data");
        return;
    };
    let rooms = if alert {
        all_rooms(restaurant_id)
    } else {
        target_rooms(restaurant_id, stations)
    };
    for path in &paths {
        fanout
            .broadcaster
            .emit_local(path, rooms.clone(), event, data)
            .await;
    }
}

/// Moves a socket onto `restaurant_id`'s board: leaves every other restaurant's rooms,
/// keeps (and converts to the right mode) this restaurant's station rooms, joins the
/// restaurant room in single or batch mode.
pub fn join_board<A: Adapter>(socket: &SocketRef<A>, restaurant_id: Uuid, batch: bool) -> String {
    let own_room = rooms::restaurant(restaurant_id);
    let own_stations = rooms::station_prefix(restaurant_id);
    let variant = |base: &str| {
        if batch {
            rooms::batched(base)
        } else {
            base.to_owned()
        }
    };
    for room in socket.rooms() {
        let (is_batch, base) = rooms::split_batched(&room);
        if !rooms::is_restaurant_scoped(base) {
            continue;
        }
        let own = base == own_room || base.starts_with(&own_stations);
        if !own {
            socket.leave(room.to_string());
        } else if is_batch != batch {
            socket.leave(room.to_string());
            socket.join(variant(base));
        }
    }
    socket.join(variant(&own_room));
    own_room
}

/// Joins a station room in the socket's current mode.
pub fn join_station<A: Adapter>(
    socket: &SocketRef<A>,
    restaurant_id: Uuid,
    station: Station,
    batch: bool,
) -> String {
    let room = rooms::station(restaurant_id, station);
    socket.join(if batch {
        rooms::batched(&room)
    } else {
        room.clone()
    });
    room
}
