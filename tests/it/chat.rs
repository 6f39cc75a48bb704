//! `/chat` end to end: a real server, a real database per test, a socket.io client over
//! a real websocket.
//!
//! Past 400 lines: one test per `/chat` contract row (ten events, their refusals and REST
//! twins); each test reads alone.

use std::time::Duration;

use crate::support::sio::{connect_polling_handshake, encode_sio_packet, parse_sio_packet};
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

async fn count_messages(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from messages")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What `members:add` and `members:remove` take and announce.
fn member(conversation: &str, user: impl serde::Serialize) -> Value {
    json!({ "conversationId": conversation, "userId": user })
}

async fn joined(server: &TestServer, user: i64, conversation: &str) -> SioClient {
    let c = server.client("/chat", user).await;
    c.join(&conversation).await;
    c
}

/// A server with a group conversation of user 1 (its owner) and user 2, both joined.
async fn pair(pool: PgPool) -> (TestServer, String, SioClient, SioClient) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let one = joined(&server, 1, &conv).await;
    let two = joined(&server, 2, &conv).await;
    (server, conv, one, two)
}

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
async fn errors_without_an_ack_arrive_as_error_events(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/chat", 1).await;
    c.emit("message:send", json!({ "content": "" })).await;
    let err = c.recv("error").await;
    assert_eq!(err["code"], "BAD_REQUEST");
    assert!(err["message"].as_str().unwrap().contains("conversationId"));
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
async fn read_cursor_moves_forward_only_and_updates_counts(pool: PgPool) {
    let (server, conv, alice, bob) = pair(pool).await;
    let bob_phone = server.client("/chat", 2).await;
    let mut ids = vec![];
    for i in 0..3 {
        let m = alice
            .ok(
                "message:send",
                json!({ "conversationId": conv, "content": format!("m{i}") }),
            )
            .await;
        ids.push(m["_id"].clone());
    }
    // Read up to the second: one left.
    bob.ok("message:read", json!({ "messageId": ids[1] })).await;
    let read = alice.recv("message:read").await;
    assert_eq!(read["messageId"], ids[1]);
    assert_eq!(read["readerId"], 2);
    assert_eq!(read["conversationId"], json!(conv));
    assert!(read["readAt"].as_str().unwrap().ends_with('Z'));
    // Every device of the reader gets the new count.
    let last = recv_until(&bob_phone, "unread:count", |c| c["total"] == 1).await;
    assert_eq!(
        last,
        json!({ "total": 1, "byConversation": { conv.clone(): 1 } })
    );
    // Reading an older message does not move the cursor back.
    bob.ok("message:read", json!({ "messageId": ids[0] })).await;
    let page = bob
        .ok("message:list", json!({ "conversationId": conv }))
        .await;
    let seen: Vec<Value> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seen_by"].clone())
        .collect();
    assert_eq!(
        seen,
        vec![json!([]), json!([2]), json!([2])],
        "newest first"
    );
    // Own messages never count as unread.
    let fresh = server.client("/chat", 1).await;
    assert_eq!(fresh.recv("unread:count").await["total"], 0);
}

#[sqlx::test]
async fn history_pages_with_before_and_after(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let c = joined(&server, 1, &conv).await;
    let mut ids = vec![];
    for i in 0..5 {
        let m = c
            .ok(
                "message:send",
                json!({ "conversationId": conv, "content": format!("{i}") }),
            )
            .await;
        ids.push(m["_id"].clone());
    }
    let contents = |page: &Value| -> Vec<String> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "limit": 2 }),
        )
        .await;
    assert_eq!(contents(&newest), ["4", "3"]);
    let older = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "before": ids[3], "limit": 2 }),
        )
        .await;
    assert_eq!(contents(&older), ["2", "1"]);
    let after = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "after": ids[1] }),
        )
        .await;
    assert_eq!(
        contents(&after),
        ["2", "3", "4"],
        "catching up is oldest first"
    );
    for limit in [0, 101] {
        c.refused(
            "message:list",
            json!({ "conversationId": conv, "limit": limit }),
            "BAD_REQUEST",
        )
        .await;
    }
    let stranger = json!({ "conversationId": conv, "before": Uuid::new_v4() });
    c.refused("message:list", stranger, "NOT_FOUND").await;
}

