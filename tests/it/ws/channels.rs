//! `/ws` channels (contract §7.2's `subscribe` rules, §7.5's publish and grants rows):
//! which channels a token opens, grants and their revocation, the publish API, and a
//! publication reaching each subscriber once.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn user_and_tenant_channels_follow_the_token(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let acme =
        sign(json!({ "sub": 7, "roles": ["user"], "tenant_id": "acme", "exp": now_secs() + 3600 }));
    let mut ws = Ws::authed(&server, &acme).await;
    ws.join("user:7").await;
    ws.expect_error_on_subscribe("user:8", "forbidden").await;
    ws.join("tenant:acme").await;
    ws.expect_error_on_subscribe("tenant:globex", "forbidden")
        .await;
    ws.expect_error_on_subscribe("whatever:1", "forbidden")
        .await;
    // `tenantId` is the same claim; admin may join any tenant.
    let camel = sign(json!({ "sub": 9, "tenantId": "globex", "exp": now_secs() + 3600 }));
    let mut other = Ws::authed(&server, &camel).await;
    other.join("tenant:globex").await;
    let mut admin = Ws::authed(&server, &token(1, &["admin"])).await;
    admin.join("tenant:globex").await;
    admin.join("tenant:acme").await;
    publish(
        &server,
        "tenant:acme",
        "inventory_alert",
        json!({ "sku": "A" }),
    )
    .await;
    assert_eq!(ws.expect("inventory_alert").await["payload"]["sku"], "A");
    assert_eq!(admin.expect("inventory_alert").await["payload"]["sku"], "A");
    other.quiet(QUIET).await;
}

#[sqlx::test]
async fn order_channels_admit_the_customer_its_staff_service_and_admin(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let restaurant = create_restaurant(&server, "Bistro").await;
    let elsewhere = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, restaurant, Some(31)).await;
    let channel = format!("order:{order}");
    let stored: Option<i64> =
        sqlx::query_scalar("select customer_id::bigint from orders where id = $1::uuid")
            .bind(&order)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(stored, Some(31));
    // customer_id is an integer user id; anything else is the caller's 400.
    let res = server
        .post(
            &format!("/api/restaurants/{restaurant}/orders"),
            &service(),
            &json!({
                "order_number": 8, "type": "online", "total": 1, "customer_id": 1.5,
                "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }]
            }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer_id"),
        "{body}"
    );
    let mut customer = Ws::authed(&server, &token(31, &["user"])).await;
    customer.join(&channel).await;
    let mut staff = Ws::authed(&server, &staff_at(40, restaurant)).await;
    staff.join(&channel).await;
    let mut service = Ws::authed(&server, &service()).await;
    service.join(&channel).await;
    let mut admin = Ws::authed(&server, &token(1, &["admin"])).await;
    admin.join(&channel).await;
    let mut stranger = Ws::authed(&server, &token(32, &["user"])).await;
    stranger
        .expect_error_on_subscribe(&channel, "forbidden")
        .await;
    let mut other_staff = Ws::authed(&server, &staff_at(41, elsewhere)).await;
    other_staff
        .expect_error_on_subscribe(&channel, "forbidden")
        .await;
    // A `user` role of the restaurant is not staff.
    let user_of = sign(
        json!({ "sub": 42, "roles": ["user"], "restaurants": [restaurant], "exp": now_secs() + 3600 }),
    );
    let mut weak = Ws::authed(&server, &user_of).await;
    weak.expect_error_on_subscribe(&channel, "forbidden").await;
    // Orders that do not exist: not found for admin, forbidden (no probing) for others.
    let missing = format!("order:{}", Uuid::new_v4());
    admin.expect_error_on_subscribe(&missing, "not_found").await;
    stranger
        .expect_error_on_subscribe(&missing, "forbidden")
        .await;
    stranger
        .expect_error_on_subscribe("order:not-a-uuid", "forbidden")
        .await;
    // Another spelling of the id is another channel, never published to: refused.
    customer
        .expect_error_on_subscribe(&format!("order:{}", order.to_uppercase()), "forbidden")
        .await;

    publish(
        &server,
        &channel,
        "order_update",
        json!({ "status": "shipped" }),
    )
    .await;
    for ws in [&mut customer, &mut staff, &mut service, &mut admin] {
        assert_eq!(
            ws.expect("order_update").await["payload"]["status"],
            "shipped"
        );
    }
    stranger.quiet(QUIET).await;
}

