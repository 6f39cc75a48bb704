//! Batch mode (contract §6's `batch: true`, §9's batch details): order events as arrays
//! in order, alerts at once, back to single events without `batch`, open windows flushed
//! at shutdown.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// A server with batch windows of `window_ms`, a restaurant, and a tablet of it that
/// joined in batch mode.
async fn batch_tablet(pool: PgPool, window_ms: &str) -> (TestServer, Uuid, SioClient) {
    let server = TestServer::start_with(pool, &[("ORDER_BATCH_MS", window_ms)]).await;
    let r = create_restaurant(&server, "Bistro").await;
    let kds = tablet(&server, "/", r).await;
    let join = json!({ "restaurantId": r, "batch": true });
    succeeds(&kds, "join:restaurant", join).await;
    (server, r, kds)
}

#[sqlx::test]
async fn batch_mode_delivers_arrays_in_order_and_alerts_at_once(pool: PgPool) {
    let (server, r, kds) = batch_tablet(pool, "300").await;
    succeeds(&kds, "join:station", at_station(r, "kitchen")).await;
    let mut created = vec![];
    for _ in 0..3 {
        created.push(create_order(&server, r, None, &["kitchen"]).await);
    }
    let alert = json!({ "type": "urgent", "message": "fire on the grill", "severity": 5 });
    let res = server
        .post(&format!("/api/restaurants/{r}/alerts"), &service(), &alert)
        .await;
    assert_eq!(res.status(), 201);
    // The alert is not delayed: it arrives before the batch window closes.
    assert_eq!(
        kds.recv_timeout("kitchen:alert", Duration::from_millis(250))
            .await,
        Some(alert)
    );
    let mut items = vec![];
    while items.len() < 3 {
        let batch = kds
            .recv_timeout("orders:batch_update", Duration::from_secs(2))
            .await
            .expect("a batch");
        items.extend(batch.as_array().unwrap().clone());
    }
    let expected: Vec<Value> = created
        .iter()
        .map(|o| json!({ "event": "order:created", "data": o }))
        .collect();
    assert_eq!(items, expected, "every event once, in order");
    kds.expect_none("order:created", Duration::from_millis(50))
        .await;

    // Without `batch` the socket is back to single events.
    succeeds(&kds, "join:restaurant", json!({ "restaurantId": r })).await;
    let single = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(kds.recv("order:created").await, single);
    kds.expect_none("orders:batch_update", Duration::from_millis(700))
        .await;
}

/// Shutdown delivers what batch windows hold before the sockets are closed: a tablet
/// in batch mode with a long window still gets the order created just before.
#[sqlx::test]
async fn shutdown_flushes_open_batch_windows(pool: PgPool) {
    let (server, r, kds) = batch_tablet(pool, "60000").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    kds.expect_none("orders:batch_update", Duration::from_millis(200))
        .await;
    server.stop().await.unwrap();
    let batch = kds
        .recv_timeout("orders:batch_update", Duration::from_secs(2))
        .await
        .expect("the open window, delivered at shutdown");
    assert_eq!(batch, json!([{ "event": "order:created", "data": order }]));
}
