//! Seed 002's check-in dashboard `/ws/dashboard/:sessionID` and the check-in routes
//! (contract §7.5's check-in rows, §7.6, §7.7), as a dashboard and a backend see them:
//! a real server, real sockets, a tokio-tungstenite client.
//!
//! Past 400 lines: one test per dashboard contract row; each test reads alone.

use std::time::{Duration, Instant};

use crate::support::ws::{self, Stream, refused, with_bearer};
use crate::support::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use uuid::Uuid;

const DASHBOARDS: &str = "switchboard_ws_connections{route=\"/ws/dashboard\"} ";

/// The order seed 002 lists a check-in's fields in.
const FIELDS: [&str; 7] = [
    "checkin_time",
    "message",
    "profile_url",
    "session_id",
    "success",
    "user_id",
    "user_name",
];

fn dashboard_request(server: &TestServer, session: &str, query: &str) -> Request {
    format!(
        "{}/ws/dashboard/{session}{query}",
        server.base.replacen("http", "ws", 1)
    )
    .into_client_request()
    .unwrap()
}

/// A dashboard client.
struct Dashboard {
    stream: Stream,
}

impl Dashboard {
    async fn open(request: Request) -> Dashboard {
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Dashboard { stream }
    }

    async fn connect(server: &TestServer, session: Uuid) -> Dashboard {
        Self::open(dashboard_request(server, &session.to_string(), "")).await
    }

