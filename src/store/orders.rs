//! Restaurants, orders and items. Status moves are single locked statements so two
//! tablets moving one order cannot both win.
//!
//! One file past 400 lines on purpose: every statement reads orders through the same
//! `order_select!`/`order_columns!` macros and row types, which split files would have
//! to export to each other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{FromRow, Postgres, Transaction};
use uuid::Uuid;

use super::Store;
use crate::domain::orders::{
    CreateOrder, NewItem, Order, OrderItem, OrderStatus, OrderType, PatchOrder, Station,
};
use crate::error::{AppError, AppResult};

/// Order columns with items folded in as JSON, in one round trip.
macro_rules! order_select {
    () => {
        concat!(
            order_columns!("order_items i where i.order_id = o.id"),
            " from orders o "
        )
    };
}

/// The columns of an [`OrderRow`] from an order `o`, its items (JSON, in position order)
/// read from `$items` (rows `i`).
macro_rules! order_columns {
    ($items:literal) => {
        concat!(
            "select o.id, o.order_number, o.status, o.type, o.table_number, o.total::float8 as total,
                    o.created_at, o.updated_at, o.restaurant_id,
                    coalesce((select json_agg(json_build_object('id', i.id, 'name', i.name, 'quantity', i.quantity,
                                                               'station', i.station, 'notes', i.notes) order by i.position)
                              from ",
            $items,
            "), '[]'::json) as items"
        )
    };
}

/// The items' INSERT: `$1` the order id, `$2`…`$6` the columns of [`ItemColumns`].
macro_rules! insert_items_sql {
    () => {
        "insert into order_items (id, order_id, position, name, quantity, station, notes)
         select t.id, $1, t.pos, t.name, t.quantity, t.station, t.notes
         from unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[]) with ordinality
              as t(id, name, quantity, station, notes, pos)"
    };
}

#[derive(Deserialize)]
struct ItemRow {
    id: Uuid,
    name: String,
    quantity: i32,
    station: Station,
    notes: Option<String>,
}

#[derive(FromRow)]
struct OrderRow {
    id: Uuid,
    order_number: String,
    status: OrderStatus,
    #[sqlx(rename = "type")]
    kind: String,
    table_number: Option<String>,
    total: f64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    restaurant_id: Uuid,
    items: Json<Vec<ItemRow>>,
}

impl From<OrderRow> for Order {
    fn from(r: OrderRow) -> Self {
        Order {
            id: r.id,
            order_number: r.order_number,
            status: r.status,
            kind: OrderType::from_db(&r.kind),
            table_number: r.table_number,
            items: r
                .items
                .0
                .into_iter()
                .map(|i| OrderItem {
                    id: i.id,
                    name: i.name,
                    quantity: i.quantity,
                    station: i.station,
                    notes: i.notes,
                })
                .collect(),
            total: r.total,
            created_at: r.created_at,
            updated_at: r.updated_at,
            restaurant_id: r.restaurant_id,
        }
    }
}

/// A status move that happened.
#[derive(Debug, Clone)]
pub struct Moved {
    /// Status before the move.
    pub previous: OrderStatus,
    /// The order after it.
    pub order: Order,
    /// Set when this move made every active order of the table `ready`.
    pub table_ready: Option<TableReady>,
    /// False when the order already had the status asked for (nothing was written).
    pub changed: bool,
}

/// All active orders of a table are ready.
#[derive(Debug, Clone)]
pub struct TableReady {
    /// Table.
    pub table_number: String,
    /// Those orders (all ready), oldest first.
    pub orders: Vec<Order>,
}

/// The outcome of a PATCH.
#[derive(Debug, Clone)]
pub struct Patched {
    /// The order after it.
    pub order: Order,
    /// Fields that changed (`status`, `items`, `table_number`).
    pub changes: Vec<&'static str>,
    /// Status before, when the status changed.
    pub previous_status: Option<OrderStatus>,
    /// Set when the change made the whole table ready.
    pub table_ready: Option<TableReady>,
}

impl Store {
    /// Whether the restaurant exists.
    pub async fn restaurant_exists(&self, id: Uuid) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("select exists (select 1 from restaurants where id = $1)")
            .bind(id)
            .fetch_one(&self.pool)
            .await
    }

    /// Creates an order with its items.
    pub async fn insert_order(
        &self,
        restaurant_id: Uuid,
        new: &CreateOrder,
    ) -> Result<Order, sqlx::Error> {
        // One statement (atomic on its own): the order, its items, and the order as
        // `order_select!` reads it, in one round trip instead of six.
        let items = ItemColumns::of(&new.items);
        let order = NewOrderRow {
            restaurant_id,
            order_number: &new.order_number,
            kind: new.kind.as_str(),
            table_number: new.table_number.as_deref(),
            total: new.total,
            customer_id: new.customer_id.as_ref().map(ToString::to_string),
        };
        let row: OrderRow = sqlx::query_as(concat!(
            "with i as (",
            insert_items_sql!(),
            " returning id, position, name, quantity, station, notes
             ), o as (
                insert into orders (id, restaurant_id, order_number, type, table_number, total, customer_id)
                select $1, n.restaurant_id, n.order_number, n.type, n.table_number,
                       n.total::float8::numeric(12, 2), n.customer_id
                from jsonb_to_record($7) as n(restaurant_id uuid, order_number text, type text,
                                              table_number text, total float8, customer_id text)
                returning id, order_number, status, type, table_number, total, created_at, updated_at, restaurant_id
             ) ",
            order_columns!("i"),
            " from o"
        ))
        .bind(Uuid::now_v7())
        .bind(items.ids)
        .bind(items.names)
        .bind(items.quantities)
        .bind(items.stations)
        .bind(items.notes)
        .bind(Json(order))
        .fetch_one(&self.pool)
        .await?;
        Ok(Order::from(row))
    }

    /// An order still on the board (not deleted).
    pub async fn find_order(&self, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
        let row: Option<OrderRow> = sqlx::query_as(concat!(
            order_select!(),
            "where o.id = $1 and o.deleted_at is null"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Order::from))
    }

    /// A restaurant's orders in `statuses`, oldest first (first in, first out).
    pub async fn list_orders(
        &self,
        restaurant_id: Uuid,
        statuses: &[OrderStatus],
        station: Option<Station>,
        limit: i64,
    ) -> Result<Vec<Order>, sqlx::Error> {
        let rows: Vec<OrderRow> = sqlx::query_as(concat!(
            order_select!(),
            "where o.restaurant_id = $1 and o.deleted_at is null and o.status = any($2)
               and ($4::text is null
                    or exists (select 1 from order_items s where s.order_id = o.id and s.station = $4))
             order by o.created_at, o.id limit $3"
        ))
        .bind(restaurant_id)
        .bind(statuses)
        .bind(limit)
        .bind(station.map(Station::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Order::from).collect())
    }

    /// Moves an order of `restaurant_id` to `to`, atomically: the row is locked and the
    /// rule (forward, or cancel a non-final order) is part of the UPDATE.
    pub async fn move_order_status(
        &self,
        restaurant_id: Uuid,
        order_id: Uuid,
        to: OrderStatus,
    ) -> AppResult<Moved> {
        let mut tx = self.pool.begin().await?;
        let previous: Option<OrderStatus> = sqlx::query_scalar(
            "with prev as (
                select id, status from orders
                where id = $1 and restaurant_id = $2 and deleted_at is null for update
             )
             update orders o set status = $3, updated_at = now() from prev
             where o.id = prev.id and prev.status not in ('completed', 'cancelled')
               and ($3 = 'cancelled'::order_status or prev.status < $3)
             returning prev.status",
        )
        .bind(order_id)
        .bind(restaurant_id)
        .bind(to)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(previous) = previous else {
            let current: Option<OrderStatus> = sqlx::query_scalar(
                "select status from orders where id = $1 and restaurant_id = $2 and deleted_at is null",
            )
            .bind(order_id)
            .bind(restaurant_id)
            .fetch_optional(&mut *tx)
            .await?;
            return match current {
                None => Err(AppError::not_found("order not found")),
                // A retried tablet action: nothing to do, and nothing to tell anyone.
                Some(from) if from == to => {
                    let order = fetch_order(&mut tx, order_id)
                        .await?
                        .ok_or(sqlx::Error::RowNotFound)?;
                    Ok(Moved {
                        previous: from,
                        order,
                        table_ready: None,
                        changed: false,
                    })
                }
                Some(from) => Err(transition_error(from, to)),
            };
        };
        let order = fetch_order(&mut tx, order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let table_ready = if to == OrderStatus::Ready {
            check_table_ready(&mut tx, &order).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(Moved {
            previous,
            order,
            table_ready,
            changed: true,
        })
    }

    /// Completes every active order of a table; returns them with their previous status.
    pub async fn complete_table(
        &self,
        restaurant_id: Uuid,
        table: &str,
    ) -> Result<Vec<(OrderStatus, Order)>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let moved: Vec<(Uuid, OrderStatus)> = sqlx::query_as(
            "with prev as (
                select id, status from orders
                where restaurant_id = $1 and table_number = $2 and deleted_at is null
                  and status not in ('completed', 'cancelled')
                for update
             )
             update orders o set status = 'completed', updated_at = now() from prev
             where o.id = prev.id and prev.status not in ('completed', 'cancelled')
             returning o.id, prev.status",
        )
        .bind(restaurant_id)
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(moved.len());
        for (id, previous) in moved {
            if let Some(order) = fetch_order(&mut tx, id).await? {
                out.push((previous, order));
            }
        }
        tx.commit().await?;
        out.sort_by_key(|(_, o)| (o.created_at, o.id));
        Ok(out)
    }

    /// Applies a PATCH under a row lock; the status rule is checked on the locked row.
    pub async fn patch_order(&self, order_id: Uuid, patch: &PatchOrder) -> AppResult<Patched> {
        let mut tx = self.pool.begin().await?;
        let current = fetch_order_for_update(&mut tx, order_id)
            .await?
            .ok_or_else(|| AppError::not_found("order not found"))?;
        let mut changes = Vec::new();
        let mut previous_status = None;
        if let Some(to) = patch.status
            && to != current.status
        {
            if !current.status.can_move_to(to) {
                return Err(transition_error(current.status, to));
            }
            sqlx::query("update orders set status = $2 where id = $1")
                .bind(order_id)
                .bind(to)
                .execute(&mut *tx)
                .await?;
            previous_status = Some(current.status);
            changes.push("status");
        }
        if let Some(items) = &patch.items {
            sqlx::query("delete from order_items where order_id = $1")
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
            insert_items(&mut tx, order_id, items).await?;
            changes.push("items");
        }
        if let Some(table) = &patch.table_number
            && current.table_number != *table
        {
            sqlx::query("update orders set table_number = $2 where id = $1")
                .bind(order_id)
                .bind(table)
                .execute(&mut *tx)
                .await?;
            changes.push("table_number");
        }
        if !changes.is_empty() {
            sqlx::query("update orders set updated_at = now() where id = $1")
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
        }
        let order = fetch_order(&mut tx, order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let table_ready = if previous_status.is_some() && order.status == OrderStatus::Ready {
            check_table_ready(&mut tx, &order).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(Patched {
            order,
            changes,
            previous_status,
            table_ready,
        })
    }

    /// Takes an order off the board (kept for audit). `None` if it was not on it.
    pub async fn mark_order_deleted(
        &self,
        order_id: Uuid,
        reason: Option<&str>,
    ) -> Result<Option<Order>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let Some(order) = fetch_order_for_update(&mut tx, order_id).await? else {
            return Ok(None);
        };
        sqlx::query("update orders set deleted_at = now(), deleted_reason = $2, updated_at = now() where id = $1")
            .bind(order_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(order))
    }
}

