//! Self-test of the socket.io test client (`tests/it/support/sio.rs`) against a real
//! socketioxide server.
//!
//! Past 400 lines: one test per client feature the other modules rely on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

use crate::support::sio::{self, ConnectError, ConnectOptions, SioClient};

#[derive(Debug)]
struct AuthInvalid;

impl fmt::Display for AuthInvalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AUTH_INVALID")
    }
}

impl std::error::Error for AuthInvalid {}

async fn auth_mw(TryData(auth): TryData<Value>) -> Result<(), AuthInvalid> {
    match auth {
        Ok(v) if v.get("token").and_then(Value::as_str) == Some("ok") => Ok(()),
        _ => Err(AuthInvalid),
    }
}

async fn echo(TryData(data): TryData<Value>, ack: AckSender) {
    let reply = match data {
        Ok(v) => v,
        Err(e) => json!({ "error": e.to_string() }),
    };
    let _ = ack.send(&reply);
}

async fn ping(s: SocketRef, TryData(data): TryData<Value>) {
    let data = data.unwrap_or(Value::Null);
    let _ = s.emit("pong", &data);
    let _ = s
        .to("room1")
        .emit("pong", &json!({ "from": s.id.to_string(), "data": data }))
        .await;
}

async fn on_connect(s: SocketRef) {
    s.join("room1");
    s.on("echo", echo);
    s.on("ping", ping);
    s.on("burst", async |s: SocketRef| {
        let _ = s.emit("first", &1);
        let _ = s.emit("second", &2);
    });
    s.on("kick", async |s: SocketRef| {
        let _ = s.disconnect();
    });
}

struct Server {
    base: String,
    io: SocketIo,
    disconnects: Arc<AtomicUsize>,
}

async fn start_server() -> Server {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(300))
        .build_layer();
    let disconnects = Arc::new(AtomicUsize::new(0));
    let counter = disconnects.clone();
    io.ns("/", async move |s: SocketRef| {
        let counter = counter.clone();
        s.on_disconnect(async move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        on_connect(s).await;
    });
    io.ns("/echo", on_connect.with(auth_mw));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        io,
        disconnects,
    }
}

fn good_auth() -> ConnectOptions {
    ConnectOptions::with_auth(json!({ "token": "ok" }))
}

async fn connect_root(srv: &Server) -> SioClient {
    SioClient::connect(&srv.base, "/", ConnectOptions::default())
        .await
        .unwrap()
}

const SHORT: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// Packet codec
// ---------------------------------------------------------------------------

