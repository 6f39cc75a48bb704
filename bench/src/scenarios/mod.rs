//! The scenarios. Each runs against one freshly started server and returns its
//! figures; `compare` runs them against both servers, alternating, and takes medians.
//! S1–S5 speak socket.io (Node peer: `peers/node/server.mjs`), S6–S7 plain WebSocket
//! on `/ws` (Node peer: `peers/node/ws-server.mjs`).

pub mod broadcast;
pub mod channels;
pub mod chat;
pub mod idle;
pub mod orders;
pub mod ping;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::pool::{CLIENTS_PER_WORKER, Workers, source_addr};
use crate::procstat::Usage;
use crate::servers::{Env, Server};
use crate::util::Result;
use crate::worker::{ClientSpec, ConnectJob, Protocol};

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Idle websocket connections: RSS per connection, connect rate.
    S1,
    /// `notification:ping` acks without the database.
    S2,
    /// `message:send` persisted and broadcast to rooms of 20.
    S3,
    /// `order:created` to restaurant rooms of 20 tablets.
    S4,
    /// One broadcast notification to every connected user.
    S5,
    /// Idle plain WebSocket connections on `/ws`: RSS per connection.
    S6,
    /// `POST /api/publish` fanned out to plain WebSocket channels of 20 subscribers.
    S7,
}

impl Scenario {
    /// All of them.
    pub const ALL: [Scenario; 7] = [
        Scenario::S1,
        Scenario::S2,
        Scenario::S3,
        Scenario::S4,
        Scenario::S5,
        Scenario::S6,
        Scenario::S7,
    ];

    /// `s1` … `s7`.
    pub fn id(self) -> &'static str {
        match self {
            Scenario::S1 => "s1",
            Scenario::S2 => "s2",
            Scenario::S3 => "s3",
            Scenario::S4 => "s4",
            Scenario::S5 => "s5",
            Scenario::S6 => "s6",
            Scenario::S7 => "s7",
        }
    }

    /// The Node peer this scenario runs against (a script in `bench/peers/node`): the
    /// socket.io one, or the plain `ws` one for the plain WebSocket scenarios.
    pub fn node_peer(self) -> &'static str {
        match self {
            Scenario::S6 | Scenario::S7 => "ws-server.mjs",
            _ => "server.mjs",
        }
    }

    /// Parses `s1` … `s7` (case-insensitive).
    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.id().eq_ignore_ascii_case(s.trim()))
    }

    /// Runs this scenario against the server in `ctx`.
    pub async fn run(self, ctx: &mut Ctx<'_>) -> Result<Outcome> {
        match self {
            Scenario::S1 => idle::run(ctx).await,
            Scenario::S2 => ping::run(ctx).await,
            Scenario::S3 => chat::run(ctx).await,
            Scenario::S4 => orders::run(ctx).await,
            Scenario::S5 => broadcast::run(ctx).await,
            Scenario::S6 => idle::run_plain(ctx).await,
            Scenario::S7 => channels::run(ctx).await,
        }
    }
}

/// Settings shared by every run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Smaller counts and shorter steps (the whole comparison in under 5 minutes).
    pub quick: bool,
    /// S1: how long to hold the largest step (0 = no hold).
    pub hold_secs: u64,
    /// Hold against Node too (by default only Switchboard's target asks for it).
    pub hold_node: bool,
    /// S2/S3: these offered rates instead of the default ramp (profiling one load).
    pub rates: Vec<f64>,
    /// S3: run pgbench next to it.
    pub pgbench: bool,
    /// Server settings.
    pub env: Env,
}

impl Settings {
    /// `quick` or `full` value.
    pub fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }

    /// The ramp of S2/S3: `default`, unless rates were given on the command line.
    pub fn ramp(&self, default: &[f64]) -> Vec<f64> {
        if self.rates.is_empty() {
            default.to_vec()
        } else {
            self.rates.clone()
        }
    }
}

/// One run: a scenario against a server.
pub struct Ctx<'a> {
    /// Settings.
    pub settings: &'a Settings,
    /// The server under test.
    pub server: &'a mut Server,
    /// Run number (spreads source addresses; no two runs share one).
    pub run: u32,
    /// HTTP client for REST calls.
    pub http: reqwest::Client,
}