#[sqlx::test]
async fn typing_reaches_others_only(pool: PgPool) {
    let (_server, conv, alice, bob) = pair(pool).await;
    alice
        .ok(
            "typing",
            json!({ "conversationId": conv, "isTyping": true }),
        )
        .await;
    assert_eq!(
        bob.recv("typing").await,
        json!({ "conversationId": conv, "userId": 1, "isTyping": true })
    );
    alice.expect_none("typing", QUIET).await;
    alice
        .refused(
            "typing",
            json!({ "conversationId": conv, "isTyping": "yes" }),
            "BAD_REQUEST",
        )
        .await;
}

/// A long-polling member that does not poll while others type: when it polls again it
/// gets every message but only the newest `typing` state (volatile, as Node's
/// `socket.volatile`), not a replay of stale ones.
#[sqlx::test]
async fn a_member_that_is_not_polling_gets_only_the_newest_typing_state(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let alice = joined(&server, 1, &conv).await;
    // Bob on raw long-polling, so the test decides when he reads.
    let sid = connect_polling_handshake(&server.base).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let http = server.http();
    let poll = || async {
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        body.split('\u{1e}').map(str::to_owned).collect::<Vec<_>>()
    };
    let post = |packet: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let res = http.post(&url).body(packet).send().await.unwrap();
            assert!(res.status().is_success());
        }
    };
    post(format!(
        "4{}",
        encode_sio_packet(
            0,
            "/chat",
            None,
            Some(&json!({ "token": token(2, &["user"]) })),
        )
    ))
    .await;
    let mut seen = Vec::new();
    while !seen.iter().any(|p: &String| p.starts_with("40/chat,")) {
        seen.extend(poll().await);
    }
    post(format!(
        "4{}",
        encode_sio_packet(
            2,
            "/chat",
            Some(1),
            Some(&json!(["conversation:join", { "conversationId": conv }])),
        )
    ))
    .await;
    while !seen.iter().any(|p| p.starts_with("43/chat,1")) {
        seen.extend(poll().await);
    }
    // Bob is not polling now: Alice starts typing, stops, and sends a message.
    for typing in [true, false, true, false] {
        alice
            .ok(
                "typing",
                json!({ "conversationId": conv, "isTyping": typing }),
            )
            .await;
    }
    let sent = alice.send_message(&conv, "hi").await;
    let mut received = Vec::new();
    while !received
        .iter()
        .any(|p: &String| p.contains("\"message:created\""))
    {
        received.extend(poll().await);
    }
    // The message and the newest typing state may come in separate responses.
    while !received.iter().any(|p| p.contains("\"typing\"")) {
        received.extend(poll().await);
    }
    let typing: Vec<&String> = received
        .iter()
        .filter(|p| p.contains("\"typing\""))
        .collect();
    assert_eq!(typing.len(), 1, "one typing state, not four: {received:?}");
    let packet = parse_sio_packet(&typing[0][1..]).unwrap();
    assert_eq!(
        packet.data,
        Some(json!(["typing", { "conversationId": conv, "userId": 1, "isTyping": false }]))
    );
    assert!(
        received
            .iter()
            .any(|p| p.contains(sent["_id"].as_str().unwrap())),
        "the message itself is never dropped: {received:?}"
    );
}

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

#[sqlx::test]
async fn unknown_events_are_answered(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/chat", 1).await;
    let ack = c.emit_ack("no:such:event", json!({})).await;
    assert_error(&ack, "BAD_REQUEST");
    assert_eq!(ack["error"]["message"], "unknown event");
}

#[sqlx::test]
async fn rate_limit_is_per_event_and_refuses_the_excess(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[("RATE_LIMIT_PER_SEC", "0.01"), ("RATE_LIMIT_BURST", "5")],
    )
    .await;
    let c = server.client("/chat", 1).await;
    let payload = json!({ "conversationId": Uuid::new_v4(), "isTyping": true });
    for _ in 0..5 {
        c.refused("typing", payload.clone(), "NOT_FOUND").await;
    }
    c.refused("typing", payload.clone(), "RATE_LIMITED").await;
    // Another event has its own bucket; unknown events are counted too.
    c.refused(
        "message:list",
        json!({ "conversationId": Uuid::new_v4() }),
        "NOT_FOUND",
    )
    .await;
    for _ in 0..5 {
        c.emit_ack("nope", json!({})).await;
    }
    c.refused("nope", json!({}), "RATE_LIMITED").await;
}