fn transition_error(from: OrderStatus, to: OrderStatus) -> AppError {
    let name = |s: OrderStatus| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    AppError::InvalidTransition(
        format!("status: cannot move from {} to {}", name(from), name(to)).into(),
    )
}

/// A new order's own columns, bound as one JSON record and read back by name
/// (`jsonb_to_record`), so the statement names each column once.
#[derive(Serialize)]
struct NewOrderRow<'a> {
    restaurant_id: Uuid,
    order_number: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    table_number: Option<&'a str>,
    total: f64,
    customer_id: Option<String>,
}

/// New items as the column arrays `insert_items_sql!` takes, each with a fresh id.
struct ItemColumns<'a> {
    ids: Vec<Uuid>,
    names: Vec<&'a str>,
    quantities: Vec<i32>,
    stations: Vec<&'static str>,
    notes: Vec<Option<&'a str>>,
}

impl<'a> ItemColumns<'a> {
    fn of(items: &'a [NewItem]) -> Self {
        ItemColumns {
            ids: items.iter().map(|_| Uuid::now_v7()).collect(),
            names: items.iter().map(|i| i.name.as_str()).collect(),
            quantities: items.iter().map(|i| i.quantity).collect(),
            stations: items.iter().map(|i| i.station.as_str()).collect(),
            notes: items.iter().map(|i| i.notes.as_deref()).collect(),
        }
    }
}

