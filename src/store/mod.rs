//! All SQL. One module per domain; rows are private here and leave as domain values.
//!
//! State changes are single statements or transactions, so concurrent clients cannot
//! both win a race. Every function returns `sqlx::Error` (or an `AppError` where a
//! constraint maps to a client error); callers never see SQL text.

pub(crate) mod channels;
pub(crate) mod chat;
pub(crate) mod chat_send;
pub(crate) mod checkins;
pub(crate) mod cluster_payloads;
pub(crate) mod floor;
pub(crate) mod messages;
pub(crate) mod notifications;
pub(crate) mod orders;

use sqlx::PgPool;

/// The database handle shared by every handler.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    sends: chat_send::SendQueue,
}

impl Store {
    /// Wraps a pool.
    /// Wraps a pool and starts the `message:send` writers (inside a tokio runtime).
    pub fn new(pool: PgPool) -> Self {
        let sends = chat_send::SendQueue::start(pool.clone());
        Store { pool, sends }
    }

    /// The underlying pool (health checks, tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `SELECT 1`: is the database reachable.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Applies `./migrations` (embedded in the binary at build time).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}
