//! `/chat` under concurrent sends, reads and deletes (contract §4's rules: unread counts
//! are exact, each message is acked and delivered once).

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test]
async fn unread_counts_stay_exact_under_concurrent_sends_reads_and_deletes(pool: PgPool) {
    let server = TestServer::start_with(pool.clone(), &[("RATE_LIMIT_BURST", "1000")]).await;
    let conv = create_conversation(&server, 1, "group", &[2, 3, 4]).await;
    let reader = joined(&server, 4, &conv).await;
    let mut senders = vec![];
    for user in 1..=3 {
        senders.push(joined(&server, user, &conv).await);
    }
    let sending = futures_util::future::join_all(senders.iter().map(|s| {
        let conv = conv.clone();
        async move {
            let mut ids = vec![];
            for i in 0..30 {
                let m = s
                    .ok(
                        "message:send",
                        json!({ "conversationId": conv, "content": format!("{i}") }),
                    )
                    .await;
                ids.push(m["_id"].clone());
            }
            ids
        }
    }));
    let reading = async {
        for _ in 0..20 {
            let page = reader
                .ok(
                    "message:list",
                    json!({ "conversationId": conv, "limit": 1 }),
                )
                .await;
            if let Some(newest) = page.as_array().unwrap().first() {
                reader
                    .ok("message:read", json!({ "messageId": newest["_id"] }))
                    .await;
            }
        }
    };
    let (ids, ()) = tokio::join!(sending, reading);
    // Delete a few, some read by user 4 already and some not.
    for id in ids.iter().flatten().step_by(7) {
        let owner = &senders[0];
        owner.ok("message:delete", json!({ "messageId": id })).await;
    }
    let truth: Vec<(i64, i64)> = sqlx::query_as(
        "select cm.user_id::bigint, (select count(*) from messages m where m.conversation_id = cm.conversation_id
            and m.seq > cm.last_read_seq and m.sender_id <> cm.user_id and m.deleted_at is null)
         from conversation_members cm order by cm.user_id::bigint",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (user, expected) in truth {
        let fresh = server.client("/chat", user).await;
        assert_eq!(
            fresh.recv("unread:count").await["total"],
            expected,
            "user {user}"
        );
    }
}

/// Many sends at once share transactions (see `store/chat_send.rs`): every one is acked
/// and delivered once, and the unread counters come out exactly as if they had been
/// written one by one. (Sends a client pipelines without waiting for acks run
/// concurrently, so their order is not promised.)
#[sqlx::test]
async fn concurrent_sends_keep_order_and_exact_unread_counts(pool: PgPool) {
    const PER_USER: usize = 20;
    let server = TestServer::start(pool).await;
    let users: Vec<i64> = (1..=5).collect();
    let conv = create_conversation(&server, 1, "group", &users[1..]).await;
    // A second conversation written at the same time, sharing members.
    let other = create_conversation(&server, 2, "group", &[1, 3]).await;
    let mut clients = Vec::new();
    for u in &users {
        clients.push(joined(&server, *u, &conv).await);
    }
    let sends = clients.iter().zip(&users).map(|(c, u)| {
        let conv = conv.clone();
        let other = other.clone();
        async move {
            // Emitted back to back without waiting: all in flight together.
            let acks = futures_util::future::join_all((0..PER_USER).map(|i| {
                let target = if *u <= 3 && i % 5 == 0 { &other } else { &conv };
                c.emit_ack(
                    "message:send",
                    json!({ "conversationId": target, "content": format!("u{u}-{i}") }),
                )
            }))
            .await;
            for ack in &acks {
                assert_ok(ack);
            }
            acks
        }
    });
    let acks: Vec<Value> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .flatten()
        .collect();
    let ids: std::collections::HashSet<String> = acks
        .iter()
        .map(|a| a["data"]["_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), users.len() * PER_USER);

    // Every member got each other member's messages in `conv` once.
    for (c, u) in clients.iter().zip(&users) {
        let expected = acks
            .iter()
            .filter(|a| {
                a["data"]["conversation_id"] == json!(conv) && a["data"]["sender_id"] != json!(u)
            })
            .count();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..expected {
            let m = c.recv("message:created").await;
            assert_ne!(m["sender_id"], json!(u), "own message echoed");
            assert!(seen.insert(m["_id"].clone()), "delivered twice: {m}");
        }
        c.expect_none("message:created", QUIET).await;
    }

    for target in [&conv, &other] {
        let history = clients[0]
            .emit_ack(
                "message:list",
                json!({ "conversationId": target, "limit": 100 }),
            )
            .await;
        let mut history: Vec<Value> = assert_ok(&history).as_array().unwrap().clone();
        history.reverse(); // oldest first
        // Unread: what others sent after one's own last message (or everything others
        // sent, for a member who sent nothing here).
        for u in &users {
            let is_member = target == &conv || [1, 2, 3].contains(u);
            if !is_member {
                continue;
            }
            let last_own = history.iter().rposition(|m| m["sender_id"] == json!(u));
            let expected = history
                .iter()
                .skip(last_own.map_or(0, |p| p + 1))
                .filter(|m| m["sender_id"] != json!(u))
                .count();
            let fresh = server.client("/chat", *u).await;
            let count = fresh.recv("unread:count").await;
            let got = count["byConversation"][target.as_str()]
                .as_u64()
                .unwrap_or(0);
            assert_eq!(
                got as usize, expected,
                "unread of user {u} in {target}: {count}"
            );
        }
    }
}