// The server gets a pool of its own here: connections refused during the outage must
// not count against the pool that `#[sqlx::test]` shares between tests.
#[sqlx::test]
async fn database_outage_answers_internal_and_recovers(
    _: sqlx::postgres::PgPoolOptions,
    connect: sqlx::postgres::PgConnectOptions,
) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(2))
        // As in production (`connect_pool`): no ping before each query.
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .unwrap();
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let c = joined(&server, 1, &conv).await;
    let db: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let admin = PgPool::connect(&admin_url).await.unwrap();

    // Take the database away: refuse new connections and cut the existing ones.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections false"
    )))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
        .bind(&db)
        .execute(&admin)
        .await
        .unwrap();
    let ack = c
        .emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": "lost?" }),
        )
        .await;
    assert_error(&ack, "INTERNAL");
    assert_eq!(
        ack["error"]["message"], "internal server error",
        "no database details leak"
    );
    // `/readyz` reads a probe run every second: 503 within its period and timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while reqwest::get(server.url("/readyz")).await.unwrap().status() != 503 {
        assert!(std::time::Instant::now() < deadline, "/readyz still 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Bring it back: the same socket works again.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter database \"{db}\" allow_connections true"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let mut recovered = Value::Null;
    for _ in 0..50 {
        recovered = c
            .emit_ack(
                "message:send",
                json!({ "conversationId": conv, "content": "back" }),
            )
            .await;
        if recovered["ok"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(assert_ok(&recovered)["content"], "back");
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while reqwest::get(server.url("/readyz")).await.unwrap().status() != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz not 200 again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await.unwrap();
    pool.close().await;
}

#[sqlx::test]
async fn events_emitted_right_after_connect_are_all_answered(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("RATE_LIMIT_BURST", "1000")]).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let token = token(1, &["user"]);
    let cycles: usize = std::env::var("CONNECT_EMIT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 16;
    for w in 0..workers {
        let (base, token, conv) = (server.base.clone(), token.clone(), conv.clone());
        tasks.spawn(async move {
            let mut answered = 0;
            for _ in (w..cycles).step_by(workers) {
                let opts = ConnectOptions {
                    auth: Some(json!({ "token": token })),
                    ..Default::default()
                };
                let c = SioClient::connect(&base, "/chat", opts).await.unwrap();
                let ack = c
                    .emit_ack("conversation:join", json!({ "conversationId": conv }))
                    .await;
                if ack["ok"] == true {
                    answered += 1;
                }
                c.close().await;
            }
            answered
        });
    }
    let mut answered = 0;
    while let Some(n) = tasks.join_next().await {
        answered += n.unwrap();
    }
    assert_eq!(answered, cycles);
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

#[sqlx::test]
async fn array_payloads_are_not_read_as_objects(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let c = server.client("/chat", 1).await;
    let ack = c
        .emit_ack("message:send", json!([conv, "positional"]))
        .await;
    assert_error(&ack, "BAD_REQUEST");
    assert_eq!(count_messages(&pool).await, 0);
}

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

/// A send that PostgreSQL could not store (U+0000 in its text) is refused as bad input
/// and changes nothing, while sends beside it go through.
#[sqlx::test]
async fn nul_characters_are_refused_and_do_not_fail_other_sends(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let alice = joined(&server, 1, &conv).await;
    let sends = ["fine", "bad \u{0}", "also fine"].map(|content| {
        alice.emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": content }),
        )
    });
    let [first, bad, last]: [Value; 3] = futures_util::future::join_all(sends)
        .await
        .try_into()
        .unwrap();
    assert_ok(&first);
    assert_ok(&last);
    assert_error(&bad, "BAD_REQUEST");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("NUL"),
        "{bad}"
    );
    let bad_key = alice
        .emit_ack(
            "message:send",
            json!({ "conversationId": conv, "content": "x", "clientId": "k\u{0}" }),
        )
        .await;
    assert_error(&bad_key, "BAD_REQUEST");
    // Any field: an attachment URL too, in flight with a good send.
    let sends = [
        json!({ "conversationId": conv, "content": "x", "attachments": ["https://a/\u{0}"] }),
        json!({ "conversationId": conv, "content": "third fine" }),
    ]
    .map(|payload| alice.emit_ack("message:send", payload));
    let [bad_url, fine]: [Value; 2] = futures_util::future::join_all(sends)
        .await
        .try_into()
        .unwrap();
    assert_error(&bad_url, "BAD_REQUEST");
    assert_eq!(
        bad_url["error"]["message"],
        "attachments[0]: must not contain NUL characters"
    );
    assert_ok(&fine);
    assert_eq!(count_messages(&pool).await, 3);
}

