//! `/ws`, the envelope dialect of seed 003 (contract §7.1, §7.2, §7.5's publish and
//! grants rows), as a plain WebSocket client sees it: a real server, real sockets,
//! a tokio-tungstenite client.
//!
//! Past 400 lines: the envelope dialect's contract rows, one test each, grouped by section
//! below; split by section when a section outgrows a screenful of names.

use std::time::{Duration, Instant};

use crate::support::ws::{self, Stream};
use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

/// A `/ws` client that reads envelopes.
struct Ws {
    stream: Stream,
}

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}/ws{query}", server.base.replacen("http", "ws", 1))
}

/// A `/ws` client of one dialect; `check` asserts what every message of it carries.
trait Dialect {
    fn stream(&mut self) -> &mut Stream;

    fn check(message: &Value);

    async fn send(&mut self, message: Value) {
        let text = Message::text(message.to_string());
        self.stream().send(text).await.unwrap();
    }

    /// The next message, within 5 s.
    async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("a message within 5 s")
    }

    async fn recv_within(&mut self, within: Duration) -> Option<Value> {
        let message = ws::next_json(self.stream(), within).await?;
        Self::check(&message);
        Some(message)
    }

    /// Nothing arrives within `within`.
    async fn quiet(&mut self, within: Duration) {
        if let Some(message) = self.recv_within(within).await {
            panic!("unexpected message {message}");
        }
    }
}

impl Dialect for Ws {
    fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    fn check(message: &Value) {
        assert!(
            message["timestamp"].as_str().is_some_and(rfc3339_ms),
            "server messages carry an RFC 3339 timestamp with ms: {message}"
        );
        assert!(message["payload"].is_object(), "{message}");
    }
}

impl Ws {
    async fn connect(server: &TestServer, query: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(ws_url(server, query))
            .await
            .unwrap();
        Ws { stream }
    }

    /// Connected and authenticated with `?token=` (its `auth_success` read).
    async fn authed(server: &TestServer, token: &str) -> Ws {
        let mut ws = Ws::connect(server, &format!("?token={token}")).await;
        let ok = ws.expect("auth_success").await;
        assert!(ok["payload"]["user_id"].is_i64(), "{ok}");
        ws
    }

    async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// The next envelope, which must be of `kind`.
    async fn expect(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// The next envelope must be `error` with `code` (and `id` echoed when given).
    async fn expect_error(&mut self, code: &str, id: Option<&str>) -> Value {
        let message = self.expect("error").await;
        assert_eq!(message["payload"]["code"], code, "{message}");
        assert!(
            message["payload"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{message}"
        );
        assert_eq!(message.get("id").and_then(Value::as_str), id, "{message}");
        message
    }

    async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({ "type": "subscribe", "payload": { "channel": channel } }))
            .await;
        self.recv().await
    }

    /// Subscribes and asserts `subscribed`.
    async fn join(&mut self, channel: &str) {
        let reply = self.subscribe(channel).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["payload"]["channel"], channel);
    }

    /// A ping answered by a pong: the connection is open and in step.
    async fn alive(&mut self) {
        self.send(json!({ "type": "ping", "id": "alive" })).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["id"], "alive");
    }

    /// Reads until the server's close frame; its code.
    async fn close_code(&mut self, within: Duration) -> u16 {
        ws::close_code(&mut self.stream, within).await
    }
}

