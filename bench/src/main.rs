//! `sbbench`: Switchboard against a Node.js socket.io 4.8 peer (and, for the plain
//! WebSocket scenarios, a Node `ws` 8 peer) on the same machine, in the same run, with
//! the same handlers, payloads and database.
//!
//! - `compare [--quick]`: every scenario against both servers, table of ratios.
//! - `run --server … --scenario …`: one scenario against one server (for profiling).
//! - `check`: the generator's client against the official `socket.io-client`.
//! - `cluster`: broadcast latency across two Switchboard nodes against one node.
//! - `soak`: Switchboard alone under churn and traffic for an hour; memory, open files
//!   and tasks must stay flat.
//! - `worker`: a load-generator process (started by the others, not by hand).
//!
//! Past 400 lines: the command line of every `sbbench` subcommand and the peers' start-up.

mod check;
mod client;
mod cluster;
mod compare;
mod db;
mod pool;
mod procstat;
mod proto;
mod report;
mod rest;
mod scenarios;
mod servers;
mod soak;
mod token;
mod util;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::compare::Options;
use crate::scenarios::{Scenario, Settings};
use crate::servers::{Env, Kind};

#[derive(Parser)]
#[command(
    name = "sbbench",
    about = "Switchboard vs Node.js socket.io / ws benchmark harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenarios against both servers and print the comparison table.
    Compare {
        #[command(flatten)]
        common: Common,
        /// Repetitions per scenario and server (default 3; 1 with --quick).
        #[arg(long)]
        reps: Option<usize>,
        /// Scenarios to run, e.g. `s1,s3` (default: all).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Write the table here (default bench/results/latest.md; `-` for none).
        #[arg(long)]
        out: Option<String>,
    },
    /// Run one scenario against one server.
    Run {
        #[command(flatten)]
        common: Common,
        /// `switchboard` or `node`.
        #[arg(long)]
        server: String,
        /// `s1` … `s7`.
        #[arg(long)]
        scenario: String,
    },
    /// Check the generator's client against the official socket.io-client.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Broadcast latency across two Switchboard nodes (postgres, then redis adapter)
    /// against one node: chat deliveries to rooms of 20 and a broadcast to every user.
    Cluster {
        #[command(flatten)]
        common: Common,
        /// Repetitions per setup (default 3; 1 with --quick).
        #[arg(long)]
        reps: Option<usize>,
        /// Setups to run, e.g. `one,redis` (default: one,postgres,redis).
        #[arg(long, value_delimiter = ',')]
        setups: Vec<String>,
        /// Offered chat rate, messages/s (sustained by every setup).
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Redis of the redis setup (default: $REDIS_URL, else scripts/test-redis's
        /// redis://127.0.0.1:56379).
        #[arg(long)]
        redis_url: Option<String>,
        /// Write the report here (default bench/results/cluster-latest.md; `-` for none).
        #[arg(long)]
        out: Option<String>,
    },
    /// Switchboard alone under connect/disconnect churn and traffic for `--minutes`;
    /// RSS, open files, threads and tokio tasks sampled and judged flat or not.
    Soak {
        #[command(flatten)]
        common: Common,
        /// How long the load runs, minutes (2 for a smoke run).
        #[arg(long, default_value_t = 60.0)]
        minutes: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 10)]
        sample_secs: u64,
        /// Steady sockets held for the whole run.
        #[arg(long, default_value_t = 300)]
        sockets: usize,
        /// Short-lived client connects per second (a third of them refused).
        #[arg(long, default_value_t = 10.0)]
        churn: f64,
        /// Seconds between two messages of one steady chat socket.
        #[arg(long, default_value_t = 5.0)]
        chat_every: f64,
        /// `POST /api/notifications` per second.
        #[arg(long, default_value_t = 2.0)]
        notifications: f64,
        /// `POST /api/restaurants/:id/orders` per second.
        #[arg(long, default_value_t = 1.0)]
        orders: f64,
        /// Write the report here (default bench/results/soak-<date>.md; `-` for none).
        #[arg(long)]
        out: Option<String>,
    },
    /// Hold idle clients on an already running server (for profiling it by hand).
    Hold {
        /// Server address, e.g. 127.0.0.1:3001.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// Namespace.
        #[arg(long, default_value = "/notifications")]
        ns: String,
        /// How many clients.
        #[arg(long, default_value_t = 5000)]
        clients: usize,
        /// How long to hold them, seconds.
        #[arg(long, default_value_t = 30)]
        secs: u64,
        /// JWT secret of that server.
        #[arg(long, default_value = "sbbench-secret-not-for-production")]
        secret: String,
        /// Plain WebSocket clients on `/ws?token=` instead of socket.io (`--ns` unused).
        #[arg(long)]
        plain: bool,
    },
    /// A load-generator worker (driven over stdin/stdout by the other commands).
    #[command(hide = true)]
    Worker,
}

