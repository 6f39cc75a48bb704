//! What an operator watches and relies on: draining on shutdown (readiness first, then
//! connections closed in waves), the metrics a Node or Centrifugo exporter would give,
//! and the Grafana dashboard built on them.
//!
//! Past 400 lines: one test per operator-facing behaviour (drain waves, metrics, logs);
//! each test reads alone.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A plain `/ws` client, authenticated; resolves with the instant its connection closed.
async fn ws_client(
    server: &TestServer,
    user: i64,
) -> impl std::future::Future<Output = Instant> + use<> {
    let url = format!(
        "{}/ws?token={}",
        server.base.replacen("http", "ws", 1),
        token(user, &["user"])
    );
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.to_string().contains("auth_success"), "{first}");
    async move {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Close(close) = frame {
                assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
                break;
            }
        }
        let closed = Instant::now();
        let _ = stream.close(None).await;
        closed
    }
}

/// Groups sorted instants into runs whose members are less than `gap` apart.
fn bursts(mut at: Vec<Instant>, gap: Duration) -> Vec<Vec<Instant>> {
    at.sort();
    let mut runs: Vec<Vec<Instant>> = Vec::new();
    for t in at {
        match runs.last_mut() {
            Some(run) if t.duration_since(*run.last().unwrap()) < gap => run.push(t),
            _ => runs.push(vec![t]),
        }
    }
    runs
}

#[sqlx::test]
async fn sigterm_turns_readyz_503_then_closes_connections_in_waves(pool: PgPool) {
    let mut server = TestServer::start_with(pool, &[("SHUTDOWN_GRACE_SECS", "3")]).await;
    server.serving().await;
    let mut sio = Vec::new();
    for user in 1..=30 {
        let c = server.client("/chat", user).await;
        c.recv("unread:count").await;
        sio.push(c);
    }
    let mut plain = Vec::new();
    for user in 31..=40 {
        plain.push(ws_client(&server, user).await);
    }
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    let waiting: Vec<_> = sio
        .iter()
        .map(|c| async move {
            assert!(c.wait_disconnected(Duration::from_secs(30)).await);
            Instant::now()
        })
        .collect();
    let closes = async {
        (
            futures_util::future::join_all(waiting).await,
            futures_util::future::join_all(plain).await,
        )
    };
    server.signal();
    let checks = async {
        // Readiness turns first, while connections are still open.
        let deadline = Instant::now() + Duration::from_secs(5);
        let body: Value = loop {
            let res = reqwest::get(server.url("/readyz")).await.unwrap();
            if res.status() == 503 {
                break res.json().await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "/readyz still {} after the signal",
                res.status()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(body["status"], "draining", "{body}");
        let still_open = sio.iter().filter(|c| !c.is_disconnected()).count();
        assert!(
            still_open > 0,
            "every socket was closed before /readyz said draining"
        );
        // The node still answers, but takes no new session.
        assert_eq!(
            reqwest::get(server.url("/healthz")).await.unwrap().status(),
            200
        );
        match SioClient::connect(
            &server.base,
            "/chat",
            ConnectOptions::with_auth(json!({ "token": token(99, &["user"]) })),
        )
        .await
        {
            Err(ConnectError::Io(e)) => assert!(e.contains("503"), "{e}"),
            Err(e) => panic!("a new session while draining: {e}"),
            Ok(_) => panic!("a new session was admitted while draining"),
        }
        let refused = metric(
            &server,
            "switchboard_connects_refused_total{code=\"SHUTTING_DOWN\"}",
        )
        .await;
        assert_eq!(refused, 1.0);
    };
    let ((sio_at, plain_at), ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(closes, checks)
    })
    .await
    .expect("every connection closed");
    let all: Vec<Instant> = sio_at.iter().chain(&plain_at).copied().collect();
    assert_eq!(all.len(), 40);
    // Closed in bursts spread over the grace period, not all in one instant.
    let waves = bursts(all, Duration::from_millis(250));
    let sizes: Vec<usize> = waves.iter().map(Vec::len).collect();
    assert!(waves.len() >= 3, "disconnects came in {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n < 40),
        "one wave closed everything: {sizes:?}"
    );
    assert!(server.stop().await.is_ok());
}

#[sqlx::test]
async fn a_running_event_is_answered_before_its_socket_is_closed_in_a_wave(pool: PgPool) {
    let mut server = TestServer::start_with(pool.clone(), &[("SHUTDOWN_GRACE_SECS", "3")]).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let busy = server.client("/chat", 1).await;
    busy.join(&conv).await;
    // Enough others for several waves.
    let mut others = Vec::new();
    for user in 2..=30 {
        others.push(server.client("/chat", user).await);
    }
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("lock table messages in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let send = busy.emit_ack(
        "message:send",
        json!({ "conversationId": conv, "content": "in flight" }),
    );
    let release = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.signal();
        // Past the first wave, which must have left the busy socket alone.
        tokio::time::sleep(Duration::from_millis(500)).await;
        blocker.rollback().await.unwrap();
    };
    let (ack, ()) = tokio::join!(send, release);
    assert_eq!(assert_ok(&ack)["content"], "in flight");
    assert!(busy.wait_disconnected(Duration::from_secs(10)).await);
    assert!(server.stop().await.is_ok());
}

