//! `/chat` messages (contract §4's `message:send`, `message:edit`, `message:delete` and
//! their rules): stored, acked and broadcast; `clientId` idempotence; who may edit and
//! delete; bad messages refused with nothing written.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn sent_message_is_stored_acked_and_broadcast_to_others(pool: PgPool) {
    let (_server, conv, alice, bob) = pair(pool.clone()).await;
    bob.recv("unread:count").await;

    let ack = alice
        .emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": "  hello  ", "attachments": ["https://cdn.example/a.png"], "sender_id": 99 }),
        )
        .await;
    let msg = assert_ok(&ack);
    assert_eq!(msg["content"], "hello");
    assert_eq!(
        msg["sender_id"], 1,
        "the sender comes from the token, not the payload"
    );
    assert_eq!(msg["conversation_id"], json!(conv));
    assert_eq!(msg["attachments"], json!(["https://cdn.example/a.png"]));
    assert_eq!(msg["seen_by"], json!([]));
    assert_eq!(msg["updated_at"], Value::Null);
    let created_at = msg["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );

    assert_eq!(bob.recv("message:created").await, msg);
    let unread = bob.recv("unread:count").await;
    assert_eq!(
        unread,
        json!({ "total": 1, "byConversation": { conv.clone(): 1 } })
    );
    alice.expect_none("message:created", QUIET).await;

    let stored: (String, i64) =
        sqlx::query_as("select content, sender_id::bigint from messages where id = $1")
            .bind(Uuid::parse_str(msg["_id"].as_str().unwrap()).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, ("hello".to_owned(), 1));
}

#[sqlx::test]
async fn client_id_makes_send_idempotent(pool: PgPool) {
    let (_server, conv, alice, bob) = pair(pool.clone()).await;
    let payload = json!({ "conversationId": conv, "content": "once", "clientId": "c-1" });
    let first = alice.ok("message:send", payload.clone()).await;
    let again = alice.ok("message:send", payload).await;
    assert_eq!(first["_id"], again["_id"]);
    assert_eq!(first["client_id"], "c-1");
    bob.recv("message:created").await;
    bob.expect_none("message:created", QUIET).await;
    assert_eq!(count_messages(&pool).await, 1);
}

#[sqlx::test]
async fn bad_messages_are_refused_and_nothing_is_written(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let alice = joined(&server, 1, &conv).await;
    let cases = [
        (
            json!({ "conversationId": conv, "content": "   " }),
            "content",
        ),
        (
            json!({ "conversationId": conv, "content": "x".repeat(4001) }),
            "content",
        ),
        (
            json!({ "conversationId": conv, "content": "x", "attachments": ["not a url"] }),
            "attachments",
        ),
        (json!({ "conversationId": conv, "content": 5 }), "content"),
        (json!({ "content": "x" }), "conversationId"),
        (json!("just a string"), "invalid type"),
    ];
    for (payload, field) in cases {
        let ack = alice.emit_ack("message:send", payload.clone()).await;
        assert_error(&ack, "BAD_REQUEST");
        assert!(
            ack["error"]["message"].as_str().unwrap().contains(field),
            "{payload} -> {ack}"
        );
    }
    // No payload at all still gets an answer.
    assert_error(
        &alice.emit_ack_args("message:send", vec![]).await,
        "BAD_REQUEST",
    );
    let outsider = server.client("/chat", 3).await;
    outsider
        .refused(
            "message:send",
            json!({ "conversationId": conv, "content": "hi" }),
            "FORBIDDEN",
        )
        .await;
    assert_eq!(count_messages(&pool).await, 0);
}

#[sqlx::test]
async fn only_the_sender_edits(pool: PgPool) {
    let (_server, conv, alice, bob) = pair(pool).await;
    let msg = alice.send_message(&conv, "v1").await;
    let id = msg["_id"].clone();
    bob.refused(
        "message:edit",
        json!({ "messageId": id, "content": "hacked" }),
        "FORBIDDEN",
    )
    .await;
    let edited = alice
        .ok("message:edit", json!({ "messageId": id, "content": "v2" }))
        .await;
    assert_eq!(edited["content"], "v2");
    assert!(edited["updated_at"].is_string());
    assert_eq!(bob.recv("message:updated").await["content"], "v2");
    assert_eq!(
        alice.recv("message:updated").await["content"],
        "v2",
        "the actor's socket hears it too"
    );
    let missing = json!({ "messageId": Uuid::new_v4(), "content": "x" });
    alice.refused("message:edit", missing, "NOT_FOUND").await;
}

#[sqlx::test]
async fn sender_or_owner_deletes_and_deleted_messages_leave_history(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2, 3]).await;
    let owner = joined(&server, 1, &conv).await;
    let bob = joined(&server, 2, &conv).await;
    let carol = joined(&server, 3, &conv).await;
    let by_bob = bob.send_message(&conv, "bob").await;
    carol
        .refused(
            "message:delete",
            json!({ "messageId": by_bob["_id"] }),
            "FORBIDDEN",
        )
        .await;
    owner
        .ok("message:delete", json!({ "messageId": by_bob["_id"] }))
        .await;
    let deleted = carol.recv("message:deleted").await;
    assert_eq!(
        deleted,
        json!({ "messageId": by_bob["_id"], "conversationId": conv })
    );
    let page = carol
        .ok("message:list", json!({ "conversationId": conv }))
        .await;
    assert_eq!(page, json!([]));
    bob.refused(
        "message:delete",
        json!({ "messageId": by_bob["_id"] }),
        "NOT_FOUND",
    )
    .await;
}

#[sqlx::test]
async fn client_id_is_scoped_to_its_conversation(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let first = create_conversation(&server, 1, "group", &[]).await;
    let second = create_conversation(&server, 1, "group", &[]).await;
    let c = server.client("/chat", 1).await;
    let a = c
        .ok(
            "message:send",
            json!({ "conversationId": first, "content": "a", "clientId": "k" }),
        )
        .await;
    let b = c
        .ok(
            "message:send",
            json!({ "conversationId": second, "content": "b", "clientId": "k" }),
        )
        .await;
    assert_ne!(a["_id"], b["_id"]);
    assert_eq!(b["conversation_id"], json!(second));
    assert_eq!(count_messages(&pool).await, 2);
}

#[sqlx::test]
async fn an_admin_moderates_without_being_a_member(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let bob = joined(&server, 2, &conv).await;
    let msg = bob.send_message(&conv, "spam").await;
    let admin = server.client_with("/chat", &token(99, &["admin"])).await;
    admin
        .ok("message:delete", json!({ "messageId": msg["_id"] }))
        .await;
    assert_eq!(bob.recv("message:deleted").await["messageId"], msg["_id"]);
    let outsider = server.client("/chat", 3).await;
    let other = bob.send_message(&conv, "x").await;
    outsider
        .refused(
            "message:delete",
            json!({ "messageId": other["_id"] }),
            "FORBIDDEN",
        )
        .await;
}