async fn publish(server: &TestServer, channel: &str, kind: &str, payload: Value) {
    let res = server
        .post(
            "/api/publish",
            &service(),
            &json!({ "channel": channel, "type": kind, "payload": payload }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({ "channel": channel, "type": kind }));
}

async fn grant(server: &TestServer, method: reqwest::Method, channel: &str, user: i64) -> u16 {
    server
        .http()
        .request(method, server.url("/api/channels/grants"))
        .bearer_auth(service())
        .json(&json!({ "channel": channel, "user_id": user }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An order of `restaurant` for `customer`, created over REST; its id.
async fn create_order(server: &TestServer, restaurant: Uuid, customer: Option<i64>) -> String {
    let body = json!({
        "order_number": 7, "type": "online", "total": 12.5, "customer_id": customer,
        "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }]
    });
    let order = post_order(server, restaurant, &body).await;
    order["id"].as_str().unwrap().to_owned()
}

const HUB_ENTRIES: &str = "switchboard_ws_hub_entries ";
const HUB_CHANNELS: &str = "switchboard_ws_hub_channels ";
const WS_CONNECTIONS: &str = "switchboard_ws_connections{route=\"/ws\"} ";

/// Rate limits out of the way of tests that send many messages on purpose.
const UNLIMITED: &[(&str, &str)] = &[("RATE_LIMIT_PER_SEC", "1000"), ("RATE_LIMIT_BURST", "1000")];

fn closes(reason: &str) -> String {
    format!("switchboard_ws_closes_total{{reason=\"{reason}\"}} ")
}

// ---------------------------------------------------------------------------------
// Authentication

#[sqlx::test]
async fn a_good_query_token_is_confirmed_and_joins_the_user_channel(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Ws::connect(&server, &format!("?token={}", token(41, &["user"]))).await;
    let ok = ws.expect("auth_success").await;
    assert_eq!(ok["payload"], json!({ "user_id": 41 }));
    assert!(ok.get("id").is_none(), "no request, no id: {ok}");
    publish(
        &server,
        "user:41",
        "cart_update",
        json!({ "item_count": 3 }),
    )
    .await;
    let pushed = ws.expect("cart_update").await;
    assert_eq!(pushed["payload"], json!({ "item_count": 3 }));
    // Its own channel again: already in it, still answered.
    ws.join("user:41").await;
}

#[sqlx::test]
async fn auth_by_message_echoes_the_id_and_a_second_user_replaces_the_first(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Ws::connect(&server, "").await;
    ws.send(json!({ "type": "auth", "payload": { "token": token(5, &["user"]) }, "id": "a1" }))
        .await;
    let ok = ws.expect("auth_success").await;
    assert_eq!(
        (ok["payload"]["user_id"].clone(), ok["id"].clone()),
        (json!(5), json!("a1"))
    );
    ws.join("user:5").await;
    // Another user's token: the identity and its user: channel are replaced.
    ws.send(json!({ "type": "auth", "payload": { "token": token(6, &["user"]) } }))
        .await;
    assert_eq!(ws.expect("auth_success").await["payload"]["user_id"], 6);
    publish(&server, "user:5", "x", json!({})).await;
    publish(&server, "user:6", "y", json!({})).await;
    assert_eq!(ws.expect("y").await["type"], "y");
    assert_eq!(ws.subscribe("user:5").await["payload"]["code"], "forbidden");
}

#[sqlx::test]
async fn forged_and_expired_tokens_get_auth_error_and_leave_the_connection_open(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": 1, "roles": ["admin"], "exp": now_secs() + 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-servers-secret-not-the-servers"),
    )
    .unwrap();
    let expired = sign(json!({ "sub": 1, "roles": ["user"], "exp": now_secs() - 3600 }));
    // At connect: the connection opens unauthenticated (contract §7.7).
    let mut ws = Ws::connect(&server, &format!("?token={forged}")).await;
    let refused = ws.expect("auth_error").await;
    assert_eq!(
        refused["payload"],
        json!({ "error": "Invalid or expired token" })
    );
    ws.expect_error_on_subscribe("user:1", "unauthorized").await;
    for bad in [&expired, &forged, &"garbage".to_owned()] {
        ws.send(json!({ "type": "auth", "payload": { "token": bad }, "id": "t" }))
            .await;
        let refused = ws.expect("auth_error").await;
        assert_eq!(refused["id"], "t");
    }
    ws.alive().await;
    ws.expect_error_on_subscribe("user:1", "unauthorized").await;
    // A good one afterwards works.
    ws.send(json!({ "type": "auth", "payload": { "token": token(1, &["user"]) } }))
        .await;
    ws.expect("auth_success").await;
}

impl Ws {
    async fn expect_error_on_subscribe(&mut self, channel: &str, code: &str) {
        let reply = self.subscribe(channel).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["payload"]["code"], code, "{reply}");
    }
}

#[sqlx::test]
async fn before_auth_only_public_channels_are_open(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Ws::connect(&server, "").await;
    for channel in ["user:1", "order:x", "tenant:acme", "chat:1"] {
        ws.expect_error_on_subscribe(channel, "unauthorized").await;
    }
    ws.join("public:announcements").await;
    publish(&server, "public:announcements", "news", json!({ "n": 1 })).await;
    assert_eq!(ws.expect("news").await["payload"]["n"], 1);
}

// ---------------------------------------------------------------------------------
// Access rules

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

// ---------------------------------------------------------------------------------
// Delivery

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

// ---------------------------------------------------------------------------------
// Bad input: an error in the dialect, the connection stays open, nothing changes

#[sqlx::test]
async fn malformed_messages_get_errors_with_their_id_and_the_connection_stays(pool: PgPool) {
    let server = TestServer::start_with(pool, UNLIMITED).await;
    let mut ws = Ws::authed(&server, &token(1, &["user"])).await;
    ws.send_raw(Message::text("{not json")).await;
    ws.expect_error("invalid_message", None).await;
    ws.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    ws.expect_error("invalid_message", None).await;
    for frame in ["[1,2]", "\"ping\"", "42", "null"] {
        ws.send_raw(Message::text(frame)).await;
        ws.expect_error("invalid_message", None).await;
    }
    ws.send(json!({ "type": "ping", "payload": "x", "id": "p" }))
        .await;
    ws.expect_error("invalid_message", Some("p")).await;
    ws.send(json!({ "payload": {}, "id": "q" })).await;
    ws.expect_error("invalid_message", Some("q")).await;
    ws.send(json!({ "type": 7, "id": "r" })).await;
    ws.expect_error("invalid_message", Some("r")).await;
    ws.send(json!({ "type": "teleport", "payload": {}, "id": "s" }))
        .await;
    ws.expect_error("unknown_type", Some("s")).await;
    // chat_message checks its payload like any other type.
    ws.send(json!({ "type": "chat_message", "payload": { "conversation_id": "c", "content": "hi" }, "id": "c" }))
        .await;
    ws.expect_error("invalid_payload", Some("c")).await;
    for payload in [
        json!({}),
        json!({ "channel": 5 }),
        json!({ "channel": null }),
    ] {
        ws.send(json!({ "type": "subscribe", "payload": payload, "id": "m" }))
            .await;
        ws.expect_error("invalid_payload", Some("m")).await;
        ws.send(json!({ "type": "unsubscribe", "payload": payload, "id": "n" }))
            .await;
        ws.expect_error("invalid_payload", Some("n")).await;
    }
    ws.send(json!({ "type": "auth", "payload": { "token": 12 }, "id": "o" }))
        .await;
    ws.expect_error("invalid_payload", Some("o")).await;
    ws.send(json!({ "type": "auth", "id": "o2" })).await;
    ws.expect_error("invalid_payload", Some("o2")).await;
    let long = format!("public:{}", "x".repeat(194));
    for channel in ["nocolon", ":x", "public:", long.as_str()] {
        ws.send(json!({ "type": "subscribe", "payload": { "channel": channel }, "id": "v" }))
            .await;
        let error = ws.expect_error("invalid_payload", Some("v")).await;
        assert!(
            error["payload"]["message"]
                .as_str()
                .unwrap()
                .contains("channel"),
            "{error}"
        );
    }
    // Exactly 200 characters is fine.
    ws.join(&format!("public:{}", "x".repeat(193))).await;
    // A ping without payload, and with an id.
    ws.send(json!({ "type": "ping" })).await;
    assert!(ws.expect("pong").await.get("id").is_none());
    ws.alive().await;
    // Nothing bad above subscribed the connection anywhere.
    let hub_entries = format!("{HUB_ENTRIES}2");
    let samples = [
        hub_entries.as_str(),
        "switchboard_ws_messages_in_total{type=\"invalid\"}",
        "switchboard_ws_messages_in_total{type=\"unknown\"} 1",
    ];
    assert_metrics_hold(&server, &samples).await;
}

#[sqlx::test]
async fn a_connection_holds_at_most_100_channels_its_user_channel_included(pool: PgPool) {
    let server = TestServer::start_with(pool, UNLIMITED).await;
    let mut ws = Ws::authed(&server, &token(1, &["user"])).await;
    for n in 0..99 {
        ws.join(&format!("public:c{n}")).await;
    }
    ws.send(json!({ "type": "subscribe", "payload": { "channel": "public:c99" }, "id": "101" }))
        .await;
    ws.expect_error("too_many_channels", Some("101")).await;
    // Already held: still fine; after leaving one, another fits.
    ws.join("public:c5").await;
    ws.send(json!({ "type": "unsubscribe", "payload": { "channel": "public:c5" } }))
        .await;
    ws.expect("unsubscribed").await;
    ws.join("public:c99").await;
    publish(&server, "public:c99", "t", json!({})).await;
    ws.expect("t").await;
}

#[sqlx::test]
async fn the_rate_limit_answers_rate_limited_and_drops_the_message(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[("RATE_LIMIT_PER_SEC", "1"), ("RATE_LIMIT_BURST", "3")],
    )
    .await;
    let mut ws = Ws::connect(&server, "").await;
    for n in 0..3 {
        ws.send(json!({ "type": "ping", "id": format!("{n}") }))
            .await;
        ws.expect("pong").await;
    }
    ws.send(json!({ "type": "subscribe", "payload": { "channel": "public:x" }, "id": "over" }))
        .await;
    ws.expect_error("rate_limited", Some("over")).await;
    publish(&server, "public:x", "t", json!({})).await;
    ws.quiet(QUIET).await;
}

