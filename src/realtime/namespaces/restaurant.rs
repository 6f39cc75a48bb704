//! Restaurant namespaces (contract §6, seed 001): `/`, `/restaurant` and the dynamic
//! `/restaurants/<id>`, all speaking the `{ success, data | error }` dialect.
//!
//! Access: the restaurant is in the token's `restaurants` (or the role is `admin`), and
//! it exists. Access is checked before existence, so a restaurant outside the token is
//! `PERMISSION_DENIED` whether it exists or not. Changing orders (`order:update_status`,
//! `table:complete`) also takes staff+ (`staff`, `manager`, `admin`, or `service`), the
//! rule of their REST twins; reading and joining boards does not.

use crate::domain::user::UserId;
use crate::realtime::broadcast::Readable;
use socketioxide::adapter::Adapter;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::domain::input::RawPayload;
use crate::domain::orders::{
    CompleteTable, JoinRestaurant, JoinStation, MAX_SYNC_ORDERS, Order, OrderStatus, Station,
    SyncOrders, UpdateStatus,
};
use crate::domain::time::rfc3339_ms;
use crate::error::{AppError, AppResult};
use crate::realtime::announce;
use crate::realtime::dynamic::{Hold, restaurant_of_path};
use crate::realtime::events::restaurant as ev;
use crate::realtime::handler::on;
use crate::realtime::orders::{self, Batch};
use crate::realtime::rooms;
use crate::realtime::session::Session;
use crate::state::AppState;
use crate::ws::gateway::snapshots::{self, Op};

/// Registers every restaurant event (from the connect middleware).
pub fn register_handlers<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session<A>>) {
    socket.extensions.insert(Arc::new(Batch::default()));
    on(socket, session, ev::JOIN_RESTAURANT, join_restaurant);
    on(socket, session, ev::JOIN_STATION, join_station);
    on(socket, session, ev::ORDERS_SYNC, sync_orders);
    on(
        socket,
        session,
        ev::ORDER_UPDATE_STATUS,
        update_order_status,
    );
    on(socket, session, ev::TABLE_COMPLETE, complete_table);
}

/// The access rule: in the token (or admin) first, then the restaurant must exist.
pub async fn check_access<A: Adapter>(
    app: &AppState<A>,
    principal: &crate::auth::Principal,
    restaurant_id: Uuid,
) -> AppResult<()> {
    if !principal.is_admin() && !principal.restaurants.contains(&restaurant_id) {
        return Err(AppError::forbidden("no access to this restaurant"));
    }
    if !app.store.restaurant_exists(restaurant_id).await? {
        return Err(AppError::InvalidRestaurant);
    }
    Ok(())
}

fn batch_of<A: Adapter>(socket: &SocketRef<A>) -> AppResult<Arc<Batch>> {
    socket
        .extensions
        .get::<Arc<Batch>>()
        .ok_or_else(|| AppError::Internal("socket without batch state".into()))
}

async fn join_restaurant<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: RawPayload,
) -> AppResult<Value> {
    let join = JoinRestaurant::from_payload(p.0)?;
    check_access(&s.app, &s.principal, join.restaurant_id).await?;
    let batch = batch_of(&socket)?;
    remember_namespace(&socket, join.restaurant_id);
    // Mode first: turning batch off flushes what is queued before single events resume.
    orders::set_batch(&s.app.fanout, &socket, &batch, join.batch);
    let room = orders::join_board(&socket, join.restaurant_id, join.batch);
    Ok(json!({ "room": room }))
}

async fn join_station<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: JoinStation,
) -> AppResult<Value> {
    check_access(&s.app, &s.principal, p.restaurant_id).await?;
    let batch = batch_of(&socket)?;
    remember_namespace(&socket, p.restaurant_id);
    let room = orders::join_station(&socket, p.restaurant_id, p.station, batch.is_enabled());
    Ok(json!({ "room": room }))
}

/// A socket on `/restaurants/<A>` may join restaurant B's rooms: B's events must then
/// also be emitted on that namespace, for as long as the socket lives.
fn remember_namespace<A: Adapter>(socket: &SocketRef<A>, restaurant_id: Uuid) {
    if let Some(hold) = socket.extensions.get::<Arc<Hold<A>>>() {
        hold.carry(restaurant_id);
    }
}

