//! Tables (contract §6's `table:complete` and `table:ready`, §9's restaurant details, §8's
//! `PATCH /api/orders/:id`): `table:ready` once when a table's last active order is ready,
//! `table:complete` completing its active orders, and table numbers moved, cleared or
//! refused when too long.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn table_ready_fires_once_when_the_last_active_order_is_ready(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let a = create_order(&server, r, Some("5"), &["kitchen"]).await;
    let b = create_order(&server, r, Some("5"), &["bar"]).await;
    let elsewhere = create_order(&server, r, Some("6"), &["bar"]).await;
    let pos = tablet(&server, "/", r).await;
    succeeds(&pos, "join:restaurant", json!(r.to_string())).await;
    assert_success(&update_status(&pos, r, &elsewhere, "preparing").await);
    assert_success(&update_status(&pos, r, &a, "ready").await);
    pos.expect_none("table:ready", QUIET).await;
    assert_success(&update_status(&pos, r, &b, "ready").await);
    let ready = pos.recv("table:ready").await;
    assert_eq!(ready["tableNumber"], "5");
    assert_eq!(ready["orderIds"], json!([a["id"], b["id"]]));
    assert!(ready["readyAt"].as_str().unwrap().ends_with('Z'));
    pos.expect_none("table:ready", QUIET).await;

    // Two last orders made ready at the same time still announce the table once.
    let c1 = create_order(&server, r, Some("8"), &["kitchen"]).await;
    let c2 = create_order(&server, r, Some("8"), &["kitchen"]).await;
    let other_tablet = tablet(&server, "/", r).await;
    let (x, y) = tokio::join!(
        update_status(&pos, r, &c1, "ready"),
        update_status(&other_tablet, r, &c2, "ready")
    );
    assert_success(&x);
    assert_success(&y);
    assert_eq!(pos.recv("table:ready").await["tableNumber"], "8");
    pos.expect_none("table:ready", QUIET).await;
}

#[sqlx::test]
async fn completing_a_table_completes_its_active_orders(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let a = create_order(&server, r, Some("9"), &["kitchen"]).await;
    let b = create_order(&server, r, Some("9"), &["bar"]).await;
    let kitchen = tablet(&server, "/", r).await;
    succeeds(&kitchen, "join:station", at_station(r, "kitchen")).await;
    let pos = tablet(&server, "/", r).await;
    succeeds(&pos, "join:restaurant", json!(r.to_string())).await;
    let ack = pos
        .emit_ack(
            "table:complete",
            json!({ "tableNumber": 9, "restaurantId": r }),
        )
        .await;
    let done = assert_success(&ack);
    assert_eq!(done["orderIds"], json!([a["id"], b["id"]]));
    assert_eq!(done["tableNumber"], "9");
    assert_eq!(pos.recv("table:completed").await, done);
    assert_eq!(kitchen.recv("table:completed").await, done);
    let changed: Vec<Value> = vec![
        pos.recv("order:status_changed").await,
        pos.recv("order:status_changed").await,
    ];
    assert!(changed.iter().all(|c| c["status"] == "completed"));
    assert_eq!(
        kitchen.recv("order:status_changed").await["orderId"],
        a["id"],
        "kitchen only hears its order"
    );
    kitchen.expect_none("order:status_changed", QUIET).await;
    let again = succeeds(
        &pos,
        "table:complete",
        json!({ "tableNumber": "9", "restaurantId": r }),
    )
    .await;
    assert_eq!(again["orderIds"], json!([]));
    pos.expect_none("table:completed", QUIET).await;
}

#[sqlx::test]
async fn patch_moves_or_clears_a_table_and_long_tables_are_refused(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, Some("12"), &["kitchen"]).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let pos = tablet(&server, "/", r).await;
    succeeds(&pos, "join:restaurant", json!(r.to_string())).await;
    let http = server.http();
    let url = server.url(&format!("/api/orders/{id}"));
    let patch = |body: Value| {
        http.patch(&url)
            .bearer_auth(staff(2, &[r]))
            .json(&body)
            .send()
    };
    let order_id = Uuid::parse_str(&id).unwrap();
    // (table, status) as stored.
    let stored = || async {
        sqlx::query_as::<_, (Option<String>, String)>(
            "select table_number, status::text from orders where id = $1",
        )
        .bind(order_id)
        .fetch_one(&pool)
        .await
        .unwrap()
    };

    // Moved: trimmed, as `table:complete` will look it up.
    let res = patch(json!({ "table_number": " 14 " })).await.unwrap();
    assert_eq!(res.status(), 200);
    let moved: Value = res.json().await.unwrap();
    assert_eq!(moved["table_number"], "14");
    let updated = pos.recv("order:updated").await;
    assert_eq!(updated["changes"], json!(["table_number"]));
    assert_eq!(updated["order"], moved);

    // Cleared with null: the order leaves the table, the field leaves the payload.
    let res = patch(json!({ "table_number": null })).await.unwrap();
    assert_eq!(res.status(), 200);
    let cleared: Value = res.json().await.unwrap();
    assert!(cleared.get("table_number").is_none(), "{cleared}");
    let updated = pos.recv("order:updated").await;
    assert_eq!(updated["changes"], json!(["table_number"]));
    assert_eq!(updated["order"], cleared);
    assert_eq!(stored().await.0, None);
    let done = succeeds(
        &pos,
        "table:complete",
        json!({ "tableNumber": 14, "restaurantId": r }),
    )
    .await;
    assert_eq!(done["orderIds"], json!([]), "the order is no longer at 14");

    // Clearing again, or a body without the field, changes nothing and says nothing.
    for body in [json!({ "table_number": null }), json!({})] {
        let res = patch(body).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    pos.expect_none("order:updated", QUIET).await;

    // "" clears as null does.
    assert_eq!(
        patch(json!({ "table_number": 3 })).await.unwrap().status(),
        200
    );
    pos.recv("order:updated").await;
    assert_eq!(
        patch(json!({ "table_number": "" })).await.unwrap().status(),
        200
    );
    assert_eq!(
        pos.recv("order:updated").await["changes"],
        json!(["table_number"])
    );
    assert_eq!(stored().await.0, None);

    // Longer than `table:complete` accepts (50): refused everywhere, nothing changes.
    let long = "7".repeat(51);
    let res = patch(json!({ "table_number": long, "status": "preparing" }))
        .await
        .unwrap();
    let message = bad_request(res, "a long table number").await;
    assert!(message.contains("table_number"), "{message}");
    assert_eq!(stored().await, (None, "new".to_owned()));
    let res = http
        .post(server.url(&format!("/api/restaurants/{r}/orders")))
        .bearer_auth(service())
        .json(
            &json!({ "order_number": 8, "type": "dine_in", "table_number": long,
            "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }], "total": 5 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    let res = http
        .post(server.url(&format!("/api/restaurants/{r}/alerts")))
        .bearer_auth(staff(2, &[r]))
        .json(&json!({ "type": "info", "message": "table?", "severity": 1, "tableNumber": long }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    pos.expect_none("order:updated", QUIET).await;
    pos.expect_none("order:created", Duration::from_millis(50))
        .await;
    pos.expect_none("kitchen:alert", Duration::from_millis(50))
        .await;
}
