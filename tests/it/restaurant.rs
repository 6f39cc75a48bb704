//! Restaurant namespaces end to end: `/`, `/restaurant`, `/restaurants/<id>`, station
//! routing, status moves, tables, batch mode, isolation and the REST routes.
//!
//! Past 400 lines: one test per restaurant contract row (namespaces, stations, moves,
//! tables, batch mode); each test reads alone.

use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
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

#[sqlx::test]
async fn join_restaurant_checks_access_before_existence(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mine = create_restaurant(&server, "Bistro").await;
    let theirs = create_restaurant(&server, "Bistro").await;
    let unknown = Uuid::new_v4();
    let c = server.client_with("/", &staff(1, &[mine, unknown])).await;
    let ack = c.emit_ack("join:restaurant", json!(mine.to_string())).await;
    assert_eq!(
        assert_success(&ack),
        json!({ "room": format!("restaurant:{mine}") })
    );
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": theirs }),
        "PERMISSION_DENIED",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": Uuid::new_v4() }),
        "PERMISSION_DENIED",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": unknown }),
        "INVALID_RESTAURANT",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!("not-a-uuid"),
        "INVALID_PAYLOAD",
    )
    .await;
    fails(&c, "orders:explode", json!({}), "INVALID_PAYLOAD").await;
    let admin = server
        .client_with("/restaurant", &token(2, &["admin"]))
        .await;
    succeeds(&admin, "join:restaurant", json!({ "restaurantId": theirs })).await;
}

#[sqlx::test]
async fn restaurant_namespaces_refuse_bad_tokens_with_auth_failed(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    for ns in ["/", "/restaurant", &format!("/restaurants/{r}")] {
        assert_eq!(
            refusal(&server, ns, Some("nope")).await,
            "AUTH_FAILED",
            "{ns}"
        );
    }
}

