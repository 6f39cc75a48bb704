//! The `switchboard` binary as an operator runs it: embedded PostgreSQL when
//! `DATABASE_URL` is unset, readiness, graceful shutdown on SIGTERM that also stops the
//! embedded database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn embedded_database_serves_and_sigterm_stops_everything() {
    let data_dir = std::env::temp_dir().join(format!("switchboard-bin-{}", uuid::Uuid::new_v4()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .env_remove("DATABASE_URL")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", &data_dir)
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(res) = reqwest::get(format!("{base}/readyz")).await
            && res.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "not ready within 90 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited during start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        data_dir.join("postgres").join("PG_VERSION").exists(),
        "data lives in DATA_DIR"
    );

    // Migrations ran on the embedded database: a chat round trip works.
    let opts = ConnectOptions {
        auth: Some(json!({ "token": token(1, &["user"]) })),
        ..Default::default()
    };
    let client = SioClient::connect(&base, "/chat", opts).await.unwrap();
    assert_eq!(client.recv("unread:count").await["total"], 0);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        client.wait_disconnected(Duration::from_secs(10)).await,
        "clients are disconnected on shutdown"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        !data_dir.join("postgres").join("postmaster.pid").exists(),
        "the embedded PostgreSQL is stopped with the server"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}
