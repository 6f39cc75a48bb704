//! Events cross nodes, each once (contract §10's exactly once, whichever node holds the
//! socket and whichever caused the event; batch mode on the node that holds the socket):
//! chat messages, REST and broadcast notifications, order events to tablets and batch
//! boards, a restaurant's first events racing, a socket following another restaurant.

use std::time::Duration;

use super::*;
use serde_json::{Value, json};
use sqlx::PgPool;

async fn chat_message_crosses_nodes_once(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let conv = create_conversation(&a, 1, "group", &[2]).await;
    let alice = a.client("/chat", 1).await;
    alice.join(&conv).await;
    let bob = b.client("/chat", 2).await;
    bob.join(&conv).await;
    let bob_on_a = a.client("/chat", 2).await;
    bob_on_a.join(&conv).await;

    let sent = alice.send_message(&conv, "across").await;
    assert_eq!(bob.recv("message:created").await, sent);
    assert_eq!(bob_on_a.recv("message:created").await, sent);
    // unread:count reaches Bob's user room on both nodes.
    recv_until(&bob, "unread:count", |c| c["total"] == 1).await;
    bob.expect_none("message:created", QUIET).await;
    alice
        .expect_none("message:created", Duration::from_millis(50))
        .await;
}

async fn rest_notification_on_a_reaches_b(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let phone = b.client("/notifications", 7).await;
    let chat = b.client("/chat", 7).await;
    let other = b.client("/notifications", 8).await;
    phone.recv("notification:count").await;
    let res = a
        .post(
            "/api/notifications",
            &service(),
            &json!({ "user_id": 7, "type": "system", "title": "hi", "content": "from A" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(phone.recv("notification:created").await, created);
    assert_eq!(chat.recv("notification:created").await, created);
    assert_eq!(
        phone.recv("notification:count").await,
        json!({ "count": 1 })
    );
    phone.expect_none("notification:created", QUIET).await;
    other
        .expect_none("notification:created", Duration::from_millis(50))
        .await;

    // A broadcast from A: every user connected on either node gets its count.
    let on_a = a.client("/notifications", 9).await;
    on_a.recv("notification:count").await;
    broadcast(&a, &service(), "all", "everyone").await;
    for (c, expected) in [(&phone, 2), (&other, 1), (&on_a, 1)] {
        c.recv("notification:created").await;
        recv_until(c, "notification:count", |v| v["count"] == expected).await;
    }
}

async fn order_event_reaches_tablets_on_the_other_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Cluster Bistro").await;
    let staff = staff_at(3, r);
    // On B only: a tablet on the dynamic namespace (which A has never seen a client on)
    // and a station tablet on the default namespace.
    let dynamic = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    let kitchen = b.client_with("/", &staff).await;
    let ack = kitchen
        .emit_ack(
            "join:station",
            json!({ "restaurantId": r, "station": "kitchen" }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let res = a
        .post(
            &format!("/api/restaurants/{r}/orders"),
            &service(),
            &json!({ "order_number": 1, "type": "dine_in", "table_number": 2, "total": 9.5,
                        "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }] }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    assert_eq!(dynamic.recv("order:created").await, order);
    assert_eq!(kitchen.recv("order:created").await, order);
    dynamic.expect_none("order:created", QUIET).await;
    kitchen
        .expect_none("order:created", Duration::from_millis(50))
        .await;
}

async fn batch_sockets_get_events_caused_on_the_other_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Batch Bistro").await;
    let staff = staff_at(3, r);
    // A batch-mode board on B (default namespace) and one on B's `/restaurants/<id>`.
    let board = b.client_with("/", &staff).await;
    let ack = board
        .emit_ack(
            "join:restaurant",
            json!({ "restaurantId": r, "batch": true }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let dynamic = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    let ack = dynamic
        .emit_ack(
            "join:restaurant",
            json!({ "restaurantId": r, "batch": true }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    // Two orders caused on A: a small one and one far above NOTIFY's 8000 bytes.
    let note = "n".repeat(400);
    let big_items: Vec<Value> = (0..40)
        .map(|i| json!({ "name": format!("Dish {i}"), "quantity": 1, "station": "kitchen", "notes": note }))
        .collect();
    let mut created = Vec::new();
    for (number, items) in [
        (
            1,
            json!([{ "name": "Soup", "quantity": 1, "station": "kitchen" }]),
        ),
        (2, Value::Array(big_items)),
    ] {
        let res = a
            .post(
                &format!("/api/restaurants/{r}/orders"),
                &service(),
                &json!({ "order_number": number, "type": "takeout", "total": 9.5, "items": items }),
            )
            .await;
        assert_eq!(res.status(), 201);
        created.push(res.json::<Value>().await.unwrap());
    }
    assert!(serde_json::to_string(&created[1]).unwrap().len() > 8000);
    let expected: Vec<Value> = created
        .iter()
        .map(|o| json!({ "event": "order:created", "data": o }))
        .collect();
    for tablet in [&board, &dynamic] {
        let mut items: Vec<Value> = Vec::new();
        while items.len() < expected.len() {
            let batch = tablet
                .recv_timeout("orders:batch_update", Duration::from_secs(3))
                .await
                .expect("a batch with the events caused on the other node");
            items.extend(batch.as_array().unwrap().clone());
        }
        assert_eq!(items, expected, "in order, each once");
        tablet.expect_none("order:created", QUIET).await;
        tablet
            .expect_none("orders:batch_update", Duration::from_millis(50))
            .await;
    }
}

async fn first_events_of_a_restaurant_racing_each_arrive_once(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Rush Bistro").await;
    let staff = staff_at(3, r);
    let tablet = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    // A has never routed an event of this restaurant: eight arrive at once.
    let creates = (1..=8).map(|n| {
        let a = &a;
        let order = json!({ "order_number": n, "type": "takeout", "total": 1,
                            "items": [{ "name": "Tea", "quantity": 1, "station": "bar" }] });
        async move { post_order(a, r, &order).await["id"].clone() }
    });
    let mut ids = futures_util::future::join_all(creates).await;
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(tablet.recv("order:created").await["id"].clone());
    }
    tablet.expect_none("order:created", QUIET).await;
    let key = |v: &Value| v.to_string();
    ids.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, ids);
}

async fn a_socket_following_another_restaurant_gets_its_events_from_every_node(
    pool: PgPool,
    adapter: &str,
) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let home = create_restaurant(&a, "Home").await;
    let away = create_restaurant(&a, "Away").await;
    let staff = sign(
        json!({ "sub": 3, "roles": ["staff"], "restaurants": [home, away], "exp": now_secs() + 600 }),
    );
    // On A, on the home restaurant's namespace, following the other restaurant.
    let tablet = a.client_with(&format!("/restaurants/{home}"), &staff).await;
    let ack = tablet
        .emit_ack("join:restaurant", json!({ "restaurantId": away }))
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    // Caused on the other node, then on its own node: each arrives once.
    for (node, number) in [(&b, 1), (&a, 2)] {
        let order = order_on(node, away, number).await;
        assert_eq!(tablet.recv("order:created").await, order);
        tablet.expect_none("order:created", QUIET).await;
    }
    let alert = json!({ "type": "urgent", "message": "out of tea", "severity": 3 });
    let res = b
        .post(
            &format!("/api/restaurants/{away}/alerts"),
            &service(),
            &alert,
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(tablet.recv("kitchen:alert").await["message"], "out of tea");
    tablet.expect_none("kitchen:alert", QUIET).await;
    // Joining moved the tablet off its home restaurant's rooms.
    order_on(&b, home, 3).await;
    tablet.expect_none("order:created", QUIET).await;
}

for_each_adapter!(
    first_events_of_a_restaurant_racing_each_arrive_once,
    batch_sockets_get_events_caused_on_the_other_node,
    chat_message_crosses_nodes_once,
    rest_notification_on_a_reaches_b,
    order_event_reaches_tablets_on_the_other_node,
    a_socket_following_another_restaurant_gets_its_events_from_every_node,
);
