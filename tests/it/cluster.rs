//! Two nodes on one database behave as one server (contract §10), for each cluster
//! adapter: PostgreSQL LISTEN/NOTIFY and Redis. Every event reaches each due socket
//! exactly once, whichever node holds the socket and whichever node caused it.
//!
//! The Redis variants need `REDIS_URL` (scripts/test starts a Redis server).
//!
//! Past 400 lines: every cross-node case runs for both adapters from one body, so the cases
//! stay side by side.

use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Two nodes on one database and the adapter.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    (a, b)
}

/// A one-item order created over REST on `node`.
async fn order_on(node: &TestServer, r: Uuid, number: i64) -> Value {
    let body = json!({ "order_number": number, "type": "takeout", "total": 2,
                       "items": [{ "name": "Tea", "quantity": 1, "station": "bar" }] });
    post_order(node, r, &body).await
}

async fn chat_message_crosses_nodes_once(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let conv = create_conversation(&a, 1, "group", &[2]).await;
    let alice = a.client("/chat", 1).await;
    alice.join(&conv).await;
    let bob = b.client("/chat", 2).await;
    bob.join(&conv).await;
    let bob_on_a = a.client("/chat", 2).await;
    bob_on_a.join(&conv).await;

    let sent = alice.send_message(&conv, "across").await;
    assert_eq!(bob.recv("message:created").await, sent);
    assert_eq!(bob_on_a.recv("message:created").await, sent);
    // unread:count reaches Bob's user room on both nodes.
    recv_until(&bob, "unread:count", |c| c["total"] == 1).await;
    bob.expect_none("message:created", QUIET).await;
    alice
        .expect_none("message:created", Duration::from_millis(50))
        .await;
}

