//! Cluster bus envelopes too big for NOTIFY's 8000 bytes (`realtime::cluster_bus`): kept
//! in `cluster_bus_payloads` for the other nodes to read, pruned after ten minutes.
//! Free functions over the pool: the bus holds a pool, not the store.

use serde_json::Value;
use sqlx::PgPool;

/// Keeps an envelope (JSON text); returns its id. Prunes rows every node has read long
/// since.
pub(crate) async fn keep(pool: &PgPool, text: &str) -> Result<i64, sqlx::Error> {
    let stored: i64 = sqlx::query_scalar(
        "insert into cluster_bus_payloads (payload) values ($1::text::jsonb) returning id",
    )
    .bind(text)
    .fetch_one(pool)
    .await?;
    sqlx::query(
        "delete from cluster_bus_payloads where created_at < now() - interval '10 minutes'",
    )
    .execute(pool)
    .await?;
    Ok(stored)
}

/// The envelope kept as `id`.
pub(crate) async fn read(pool: &PgPool, id: i64) -> Result<Value, sqlx::Error> {
    let sqlx::types::Json(envelope): sqlx::types::Json<Value> =
        sqlx::query_scalar("select payload from cluster_bus_payloads where id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    Ok(envelope)
}
