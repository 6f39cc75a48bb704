//! `/ws`'s bare dialect of seed 002 (contract §7.3): how it is chosen, its errors, a
//! send stored and delivered, edits and deletes in full, and the limits it shares with
//! the envelope dialect (§7.1).

use std::time::Duration;

use super::*;
use crate::support::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

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
    wait_closes(&server, "token_expired", 1.0).await;
}