#[sqlx::test]
async fn dynamic_namespace_admits_only_accessible_existing_restaurants(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let ghost = Uuid::new_v4();
    let refused = |ns: String, token: String| {
        let server = &server;
        async move { refusal(server, &ns, Some(&token)).await }
    };
    assert_eq!(
        refused(format!("/restaurants/{other}"), staff(1, &[r])).await,
        "PERMISSION_DENIED"
    );
    assert_eq!(
        refused(format!("/restaurants/{ghost}"), staff(1, &[r])).await,
        "PERMISSION_DENIED"
    );
    assert_eq!(
        refused(format!("/restaurants/{ghost}"), staff(1, &[ghost])).await,
        "INVALID_RESTAURANT"
    );
    assert_eq!(
        refused("/restaurants/not-a-uuid".into(), token(1, &["admin"])).await,
        "INVALID_RESTAURANT"
    );

    // Admitted sockets are in the restaurant room at once, without joining.
    let c = tablet(&server, &format!("/restaurants/{r}"), r).await;
    let order = create_order(&server, r, Some("4"), &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
}

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

/// A server with batch windows of `window_ms`, a restaurant, and a tablet of it that
/// joined in batch mode.
async fn batch_tablet(pool: PgPool, window_ms: &str) -> (TestServer, Uuid, SioClient) {
    let server = TestServer::start_with(pool, &[("ORDER_BATCH_MS", window_ms)]).await;
    let r = create_restaurant(&server, "Bistro").await;
    let kds = tablet(&server, "/", r).await;
    let join = json!({ "restaurantId": r, "batch": true });
    succeeds(&kds, "join:restaurant", join).await;
    (server, r, kds)
}

#[sqlx::test]
async fn batch_mode_delivers_arrays_in_order_and_alerts_at_once(pool: PgPool) {
    let (server, r, kds) = batch_tablet(pool, "300").await;
    succeeds(&kds, "join:station", at_station(r, "kitchen")).await;
    let mut created = vec![];
    for _ in 0..3 {
        created.push(create_order(&server, r, None, &["kitchen"]).await);
    }
    let alert = json!({ "type": "urgent", "message": "fire on the grill", "severity": 5 });
    let res = server
        .post(&format!("/api/restaurants/{r}/alerts"), &service(), &alert)
        .await;
    assert_eq!(res.status(), 201);
    // The alert is not delayed: it arrives before the batch window closes.
    assert_eq!(
        kds.recv_timeout("kitchen:alert", Duration::from_millis(250))
            .await,
        Some(alert)
    );
    let mut items = vec![];
    while items.len() < 3 {
        let batch = kds
            .recv_timeout("orders:batch_update", Duration::from_secs(2))
            .await
            .expect("a batch");
        items.extend(batch.as_array().unwrap().clone());
    }
    let expected: Vec<Value> = created
        .iter()
        .map(|o| json!({ "event": "order:created", "data": o }))
        .collect();
    assert_eq!(items, expected, "every event once, in order");
    kds.expect_none("order:created", Duration::from_millis(50))
        .await;

    // Without `batch` the socket is back to single events.
    succeeds(&kds, "join:restaurant", json!({ "restaurantId": r })).await;
    let single = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(kds.recv("order:created").await, single);
    kds.expect_none("orders:batch_update", Duration::from_millis(700))
        .await;
}

/// Shutdown delivers what batch windows hold before the sockets are closed: a tablet
/// in batch mode with a long window still gets the order created just before.
#[sqlx::test]
async fn shutdown_flushes_open_batch_windows(pool: PgPool) {
    let (server, r, kds) = batch_tablet(pool, "60000").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    kds.expect_none("orders:batch_update", Duration::from_millis(200))
        .await;
    server.stop().await.unwrap();
    let batch = kds
        .recv_timeout("orders:batch_update", Duration::from_secs(2))
        .await
        .expect("the open window, delivered at shutdown");
    assert_eq!(batch, json!([{ "event": "order:created", "data": order }]));
}

#[sqlx::test]
async fn rest_order_routes_enforce_roles_and_announce_changes(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let http = server.http();
    let body = json!({ "order_number": "A1", "type": "takeout", "items": [{ "name": "Tea", "quantity": 2, "station": "bar" }], "total": 4 });
    let post = |t: String| {
        http.post(server.url(&format!("/api/restaurants/{r}/orders")))
            .bearer_auth(t)
            .json(&body)
            .send()
    };
    assert_eq!(post(token(1, &["user"])).await.unwrap().status(), 403);
    assert_eq!(
        post(sign(
            json!({ "sub": 1, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 60 })
        ))
        .await
        .unwrap()
        .status(),
        403
    );
    let res = post(staff(2, &[r])).await.unwrap();
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    let ghost = Uuid::new_v4();
    let res = http
        .post(server.url(&format!("/api/restaurants/{ghost}/orders")))
        .bearer_auth(service())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let bad = json!({ "order_number": "A2", "type": "takeout", "items": [], "total": 4 });
    let res = http
        .post(server.url(&format!("/api/restaurants/{r}/orders")))
        .bearer_auth(service())
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let bar = tablet(&server, "/", r).await;
    succeeds(&bar, "join:station", at_station(r, "bar")).await;
    let url = server.url(&format!("/api/orders/{}", order["id"].as_str().unwrap()));
    let patch = json!({ "status": "preparing", "items": [{ "name": "Coffee", "quantity": 1, "station": "bar", "notes": "oat" }] });
    let res = http
        .patch(&url)
        .bearer_auth(staff(2, &[r]))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["status"], "preparing");
    let updated = bar.recv("order:updated").await;
    assert_eq!(updated["changes"], json!(["status", "items"]));
    assert_eq!(updated["order"], patched);
    assert_eq!(updated["updatedBy"], "2");
    assert_eq!(
        bar.recv("order:status_changed").await["previousStatus"],
        "new"
    );
    let res = http
        .patch(&url)
        .bearer_auth(staff(2, &[r]))
        .json(&json!({ "status": "new" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "INVALID_TRANSITION");

    assert_eq!(
        http.delete(&url)
            .bearer_auth(staff(2, &[r]))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = http
        .delete(&url)
        .bearer_auth(manager(3, &[r]))
        .json(&json!({ "reason": "customer left" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let deleted = bar.recv("order:deleted").await;
    assert_eq!(deleted["orderId"], order["id"]);
    assert_eq!(deleted["reason"], "customer left");
    assert_eq!(
        http.delete(&url)
            .bearer_auth(service())
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let kept: i64 = sqlx::query_scalar("select count(*) from orders where deleted_at is not null")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "deleted orders stay for audit");
    let sync = succeeds(&bar, "orders:sync", json!({ "restaurantId": r })).await;
    assert_eq!(sync["orders"], json!([]));
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

#[sqlx::test]
async fn a_dynamic_namespace_socket_can_follow_another_restaurant(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let a = create_restaurant(&server, "Bistro").await;
    let b = create_restaurant(&server, "Bistro").await;
    let c = server
        .client_with(&format!("/restaurants/{a}"), &staff(1, &[a, b]))
        .await;
    succeeds(&c, "join:restaurant", json!({ "restaurantId": b })).await;
    let order = create_order(&server, b, None, &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
    create_order(&server, a, None, &["kitchen"]).await;
    c.expect_none("order:created", QUIET).await;
}

#[sqlx::test]
async fn payload_errors_name_the_field_in_the_restaurant_dialect(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let c = tablet(&server, "/", r).await;
    for payload in [json!("nope"), json!({ "restaurantId": 7 }), json!({})] {
        let ack = c.emit_ack("join:restaurant", payload.clone()).await;
        assert_failure(&ack, "INVALID_PAYLOAD");
        assert!(
            ack["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("restaurantId"),
            "{payload} -> {ack}"
        );
    }
    let ack = c
        .emit_ack("table:complete", json!({ "restaurantId": r }))
        .await;
    assert_failure(&ack, "INVALID_PAYLOAD");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tableNumber"),
        "{ack}"
    );
}

#[sqlx::test]
async fn rest_checks_rights_before_the_body_and_hides_other_restaurants_orders(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let a = create_restaurant(&server, "Bistro").await;
    let b = create_restaurant(&server, "Bistro").await;
    let order_b = create_order(&server, b, None, &["kitchen"]).await;
    let http = server.http();
    // No rights: 403 even though the body is invalid.
    let res = http
        .post(server.url(&format!("/api/restaurants/{b}/orders")))
        .bearer_auth(staff(1, &[a]))
        .json(&json!({ "garbage": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .post(server.url("/api/restaurants"))
        .bearer_auth(staff(1, &[a]))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // An order of a restaurant outside the token is not found, not forbidden.
    let url = server.url(&format!("/api/orders/{}", order_b["id"].as_str().unwrap()));
    let res = http
        .patch(&url)
        .bearer_auth(staff(1, &[a]))
        .json(&json!({ "status": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // In the token but only a `user`: forbidden.
    let user_b =
        sign(json!({ "sub": 2, "roles": ["user"], "restaurants": [b], "exp": now_secs() + 60 }));
    let res = http
        .patch(&url)
        .bearer_auth(user_b)
        .json(&json!({ "status": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
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

#[sqlx::test]
async fn a_user_role_may_watch_a_board_but_not_change_its_orders(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, Some("4"), &["kitchen"]).await;
    let id = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let user =
        sign(json!({ "sub": 2, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 600 }));
    let watcher = server.client_with("/", &user).await;
    // Reading and joining stay open to it.
    succeeds(&watcher, "join:restaurant", json!(r.to_string())).await;
    succeeds(&watcher, "orders:sync", json!({ "restaurantId": r })).await;
    let dynamic = server
        .client_with(&format!("/restaurants/{r}"), &user)
        .await;
    for c in [&watcher, &dynamic] {
        assert_failure(
            &update_status(c, r, &order, "preparing").await,
            "PERMISSION_DENIED",
        );
        fails(
            c,
            "table:complete",
            json!({ "tableNumber": "4", "restaurantId": r }),
            "PERMISSION_DENIED",
        )
        .await;
    }
    let status: String = sqlx::query_scalar("select status::text from orders where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "new", "a refused write changed the order");
    watcher.expect_none("order:status_changed", QUIET).await;
    watcher.expect_none("table:completed", QUIET).await;
    // Staff, manager, admin and service may.
    let tokens = [
        staff(3, &[r]),
        manager(4, &[r]),
        token(5, &["admin"]),
        sign(
            json!({ "sub": 6, "roles": ["service"], "restaurants": [r], "exp": now_secs() + 600 }),
        ),
    ];
    let moves = ["pending", "confirmed", "preparing", "ready"];
    for (t, to) in tokens.iter().zip(moves) {
        let c = server.client_with("/", t).await;
        assert_success(&update_status(&c, r, &order, to).await);
    }
}

#[sqlx::test]
async fn refused_connects_leave_no_namespace_or_route_behind(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let mounted = metric(&server, NAMESPACES).await;
    assert_eq!(metric(&server, DYNAMIC_ROUTES).await, 0.0);
    let admin = token(1, &["admin"]);
    let mine = staff(1, &[r]);
    let long = "x".repeat(4000);
    let upper = r.to_string().to_uppercase();
    for _ in 0..10 {
        let stranger = format!("/restaurants/{}", Uuid::new_v4());
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            (stranger.clone(), None, "AUTH_FAILED"),
            (format!("/restaurants/{r}"), None, "AUTH_FAILED"),
            (stranger.clone(), Some("not.a.token"), "AUTH_FAILED"),
            (
                format!("/restaurants/{other}"),
                Some(&mine),
                "PERMISSION_DENIED",
            ),
            (
                format!("/restaurants/{long}"),
                Some(&admin),
                "INVALID_RESTAURANT",
            ),
            (stranger, Some(&admin), "INVALID_RESTAURANT"),
            // Other spellings of an accessible restaurant are refused, not mapped.
            (
                format!("/restaurants/{upper}"),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{{{r}}}"),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{}", r.urn()),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{}", r.simple()),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
        ];
        for (ns, token, code) in cases {
            assert_eq!(refusal(&server, &ns, token).await, code, "{ns}");
        }
    }
    let within = Duration::from_secs(5);
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;

    // An admitted socket holds its path and the restaurants it follows, until it goes.
    let c = server
        .client_with(&format!("/restaurants/{r}"), &staff(1, &[r, other]))
        .await;
    succeeds(&c, "join:restaurant", json!({ "restaurantId": other })).await;
    assert_eq!(metric(&server, NAMESPACES).await, mounted + 1.0);
    // The held path, and (r, path), (other, path).
    assert_eq!(metric(&server, DYNAMIC_ROUTES).await, 3.0);
    c.close().await;
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;
}

/// Connects a tablet on `ns`; the first attempt must be admitted (no transport closed
/// for it to retry on).
async fn tablet_at_once(base: &str, ns: &str, token: &str) -> SioClient {
    let opts = ConnectOptions {
        auth: Some(json!({ "token": token })),
        ..Default::default()
    };
    match SioClient::connect(base, ns, opts).await {
        Ok(c) => c,
        Err(e) => panic!("{ns}: a tablet was not admitted at once: {e}"),
    }
}

#[sqlx::test]
async fn refusals_never_delete_a_namespace_in_use_or_being_joined(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    let token = staff(1, &[r]);
    for _ in 0..20 {
        // Strangers refused on a quiet path while a tablet is being admitted there:
        // every one gets its own answer, the tablet is admitted at once.
        let strangers = futures_util::future::join_all((0..5).map(|_| refusal(&server, &ns, None)));
        let (codes, tablet) = tokio::join!(strangers, tablet_at_once(&server.base, &ns, &token));
        assert!(codes.iter().all(|c| c == "AUTH_FAILED"), "{codes:?}");
        // It sits on the namespace that events are sent to.
        let order = create_order(&server, r, None, &["kitchen"]).await;
        assert_eq!(tablet.recv("order:created").await, order);
        tablet.close().await;
    }
    let within = Duration::from_secs(5);
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;
}

#[sqlx::test]
async fn a_tablet_that_reconnects_the_moment_it_disconnects_is_admitted_every_time(pool: PgPool) {
    // A page reload: the old socket's hold goes as the new CONNECT arrives. The namespace
    // must still be there for the new socket, not deleted under it (which closed its
    // transport and made it reconnect).
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    let token = staff(1, &[r]);
    let mut tablet = tablet_at_once(&server.base, &ns, &token).await;
    // The server drops the old connection (a frame over the payload limit) and the
    // tablet reconnects as soon as it sees it go.
    let too_big = format!("42{ns},[\"x\",\"{}\"]", "z".repeat(1_000_001));
    for _ in 0..30 {
        tablet.send_raw(&too_big).await;
        assert!(tablet.wait_disconnected(Duration::from_secs(5)).await);
        tablet = tablet_at_once(&server.base, &ns, &token).await;
    }
    let order = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(tablet.recv("order:created").await, order);
    tablet.close().await;
    wait_metric(&server, NAMESPACES, mounted, Duration::from_secs(5)).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_database_fault_while_admitting_closes_the_transport_instead_of_refusing(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    // The existence check fails as it would with the database away.
    sqlx::query("alter table restaurants rename to restaurants_away")
        .execute(&pool)
        .await
        .unwrap();
    let opts = ConnectOptions {
        auth: Some(json!({ "token": staff(1, &[r]) })),
        ..Default::default()
    };
    match SioClient::connect(&server.base, &ns, opts).await {
        Err(ConnectError::Io(_)) => {}
        Err(ConnectError::Refused(code)) => {
            panic!("a database fault answered connect_error {code}: clients never retry")
        }
        Ok(_) => panic!("admitted without the existence check"),
    }
    wait_metric(&server, NAMESPACES, mounted, Duration::from_secs(5)).await;
    sqlx::query("alter table restaurants_away rename to restaurants")
        .execute(&pool)
        .await
        .unwrap();
    // Back: the same tablet is admitted and gets its restaurant's events.
    let c = tablet(&server, &ns, r).await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
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

/// Seed 001's `connection:status` after every admitted connect on a restaurant
/// namespace; the chat namespaces have no such event.
#[sqlx::test]
async fn restaurant_namespaces_say_connected(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    for ns in [
        "/".to_owned(),
        "/restaurant".to_owned(),
        format!("/restaurants/{r}"),
    ] {
        let c = tablet(&server, &ns, r).await;
        assert_eq!(
            c.recv("connection:status").await,
            json!({ "state": "connected" }),
            "on {ns}"
        );
    }
    let chat = server.client("/chat", 1).await;
    chat.expect_none("connection:status", QUIET).await;
}

/// A PATCH to the status the order already has changes nothing and tells nobody.
#[sqlx::test]
async fn a_patch_to_the_current_status_is_a_quiet_success(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    let board = tablet(&server, "/", r).await;
    succeeds(&board, "join:restaurant", json!(r.to_string())).await;
    let res = server
        .patch(
            &format!("/api/orders/{}", order["id"].as_str().unwrap()),
            &staff(2, &[r]),
            &json!({ "status": "new" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "new");
    assert_eq!(body["updated_at"], order["updated_at"]);
    board.expect_none("order:updated", QUIET).await;
    board.expect_none("order:status_changed", QUIET).await;
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

/// `GET /api/restaurants/:id/orders`: the board of `orders:sync` over REST, with status
/// and station filters, under the REST rights rules.
#[sqlx::test]
async fn the_rest_board_lists_what_orders_sync_does_with_filters(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let soup = create_order(&server, r, Some("1"), &["kitchen"]).await;
    let tea = create_order(&server, r, Some("2"), &["bar"]).await;
    let both = create_order(&server, r, Some("3"), &["kitchen", "bar"]).await;
    let c = tablet(&server, "/", r).await;
    assert_success(&update_status(&c, r, &soup, "completed").await);
    let get = |path: String, tok: String| {
        let request = server.request("GET", &path, Some(&tok));
        async move { status_and_json(request.send().await.unwrap()).await }
    };
    let path = format!("/api/restaurants/{r}/orders");
    let (status, board) = get(path.clone(), staff(10, &[r])).await;
    assert_eq!(status, 200);
    let synced = succeeds(&c, "orders:sync", json!({ "restaurantId": r })).await;
    assert_eq!(board, synced["orders"], "the same board as orders:sync");
    assert_eq!(board.as_array().unwrap().len(), 2);
    let ids = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].clone())
            .collect()
    };
    let (_, done) = get(format!("{path}?status=completed"), staff(10, &[r])).await;
    assert_eq!(ids(&done), [soup["id"].clone()]);
    let (_, mixed) = get(format!("{path}?status=new,completed"), staff(10, &[r])).await;
    assert_eq!(
        ids(&mixed),
        [soup["id"].clone(), tea["id"].clone(), both["id"].clone()]
    );
    let (_, repeated) = get(
        format!("{path}?status=new&status=completed"),
        staff(10, &[r]),
    )
    .await;
    assert_eq!(repeated, mixed);
    let (_, bar) = get(format!("{path}?station=bar"), staff(10, &[r])).await;
    assert_eq!(ids(&bar), [tea["id"].clone(), both["id"].clone()]);
    let (_, kitchen_done) = get(
        format!("{path}?station=kitchen&status=completed"),
        staff(10, &[r]),
    )
    .await;
    assert_eq!(ids(&kitchen_done), [soup["id"].clone()]);
    // A `user` of the restaurant may watch the board, as on the socket.
    let viewer =
        sign(json!({ "sub": 11, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 600 }));
    assert_eq!(get(path.clone(), viewer).await.0, 200);

    for (query, field) in [("status=eaten", "statuses"), ("station=grill", "station")] {
        let (status, body) = get(format!("{path}?{query}"), staff(10, &[r])).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    // Rights before existence, as for every restaurant route.
    let (status, _) = get(path.clone(), staff(10, &[other])).await;
    assert_eq!(status, 403);
    let (status, _) = get(
        format!("/api/restaurants/{}/orders", Uuid::new_v4()),
        service(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get("/api/restaurants/nope/orders".to_owned(), service()).await;
    assert_eq!(status, 400);
    let res = server.http().get(server.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// `DELETE /api/orders/:id` without a body announces `order:deleted` with no `reason`
/// key at all (not `null`); an unknown order is 404 and announces nothing.
#[sqlx::test]
async fn a_delete_without_a_reason_carries_no_reason_key(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    let board = tablet(&server, "/", r).await;
    succeeds(&board, "join:restaurant", json!(r.to_string())).await;
    let unknown = format!("/api/orders/{}", Uuid::now_v7());
    assert_eq!(
        server.delete(&unknown, &manager(3, &[r])).await.status(),
        404
    );
    board.expect_none("order:deleted", QUIET).await;

    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(server.delete(&path, &manager(3, &[r])).await.status(), 204);
    let deleted = board.recv("order:deleted").await;
    let mut keys: Vec<&str> = deleted
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["orderId", "timestamp"], "{deleted}");
    assert_eq!(deleted["orderId"], order["id"]);
}
