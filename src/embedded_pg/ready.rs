//! After `pg_ctl start`: waiting until the server accepts connections, then making sure
//! the application's database exists.

use std::io;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{EmbeddedPgError, READY_TIMEOUT};

/// Connects to `url`, retrying until [`READY_TIMEOUT`] has passed.
pub(super) async fn wait_until_ready(
    url: &str,
    port: u16,
) -> Result<PgConnection, EmbeddedPgError> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await;
        let error = match attempt {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) => e,
            Err(_) => sqlx::Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection attempt timed out",
            )),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(EmbeddedPgError::NotReady {
                port,
                source: error,
            });
        }
        tracing::debug!(error = %error, "embedded PostgreSQL not ready yet");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates database `switchboard` unless it exists; returns whether it was created.
pub(super) async fn ensure_database(conn: &mut PgConnection) -> Result<bool, EmbeddedPgError> {
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'switchboard'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(EmbeddedPgError::CreateDatabase)?;
    if exists.is_some() {
        return Ok(false);
    }
    sqlx::query("CREATE DATABASE switchboard")
        .execute(&mut *conn)
        .await
        .map_err(EmbeddedPgError::CreateDatabase)?;
    Ok(true)
}
