//! `/ws` limits and closes (contract §7.1: message size, slow consumers, heartbeat,
//! shutdown; the token-expiry and operator closes of `docs/PROTOCOL.md`'s close codes):
//! each close has its code, is counted, and leaves nothing behind in the hub.

use std::time::{Duration, Instant};

use super::*;
use crate::support::ws::Stream;
use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sqlx::PgPool;
use tokio::net::TcpSocket;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[sqlx::test]
async fn a_frame_over_ws_max_message_bytes_closes_with_1009(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut ws = Ws::connect(&server, "").await;
    let fits = json!({ "type": "ping", "id": "x".repeat(900) });
    ws.send(fits).await;
    ws.expect("pong").await;
    let big = json!({ "type": "subscribe", "payload": { "channel": format!("public:{}", "x".repeat(2000)) } });
    ws.send(big).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, 1009);
    wait_closes(&server, "too_big", 1.0).await;
    wait_metric(&server, HUB_CHANNELS, 0.0, Duration::from_secs(5)).await;
}

/// A client that connects with a small receive buffer, subscribes, and then never reads.
async fn stuck_subscriber(server: &TestServer, channel: &str) -> Stream {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
    let request = ws_url(server, "").into_client_request().unwrap();
    let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut ws = Ws { stream };
    ws.join(channel).await;
    ws.stream
}

#[sqlx::test]
async fn a_client_that_never_reads_is_closed_with_1013_and_others_get_everything(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_SEND_QUEUE", "16")]).await;
    let stuck = stuck_subscriber(&server, "public:flood").await;
    let mut reader = Ws::connect(&server, "").await;
    reader.join("public:flood").await;
    let filler = "x".repeat(16 * 1024);
    // Publish until the stuck client's kernel buffers and its 16-message queue are full.
    let mut n = 0;
    loop {
        publish(
            &server,
            "public:flood",
            "t",
            json!({ "n": n, "filler": filler }),
        )
        .await;
        // The healthy reader keeps up as it goes.
        assert_eq!(reader.expect("t").await["payload"]["n"], n);
        n += 1;
        if metric(&server, &closes("slow_consumer")).await >= 1.0 {
            break;
        }
        assert!(n < 2000, "no slow consumer after {n} publishes");
    }
    // The stuck client, reading at last, finds the close frame after what fitted.
    let mut stuck = Ws { stream: stuck };
    assert_eq!(stuck.close_code(Duration::from_secs(10)).await, 1013);
    for m in 0..20 {
        publish(&server, "public:flood", "t", json!({ "m": m })).await;
        assert_eq!(reader.expect("t").await["payload"]["m"], m);
    }
    reader.alive().await;
    assert_eq!(metric(&server, &closes("slow_consumer")).await, 1.0);
    // The message that did not fit is counted as dropped.
    assert!(metric(&server, "switchboard_ws_dropped_total ").await >= 1.0);
    wait_metric(&server, WS_CONNECTIONS, 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_ENTRIES, 1.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_client_close_is_answered_and_leaves_nothing(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Ws::authed(&server, &token(12, &["user"])).await;
    ws.join("public:bye").await;
    ws.stream
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    // The server answers the close handshake, then ends the connection.
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.stream.next())
        .await
        .unwrap();
    assert!(
        matches!(answer, Some(Ok(Message::Close(_)))),
        "expected the close answer, got {answer:?}"
    );
    wait_closes(&server, "client", 1.0).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
    wait_metric(&server, WS_CONNECTIONS, 0.0, Duration::from_secs(5)).await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
}

#[sqlx::test]
async fn a_silent_client_is_closed_after_the_idle_timeout(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("WS_IDLE_TIMEOUT_SECS", "1"),
            ("WS_PING_INTERVAL_SECS", "30"),
        ],
    )
    .await;
    let mut silent = Ws::connect(&server, "").await;
    silent.join("public:x").await;
    let started = Instant::now();
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, 1000);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    wait_closes(&server, "idle", 1.0).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn the_server_pings_and_a_client_that_answers_stays(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("WS_IDLE_TIMEOUT_SECS", "2"),
            ("WS_PING_INTERVAL_SECS", "1"),
        ],
    )
    .await;
    let mut ws = Ws::connect(&server, "").await;
    // tungstenite answers each ping while we read; 3.5 s is past the idle timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(deadline, ws.stream.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    ws.alive().await;
}