async fn insert_items(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    items: &[NewItem],
) -> Result<(), sqlx::Error> {
    let items = ItemColumns::of(items);
    sqlx::query(insert_items_sql!())
        .bind(order_id)
        .bind(items.ids)
        .bind(items.names)
        .bind(items.quantities)
        .bind(items.stations)
        .bind(items.notes)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn fetch_order(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<Order>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(concat!(order_select!(), "where o.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(Order::from))
}

async fn fetch_order_for_update(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<Order>, sqlx::Error> {
    let locked: Option<Uuid> =
        sqlx::query_scalar("select id from orders where id = $1 and deleted_at is null for update")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    match locked {
        Some(id) => fetch_order(tx, id).await,
        None => Ok(None),
    }
}

/// After an order became ready: are all active orders of its table ready now? The
/// table lock makes exactly one of two concurrent "last order ready" moves see it.
async fn check_table_ready(
    tx: &mut Transaction<'_, Postgres>,
    order: &Order,
) -> Result<Option<TableReady>, sqlx::Error> {
    let Some(table) = &order.table_number else {
        return Ok(None);
    };
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 0))")
        .bind(order.restaurant_id)
        .bind(table)
        .execute(&mut **tx)
        .await?;
    let rows: Vec<OrderRow> = sqlx::query_as(concat!(
        order_select!(),
        "where o.restaurant_id = $1 and o.table_number = $2 and o.deleted_at is null
           and o.status not in ('completed', 'cancelled')
         order by o.created_at, o.id"
    ))
    .bind(order.restaurant_id)
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    let orders: Vec<Order> = rows.into_iter().map(Order::from).collect();
    if !orders.is_empty() && orders.iter().all(|o| o.status == OrderStatus::Ready) {
        Ok(Some(TableReady {
            table_number: table.clone(),
            orders,
        }))
    } else {
        Ok(None)
    }
}
