//! `/notifications` and its REST routes end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

const QUIET: Duration = Duration::from_millis(300);

async fn notify(server: &TestServer, user: i64, title: &str) -> Value {
    let res = server
        .http()
        .post(server.url("/api/notifications"))
        .bearer_auth(token(900, &["service"]))
        .json(&json!({ "user_id": user, "type": "message", "title": title, "content": "body", "related_id": "conv-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn broadcast(server: &TestServer, title: &str) -> Value {
    let res = server
        .http()
        .post(server.url("/api/notifications/broadcast"))
        .bearer_auth(token(901, &["admin"]))
        .json(&json!({ "type": "system", "title": title, "content": "maintenance" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// Waits for the `notification:count` that says `expected` (earlier ones may be queued).
async fn count_becomes(c: &SioClient, expected: i64) {
    recv_until(c, "notification:count", |v| v["count"] == expected).await;
}

#[sqlx::test]
async fn connect_emits_the_unread_count(pool: PgPool) {
    let server = TestServer::start(pool).await;
    notify(&server, 1, "a").await;
    let c = server.client("/notifications", 1).await;
    assert_eq!(c.recv("notification:count").await, json!({ "count": 1 }));
    let stranger = server.client("/notifications", 2).await;
    assert_eq!(
        stranger.recv("notification:count").await,
        json!({ "count": 0 })
    );
}

#[sqlx::test]
async fn created_notifications_reach_every_device_of_that_user_only(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let phone = server.client("/notifications", 1).await;
    let laptop = server.client("/notifications", 1).await;
    let chat = server.client("/chat", 1).await;
    let other = server.client("/notifications", 2).await;
    let created = notify(&server, 1, "hello").await;
    assert_eq!(created["user_id"], 1);
    assert_eq!(created["type"], "message");
    assert_eq!(created["is_read"], false);
    assert_eq!(created["related_id"], "conv-1");
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    for c in [&phone, &laptop, &chat] {
        assert_eq!(c.recv("notification:created").await, created);
    }
    count_becomes(&phone, 1).await;
    count_becomes(&laptop, 1).await;
    other.expect_none("notification:created", QUIET).await;
    let stored: i64 = sqlx::query_scalar("select count(*) from notifications where user_id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[sqlx::test]
async fn list_get_read_and_delete_act_on_own_notifications(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(notify(&server, 1, &format!("n{i}")).await["_id"].clone());
    }
    let c = server.client("/notifications", 1).await;
    let laptop = server.client("/notifications", 1).await;
    count_becomes(&c, 5).await;

    let page = assert_ok(&c.emit_ack("notification:list", json!({ "limit": 2 })).await);
    let titles: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["n4", "n3"]);
    let older = assert_ok(
        &c.emit_ack("notification:list", json!({ "before": ids[3], "limit": 2 }))
            .await,
    );
    assert_eq!(older[0]["title"], "n2");

    let got = assert_ok(
        &c.emit_ack("notification:get", json!({ "notificationId": ids[0] }))
            .await,
    );
    assert_eq!(got["title"], "n0");

    let read = assert_ok(
        &c.emit_ack("notification:read", json!({ "notificationId": ids[0] }))
            .await,
    );
    assert_eq!(read["is_read"], true);
    assert_eq!(
        laptop.recv("notification:read").await,
        json!({ "notificationId": ids[0], "is_read": true })
    );
    count_becomes(&laptop, 4).await;
    let unread = assert_ok(
        &c.emit_ack("notification:list", json!({ "unreadOnly": true }))
            .await,
    );
    assert_eq!(unread.as_array().unwrap().len(), 4);

    assert_ok(
        &c.emit_ack("notification:delete", json!({ "notificationId": ids[1] }))
            .await,
    );
    assert_eq!(
        laptop.recv("notification:deleted").await,
        json!({ "notificationId": ids[1] })
    );
    count_becomes(&laptop, 3).await;
    assert_error(
        &c.emit_ack("notification:get", json!({ "notificationId": ids[1] }))
            .await,
        "NOT_FOUND",
    );

    let all = assert_ok(&c.emit_ack("notification:read_all", json!({})).await);
    assert_eq!(all, json!({ "count": 3 }));
    assert_eq!(laptop.recv("notification:read_all").await, json!({}));
    count_becomes(&laptop, 0).await;
}

#[sqlx::test]
async fn another_users_notification_is_not_found_and_unchanged(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let theirs = notify(&server, 2, "private").await;
    let id = theirs["_id"].clone();
    let me = server.client("/notifications", 1).await;
    for event in [
        "notification:get",
        "notification:read",
        "notification:delete",
    ] {
        assert_error(
            &me.emit_ack(event, json!({ "notificationId": id })).await,
            "NOT_FOUND",
        );
    }
    assert_eq!(
        assert_ok(&me.emit_ack("notification:read_all", json!({})).await),
        json!({ "count": 0 })
    );
    let (is_read, n): (bool, i64) =
        sqlx::query_as("select bool_or(is_read), count(*) from notifications where user_id = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((is_read, n), (false, 1));
    assert_eq!(
        assert_ok(&me.emit_ack("notification:list", json!({})).await),
        json!([])
    );
}

#[sqlx::test]
async fn broadcasts_reach_everyone_and_late_joiners_and_are_read_per_user(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let alice = server.client("/notifications", 1).await;
    let bob = server.client("/notifications", 2).await;
    let bob_chat = server.client("/chat", 2).await;
    alice.recv("notification:count").await;
    bob.recv("notification:count").await;
    let b = broadcast(&server, "maintenance tonight").await;
    assert_eq!(b["user_id"], Value::Null);
    for c in [&alice, &bob, &bob_chat] {
        assert_eq!(c.recv("notification:created").await, b);
    }
    count_becomes(&alice, 1).await;
    count_becomes(&bob, 1).await;

    // Alice reads and deletes it; Bob still has it unread.
    let read = assert_ok(
        &alice
            .emit_ack("notification:read", json!({ "notificationId": b["_id"] }))
            .await,
    );
    assert_eq!(read["is_read"], true);
    count_becomes(&alice, 0).await;
    assert_ok(
        &alice
            .emit_ack("notification:delete", json!({ "notificationId": b["_id"] }))
            .await,
    );
    assert_eq!(
        assert_ok(&alice.emit_ack("notification:list", json!({})).await),
        json!([])
    );
    let bobs = assert_ok(
        &bob.emit_ack("notification:list", json!({ "unreadOnly": true }))
            .await,
    );
    assert_eq!(bobs[0]["_id"], b["_id"]);
    assert_eq!(bobs[0]["is_read"], false);

    // Carol connects later and still sees it.
    let carol = server.client("/notifications", 3).await;
    assert_eq!(
        carol.recv("notification:count").await,
        json!({ "count": 1 })
    );
    let list = assert_ok(&carol.emit_ack("notification:list", json!({})).await);
    assert_eq!(list[0]["title"], "maintenance tonight");
    let stored: i64 = sqlx::query_scalar("select count(*) from notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "a broadcast is stored once");
}

#[sqlx::test]
async fn ping_answers_with_epoch_milliseconds(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/notifications", 1).await;
    let before = chrono::Utc::now().timestamp_millis();
    let ack = assert_ok(
        &c.emit_ack("notification:ping", json!({ "action": "ping" }))
            .await,
    );
    let pong = c.recv("pong").await;
    assert_eq!(ack, pong);
    let ts = pong["timestamp"].as_i64().unwrap();
    assert!(ts >= before && ts <= chrono::Utc::now().timestamp_millis());
    assert_error(
        &c.emit_ack("notification:ping", json!({ "action": "pong" }))
            .await,
        "BAD_REQUEST",
    );
}

#[sqlx::test]
async fn bad_list_payloads_are_refused(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let c = server.client("/notifications", 1).await;
    for payload in [
        json!({ "limit": 0 }),
        json!({ "limit": 201 }),
        json!({ "unreadOnly": "yes" }),
        json!({ "before": "x" }),
    ] {
        assert_error(
            &c.emit_ack("notification:list", payload).await,
            "BAD_REQUEST",
        );
    }
    assert_ok(
        &c.emit_ack("notification:list", json!({ "limit": 200 }))
            .await,
    );
    assert_error(
        &c.emit_ack("notification:list", json!({ "before": Uuid::new_v4() }))
            .await,
        "NOT_FOUND",
    );
    assert_error(
        &c.emit_ack("notification:get", json!({})).await,
        "BAD_REQUEST",
    );
    assert_error(&c.emit_ack("no:such", json!({})).await, "BAD_REQUEST");
}

#[sqlx::test]
async fn only_services_and_admins_create_notifications(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let post = |path: &'static str, auth: Option<String>, body: Value| {
        let server = &server;
        async move {
            let mut req = server.http().post(server.url(path)).json(&body);
            if let Some(t) = auth {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let good = json!({ "user_id": 1, "type": "system", "title": "t", "content": "c" });
    assert_eq!(post("/api/notifications", None, good.clone()).await.0, 401);
    let (status, body) = post(
        "/api/notifications",
        Some(token(1, &["user"])),
        good.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert_eq!(
        post(
            "/api/notifications/broadcast",
            Some(token(1, &["manager"])),
            good.clone()
        )
        .await
        .0,
        403
    );
    let (status, body) = post(
        "/api/notifications",
        Some(token(9, &["service"])),
        json!({ "user_id": 1, "type": "spam", "title": "t", "content": "c" }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("type"));
    let (status, body) = post(
        "/api/notifications",
        Some(token(9, &["service"])),
        json!({ "user_id": 1, "type": "system", "title": "", "content": "c" }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("title"));
    let stored: i64 = sqlx::query_scalar("select count(*) from notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(
        post("/api/notifications", Some(token(9, &["service"])), good)
            .await
            .0,
        201
    );
}

#[sqlx::test]
async fn rights_are_checked_before_the_body(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let res = server
        .http()
        .post(server.url("/api/notifications"))
        .bearer_auth(token(1, &["user"]))
        .json(&json!({ "nonsense": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