#[sqlx::test]
async fn an_expiring_token_closes_the_connection_with_4001(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "0")]).await;
    let short = sign(json!({ "sub": 3, "roles": ["user"], "exp": now_secs() + 2 }));
    let mut ws = Ws::authed(&server, &short).await;
    let mut anonymous = Ws::connect(&server, "").await;
    assert_eq!(ws.close_code(Duration::from_secs(6)).await, 4001);
    wait_closes(&server, "token_expired", 1.0).await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    anonymous.alive().await;
}

#[sqlx::test]
async fn the_user_disconnect_route_closes_that_users_ws_connections_with_1008(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Ws::authed(&server, &token(70, &["user"])).await;
    let mut b = Ws::authed(&server, &token(70, &["user"])).await;
    let mut other = Ws::authed(&server, &token(71, &["user"])).await;
    let res = server
        .http()
        .post(server.url("/api/users/70/disconnect"))
        .bearer_auth(service())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(a.close_code(Duration::from_secs(5)).await, 1008);
    assert_eq!(b.close_code(Duration::from_secs(5)).await, 1008);
    other.alive().await;
    wait_closes(&server, "disconnected", 2.0).await;
}

#[sqlx::test]
async fn shutdown_closes_ws_connections_with_1001(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Ws::authed(&server, &token(1, &["user"])).await;
    let mut b = Ws::connect(&server, "").await;
    b.alive().await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(a.close_code(Duration::from_secs(10)).await, 1001);
    assert_eq!(b.close_code(Duration::from_secs(10)).await, 1001);
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[sqlx::test]
async fn a_thousand_connections_churning_under_a_publish_loop_leave_an_empty_registry(
    pool: PgPool,
) {
    let server = TestServer::start_with(pool, &[("WS_SEND_QUEUE", "64")]).await;
    let base = server.base.clone();
    let publishing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let publisher = {
        let publishing = publishing.clone();
        let http = server.http();
        let url = server.url("/api/publish");
        tokio::spawn(async move {
            let mut sent = 0u64;
            while publishing.load(std::sync::atomic::Ordering::Relaxed) {
                for channel in ["public:churn", "user:1"] {
                    let res = http
                        .post(&url)
                        .bearer_auth(service())
                        .json(&json!({ "channel": channel, "type": "tick", "payload": { "n": sent } }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 202);
                    sent += 1;
                }
            }
            sent
        })
    };
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let mut batches = Vec::new();
    for batch in 0..10 {
        let url = url.clone();
        batches.push(tokio::spawn(async move {
            for n in 0..100 {
                let query = if n % 2 == 0 {
                    format!("?token={}", token(1, &["user"]))
                } else {
                    String::new()
                };
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}{query}"))
                    .await
                    .unwrap();
                let sub = json!({ "type": "subscribe", "payload": { "channel": "public:churn" } });
                ws.send(Message::text(sub.to_string())).await.unwrap();
                let extra = json!({ "type": "subscribe", "payload": { "channel": format!("public:b{batch}n{n}") } });
                ws.send(Message::text(extra.to_string())).await.unwrap();
                // Half close politely, half just drop the TCP connection mid-stream.
                if n % 3 == 0 {
                    let _ = ws.close(None).await;
                    while let Some(Ok(_)) = ws.next().await {}
                } else {
                    let _ = tokio::time::timeout(Duration::from_millis(5), ws.next()).await;
                    drop(ws);
                }
            }
        }));
    }
    for batch in batches {
        batch.await.unwrap();
    }
    publishing.store(false, std::sync::atomic::Ordering::Relaxed);
    let sent = publisher.await.unwrap();
    assert!(sent > 0);
    wait_metric(&server, WS_CONNECTIONS, 0.0, Duration::from_secs(15)).await;
    wait_metric(&server, HUB_ENTRIES, 0.0, Duration::from_secs(5)).await;
    wait_metric(&server, HUB_CHANNELS, 0.0, Duration::from_secs(5)).await;
    wait_metric(
        &server,
        "switchboard_session_lifetimes ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    // Polite or abrupt, every one of them is the client leaving; none a server fault.
    assert_eq!(metric(&server, &closes("client")).await, 1000.0);
    assert_eq!(metric(&server, &closes("error")).await, 0.0);
    // Still serving.
    let mut ws = Ws::connect(&server, "").await;
    ws.alive().await;
}
