//! `/ws` across the nodes of a cluster (contract §7: "on every node of a cluster", §10):
//! what another node caused reaches plain connections once, on both adapters, and a
//! stalled bus costs counted casts, never local delivery.

use std::time::{Duration, Instant};

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Two nodes on `pool`'s database and `adapter`, a cluster of their own.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    (a, b)
}

/// Everything a plain connection gets reaches it whichever node caused it, once, on
/// both adapters: a publication, a notification (envelope and bare), an order's status
/// change, a chat message sent over socket.io, a broadcast, and a grant revoked.
#[sqlx::test]
async fn plain_connections_get_what_another_node_caused_once(pool: PgPool) {
    for adapter in ["postgres", "redis"] {
        let (a, b) = two_nodes(&pool, adapter).await;
        let user = 71;
        // On B: an envelope and a bare connection of the user, a service connection.
        let mut env = Ws::authed(&b, &token(user, &["user"])).await;
        let mut bare = Bare::connect(&b, &token(user, &["user"])).await;
        let mut svc = Ws::authed(&b, &service()).await;
        // On A: the user's own envelope connection, which must not get doubles.
        let mut here = Ws::authed(&a, &token(user, &["user"])).await;
        let news = format!("public:news-{}", Uuid::new_v4().simple());
        env.join(&news).await;
        here.join(&news).await;

        publish(&a, &news, "flash", json!({ "n": 1 })).await;
        for ws in [&mut env, &mut here] {
            let got = ws.expect("flash").await;
            assert_eq!(got["payload"], json!({ "n": 1 }), "{adapter}");
            ws.quiet(QUIET).await;
        }

        let res = a
            .post(
                "/api/notifications",
                &service(),
                &json!({ "user_id": user, "type": "system", "title": "Hi", "content": "there" }),
            )
            .await;
        assert_eq!(res.status(), 201);
        assert_eq!(env.expect("notification").await["payload"]["title"], "Hi");
        let n = bare.recv().await;
        assert_eq!(
            (n["event"].as_str(), n["title"].as_str()),
            (Some("created"), Some("Hi"))
        );
        assert_eq!(here.expect("notification").await["payload"]["title"], "Hi");
        env.quiet(QUIET).await;
        bare.quiet(Duration::ZERO).await;
        here.quiet(Duration::ZERO).await;

        let r = create_restaurant(&a, "Bistro").await;
        let order = create_order(&a, r, None).await;
        svc.join(&format!("order:{order}")).await;
        let res = a
            .patch(
                &format!("/api/orders/{order}"),
                &service(),
                &json!({ "status": "ready" }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let update = svc.expect("order_update").await;
        assert_eq!(update["payload"]["status"], "ready", "{adapter}");
        svc.quiet(QUIET).await;

        let conversation = create_conversation(&a, 72, "group", &[user]).await;
        let sender = a.client("/chat", 72).await;
        sender.send_message(&conversation, "across").await;
        assert_eq!(
            env.expect("chat_message").await["payload"]["message"]["content"],
            "across"
        );
        assert_eq!(bare.recv().await["content"], "across");
        assert_eq!(
            here.expect("chat_message").await["payload"]["message"]["content"],
            "across"
        );
        env.quiet(QUIET).await;
        bare.quiet(Duration::ZERO).await;
        here.quiet(Duration::ZERO).await;

        broadcast(&a, &service(), "All", "hands").await;
        for ws in [&mut env, &mut svc, &mut here] {
            assert_eq!(ws.expect("notification").await["payload"]["title"], "All");
            ws.quiet(QUIET).await;
        }
        assert_eq!(bare.recv().await["title"], "All");
        bare.quiet(Duration::ZERO).await;

        let tenant = format!("tenant:t-{}", Uuid::new_v4().simple());
        assert_eq!(grant(&a, reqwest::Method::POST, &tenant, user).await, 201);
        env.join(&tenant).await;
        assert_eq!(grant(&a, reqwest::Method::DELETE, &tenant, user).await, 204);
        let gone = env.expect("unsubscribed").await;
        assert_eq!(gone["payload"]["channel"], tenant.as_str(), "{adapter}");
        publish(&a, &tenant, "after", json!({})).await;
        env.quiet(QUIET).await;

        assert_eq!(
            metric(&a, "switchboard_ws_cluster_casts_dropped_total").await,
            0.0
        );
    }
}

/// While the bus cannot take casts (Redis frozen), a node still delivers to its own
/// connections and answers its callers; the casts past the queue are dropped and
/// counted, and once Redis answers again other nodes get new deliveries.
#[sqlx::test]
async fn a_stalled_bus_drops_counted_casts_and_local_delivery_goes_on(pool: PgPool) {
    let port = crate::support::child::free_port();
    let redis = OwnRedis::start_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = format!("sbtest-{}", Uuid::new_v4().simple());
    let vars = [
        ("ADAPTER", "redis"),
        ("REDIS_URL", url.as_str()),
        ("ADAPTER_PREFIX", prefix.as_str()),
        ("REST_RATE_LIMIT_PER_SEC", "100000"),
        ("REST_RATE_LIMIT_BURST", "100000"),
    ];
    let a = TestServer::start_with(pool.clone(), &vars).await;
    let b = TestServer::start_with(pool.clone(), &vars).await;
    a.serving().await;
    b.serving().await;
    let news = format!("public:news-{}", Uuid::new_v4().simple());
    let mut here = Ws::connect(&a, "").await;
    let mut there = Ws::connect(&b, "").await;
    here.join(&news).await;
    there.join(&news).await;
    publish(&a, &news, "flash", json!({ "n": 0 })).await;
    here.expect("flash").await;
    there.expect("flash").await;

    redis.pause();
    let dropped = "switchboard_ws_cluster_casts_dropped_total";
    assert_eq!(metric_at(&a.base, dropped).await, 0.0);
    let sent = CAST_QUEUE + 200;
    // Each call is answered although the bus takes nothing.
    let publishing = async {
        for n in 1..=sent {
            publish(&a, &news, "flash", json!({ "n": n })).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), publishing)
        .await
        .expect("publish calls answered while Redis is frozen");
    for n in 1..=sent {
        assert_eq!(here.expect("flash").await["payload"]["n"], n);
    }
    let lost = metric_at(&a.base, dropped).await;
    assert!(lost >= 100.0, "{lost} casts dropped of {sent}");

    redis.resume();
    // Whatever was in flight drains first; then a new publication crosses again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 10_000;
    'crossing: loop {
        assert!(
            Instant::now() < deadline,
            "no delivery on B after Redis came back"
        );
        n += 1;
        publish(&a, &news, "flash", json!({ "n": n })).await;
        let until = Instant::now() + Duration::from_millis(500);
        while let Ok(got) = tokio::time::timeout_at(until.into(), there.recv()).await {
            if got["payload"]["n"] == n {
                break 'crossing;
            }
        }
    }
}

/// The cast queue's length (`CAST_QUEUE` in `src/ws/cluster.rs`).
const CAST_QUEUE: u64 = 1024;