/// Membership is checked where sends are written, under the member-row locks: sends of
/// outsiders and to unknown conversations, in flight together with members' sends (so
/// in the same shared transactions), are refused with the right code and store nothing,
/// while every member's send is stored once.
#[sqlx::test]
async fn refused_sends_in_shared_transactions_change_nothing(pool: PgPool) {
    // Under the default burst of the per-socket rate limit.
    const EACH: usize = 10;
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    let outsider = server.client("/chat", 3).await;
    let stranger = server.client("/chat", 4).await;
    let unknown = Uuid::new_v4().to_string();
    async fn send(c: &SioClient, target: &str, i: usize) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": target, "content": format!("m{i}") }),
        )
        .await
    }
    let (member_acks, outsider_acks, unknown_acks) = tokio::join!(
        futures_util::future::join_all((0..EACH).map(|i| send(&alice, &conv, i))),
        futures_util::future::join_all((0..EACH).map(|i| send(&outsider, &conv, i))),
        futures_util::future::join_all((0..EACH).map(|i| send(&stranger, &unknown, i))),
    );
    for ack in &member_acks {
        assert_ok(ack);
    }
    for ack in &outsider_acks {
        assert_error(ack, "FORBIDDEN");
    }
    for ack in &unknown_acks {
        assert_error(ack, "NOT_FOUND");
    }
    assert_eq!(count_messages(&pool).await, EACH as i64);
    for _ in 0..EACH {
        assert_eq!(bob.recv("message:created").await["sender_id"], json!(1));
    }
    bob.expect_none("message:created", QUIET).await;
    // The outsider's refused sends left no counter behind: bob's unread is alice's sends.
    let fresh = server.client("/chat", 2).await;
    assert_eq!(fresh.recv("unread:count").await["total"], json!(EACH));

    // A member removed is refused from then on.
    alice.ok("members:remove", member(&conv, 2)).await;
    assert_error(&send(&bob, &conv, 99).await, "FORBIDDEN");
    assert_eq!(count_messages(&pool).await, EACH as i64);
}

/// A shared send transaction that fails is not the end of the sends in it: each is
/// written again alone, so only the send the database refuses fails. A trigger stands
/// in for the fault: it delays sends marked `slow` (so that both writers are busy and
/// the next sends queue up into one batch) and raises on the one marked `boom`.
#[sqlx::test]
async fn one_failing_send_does_not_fail_the_others_in_its_transaction(pool: PgPool) {
    sqlx::raw_sql(
        "create function test_fault() returns trigger language plpgsql as $$
         begin
           if new.content = 'slow' then perform pg_sleep(0.4); end if;
           if new.content = 'boom' then raise exception 'injected fault'; end if;
           return new;
         end $$;
         create trigger test_fault before insert on messages
           for each row execute function test_fault();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2, 3]).await;
    let alice = joined(&server, 1, &conv).await;
    let bob = joined(&server, 2, &conv).await;
    let carol = joined(&server, 3, &conv).await;
    async fn send(c: &SioClient, conversation: &str, content: String) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": conversation, "content": content }),
        )
        .await
    }
    // Two slow sends occupy both writers; what follows queues into one batch.
    let slow = futures_util::future::join(
        send(&alice, &conv, "slow".into()),
        send(&bob, &conv, "slow".into()),
    );
    let rest = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let good = (0..8).map(|i| {
            let c = if i % 2 == 0 { &alice } else { &bob };
            send(c, &conv, format!("good {i}"))
        });
        futures_util::future::join(
            futures_util::future::join_all(good),
            send(&carol, &conv, "boom".into()),
        )
        .await
    };
    let ((slow_a, slow_b), (good, boom)) = futures_util::future::join(slow, rest).await;
    assert_ok(&slow_a);
    assert_ok(&slow_b);
    for ack in &good {
        assert_ok(ack);
    }
    assert_error(&boom, "INTERNAL");
    assert_eq!(count_messages(&pool).await, 10);
    let contents: Vec<String> =
        sqlx::query_scalar("select content from messages where content like 'good %'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        contents.len(),
        8,
        "each good send stored once: {contents:?}"
    );
}

