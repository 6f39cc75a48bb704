//! `/notifications` and its REST routes end to end.
//!
//! Past 400 lines: one test per `/notifications` contract row; each test reads alone.

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

async fn notify(server: &TestServer, user: i64, title: &str) -> Value {
    let res = server.post("/api/notifications", &token(900, &["service"]), &json!({ "user_id": user, "type": "message", "title": title, "content": "body", "related_id": "conv-1" })).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

/// The titles of a page of notifications, in its order.
fn titles(page: &Value) -> Vec<&str> {
    let page = page.as_array().unwrap();
    page.iter().map(|n| n["title"].as_str().unwrap()).collect()
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
    let stored: i64 = sqlx::query_scalar("select count(*) from notifications where user_id = '1'")
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

    let page = c.ok("notification:list", json!({ "limit": 2 })).await;
    assert_eq!(titles(&page), ["n4", "n3"]);
    let older = c
        .ok("notification:list", json!({ "before": ids[3], "limit": 2 }))
        .await;
    assert_eq!(older[0]["title"], "n2");

    let got = c
        .ok("notification:get", json!({ "notificationId": ids[0] }))
        .await;
    assert_eq!(got["title"], "n0");

    let read = c
        .ok("notification:read", json!({ "notificationId": ids[0] }))
        .await;
    assert_eq!(read["is_read"], true);
    assert_eq!(
        laptop.recv("notification:read").await,
        json!({ "notificationId": ids[0], "is_read": true })
    );
    count_becomes(&laptop, 4).await;
    let unread = c
        .ok("notification:list", json!({ "unreadOnly": true }))
        .await;
    assert_eq!(unread.as_array().unwrap().len(), 4);

    c.ok("notification:delete", json!({ "notificationId": ids[1] }))
        .await;
    assert_eq!(
        laptop.recv("notification:deleted").await,
        json!({ "notificationId": ids[1] })
    );
    count_becomes(&laptop, 3).await;
    c.refused(
        "notification:get",
        json!({ "notificationId": ids[1] }),
        "NOT_FOUND",
    )
    .await;

    let all = c.ok("notification:read_all", json!({})).await;
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
        me.refused(event, json!({ "notificationId": id }), "NOT_FOUND")
            .await;
    }
    assert_eq!(
        me.ok("notification:read_all", json!({})).await,
        json!({ "count": 0 })
    );
    let (is_read, n): (bool, i64) =
        sqlx::query_as("select bool_or(is_read), count(*) from notifications where user_id = '2'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((is_read, n), (false, 1));
    assert_eq!(me.ok("notification:list", json!({})).await, json!([]));
}

#[sqlx::test]
async fn broadcasts_reach_everyone_and_late_joiners_and_are_read_per_user(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let alice = server.client("/notifications", 1).await;
    let bob = server.client("/notifications", 2).await;
    let bob_chat = server.client("/chat", 2).await;
    alice.recv("notification:count").await;
    bob.recv("notification:count").await;
    let b = broadcast(
        &server,
        &token(901, &["admin"]),
        "maintenance tonight",
        "maintenance",
    )
    .await;
    assert_eq!(b["user_id"], Value::Null);
    for c in [&alice, &bob, &bob_chat] {
        assert_eq!(c.recv("notification:created").await, b);
    }
    count_becomes(&alice, 1).await;
    count_becomes(&bob, 1).await;

    // Alice reads and deletes it; Bob still has it unread.
    let read = alice
        .ok("notification:read", json!({ "notificationId": b["_id"] }))
        .await;
    assert_eq!(read["is_read"], true);
    count_becomes(&alice, 0).await;
    alice
        .ok("notification:delete", json!({ "notificationId": b["_id"] }))
        .await;
    assert_eq!(alice.ok("notification:list", json!({})).await, json!([]));
    let bobs = bob
        .ok("notification:list", json!({ "unreadOnly": true }))
        .await;
    assert_eq!(bobs[0]["_id"], b["_id"]);
    assert_eq!(bobs[0]["is_read"], false);

    // Carol connects later and still sees it.
    let carol = server.client("/notifications", 3).await;
    assert_eq!(
        carol.recv("notification:count").await,
        json!({ "count": 1 })
    );
    let list = carol.ok("notification:list", json!({})).await;
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
    let ack = c.ok("notification:ping", json!({ "action": "ping" })).await;
    let pong = c.recv("pong").await;
    assert_eq!(ack, pong);
    let ts = pong["timestamp"].as_i64().unwrap();
    assert!(ts >= before && ts <= chrono::Utc::now().timestamp_millis());
    c.refused(
        "notification:ping",
        json!({ "action": "pong" }),
        "BAD_REQUEST",
    )
    .await;
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
        c.refused("notification:list", payload, "BAD_REQUEST").await;
    }
    c.ok("notification:list", json!({ "limit": 200 })).await;
    c.refused(
        "notification:list",
        json!({ "before": Uuid::new_v4() }),
        "NOT_FOUND",
    )
    .await;
    c.refused("notification:get", json!({}), "BAD_REQUEST")
        .await;
    c.refused("no:such", json!({}), "BAD_REQUEST").await;
}