async fn sync_orders<A: Adapter>(
    s: Arc<Session<A>>,
    socket: SocketRef<A>,
    p: SyncOrders,
) -> AppResult<Value> {
    let restaurant_id = match p.restaurant_id {
        Some(id) => id,
        None => joined_restaurant(&socket).ok_or_else(|| {
            AppError::bad_request("restaurantId: required (or join:restaurant first)")
        })?,
    };
    check_access(&s.app, &s.principal, restaurant_id).await?;
    let (orders, truncated) = board(&s.app, restaurant_id, p.statuses, None).await?;
    let payload = json!({
        "restaurantId": restaurant_id,
        "orders": orders,
        "syncedAt": rfc3339_ms(&chrono::Utc::now()),
        "truncated": truncated,
    });
    s.charge(&socket, &payload);
    if let Err(e) = socket.emit(ev::ORDERS_SYNC_COMPLETE, &Readable(&payload)) {
        tracing::debug!(error = %e, "orders:sync:complete not delivered");
    }
    Ok(payload)
}

/// A restaurant's board, as `orders:sync` and its REST twin read it (access checked by
/// the caller): orders of `statuses` (default: every active one), with an item at
/// `station` if given, oldest first, at most [`MAX_SYNC_ORDERS`]; true when more matched.
pub async fn board<A: Adapter>(
    app: &AppState<A>,
    restaurant_id: Uuid,
    statuses: Option<Vec<OrderStatus>>,
    station: Option<Station>,
) -> AppResult<(Vec<Order>, bool)> {
    let statuses = statuses.unwrap_or_else(|| OrderStatus::ACTIVE.to_vec());
    // One more than the cap tells whether the list was cut.
    let mut orders = app
        .store
        .list_orders(restaurant_id, &statuses, station, MAX_SYNC_ORDERS + 1)
        .await?;
    let truncated = orders.len() > MAX_SYNC_ORDERS as usize;
    orders.truncate(MAX_SYNC_ORDERS as usize);
    Ok((orders, truncated))
}

/// The restaurant whose board the socket is on: the one it last joined (`join:restaurant`
/// leaves the others' rooms), else the one of its `/restaurants/<id>` path.
fn joined_restaurant<A: Adapter>(socket: &SocketRef<A>) -> Option<Uuid> {
    socket
        .rooms()
        .iter()
        .find_map(|room| rooms::parse_restaurant(rooms::split_batched(room).1))
        .or_else(|| restaurant_of_path(socket.ns()))
}

/// `connection:status`'s payload.
#[derive(Serialize)]
struct ConnectionStatus {
    state: &'static str,
}

/// After CONNECT on every restaurant namespace: seed 001's `connection:status`.
pub async fn on_connected<A: Adapter>(_: AppState<A>, socket: SocketRef<A>, _: UserId) {
    let status = ConnectionStatus { state: "connected" };
    if let Err(e) = socket.emit(ev::CONNECTION_STATUS, &status) {
        tracing::debug!(error = %e, "connection:status not delivered");
    }
}

/// Staff+ may change orders (REST twins: `PATCH /api/orders/:id`); a `user` token
/// (a customer's tablet, a kiosk) may watch a board but not move its orders.
fn require_staff(principal: &crate::auth::Principal) -> AppResult<()> {
    if principal.is_staff_or_above() {
        Ok(())
    } else {
        Err(AppError::forbidden("changing orders takes a staff role"))
    }
}

async fn update_order_status<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: UpdateStatus,
) -> AppResult<Value> {
    require_staff(&s.principal)?;
    check_access(&s.app, &s.principal, p.restaurant_id).await?;
    let moved = s
        .app
        .store
        .move_order_status(p.restaurant_id, p.order_id, p.status)
        .await?;
    Ok(json!(announce::orders::moved(&s.app, &moved).await))
}

async fn complete_table<A: Adapter>(
    s: Arc<Session<A>>,
    _: SocketRef<A>,
    p: CompleteTable,
) -> AppResult<Value> {
    require_staff(&s.principal)?;
    check_access(&s.app, &s.principal, p.restaurant_id).await?;
    let completed = s
        .app
        .store
        .complete_table(p.restaurant_id, &p.table_number)
        .await?;
    // The table itself is free again (contract §7.7: `available`, not `cleaning`), on
    // the floor plan of every gateway connection that may see it.
    let freed = s
        .app
        .store
        .free_table(p.restaurant_id, &p.table_number)
        .await?;
    for table in &freed {
        snapshots::table(&s.app.ws, Op::Updated, table, None);
    }
    let payload =
        announce::orders::table_completed(&s.app, p.restaurant_id, &p.table_number, &completed)
            .await;
    Ok(json!(payload))
}