#[test]
fn parses_packets_with_and_without_namespace_and_ack_id() {
    let p = sio::parse_sio_packet(r#"2/chat,12["msg",{"a":1}]"#).unwrap();
    assert_eq!(p.kind, 2);
    assert_eq!(p.ns, "/chat");
    assert_eq!(p.ack_id, Some(12));
    assert_eq!(p.data, Some(json!(["msg", {"a": 1}])));

    let p = sio::parse_sio_packet(r#"3/chat,7[{"ok":true}]"#).unwrap();
    assert_eq!((p.kind, p.ns.as_str(), p.ack_id), (3, "/chat", Some(7)));

    let p = sio::parse_sio_packet(r#"2["msg",1]"#).unwrap();
    assert_eq!((p.ns.as_str(), p.ack_id), ("/", None));
    assert_eq!(p.data, Some(json!(["msg", 1])));

    let p = sio::parse_sio_packet("1/chat,").unwrap();
    assert_eq!((p.kind, p.ns.as_str(), p.data), (1, "/chat", None));

    let p = sio::parse_sio_packet("1").unwrap();
    assert_eq!((p.kind, p.ns.as_str()), (1, "/"));

    let p = sio::parse_sio_packet(r#"4/echo,{"message":"AUTH_INVALID"}"#).unwrap();
    assert_eq!(p.data, Some(json!({"message": "AUTH_INVALID"})));

    // A comma inside the JSON of the `/` namespace is not a namespace separator.
    let p = sio::parse_sio_packet(r#"2["a,b",{"x":"/y,z"}]"#).unwrap();
    assert_eq!(p.ns, "/");
    assert_eq!(p.data, Some(json!(["a,b", {"x": "/y,z"}])));

    assert!(sio::parse_sio_packet("").is_err());
    assert!(sio::parse_sio_packet("2[oops").is_err());
}

#[test]
fn encodes_packets() {
    assert_eq!(
        sio::encode_sio_packet(0, "/", None, Some(&json!({"token": "x"}))),
        r#"0{"token":"x"}"#
    );
    assert_eq!(sio::encode_sio_packet(0, "/chat", None, None), "0/chat,");
    assert_eq!(
        sio::encode_sio_packet(2, "/chat", Some(3), Some(&json!(["e", 1]))),
        r#"2/chat,3["e",1]"#
    );
    assert_eq!(sio::encode_sio_packet(1, "/", None, None), "1");
}

// ---------------------------------------------------------------------------
// Against a real server
// ---------------------------------------------------------------------------

#[tokio::test]
async fn connect_with_good_token_gets_sid() {
    let srv = start_server().await;
    let c = SioClient::connect(&srv.base, "/echo", good_auth())
        .await
        .unwrap();
    assert!(!c.sid().is_empty());
    assert_eq!(c.ns(), "/echo");
    let sockets = srv.io.of("/echo").unwrap().sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].id.to_string(), c.sid());
    assert_eq!(c.open_packet()["pingInterval"], json!(300));

    // Namespace `/` without auth (written without the `/ns,` prefix).
    let root = connect_root(&srv).await;
    assert!(!root.sid().is_empty());
    assert_ne!(root.sid(), c.sid());
    assert_eq!(srv.io.of("/").unwrap().sockets().len(), 1);
}

#[tokio::test]
async fn bad_or_missing_token_is_refused_with_message() {
    let srv = start_server().await;
    let err = SioClient::connect(
        &srv.base,
        "/echo",
        ConnectOptions::with_auth(json!({ "token": "nope" })),
    )
    .await
    .unwrap_err();
    assert_eq!(err, ConnectError::Refused("AUTH_INVALID".to_owned()));
    assert!(err.to_string().contains("AUTH_INVALID"));

    let err = SioClient::connect(&srv.base, "/echo", ConnectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err, ConnectError::Refused("AUTH_INVALID".to_owned()));
    assert!(srv.io.of("/echo").unwrap().sockets().is_empty());
}

#[tokio::test]
async fn unknown_namespace_is_refused() {
    let srv = start_server().await;
    let err = SioClient::connect(&srv.base, "/nope", ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn refused_http_upgrade_reports_status() {
    let srv = start_server().await;
    // No socket.io handler under this prefix: axum answers 404 to the upgrade.
    let err = SioClient::connect(
        &format!("{}/elsewhere", srv.base),
        "/",
        ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    match err {
        ConnectError::Io(msg) => assert!(msg.contains("404"), "{msg}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[tokio::test]
async fn emit_ack_echo_round_trip() {
    let srv = start_server().await;
    let c = SioClient::connect(&srv.base, "/echo", good_auth())
        .await
        .unwrap();
    let payload =
        json!({ "text": "héllo, \"world\"", "n": [1, 2.5, null], "nested": { "ok": true } });
    assert_eq!(c.emit_ack("echo", payload.clone()).await, payload);
    // Several in a row get their own ack ids.
    for i in 0..5 {
        assert_eq!(c.emit_ack("echo", json!(i)).await, json!(i));
    }
    // Same on `/`.
    let root = connect_root(&srv).await;
    assert_eq!(root.emit_ack("echo", json!("x")).await, json!("x"));
}

#[tokio::test]
async fn concurrent_acks_are_routed_by_id() {
    let srv = start_server().await;
    let c = Arc::new(connect_root(&srv).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            (i, c.emit_ack("echo", json!({ "i": i })).await)
        }));
    }
    for t in tasks {
        let (i, v) = t.await.unwrap();
        assert_eq!(v, json!({ "i": i }));
    }
}

#[tokio::test]
async fn emit_ack_args_sends_raw_argument_lists() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    // One argument: identical to emit_ack.
    assert_eq!(
        c.emit_ack_args("echo", vec![json!({"a": 1})]).await,
        json!({"a": 1})
    );
    // Several arguments (`["echo",1,"two"]`): socketioxide's `TryData<Value>` extracts
    // the first one only.
    assert_eq!(
        c.emit_ack_args("echo", vec![json!(1), json!("two")]).await,
        json!(1)
    );
    // No argument at all (`["echo"]`): the handler still runs and acks.
    let v = c.emit_ack_all("echo", vec![]).await;
    // ... with the extraction error, which proves no argument was sent.
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].get("error").is_some(), "{v:?}");
}

#[tokio::test]
async fn emit_ack_timeout_reports_missing_ack() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    // `ping` never acks.
    let err = c
        .emit_ack_timeout("ping", vec![json!(1)], SHORT)
        .await
        .unwrap_err();
    assert!(err.contains("no ack"), "{err}");
    // The event itself was handled.
    assert_eq!(c.recv("pong").await, json!(1));
}

#[tokio::test]
async fn out_of_order_events_are_kept() {
    let srv = start_server().await;
    let c = SioClient::connect(&srv.base, "/echo", good_auth())
        .await
        .unwrap();
    c.emit("burst", json!(null)).await;
    // Read in the reverse order of arrival: "first" must not be dropped.
    assert_eq!(c.recv("second").await, json!(2));
    assert_eq!(c.recv("first").await, json!(1));

    c.emit("burst", json!(null)).await;
    c.emit("burst", json!(null)).await;
    assert_eq!(c.recv("second").await, json!(2));
    assert_eq!(c.recv("second").await, json!(2));
    assert_eq!(c.drain("first"), vec![json!(1), json!(1)]);
    assert!(c.drain("first").is_empty());
}

#[tokio::test]
async fn ping_reaches_socket_and_room() {
    let srv = start_server().await;
    let a = connect_root(&srv).await;
    let b = connect_root(&srv).await;
    a.emit("ping", json!({ "n": 7 })).await;
    assert_eq!(a.recv("pong").await, json!({ "n": 7 }));
    assert_eq!(
        b.recv("pong").await,
        json!({ "from": a.sid(), "data": { "n": 7 } })
    );
    // The room broadcast excludes the sender: a gets exactly one pong.
    a.expect_none("pong", SHORT).await;
    b.expect_none("pong", Duration::from_millis(50)).await;
}

#[tokio::test]
async fn expect_none_passes_on_silence() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    c.expect_none("pong", SHORT).await;
    assert_eq!(
        c.recv_timeout("pong", Duration::from_millis(100)).await,
        None
    );
}

#[tokio::test]
#[should_panic(expected = "expect_none(`pong`)")]
async fn expect_none_fails_when_event_arrives() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    c.emit("ping", json!(1)).await;
    c.expect_none("pong", Duration::from_secs(2)).await;
}