impl Ctx<'_> {
    /// CPU and memory of the server now.
    pub fn usage(&self) -> Result<Usage> {
        self.server.usage()
    }

    /// CPU-seconds of the PostgreSQL backends of the benchmark database so far.
    pub fn db_cpu(&self) -> f64 {
        crate::db::database_name(&self.settings.env.db_url)
            .map(|name| crate::procstat::postgres_cpu(&name))
            .unwrap_or(0.0)
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        self.server.base_url()
    }

    /// Spawns enough workers for `clients` and opens them on `ns`, spread evenly.
    pub async fn open_clients(
        &self,
        ns: &str,
        clients: Vec<ClientSpec>,
        track: &[&str],
        concurrency: usize,
    ) -> Result<(Workers, crate::worker::Connected)> {
        self.open_clients_as(Protocol::SocketIo, ns, clients, track, concurrency)
            .await
    }

    /// [`Ctx::open_clients`] speaking `protocol`.
    pub async fn open_clients_as(
        &self,
        protocol: Protocol,
        ns: &str,
        clients: Vec<ClientSpec>,
        track: &[&str],
        concurrency: usize,
    ) -> Result<(Workers, crate::worker::Connected)> {
        let n = clients.len().div_ceil(CLIENTS_PER_WORKER).max(1);
        let mut workers = Workers::spawn(n).await?;
        let connected = workers
            .connect(self.split_as(protocol, ns, clients, track, concurrency, n))
            .await?;
        Ok((workers, connected))
    }

    /// Splits `clients` speaking `protocol` into one connect job per worker
    /// (round-robin), assigning each client a source address of its worker's block.
    pub fn split_as(
        &self,
        protocol: Protocol,
        ns: &str,
        clients: Vec<ClientSpec>,
        track: &[&str],
        concurrency: usize,
        workers: usize,
    ) -> Vec<ConnectJob> {
        let mut jobs: Vec<ConnectJob> = (0..workers)
            .map(|_| ConnectJob {
                concurrency,
                protocol,
                ..connect_job(self.server.addr, &self.settings.env.secret, ns, track)
            })
            .collect();
        for (i, mut c) in clients.into_iter().enumerate() {
            let w = i % workers;
            c.src = source_addr(self.run, w, i / workers);
            jobs[w].clients.push(c);
        }
        jobs
    }
}

/// A connect job for `server` with no clients yet (concurrency 100, 60 s per client).
pub fn connect_job(server: SocketAddr, secret: &str, ns: &str, track: &[&str]) -> ConnectJob {
    ConnectJob {
        server,
        protocol: Protocol::SocketIo,
        ns: ns.to_owned(),
        secret: secret.to_owned(),
        clients: Vec::new(),
        concurrency: 100,
        track: track.iter().map(|t| (*t).to_owned()).collect(),
        timeout_ms: 60_000,
    }
}

/// A client spec with no setup and no load (source address filled in by `split`).
pub fn plain_client(user: i64) -> ClientSpec {
    ClientSpec {
        user,
        roles: vec!["user".to_owned()],
        restaurants: Vec::new(),
        src: std::net::Ipv4Addr::LOCALHOST,
        setup: Vec::new(),
        load: None,
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Figures by key (see `report.rs` for their meaning and targets).
    pub figures: BTreeMap<String, f64>,
    /// Lines for the details section.
    pub notes: Vec<String>,
    /// Set when the scenario could not run against this server.
    pub unavailable: Option<String>,
}

impl Outcome {
    /// Records a figure.
    pub fn set(&mut self, key: &str, value: f64) {
        self.figures.insert(key.to_owned(), value);
    }

    /// Adds a note.
    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }
}

/// One step of an open-loop ramp (S2, S3).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Offered rate.
    pub offered: f64,
    /// Successful acks per second over the step.
    pub achieved: f64,
    /// Successful acks.
    pub acked: u64,
    /// Server CPU-seconds during the step.
    pub cpu_s: f64,
    /// Of it, system (kernel) CPU-seconds.
    pub sys_s: f64,
    /// Load-generator CPU-seconds during the step.
    pub gen_cpu_s: f64,
    /// PostgreSQL CPU-seconds during the step.
    pub db_cpu_s: f64,
    /// Ack latency.
    pub ack: crate::util::Latency,
    /// Delivery latency (S3).
    pub delivery: crate::util::Latency,
    /// Every emit answered with success, scheduler on time.
    pub complete: bool,
}

