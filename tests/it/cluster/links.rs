//! The adapters' links going away and coming back (contract §10's `ADAPTER` and
//! `/readyz`): a Redis restart, a cut LISTEN connection and a database refusing
//! connections pause broadcasts and readiness, then both resume; a stalled subscriber of
//! either link does not stall the others.

use std::time::Duration;

use super::*;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

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