// ---------------------------------------------------------------------------------
// Limits and closes

#[sqlx::test]
async fn a_frame_over_ws_max_message_bytes_closes_with_1009(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut ws = Ws::connect(&server, "").await;
    let fits = json!({ "type": "ping", "id": "x".repeat(900) });
    ws.send(fits).await;
    ws.expect("pong").await;
    let big = json!({ "type": "subscribe", "payload": { "channel": format!("public:{}", "x".repeat(2000)) } });
    ws.send(big).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, 1009);
    wait_metric(&server, &closes("too_big"), 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_CHANNELS, 0.0, Duration::from_secs(5)).await;
}

/// A client that connects with a small receive buffer, subscribes, and then never reads.
async fn stuck_subscriber(server: &TestServer, channel: &str) -> Stream {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
    let request = ws_url(server, "").into_client_request().unwrap();
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut ws = Ws { stream };
    ws.join(channel).await;
    ws.stream
}

#[sqlx::test]
async fn a_client_that_never_reads_is_closed_with_1013_and_others_get_everything(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_SEND_QUEUE", "16")]).await;
    let stuck = stuck_subscriber(&server, "public:flood").await;
    let mut reader = Ws::connect(&server, "").await;
    reader.join("public:flood").await;
    let filler = "x".repeat(16 * 1024);
    // Publish until the stuck client's kernel buffers and its 16-message queue are full.
    let mut n = 0;
    loop {
        publish(
            &server,
            "public:flood",
            "t",
            json!({ "n": n, "filler": filler }),
        )
        .await;
        // The healthy reader keeps up as it goes.
        assert_eq!(reader.expect("t").await["payload"]["n"], n);
        n += 1;
        if metric(&server, &closes("slow_consumer")).await >= 1.0 {
            break;
        }
        assert!(n < 2000, "no slow consumer after {n} publishes");
    }
    // The stuck client, reading at last, finds the close frame after what fitted.
    let mut stuck = Ws { stream: stuck };
    assert_eq!(stuck.close_code(Duration::from_secs(10)).await, 1013);
    for m in 0..20 {
        publish(&server, "public:flood", "t", json!({ "m": m })).await;
        assert_eq!(reader.expect("t").await["payload"]["m"], m);
    }
    reader.alive().await;
    assert_eq!(metric(&server, &closes("slow_consumer")).await, 1.0);
    // The message that did not fit is counted as dropped.
    assert!(metric(&server, "switchboard_ws_dropped_total ").await >= 1.0);
    wait_metric(&server, WS_CONNECTIONS, 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_ENTRIES, 1.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_client_close_is_answered_and_leaves_nothing(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Ws::authed(&server, &token(12, &["user"])).await;
    ws.join("public:bye").await;
    ws.stream
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    // The server answers the close handshake, then ends the connection.
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.stream.next())
        .await
        .unwrap();
    assert!(
        matches!(answer, Some(Ok(Message::Close(_)))),
        "expected the close answer, got {answer:?}"
    );
    wait_metric(&server, &closes("client"), 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
    wait_metric(&server, WS_CONNECTIONS, 0.0, Duration::from_secs(5)).await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
}

#[sqlx::test]
async fn a_silent_client_is_closed_after_the_idle_timeout(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("WS_IDLE_TIMEOUT_SECS", "1"),
            ("WS_PING_INTERVAL_SECS", "30"),
        ],
    )
    .await;
    let mut silent = Ws::connect(&server, "").await;
    silent.join("public:x").await;
    let started = Instant::now();
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, 1000);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    wait_metric(&server, &closes("idle"), 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn the_server_pings_and_a_client_that_answers_stays(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("WS_IDLE_TIMEOUT_SECS", "2"),
            ("WS_PING_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let mut ws = Ws::connect(&server, "").await;
    // tungstenite answers each ping while we read; 3.5 s is past the idle timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(deadline, ws.stream.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    ws.alive().await;
}

#[sqlx::test]
async fn an_expiring_token_closes_the_connection_with_4001(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "0")]).await;
    let short = sign(json!({ "sub": 3, "roles": ["user"], "exp": now_secs() + 2 }));
    let mut ws = Ws::authed(&server, &short).await;
    let mut anonymous = Ws::connect(&server, "").await;
    assert_eq!(ws.close_code(Duration::from_secs(6)).await, 4001);
    wait_metric(
        &server,
        &closes("token_expired"),
        1.0,
        Duration::from_secs(5),
    )
    .await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    anonymous.alive().await;
}

#[sqlx::test]
async fn the_user_disconnect_route_closes_that_users_ws_connections_with_1008(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Ws::authed(&server, &token(70, &["user"])).await;
    let mut b = Ws::authed(&server, &token(70, &["user"])).await;
    let mut other = Ws::authed(&server, &token(71, &["user"])).await;
    let res = server
        .http()
        .post(server.url("/api/users/70/disconnect"))
        .bearer_auth(service())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(a.close_code(Duration::from_secs(5)).await, 1008);
    assert_eq!(b.close_code(Duration::from_secs(5)).await, 1008);
    other.alive().await;
    wait_metric(
        &server,
        &closes("disconnected"),
        2.0,
        Duration::from_secs(5),
    )
    .await;
}

