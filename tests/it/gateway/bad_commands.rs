//! Gateway commands that fail (contract §7.4's error reasons, §7.1's rate limit and
//! limits, §7.7's bad frames): a reason in `{entity}.error`, the connection stays open.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[sqlx::test]
async fn bad_commands_get_a_reason_and_the_connection_stays(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Diner", "main").await;
    table(&server, r, "t1", "One", "main").await;
    let mut gw = Gw::connect(&server, "tables", "main", &service()).await;
    let cases = [
        ("delete_table", json!({}), "unknown_action"),
        ("list_restaurants", json!({}), "unknown_action"),
        ("get_table", json!({}), "invalid_payload"),
        ("get_table", json!({ "id": 17 }), "invalid_payload"),
        (
            "get_table",
            json!({ "id": "t1", "restaurant_id": "nope" }),
            "invalid_payload",
        ),
        ("get_table", json!({ "id": "missing" }), "not_found"),
        ("list", json!({ "page": 0 }), "invalid_payload"),
        ("list", json!({ "limit": 0 }), "invalid_payload"),
        ("list", json!({ "limit": 101 }), "invalid_payload"),
        ("list", json!({ "page": "2" }), "invalid_payload"),
        (
            "list",
            json!({ "search": "s".repeat(10_000) }),
            "invalid_payload",
        ),
    ];
    for (action, payload, reason) in cases {
        assert_eq!(
            gw.error(action, payload.clone()).await,
            reason,
            "{action} {payload}"
        );
    }
    // Restaurant and reservation ids are UUIDs.
    let mut restaurants = Gw::connect(&server, "restaurants", "all", &service()).await;
    assert_eq!(
        restaurants
            .error("get_restaurant", json!({ "id": "r1" }))
            .await,
        "invalid_payload"
    );
    assert_eq!(
        restaurants
            .error("get_restaurant", json!({ "id": Uuid::new_v4() }))
            .await,
        "not_found"
    );
    // Frames that are not commands.
    for frame in [
        "not json",
        "[1,2]",
        "\"list\"",
        r#"{"payload":{}}"#,
        r#"{"action":"list","payload":[1]}"#,
    ] {
        gw.send(Message::text(frame)).await;
        let reply = gw.next().await;
        assert_eq!(error_reason(&reply), "invalid_payload", "{frame}");
    }
    gw.send_json(json!({ "request_id": "r-9", "action": 3 }))
        .await;
    let reply = gw.next().await;
    assert_eq!(
        (
            error_reason(&reply).as_str(),
            reply["metadata"]["request_id"].as_str()
        ),
        ("invalid_payload", Some("r-9"))
    );
    gw.send(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(error_reason(&gw.next().await), "invalid_payload");
    // An unknown action's text comes back cut short.
    gw.send_json(json!({ "action": "x".repeat(5000), "request_id": "long" }))
        .await;
    let reply = gw.next().await;
    assert_eq!(error_reason(&reply), "unknown_action");
    assert!(reply.to_string().len() < 1000, "{reply}");
    // Still connected and serving.
    assert_eq!(
        gw.ok("get_table", json!({ "id": "t1" }), "tables.detail")
            .await["id"],
        "t1"
    );
}

#[sqlx::test]
async fn the_rate_limit_answers_rate_limited_and_drops_the_command(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[("RATE_LIMIT_BURST", "3"), ("RATE_LIMIT_PER_SEC", "0.01")],
    )
    .await;
    let mut gw = Gw::connect(&server, "restaurants", "main", &token(3, &["user"])).await;
    for _ in 0..3 {
        gw.ok("list", json!({}), "restaurants.list").await;
    }
    assert_eq!(gw.error("list", json!({})).await, "rate_limited");
    gw.send(Message::text("nope")).await;
    assert_eq!(error_reason(&gw.next().await), "rate_limited");
}

#[sqlx::test]
async fn gateway_connections_have_the_limits_of_ws(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut big = Gw::connect(&server, "tables", "main", &service()).await;
    big.send(Message::text(format!(
        r#"{{"action":"list","pad":"{}"}}"#,
        "x".repeat(2048)
    )))
    .await;
    assert_eq!(big.close_code(Duration::from_secs(5)).await, 1009);
    let mut a = Gw::connect(&server, "tables", "main", &service()).await;
    let mut b = Gw::connect(&server, "restaurant", "all", &token(2, &["user"])).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(a.close_code(Duration::from_secs(10)).await, 1001);
    assert_eq!(b.close_code(Duration::from_secs(10)).await, 1001);
    stopping.await.unwrap().unwrap();
}