/// The default benchmark database of `compare`, `run` and `check`.
const DEFAULT_DB_URL: &str = "postgres://switchboard@127.0.0.1:55432/sb_bench";
/// `cluster`'s own database on the same server, so that it can run next to a `compare`
/// (which empties `sb_bench` before each run).
const CLUSTER_DB_URL: &str = "postgres://switchboard@127.0.0.1:55432/sb_cluster";
/// `soak`'s own database, for the same reason.
const SOAK_DB_URL: &str = "postgres://switchboard@127.0.0.1:55432/sb_soak";

#[derive(Args, Clone)]
struct Common {
    /// Smaller counts and shorter steps: the whole comparison within 5 minutes.
    #[arg(long)]
    quick: bool,
    /// S1: hold the largest step this many seconds (default: 600 in full mode, 0 quick).
    #[arg(long)]
    hold_secs: Option<u64>,
    /// S1: hold against Node too.
    #[arg(long)]
    hold_node: bool,
    /// Do not run `cargo build --release --bin switchboard` first.
    #[arg(long)]
    no_build: bool,
    /// The benchmark database (created if missing, emptied before each run; `cluster`
    /// uses `sb_cluster` on the same server unless this is given).
    #[arg(long, default_value = DEFAULT_DB_URL)]
    db_url: String,
    /// A database to connect to for creating the benchmark database.
    #[arg(
        long,
        default_value = "postgres://switchboard@127.0.0.1:55432/switchboard"
    )]
    admin_url: String,
    /// Pool size of both servers (`DATABASE_MAX_CONNECTIONS`).
    #[arg(long, default_value_t = 20)]
    pool_size: u32,
    /// First port the servers listen on (each run takes the next). Keep it below the
    /// ephemeral range (32768+), where a health probe can connect to itself.
    #[arg(long, default_value_t = 23_000)]
    port_base: u16,
    /// Another Switchboard binary (e.g. a variant build); implies --no-build.
    #[arg(long)]
    switchboard_bin: Option<PathBuf>,
    /// S2/S3: run only these offered rates (comma list) instead of the ramp; S7: the
    /// first one is the publish rate (default 500/s, 200/s quick).
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// S3: skip the pgbench run.
    #[arg(long)]
    no_pgbench: bool,
    /// JWT secret both servers verify with.
    #[arg(long, default_value = "sbbench-secret-not-for-production")]
    secret: String,
}

impl Common {
    fn env(&self) -> Env {
        let root = workspace_root();
        Env {
            logs: root.join("bench/results/logs"),
            switchboard_bin: self
                .switchboard_bin
                .clone()
                .unwrap_or_else(|| root.join("target/release/switchboard")),
            root,
            db_url: self.db_url.clone(),
            secret: self.secret.clone(),
            pool_size: self.pool_size,
        }
    }

    fn settings(&self) -> Settings {
        Settings {
            quick: self.quick,
            hold_secs: self.hold_secs.unwrap_or(if self.quick { 0 } else { 600 }),
            hold_node: self.hold_node,
            rates: self.rates.clone(),
            pgbench: !self.no_pgbench,
            env: self.env(),
        }
    }
}

/// The workspace root: this crate's parent directory.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn parse_kind(s: &str) -> Option<Kind> {
    match s.to_ascii_lowercase().as_str() {
        "switchboard" | "sb" | "rust" => Some(Kind::Switchboard),
        "node" | "js" => Some(Kind::Node),
        _ => None,
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo run --release -p switchboard-bench -- {}",
        args.join(" ")
    )
}