async fn rest_notification_on_a_reaches_b(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let phone = b.client("/notifications", 7).await;
    let chat = b.client("/chat", 7).await;
    let other = b.client("/notifications", 8).await;
    phone.recv("notification:count").await;
    let res = a
        .post(
            "/api/notifications",
            &service(),
            &json!({ "user_id": 7, "type": "system", "title": "hi", "content": "from A" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(phone.recv("notification:created").await, created);
    assert_eq!(chat.recv("notification:created").await, created);
    assert_eq!(
        phone.recv("notification:count").await,
        json!({ "count": 1 })
    );
    phone.expect_none("notification:created", QUIET).await;
    other
        .expect_none("notification:created", Duration::from_millis(50))
        .await;

    // A broadcast from A: every user connected on either node gets its count.
    let on_a = a.client("/notifications", 9).await;
    on_a.recv("notification:count").await;
    broadcast(&a, &service(), "all", "everyone").await;
    for (c, expected) in [(&phone, 2), (&other, 1), (&on_a, 1)] {
        c.recv("notification:created").await;
        recv_until(c, "notification:count", |v| v["count"] == expected).await;
    }
}

async fn order_event_reaches_tablets_on_the_other_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Cluster Bistro").await;
    let staff = staff_at(3, r);
    // On B only: a tablet on the dynamic namespace (which A has never seen a client on)
    // and a station tablet on the default namespace.
    let dynamic = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    let kitchen = b.client_with("/", &staff).await;
    let ack = kitchen
        .emit_ack(
            "join:station",
            json!({ "restaurantId": r, "station": "kitchen" }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let res = a
        .post(
            &format!("/api/restaurants/{r}/orders"),
            &service(),
            &json!({ "order_number": 1, "type": "dine_in", "table_number": 2, "total": 9.5,
                        "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }] }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    assert_eq!(dynamic.recv("order:created").await, order);
    assert_eq!(kitchen.recv("order:created").await, order);
    dynamic.expect_none("order:created", QUIET).await;
    kitchen
        .expect_none("order:created", Duration::from_millis(50))
        .await;
}

async fn forced_leave_is_in_effect_everywhere_before_the_ack(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let conv = create_conversation(&a, 1, "group", &[2, 3]).await;
    let owner = a.client("/chat", 1).await;
    owner.join(&conv).await;
    let removed = b.client("/chat", 2).await;
    removed.join(&conv).await;
    let carol = b.client("/chat", 3).await;
    carol.join(&conv).await;
    for round in 0..5 {
        if round > 0 {
            owner
                .ok(
                    "members:add",
                    json!({ "conversationId": conv, "userId": 2 }),
                )
                .await;
            removed.join(&conv).await;
        }
        owner
            .ok(
                "members:remove",
                json!({ "conversationId": conv, "userId": 2 }),
            )
            .await;
        // Sent the moment the ack arrives, from the other node's client too.
        let content = format!("after removal {round}");
        carol.send_message(&conv, &content).await;
        assert_eq!(
            owner.recv("message:created").await["content"],
            json!(content)
        );
        removed
            .expect_none("message:created", Duration::from_millis(200))
            .await;
    }
}

async fn an_operator_disconnect_ends_the_users_sockets_on_every_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Ban Bistro").await;
    let user = staff_at(7, r);
    // On B, among them a dynamic namespace that A has never mounted; one on A as well.
    let mut targets = Vec::new();
    for ns in [
        "/chat".to_owned(),
        "/".to_owned(),
        format!("/restaurants/{r}"),
    ] {
        targets.push((format!("b{ns}"), b.client_with(&ns, &user).await));
    }
    targets.push((
        "a/notifications".into(),
        a.client_with("/notifications", &user).await,
    ));
    let bystander = b.client_with("/chat", &token(8, &["user"])).await;
    let admin = token(1, &["admin"]);
    let body = a
        .expect(200, "POST", "/api/users/7/disconnect", &admin, None)
        .await;
    assert_eq!(body, json!({ "userId": 7, "disconnected": true }));
    for (at, c) in &targets {
        assert!(
            c.wait_disconnected(Duration::from_secs(5)).await,
            "{at} still connected"
        );
    }
    assert!(!bystander.is_disconnected());
}

macro_rules! for_each_adapter {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[sqlx::test]
                async fn $name(pool: PgPool) {
                    super::$name(pool, "postgres").await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[sqlx::test]
                async fn $name(pool: PgPool) {
                    super::$name(pool, "redis").await;
                }
            )*
        }
    };
}

async fn batch_sockets_get_events_caused_on_the_other_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Batch Bistro").await;
    let staff = staff_at(3, r);
    // A batch-mode board on B (default namespace) and one on B's `/restaurants/<id>`.
    let board = b.client_with("/", &staff).await;
    let ack = board
        .emit_ack(
            "join:restaurant",
            json!({ "restaurantId": r, "batch": true }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let dynamic = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    let ack = dynamic
        .emit_ack(
            "join:restaurant",
            json!({ "restaurantId": r, "batch": true }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    // Two orders caused on A: a small one and one far above NOTIFY's 8000 bytes.
    let note = "n".repeat(400);
    let big_items: Vec<Value> = (0..40)
        .map(|i| json!({ "name": format!("Dish {i}"), "quantity": 1, "station": "kitchen", "notes": note }))
        .collect();
    let mut created = Vec::new();
    for (number, items) in [
        (
            1,
            json!([{ "name": "Soup", "quantity": 1, "station": "kitchen" }]),
        ),
        (2, Value::Array(big_items)),
    ] {
        let res = a
            .post(
                &format!("/api/restaurants/{r}/orders"),
                &service(),
                &json!({ "order_number": number, "type": "takeout", "total": 9.5, "items": items }),
            )
            .await;
        assert_eq!(res.status(), 201);
        created.push(res.json::<Value>().await.unwrap());
    }
    assert!(serde_json::to_string(&created[1]).unwrap().len() > 8000);
    let expected: Vec<Value> = created
        .iter()
        .map(|o| json!({ "event": "order:created", "data": o }))
        .collect();
    for tablet in [&board, &dynamic] {
        let mut items: Vec<Value> = Vec::new();
        while items.len() < expected.len() {
            let batch = tablet
                .recv_timeout("orders:batch_update", Duration::from_secs(3))
                .await
                .expect("a batch with the events caused on the other node");
            items.extend(batch.as_array().unwrap().clone());
        }
        assert_eq!(items, expected, "in order, each once");
        tablet.expect_none("order:created", QUIET).await;
        tablet
            .expect_none("orders:batch_update", Duration::from_millis(50))
            .await;
    }
}

async fn first_events_of_a_restaurant_racing_each_arrive_once(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Rush Bistro").await;
    let staff = staff_at(3, r);
    let tablet = b.client_with(&format!("/restaurants/{r}"), &staff).await;
    // A has never routed an event of this restaurant: eight arrive at once.
    let creates = (1..=8).map(|n| {
        let a = &a;
        let order = json!({ "order_number": n, "type": "takeout", "total": 1,
                            "items": [{ "name": "Tea", "quantity": 1, "station": "bar" }] });
        async move { post_order(a, r, &order).await["id"].clone() }
    });
    let mut ids = futures_util::future::join_all(creates).await;
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(tablet.recv("order:created").await["id"].clone());
    }
    tablet.expect_none("order:created", QUIET).await;
    let key = |v: &Value| v.to_string();
    ids.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, ids);
}

async fn switching_restaurant_leaves_the_old_one_for_events_from_any_node(
    pool: PgPool,
    adapter: &str,
) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let first = create_restaurant(&a, "First").await;
    let second = create_restaurant(&a, "Second").await;
    let staff = sign(
        json!({ "sub": 3, "roles": ["staff"], "restaurants": [first, second], "exp": now_secs() + 600 }),
    );
    let board = b.client_with("/", &staff).await;
    for r in [first, second] {
        let ack = board
            .emit_ack("join:restaurant", json!({ "restaurantId": r }))
            .await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    // Right after the ack of the switch, events of the old restaurant caused on A stay
    // away; the new one's arrive.
    order_on(&a, first, 1).await;
    let new = order_on(&a, second, 2).await;
    assert_eq!(board.recv("order:created").await, new);
    board.expect_none("order:created", QUIET).await;
}

for_each_adapter!(
    switching_restaurant_leaves_the_old_one_for_events_from_any_node,
    first_events_of_a_restaurant_racing_each_arrive_once,
    batch_sockets_get_events_caused_on_the_other_node,
    chat_message_crosses_nodes_once,
    rest_notification_on_a_reaches_b,
    order_event_reaches_tablets_on_the_other_node,
    forced_leave_is_in_effect_everywhere_before_the_ack,
    an_operator_disconnect_ends_the_users_sockets_on_every_node,
    refused_connects_leave_no_namespace_or_channel_behind,
    a_socket_following_another_restaurant_gets_its_events_from_every_node,
);

/// Redis channels of the cluster with `prefix` (every node's subscriptions).
async fn redis_channels(prefix: &str) -> usize {
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let channels: Vec<String> = ::redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    channels.len()
}

async fn refused_connects_leave_no_namespace_or_channel_behind(pool: PgPool, adapter: &str) {
    let (a, _b, prefix) = TestServer::two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Guarded Grill").await;
    let link = if adapter == "redis" {
        r#"switchboard_cluster_link_channels{link="redis"}"#
    } else {
        r#"switchboard_cluster_link_channels{link="postgres_listen"}"#
    };
    let mounted = metric(&a, NAMESPACES).await;
    let channels = metric(&a, link).await;
    assert!(channels > 0.0, "the static namespaces are subscribed");
    let in_redis = if adapter == "redis" {
        redis_channels(&prefix).await
    } else {
        0
    };
    let mine = staff_at(3, r);
    let admin = token(1, &["admin"]);
    let refuse = |ns: String, token: Option<String>| {
        let a = &a;
        async move { refusal(a, &ns, token.as_deref()).await }
    };
    for _ in 0..10 {
        let stranger = format!("/restaurants/{}", Uuid::new_v4());
        let racing: Vec<_> = (0..8)
            .map(|_| refuse(stranger.clone(), Some(mine.clone())))
            .collect();
        futures_util::future::join_all(racing).await;
        refuse(stranger.clone(), None).await;
        refuse(stranger.clone(), Some(mine.clone())).await;
        refuse(stranger, Some(admin.clone())).await;
        let upper = r.to_string().to_uppercase();
        refuse(format!("/restaurants/{upper}"), Some(mine.clone())).await;
    }
    let within = Duration::from_secs(10);
    wait_metric(&a, NAMESPACES, mounted, within).await;
    wait_metric(&a, link, channels, within).await;
    wait_metric(&a, DYNAMIC_ROUTES, 0.0, within).await;
    if adapter == "redis" {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let now = redis_channels(&prefix).await;
            if now == in_redis {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{now} Redis channels, {in_redis} before"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn a_socket_following_another_restaurant_gets_its_events_from_every_node(
    pool: PgPool,
    adapter: &str,
) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let home = create_restaurant(&a, "Home").await;
    let away = create_restaurant(&a, "Away").await;
    let staff = sign(
        json!({ "sub": 3, "roles": ["staff"], "restaurants": [home, away], "exp": now_secs() + 600 }),
    );
    // On A, on the home restaurant's namespace, following the other restaurant.
    let tablet = a.client_with(&format!("/restaurants/{home}"), &staff).await;
    let ack = tablet
        .emit_ack("join:restaurant", json!({ "restaurantId": away }))
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    // Caused on the other node, then on its own node: each arrives once.
    for (node, number) in [(&b, 1), (&a, 2)] {
        let order = order_on(node, away, number).await;
        assert_eq!(tablet.recv("order:created").await, order);
        tablet.expect_none("order:created", QUIET).await;
    }
    let alert = json!({ "type": "urgent", "message": "out of tea", "severity": 3 });
    let res = b
        .post(
            &format!("/api/restaurants/{away}/alerts"),
            &service(),
            &alert,
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(tablet.recv("kitchen:alert").await["message"], "out of tea");
    tablet.expect_none("kitchen:alert", QUIET).await;
    // Joining moved the tablet off its home restaurant's rooms.
    order_on(&b, home, 3).await;
    tablet.expect_none("order:created", QUIET).await;
}

async fn ready(s: &TestServer) -> (u16, Value) {
    let res = reqwest::get(s.url("/readyz")).await.unwrap();
    (res.status().as_u16(), res.json::<Value>().await.unwrap())
}

async fn wait_ready(s: &TestServer, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while ready(s).await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `/readyz` to say 503 (it reads a probe run every second), returning its body.
async fn wait_unready(s: &TestServer, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, body) = ready(s).await;
        if status == 503 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still ready after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends from `from` until `to` receives one of the messages (a broadcast sent while
/// the link is still coming back may be lost; the next ones must arrive).
async fn deliver_within(from: &SioClient, to: &SioClient, conv: &str, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let content = format!("after the outage {attempt}");
        from.send_message(&conv, &content).await;
        if let Some(m) = to
            .recv_timeout("message:created", Duration::from_millis(300))
            .await
        {
            assert!(
                m["content"]
                    .as_str()
                    .unwrap()
                    .starts_with("after the outage")
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cross-node delivery within {within:?} after the link came back"
        );
    }
}

/// Alice on A and Bob on B in one conversation, one message delivered across.
async fn alice_and_bob(a: &TestServer, b: &TestServer) -> (String, SioClient, SioClient) {
    let conv = create_conversation(a, 1, "group", &[2]).await;
    let alice = a.client("/chat", 1).await;
    let bob = b.client("/chat", 2).await;
    bob.join(&conv).await;
    alice.send_message(&conv, "before").await;
    assert_eq!(bob.recv("message:created").await["content"], "before");
    (conv, alice, bob)
}

#[sqlx::test]
async fn redis_restart_pauses_then_resumes_broadcasts(pool: PgPool) {
    let port = crate::support::child::free_port();
    let redis = OwnRedis::start_on(port);
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let prefix = format!("sbtest-{}", Uuid::new_v4().simple());
    let vars = [
        ("ADAPTER", "redis"),
        ("REDIS_URL", url.as_str()),
        ("ADAPTER_PREFIX", prefix.as_str()),
    ];
    let a = TestServer::start_with(pool.clone(), &vars).await;
    let b = TestServer::start_with(pool.clone(), &vars).await;
    let (status, body) = ready(&a).await;
    assert_eq!((status, body["adapter"].as_str()), (200, Some("ok")));
    let (conv, alice, bob) = alice_and_bob(&a, &b).await;
    let up = r#"switchboard_cluster_link_up{link="redis"}"#;
    assert_eq!(metric(&a, up).await, 1.0);

    let port = redis.stop();
    let body = wait_unready(&a, Duration::from_secs(6)).await;
    assert_eq!(body["adapter"], "unreachable");
    assert_eq!(body["database"], "ok");
    assert_eq!(metric(&a, up).await, 0.0);
    assert_eq!(
        metric(&a, r#"switchboard_cluster_link_losses_total{link="redis"}"#).await,
        1.0
    );

    // Longer than the connection manager's own retries: the watchdog must bring it back.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _redis = OwnRedis::start_on(port);
    wait_ready(&a, Duration::from_secs(20)).await;
    wait_ready(&b, Duration::from_secs(20)).await;
    deliver_within(&alice, &bob, &conv, Duration::from_secs(10)).await;
    // And the other way, to a socket on A.
    let carol_on_a = a.client("/chat", 2).await;
    carol_on_a.join(&conv).await;
    let alice_on_b = b.client("/chat", 1).await;
    deliver_within(&alice_on_b, &carol_on_a, &conv, Duration::from_secs(10)).await;
    for node in [&a, &b] {
        assert_eq!(metric(node, up).await, 1.0);
        assert_eq!(
            metric(
                node,
                r#"switchboard_cluster_link_restores_total{link="redis"}"#
            )
            .await,
            1.0
        );
    }
}

/// An admin connection to the test's database server (not counted in any node's pool).
async fn admin_and_db(pool: &PgPool) -> (PgPool, String) {
    let db: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let admin = PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    (admin, db)
}

/// Terminates every LISTEN connection to `db` (every node's cluster link).
async fn cut_listen_connections(admin: &PgPool, db: &str) -> usize {
    let cut: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query ilike 'listen%'",
    )
    .bind(db)
    .fetch_all(admin)
    .await
    .unwrap();
    cut.len()
}

const PG_UP: &str = r#"switchboard_cluster_link_up{link="postgres_listen"}"#;
const PG_RESTORES: &str = r#"switchboard_cluster_link_restores_total{link="postgres_listen"}"#;

#[sqlx::test]
async fn postgres_broadcasts_resume_after_the_listen_connection_drops(pool: PgPool) {
    let (a, b) = two_nodes(&pool, "postgres").await;
    let (conv, alice, bob) = alice_and_bob(&a, &b).await;
    let (admin, db) = admin_and_db(&pool).await;
    assert_eq!(
        cut_listen_connections(&admin, &db).await,
        2,
        "one LISTEN connection per node"
    );
    deliver_within(&alice, &bob, &conv, Duration::from_secs(10)).await;
    for node in [&a, &b] {
        assert_eq!(metric(node, PG_UP).await, 1.0);
        assert_eq!(metric(node, PG_RESTORES).await, 1.0);
    }
    // A second cut is survived the same way.
    assert_eq!(cut_listen_connections(&admin, &db).await, 2);
    deliver_within(&alice, &bob, &conv, Duration::from_secs(10)).await;
    assert_eq!(metric(&b, PG_RESTORES).await, 2.0);
}

#[sqlx::test]
async fn postgres_link_waits_out_a_database_refusing_connections(pool: PgPool) {
    let (a, b) = two_nodes(&pool, "postgres").await;
    let (conv, alice, bob) = alice_and_bob(&a, &b).await;
    let (admin, db) = admin_and_db(&pool).await;
    // As while the database restarts: every connection dropped, new ones refused.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"alter database "{db}" allow_connections false"#
    )))
    .execute(&admin)
    .await
    .unwrap();
    // The pool's connections first, each waited for until it has ended: a LISTEN
    // connection cut while one of them is still alive can reconnect on it, come back
    // and be lost a second time (two restores where the test counts one).
    for cut in [
        "query !~* '^(un)?listen'",
        "true", // the LISTEN connections, and whatever connected meanwhile
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = $1 and {cut}"
        )))
        .bind(&db)
        .execute(&admin)
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let body = wait_unready(&b, Duration::from_secs(6)).await;
    assert_eq!(body["adapter"], "unreachable", "{body}");
    assert_eq!(metric(&b, PG_UP).await, 0.0);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"alter database "{db}" allow_connections true"#
    )))
    .execute(&admin)
    .await
    .unwrap();
    wait_ready(&a, Duration::from_secs(10)).await;
    wait_ready(&b, Duration::from_secs(10)).await;
    deliver_within(&alice, &bob, &conv, Duration::from_secs(10)).await;
    // Restored, once or (when a reconnect attempt races the refusal) more often.
    assert!(metric(&b, PG_RESTORES).await >= 1.0);
}

#[sqlx::test]
async fn postgres_adapter_holds_one_connection_however_many_namespaces(pool: PgPool) {
    // Each node's pool has 10 connections; 4 static namespaces plus 12 restaurants'
    // `/restaurants/<id>` would take 16 if each namespace held a LISTEN connection.
    let (a, b) = two_nodes(&pool, "postgres").await;
    let mut tablets = Vec::new();
    let mut restaurants = Vec::new();
    for i in 0..12 {
        let r = create_restaurant(&a, &format!("Bistro {i}")).await;
        let staff = staff_at(3, r);
        tablets.push(a.client_with(&format!("/restaurants/{r}"), &staff).await);
        restaurants.push(r);
    }
    let (admin, db) = admin_and_db(&pool).await;
    let listening: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and query ilike 'listen%'",
    )
    .bind(&db)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(listening, 2, "one LISTEN connection per node");
    // Every restaurant's events still flow, caused on B, to tablets on A.
    for (r, tablet) in restaurants.iter().zip(&tablets) {
        let order = order_on(&b, *r, 7).await;
        assert_eq!(tablet.recv("order:created").await, order);
    }
}

