//! Where restaurant events go (contract §6's rooms and server-side events, §9's routing):
//! order events to the restaurant room and the station rooms of their items, each socket
//! once; restaurants isolated from each other; alerts to station-only tablets too.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn order_events_reach_restaurant_and_station_rooms_once(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let both = tablet(&server, "/", r).await;
    succeeds(&both, "join:restaurant", json!({ "restaurantId": r })).await;
    succeeds(&both, "join:station", at_station(r, "kitchen")).await;
    let bar = tablet(&server, "/restaurant", r).await;
    succeeds(&bar, "join:station", at_station(r, "bar")).await;
    let expo = tablet(&server, "/", r).await;
    succeeds(&expo, "join:station", at_station(r, "expo")).await;
    fails(
        &expo,
        "join:station",
        at_station(r, "grill"),
        "INVALID_PAYLOAD",
    )
    .await;

    let order = create_order(&server, r, Some("1"), &["kitchen", "bar", "kitchen"]).await;
    assert_eq!(order["status"], "new");
    assert_eq!(order["total"], json!(23.5));
    assert_eq!(order["order_number"], "7");
    assert_eq!(order["items"].as_array().unwrap().len(), 3);
    assert_eq!(both.recv("order:created").await, order);
    assert_eq!(bar.recv("order:created").await, order);
    both.expect_none("order:created", QUIET).await;
    bar.expect_none("order:created", Duration::from_millis(50))
        .await;
    expo.expect_none("order:created", Duration::from_millis(50))
        .await;
}

#[sqlx::test]
async fn restaurants_are_isolated(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let a = create_restaurant(&server, "Bistro").await;
    let b = create_restaurant(&server, "Bistro").await;
    let c = server.client_with("/", &staff(1, &[a, b])).await;
    succeeds(&c, "join:restaurant", json!(a.to_string())).await;
    succeeds(&c, "join:station", at_station(a, "kitchen")).await;
    let only_b = tablet(&server, &format!("/restaurants/{b}"), b).await;
    create_order(&server, b, None, &["kitchen"]).await;
    only_b.recv("order:created").await;
    c.expect_none("order:created", QUIET).await;
    // Switching to B leaves every room of A.
    succeeds(&c, "join:restaurant", json!({ "restaurantId": b })).await;
    create_order(&server, a, None, &["kitchen"]).await;
    c.expect_none("order:created", QUIET).await;
    let from_b = create_order(&server, b, None, &["bar"]).await;
    assert_eq!(c.recv("order:created").await, from_b);
}

#[sqlx::test]
async fn alerts_reach_station_only_tablets_too(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let bar = tablet(&server, "/", r).await;
    succeeds(&bar, "join:station", at_station(r, "bar")).await;
    let alert =
        json!({ "type": "info", "message": "86 the salmon", "severity": 2, "tableNumber": 4 });
    let res = server
        .post(
            &format!("/api/restaurants/{r}/alerts"),
            &staff(1, &[r]),
            &alert,
        )
        .await;
    assert_eq!(res.status(), 201);
    let got = bar.recv("kitchen:alert").await;
    assert_eq!(got["message"], "86 the salmon");
    assert_eq!(got["tableNumber"], "4");
    bar.expect_none("kitchen:alert", QUIET).await;
}
