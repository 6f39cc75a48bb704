//! `/chat` members (contract §4's `members:add` and `members:remove`): who may add and
//! remove, what the added and removed hear, and the member cap under concurrency.

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn owner_adds_members_who_start_with_nothing_unread(pool: PgPool) {
    let (server, conv, owner, bob) = pair(pool).await;
    owner.send_message(&conv, "before carol").await;
    let carol = server.client("/chat", 3).await;
    carol.recv("unread:count").await;

    bob.refused("members:add", member(&conv, 4), "FORBIDDEN")
        .await;
    owner.ok("members:add", member(&conv, 3)).await;
    let expected = member(&conv, 3);
    assert_eq!(carol.recv("members:added").await, expected);
    assert_eq!(bob.recv("members:added").await, expected);
    // Adding again succeeds without a broadcast.
    owner.ok("members:add", member(&conv, "3")).await;
    bob.expect_none("members:added", QUIET).await;
    // Carol can now join; the message from before she was added is not unread.
    carol.join(&conv).await;
    let again = server.client("/chat", 3).await;
    assert_eq!(again.recv("unread:count").await["total"], 0);

    let private = create_conversation(&server, 1, "private", &[2]).await;
    owner
        .refused("members:add", member(&private, 3), "BAD_REQUEST")
        .await;
}

#[sqlx::test]
async fn removed_member_hears_it_then_stops_receiving(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2, 3]).await;
    let owner = joined(&server, 1, &conv).await;
    let bob = joined(&server, 2, &conv).await;
    let carol = joined(&server, 3, &conv).await;
    carol
        .refused("members:remove", member(&conv, 2), "FORBIDDEN")
        .await;
    owner.ok("members:remove", member(&conv, 2)).await;
    let expected = member(&conv, 2);
    assert_eq!(bob.recv("members:removed").await, expected);
    assert_eq!(carol.recv("members:removed").await, expected);
    bob.expect_none("members:removed", QUIET).await;

    owner.send_message(&conv, "after").await;
    carol.recv("message:created").await;
    bob.expect_none("message:created", QUIET).await;
    bob.refused(
        "message:list",
        json!({ "conversationId": conv }),
        "FORBIDDEN",
    )
    .await;
    owner
        .refused("members:remove", member(&conv, 2), "NOT_FOUND")
        .await;
    // A member may leave by removing itself.
    carol.ok("members:remove", member(&conv, 3)).await;
}

async fn member_count(pool: &PgPool, conversation: &str) -> i64 {
    sqlx::query_scalar("select count(*) from conversation_members where conversation_id = $1")
        .bind(Uuid::parse_str(conversation).unwrap())
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn conversations_are_capped_at_create_and_at_members_add(pool: PgPool) {
    let server = TestServer::start_with(pool.clone(), &[("MAX_CONVERSATION_MEMBERS", "3")]).await;
    // Create: the creator counts; repeats do not.
    let res = server
        .post(
            "/api/conversations",
            &token(1, &["user"]),
            &json!({ "type": "group", "participants": [2, 3, 4] }),
        )
        .await;
    let message = bad_request(res, "four participants").await;
    assert!(message.starts_with("participants:"), "{message}");
    let conversations: i64 = sqlx::query_scalar("select count(*) from conversations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(conversations, 0, "a refused create stored something");
    let conv = create_conversation(&server, 1, "group", &[2, 2, 1]).await;

    // members:add up to the cap, then refused; an existing member is still fine.
    let owner = server.client("/chat", 1).await;
    let add = |user: i64| {
        let conv = conv.clone();
        let owner = &owner;
        async move { owner.emit_ack("members:add", member(&conv, user)).await }
    };
    owner.join(&conv).await;
    assert_ok(&add(3).await);
    assert_eq!(owner.recv("members:added").await["userId"], 3);
    let refused = add(4).await;
    assert_error(&refused, "BAD_REQUEST");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3 members"),
        "{refused}"
    );
    assert_eq!(member_count(&pool, &conv).await, 3);
    assert_ok(&add(3).await);
    // Neither the refused add nor the repeat announced anything.
    owner.expect_none("members:added", QUIET).await;
}

#[sqlx::test]
async fn two_concurrent_adds_at_the_cap_minus_one_cannot_both_succeed(pool: PgPool) {
    let server = TestServer::start_with(pool.clone(), &[("MAX_CONVERSATION_MEMBERS", "3")]).await;
    // Two devices of the owner, so the two adds run side by side on the server.
    let first = server.client("/chat", 1).await;
    let second = server.client("/chat", 1).await;
    for round in 0..15_i64 {
        let conv = create_conversation(&server, 1, "group", &[2]).await;
        let (a, b) = tokio::join!(
            first.emit_ack(
                "members:add",
                json!({ "conversationId": conv, "userId": 100 + round }),
            ),
            second.emit_ack(
                "members:add",
                json!({ "conversationId": conv, "userId": 200 + round }),
            ),
        );
        let oks = [&a, &b].iter().filter(|ack| ack["ok"] == true).count();
        assert_eq!(oks, 1, "round {round}: {a} / {b}");
        let failed = if a["ok"] == true { &b } else { &a };
        assert_error(failed, "BAD_REQUEST");
        assert_eq!(member_count(&pool, &conv).await, 3, "round {round}");
    }
}
