//! Gateway snapshots across the nodes of a cluster (contract §7.4's change events,
//! §10): a change made on either node reaches the connections of both, once, on both
//! adapters.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// A change made on either node reaches the gateway connections of both, once.
async fn snapshots_across_two_nodes(pool: &PgPool, adapter: &str) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    let r = restaurant(&a, "Diner", "main").await;
    let staff = member(40, &["staff"], &[r]);
    let outsider = member(41, &["staff"], &[Uuid::new_v4()]);
    let mut on_a = Gw::connect(&a, "tables", "hall", &staff).await;
    let mut on_b = Gw::connect(&b, "tables", "hall", &staff).await;
    let mut all_on_b = Gw::connect(&b, "tables", "all", &admin()).await;
    let mut outsider_on_b = Gw::connect(&b, "tables", "hall", &outsider).await;
    for (n, node) in [&a, &b].into_iter().enumerate() {
        let created = table(node, r, &format!("t{n}"), "T", "hall").await;
        for gw in [&mut on_a, &mut on_b, &mut all_on_b] {
            assert_eq!(
                gw.snapshot().await,
                ("created".to_owned(), created.clone()),
                "{adapter}"
            );
            gw.quiet(QUIET).await;
        }
        outsider_on_b.quiet(Duration::ZERO).await;
    }
    // And table:complete on node a, heard on node b.
    let pos = a.client_with(&format!("/restaurants/{r}"), &staff).await;
    b.expect(
        200,
        "PATCH",
        &format!("/api/restaurants/{r}/tables/t0"),
        &service(),
        Some(json!({ "status": "occupied" })),
    )
    .await;
    on_b.snapshot().await;
    on_a.snapshot().await;
    all_on_b.snapshot().await;
    pos.emit_ack(
        "table:complete",
        json!({ "tableNumber": "t0", "restaurantId": r }),
    )
    .await;
    let (_, freed) = on_b.snapshot().await;
    assert_eq!(freed["status"], "available", "{adapter}");
    outsider_on_b.quiet(QUIET).await;
    for node in [&a, &b] {
        assert_eq!(
            metric(node, "switchboard_ws_cluster_casts_dropped_total ").await,
            0.0
        );
    }
}

#[sqlx::test]
async fn snapshots_reach_gateways_on_another_node_once_postgres(pool: PgPool) {
    snapshots_across_two_nodes(&pool, "postgres").await;
}

#[sqlx::test]
async fn snapshots_reach_gateways_on_another_node_once_redis(pool: PgPool) {
    snapshots_across_two_nodes(&pool, "redis").await;
}
