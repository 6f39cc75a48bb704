//! The socket.io Admin UI's server protocol on `/admin` (`@socket.io/admin-ui` 0.5, as
//! Node's `instrument(io, { auth: { type: "basic", ... } })`), over real sockets: login,
//! sessions, what the UI is sent, its actions, and a cluster where every node reports.
//!
//! The Redis variant of the cluster tests needs `REDIS_URL` (scripts/test starts one).
//!
//! Past 400 lines: one test per Admin UI protocol message the UI sends or expects.

use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

const PASSWORD: &str = "correct horse battery staple";

/// The password's bcrypt hash (cost 4: tests need not be slow to hash).
fn hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash(PASSWORD, 4).unwrap())
}

fn admin_vars() -> Vec<(&'static str, String)> {
    vec![
        ("ADMIN_UI", "true".to_owned()),
        ("ADMIN_UI_USERNAME", "ops".to_owned()),
        ("ADMIN_UI_PASSWORD_HASH", hash().to_owned()),
    ]
}

async fn start(pool: PgPool, extra: &[(&'static str, String)]) -> TestServer {
    let mut vars = admin_vars();
    vars.extend(extra.iter().cloned());
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = TestServer::start_with(pool, &overrides).await;
    server.serving().await;
    server
}

async fn login(s: &TestServer, auth: Value) -> Result<SioClient, ConnectError> {
    SioClient::connect(&s.base, "/admin", ConnectOptions::with_auth(auth)).await
}

async fn admin(s: &TestServer) -> SioClient {
    login(s, json!({ "username": "ops", "password": PASSWORD }))
        .await
        .unwrap()
}

/// The next `event` whose arguments satisfy `done`, within 10 s (changes are reported
/// on each node's two-second tick).
async fn recv_args_until(
    c: &SioClient,
    event: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match c.recv_args_timeout(event, left).await {
            Some(args) if done(&args) => return args,
            Some(_) => {}
            None => panic!("no matching {event} within 10 s"),
        }
    }
}

/// `server_stats` until one satisfies `done`.
async fn stats_until(c: &SioClient, done: impl Fn(&Value) -> bool) -> Value {
    recv_args_until(c, "server_stats", |args| done(&args[0])).await[0].clone()
}

fn sockets_count(stats: &Value, nsp: &str) -> u64 {
    stats["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == nsp)
        .map_or(0, |n| n["socketsCount"].as_u64().unwrap())
}

#[sqlx::test]
async fn admin_is_an_unknown_namespace_unless_turned_on(pool: PgPool) {
    let s = TestServer::start_with(pool, &[]).await;
    let unknown = login(&s, json!({})).await.err().unwrap();
    let nonsense = SioClient::connect(&s.base, "/no-such-namespace", ConnectOptions::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(unknown, ConnectError::Refused(_)), "{unknown}");
    assert_eq!(
        unknown, nonsense,
        "refused exactly like any unknown namespace"
    );
    let right = login(&s, json!({ "username": "admin", "password": PASSWORD })).await;
    assert_eq!(right.err(), Some(nonsense));
    // Nor are its files served.
    let res = s.http().get(s.url("/admin/ui/")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[sqlx::test]
async fn every_failed_login_is_invalid_credentials(pool: PgPool) {
    let s = start(pool, &[]).await;
    let refused = ConnectError::Refused("invalid credentials".into());
    for auth in [
        json!({ "username": "ops", "password": "wrong" }),
        json!({ "username": "admin", "password": PASSWORD }),
        json!({ "username": "ops" }),
        json!({ "sessionId": "0123456789abcdef0123456789abcdef" }),
        json!({ "token": token(1, &["admin"]) }),
        json!({}),
    ] {
        assert_eq!(
            login(&s, auth.clone()).await.err(),
            Some(refused.clone()),
            "{auth}"
        );
    }
    // No auth payload at all.
    let none = SioClient::connect(&s.base, "/admin", ConnectOptions::default()).await;
    assert_eq!(none.err(), Some(refused));
}

#[sqlx::test]
async fn a_peer_that_keeps_guessing_is_refused_even_the_right_password(pool: PgPool) {
    let s = start(pool, &[]).await;
    // The first connection logs in; a session it got still works afterwards.
    let first = admin(&s).await;
    let session = first.recv("session").await;
    let mut refused = 0;
    for _ in 0..12 {
        if login(&s, json!({ "username": "ops", "password": "guess" }))
            .await
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 12);
    let right = login(&s, json!({ "username": "ops", "password": PASSWORD })).await;
    assert_eq!(
        right.err(),
        Some(ConnectError::Refused("invalid credentials".into())),
        "over the attempts a peer may make"
    );
    assert!(login(&s, json!({ "sessionId": session })).await.is_ok());
}

#[sqlx::test]
async fn login_gives_a_session_the_config_every_socket_and_stats(pool: PgPool) {
    let s = start(pool, &[]).await;
    let secret_token = token(7, &["user"]);
    let chat = s.client_with("/chat", &secret_token).await;
    let bearer = SioClient::connect(
        &s.base,
        "/notifications",
        ConnectOptions::default()
            .bearer(&token(8, &["user"]))
            .query("token", &token(8, &["user"])),
    )
    .await
    .unwrap();

    let ui = admin(&s).await;
    let session = ui.recv("session").await;
    let session = session.as_str().unwrap().to_owned();
    assert_eq!(session.len(), 32);
    let config = ui.recv("config").await;
    let features: Vec<&str> = config["supportedFeatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "JOIN",
        "LEAVE",
        "DISCONNECT",
        "MJOIN",
        "MLEAVE",
        "MDISCONNECT",
        "AGGREGATED_EVENTS",
    ] {
        assert!(features.contains(&f), "{f} in {features:?}");
    }
    assert!(
        !features.contains(&"EMIT"),
        "the UI may not send events to clients"
    );

    let all = ui.recv("all_sockets").await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let listed = all.iter().find(|x| x["id"] == chat.sid()).unwrap();
    assert_eq!(listed["nsp"], "/chat");
    assert_eq!(listed["transport"], "websocket");
    assert_eq!(listed["rooms"], json!(["user:7"]));
    assert_eq!(listed["data"], json!({}));
    assert_eq!(listed["handshake"]["headers"], json!({}));
    assert_eq!(listed["handshake"]["query"], json!({}));
    assert_eq!(listed["handshake"]["url"], "/socket.io/");
    assert_eq!(listed["handshake"]["address"], "127.0.0.1");
    assert!(listed["handshake"]["issued"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(listed["clientId"].as_str().unwrap().len(), 12);
    let other = all.iter().find(|x| x["id"] == bearer.sid()).unwrap();
    assert_eq!(other["nsp"], "/notifications");
    // Neither token (auth payload, header, query) nor principal reaches the UI.
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains(&secret_token) && !text.contains("eyJ"),
        "{text}"
    );
    assert!(!text.contains("Bearer"), "{text}");

    let stats = ui.recv("server_stats").await;
    assert_eq!(sockets_count(&stats, "/chat"), 1);
    assert_eq!(sockets_count(&stats, "/notifications"), 1);
    assert_eq!(sockets_count(&stats, "/admin"), 1);
    assert_eq!(stats["clientsCount"], 3, "{stats}");
    assert_eq!(stats["pollingClientsCount"], 0);
    assert!(stats["serverId"].as_str().unwrap().contains('#'));
    assert!(stats["uptime"].as_f64().unwrap() >= 0.0);
    assert!(stats["aggregatedEvents"].is_array());
    // Every two seconds while watched, with the connections since counted.
    let third = s.client("/chat", 9).await;
    let later = stats_until(&ui, |st| sockets_count(st, "/chat") == 2).await;
    assert_eq!(later["clientsCount"], 4);
    let _ = later["aggregatedEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "rawConnection" && e["count"] == 1)
        .unwrap_or_else(|| panic!("the new connection counted: {later}"));
    drop(third);

    // The UI reconnects with its session, without the password, and gets no new one.
    ui.close().await;
    let again = login(&s, json!({ "sessionId": session })).await.unwrap();
    assert!(again.recv("config").await.is_object());
    assert!(again.recv("all_sockets").await.is_array());
    assert!(
        again
            .recv_timeout("session", Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[sqlx::test]
async fn connects_joins_leaves_and_disconnects_are_reported(pool: PgPool) {
    let s = start(pool, &[]).await;
    let ui = admin(&s).await;
    assert_eq!(ui.recv("all_sockets").await, json!([]));

    let c = s.client("/chat", 3).await;
    let connected = recv_args_until(&ui, "socket_connected", |a| a[0]["id"] == c.sid()).await;
    assert_eq!(connected[0]["rooms"], json!(["user:3"]));
    assert!(connected[1].as_str().unwrap().ends_with('Z'), "a timestamp");

    let conversation = create_conversation(&s, 3, "group", &[4]).await;
    let room = format!("conversation:{conversation}");
    c.join(&conversation).await;
    let joined = recv_args_until(&ui, "room_joined", |a| a[1] == room.as_str()).await;
    assert_eq!(joined[0], "/chat");
    assert_eq!(joined[2], c.sid());

    c.ok(
        "conversation:leave",
        json!({ "conversationId": conversation }),
    )
    .await;
    let left = recv_args_until(&ui, "room_left", |a| a[1] == room.as_str()).await;
    assert_eq!(left[2], c.sid());

    let sid = c.sid().to_owned();
    c.close().await;
    let gone = recv_args_until(&ui, "socket_disconnected", |a| a[1] == sid.as_str()).await;
    assert_eq!(gone[0], "/chat");
}

#[sqlx::test]
async fn the_ui_makes_a_socket_join_leave_and_disconnect(pool: PgPool) {
    let s = start(pool, &[]).await;
    let a = s.client("/chat", 5).await;
    let b = s.client("/chat", 6).await;
    let ui = admin(&s).await;
    ui.recv("all_sockets").await;

    // By socket id (what the UI's buttons send).
    ui.emit_args(
        "join",
        vec![json!("/chat"), json!("ops:watch"), json!(a.sid())],
    )
    .await;
    let joined = recv_args_until(&ui, "room_joined", |x| x[1] == "ops:watch").await;
    assert_eq!(joined[2], a.sid(), "only the socket named");
    ui.expect_none("room_joined", Duration::from_millis(2500))
        .await;

    // By room (the Rooms page's "leave" of a whole room): two arguments only.
    ui.emit_args("leave", vec![json!("/chat"), json!("ops:watch")])
        .await;
    let left = recv_args_until(&ui, "room_left", |x| x[1] == "ops:watch").await;
    assert_eq!(left[2], a.sid());

    // Nonsense is ignored: the UI's socket stays connected, nothing happens.
    ui.emit_args("join", vec![json!("/nope"), json!("x"), json!(a.sid())])
        .await;
    ui.emit_args("join", vec![json!("/chat")]).await;
    ui.emit_args("_disconnect", vec![json!(5), json!(false), json!(a.sid())])
        .await;
    ui.emit_args("_disconnect", vec![json!("/admin"), json!(false)])
        .await;

    ui.emit_args(
        "_disconnect",
        vec![json!("/chat"), json!(false), json!(b.sid())],
    )
    .await;
    assert!(
        b.wait_disconnected(Duration::from_secs(5)).await,
        "b disconnected"
    );
    let sid = b.sid().to_owned();
    recv_args_until(&ui, "socket_disconnected", |x| x[1] == sid.as_str()).await;
    assert!(!a.is_disconnected(), "a untouched");
    assert!(!ui.is_disconnected());
}

#[sqlx::test]
async fn the_ui_files_are_served_from_admin_ui_dir(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("sb-admin-ui-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("js")).unwrap();
    std::fs::write(dir.join("index.html"), "<title>Socket.IO Admin UI</title>").unwrap();
    std::fs::write(dir.join("js/app.js"), "console.log(1)").unwrap();
    let s = start(pool, &[("ADMIN_UI_DIR", dir.display().to_string())]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http.get(s.url("/admin/ui")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/admin/ui/");
    let res = http.get(s.url("/admin/ui/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(res.text().await.unwrap().contains("Admin UI"));
    let res = http.get(s.url("/admin/ui/js/app.js")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    for path in [
        "/admin/ui/../Cargo.toml",
        "/admin/ui/%2e%2e/%2e%2e/etc/passwd",
        "/admin/ui/js/../../Cargo.toml",
        "/admin/ui/missing.js",
    ] {
        let res = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two nodes with the Admin UI on, on one database and `adapter`.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let prefix = format!("sbtest-{}", uuid::Uuid::new_v4().simple());
    let mut vars = vec![("ADAPTER", adapter.to_owned()), ("ADAPTER_PREFIX", prefix)];
    if adapter == "redis" {
        vars.push(("REDIS_URL", redis_url()));
    }
    let a = start(pool.clone(), &vars).await;
    let b = start(pool.clone(), &vars).await;
    (a, b)
}

async fn every_node_reports_and_obeys(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let on_a = a.client("/chat", 1).await;
    let on_b = b.client("/chat", 2).await;
    let ui = admin(&a).await;

    // This node's sockets in all_sockets, the other node's as socket_connected.
    let all = ui.recv("all_sockets").await;
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["id"], on_a.sid());
    let remote = recv_args_until(&ui, "socket_connected", |x| x[0]["id"] == on_b.sid()).await;
    assert_eq!(remote[0]["rooms"], json!(["user:2"]));

    // Both nodes appear as servers, each with its own socket.
    let mut servers = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while servers.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats from both nodes: {servers:?}"
        );
        let st = ui.recv("server_stats").await;
        servers.insert(
            st["serverId"].as_str().unwrap().to_owned(),
            sockets_count(&st, "/chat"),
        );
    }
    assert!(servers.values().all(|n| *n == 1), "{servers:?}");

    // A socket the other node holds joins a room, then is disconnected, from this UI.
    ui.emit_args(
        "join",
        vec![json!("/chat"), json!("ops:b"), json!(on_b.sid())],
    )
    .await;
    let joined = recv_args_until(&ui, "room_joined", |x| x[1] == "ops:b").await;
    assert_eq!(joined[2], on_b.sid());
    ui.emit_args(
        "_disconnect",
        vec![json!("/chat"), json!(false), json!(on_b.sid())],
    )
    .await;
    assert!(
        on_b.wait_disconnected(Duration::from_secs(5)).await,
        "the other node's socket"
    );
    let sid = on_b.sid().to_owned();
    recv_args_until(&ui, "socket_disconnected", |x| x[1] == sid.as_str()).await;
    assert!(!on_a.is_disconnected());

    // A UI on the other node sees this node's socket too.
    let ui_b = admin(&b).await;
    assert_eq!(ui_b.recv("all_sockets").await, json!([]));
    recv_args_until(&ui_b, "socket_connected", |x| x[0]["id"] == on_a.sid()).await;
}

#[sqlx::test]
async fn every_node_reports_and_obeys_over_postgres(pool: PgPool) {
    every_node_reports_and_obeys(pool, "postgres").await;
}

#[sqlx::test]
async fn every_node_reports_and_obeys_over_redis(pool: PgPool) {
    every_node_reports_and_obeys(pool, "redis").await;
}
