//! REST conversation routes (contract §8), health, CORS, payload limits, shutdown.
//!
//! Past 400 lines: one test per REST/server contract row; each test reads alone.

use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn creating_a_conversation_notifies_each_participant_once(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let bob = server.client("/chat", 2).await;
    let bob_tablet = server.client("/chat", 2).await;
    let res = server
        .post(
            "/api/conversations",
            &token(1, &["user"]),
            &json!({ "type": "group", "name": " Team ", "participants": [2, 3, 2] }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let conv: Value = res.json().await.unwrap();
    assert_eq!(conv["type"], "group");
    assert_eq!(conv["name"], "Team");
    assert_eq!(conv["participants"], json!([1, 2, 3]));
    assert!(conv["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bob.recv("conversation:created").await, conv);
    assert_eq!(bob_tablet.recv("conversation:created").await, conv);
    bob.expect_none("conversation:created", Duration::from_millis(300))
        .await;
    let owner: String =
        sqlx::query_scalar("select role from conversation_members where user_id = '1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owner, "owner");
}

#[sqlx::test]
async fn bad_conversation_bodies_get_400_naming_the_field(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    for (body, field) in [
        (json!({ "type": "circle", "participants": [] }), "type"),
        (json!({ "type": "group" }), "participants"),
        (
            json!({ "type": "private", "participants": [2, 3] }),
            "participants",
        ),
        (
            json!({ "type": "group", "participants": [""] }),
            "participants",
        ),
    ] {
        let res = server
            .post("/api/conversations", &token(1, &["user"]), &body)
            .await;
        let message = bad_request(res, &body).await;
        assert!(message.contains(field), "{body} -> {message}");
    }
    let res = server
        .http()
        .post(server.url("/api/conversations"))
        .bearer_auth(token(1, &["user"]))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let count: i64 = sqlx::query_scalar("select count(*) from conversations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test]
async fn only_owner_or_admin_deletes_and_everyone_in_it_hears_once(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let bob = server.client("/chat", 2).await;
    bob.join(&conv).await;
    let delete = |user: i64, roles: &'static [&'static str], id: String| {
        let server = &server;
        async move {
            server
                .delete(&format!("/api/conversations/{id}"), &token(user, roles))
                .await
                .status()
        }
    };
    assert_eq!(delete(2, &["user"], conv.clone()).await, 403);
    assert_eq!(delete(1, &["user"], Uuid::new_v4().to_string()).await, 404);
    assert_eq!(delete(1, &["user"], "nope".into()).await, 400);
    assert_eq!(delete(9, &["admin"], conv.clone()).await, 204);
    // Bob is in both the conversation room and his user room: one event.
    assert_eq!(
        bob.recv("conversation:deleted").await,
        json!({ "conversationId": conv })
    );
    bob.expect_none("conversation:deleted", Duration::from_millis(300))
        .await;
    bob.refused(
        "conversation:join",
        json!({ "conversationId": conv }),
        "NOT_FOUND",
    )
    .await;
    let left: i64 = sqlx::query_scalar("select count(*) from conversations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let server = TestServer::start(pool).await;
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
}

#[sqlx::test]
async fn polling_transport_is_served(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let open = sio::connect_polling_handshake(&server.base).await;
    assert!(open["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 20000);
    assert_eq!(open["maxPayload"], 1_000_000);
}

#[sqlx::test]
async fn oversized_websocket_messages_close_the_connection(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("MAX_PAYLOAD_BYTES", "2048")]).await;
    let c = server.client("/chat", 1).await;
    c.emit(
        "typing",
        json!({ "conversationId": Uuid::new_v4(), "pad": "x".repeat(4096) }),
    )
    .await;
    assert!(c.wait_disconnected(Duration::from_secs(3)).await);
    // A message under the limit on a new connection is fine.
    let c = server.client("/chat", 1).await;
    let ack = c
        .emit_ack(
            "typing",
            json!({ "conversationId": Uuid::new_v4(), "isTyping": true }),
        )
        .await;
    assert_error(&ack, "NOT_FOUND");
}

/// No event takes binary data: a small binary event is answered like a missing
/// payload, and a packet announcing more attachments than the cap (which the parser
/// would otherwise hold, unauthenticated, up to 10 MB) closes the connection.
#[sqlx::test]
async fn binary_attachments_are_answered_or_capped(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("MAX_PAYLOAD_BYTES", "4096")]).await;
    let c = server.client("/chat", 1).await;
    let ack = c
        .emit_binary_ack("typing", vec![vec![1, 2, 3]], Duration::from_secs(3))
        .await
        .unwrap();
    assert_error(&ack[0], "BAD_REQUEST");
    // Eleven attachments announced: refused before any arrives.
    let many = c
        .emit_binary_ack("typing", vec![vec![0]; 11], Duration::from_secs(3))
        .await;
    assert!(many.is_err(), "{many:?}");
    assert!(c.wait_disconnected(Duration::from_secs(3)).await);
    // Attachments adding up to more than MAX_PAYLOAD_BYTES: refused too.
    let c = server.client("/chat", 1).await;
    let heavy = c
        .emit_binary_ack(
            "typing",
            vec![vec![0; 3000], vec![0; 3000]],
            Duration::from_secs(3),
        )
        .await;
    assert!(heavy.is_err(), "{heavy:?}");
    assert!(c.wait_disconnected(Duration::from_secs(3)).await);
}

#[sqlx::test]
async fn allowed_origins_govern_cors_and_websocket_upgrades(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("ALLOWED_ORIGINS", "https://app.example")]).await;
    let preflight = server
        .http()
        .request(reqwest::Method::OPTIONS, server.url("/api/conversations"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let t = token(1, &["user"]);
    let from = |origin: &str| ConnectOptions {
        auth: Some(json!({ "token": t })),
        headers: vec![("Origin".into(), origin.into())],
        ..Default::default()
    };
    SioClient::connect(&server.base, "/chat", from("https://app.example"))
        .await
        .unwrap();
    match SioClient::connect(&server.base, "/chat", from("https://evil.example")).await {
        Err(ConnectError::Io(text)) => assert!(text.contains("403"), "{text}"),
        Err(other) => panic!("expected a refused upgrade, got {other}"),
        Ok(_) => panic!("a foreign origin must not upgrade"),
    }
}

#[sqlx::test]
async fn shutdown_disconnects_clients_and_returns(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/chat", 1).await;
    c.recv("unread:count").await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), server.stop()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "serve did not return cleanly"
    );
    assert!(c.wait_disconnected(Duration::from_secs(3)).await);
}

#[sqlx::test]
async fn shutdown_lets_running_events_finish_their_acks(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let c = server.client("/chat", 1).await;
    c.join(&conv).await;

    // Hold the messages table so the next send blocks inside its INSERT.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("lock table messages in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let send = c.emit_ack(
        "message:send",
        json!({ "conversationId": conv, "content": "in flight" }),
    );
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopping = tokio::spawn(server.stop());
        tokio::time::sleep(Duration::from_millis(300)).await;
        blocker.rollback().await.unwrap();
        stopping.await.unwrap()
    };
    let (ack, stopped) = tokio::join!(send, stop);
    assert_eq!(
        assert_ok(&ack)["content"],
        "in flight",
        "the running event was answered"
    );
    assert!(stopped.is_ok());
    assert!(c.wait_disconnected(Duration::from_secs(3)).await);
    let stored: i64 = sqlx::query_scalar("select count(*) from messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[sqlx::test]
async fn metrics_count_sockets_events_errors_and_latency(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/chat", 1).await;
    let n = server.client("/notifications", 1).await;
    c.recv("unread:count").await;
    n.recv("notification:count").await;
    c.refused(
        "conversation:join",
        json!({ "conversationId": Uuid::new_v4() }),
        "NOT_FOUND",
    )
    .await;
    c.refused("made:up", json!({}), "BAD_REQUEST").await;
    n.ok("notification:ping", json!({ "action": "ping" })).await;
    let res = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    for line in [
        r#"switchboard_sockets_connected{namespace="/chat"} 1"#,
        r#"switchboard_sockets_connected{namespace="/notifications"} 1"#,
        r#"switchboard_events_received_total{namespace="/chat",event="conversation:join"} 1"#,
        r#"switchboard_events_received_total{namespace="/chat",event="unknown"} 1"#,
        r#"switchboard_events_received_total{namespace="/notifications",event="notification:ping"} 1"#,
        r#"switchboard_error_replies_total{code="NOT_FOUND"} 1"#,
        r#"switchboard_error_replies_total{code="BAD_REQUEST"} 1"#,
        r#"switchboard_ack_latency_seconds_count{namespace="/notifications",event="notification:ping"} 1"#,
        "switchboard_broadcast_failures_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains(r#"switchboard_db_pool_connections{state="in_use"}"#));
    c.close().await;
    let text = metrics_text(&server.url("")).await;
    assert!(
        text.lines()
            .any(|l| l == r#"switchboard_sockets_connected{namespace="/chat"} 0"#),
        "{text}"
    );
}

/// `switchboard_tokio_tasks_alive` in one `/metrics` scrape.
async fn tasks_alive(http: &reqwest::Client, server: &TestServer) -> i64 {
    let text = get_text(http, &server.url("/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix("switchboard_tokio_tasks_alive "))
        .unwrap_or_else(|| panic!("no switchboard_tokio_tasks_alive in\n{text}"))
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn metrics_count_live_tasks_and_they_fall_back_when_sockets_leave(pool: PgPool) {
    let server = TestServer::start(pool).await;
    // One client for every scrape: its connection task stays the same one throughout.
    let http = server.http();
    let before = tasks_alive(&http, &server).await;
    let mut clients = Vec::new();
    for user in 1..=20 {
        clients.push(server.client("/notifications", user).await);
    }
    // The test shares its runtime with the server, so the clients' reader tasks count
    // too; each socket adds at least one task on either side.
    let connected = tasks_alive(&http, &server).await;
    assert!(
        connected >= before + 20,
        "{before} tasks before, {connected} with 20 sockets"
    );
    for c in clients {
        c.close().await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = tasks_alive(&http, &server).await;
        if now <= before + 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{before} tasks before, {now} 10 s after the 20 sockets closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- Listener limits: header-read and idle timeouts, MAX_CONNECTIONS, readiness ----

/// `host:port` of the server.
fn addr(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes (or `within` passes: then `None`).
async fn read_to_close(tcp: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// One keep-alive GET on a raw connection; returns status line and body.
async fn raw_get(tcp: &mut tokio::net::TcpStream, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let text = String::from_utf8_lossy(&data).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .map(|v| v.trim().parse::<usize>().unwrap());
                if length.is_some_and(|n| body.len() >= n) {
                    return (head.lines().next().unwrap().to_owned(), body.to_owned());
                }
            }
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed mid-response: {text}");
            data.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no complete response within 5 s")
}

/// The value of an unlabelled metric line `name value`.
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = metrics_text(&server.url("")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[sqlx::test]
async fn a_request_head_sent_byte_by_byte_is_cut_off_after_the_header_timeout(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(pool, &[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    let (mut rd, mut wr) = tcp.split();
    let started = std::time::Instant::now();
    // A slowloris: a byte every 100 ms, each one proving the peer alive, the head never
    // complete. Only a deadline on the whole head ends it.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // hyper may answer 408 before closing
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if wr.write_all(&[*head.next().unwrap()]).await.is_err() {
                    break;
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still open after 5 s"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert_eq!(
        metric(
            &server,
            "switchboard_connection_timeouts_total{kind=\"header\"}"
        )
        .await,
        1.0
    );
}

#[sqlx::test]
async fn a_stalled_connection_is_closed_but_long_polls_and_websockets_stay(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(
        pool,
        &[
            ("HTTP_IDLE_TIMEOUT_SECS", "1"),
            ("HTTP_HEADER_TIMEOUT_SECS", "30"),
        ],
    )
    .await;
    let ws = server.client("/chat", 1).await;
    ws.recv("unread:count").await;
    // A long-poll parked on its own connection, waiting for data.
    let open = sio::connect_polling_handshake(&server.base).await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    let poll_url = server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    // engineioxide pings as soon as the session opens: answer it, and the next poll
    // waits for data until the next ping, 25 s away.
    let first = reqwest::Client::new().get(&poll_url).send().await.unwrap();
    assert_eq!(first.text().await.unwrap(), "2");
    let pong = reqwest::Client::new()
        .post(&poll_url)
        .body("3")
        .send()
        .await
        .unwrap();
    assert_eq!(pong.status(), 200);
    let parked = tokio::spawn(async move {
        let res = reqwest::Client::new().get(poll_url).send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    });

    // A request whose body stops coming: the handler waits for it, no byte moves.
    let mut tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    let started = std::time::Instant::now();
    tcp.write_all(
        format!(
            "POST /api/conversations HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\"",
            token(1, &["user"])
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut tcp, Duration::from_secs(5))
        .await
        .expect("a stalled request is not closed within 5 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?} {answer}"
    );
    // At least this one (a keep-alive connection the test's HTTP client left open may
    // be closed the same way).
    let idle = metric(
        &server,
        "switchboard_connection_timeouts_total{kind=\"idle\"}",
    )
    .await;
    assert!(idle >= 1.0, "{idle}");

    // The websocket, silent for longer than the idle timeout, still answers.
    assert!(!ws.is_disconnected());
    ws.refused(
        "conversation:join",
        json!({ "conversationId": "nope" }),
        "BAD_REQUEST",
    )
    .await;
    // The long-poll, parked for longer than the idle timeout, gets its data.
    if parked.is_finished() {
        panic!("the long-poll was answered early: {:?}", parked.await);
    }
    let res = reqwest::Client::new()
        .post(server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")))
        .body(format!(
            "40/chat,{}",
            json!({ "token": token(1, &["user"]) })
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("40/chat,"), "{body}");
}

#[sqlx::test]
async fn past_max_connections_a_client_gets_503_until_one_closes(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("MAX_CONNECTIONS", "3")]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
        let (status, _) = raw_get(&mut tcp, "/healthz").await;
        assert!(status.contains(" 200 "), "{status}");
        open.push(tcp);
    }
    let mut refused = 0;
    let mut fourth = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
    let answer = read_to_close(&mut fourth, Duration::from_secs(5))
        .await
        .unwrap();
    refused += 1;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: "),
        "{answer}"
    );
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "UNAVAILABLE");

    // Once one closes, a new connection is served (the server notices the close a
    // moment later: each refusal until then is counted too).
    drop(open.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (status, metrics) = loop {
        let mut tcp = tokio::net::TcpStream::connect(addr(&server)).await.unwrap();
        use tokio::io::AsyncWriteExt;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut tcp, Duration::from_secs(5))
            .await
            .unwrap();
        if answer.starts_with("HTTP/1.1 503 ") {
            refused += 1;
            assert!(
                std::time::Instant::now() < deadline,
                "still refused after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        break (head.lines().next().unwrap().to_owned(), body.to_owned());
    };
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        metrics.contains(&format!(
            "switchboard_connections_refused_total {refused}\n"
        )),
        "{refused} refusals expected in\n{metrics}"
    );
    assert!(
        metrics.contains("switchboard_connections_open 3\n"),
        "two kept and this one:\n{metrics}"
    );
}

#[sqlx::test]
async fn readyz_answers_from_the_probe_without_waiting_for_the_database(pool: PgPool) {
    // One connection, taken by the test: any request that needs the database waits
    // for the 2 s acquire timeout.
    let server_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let server = TestServer::start_on(server_pool.clone(), &[]).await;
    let readyz = || async {
        let started = std::time::Instant::now();
        let res = reqwest::get(server.url("/readyz")).await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        let took = started.elapsed();
        // A request that waited for the database would take the 2 s acquire timeout.
        assert!(
            took < Duration::from_secs(1),
            "/readyz took {took:?}: {body}"
        );
        (status, body)
    };
    assert_eq!(readyz().await.0, 200);
    let held = server_pool.acquire().await.unwrap();
    // Every answer is immediate; within the probe's period plus its timeout the
    // answer turns 503.
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    let body = loop {
        let (status, body) = readyz().await;
        if status == 503 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["database"], "unreachable");
    for _ in 0..100 {
        assert_eq!(readyz().await.0, 503);
    }
    drop(held);
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    loop {
        let (status, body) = readyz().await;
        if status == 200 {
            assert_eq!(body["database"], "ok");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test]
async fn rest_is_rate_limited_per_token_with_retry_after_and_nothing_done(pool: PgPool) {
    let server = TestServer::start_with(
        pool.clone(),
        &[
            ("REST_RATE_LIMIT_PER_SEC", "1"),
            ("REST_RATE_LIMIT_BURST", "3"),
        ],
    )
    .await;
    let backend = token(900, &["service"]);
    let other_backend = token(901, &["service"]);
    let bob = server.client("/notifications", 7).await;
    let post = |tok: String, title: &'static str| {
        let http = server.http();
        let url = server.url("/api/notifications");
        async move {
            http.post(url)
                .bearer_auth(tok)
                .json(&json!({ "user_id": 7, "type": "system", "title": title, "content": "c" }))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        assert_eq!(post(backend.clone(), "in burst").await.status(), 201);
        assert_eq!(bob.recv("notification:created").await["title"], "in burst");
    }
    let limited = post(backend.clone(), "over").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(
        limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    // Nothing was done: not stored, not announced.
    let stored: i64 = sqlx::query_scalar("select count(*) from notifications where title = 'over'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    bob.expect_none("notification:created", Duration::from_millis(300))
        .await;
    // Another token has its own bucket.
    assert_eq!(post(other_backend, "other").await.status(), 201);
    assert_eq!(bob.recv("notification:created").await["title"], "other");
    // A token that does not verify is answered 401 however often it comes: no bucket.
    for _ in 0..10 {
        let forged = server
            .post("/api/notifications", "not.a.token", &json!({}))
            .await;
        assert_eq!(forged.status(), 401);
    }
    // Health and metrics are not REST calls of a token.
    for _ in 0..5 {
        let health = server
            .http()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    assert_eq!(
        metric(&server, "switchboard_rest_rate_limited_total").await,
        1.0
    );
    // The bucket refills at the given rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(backend, "refilled").await.status(), 201);
    assert_eq!(bob.recv("notification:created").await["title"], "refilled");
}