/// The node's LISTEN loop serves every channel: a subscriber that stops reading gets
/// its overflow dropped (and counted), and the other channels keep flowing.
#[sqlx::test]
async fn a_stalled_listen_subscriber_does_not_stall_the_others(pool: PgPool) {
    use switchboard::metrics::Metrics;
    use switchboard::realtime::cluster::LinkHealth;
    use switchboard::realtime::pg_link::PgLink;

    let metrics = Metrics::default();
    let link = PgLink::start(pool.clone(), LinkHealth::new(&metrics, "postgres_listen"))
        .await
        .unwrap();
    let _stalled = link.subscribe(&["sbtest_stalled"]).await.unwrap();
    let mut live = link.subscribe(&["sbtest_live"]).await.unwrap();
    // More than a subscriber's queue holds (1024), in one statement.
    sqlx::query("select pg_notify('sbtest_stalled', n::text) from generate_series(1, 1500) n")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("select pg_notify('sbtest_live', 'hello')")
        .execute(&pool)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), live.recv())
        .await
        .expect("the live channel is not stalled")
        .unwrap();
    assert_eq!(got.payload(), "hello");
    let text = metrics.render();
    let dropped: f64 = text
        .lines()
        .find(|l| l.starts_with("switchboard_cluster_link_dropped_total{link=\"postgres_listen\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(dropped >= 476.0, "dropped {dropped}\n{text}");
}

/// The same for the Redis link: a subscriber that stops reading does not hold up the
/// push stream that every other channel shares.
#[sqlx::test]
async fn a_stalled_redis_subscriber_does_not_stall_the_others(_pool: PgPool) {
    use socketioxide_redis::drivers::Driver;
    use switchboard::metrics::Metrics;
    use switchboard::realtime::cluster::LinkHealth;
    use switchboard::realtime::redis_link::RedisLink;

    let metrics = Metrics::default();
    let url = format!("{}?protocol=resp3", redis_url());
    let client = ::redis::Client::open(url).unwrap();
    let link = RedisLink::connect(client, LinkHealth::new(&metrics, "redis"))
        .await
        .unwrap();
    let tag = Uuid::new_v4().simple().to_string();
    let stalled = format!("sbtest-stalled-{tag}");
    let live = format!("sbtest-live-{tag}");
    let _stalled = link.subscribe(stalled.clone(), 16).await.unwrap();
    let mut live_rx = link.subscribe(live.clone(), 16).await.unwrap();
    for n in 0..200u32 {
        link.publish(stalled.clone(), n.to_string().into_bytes())
            .await
            .unwrap();
    }
    link.publish(live.clone(), b"hello".to_vec()).await.unwrap();
    let (channel, payload) = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut live_rx),
    )
    .await
    .expect("the live channel is not stalled")
    .unwrap();
    assert_eq!(
        (channel.as_str(), payload.as_ref()),
        (live.as_str(), &b"hello"[..])
    );
    assert!(
        metrics
            .render()
            .contains("cluster_link_dropped_total{link=\"redis\"} 184"),
        "{}",
        metrics.render()
    );
}

