//! `orders:sync` (contract §6, §9's oldest first): active orders oldest first, the
//! 500-order cap, the restaurant a socket is on when the payload names none, and a
//! tablet's events handled in the order it sent them.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test]
async fn sync_lists_active_orders_oldest_first(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let first = create_order(&server, r, Some("1"), &["kitchen"]).await;
    let second = create_order(&server, r, Some("2"), &["bar"]).await;
    let done = create_order(&server, r, Some("3"), &["bar"]).await;
    let c = tablet(&server, "/", r).await;
    assert_success(&update_status(&c, r, &done, "completed").await);
    let ack = c
        .emit_ack("orders:sync", json!({ "restaurantId": r }))
        .await;
    let data = assert_success(&ack);
    assert_eq!(c.recv("orders:sync:complete").await, data);
    let ids: Vec<&Value> = data["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(ids, [&first["id"], &second["id"]]);
    assert!(data["syncedAt"].as_str().unwrap().ends_with('Z'));
    let only_done = succeeds(
        &c,
        "orders:sync",
        json!({ "restaurantId": r, "statuses": ["completed"] }),
    )
    .await;
    assert_eq!(only_done["orders"][0]["id"], done["id"]);
    fails(
        &c,
        "orders:sync",
        json!({ "restaurantId": r, "statuses": ["eaten"] }),
        "INVALID_PAYLOAD",
    )
    .await;
}

/// A board with more active orders than one reply may carry gets the oldest 500 and
/// `truncated: true`; a board under the cap says `truncated: false`.
#[sqlx::test]
async fn sync_stops_at_500_orders_and_says_so(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    sqlx::query(
        "insert into orders (id, restaurant_id, order_number, type, total, created_at)
         select gen_random_uuid(), $1, n::text, 'takeout', 1, now() - make_interval(secs => 1000 - n)
         from generate_series(1, 501) n",
    )
    .bind(r)
    .execute(&pool)
    .await
    .unwrap();
    let c = tablet(&server, "/", r).await;
    let data = succeeds(&c, "orders:sync", json!({ "restaurantId": r })).await;
    let orders = data["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 500);
    assert_eq!(data["truncated"], true);
    assert_eq!(orders[0]["order_number"], "1", "oldest first");
    assert_eq!(orders[499]["order_number"], "500");
    // The REST twin is capped the same way and says so in a header.
    let res = server
        .get(&format!("/api/restaurants/{r}/orders"), &service())
        .await;
    assert_eq!(
        res.headers()
            .get("x-truncated")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        500
    );
    sqlx::query("update orders set status = 'completed' where order_number = '1'")
        .execute(&pool)
        .await
        .unwrap();
    let data = succeeds(&c, "orders:sync", json!({ "restaurantId": r })).await;
    assert_eq!(data["orders"].as_array().unwrap().len(), 500);
    assert_eq!(data["truncated"], false);
    let res = server
        .get(&format!("/api/restaurants/{r}/orders"), &service())
        .await;
    assert!(res.headers().get("x-truncated").is_none());
}

/// Seed 001's reconnect recipe: `join:restaurant`, then `orders:sync` with no payload at
/// all (and no ack): the socket's own board is synced.
#[sqlx::test]
async fn orders_sync_without_a_payload_syncs_the_board_the_socket_is_on(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, Some("4"), &["kitchen"]).await;
    let elsewhere = create_order(&server, other, Some("5"), &["bar"]).await;
    let tok = staff(10, &[r, other]);
    let ids = |data: &Value| -> Vec<Value> {
        data["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].clone())
            .collect()
    };

    // On `/` before any join there is no board: the error says what to do.
    let c = server.client_with("/", &tok).await;
    let ack = c.emit_ack_args("orders:sync", vec![]).await;
    assert_failure(&ack, "INVALID_PAYLOAD");
    let message = ack["error"]["message"].as_str().unwrap();
    assert!(message.contains("join:restaurant"), "{message}");
    c.expect_none("orders:sync:complete", QUIET).await;

    // The recipe as the seed writes it: no payload, no ack, the answer is the event.
    succeeds(&c, "join:restaurant", json!(r.to_string())).await;
    c.emit_args("orders:sync", vec![]).await;
    let synced = c.recv("orders:sync:complete").await;
    assert_eq!(synced["restaurantId"], json!(r));
    assert_eq!(ids(&synced), [order["id"].clone()]);

    // Joining another board (batch mode included) moves the sync with it.
    succeeds(
        &c,
        "join:restaurant",
        json!({ "restaurantId": other, "batch": true }),
    )
    .await;
    let data = succeeds(&c, "orders:sync", json!({})).await;
    assert_eq!(data["restaurantId"], json!(other));
    assert_eq!(ids(&data), [elsewhere["id"].clone()]);

    // On `/restaurants/<id>`: that restaurant, without a join; a named one still wins.
    let d = server.client_with(&format!("/restaurants/{r}"), &tok).await;
    let data = assert_success(&d.emit_ack_args("orders:sync", vec![]).await);
    assert_eq!(data["restaurantId"], json!(r));
    assert_eq!(ids(&data), [order["id"].clone()]);
    let data = succeeds(&d, "orders:sync", json!({ "restaurantId": other })).await;
    assert_eq!(data["restaurantId"], json!(other));
    // Access is checked for the implied restaurant as for a named one.
    let outsider = server
        .client_with(&format!("/restaurants/{r}"), &staff(11, &[r]))
        .await;
    assert_success(&outsider.emit_ack_args("orders:sync", vec![]).await);
    fails(
        &outsider,
        "orders:sync",
        json!({ "restaurantId": other }),
        "PERMISSION_DENIED",
    )
    .await;
}

/// A tablet's events are handled in the order it sent them: seed 001 emits
/// `join:restaurant` and `orders:sync` back to back without acks, and the sync must see
/// the join (which checks access in the database first). Likewise a move and the sync
/// right behind it.
#[sqlx::test]
async fn a_tablets_events_are_handled_in_the_order_it_sent_them(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, Some("9"), &["kitchen"]).await;
    for round in 0..5 {
        let c = tablet(&server, "/", r).await;
        c.emit("join:restaurant", json!(r.to_string())).await;
        c.emit_args("orders:sync", vec![]).await;
        let synced = c.recv("orders:sync:complete").await;
        assert_eq!(synced["restaurantId"], json!(r), "round {round}");
        c.expect_none("error", Duration::from_millis(50)).await;
    }
    let c = tablet(&server, "/", r).await;
    c.emit(
        "order:update_status",
        json!({ "orderId": order["id"], "status": "preparing", "restaurantId": r }),
    )
    .await;
    c.emit("orders:sync", json!({ "restaurantId": r })).await;
    let synced = c.recv("orders:sync:complete").await;
    assert_eq!(synced["orders"][0]["status"], "preparing");
}
