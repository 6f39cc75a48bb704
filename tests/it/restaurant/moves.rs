//! `order:update_status` (contract §6's order statuses): forward or to `cancelled` only, a
//! retried move a quiet success, and concurrent identical moves that move and broadcast
//! once.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn status_moves_forward_or_to_cancelled_only(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    let c = tablet(&server, "/", r).await;
    succeeds(&c, "join:restaurant", json!(r.to_string())).await;
    let ack = update_status(&c, r, &order, "preparing").await;
    let changed = assert_success(&ack);
    assert_eq!(changed["orderId"], order["id"]);
    assert_eq!(changed["previousStatus"], "new");
    assert_eq!(changed["status"], "preparing");
    assert_eq!(changed["restaurant_id"], json!(r));
    assert_eq!(c.recv("order:status_changed").await, changed);
    assert_failure(
        &update_status(&c, r, &order, "confirmed").await,
        "INVALID_TRANSITION",
    );
    // A retried move to the status the order already has: success, nothing broadcast.
    let again = assert_success(&update_status(&c, r, &order, "preparing").await);
    assert_eq!(again["previousStatus"], "preparing");
    assert_eq!(again["status"], "preparing");
    c.expect_none("order:status_changed", QUIET).await;
    assert_success(&update_status(&c, r, &order, "cancelled").await);
    assert_failure(
        &update_status(&c, r, &order, "completed").await,
        "INVALID_TRANSITION",
    );
    assert_failure(
        &update_status(&c, r, &json!({ "id": Uuid::new_v4() }), "ready").await,
        "NOT_FOUND",
    );
    // The order must belong to the restaurant named.
    let other = create_restaurant(&server, "Bistro").await;
    let admin = server.client_with("/", &token(3, &["admin"])).await;
    let foreign = create_order(&server, other, None, &["bar"]).await;
    assert_failure(
        &update_status(&admin, r, &foreign, "ready").await,
        "NOT_FOUND",
    );
}

#[sqlx::test]
async fn concurrent_identical_moves_move_once_and_broadcast_once(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let mut tablets = vec![];
    for _ in 0..8 {
        tablets.push(tablet(&server, "/", r).await);
    }
    let watcher = tablet(&server, "/", r).await;
    succeeds(&watcher, "join:restaurant", json!(r.to_string())).await;
    for round in 0..5 {
        let order = create_order(&server, r, None, &["kitchen"]).await;
        let acks = futures_util::future::join_all(
            tablets
                .iter()
                .map(|t| update_status(t, r, &order, "preparing")),
        )
        .await;
        // Every tablet's tap succeeds (the order is where it asked), but only one of
        // them moved it, and only that one is broadcast.
        assert!(
            acks.iter().all(|a| a["success"] == true),
            "round {round}: {acks:?}"
        );
        let movers = acks
            .iter()
            .filter(|a| a["data"]["previousStatus"] == "new")
            .count();
        assert_eq!(movers, 1, "round {round}: {acks:?}");
        watcher.recv("order:status_changed").await;
        watcher
            .expect_none("order:status_changed", Duration::from_millis(200))
            .await;
    }
}