/// A cluster node started as `serve` starts one, keeping a handle on the app so a test
/// can read and write its cluster bus the way the `/ws` route will (no route publishes
/// on [`Topic::Publish`] yet).
///
/// [`Topic::Publish`]: switchboard::realtime::cluster_bus::Topic::Publish
struct BusNode {
    base: String,
    app: std::sync::Arc<dyn switchboard::Running>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl BusNode {
    async fn start(test_pool: &PgPool, vars: &[(&str, &str)]) -> Self {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with((*test_pool.connect_options()).clone())
            .await
            .unwrap();
        let config = crate::support::config(vars);
        let limits = config.clone();
        let (router, app) = switchboard::build_app(config, pool).await.unwrap();
        let limits =
            switchboard::listener::Limits::new(&limits, app.metrics(), app.meters().clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(switchboard::listener::run(
            listener, router, limits, stopped,
        ));
        BusNode {
            base,
            app,
            task,
            _stop: stop,
        }
    }

    fn bus(&self) -> &switchboard::realtime::cluster_bus::ClusterBus {
        self.app.cluster_bus().expect("a cluster node has a bus")
    }

    async fn client_with(&self, ns: &str, token: &str) -> SioClient {
        let opts = ConnectOptions {
            auth: Some(json!({ "token": token })),
            ..Default::default()
        };
        SioClient::connect(&self.base, ns, opts).await.unwrap()
    }

    async fn metric(&self, sample: &str) -> f64 {
        metric_at(&self.base, sample).await
    }

    /// Polls `/metrics` until `sample` reads `expected`.
    async fn wait_metric(&self, sample: &str, expected: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.metric(sample).await;
            if value == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sample} is {value}, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /api/users/:userId/disconnect` on this node, as an operator.
    async fn disconnect_user(&self, user: i64) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/users/{user}/disconnect", self.base))
            .bearer_auth(token(1, &["admin"]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body, json!({ "userId": user, "disconnected": true }));
    }

    /// A one-item order created over REST on this node.
    async fn order(&self, r: Uuid, number: i64) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/api/restaurants/{r}/orders", self.base))
            .bearer_auth(service())
            .json(
                &json!({ "order_number": number, "type": "takeout", "total": 2,
                           "items": [{ "name": "Tea", "quantity": 1, "station": "bar" }] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// Creates a restaurant over REST on this node.
    async fn restaurant(&self, name: &str) -> Uuid {
        let res = reqwest::Client::new()
            .post(format!("{}/api/restaurants", self.base))
            .bearer_auth(service())
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let r: Value = res.json().await.unwrap();
        Uuid::parse_str(r["id"].as_str().unwrap()).unwrap()
    }

    /// A staff tablet of `r` on this node's default namespace, in batch mode: its order
    /// events from other nodes come over the cluster bus only (the adapter carries
    /// packets for sockets, not this node's batch queues).
    async fn batch_tablet(&self, r: Uuid) -> SioClient {
        let staff = staff_at(3, r);
        let tablet = self.client_with("/", &staff).await;
        let ack = tablet
            .emit_ack(
                "join:restaurant",
                json!({ "restaurantId": r, "batch": true }),
            )
            .await;
        assert_eq!(ack["success"], true, "{ack}");
        tablet
    }
}

impl Drop for BusNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two [`BusNode`]s of one new cluster on `adapter`, and its prefix.
async fn two_bus_nodes(pool: &PgPool, adapter: &str) -> (BusNode, BusNode, String) {
    let prefix = format!("sbtest-{}", Uuid::new_v4().simple());
    let redis = if adapter == "redis" {
        redis_url()
    } else {
        String::new()
    };
    let mut vars = vec![("ADAPTER", adapter), ("ADAPTER_PREFIX", prefix.as_str())];
    if adapter == "redis" {
        vars.push(("REDIS_URL", redis.as_str()));
    }
    let a = BusNode::start(pool, &vars).await;
    let b = BusNode::start(pool, &vars).await;
    (a, b, prefix)
}

/// Connections to the test's database that ran LISTEN (a node's cluster link).
async fn listen_connections(pool: &PgPool) -> i64 {
    let (admin, db) = admin_and_db(pool).await;
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and query ilike 'listen%'",
    )
    .bind(&db)
    .fetch_one(&admin)
    .await
    .unwrap()
}

/// Subscribers of a Redis channel, all clients counted.
async fn redis_subscribers(channel: &str) -> i64 {
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (_, subscribers): (String, i64) = ::redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    subscribers
}

fn bus_messages(topic: &str, direction: &str) -> String {
    format!(r#"switchboard_cluster_bus_messages_total{{topic="{topic}",direction="{direction}"}}"#)
}

fn bus_dropped(topic: &str) -> String {
    format!(r#"switchboard_cluster_bus_dropped_total{{topic="{topic}"}}"#)
}

async fn no_message(rx: &mut tokio::sync::mpsc::Receiver<Value>, within: Duration) {
    if let Ok(Some(message)) = tokio::time::timeout(within, rx.recv()).await {
        panic!("unexpected bus message {message}");
    }
}

/// Order events, end-session requests and publishes cross between nodes on the link
/// the adapter already holds: Redis pub/sub for `redis` (no LISTEN connection at all),
/// the node's one LISTEN connection for `postgres`.
async fn the_cluster_bus_rides_the_adapters_link(pool: PgPool, adapter: &str) {
    use switchboard::realtime::cluster_bus::Topic;

    let (a, b, prefix) = two_bus_nodes(&pool, adapter).await;
    if adapter == "redis" {
        assert_eq!(
            listen_connections(&pool).await,
            0,
            "a Redis node holds no LISTEN connection on the database"
        );
        for topic in ["orders", "sessions", "publish"] {
            assert_eq!(
                redis_subscribers(&format!("{prefix}-switchboard-bus#{topic}")).await,
                2,
                "each node subscribes {topic} on its adapter's Redis connection"
            );
        }
    } else {
        assert_eq!(
            listen_connections(&pool).await,
            2,
            "one LISTEN connection per node, shared by the adapter and the bus"
        );
    }

    // Orders: an order created on A reaches B's batch tablet.
    let r = a.restaurant("Bus Bistro").await;
    let tablet = b.batch_tablet(r).await;
    let order = a.order(r, 1).await;
    let batch = tablet
        .recv_timeout("orders:batch_update", Duration::from_secs(5))
        .await
        .expect("the order event caused on A reaches B's batch tablet");
    assert_eq!(batch, json!([{ "event": "order:created", "data": order }]));
    tablet
        .expect_none("orders:batch_update", Duration::from_millis(200))
        .await;

    // Sessions: an operator's disconnect on A ends the user's socket on B.
    let user = b.client_with("/chat", &token(7, &["user"])).await;
    let bystander = b.client_with("/chat", &token(8, &["user"])).await;
    a.disconnect_user(7).await;
    assert!(
        user.wait_disconnected(Duration::from_secs(5)).await,
        "user 7's socket on B still connected"
    );
    assert!(!bystander.is_disconnected());

    // Publish: what A publishes reaches B's reader, not A's own.
    let mut on_a = a.bus().subscribe(Topic::Publish);
    let mut on_b = b.bus().subscribe(Topic::Publish);
    let envelope = json!({ "channel": "news", "payload": { "headline": "bus", "n": 1 } });
    a.bus().publish(Topic::Publish, &envelope).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
        .await
        .expect("the message reaches the other node")
        .unwrap();
    assert_eq!(got, envelope);
    no_message(&mut on_a, QUIET).await;
    no_message(&mut on_b, Duration::from_millis(50)).await;

    // One message out of A and into B per topic; a node does not hear itself.
    for topic in ["orders", "sessions", "publish"] {
        b.wait_metric(&bus_messages(topic, "in"), 1.0).await;
        assert_eq!(a.metric(&bus_messages(topic, "out")).await, 1.0, "{topic}");
        assert_eq!(a.metric(&bus_messages(topic, "in")).await, 0.0, "{topic}");
        assert_eq!(b.metric(&bus_messages(topic, "out")).await, 0.0, "{topic}");
        assert_eq!(b.metric(&bus_dropped(topic)).await, 0.0, "{topic}");
    }
    // Still no LISTEN connection on a Redis node once the bus has carried messages.
    if adapter == "redis" {
        assert_eq!(listen_connections(&pool).await, 0);
    }
}

/// A topic's reader that stops reading (here: a publish subscriber that never reads)
/// loses its own topic's overflow, counted, while orders and sessions keep flowing.
async fn a_stalled_bus_reader_drops_and_counts_while_other_topics_flow(
    pool: PgPool,
    adapter: &str,
) {
    use switchboard::realtime::cluster_bus::{READER_QUEUE, Topic};

    let (a, b, _) = two_bus_nodes(&pool, adapter).await;
    let mut stalled = b.bus().subscribe(Topic::Publish);
    let r = a.restaurant("Stall Bistro").await;
    let tablet = b.batch_tablet(r).await;
    let user = b.client_with("/chat", &token(7, &["user"])).await;

    const OVER: usize = 476;
    let sent = READER_QUEUE + OVER;
    for n in 0..sent {
        a.bus()
            .publish(Topic::Publish, &json!({ "channel": "flood", "payload": n }))
            .await
            .unwrap();
    }
    // Caused on A after the flood: B's batch tablet still gets its order event, and
    // B still ends the user's sockets.
    let order = a.order(r, 1).await;
    let batch = tablet
        .recv_timeout("orders:batch_update", Duration::from_secs(5))
        .await
        .expect("the orders topic flows while the publish reader is stalled");
    assert_eq!(batch, json!([{ "event": "order:created", "data": order }]));
    a.disconnect_user(7).await;
    assert!(
        user.wait_disconnected(Duration::from_secs(5)).await,
        "the sessions topic flows while the publish reader is stalled"
    );

    // Every message reached B; what its reader's queue could not hold is counted.
    b.wait_metric(&bus_messages("publish", "in"), sent as f64)
        .await;
    b.wait_metric(&bus_dropped("publish"), OVER as f64).await;
    for topic in ["orders", "sessions"] {
        assert_eq!(b.metric(&bus_messages(topic, "in")).await, 1.0, "{topic}");
        assert_eq!(b.metric(&bus_dropped(topic)).await, 0.0, "{topic}");
    }
    // Dropped by the bus, not lost on the link below it.
    for link in ["redis", "postgres_listen"] {
        let sample = format!(r#"switchboard_cluster_link_dropped_total{{link="{link}"}}"#);
        assert_eq!(b.metric(&sample).await, 0.0, "{link}");
    }

    // The reader kept the oldest messages, in order; once it reads, new ones arrive.
    for n in 0..READER_QUEUE {
        let message = stalled.recv().await.unwrap();
        assert_eq!(message["payload"], n, "queued in the order sent");
    }
    no_message(&mut stalled, Duration::from_millis(100)).await;
    a.bus()
        .publish(
            Topic::Publish,
            &json!({ "channel": "flood", "payload": "after" }),
        )
        .await
        .unwrap();
    let after = tokio::time::timeout(Duration::from_secs(5), stalled.recv())
        .await
        .expect("the reader gets messages again once it reads")
        .unwrap();
    assert_eq!(after["payload"], "after");
    assert_eq!(b.metric(&bus_dropped("publish")).await, OVER as f64);
}

/// Over NOTIFY (under 8000 bytes) a big message goes through `cluster_bus_payloads`;
/// Redis carries it as it is. Either way it arrives whole, and before the next one.
async fn a_large_bus_message_arrives_whole_and_in_order(pool: PgPool, adapter: &str) {
    use switchboard::realtime::cluster_bus::Topic;

    let (a, b, _) = two_bus_nodes(&pool, adapter).await;
    let mut on_b = b.bus().subscribe(Topic::Publish);
    let big = json!({ "channel": "menu", "payload": "m".repeat(20_000) });
    let small = json!({ "channel": "menu", "payload": "after" });
    a.bus().publish(Topic::Publish, &big).await.unwrap();
    a.bus().publish(Topic::Publish, &small).await.unwrap();
    for expected in [&big, &small] {
        let got = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
            .await
            .expect("the message reaches the other node")
            .unwrap();
        assert_eq!(&got, expected);
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from cluster_bus_payloads")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, if adapter == "postgres" { 1 } else { 0 });
}

mod bus {
    use super::*;

    macro_rules! for_each_adapter {
        ($($name:ident),* $(,)?) => {
            mod postgres {
                use super::*;
                $(
                    #[sqlx::test]
                    async fn $name(pool: PgPool) {
                        super::super::$name(pool, "postgres").await;
                    }
                )*
            }
            mod redis {
                use super::*;
                $(
                    #[sqlx::test]
                    async fn $name(pool: PgPool) {
                        super::super::$name(pool, "redis").await;
                    }
                )*
            }
        };
    }

    for_each_adapter!(
        the_cluster_bus_rides_the_adapters_link,
        a_stalled_bus_reader_drops_and_counts_while_other_topics_flow,
        a_large_bus_message_arrives_whole_and_in_order,
    );
}
