//! `/ws` handshake and authentication (contract §7.1's refusals before the upgrade,
//! §7.2's `?token=` and `auth` message): who is confirmed, who stays unauthenticated, and
//! what an unauthenticated connection may subscribe to.

use super::*;
use crate::support::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
