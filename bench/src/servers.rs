//! Starting and stopping the two servers under test with the same settings, and
//! reading their CPU time and memory.
//!
//! Both get the same database, pool size, rate limits (set out of the way), payload
//! limit and JWT secret. Each run starts a fresh process, so one scenario's memory or
//! JIT state never carries into another's figures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::procstat::{self, Usage};
use crate::util::Result;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `target/release/switchboard`.
    Switchboard,
    /// A Node.js peer in `bench/peers/node/`: `server.mjs` (socket.io 4.8), or
    /// `ws-server.mjs` (plain `ws` 8) for the plain WebSocket scenarios.
    Node,
}

impl Kind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Switchboard => "Switchboard",
            Kind::Node => "Node",
        }
    }
}

/// What both servers are started with.
#[derive(Debug, Clone)]
pub struct Env {
    /// Workspace root.
    pub root: PathBuf,
    /// The shared benchmark database.
    pub db_url: String,
    /// HS256 secret.
    pub secret: String,
    /// `DATABASE_MAX_CONNECTIONS` of both.
    pub pool_size: u32,
    /// Where server logs go.
    pub logs: PathBuf,
    /// The Switchboard binary (default `target/release/switchboard`).
    pub switchboard_bin: PathBuf,
}

/// A running server; killed if dropped without `stop`.
pub struct Server {
    /// Which one.
    pub kind: Kind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id (read in /proc).
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts `kind` on `127.0.0.1:port` and waits until `/healthz` answers (Node: the
    /// socket.io peer, `server.mjs`).
    pub async fn start(kind: Kind, env: &Env, port: u16) -> Result<Server> {
        Server::start_with(kind, env, port, &[]).await
    }

    /// [`Server::start`], Node being the peer `node_script` of `bench/peers/node/`.
    pub async fn start_peer(kind: Kind, env: &Env, port: u16, node_script: &str) -> Result<Server> {
        Server::spawn(kind, node_script, env, port, &[]).await
    }

    /// [`Server::start`] with more environment variables (e.g. `ADAPTER` for a cluster
    /// node), set after the common ones.
    pub async fn start_with(
        kind: Kind,
        env: &Env,
        port: u16,
        extra: &[(&str, String)],
    ) -> Result<Server> {
        Server::spawn(kind, "server.mjs", env, port, extra).await
    }

    async fn spawn(
        kind: Kind,
        node_script: &str,
        env: &Env,
        port: u16,
        extra: &[(&str, String)],
    ) -> Result<Server> {
        std::fs::create_dir_all(&env.logs)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = env
            .logs
            .join(format!("{}-{port}.log", kind.name().to_lowercase()));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = match kind {
            Kind::Switchboard => Command::new(&env.switchboard_bin),
            Kind::Node => {
                let mut c = Command::new("node");
                c.arg(env.root.join("bench/peers/node").join(node_script));
                c.env("NODE_ENV", "production");
                c
            }
        };
        // A neutral working directory: no project `.env` is read by either server.
        cmd.current_dir(&env.logs)
            .env("BIND_ADDR", addr.to_string())
            .env("DATABASE_URL", &env.db_url)
            .env("JWT_SECRET", &env.secret)
            .env("DATABASE_MAX_CONNECTIONS", env.pool_size.to_string())
            .env("RATE_LIMIT_PER_SEC", "1000000")
            .env("RATE_LIMIT_BURST", "1000000")
            .env("REST_RATE_LIMIT_PER_SEC", "1000000")
            .env("REST_RATE_LIMIT_BURST", "1000000")
            .env("MAX_PAYLOAD_BYTES", "1000000")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .env("MIGRATE", "true")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let pid = child.id().ok_or("server exited at once")?;
        let mut server = Server {
            kind,
            addr,
            pid,
            child,
            log,
        };
        server.wait_healthy(Duration::from_secs(60)).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, limit: Duration) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/healthz", self.base_url());
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "{} exited ({status}) during start; log {}:\n{}",
                    self.kind.name(),
                    self.log.display(),
                    tail(&self.log)
                )
                .into());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(format!("{} did not become healthy", self.kind.name()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// CPU time and memory now.
    pub fn usage(&self) -> Result<Usage> {
        procstat::read(self.pid)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, up to 15 s for a graceful exit, then SIGKILL.
    pub async fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            let _ = self.child.wait().await;
        }
        Ok(())
    }
}

/// The last lines of a log, for error messages.
fn tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
