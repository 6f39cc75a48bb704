//! The cluster bus between nodes (contract §10; the bus carries what the adapter does
//! not: order events for batch queues, end-session requests, `/ws` publishes): it rides
//! the adapter's link, a stalled reader drops and counts only its own topic, and a large
//! message arrives whole and in order.

use std::time::Duration;

use super::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

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

for_each_adapter!(
    the_cluster_bus_rides_the_adapters_link,
    a_stalled_bus_reader_drops_and_counts_while_other_topics_flow,
    a_large_bus_message_arrives_whole_and_in_order,
);