#[tokio::test]
async fn server_disconnect_is_seen() {
    let srv = start_server().await;
    let stay = connect_root(&srv).await;
    let c = connect_root(&srv).await;
    assert!(!c.wait_disconnected(Duration::from_millis(100)).await);
    c.emit("kick", json!(null)).await;
    assert!(c.wait_disconnected(Duration::from_secs(2)).await);
    assert!(c.is_disconnected());
    assert!(c.disconnect_reason().is_some());
    // Fails fast rather than waiting for the full timeout.
    assert_eq!(c.recv_timeout("pong", Duration::from_secs(5)).await, None);
    assert!(!stay.is_disconnected());
    assert_eq!(stay.emit_ack("echo", json!(1)).await, json!(1));
}

#[tokio::test]
#[should_panic(expected = "recv(`never`)")]
async fn recv_panics_naming_the_event() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    c.emit("kick", json!(null)).await;
    c.recv("never").await;
}

#[tokio::test]
async fn close_disconnects_on_server() {
    let srv = start_server().await;
    let c = connect_root(&srv).await;
    assert_eq!(srv.io.of("/").unwrap().sockets().len(), 1);
    c.close().await;
    for _ in 0..50 {
        if srv.disconnects.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(srv.disconnects.load(Ordering::SeqCst), 1);
    assert!(srv.io.of("/").unwrap().sockets().is_empty());
}

#[tokio::test]
async fn polling_handshake_returns_sid() {
    let srv = start_server().await;
    let open = sio::connect_polling_handshake(&srv.base).await;
    assert!(
        open["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{open}"
    );
    assert_eq!(open["pingInterval"], json!(300));
    assert_eq!(open["pingTimeout"], json!(300));
}

#[tokio::test]
async fn client_survives_several_ping_intervals() {
    let srv = start_server().await;
    let c = SioClient::connect(&srv.base, "/echo", good_auth())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!c.is_disconnected(), "{:?}", c.disconnect_reason());
    // The server pinged every 300 ms and the client answered each time.
    assert!(c.pings_answered() >= 3, "{}", c.pings_answered());
    assert_eq!(
        c.emit_ack("echo", json!("still here")).await,
        json!("still here")
    );
    assert_eq!(srv.io.of("/echo").unwrap().sockets().len(), 1);
}

#[tokio::test]
async fn headers_and_query_reach_the_server() {
    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", async |s: SocketRef| {
        let parts = s.req_parts();
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let _ = s.emit("hello", &json!({ "auth": auth, "query": query }));
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let opts = ConnectOptions::default()
        .bearer("tok123")
        .query("room", "a b&c");
    let c = SioClient::connect(&format!("ws://{addr}"), "/", opts)
        .await
        .unwrap();
    let hello = c.recv("hello").await;
    assert_eq!(hello["auth"], json!("Bearer tok123"));
    assert!(
        hello["query"].as_str().unwrap().contains("room=a%20b%26c"),
        "{hello}"
    );
}
