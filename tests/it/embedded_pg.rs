//! Tests of the embedded PostgreSQL against the machine's real PostgreSQL binaries.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::child::{TempDir, running_as_root};
use sqlx::{Connection, PgConnection, PgPool};
use switchboard::embedded_pg::{EmbeddedPgError, EmbeddedPostgres};

/// Whether a connection to `url` can be opened within a few seconds.
async fn can_connect(url: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn embedded_postgres_starts_serves_queries_and_stops() {
    let dir = TempDir::new("pg-basic");
    let pg = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let url = pg.database_url().to_owned();
    assert!(
        url.starts_with("postgres://switchboard@127.0.0.1:") && url.ends_with("/switchboard"),
        "{url}"
    );

    let pool = PgPool::connect(&url).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(db, "switchboard");

    sqlx::query("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (body) VALUES ('héllo'), ('world')")
        .execute(&pool)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    let body: String = sqlx::query_scalar("SELECT body FROM notes ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(body, "héllo");
    pool.close().await;

    assert!(dir.path().join("postgres/PG_VERSION").is_file());
    assert!(dir.path().join("postgres.log").is_file());
    pg.stop().await.unwrap();
}

#[tokio::test]
async fn embedded_postgres_keeps_data_across_restarts() {
    let dir = TempDir::new("pg-restart");

    let pg = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let pool = PgPool::connect(pg.database_url()).await.unwrap();
    sqlx::query("CREATE TABLE kept (name TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept (name) VALUES ('survivor')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    pg.stop().await.unwrap();

    let pg = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let pool = PgPool::connect(pg.database_url()).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM kept")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, vec!["survivor".to_owned()]);
    pool.close().await;
    pg.stop().await.unwrap();
}

#[tokio::test]
async fn stop_frees_the_port() {
    let dir = TempDir::new("pg-stop");
    let pg = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let url = pg.database_url().to_owned();
    assert!(can_connect(&url).await);

    pg.stop().await.unwrap();
    assert!(
        !can_connect(&url).await,
        "server still accepts connections after stop"
    );
}

#[tokio::test]
async fn dropping_without_stop_shuts_the_server_down() {
    let dir = TempDir::new("pg-drop");
    let pg = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let url = pg.database_url().to_owned();
    assert!(can_connect(&url).await);

    drop(pg);
    assert!(
        !can_connect(&url).await,
        "server still accepts connections after drop"
    );
}

#[tokio::test]
async fn a_server_left_running_by_an_earlier_run_is_replaced() {
    let dir = TempDir::new("pg-leftover");
    let first = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let first_url = first.database_url().to_owned();
    // Simulate a crash of the process that owned the server: nobody stops it.
    std::mem::forget(first);

    let second = EmbeddedPostgres::start(dir.path()).await.unwrap();
    let second_url = second.database_url().to_owned();
    assert!(can_connect(&second_url).await);
    if first_url != second_url {
        assert!(
            !can_connect(&first_url).await,
            "leftover server was not stopped"
        );
    }
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_deep_data_dir_still_gets_a_usable_socket_dir() {
    let dir = TempDir::new("pg-deep");
    let deep = dir
        .path()
        .join("a-rather-long-directory-name-to-push-the-path-length")
        .join("past-the-unix-socket-path-limit-of-about-one-hundred-bytes");
    let pg = EmbeddedPostgres::start(&deep).await.unwrap();
    assert!(can_connect(pg.database_url()).await);
    pg.stop().await.unwrap();
}

#[tokio::test]
async fn as_root_an_untraversable_data_dir_is_reported_clearly() {
    if !running_as_root() {
        return;
    }
    let dir = TempDir::new("pg-private");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = EmbeddedPostgres::start(&dir.path().join("data"))
        .await
        .unwrap_err();
    match &err {
        EmbeddedPgError::DirectoryNotTraversable { dir: blocked, .. } => {
            assert_eq!(blocked, dir.path());
        }
        other => panic!("unexpected error: {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}