#[sqlx::test]
async fn grants_admit_a_user_and_revoking_unsubscribes_its_connections(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let restaurant = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, restaurant, None).await;
    let channel = format!("order:{order}");
    let mut courier = Ws::authed(&server, &token(50, &["user"])).await;
    let mut courier_phone = Ws::authed(&server, &token(50, &["user"])).await;
    let mut bystander = Ws::authed(&server, &token(51, &["user"])).await;
    courier
        .expect_error_on_subscribe(&channel, "forbidden")
        .await;

    assert_eq!(
        grant(&server, reqwest::Method::POST, &channel, 50).await,
        201
    );
    assert_eq!(
        grant(&server, reqwest::Method::POST, &channel, 50).await,
        200
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from channel_grants where channel = $1 and user_id = '50'",
    )
    .bind(&channel)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
    courier.join(&channel).await;
    courier_phone.join(&channel).await;
    bystander
        .expect_error_on_subscribe(&channel, "forbidden")
        .await;
    // Grants work for any non-public channel, not only orders.
    assert_eq!(
        grant(&server, reqwest::Method::POST, "tenant:acme", 51).await,
        201
    );
    bystander.join("tenant:acme").await;

    assert_eq!(
        grant(&server, reqwest::Method::DELETE, &channel, 50).await,
        204
    );
    // Both of the user's connections are told; the other user keeps its grant.
    for ws in [&mut courier, &mut courier_phone] {
        let told = ws.expect("unsubscribed").await;
        assert_eq!(told["payload"]["channel"], channel);
    }
    bystander.alive().await;
    publish(&server, &channel, "order_update", json!({})).await;
    courier.quiet(QUIET).await;
    courier_phone.quiet(Duration::from_millis(1)).await;
    courier
        .expect_error_on_subscribe(&channel, "forbidden")
        .await;
    assert_eq!(
        grant(&server, reqwest::Method::DELETE, &channel, 50).await,
        404
    );
}

#[sqlx::test]
async fn publish_and_grants_are_for_service_and_admin_and_validate_their_body(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let call = |method: reqwest::Method, path: &str, who: String, body: Value| {
        let request = server
            .request(method.as_str(), path, Some(&who))
            .json(&body);
        async move {
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let user = || token(3, &["user"]);
    let ok = json!({ "channel": "public:x", "type": "t", "payload": {} });
    assert_eq!(
        call(reqwest::Method::POST, "/api/publish", user(), ok.clone()).await,
        (403, "FORBIDDEN".into())
    );
    assert_eq!(
        call(
            reqwest::Method::POST,
            "/api/publish",
            token(1, &["admin"]),
            ok
        )
        .await
        .0,
        202
    );
    for bad in [
        json!({ "channel": "nocolon", "type": "t", "payload": {} }),
        json!({ "channel": format!("public:{}", "x".repeat(200)), "type": "t", "payload": {} }),
        json!({ "channel": "public:x", "type": "", "payload": {} }),
        json!({ "channel": "public:x", "payload": {} }),
        json!({ "channel": "public:x", "type": "t", "payload": [1] }),
        json!({ "channel": 5, "type": "t", "payload": {} }),
    ] {
        assert_eq!(
            call(
                reqwest::Method::POST,
                "/api/publish",
                service(),
                bad.clone()
            )
            .await,
            (400, "BAD_REQUEST".into()),
            "{bad}"
        );
    }
    let grant_body = json!({ "channel": "order:1", "user_id": 4 });
    assert_eq!(
        call(
            reqwest::Method::POST,
            "/api/channels/grants",
            user(),
            grant_body.clone()
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            reqwest::Method::DELETE,
            "/api/channels/grants",
            user(),
            grant_body
        )
        .await
        .0,
        403
    );
    for bad in [
        json!({ "channel": "public:news", "user_id": 4 }),
        json!({ "channel": "order1", "user_id": 4 }),
        json!({ "channel": "order:1", "user_id": "" }),
        json!({ "channel": "order:1" }),
    ] {
        assert_eq!(
            call(
                reqwest::Method::POST,
                "/api/channels/grants",
                service(),
                bad.clone()
            )
            .await,
            (400, "BAD_REQUEST".into()),
            "{bad}"
        );
    }
    let none: i64 = sqlx::query_scalar("select count(*) from channel_grants")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0, "refused grants write nothing");
}

#[sqlx::test]
async fn a_published_payload_reaches_each_subscriber_once(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Ws::authed(&server, &token(1, &["user"])).await;
    let mut b = Ws::connect(&server, "").await;
    let mut outsider = Ws::authed(&server, &token(2, &["user"])).await;
    a.join("public:deals").await;
    b.join("public:deals").await;
    outsider.join("public:other").await;
    for n in 0..3 {
        publish(
            &server,
            "public:deals",
            "cart_update",
            json!({ "n": n, "cart": { "total": 1500.0 } }),
        )
        .await;
    }
    for ws in [&mut a, &mut b] {
        for n in 0..3 {
            let message = ws.expect("cart_update").await;
            assert_eq!(
                message["payload"],
                json!({ "n": n, "cart": { "total": 1500.0 } })
            );
            assert!(message.get("id").is_none());
        }
        ws.quiet(QUIET).await;
    }
    outsider.quiet(Duration::from_millis(1)).await;
    // Unsubscribed: nothing more.
    a.send(json!({ "type": "unsubscribe", "payload": { "channel": "public:deals" }, "id": "u" }))
        .await;
    let left = a.expect("unsubscribed").await;
    assert_eq!(
        (left["payload"]["channel"].clone(), left["id"].clone()),
        (json!("public:deals"), json!("u"))
    );
    publish(&server, "public:deals", "cart_update", json!({ "n": 9 })).await;
    assert_eq!(b.expect("cart_update").await["payload"]["n"], 9);
    a.quiet(QUIET).await;
    let samples = [
        "switchboard_ws_messages_out_total{type=\"published\"} 7",
        "switchboard_ws_messages_in_total{type=\"subscribe\"} 3",
    ];
    assert_metrics_hold(&server, &samples).await;
}
