//! The `switchboard` binary as an operator runs it: embedded PostgreSQL when
//! `DATABASE_URL` is unset, readiness, graceful shutdown on SIGTERM that also stops the
//! embedded database; and its logs, which hold no token even at `trace`.

use std::process::Stdio;
use std::time::Duration;

use crate::support::child::{
    TempDir, database_url, exits_ok, free_port, server_command, sigterm, wait_ready,
};
use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn embedded_database_serves_and_sigterm_stops_everything() {
    let tmp = TempDir::new("bin");
    let data_dir = tmp.path();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // No DATABASE_URL: the binary starts its embedded PostgreSQL.
    let mut child = server_command(port)
        .env("DATA_DIR", data_dir)
        .spawn()
        .unwrap();
    wait_ready(&base, &mut child, Duration::from_secs(90)).await;
    assert!(
        data_dir.join("postgres").join("PG_VERSION").exists(),
        "data lives in DATA_DIR"
    );

    // Migrations ran on the embedded database: a chat round trip works.
    let client = client_at(&base, "/chat", &token(1, &["user"])).await;
    assert_eq!(client.recv("unread:count").await["total"], 0);

    sigterm(&child);
    assert!(
        client.wait_disconnected(Duration::from_secs(10)).await,
        "clients are disconnected on shutdown"
    );
    exits_ok(&mut child).await;
    assert!(
        !data_dir.join("postgres").join("postmaster.pid").exists(),
        "the embedded PostgreSQL is stopped with the server"
    );
}

#[sqlx::test]
async fn tokens_never_reach_the_logs_even_at_trace_level(pool: sqlx::PgPool) {
    // The token in every place a client may put it: the CONNECT auth payload, the
    // handshake query (websocket and polling), and a refused one.
    let in_auth = token(1, &["user"]);
    let in_query = token(2, &["user"]);
    let refused = sign(json!({ "sub": 3, "exp": now_secs() - 3600 }));
    // Asking for the libraries by name does not lift the cap either.
    let trace = [("RUST_LOG", "trace,socketioxide=trace,engineioxide=debug")];
    let (in_auth, in_query, refused) = (&in_auth, &in_query, &refused);
    let logs = logs_of(&pool, &trace, |base| async move {
        let c = client_at(&base, "/chat", in_auth).await;
        assert_eq!(c.recv("unread:count").await["total"], 0);
        let q = SioClient::connect(
            &base,
            "/chat",
            ConnectOptions::default().query("token", in_query),
        )
        .await
        .unwrap();
        assert_eq!(q.recv("unread:count").await["total"], 0);
        assert!(
            SioClient::connect(
                &base,
                "/chat",
                ConnectOptions::with_auth(json!({ "token": refused }))
            )
            .await
            .is_err()
        );
        assert_eq!(polling_handshake(&base, 4, in_query).await, 200);
        assert_eq!(polling_handshake(&base, 9, in_query).await, 400);
        // Connected until the server stops.
        (c, q)
    })
    .await;
    // The capture works: trace-level lines of our own crate and of the libraries'
    // neighbours are there.
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "{logs}");
    for (name, secret) in [
        ("auth", &in_auth),
        ("query", &in_query),
        ("refused", &refused),
    ] {
        // The signature alone is enough to replay a token: look for it too.
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(signature),
            "the {name} token is in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(signature))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs the binary on `pool`'s database with `env`, lets `act` talk to it (given its
/// base URL; what it returns is held until the server has exited), stops it with
/// SIGTERM and returns what it wrote to stdout, then to stderr.
async fn logs_of<F, Fut, T>(pool: &sqlx::PgPool, env: &[(&str, &str)], act: F) -> String
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = server_command(port);
    command
        .env("DATABASE_URL", database_url(pool))
        .env("RUST_LOG", "info")
        .env("SHUTDOWN_GRACE_SECS", "2")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    wait_ready(&base, &mut child, Duration::from_secs(30)).await;
    let held = act(base).await;
    sigterm(&child);
    exits_ok(&mut child).await;
    drop(held);
    stdout.await.unwrap() + &stderr.await.unwrap()
}

/// Reads `pipe` to its end on a task of its own.
fn read_all(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out).await;
        out
    })
}