async fn run(cli: Cli) -> util::Result<()> {
    match cli.command {
        Command::Worker => worker::main().await,
        Command::Compare {
            common,
            reps,
            scenarios,
            out,
        } => {
            let scenarios = if scenarios.is_empty() {
                Scenario::ALL.to_vec()
            } else {
                scenarios
                    .iter()
                    .map(|s| Scenario::parse(s).ok_or_else(|| format!("unknown scenario {s}")))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let out = match out.as_deref() {
                Some("-") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(workspace_root().join("bench/results/latest.md")),
            };
            let opts = Options {
                settings: common.settings(),
                reps: reps.unwrap_or(if common.quick { 1 } else { 3 }).max(1),
                scenarios,
                servers: vec![Kind::Switchboard, Kind::Node],
                admin_url: common.admin_url.clone(),
                build: !common.no_build && common.switchboard_bin.is_none(),
                port_base: common.port_base,
                out,
                command: command_line(),
            };
            compare::compare(opts).await
        }
        Command::Run {
            common,
            server,
            scenario,
        } => {
            let kind = parse_kind(&server).ok_or("--server: switchboard or node")?;
            let scenario = Scenario::parse(&scenario).ok_or("--scenario: s1 … s7")?;
            let settings = common.settings();
            compare::prepare(
                &settings.env,
                &common.admin_url,
                !common.no_build && common.switchboard_bin.is_none(),
                common.port_base,
            )
            .await?;
            let mut outcome =
                compare::run_once(scenario, kind, &settings, 0, common.port_base + 2).await;
            report::derive(&mut outcome);
            for (k, v) in &outcome.figures {
                println!("{k} = {v:.3}");
            }
            if let Some(u) = &outcome.unavailable {
                println!("not available: {u}");
            }
            for n in &outcome.notes {
                println!("- {n}");
            }
            Ok(())
        }
        Command::Cluster {
            common,
            reps,
            setups,
            rate,
            redis_url,
            out,
        } => {
            let setups = if setups.is_empty() {
                cluster::Setup::ALL.to_vec()
            } else {
                setups
                    .iter()
                    .map(|s| cluster::Setup::parse(s).ok_or_else(|| format!("unknown setup {s}")))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let out = match out.as_deref() {
                Some("-") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(workspace_root().join("bench/results/cluster-latest.md")),
            };
            let redis_url = redis_url
                .or_else(|| std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()))
                .unwrap_or_else(|| "redis://127.0.0.1:56379".to_owned());
            if rate.is_nan() || rate <= 0.0 {
                return Err("--rate must be positive".into());
            }
            let mut env = common.env();
            if common.db_url == DEFAULT_DB_URL {
                env.db_url = CLUSTER_DB_URL.to_owned();
            }
            cluster::cluster(cluster::Options {
                env,
                quick: common.quick,
                admin_url: common.admin_url.clone(),
                build: !common.no_build && common.switchboard_bin.is_none(),
                port_base: common.port_base,
                reps: reps.unwrap_or(if common.quick { 1 } else { 3 }).max(1),
                setups,
                rate,
                redis_url,
                out,
                command: command_line(),
            })
            .await
        }
        Command::Soak {
            common,
            minutes,
            sample_secs,
            sockets,
            churn,
            chat_every,
            notifications,
            orders,
            out,
        } => {
            let positive = |v: f64| v.is_finite() && v > 0.0;
            if !positive(minutes) || !positive(churn) || !positive(chat_every) {
                return Err("--minutes, --churn and --chat-every must be positive".into());
            }
            let rate = |v: f64| v.is_finite() && v >= 0.0;
            if !rate(notifications) || !rate(orders) {
                return Err("--notifications and --orders must be 0 or more".into());
            }
            if sockets < 10 {
                return Err("--sockets: at least 10".into());
            }
            let mut env = common.env();
            if common.db_url == DEFAULT_DB_URL {
                env.db_url = SOAK_DB_URL.to_owned();
            }
            let out = match out.as_deref() {
                Some("-") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(soak::default_out(&env.root)),
            };
            soak::soak(soak::Options {
                env,
                admin_url: common.admin_url.clone(),
                build: !common.no_build && common.switchboard_bin.is_none(),
                port: common.port_base.wrapping_add(900),
                minutes,
                sample_secs,
                shape: soak::Shape {
                    sockets,
                    churn_per_s: churn,
                    // Each loop waits for its client (up to a few seconds of lingering),
                    // so enough loops that the offered rate holds.
                    churn_loops: ((churn * 4.0).ceil() as usize).clamp(1, 200),
                    chat_every_s: chat_every,
                    notifications_per_s: notifications,
                    orders_per_s: orders,
                },
                out,
                command: command_line(),
            })
            .await
        }
        Command::Hold {
            addr,
            ns,
            clients,
            secs,
            secret,
            plain,
        } => {
            let protocol = if plain {
                worker::Protocol::Plain
            } else {
                worker::Protocol::SocketIo
            };
            hold(addr, &ns, protocol, clients, secs, &secret).await
        }
        Command::Check { common } => {
            check::check(
                common.env(),
                &common.admin_url,
                !common.no_build && common.switchboard_bin.is_none(),
                common.port_base,
            )
            .await
        }
    }
}

/// `sbbench hold`: idle clients on a server started by hand, then close them.
async fn hold(
    addr: std::net::SocketAddr,
    ns: &str,
    protocol: worker::Protocol,
    clients: usize,
    secs: u64,
    secret: &str,
) -> util::Result<()> {
    let n = clients.div_ceil(pool::CLIENTS_PER_WORKER).max(1);
    let mut workers = pool::Workers::spawn(n).await?;
    let mut jobs: Vec<worker::ConnectJob> = (0..n)
        .map(|_| worker::ConnectJob {
            server: addr,
            protocol,
            ns: ns.to_owned(),
            secret: secret.to_owned(),
            clients: Vec::new(),
            concurrency: 100,
            track: Vec::new(),
            timeout_ms: 60_000,
        })
        .collect();
    for i in 0..clients {
        let mut c = scenarios::plain_client(700_000 + i as i64);
        c.src = pool::source_addr(239, i % n, i / n);
        jobs[i % n].clients.push(c);
    }
    let connected = workers.connect(jobs).await?;
    println!(
        "{} connected, {} failed in {:.0} ms {:?}; holding {secs} s",
        connected.ok, connected.failed, connected.elapsed_ms, connected.errors
    );
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    let end = workers.close().await?;
    println!("closed; {} dropped by the server", end.dropped);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sbbench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let is_worker = matches!(cli.command, Command::Worker);
    let result = runtime.block_on(async {
        if is_worker {
            return run(cli).await;
        }
        // Ctrl-C drops the run: servers and workers are killed with their handles.
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sbbench: {e}");
            ExitCode::FAILURE
        }
    }
}
