//! Benchmark figure for `notification:list` with 100,000 notifications for one user
//! (plus broadcasts), measured end to end over a real websocket against a real server.
//!
//!     DATABASE_URL=postgres://…/some_db cargo run --release --example notification_list_latency
//!
//! Fills the database (once; reruns reuse the rows), starts Switchboard in-process on
//! 127.0.0.1:0, then times first pages, deep pages (`before` near the oldest) and
//! unread-only pages, and prints p50/p99/max per kind plus the query plan of a page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/support/sio.rs"]
mod sio;
mod support;

use std::time::Instant;

use serde_json::{Value, json};
use sio::{ConnectOptions, SioClient};

const USER: i64 = 4242;
const ROWS: i64 = 100_000;
const BROADCASTS: i64 = 200;
const SAMPLES: usize = 300;

#[tokio::main]
async fn main() {
    let pool = support::database().await;

    let have: i64 = sqlx::query_scalar("select count(*) from notifications where user_id = $1")
        .bind(USER.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    if have < ROWS {
        let started = Instant::now();
        // Every 3rd is read, like a real inbox; uuid v7-like order follows seq.
        sqlx::query(
            "insert into notifications (id, user_id, type, title, content, is_read, created_at)
             select gen_random_uuid(), $1, 'message', 'title ' || g, 'body ' || g, g % 3 = 0,
                    now() - make_interval(secs => $2 - g)
             from generate_series(1, $2) g",
        )
        .bind(USER.to_string())
        .bind(ROWS - have)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into notifications (id, user_id, type, title, content)
             select gen_random_uuid(), null, 'system', 'broadcast ' || g, 'all users' from generate_series(1, $1) g",
        )
        .bind(BROADCASTS)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("analyze notifications")
            .execute(&pool)
            .await
            .unwrap();
        println!("filled {} rows in {:?}", ROWS - have, started.elapsed());
    }

    let server = support::Server::start(&pool, &[]).await;
    let token = support::sign(
        &json!({ "sub": USER, "roles": ["user"], "exp": chrono::Utc::now().timestamp() + 3600 }),
    );
    let client = SioClient::connect(
        &server.base,
        "/notifications",
        ConnectOptions {
            auth: Some(json!({ "token": token })),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let count = client.recv("notification:count").await;
    println!("unread count at connect: {count}");

    // A cursor deep in the history: the 99,000th newest.
    let deep: String = sqlx::query_scalar("select id::text from notifications where user_id = $1 order by seq desc offset 99000 limit 1")
        .bind(USER.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    let kinds: [(&str, Value); 3] = [
        ("first page (50)", json!({})),
        ("deep page (before #99000, 50)", json!({ "before": deep })),
        ("unread only (50)", json!({ "unreadOnly": true })),
    ];
    support::header("page");
    for (name, payload) in kinds {
        for _ in 0..20 {
            client.emit_ack("notification:list", payload.clone()).await;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let ack = client.emit_ack("notification:list", payload.clone()).await;
            times.push(t.elapsed());
            assert_eq!(ack["ok"], true, "{ack}");
            assert_eq!(ack["data"].as_array().unwrap().len(), 50);
        }
        support::row(name, times);
    }
    let first = Instant::now();
    let marked = client.emit_ack("notification:read_all", json!({})).await;
    println!(
        "\nread_all marking {}: {:.1} ms",
        marked["data"]["count"],
        first.elapsed().as_secs_f64() * 1e3
    );
    let count_started = Instant::now();
    for _ in 0..50 {
        client.emit_ack("notification:read_all", json!({})).await;
    }
    println!(
        "read_all with nothing left to mark (+ count): {:.2} ms each",
        count_started.elapsed().as_secs_f64() * 1e3 / 50.0
    );

    server.stop().await;
}
