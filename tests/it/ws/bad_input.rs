//! `/ws` bad input (contract §7.1's incoming frames and rate limit, §7.2's errors and
//! channel cap): an error in the dialect with the request's `id`, the connection stays
//! open and nothing changes.

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

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