/// Sleeps (named for what the wait is for).
pub async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Runs one open-loop step at `rate` and measures it. With `fanout`, also waits for
/// `fanout` tracked deliveries per successful ack and reads their latencies.
pub async fn measure_step(
    ctx: &Ctx<'_>,
    workers: &mut Workers,
    rate: f64,
    duration_ms: u64,
    fanout: Option<u64>,
) -> Result<Step> {
    if fanout.is_some() {
        workers.stats(true).await?;
    }
    let before = ctx.usage()?;
    let (gen_before, db_before) = (workers.cpu_s(), ctx.db_cpu());
    let load = workers.load(rate, duration_ms, 5000).await?;
    let delivery = match fanout {
        Some(f) => {
            workers
                .await_deliveries(load.acked_ok * f, Duration::from_secs(5))
                .await?;
            crate::util::Latency::of(&workers.stats(true).await?.deliveries)
        }
        None => crate::util::Latency::default(),
    };
    let after = ctx.usage()?;
    let (gen_after, db_after) = (workers.cpu_s(), ctx.db_cpu());
    let span_s = (load.span_ms / 1000.0).max(duration_ms as f64 / 1000.0);
    Ok(Step {
        offered: rate,
        achieved: load.acked_ok as f64 / span_s,
        acked: load.acked_ok,
        cpu_s: after.cpu_s - before.cpu_s,
        sys_s: after.sys_s - before.sys_s,
        gen_cpu_s: gen_after - gen_before,
        db_cpu_s: db_after - db_before,
        ack: crate::util::Latency::of(&load.acks),
        delivery,
        complete: load.sent > 0
            && load.acked_err == 0
            && load.acked_ok == load.sent
            && load.max_lag_ms <= 50.0,
    })
}

impl Step {
    /// One line for the details section.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "offered {:.0}/s → {:.0}/s acked ({}), CPU-s server {:.2} (kernel {:.2}) / generator {:.2} / postgres {:.2}, ack {}",
            self.offered,
            self.achieved,
            if self.complete { "all" } else { "INCOMPLETE" },
            self.cpu_s,
            self.sys_s,
            self.gen_cpu_s,
            self.db_cpu_s,
            self.ack.describe()
        );
        if self.delivery.count > 0 {
            line.push_str(&format!(", delivery {}", self.delivery.describe()));
        }
        line
    }
}

/// What a publish-and-deliver run measured (S4's orders, S7's channels).
pub struct FanoutRun<'a> {
    /// Deliveries the subscribers saw.
    pub delivered: u64,
    /// Deliveries the accepted publishes should have made.
    pub expected: u64,
    /// Publishes the server refused.
    pub http_errors: u64,
    /// Server CPU-seconds during the run.
    pub cpu_s: f64,
    /// Of `cpu_s`, in the kernel.
    pub sys_s: f64,
    /// Publish to delivery.
    pub delivery: &'a crate::util::Latency,
    /// The server's peak RSS.
    pub hwm_kib: u64,
}

impl Outcome {
    /// Records `run`'s figures under `prefix` (`s4`, `s7`): deliveries per server
    /// CPU-second, CPU per delivery, delivery latency, what went missing, peak RSS.
    pub fn set_fanout(&mut self, prefix: &str, run: &FanoutRun<'_>) {
        let key = |name: &str| format!("{prefix}.{name}");
        self.set(
            &key("deliveries_per_cpu_s"),
            run.delivered as f64 / run.cpu_s.max(1e-3),
        );
        if run.delivered > 0 {
            let per = 1e6 / run.delivered as f64;
            self.set(&key("cpu_us_per_delivery"), run.cpu_s * per);
            self.set(&key("sys_us_per_delivery"), run.sys_s * per);
        }
        self.set(&key("p50_delivery_ms"), run.delivery.p50_ms);
        self.set(&key("p99_delivery_ms"), run.delivery.p99_ms);
        self.set(&key("max_delivery_ms"), run.delivery.max_ms);
        self.set(
            &key("missing"),
            run.expected.saturating_sub(run.delivered) as f64,
        );
        self.set(&key("http_errors"), run.http_errors as f64);
        self.set(&key("cpu_s"), run.cpu_s);
        self.set(&key("rss_mib"), run.hwm_kib as f64 / 1024.0);
    }
}