#[sqlx::test]
async fn shutdown_closes_ws_connections_with_1001(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Ws::authed(&server, &token(1, &["user"])).await;
    let mut b = Ws::connect(&server, "").await;
    b.alive().await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(a.close_code(Duration::from_secs(10)).await, 1001);
    assert_eq!(b.close_code(Duration::from_secs(10)).await, 1001);
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[sqlx::test]
async fn a_thousand_connections_churning_under_a_publish_loop_leave_an_empty_registry(
    pool: PgPool,
) {
    let server = TestServer::start_with(pool, &[("WS_SEND_QUEUE", "64")]).await;
    let base = server.base.clone();
    let publishing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = {
        let publishing = publishing.clone();
        let http = server.http();
        let url = server.url("/api/publish");
        tokio::spawn(async move {
            let mut sent = 0u64;
            while publishing.load(std::sync::atomic::Ordering::Relaxed) {
                for channel in ["public:churn", "user:1"] {
                    let res = http
                        .post(&url)
                        .bearer_auth(service())
                        .json(&json!({ "channel": channel, "type": "tick", "payload": { "n": sent } }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 202);
                    sent += 1;
                }
            }
            sent
        })
    };
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let mut batches = Vec::new();
    for batch in 0..10 {
        let url = url.clone();
        batches.push(tokio::spawn(async move {
            for n in 0..100 {
                let query = if n % 2 == 0 {
                    format!("?token={}", token(1, &["user"]))
                } else {
                    String::new()
                };
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}{query}"))
                    .await
                    .unwrap();
                let sub = json!({ "type": "subscribe", "payload": { "channel": "public:churn" } });
                ws.send(Message::text(sub.to_string())).await.unwrap();
                let extra = json!({ "type": "subscribe", "payload": { "channel": format!("public:b{batch}n{n}") } });
                ws.send(Message::text(extra.to_string())).await.unwrap();
                // Half close politely, half just drop the TCP connection mid-stream.
                if n % 3 == 0 {
                    let _ = ws.close(None).await;
                    while let Some(Ok(_)) = ws.next().await {}
                } else {
                    let _ = tokio::time::timeout(Duration::from_millis(5), ws.next()).await;
                    drop(ws);
                }
            }
        }));
    }
    for batch in batches {
        batch.await.unwrap();
    }
    publishing.store(false, std::sync::atomic::Ordering::Relaxed);
    let sent = publisher.await.unwrap();
    assert!(sent > 0);
    wait_metric(&server, WS_CONNECTIONS, 0.0, Duration::from_secs(15)).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_CHANNELS, 0.0, Duration::from_secs(5)).await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    // Polite or abrupt, every one of them is the client leaving; none a server fault.
    assert_eq!(metric(&server, &closes("client")).await, 1000.0);
    assert_eq!(metric(&server, &closes("error")).await, 0.0);
    // Still serving.
    let mut ws = Ws::connect(&server, "").await;
    ws.alive().await;
}

// ---------------------------------------------------------------------------------
// The handshake