/// The status of a long-polling handshake of engine.io `eio` with `?token=`.
async fn polling_handshake(base: &str, eio: u8, token: &str) -> u16 {
    let url = format!("{base}/socket.io/?EIO={eio}&transport=polling&token={token}");
    reqwest::get(url).await.unwrap().status().as_u16()
}

/// A REST request with a credential in the query and the header, a socket.io
/// handshake and a /ws upgrade with `?token=`.
async fn requests_with_secrets(base: String, jwt: String) {
    let rest = reqwest::Client::new()
        .get(format!(
            "{base}/api/conversations?token=supersecret-query&limit=5"
        ))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
    assert_eq!(polling_handshake(&base, 4, &jwt).await, 200);
    let ws = format!("{}/ws?token={jwt}", base.replacen("http", "ws", 1));
    let (mut plain, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    use futures_util::StreamExt;
    plain.next().await.unwrap().unwrap();
    let _ = plain.close(None).await;
}

#[sqlx::test]
async fn the_access_log_has_a_line_per_request_and_handshake_without_secrets(pool: sqlx::PgPool) {
    let jwt = token(7, &["user"]);
    let out = logs_of(&pool, &[], |base| requests_with_secrets(base, jwt.clone())).await;
    let access: Vec<&str> = out.lines().filter(|l| l.contains(" access ")).collect();
    let line = |needle: &str| {
        access
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no access line with {needle:?} in:\n{out}"))
            .to_string()
    };
    let rest = line("path=/api/conversations?token=REDACTED&limit=5");
    for field in ["method=GET", "status=200", "ms=", "remote=127.0.0.1:"] {
        assert!(rest.contains(field), "{field} missing in {rest}");
    }
    let handshake = line("path=/socket.io/?EIO=4&transport=polling&token=REDACTED");
    assert!(handshake.contains("status=200"), "{handshake}");
    let upgrade = line("path=/ws?token=REDACTED");
    assert!(upgrade.contains("status=101"), "{upgrade}");
    // Probes are not logged at info.
    assert!(!access.iter().any(|l| l.contains("path=/readyz")), "{out}");
    let signature = jwt.rsplit('.').next().unwrap();
    assert!(!out.contains("supersecret-query"), "{out}");
    assert!(!out.contains(signature), "the token is in the log:\n{out}");
    assert!(!out.contains("Bearer"), "{out}");
}

#[sqlx::test]
async fn access_log_false_turns_the_access_log_off(pool: sqlx::PgPool) {
    let jwt = token(7, &["user"]);
    let out = logs_of(&pool, &[("ACCESS_LOG", "false")], |base| {
        requests_with_secrets(base, jwt.clone())
    })
    .await;
    assert!(
        out.contains("switchboard listening"),
        "stdout not captured:\n{out}"
    );
    assert!(!out.lines().any(|l| l.contains(" access ")), "{out}");
}

/// The next notice the service manager's socket receives, within 5 s (`what` is
/// expected).
async fn notice(systemd: &tokio::net::UnixDatagram, what: &str) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), systemd.recv(&mut buf))
        .await
        .expect(what)
        .unwrap();
    buf[..n].to_vec()
}

#[sqlx::test]
async fn systemd_hears_ready_once_serving_and_stopping_at_sigterm(pool: sqlx::PgPool) {
    // Short: a unix socket's path has a limit of about a hundred bytes.
    let dir = TempDir::new("nfy");
    let socket_path = dir.path().join("notify.sock");
    let systemd = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let notify_socket = socket_path.to_str().unwrap().to_owned();
    let systemd = &systemd;
    let heard = logs_of(
        &pool,
        &[("NOTIFY_SOCKET", notify_socket.as_str())],
        |base| async move {
            let ready = notice(systemd, "READY=1 within 5 s of /readyz answering 200").await;
            assert_eq!(ready, b"READY=1");
            // Ready means serving.
            let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
            assert_eq!(ready.status(), 200);
        },
    )
    .await;
    assert!(heard.contains("switchboard listening"));
    let stopping = notice(systemd, "STOPPING=1 after SIGTERM").await;
    assert_eq!(stopping, b"STOPPING=1");
}