#[sqlx::test]
async fn only_services_and_admins_create_notifications(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let post = |path: &'static str, auth: Option<String>, body: Value| {
        let request = server.request("POST", path, auth.as_deref()).json(&body);
        async move { status_and_json(request.send().await.unwrap()).await }
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
    for (field, bad) in [
        (
            "type",
            json!({ "user_id": 1, "type": "spam", "title": "t", "content": "c" }),
        ),
        (
            "title",
            json!({ "user_id": 1, "type": "system", "title": "", "content": "c" }),
        ),
    ] {
        let service = Some(token(9, &["service"]));
        let (status, body) = post("/api/notifications", service, bad).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
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
        .post(
            "/api/notifications",
            &token(1, &["user"]),
            &json!({ "nonsense": 1 }),
        )
        .await;
    assert_eq!(res.status(), 403);
}

/// The REST twins of the `/notifications` events (seed 004's mobile app): the same
/// operations on the caller's own notifications, announced to every socket of the user.
#[sqlx::test]
async fn rest_twins_list_get_read_and_delete_like_the_events(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(notify(&server, 1, &format!("n{i}")).await["_id"].clone());
    }
    notify(&server, 2, "someone else's").await;
    let phone = server.client("/notifications", 1).await;
    count_becomes(&phone, 5).await;
    let me = token(1, &["user"]);
    let call = |method: reqwest::Method, path: String| {
        let (server, me) = (&server, &me);
        async move { server.call(method.as_str(), &path, me, None).await }
    };
    use reqwest::Method;

    let (status, page) = call(Method::GET, "/api/notifications?limit=2".into()).await;
    assert_eq!(status, 200);
    assert_eq!(titles(&page), ["n4", "n3"]);
    // The same page as the event answers.
    assert_eq!(
        page,
        phone.ok("notification:list", json!({ "limit": 2 })).await
    );
    let (_, older) = call(
        Method::GET,
        format!(
            "/api/notifications?before={}&limit=2",
            ids[3].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(older[0]["title"], "n2");
    let (status, got) = call(
        Method::GET,
        format!("/api/notifications/{}", ids[0].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["title"], "n0");

    let (status, read) = call(
        Method::POST,
        format!("/api/notifications/{}/read", ids[0].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(read["is_read"], true);
    // Every socket of the user hears it, as from the event.
    assert_eq!(
        phone.recv("notification:read").await,
        json!({ "notificationId": ids[0], "is_read": true })
    );
    count_becomes(&phone, 4).await;
    let (status, count) = call(Method::GET, "/api/notifications/unread/count".into()).await;
    assert_eq!((status, count), (200, json!({ "count": 4 })));
    let (_, unread) = call(Method::GET, "/api/notifications?unread=true".into()).await;
    assert_eq!(unread.as_array().unwrap().len(), 4);

    let (status, body) = call(
        Method::DELETE,
        format!("/api/notifications/{}", ids[1].as_str().unwrap()),
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(
        phone.recv("notification:deleted").await,
        json!({ "notificationId": ids[1] })
    );
    count_becomes(&phone, 3).await;
    let (status, body) = call(
        Method::GET,
        format!("/api/notifications/{}", ids[1].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");

    let (status, all) = call(Method::POST, "/api/notifications/read-all".into()).await;
    assert_eq!((status, all), (200, json!({ "count": 3 })));
    assert_eq!(phone.recv("notification:read_all").await, json!({}));
    count_becomes(&phone, 0).await;
    let unread: i64 = sqlx::query_scalar(
        "select count(*) from notifications where user_id = '1' and not is_read",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unread, 0);
    // Another user's notification stays untouched.
    let theirs: bool = sqlx::query_scalar("select is_read from notifications where user_id = '2'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!theirs);
}

#[sqlx::test]
async fn rest_twins_refuse_what_the_events_refuse(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let theirs = notify(&server, 2, "theirs").await["_id"].clone();
    let theirs = theirs.as_str().unwrap();
    let me = token(1, &["user"]);
    let get = |path: String, tok: Option<String>| {
        let request = server.request("GET", &path, tok.as_deref());
        async move { status_and_json(request.send().await.unwrap()).await }
    };
    for (path, status, code, message) in [
        (
            "/api/notifications?limit=0".to_owned(),
            400,
            "BAD_REQUEST",
            "limit",
        ),
        (
            "/api/notifications?limit=201".to_owned(),
            400,
            "BAD_REQUEST",
            "limit",
        ),
        (
            "/api/notifications?limit=lots".to_owned(),
            400,
            "BAD_REQUEST",
            "limit",
        ),
        (
            "/api/notifications?before=nope".to_owned(),
            400,
            "BAD_REQUEST",
            "before",
        ),
        (
            format!("/api/notifications?before={}", Uuid::new_v4()),
            404,
            "NOT_FOUND",
            "before",
        ),
        (
            "/api/notifications/nope".to_owned(),
            400,
            "BAD_REQUEST",
            "id: not a UUID",
        ),
        (
            format!("/api/notifications/{theirs}"),
            404,
            "NOT_FOUND",
            "not found",
        ),
    ] {
        let (got, body) = get(path.clone(), Some(me.clone())).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }
    let (got, _) = get("/api/notifications".to_owned(), None).await;
    assert_eq!(got, 401);
    // Reading or deleting someone else's is "not found", and changes nothing.
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/api/notifications/{theirs}/read"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/notifications/{theirs}"),
        ),
    ] {
        let res = server.request(method.as_str(), &path, Some(&me)).send();
        assert_eq!(res.await.unwrap().status(), 404, "{path}");
    }
    let (status, still) = get(
        format!("/api/notifications/{theirs}"),
        Some(token(2, &["user"])),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(still["is_read"], false);
}