/// Every sample and family name of a scrape (`# TYPE` lines and sample lines).
fn metric_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                names.insert(name.to_owned());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Sends the polling handshake and a CONNECT to `/chat`: a socket on long-polling.
async fn polling_socket(server: &TestServer, user: i64) -> String {
    let open = sio::connect_polling_handshake(&server.base).await;
    let sid = open["sid"].as_str().unwrap().to_owned();
    let url = server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let connect = format!("40/chat,{}", json!({ "token": token(user, &["user"]) }));
    let posted = reqwest::Client::new()
        .post(&url)
        .body(connect)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let answer = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(answer.contains("40/chat,"), "{answer}");
    sid
}

#[sqlx::test]
async fn metrics_move_when_the_thing_they_count_happens(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let base = server.url("");
    let text = metrics_text(&base).await;
    // Process metrics under prom-client's names, and what was built.
    for name in [
        "process_cpu_seconds_total",
        "process_cpu_user_seconds_total",
        "process_cpu_system_seconds_total",
        "process_start_time_seconds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
    ] {
        assert!(metric_names(&text).contains(name), "{name} missing");
    }
    // The test process hosts the server: its own numbers must read the same way.
    assert!(metric_at(&base, "process_resident_memory_bytes").await > 1_000_000.0);
    let fds = metric_at(&base, "process_open_fds").await;
    assert!(fds > 0.0 && metric_at(&base, "process_max_fds").await >= fds);
    let version = format!(
        "switchboard_build_info{{version=\"{}\",git_sha=\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "no build info in\n{text}");

    // Connections by transport.
    let ws_sample = "switchboard_socketio_connections{transport=\"websocket\"}";
    let polling_sample = "switchboard_socketio_connections{transport=\"polling\"}";
    let cpu_before = metric(&server, "process_cpu_seconds_total").await;
    let fds_before = metric(&server, "process_open_fds").await;
    let ws = server.client("/chat", 1).await;
    ws.recv("unread:count").await;
    assert_eq!(metric(&server, ws_sample).await, 1.0);
    let _polling = polling_socket(&server, 2).await;
    assert_eq!(metric(&server, polling_sample).await, 1.0);
    assert!(metric(&server, "process_open_fds").await > fds_before);

    // Deliveries and bytes out: a message to a conversation with both users.
    let emits = "switchboard_socketio_emits_total{namespace=\"/chat\"}";
    let emits_before = metric(&server, emits).await;
    let sent_before = metric(&server, "switchboard_bytes_sent_total").await;
    let received_before = metric(&server, "switchboard_bytes_received_total").await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    ws.join(&conv).await;
    ws.send_message(&conv, "counted").await;
    assert!(metric(&server, emits).await > emits_before);
    assert!(metric(&server, "switchboard_bytes_sent_total").await > sent_before);
    assert!(metric(&server, "switchboard_bytes_received_total").await > received_before);

    // Refused connects by code.
    let refused = "switchboard_connects_refused_total{code=\"AUTH_INVALID\"}";
    assert_eq!(metric(&server, refused).await, 0.0);
    let expired = sign(json!({ "sub": 3, "exp": now_secs() - 3600 }));
    assert!(
        SioClient::connect(
            &server.base,
            "/chat",
            ConnectOptions::with_auth(json!({ "token": expired }))
        )
        .await
        .is_err()
    );
    assert_eq!(metric(&server, refused).await, 1.0);

    // Disconnects by reason.
    let gone =
        "switchboard_disconnects_total{namespace=\"/chat\",reason=\"client_namespace_disconnect\"}";
    let before = metric(&server, gone).await;
    ws.close().await;
    wait_metric(&server, gone, before + 1.0, Duration::from_secs(5)).await;
    wait_metric(&server, ws_sample, 0.0, Duration::from_secs(5)).await;

    // "Session ID unknown": what a node answers a long-poll meant for another node.
    let unknown = "switchboard_engine_session_unknown_total";
    assert_eq!(metric(&server, unknown).await, 0.0);
    let stray = reqwest::get(
        server.url("/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await
    .unwrap();
    assert_eq!(stray.status(), 400);
    assert!(stray.text().await.unwrap().contains("Session ID unknown"));
    assert_eq!(metric(&server, unknown).await, 1.0);

    // CPU time only grows.
    assert!(metric(&server, "process_cpu_seconds_total").await >= cpu_before);
}

/// The metric names a PromQL expression reads: identifiers starting with one of our
/// prefixes (function names, label names and values never do).
fn promql_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    let mut in_braces = false;
    let mut token = String::new();
    let mut flush = |token: &mut String, in_braces: bool| {
        if !in_braces && (token.starts_with("switchboard_") || token.starts_with("process_")) {
            names.push(std::mem::take(token));
        }
        token.clear();
    };
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | ':' => token.push(c),
            _ => {
                flush(&mut token, in_braces);
                match c {
                    '{' => in_braces = true,
                    '}' => in_braces = false,
                    _ => {}
                }
            }
        }
    }
    flush(&mut token, in_braces);
    names
}

