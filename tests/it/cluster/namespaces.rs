//! What restaurant namespaces cost a cluster node (contract §10, §6's dynamic namespace):
//! refused connects leave no namespace, link channel or Redis channel behind, and the
//! PostgreSQL adapter holds one LISTEN connection however many namespaces it serves.

use std::time::Duration;

use super::*;
use sqlx::PgPool;
use uuid::Uuid;

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

for_each_adapter!(refused_connects_leave_no_namespace_or_channel_behind);
