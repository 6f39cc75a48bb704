//! Restaurant namespaces end to end (contract §6, §9's restaurant details, §8's order
//! routes): `/`, `/restaurant` and `/restaurants/<id>` as a kitchen tablet sees them, a
//! real server, a real database per test. One file a part of the contract:
//!
//! * `access`: who may connect, join and move orders; refusals and payload errors (§6, §9);
//! * `dynamic`: `/restaurants/<id>`, admitted or refused, mounted and unmounted (§6, §9);
//! * `rooms`: order events and alerts to restaurant and station rooms, each once (§6, §9);
//! * `sync`: `orders:sync`, its cap and its implied restaurant (§6, §9);
//! * `moves`: `order:update_status`, forward only, once under races (§6);
//! * `tables`: `table:ready`, `table:complete` and table numbers (§6, §9, §8);
//! * `batch`: batch mode and its flush at shutdown (§6, §9);
//! * `rest`: the REST order routes and the REST board (§8, §9).
//!
//! This file holds what they share: order and tablet fixtures, ack assertions.

mod access;
mod batch;
mod dynamic;
mod moves;
mod rest;
mod rooms;
mod sync;
mod tables;

use crate::support::*;
use serde_json::{Value, json};
use uuid::Uuid;

fn manager(user: i64, restaurants: &[Uuid]) -> String {
    sign(
        json!({ "sub": user, "roles": ["manager"], "restaurants": restaurants, "exp": now_secs() + 3600 }),
    )
}

async fn create_order(
    server: &TestServer,
    restaurant: Uuid,
    table: Option<&str>,
    stations: &[&str],
) -> Value {
    let items: Vec<Value> = stations
        .iter()
        .enumerate()
        .map(|(i, s)| json!({ "name": format!("dish {i}"), "quantity": 1, "station": s }))
        .collect();
    let body = json!({ "order_number": 7, "type": "dine_in", "table_number": table, "items": items, "total": 23.5 });
    post_order(server, restaurant, &body).await
}

/// What `join:station` and `leave:station` take.
fn at_station(restaurant: Uuid, station: &str) -> Value {
    json!({ "restaurantId": restaurant, "station": station })
}

/// A KDS client on `ns` for `restaurant`.
async fn tablet(server: &TestServer, ns: &str, restaurant: Uuid) -> SioClient {
    server.client_with(ns, &staff(10, &[restaurant])).await
}

#[track_caller]
fn assert_success(ack: &Value) -> Value {
    assert_eq!(ack["success"], json!(true), "expected success, got {ack}");
    ack.get("data").cloned().unwrap_or(Value::Null)
}

#[track_caller]
fn assert_failure(ack: &Value, code: &str) {
    assert_eq!(ack["success"], json!(false), "expected failure, got {ack}");
    assert_eq!(ack["error"]["code"], json!(code), "wrong code in {ack}");
}

/// `event` with `payload`, which must succeed: the ack's `data`.
async fn succeeds(c: &SioClient, event: &str, payload: Value) -> Value {
    let ack = c.emit_ack(event, payload.clone()).await;
    assert_eq!(ack["success"], json!(true), "{event} {payload}: {ack}");
    assert_success(&ack)
}

/// `event` with `payload`, which must fail with `code`.
async fn fails(c: &SioClient, event: &str, payload: Value, code: &str) {
    let ack = c.emit_ack(event, payload.clone()).await;
    assert_eq!(
        ack["error"]["code"],
        json!(code),
        "{event} {payload}: {ack}"
    );
    assert_failure(&ack, code);
}

async fn update_status(c: &SioClient, restaurant: Uuid, order: &Value, status: &str) -> Value {
    c.emit_ack(
        "order:update_status",
        json!({ "orderId": order["id"], "status": status, "restaurantId": restaurant }),
    )
    .await
}