/// Once a shared send transaction is committed, an error after it (here: reading back
/// the first message of a repeated `clientId`, which a row-level security policy makes
/// fail) fails that send alone. The batch is never written again: every other send in it is
/// acked ok and stored once (a rerun would have answered them INTERNAL).
#[sqlx::test]
async fn an_error_after_commit_fails_one_send_and_never_reruns_the_batch(pool: PgPool) {
    // Sends marked `hold` wait for an advisory lock the test holds: with both writers
    // held, every send that follows queues up and goes into one transaction.
    sqlx::raw_sql(
        "create function test_hold() returns trigger language plpgsql as $$
         begin
           if new.content = 'hold' then perform pg_advisory_xact_lock_shared(4242); end if;
           return new;
         end $$;
         create trigger test_hold before insert on messages
           for each row execute function test_hold();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    async fn send(c: &SioClient, conversation: &str, content: &str, key: Option<&str>) -> Value {
        c.emit_ack(
            "message:send",
            json!({ "conversationId": conversation, "content": content, "clientId": key }),
        )
        .await
    }
    assert_ok(&send(&alice, &conv, "first", Some("dup")).await);
    // Reading the first message back now fails (its reader raises), while writing and
    // returning new rows still works: the fault can only strike after the COMMIT.
    sqlx::raw_sql(
        "create function test_readable(content text) returns boolean language plpgsql as $$
         begin
           if content = 'first' then raise exception 'injected read fault'; end if;
           return true;
         end $$;
         alter table messages enable row level security;
         alter table messages force row level security;
         create policy test_read on messages for select using (test_readable(content));
         create policy test_write on messages for insert with check (true);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("select pg_advisory_lock(4242)")
        .execute(&mut *holder)
        .await
        .unwrap();
    let waiting = |n: i64| {
        let pool = pool.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let now: i64 = sqlx::query_scalar(
                    "select count(*) from pg_locks where locktype = 'advisory' and not granted",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                if now >= n {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "{now} writers held");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Each held send in a conversation of its own: sends of one conversation also wait
    // for each other's member-row locks, which would hold the second writer elsewhere.
    let hold_a = create_conversation(&server, 1, "group", &[2]).await;
    let hold_b = create_conversation(&server, 1, "group", &[2]).await;
    let conv = &conv;
    let held = async {
        let first = send(&alice, &hold_a, "hold", None);
        let second = async {
            waiting(1).await;
            send(&bob, &hold_b, "hold", None).await
        };
        futures_util::future::join(first, second).await
    };
    let batch = async {
        waiting(2).await;
        let good = (0..6).map(|i| {
            let c = if i % 2 == 0 { &alice } else { &bob };
            let content = format!("good {i}");
            async move { send(c, conv, &content, None).await }
        });
        let all = futures_util::future::join(
            futures_util::future::join_all(good),
            send(&alice, conv, "again", Some("dup")),
        );
        let release = async {
            // Every send of the batch is queued behind the two held writers.
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("select pg_advisory_unlock(4242)")
                .execute(&mut *holder)
                .await
                .unwrap();
        };
        futures_util::future::join(all, release).await.0
    };
    let ((held_a, held_b), (good, repeat)) = futures_util::future::join(held, batch).await;
    assert_ok(&held_a);
    assert_ok(&held_b);
    for ack in &good {
        assert_ok(ack);
    }
    assert_error(&repeat, "INTERNAL");
    sqlx::raw_sql(
        "alter table messages no force row level security;
         drop policy test_read on messages; drop policy test_write on messages",
    )
    .execute(&pool)
    .await
    .unwrap();
    let contents: Vec<String> =
        sqlx::query_scalar("select content from messages where content like 'good %'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        contents.len(),
        6,
        "each good send stored once: {contents:?}"
    );
    assert_eq!(count_messages(&pool).await, 9);
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

/// A REST call as `user`: the status and the JSON body (`Null` when empty).
async fn rest(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    user: i64,
    body: Option<Value>,
) -> (u16, Value) {
    let bearer = token(user, &["user"]);
    server.call(method.as_str(), path, &bearer, body).await
}

/// [`rest`] that must answer `expected`: the body.
async fn expect_rest(
    server: &TestServer,
    expected: u16,
    method: reqwest::Method,
    path: &str,
    user: i64,
    body: Option<Value>,
) -> Value {
    let bearer = token(user, &["user"]);
    server
        .expect(expected, method.as_str(), path, &bearer, body)
        .await
}

/// The REST twins of the message events (seed 004: a backend posts without a socket):
/// same answers, same broadcasts (to every socket of the room: none is acting), same
/// database state.
#[sqlx::test]
async fn rest_twins_send_edit_read_delete_and_list_like_the_events(pool: PgPool) {
    use reqwest::Method;
    let (server, conv, alice, bob) = pair(pool.clone()).await;
    let path = format!("/api/conversations/{conv}/messages");

    let (status, sent) = rest(
        &server,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": " hello ", "clientId": "k1" })),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["content"], "hello");
    assert_eq!(sent["sender_id"], 1);
    // No socket acted: the sender's own socket hears it too.
    assert_eq!(alice.recv("message:created").await, sent);
    assert_eq!(bob.recv("message:created").await, sent);
    // The same clientId answers the first message and announces nothing.
    let again = expect_rest(
        &server,
        201,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": "hello", "clientId": "k1" })),
    )
    .await;
    assert_eq!(again["_id"], sent["_id"]);
    bob.expect_none("message:created", QUIET).await;
    assert_eq!(count_messages(&pool).await, 1);
    // A socket send and a REST send leave the same kind of row.
    bob.send_message(&conv, "from the socket").await;
    alice.recv("message:created").await;

    let page = expect_rest(
        &server,
        200,
        Method::GET,
        &format!("{path}?limit=10"),
        2,
        None,
    )
    .await;
    let listed = bob
        .ok(
            "message:list",
            json!({ "conversationId": conv, "limit": 10 }),
        )
        .await;
    assert_eq!(page, listed, "the same page as message:list");
    assert_eq!(page.as_array().unwrap().len(), 2);
    let (_, older) = rest(
        &server,
        Method::GET,
        &format!("{path}?before={}", page[0]["_id"].as_str().unwrap()),
        2,
        None,
    )
    .await;
    assert_eq!(older.as_array().unwrap().len(), 1);

    let id = sent["_id"].as_str().unwrap();
    let (status, body) = rest(
        &server,
        Method::PATCH,
        &format!("/api/messages/{id}"),
        2,
        Some(json!({ "content": "not mine" })),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let edited = expect_rest(
        &server,
        200,
        Method::PATCH,
        &format!("/api/messages/{id}"),
        1,
        Some(json!({ "content": "hello again" })),
    )
    .await;
    assert_eq!(edited["content"], "hello again");
    assert_eq!(bob.recv("message:updated").await, edited);

    let read = expect_rest(
        &server,
        200,
        Method::POST,
        &format!("/api/messages/{id}/read"),
        2,
        None,
    )
    .await;
    assert_eq!(read["messageId"], id);
    assert_eq!(read["readerId"], 2);
    assert!(read["readAt"].as_str().unwrap().ends_with('Z'));
    let heard = alice.recv("message:read").await;
    assert_eq!(
        (heard["readerId"].clone(), heard["readAt"].clone()),
        (json!(2), read["readAt"].clone())
    );

    let (status, _) = rest(
        &server,
        Method::DELETE,
        &format!("/api/messages/{id}"),
        2,
        None,
    )
    .await;
    assert_eq!(status, 403, "only the sender or the owner");
    let (status, body) = rest(
        &server,
        Method::DELETE,
        &format!("/api/messages/{id}"),
        1,
        None,
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        bob.recv("message:deleted").await,
        json!({ "messageId": id, "conversationId": conv })
    );
    let deleted: bool =
        sqlx::query_scalar("select deleted_at is not null from messages where id = $1::uuid")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(deleted);

    // Refusals: the event's codes, rights before the body.
    let stranger = 9;
    let (status, _) = rest(
        &server,
        Method::POST,
        &path,
        stranger,
        Some(json!({ "content": "" })),
    )
    .await;
    assert_eq!(status, 403, "a non-member learns nothing from validation");
    let body = expect_rest(
        &server,
        400,
        Method::POST,
        &path,
        1,
        Some(json!({ "content": "" })),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("content"),
        "{body}"
    );
    for (status, method, path, user) in [
        (400, Method::GET, format!("{path}?limit=0"), 1),
        (
            404,
            Method::GET,
            format!("/api/conversations/{}/messages", Uuid::new_v4()),
            1,
        ),
        (400, Method::POST, "/api/messages/nope/read".to_owned(), 1),
    ] {
        expect_rest(&server, status, method, &path, user, None).await;
    }
}

/// `GET /api/conversations`: latest activity first, cursor paging, unread counts;
/// `GET /api/conversations/:id` for members; members added and removed over REST.
#[sqlx::test]
async fn rest_conversations_page_by_activity_and_members_change_like_the_events(pool: PgPool) {
    use reqwest::Method;
    let server = TestServer::start(pool).await;
    let first = create_conversation(&server, 1, "group", &[2]).await;
    let second = create_conversation(&server, 1, "group", &[3]).await;
    let third = create_conversation(&server, 1, "private", &[4]).await;
    // A message makes the first conversation the most recent one.
    let bob = joined(&server, 2, &first).await;
    bob.send_message(&first, "bump").await;
    let page = expect_rest(
        &server,
        200,
        Method::GET,
        "/api/conversations?limit=2",
        1,
        None,
    )
    .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), third.as_str()]);
    assert_eq!(page["items"][0]["unread_count"], 1);
    assert_eq!(page["items"][1]["unread_count"], 0);
    assert_eq!(page["items"][0]["participants"], json!([1, 2]));
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest_page) = rest(
        &server,
        Method::GET,
        &format!("/api/conversations?limit=2&cursor={next}"),
        1,
        None,
    )
    .await;
    assert_eq!(rest_page["items"][0]["_id"], second.as_str());
    assert_eq!(rest_page["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest_page["next_cursor"], Value::Null);
    for bad in ["cursor=forged", "cursor=12.34", "limit=0", "limit=101"] {
        let (status, body) = rest(
            &server,
            Method::GET,
            &format!("/api/conversations?{bad}"),
            1,
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Bob sees only his own.
    let (_, his) = rest(&server, Method::GET, "/api/conversations", 2, None).await;
    assert_eq!(his["items"].as_array().unwrap().len(), 1);

    let got = expect_rest(
        &server,
        200,
        Method::GET,
        &format!("/api/conversations/{first}"),
        2,
        None,
    )
    .await;
    assert_eq!(got["participants"], json!([1, 2]));
    expect_rest(
        &server,
        403,
        Method::GET,
        &format!("/api/conversations/{first}"),
        3,
        None,
    )
    .await;
    expect_rest(
        &server,
        404,
        Method::GET,
        &format!("/api/conversations/{}", Uuid::new_v4()),
        3,
        None,
    )
    .await;

    let members = format!("/api/conversations/{first}/members");
    let carol = server.client("/chat", 5).await;
    let (status, _) = rest(
        &server,
        Method::POST,
        &members,
        2,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(status, 403, "only the owner adds");
    let added = expect_rest(
        &server,
        201,
        Method::POST,
        &members,
        1,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(added, member(&first, 5));
    let expected = member(&first, 5);
    assert_eq!(bob.recv("members:added").await, expected);
    assert_eq!(carol.recv("members:added").await, expected);
    let (status, _) = rest(
        &server,
        Method::POST,
        &members,
        1,
        Some(json!({ "userId": 5 })),
    )
    .await;
    assert_eq!(status, 200, "already a member");
    bob.expect_none("members:added", QUIET).await;
    let (status, _) = rest(
        &server,
        Method::POST,
        &format!("/api/conversations/{third}/members"),
        1,
        Some(json!({ "userId": 6 })),
    )
    .await;
    assert_eq!(status, 400, "a private conversation takes no members");

    expect_rest(
        &server,
        204,
        Method::DELETE,
        &format!("{members}?userId=5"),
        1,
        None,
    )
    .await;
    assert_eq!(bob.recv("members:removed").await, expected);
    let (status, body) = rest(
        &server,
        Method::DELETE,
        &format!("{members}?userId=5"),
        1,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = rest(&server, Method::DELETE, &members, 1, None).await;
    assert_eq!(status, 400, "userId is required");
}