#[test]
fn promql_metric_names_are_found() {
    assert_eq!(
        promql_metrics(
            "sum by (reason) (rate(switchboard_disconnects_total{namespace=\"/chat\"}[5m])) / process_open_fds"
        ),
        ["switchboard_disconnects_total", "process_open_fds"]
    );
}

#[sqlx::test]
async fn every_dashboard_query_reads_metrics_the_server_exports(pool: PgPool) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/switchboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                // A query variable's `query` is PromQL; a datasource variable's names
                // the plugin.
                let variable = map.get("type").and_then(Value::as_str) == Some("query");
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(s)) => out.push(s.clone()),
                        ("query", Value::String(s)) if variable => out.push(s.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&dashboard, &mut exprs);
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            panel["title"]
        );
    }

    // A scrape of a clustered node that did some of everything, so the labelled
    // families that only appear with their first event exist.
    let prefix = format!("sbdash-{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::start_with(
        pool,
        &[("ADAPTER", "postgres"), ("ADAPTER_PREFIX", prefix.as_str())],
    )
    .await;
    server.serving().await;
    let c = server.client("/chat", 1).await;
    c.recv("unread:count").await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    c.join(&conv).await;
    c.send_message(&conv, "hello").await;
    c.refused("message:send", json!({}), "BAD_REQUEST").await;
    assert!(
        SioClient::connect(
            &server.base,
            "/chat",
            ConnectOptions::with_auth(json!({ "token": "not a token" }))
        )
        .await
        .is_err()
    );
    c.close().await;
    let url = format!(
        "{}/ws?token={}",
        server.base.replacen("http", "ws", 1),
        token(2, &["user"])
    );
    let (mut plain, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    plain.next().await.unwrap().unwrap();
    plain.close(None).await.unwrap();
    wait_metric(
        &server,
        "switchboard_ws_closes_total{reason=\"client\"}",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    let text = metrics_text(&server.url("")).await;
    let exported = metric_names(&text);
    let mut checked = 0;
    for expr in &exprs {
        let names = promql_metrics(expr);
        assert!(
            !names.is_empty() || expr.starts_with("label_values"),
            "no metric in {expr:?}"
        );
        for name in names {
            // A counter family is declared without `_total`, a histogram's without
            // `_bucket`/`_sum`/`_count`; its samples carry them.
            let family = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.contains(&name) || exported.contains(family),
                "the dashboard reads {name}, which /metrics does not export (in {expr:?})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
    assert!(server.stop().await.is_ok());
}
