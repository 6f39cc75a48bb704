//! The `switchboard` binary as a child process, and the scratch directories and
//! databases such tests give it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::process::{Child, Command};

use super::SECRET;

/// A unique directory under the system temp dir, removed (best effort) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("switchboard-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        == Some("0")
}

/// A port that was free on 127.0.0.1 when asked.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The URL of the database `#[sqlx::test]` made for this test: `DATABASE_URL` with the
/// test database's name.
pub fn database_url(pool: &PgPool) -> String {
    let name = pool.connect_options().get_database().unwrap().to_owned();
    let mut url = reqwest::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// The binary serving on `127.0.0.1:port` with the test secret and nothing of the test's
/// own environment but `PATH`; `RUST_LOG=warn`, run in the temp dir, stdout dropped,
/// stderr inherited, killed when dropped. Callers add the rest.
pub fn server_command(port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// Waits until `base`'s `/readyz` answers 200, asserting that `child` keeps running.
pub async fn wait_ready(base: &str, child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|res| res.status() == 200)
    {
        assert!(Instant::now() < deadline, "not ready within {within:?}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited during start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM to `child` (what systemd sends to stop it).
pub fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Asserts that `child` exits successfully within 30 s.
pub async fn exits_ok(child: &mut Child) {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
