//! Every `/chat` event is answered (contract §3's replies, errors and limits as `/chat`
//! gives them): errors without an ack, unknown events, array payloads, the rate limit,
//! events right after connect, and a database outage.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

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
