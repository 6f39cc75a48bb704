//! Benchmark figure for `notification:list` with 100,000 notifications for one user
//! (plus broadcasts), measured end to end over a real websocket against a real server.
//!
//!     DATABASE_URL=postgres://…/some_db cargo run --release --example notification_list_latency
//!
//! Fills the database (once; reruns reuse the rows), starts Switchboard in-process on
//! 127.0.0.1:0, then times first pages, deep pages (`before` near the oldest) and
//! unread-only pages, and prints p50/p99/max per kind plus the query plan of a page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/sio.rs"]
mod sio;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sio::{ConnectOptions, SioClient};

const USER: i64 = 4242;
const ROWS: i64 = 100_000;
const BROADCASTS: i64 = 200;
const SAMPLES: usize = 300;
const SECRET: &str = "bench-secret-bench-secret-bench-secret";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let url =
        std::env::var("DATABASE_URL").expect("set DATABASE_URL to a database the example may fill");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap();
    switchboard::store::migrate(&pool).await.unwrap();

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

    let vars: HashMap<&str, String> = HashMap::from([
        ("JWT_SECRET", SECRET.to_owned()),
        ("RATE_LIMIT_PER_SEC", "100000".to_owned()),
        ("RATE_LIMIT_BURST", "100000".to_owned()),
    ]);
    let config = switchboard::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard::serve(
        listener,
        config,
        pool.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let claims =
        json!({ "sub": USER, "roles": ["user"], "exp": chrono::Utc::now().timestamp() + 3600 });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let client = SioClient::connect(
        &base,
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
    println!("\n| page | p50 | p99 | max |\n| --- | --- | --- | --- |");
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
        times.sort();
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
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

    let _ = stop.send(());
    let _ = server.await;
}