    async fn send(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// The next frame that is not a ping, within `within`.
    async fn next_within(&mut self, within: Duration) -> Option<Message> {
        ws::next_frame(&mut self.stream, within).await
    }

    /// The next check-in, within 5 s: its fields in seed 002's order, its time RFC 3339
    /// with milliseconds.
    async fn checkin(&mut self) -> Value {
        let text = match self.next_within(Duration::from_secs(5)).await {
            Some(Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a check-in, got {other:?}"),
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), FIELDS.len(), "{text}");
        let positions: Vec<usize> = FIELDS
            .iter()
            .map(|f| text.find(&format!("\"{f}\":")).unwrap())
            .collect();
        assert!(positions.is_sorted(), "fields out of order: {text}");
        assert!(
            value["checkin_time"].as_str().is_some_and(rfc3339_ms),
            "{text}"
        );
        value
    }

    /// Nothing arrives within `ms`.
    async fn quiet(&mut self, within: Duration) {
        if let Some(message) = self.next_within(within).await {
            panic!("unexpected {message:?}");
        }
    }

    /// Reads until the server's close frame; its code.
    async fn close_code(&mut self, within: Duration) -> u16 {
        ws::close_code(&mut self.stream, within).await
    }
}

async fn post_checkin_as(
    server: &TestServer,
    bearer: Option<&str>,
    session: &str,
    body: Value,
) -> reqwest::Response {
    let path = format!("/api/sessions/{session}/checkins");
    let request = server.request("POST", &path, bearer).json(&body);
    request.send().await.unwrap()
}

/// Posts a check-in as the service; the stored check-in.
async fn post_checkin(server: &TestServer, session: Uuid, body: Value) -> Value {
    let res = post_checkin_as(server, Some(&service()), &session.to_string(), body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

fn ada(message: &str) -> Value {
    json!({
        "user_id": 42,
        "user_name": "Ada",
        "profile_url": "https://img.example/ada.png",
        "success": true,
        "message": message
    })
}

async fn list(server: &TestServer, bearer: &str, session: &str, query: &str) -> reqwest::Response {
    server
        .get(&format!("/api/sessions/{session}/checkins{query}"), bearer)
        .await
}

/// What the dashboard shows of a stored check-in.
fn shown(stored: &Value) -> Value {
    let mut shown = stored.clone();
    shown.as_object_mut().unwrap().remove("id");
    shown
}

#[sqlx::test]
async fn a_checkin_reaches_its_sessions_dashboards_once_and_no_other(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let (session, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut first = Dashboard::connect(&server, session).await;
    let mut second = Dashboard::connect(&server, session).await;
    let mut elsewhere = Dashboard::connect(&server, other).await;
    assert_eq!(metric(&server, DASHBOARDS).await, 3.0);

    let stored = post_checkin(&server, session, ada("Check-in successful")).await;
    assert!(Uuid::parse_str(stored["id"].as_str().unwrap()).is_ok());
    assert_eq!(stored["session_id"], session.to_string());
    assert!(stored["checkin_time"].as_str().is_some_and(rfc3339_ms));
    for dashboard in [&mut first, &mut second] {
        let got = dashboard.checkin().await;
        assert_eq!(got, shown(&stored));
        assert_eq!(got["user_id"], 42);
        dashboard.quiet(QUIET).await;
    }
    elsewhere.quiet(Duration::ZERO).await;

    // Without a picture, `profile_url` is null; a failed check-in says why.
    let stored = post_checkin(
        &server,
        other,
        json!({ "user_id": "7", "user_name": " Bob ", "success": false, "message": "Not registered" }),
    )
    .await;
    let got = elsewhere.checkin().await;
    assert_eq!(got, shown(&stored));
    assert_eq!(
        (
            &got["profile_url"],
            &got["success"],
            &got["user_id"],
            &got["user_name"]
        ),
        (&Value::Null, &json!(false), &json!(7), &json!("Bob"))
    );
    first.quiet(QUIET).await;
    second.quiet(Duration::ZERO).await;

    // A dashboard sees what is stored after it connected, not before.
    let mut late = Dashboard::connect(&server, session).await;
    late.quiet(QUIET).await;
    let stored = post_checkin(&server, session, ada("Welcome back")).await;
    for dashboard in [&mut first, &mut second, &mut late] {
        assert_eq!(dashboard.checkin().await, shown(&stored));
    }
    assert_eq!(
        metric(
            &server,
            "switchboard_ws_messages_out_total{type=\"checkin\"} "
        )
        .await,
        6.0
    );
}

#[sqlx::test]
async fn a_checkin_posted_as_the_dashboard_connects_is_not_lost(pool: PgPool) {
    // The dashboard is in its session's channel before the handshake is answered. The
    // window this closes (101 sent, connection task not yet running) is shorter than a
    // REST round trip on an idle machine, so this only catches a regression under load.
    let server = TestServer::start(pool).await;
    for round in 0..20 {
        let session = Uuid::new_v4();
        let mut dashboard = Dashboard::connect(&server, session).await;
        let stored = post_checkin(&server, session, ada(&format!("round {round}"))).await;
        assert_eq!(dashboard.checkin().await, shown(&stored));
    }
}

#[sqlx::test]
async fn a_session_id_that_is_not_a_uuid_is_404_before_the_upgrade(pool: PgPool) {
    let server = TestServer::start(pool).await;
    for bad in ["not-a-uuid", "123", "0000"] {
        assert_eq!(
            refused(dashboard_request(&server, bad, "")).await,
            (404, "NOT_FOUND".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(metric(&server, DASHBOARDS).await, 0.0);
}

#[sqlx::test]
async fn with_dashboard_require_token_a_staff_token_is_needed(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("DASHBOARD_REQUIRE_TOKEN", "true")]).await;
    let session = Uuid::new_v4();
    let id = session.to_string();
    assert_eq!(
        refused(dashboard_request(&server, &id, "")).await,
        (401, "AUTH_INVALID".to_owned())
    );
    assert_eq!(
        refused(dashboard_request(&server, &id, "?token=forged")).await,
        (401, "AUTH_INVALID".to_owned())
    );
    let expired = sign(json!({ "sub": 5, "roles": ["staff"], "exp": now_secs() - 3600 }));
    assert_eq!(
        refused(with_bearer(dashboard_request(&server, &id, ""), &expired)).await,
        (401, "AUTH_INVALID".to_owned())
    );
    // A good token below staff is known but not allowed.
    let user = token(5, &["user"]);
    assert_eq!(
        refused(dashboard_request(&server, &id, &format!("?token={user}"))).await,
        (403, "FORBIDDEN".to_owned())
    );
    assert_eq!(
        refused(with_bearer(dashboard_request(&server, &id, ""), &user)).await,
        (403, "FORBIDDEN".to_owned())
    );
    // The session is checked before the token.
    assert_eq!(
        refused(dashboard_request(&server, "nope", "")).await,
        (404, "NOT_FOUND".to_owned())
    );
    let staff = token(6, &["staff"]);
    let mut by_query =
        Dashboard::open(dashboard_request(&server, &id, &format!("?token={staff}"))).await;
    let mut by_header = Dashboard::open(with_bearer(
        dashboard_request(&server, &id, ""),
        &token(8, &["manager"]),
    ))
    .await;
    let mut by_service =
        Dashboard::open(with_bearer(dashboard_request(&server, &id, ""), &service())).await;
    let stored = post_checkin(&server, session, ada("ok")).await;
    for dashboard in [&mut by_query, &mut by_header, &mut by_service] {
        assert_eq!(dashboard.checkin().await, shown(&stored));
    }
}

#[sqlx::test]
async fn without_the_setting_a_token_is_not_needed_and_a_bad_one_is_not_looked_at(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let session = Uuid::new_v4();
    let mut dashboard = Dashboard::open(dashboard_request(
        &server,
        &session.to_string(),
        "?token=forged",
    ))
    .await;
    let stored = post_checkin(&server, session, ada("ok")).await;
    assert_eq!(dashboard.checkin().await, shown(&stored));
}

#[sqlx::test]
async fn a_dashboard_token_that_expires_closes_it_with_4001(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("DASHBOARD_REQUIRE_TOKEN", "true"),
            ("JWT_LEEWAY_SECS", "0"),
        ],
    )
    .await;
    let short = sign(json!({ "sub": 6, "roles": ["staff"], "exp": now_secs() + 2 }));
    let session = Uuid::new_v4().to_string();
    let mut dashboard = Dashboard::open(with_bearer(
        dashboard_request(&server, &session, ""),
        &short,
    ))
    .await;
    assert_eq!(dashboard.close_code(Duration::from_secs(6)).await, 4001);
    wait_metric(&server, DASHBOARDS, 0.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_dashboard_ignores_every_message_and_answers_pings(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let session = Uuid::new_v4();
    let mut dashboard = Dashboard::connect(&server, session).await;
    dashboard
        .send(Message::text(r#"{"type":"ping","id":"1"}"#))
        .await;
    dashboard.send(Message::text("not json")).await;
    dashboard
        .send(Message::text(r#"{"conversation_id":"x","content":"hi"}"#))
        .await;
    dashboard.send(Message::binary(vec![1, 2, 3])).await;
    dashboard
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await;
    match dashboard.next_within(Duration::from_secs(5)).await {
        Some(Message::Pong(data)) => assert_eq!(data.as_ref(), b"are you there"),
        other => panic!("expected the pong, got {other:?}"),
    }
    dashboard.quiet(QUIET).await;
    // Still connected and still in its session.
    let stored = post_checkin(&server, session, ada("still here")).await;
    assert_eq!(dashboard.checkin().await, shown(&stored));
    assert_eq!(
        metric(
            &server,
            "switchboard_ws_messages_in_total{type=\"ignored\"} "
        )
        .await,
        4.0
    );
    assert_eq!(metric(&server, DASHBOARDS).await, 1.0);
}

#[sqlx::test]
async fn dashboards_have_the_limits_of_ws(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("WS_IDLE_TIMEOUT_SECS", "1"),
            ("WS_PING_INTERVAL_SECS", "30"),
            ("WS_MAX_MESSAGE_BYTES", "1024"),
        ],
    )
    .await;
    let mut big = Dashboard::connect(&server, Uuid::new_v4()).await;
    big.send(Message::text("x".repeat(2048))).await;
    assert_eq!(big.close_code(Duration::from_secs(5)).await, 1009);
    let mut silent = Dashboard::connect(&server, Uuid::new_v4()).await;
    let started = Instant::now();
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, 1000);
    assert!(started.elapsed() >= Duration::from_millis(900));
    wait_metric(&server, DASHBOARDS, 0.0, Duration::from_secs(5)).await;
    wait_metric(
        &server,
        "switchboard_ws_closes_total{reason=\"idle\"} ",
        1.0,
        Duration::from_secs(5),
    )
    .await;
    wait_metric(
        &server,
        "switchboard_ws_hub_entries ",
        0.0,
        Duration::from_secs(5),
    )
    .await;
}

#[sqlx::test]
async fn shutdown_closes_dashboards_with_1001(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut a = Dashboard::connect(&server, Uuid::new_v4()).await;
    let mut b = Dashboard::connect(&server, Uuid::new_v4()).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(a.close_code(Duration::from_secs(10)).await, 1001);
    assert_eq!(b.close_code(Duration::from_secs(10)).await, 1001);
    stopping.await.unwrap().unwrap();
}

#[sqlx::test]
async fn posting_a_checkin_is_for_service_and_admin_and_validates_its_body(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let session = Uuid::new_v4().to_string();
    let good = ada("ok");
    // Rights before the path and the body.
    let res = post_checkin_as(&server, None, &session, good.clone()).await;
    assert_eq!(res.status(), 401);
    for roles in [&["user"][..], &["staff"], &["manager"]] {
        let res = post_checkin_as(&server, Some(&token(3, roles)), "nope", json!({})).await;
        assert_eq!(res.status(), 403, "{roles:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN");
    }
    let svc = service();
    let res = post_checkin_as(&server, Some(&svc), "nope", good.clone()).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({ "code": "BAD_REQUEST", "message": "sessionId: not a UUID" })
    );
    let cases = [
        ("user_id", json!(""), "user_id:"),
        ("user_id", json!(null), "user_id:"),
        (
            "user_name",
            json!(""),
            "user_name: must be 1 to 200 characters",
        ),
        (
            "user_name",
            json!("é".repeat(201)),
            "user_name: must be 1 to 200 characters",
        ),
        (
            "profile_url",
            json!("u".repeat(2001)),
            "profile_url: must be at most 2000 characters",
        ),
        ("profile_url", json!(5), "profile_url:"),
        ("success", json!("yes"), "success:"),
        (
            "message",
            json!(""),
            "message: must be 1 to 2000 characters",
        ),
        (
            "message",
            json!("m".repeat(2001)),
            "message: must be 1 to 2000 characters",
        ),
    ];
    for (field, value, expected) in cases {
        let mut body = good.clone();
        body[field] = value;
        let res = post_checkin_as(&server, Some(&svc), &session, body).await;
        let message = bad_request(res, field).await;
        assert!(message.starts_with(expected), "{field}: {message}");
    }
    for missing in ["user_id", "user_name", "success", "message"] {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(missing);
        let res = post_checkin_as(&server, Some(&svc), &session, body).await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["message"], format!("{missing}: required"));
    }
    let res = post_checkin_as(&server, Some(&svc), &session, json!([1])).await;
    assert_eq!(res.status(), 400);
    // Nothing of that was stored.
    let listed: Value = list(&server, &svc, &session, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // The longest values fit; admin may post too.
    let mut longest = good.clone();
    longest["user_name"] = json!("é".repeat(200));
    longest["profile_url"] = json!("u".repeat(2000));
    longest["message"] = json!("m".repeat(2000));
    let res = post_checkin_as(&server, Some(&token(1, &["admin"])), &session, longest).await;
    assert_eq!(res.status(), 201);
}

#[sqlx::test]
async fn listing_is_for_staff_and_up_newest_first_with_a_limit(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let (session, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut stored = Vec::new();
    for n in 0..3 {
        stored.push(post_checkin(&server, session, ada(&format!("#{n}"))).await);
    }
    post_checkin(&server, other, ada("elsewhere")).await;
    let id = session.to_string();

    let res = server
        .http()
        .get(server.url(&format!("/api/sessions/{id}/checkins")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = list(&server, &token(3, &["user"]), &id, "").await;
    assert_eq!(res.status(), 403);
    let res = list(&server, &token(3, &["user"]), "nope", "?limit=0").await;
    assert_eq!(res.status(), 403, "rights before the path and the query");
    let res = list(&server, &token(3, &["staff"]), "nope", "").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["message"], "sessionId: not a UUID");
    for bad in ["?limit=0", "?limit=101", "?limit=-1", "?limit=ten"] {
        let res = list(&server, &token(3, &["staff"]), &id, bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("limit:"),
            "{body}"
        );
    }

    let newest_first: Vec<Value> = stored.iter().rev().cloned().collect();
    for bearer in [
        token(3, &["staff"]),
        token(3, &["manager"]),
        token(1, &["admin"]),
        service(),
    ] {
        let all: Value = list(&server, &bearer, &id, "").await.json().await.unwrap();
        assert_eq!(all, json!(newest_first));
    }
    let two: Value = list(&server, &service(), &id, "?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(two, json!(newest_first[..2]));
    let one: Value = list(&server, &service(), &id, "?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one.as_array().unwrap().len(), 3);
    let none: Value = list(&server, &service(), &Uuid::new_v4().to_string(), "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
}

// ---------------------------------------------------------------------------------
// Across the nodes of a cluster

/// Two nodes on `pool`'s database and `adapter`, a cluster of their own.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    (a, b)
}

/// A check-in posted on either node reaches the session's dashboards on both, once,
/// and no other session's.
async fn dashboards_across_two_nodes(pool: &PgPool, adapter: &str) {
    let (a, b) = two_nodes(pool, adapter).await;
    let (session, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut on_a = Dashboard::connect(&a, session).await;
    let mut on_b = Dashboard::connect(&b, session).await;
    let mut other_on_b = Dashboard::connect(&b, other).await;
    for (n, node) in [&a, &b].into_iter().enumerate() {
        let stored = post_checkin(node, session, ada(&format!("via node {n}"))).await;
        for dashboard in [&mut on_a, &mut on_b] {
            assert_eq!(dashboard.checkin().await, shown(&stored), "{adapter}");
            dashboard.quiet(QUIET).await;
        }
        other_on_b.quiet(Duration::ZERO).await;
    }
    for node in [&a, &b] {
        assert_eq!(
            metric(node, "switchboard_ws_cluster_casts_dropped_total ").await,
            0.0
        );
    }
}

#[sqlx::test]
async fn dashboards_get_checkins_posted_on_another_node_once_postgres(pool: PgPool) {
    dashboards_across_two_nodes(&pool, "postgres").await;
}

#[sqlx::test]
async fn dashboards_get_checkins_posted_on_another_node_once_redis(pool: PgPool) {
    dashboards_across_two_nodes(&pool, "redis").await;
}