#[sqlx::test]
async fn foreign_origins_are_refused_before_the_upgrade_with_the_json_error(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("ALLOWED_ORIGINS", "https://shop.example")]).await;
    let from = |origin: &str| {
        let mut request = ws_url(&server, "").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    match tokio_tungstenite::connect_async(from("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "FORBIDDEN");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let (mut ok, _) = tokio_tungstenite::connect_async(from("https://shop.example"))
        .await
        .unwrap();
    ok.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    let mut ok = Ws { stream: ok };
    ok.expect("pong").await;
}

// ---------------------------------------------------------------------------------
// The bare dialect (seed 002) and domain events in both dialects

/// A `/ws` client of the bare dialect: bare JSON objects both ways.
struct Bare {
    stream: Stream,
}

fn with_bearer(
    server: &TestServer,
    query: &str,
    token: &str,
) -> tungstenite::handshake::client::Request {
    ws::with_bearer(ws_url(server, query).into_client_request().unwrap(), token)
}

impl Dialect for Bare {
    fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    fn check(message: &Value) {
        assert!(
            message.get("type").is_none() || message.get("payload").is_none(),
            "not bare: {message}"
        );
    }
}

impl Bare {
    /// Connected with `Authorization: Bearer` (which selects the bare dialect).
    async fn connect(server: &TestServer, token: &str) -> Bare {
        let (stream, _) = tokio_tungstenite::connect_async(with_bearer(server, "", token))
            .await
            .unwrap();
        let mut bare = Bare { stream };
        // The user channel is joined before the upgrade completes its first read: a
        // round trip through an error reply proves the connection is registered.
        bare.send(json!({})).await;
        assert_eq!(bare.recv().await["error"]["code"], "BAD_REQUEST");
        bare
    }

    /// The next message must be `{error:{code, message}}`.
    async fn expect_error(&mut self, code: &str) {
        let message = self.recv().await;
        assert_eq!(message["error"]["code"], code, "{message}");
        assert!(
            message["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{message}"
        );
    }
}

fn named(user: i64, name: &str) -> String {
    sign(json!({ "sub": user, "roles": ["user"], "name": name, "exp": now_secs() + 3600 }))
}

#[sqlx::test]
async fn the_header_or_format_bare_selects_the_bare_dialect_which_needs_a_good_token(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let refused = |result: Result<_, tungstenite::Error>, status: u16, code: &str| match result {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), status);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], code);
        }
        Ok(_) => panic!("expected {status}, got a connection"),
        Err(other) => panic!("expected {status}, got {other:?}"),
    };
    let forged = format!("{}x", token(8, &["user"]));
    let expired = sign(json!({ "sub": 8, "roles": ["user"], "exp": now_secs() - 3600 }));
    for bad in [&forged, &expired] {
        refused(
            tokio_tungstenite::connect_async(with_bearer(&server, "", bad)).await,
            401,
            "AUTH_INVALID",
        );
    }
    // `format=bare` without any token, or with a bad one in the query.
    refused(
        tokio_tungstenite::connect_async(ws_url(&server, "?format=bare")).await,
        401,
        "AUTH_INVALID",
    );
    refused(
        tokio_tungstenite::connect_async(ws_url(&server, &format!("?format=bare&token={forged}")))
            .await,
        401,
        "AUTH_INVALID",
    );
    refused(
        tokio_tungstenite::connect_async(with_bearer(&server, "?format=xml", &token(8, &["user"])))
            .await,
        400,
        "BAD_REQUEST",
    );
    // `format=bare` with `?token=`: bare, no `auth_success`.
    let (stream, _) = tokio_tungstenite::connect_async(ws_url(
        &server,
        &format!("?format=bare&token={}", token(8, &["user"])),
    ))
    .await
    .unwrap();
    let mut bare = Bare { stream };
    bare.send(json!({ "type": "ping" })).await;
    bare.expect_error("BAD_REQUEST").await;
    // `format=envelope` with the header: the envelope dialect, authenticated by it.
    let (stream, _) = tokio_tungstenite::connect_async(with_bearer(
        &server,
        "?format=envelope",
        &token(8, &["user"]),
    ))
    .await
    .unwrap();
    let mut ws = Ws { stream };
    assert_eq!(ws.expect("auth_success").await["payload"]["user_id"], 8);
    // A plain GET is not an upgrade.
    let res = server.http().get(server.url("/ws")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    wait_metric(&server, WS_CONNECTIONS, 2.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn bad_bare_frames_get_errors_in_the_bare_dialect_and_the_connection_stays(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut bare = Bare::connect(&server, &token(3, &["user"])).await;
    for frame in [
        Message::text("{"),
        Message::text("[1]"),
        Message::text("\"hi\""),
        Message::binary(vec![1, 2, 3]),
        Message::text(r#"{"content":"hi"}"#),
        Message::text(json!({ "conversation_id": "nope", "content": "hi" }).to_string()),
        Message::text(json!({ "conversation_id": conversation, "content": "  " }).to_string()),
        Message::text(json!({ "conversation_id": conversation, "content": 5 }).to_string()),
        Message::text(
            json!({ "conversation_id": conversation, "content": "x", "type": "t".repeat(33) })
                .to_string(),
        ),
    ] {
        bare.stream.send(frame).await.unwrap();
        bare.expect_error("BAD_REQUEST").await;
    }
    // Not a member, and a conversation that does not exist.
    bare.send(json!({ "conversation_id": conversation, "content": "hi" }))
        .await;
    bare.expect_error("FORBIDDEN").await;
    bare.send(json!({ "conversation_id": Uuid::new_v4(), "content": "hi" }))
        .await;
    bare.expect_error("NOT_FOUND").await;
    assert!(
        metric(
            &server,
            "switchboard_ws_messages_in_total{type=\"invalid\"} "
        )
        .await
            >= 9.0
    );
}

#[sqlx::test]
async fn a_bare_send_is_stored_and_reaches_every_dialect_each_connection_once(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conversation = create_conversation(&server, 1, "group", &[2, 3]).await;
    let mut sender = Bare::connect(&server, &named(1, "Ann")).await;
    let mut bob_bare = Bare::connect(&server, &token(2, &["user"])).await;
    let mut carol = Ws::authed(&server, &token(3, &["user"])).await;
    // Carol on a public channel too: still one copy.
    carol.join("public:lobby").await;
    let bob_sio = server.client("/chat", 2).await;
    bob_sio.join(&conversation).await;
    // Not a member: hears nothing.
    let mut dave = Bare::connect(&server, &token(4, &["user"])).await;

    sender
        .send(json!({ "conversation_id": conversation, "content": "  hello  ", "type": "image" }))
        .await;
    let own = sender.recv().await;
    assert_eq!(own["conversation_id"], conversation.as_str());
    assert_eq!(own["sender_id"], 1);
    assert_eq!(own["content"], "hello");
    assert_eq!(own["message_type"], "image");
    assert_eq!(own["is_edited"], false);
    assert_eq!(own["is_deleted"], false);
    assert!(own["created_at"].as_str().is_some_and(rfc3339_ms), "{own}");
    let id = own["id"].as_str().unwrap().to_owned();
    assert_eq!(bob_bare.recv().await, own);

    let envelope = carol.expect("chat_message").await;
    assert!(envelope.get("id").is_none(), "{envelope}");
    assert_eq!(
        envelope["payload"],
        json!({
            "conversation_id": conversation,
            "message": {
                "id": id, "sender_id": 1, "sender_name": "Ann", "content": "hello",
                "message_type": "image", "created_at": own["created_at"],
            }
        })
    );
    let created = bob_sio.recv("message:created").await;
    assert_eq!(created["_id"], id.as_str());
    assert_eq!(created["content"], "hello");
    assert!(
        created.get("message_type").is_none(),
        "socket.io payloads unchanged: {created}"
    );

    // Stored: the history has it.
    let page = bob_sio
        .ok("message:list", json!({ "conversationId": conversation }))
        .await;
    assert_eq!(page[0]["_id"], id.as_str());

    sender.quiet(QUIET).await;
    bob_bare.quiet(Duration::ZERO).await;
    carol.quiet(Duration::ZERO).await;
    dave.quiet(Duration::ZERO).await;
    bob_sio
        .expect_none("message:created", Duration::from_millis(100))
        .await;
}

#[sqlx::test]
async fn an_envelope_chat_message_echoes_its_id_and_chat_sends_reach_ws(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut anon = Ws::connect(&server, "").await;
    anon.send(json!({ "type": "chat_message", "id": "a0",
        "payload": { "conversation_id": conversation, "content": "hi" } }))
        .await;
    anon.expect_error("unauthorized", Some("a0")).await;

    let mut ann = Ws::authed(&server, &named(1, "Ann")).await;
    let mut ann_phone = Ws::authed(&server, &named(1, "Ann")).await;
    let mut bob = Bare::connect(&server, &token(2, &["user"])).await;
    let bob_sio = server.client("/chat", 2).await;
    bob_sio.join(&conversation).await;

    ann.send(json!({ "type": "chat_message", "id": "m1",
        "payload": { "conversation_id": conversation, "content": "hi" } }))
        .await;
    let own = ann.expect("chat_message").await;
    assert_eq!(own["id"], "m1");
    assert_eq!(own["payload"]["message"]["message_type"], "text");
    assert_eq!(own["payload"]["message"]["sender_name"], "Ann");
    let other = ann_phone.expect("chat_message").await;
    assert!(other.get("id").is_none(), "{other}");
    assert_eq!(other["payload"], own["payload"]);
    let bare = bob.recv().await;
    assert_eq!(bare["id"], own["payload"]["message"]["id"]);
    assert_eq!(bare["message_type"], "text");
    assert_eq!(bob_sio.recv("message:created").await["content"], "hi");
    ann.quiet(QUIET).await;

    // Errors carry the request id.
    for (payload, code) in [
        (
            json!({ "conversation_id": conversation }),
            "invalid_payload",
        ),
        (
            json!({ "conversation_id": 5, "content": "x" }),
            "invalid_payload",
        ),
        (
            json!({ "conversation_id": Uuid::new_v4(), "content": "x" }),
            "not_found",
        ),
    ] {
        ann.send(json!({ "type": "chat_message", "id": "e", "payload": payload }))
            .await;
        ann.expect_error(code, Some("e")).await;
    }
    let mut eve = Ws::authed(&server, &token(5, &["user"])).await;
    eve.send(json!({ "type": "chat_message", "id": "e5",
        "payload": { "conversation_id": conversation, "content": "x" } }))
        .await;
    eve.expect_error("forbidden", Some("e5")).await;

    // A socket.io send reaches the members' /ws connections, the sender's included.
    let ann_sio = server.client("/chat", 1).await;
    let sent = ann_sio.send_message(&conversation, "from sio").await;
    for ws in [&mut ann, &mut ann_phone] {
        let got = ws.expect("chat_message").await;
        assert_eq!(got["payload"]["message"]["id"], sent["_id"]);
        assert_eq!(got["payload"]["message"]["content"], "from sio");
        // The socket.io token has no `name` claim.
        assert_eq!(got["payload"]["message"]["sender_name"], Value::Null);
    }
    assert_eq!(bob.recv().await["id"], sent["_id"]);
    bob.quiet(QUIET).await;
    eve.quiet(Duration::ZERO).await;
}

/// A grant on another member's `user:` channel puts a connection in two of the
/// message's channels; it still gets the message once, from this node and from another.
#[sqlx::test]
async fn a_connection_in_two_members_channels_gets_a_message_once(pool: PgPool) {
    let (a, b, _) = TestServer::two_nodes(&pool, "redis").await;
    let conversation = create_conversation(&a, 1, "group", &[2]).await;
    assert_eq!(grant(&a, reqwest::Method::POST, "user:2", 1).await, 201);
    let mut ann = Ws::authed(&a, &token(1, &["user"])).await;
    ann.join("user:2").await;
    for (node, content) in [(&a, "same node"), (&b, "other node")] {
        let bob = node.client("/chat", 2).await;
        let sent = bob.send_message(&conversation, content).await;
        let got = ann.expect("chat_message").await;
        assert_eq!(got["payload"]["message"]["id"], sent["_id"]);
        ann.quiet(QUIET).await;
    }
}

#[sqlx::test]
async fn bare_clients_get_edits_and_deletes_in_full_and_envelopes_do_not(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut bob = Bare::connect(&server, &token(2, &["user"])).await;
    let mut bob_envelope = Ws::authed(&server, &token(2, &["user"])).await;
    let mut ann = Bare::connect(&server, &token(1, &["user"])).await;
    ann.send(json!({ "conversation_id": conversation, "content": "v1", "type": "note" }))
        .await;
    let first = ann.recv().await;
    assert_eq!(bob.recv().await, first);
    bob_envelope.expect("chat_message").await;
    let id = first["id"].clone();

    let ann_sio = server.client("/chat", 1).await;
    ann_sio
        .ok("message:edit", json!({ "messageId": id, "content": "v2" }))
        .await;
    for bare in [&mut bob, &mut ann] {
        let edited = bare.recv().await;
        assert_eq!(edited["id"], id);
        assert_eq!(edited["content"], "v2");
        assert_eq!(edited["message_type"], "note");
        assert_eq!(edited["is_edited"], true);
        assert_eq!(edited["is_deleted"], false);
        assert_eq!(edited["created_at"], first["created_at"]);
    }
    ann_sio
        .ok("message:delete", json!({ "messageId": id }))
        .await;
    for bare in [&mut bob, &mut ann] {
        let deleted = bare.recv().await;
        assert_eq!(deleted["id"], id);
        assert_eq!(deleted["content"], "v2");
        assert_eq!(deleted["is_edited"], true);
        assert_eq!(deleted["is_deleted"], true);
    }
    bob_envelope.quiet(QUIET).await;
    bob.quiet(Duration::ZERO).await;
}

async fn notify(server: &TestServer, body: Value) -> Value {
    let res = server.post("/api/notifications", &service(), &body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[sqlx::test]
async fn notifications_reach_both_plain_dialects_from_rest_and_from_notifications(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut envelope = Ws::authed(&server, &token(7, &["user"])).await;
    let mut bare = Bare::connect(&server, &token(7, &["user"])).await;
    let mut other = Bare::connect(&server, &token(8, &["user"])).await;
    let mut anon = Ws::connect(&server, "").await;
    anon.alive().await;

    let created = notify(
        &server,
        json!({ "user_id": 7, "type": "system", "title": "Hi", "content": "Body",
                "link": "https://shop.example/o/1", "priority": "high" }),
    )
    .await;
    let id = created["_id"].as_str().unwrap();
    assert!(
        created.get("link").is_none(),
        "REST body unchanged: {created}"
    );
    let n = envelope.expect("notification").await;
    assert_eq!(
        n["payload"],
        json!({ "id": id, "title": "Hi", "body": "Body", "action_url": "https://shop.example/o/1",
                "icon": "system", "priority": "high", "created_at": created["created_at"] })
    );
    assert_eq!(
        bare.recv().await,
        json!({ "id": id, "user_id": 7, "type": "system", "title": "Hi", "message": "Body",
                "link": { "String": "https://shop.example/o/1", "Valid": true },
                "is_read": false, "created_at": created["created_at"], "event": "created" })
    );
    // Without link and priority: null / normal, `Valid: false`.
    notify(
        &server,
        json!({ "user_id": 7, "type": "message", "title": "T", "content": "C" }),
    )
    .await;
    let n = envelope.expect("notification").await;
    assert_eq!(n["payload"]["action_url"], Value::Null);
    assert_eq!(n["payload"]["priority"], "normal");
    assert_eq!(
        bare.recv().await["link"],
        json!({ "String": "", "Valid": false })
    );
    // Bad link and priority are the caller's 400.
    for body in [
        json!({ "user_id": 7, "type": "system", "title": "T", "content": "C", "priority": "urgent" }),
        json!({ "user_id": 7, "type": "system", "title": "T", "content": "C", "link": "x".repeat(2001) }),
    ] {
        let res = server.post("/api/notifications", &service(), &body).await;
        assert_eq!(res.status(), 400);
    }

    // Changes made on /notifications reach the bare dialect only.
    let sio = server.client("/notifications", 7).await;
    sio.ok("notification:read", json!({ "notificationId": id }))
        .await;
    assert_eq!(
        bare.recv().await,
        json!({ "event": "read", "notification_id": id })
    );
    sio.ok("notification:read_all", json!({})).await;
    assert_eq!(bare.recv().await, json!({ "event": "read_all" }));
    sio.ok("notification:delete", json!({ "notificationId": id }))
        .await;
    assert_eq!(
        bare.recv().await,
        json!({ "event": "deleted", "notification_id": id })
    );
    envelope.quiet(QUIET).await;
    other.quiet(Duration::ZERO).await;

    // A broadcast reaches every authenticated connection, not the anonymous one.
    broadcast(&server, &service(), "All", "Everyone").await;
    assert_eq!(
        envelope.expect("notification").await["payload"]["title"],
        "All"
    );
    let b = bare.recv().await;
    assert_eq!(
        (b["event"].as_str(), b["user_id"].is_null()),
        (Some("created"), true)
    );
    assert_eq!(other.recv().await["title"], "All");
    anon.quiet(QUIET).await;
}

#[sqlx::test]
async fn an_order_status_change_reaches_its_order_channel(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let restaurant = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, restaurant, Some(5)).await;
    let other = create_order(&server, restaurant, Some(5)).await;
    let mut customer = Ws::authed(&server, &token(5, &["user"])).await;
    customer.join(&format!("order:{order}")).await;
    let mut staff = Ws::authed(&server, &staff_at(6, restaurant)).await;
    staff.join(&format!("order:{order}")).await;
    staff.join(&format!("order:{other}")).await;
    let mut bare = Bare::connect(&server, &token(5, &["user"])).await;

    let res = server
        .patch(
            &format!("/api/orders/{order}"),
            &service(),
            &json!({ "status": "preparing" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    for ws in [&mut customer, &mut staff] {
        let update = ws.expect("order_update").await;
        assert_eq!(
            update["payload"],
            json!({ "order_id": order, "status": "preparing", "previous_status": "new",
                    "updated_at": body["updated_at"] })
        );
    }
    // Other changes than the status: no order_update.
    let res = server
        .patch(
            &format!("/api/orders/{order}"),
            &service(),
            &json!({ "table_number": "12" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    // A move on the restaurant board over socket.io reaches the channel too.
    let board = server
        .client_with("/restaurant", &staff_at(6, restaurant))
        .await;
    let ack = board
        .emit_ack(
            "order:update_status",
            json!({ "restaurantId": restaurant, "orderId": other, "status": "ready" }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let update = staff.expect("order_update").await;
    assert_eq!(update["payload"]["order_id"], other.as_str());
    assert_eq!(update["payload"]["status"], "ready");
    customer.quiet(QUIET).await;
    bare.quiet(Duration::ZERO).await;
}

#[sqlx::test]
async fn bare_connections_have_the_rate_limit_and_token_expiry_of_the_envelope(pool: PgPool) {
    let server = TestServer::start_with(
        pool.clone(),
        &[
            ("RATE_LIMIT_PER_SEC", "1"),
            ("RATE_LIMIT_BURST", "3"),
            ("JWT_LEEWAY_SECS", "0"),
        ],
    )
    .await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let short = sign(json!({ "sub": 1, "roles": ["user"], "exp": now_secs() + 3 }));
    // `connect` spends one message of the burst.
    let mut bare = Bare::connect(&server, &short).await;
    bare.send(json!({})).await;
    bare.send(json!({})).await;
    bare.send(json!({ "conversation_id": conversation, "content": "over" }))
        .await;
    bare.expect_error("BAD_REQUEST").await;
    bare.expect_error("BAD_REQUEST").await;
    bare.expect_error("RATE_LIMITED").await;
    bare.quiet(QUIET).await;
    let stored: i64 = sqlx::query_scalar("select count(*) from messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "a rate-limited send is dropped");
    let mut ws = Ws {
        stream: bare.stream,
    };
    assert_eq!(ws.close_code(Duration::from_secs(8)).await, 4001);
    wait_metric(
        &server,
        &closes("token_expired"),
        1.0,
        Duration::from_secs(5),
    )
    .await;
}

#[sqlx::test]
async fn shutdown_answers_every_chat_message_it_stored_before_closing_with_1001(pool: PgPool) {
    let server = TestServer::start_with(pool.clone(), UNLIMITED).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut ws = Ws::authed(&server, &token(1, &["user"])).await;
    // Sends queued on the socket; shutdown once the server is working through them:
    // whatever it took is stored and answered before the close frame, what it did not
    // take is neither.
    for n in 0..200 {
        ws.send(json!({ "type": "chat_message", "id": format!("m{n}"),
            "payload": { "conversation_id": conversation, "content": format!("n{n}") } }))
            .await;
    }
    let first = ws.expect("chat_message").await;
    assert_eq!(first["id"], "m0");
    let stopping = tokio::spawn(server.stop());
    let mut answered = vec![first["payload"]["message"]["content"].clone()];
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(message["type"], "chat_message", "{message}");
                answered.push(message["payload"]["message"]["content"].clone());
            }
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                // Sends the protocol's answer, so the server need not wait for it.
                let _ = ws.stream.flush().await;
                break u16::from(frame.code);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected messages then a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1001);
    assert!(
        answered.len() < 200,
        "shutdown does not wait for a backlog the server had not taken"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
    let stored: Vec<String> = sqlx::query_scalar("select content from messages order by seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    let answered: Vec<String> = answered
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        answered, stored,
        "each stored send answered, in order, before 1001"
    );
}

// ---------------------------------------------------------------------------------
// Across the nodes of a cluster

/// Two nodes on `pool`'s database and `adapter`, a cluster of their own.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    (a, b)
}

/// Everything a plain connection gets reaches it whichever node caused it, once, on
/// both adapters: a publication, a notification (envelope and bare), an order's status
/// change, a chat message sent over socket.io, a broadcast, and a grant revoked.
#[sqlx::test]
async fn plain_connections_get_what_another_node_caused_once(pool: PgPool) {
    for adapter in ["postgres", "redis"] {
        let (a, b) = two_nodes(&pool, adapter).await;
        let user = 71;
        // On B: an envelope and a bare connection of the user, a service connection.
        let mut env = Ws::authed(&b, &token(user, &["user"])).await;
        let mut bare = Bare::connect(&b, &token(user, &["user"])).await;
        let mut svc = Ws::authed(&b, &service()).await;
        // On A: the user's own envelope connection, which must not get doubles.
        let mut here = Ws::authed(&a, &token(user, &["user"])).await;
        let news = format!("public:news-{}", Uuid::new_v4().simple());
        env.join(&news).await;
        here.join(&news).await;

        publish(&a, &news, "flash", json!({ "n": 1 })).await;
        for ws in [&mut env, &mut here] {
            let got = ws.expect("flash").await;
            assert_eq!(got["payload"], json!({ "n": 1 }), "{adapter}");
            ws.quiet(QUIET).await;
        }

        let res = a
            .post(
                "/api/notifications",
                &service(),
                &json!({ "user_id": user, "type": "system", "title": "Hi", "content": "there" }),
            )
            .await;
        assert_eq!(res.status(), 201);
        assert_eq!(env.expect("notification").await["payload"]["title"], "Hi");
        let n = bare.recv().await;
        assert_eq!(
            (n["event"].as_str(), n["title"].as_str()),
            (Some("created"), Some("Hi"))
        );
        assert_eq!(here.expect("notification").await["payload"]["title"], "Hi");
        env.quiet(QUIET).await;
        bare.quiet(Duration::ZERO).await;
        here.quiet(Duration::ZERO).await;

        let r = create_restaurant(&a, "Bistro").await;
        let order = create_order(&a, r, None).await;
        svc.join(&format!("order:{order}")).await;
        let res = a
            .patch(
                &format!("/api/orders/{order}"),
                &service(),
                &json!({ "status": "ready" }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let update = svc.expect("order_update").await;
        assert_eq!(update["payload"]["status"], "ready", "{adapter}");
        svc.quiet(QUIET).await;

        let conversation = create_conversation(&a, 72, "group", &[user]).await;
        let sender = a.client("/chat", 72).await;
        sender.send_message(&conversation, "across").await;
        assert_eq!(
            env.expect("chat_message").await["payload"]["message"]["content"],
            "across"
        );
        assert_eq!(bare.recv().await["content"], "across");
        assert_eq!(
            here.expect("chat_message").await["payload"]["message"]["content"],
            "across"
        );
        env.quiet(QUIET).await;
        bare.quiet(Duration::ZERO).await;
        here.quiet(Duration::ZERO).await;

        broadcast(&a, &service(), "All", "hands").await;
        for ws in [&mut env, &mut svc, &mut here] {
            assert_eq!(ws.expect("notification").await["payload"]["title"], "All");
            ws.quiet(QUIET).await;
        }
        assert_eq!(bare.recv().await["title"], "All");
        bare.quiet(Duration::ZERO).await;

        let tenant = format!("tenant:t-{}", Uuid::new_v4().simple());
        assert_eq!(grant(&a, reqwest::Method::POST, &tenant, user).await, 201);
        env.join(&tenant).await;
        assert_eq!(grant(&a, reqwest::Method::DELETE, &tenant, user).await, 204);
        let gone = env.expect("unsubscribed").await;
        assert_eq!(gone["payload"]["channel"], tenant.as_str(), "{adapter}");
        publish(&a, &tenant, "after", json!({})).await;
        env.quiet(QUIET).await;

        assert_eq!(
            metric(&a, "switchboard_ws_cluster_casts_dropped_total").await,
            0.0
        );
    }
}

/// While the bus cannot take casts (Redis frozen), a node still delivers to its own
/// connections and answers its callers; the casts past the queue are dropped and
/// counted, and once Redis answers again other nodes get new deliveries.
#[sqlx::test]
async fn a_stalled_bus_drops_counted_casts_and_local_delivery_goes_on(pool: PgPool) {
    let port = crate::support::child::free_port();
    let redis = OwnRedis::start_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = format!("sbtest-{}", Uuid::new_v4().simple());
    let vars = [
        ("ADAPTER", "redis"),
        ("REDIS_URL", url.as_str()),
        ("ADAPTER_PREFIX", prefix.as_str()),
        ("REST_RATE_LIMIT_PER_SEC", "100000"),
        ("REST_RATE_LIMIT_BURST", "100000"),
    ];
    let a = TestServer::start_with(pool.clone(), &vars).await;
    let b = TestServer::start_with(pool.clone(), &vars).await;
    a.serving().await;
    b.serving().await;
    let news = format!("public:news-{}", Uuid::new_v4().simple());
    let mut here = Ws::connect(&a, "").await;
    let mut there = Ws::connect(&b, "").await;
    here.join(&news).await;
    there.join(&news).await;
    publish(&a, &news, "flash", json!({ "n": 0 })).await;
    here.expect("flash").await;
    there.expect("flash").await;

    redis.pause();
    let dropped = "switchboard_ws_cluster_casts_dropped_total";
    assert_eq!(metric_at(&a.base, dropped).await, 0.0);
    let sent = CAST_QUEUE + 200;
    // Each call is answered although the bus takes nothing.
    let publishing = async {
        for n in 1..=sent {
            publish(&a, &news, "flash", json!({ "n": n })).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), publishing)
        .await
        .expect("publish calls answered while Redis is frozen");
    for n in 1..=sent {
        assert_eq!(here.expect("flash").await["payload"]["n"], n);
    }
    let lost = metric_at(&a.base, dropped).await;
    assert!(lost >= 100.0, "{lost} casts dropped of {sent}");

    redis.resume();
    // Whatever was in flight drains first; then a new publication crosses again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 10_000;
    'crossing: loop {
        assert!(
            Instant::now() < deadline,
            "no delivery on B after Redis came back"
        );
        n += 1;
        publish(&a, &news, "flash", json!({ "n": n })).await;
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(got) = tokio::time::timeout_at(until.into(), there.recv()).await {
            if got["payload"]["n"] == n {
                break 'crossing;
            }
        }
    }
}

/// The cast queue's length (`CAST_QUEUE` in `src/ws/cluster.rs`).
const CAST_QUEUE: u64 = 1024;
