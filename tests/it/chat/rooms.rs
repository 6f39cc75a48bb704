//! `/chat` rooms (contract §4): `unread:count` at connect, `conversation:join` for
//! members only.

use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn connect_sends_unread_count(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/chat", 1).await;
    assert_eq!(
        c.recv("unread:count").await,
        json!({ "total": 0, "byConversation": {} })
    );
}

#[sqlx::test]
async fn member_joins_and_non_member_is_forbidden(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let member = server.client("/chat", 2).await;
    member.join(&conv).await;
    let outsider = server.client("/chat", 3).await;
    outsider
        .refused(
            "conversation:join",
            json!({ "conversationId": conv }),
            "FORBIDDEN",
        )
        .await;
    let unknown = Uuid::new_v4().to_string();
    outsider
        .refused(
            "conversation:join",
            json!({ "conversationId": unknown }),
            "NOT_FOUND",
        )
        .await;
    let bad = outsider
        .emit_ack("conversation:join", json!({ "conversationId": "nope" }))
        .await;
    assert_error(&bad, "BAD_REQUEST");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("conversationId"),
        "{bad}"
    );
    member
        .ok("conversation:leave", json!({ "conversationId": conv }))
        .await;
}
