//! `sbbench compare`: every scenario against both servers in one run, alternating
//! which goes first, each run on a fresh server process and an emptied database;
//! medians over the repetitions; one table, printed and written to
//! `bench/results/latest.md`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::db;
use crate::report::{self, Results};
use crate::scenarios::{Ctx, Outcome, Scenario, Settings};
use crate::servers::{Env, Kind, Server};
use crate::util::Result;

/// Options of `compare` (and of `run`, which does one scenario on one server).
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenario settings.
    pub settings: Settings,
    /// Repetitions per scenario and server.
    pub reps: usize,
    /// Which scenarios.
    pub scenarios: Vec<Scenario>,
    /// Which servers.
    pub servers: Vec<Kind>,
    /// Admin connection (creates the benchmark database).
    pub admin_url: String,
    /// Build the release binary first.
    pub build: bool,
    /// First listening port; each run takes the next one.
    pub port_base: u16,
    /// Where the table goes (`None`: only printed).
    pub out: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// Builds Switchboard, installs the Node peer's packages, creates and migrates the
/// benchmark database.
pub async fn prepare(env: &Env, admin_url: &str, build: bool, port: u16) -> Result<()> {
    if build {
        eprintln!("building target/release/switchboard …");
        let status = tokio::process::Command::new("cargo")
            .args([
                "build",
                "--release",
                "-p",
                "switchboard",
                "--bin",
                "switchboard",
            ])
            .current_dir(&env.root)
            .status()
            .await?;
        if !status.success() {
            return Err("cargo build --release --bin switchboard failed".into());
        }
    }
    let node_dir = env.root.join("bench/peers/node");
    if !node_dir.join("node_modules/socket.io").exists() {
        eprintln!("installing the Node peer's packages (npm ci) …");
        let status = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&node_dir)
            .status()
            .await?;
        if !status.success() {
            return Err("npm ci in bench/peers/node failed".into());
        }
    }
    let name = db::database_name(&env.db_url)?;
    db::ensure_database(admin_url, &name).await?;
    // Switchboard applies its migrations at start; a history that no longer matches the
    // migrations (edited during development) means a fresh database.
    match Server::start(Kind::Switchboard, env, port).await {
        Ok(server) => server.stop().await?,
        Err(e) => {
            eprintln!("Switchboard did not start on the benchmark database ({e}); recreating it");
            db::drop_database(admin_url, &name).await?;
            db::ensure_database(admin_url, &name).await?;
            Server::start(Kind::Switchboard, env, port + 1)
                .await?
                .stop()
                .await?;
        }
    }
    Ok(())
}

/// One scenario against one freshly started server.
pub async fn run_once(
    scenario: Scenario,
    kind: Kind,
    settings: &Settings,
    run: u32,
    port: u16,
) -> Outcome {
    let started = Instant::now();
    let quiet = wait_for_quiet(Duration::from_secs(if settings.quick { 10 } else { 30 })).await;
    let result = async {
        db::reset(&settings.env.db_url).await?;
        let mut server =
            Server::start_peer(kind, &settings.env, port, scenario.node_peer()).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()?;
        let limit = Duration::from_secs(if settings.quick { 180 } else { 900 })
            + Duration::from_secs(settings.hold_secs);
        let outcome = {
            let mut ctx = Ctx {
                settings,
                server: &mut server,
                run,
                http,
            };
            tokio::time::timeout(limit, scenario.run(&mut ctx)).await
        };
        let alive = server.alive();
        server.stop().await?;
        let mut outcome = outcome.map_err(|_| "scenario timed out")??;
        if !alive {
            outcome.note("the server process had exited by the end of the run");
        }
        Ok::<Outcome, crate::util::Error>(outcome)
    }
    .await;
    let mut outcome = result.unwrap_or_else(|e| {
        let mut o = Outcome::default();
        o.note(format!("run failed: {e}"));
        o
    });
    outcome.notes.insert(0, quiet);
    report::derive(&mut outcome);
    eprintln!(
        "  {} {} done in {:.0} s{}",
        scenario.id(),
        kind.name(),
        started.elapsed().as_secs_f64(),
        outcome
            .notes
            .iter()
            .find(|n| n.starts_with("run failed"))
            .map(|n| format!(" — {n}"))
            .unwrap_or_default()
    );
    outcome
}

/// Other work on the machine (builds, test suites) skews every figure. Waits, up to
/// `limit`, until under a quarter of the CPUs are busy; returns a note on what it saw.
pub async fn wait_for_quiet(limit: Duration) -> String {
    const QUIET: f64 = 0.25;
    let started = Instant::now();
    let mut busy = crate::procstat::machine_busy(Duration::from_secs(1)).await;
    while busy > QUIET && started.elapsed() < limit {
        busy = crate::procstat::machine_busy(Duration::from_secs(1)).await;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "machine before the run: {:.0}% of CPUs busy with other work{} (load average {load})",
        busy * 100.0,
        if busy > QUIET {
            format!(
                ", still busy after waiting {:.0} s",
                started.elapsed().as_secs_f64()
            )
        } else {
            String::new()
        }
    )
}

/// `sbbench compare`.
pub async fn compare(opts: Options) -> Result<()> {
    let started = Instant::now();
    let date = utc_now();
    prepare(
        &opts.settings.env,
        &opts.admin_url,
        opts.build,
        opts.port_base,
    )
    .await?;
    let mut results = Results::new();
    let mut run: u32 = 0;
    let mut port = opts.port_base + 2;
    for (si, &scenario) in opts.scenarios.iter().enumerate() {
        let mut unavailable = false;
        for rep in 0..opts.reps {
            if unavailable {
                break;
            }
            // Alternate which server goes first, across repetitions and scenarios.
            let mut order = opts.servers.clone();
            if (rep + si) % 2 == 1 {
                order.reverse();
            }
            for kind in order {
                eprintln!(
                    "[{:>4.0} s] {} rep {}/{}: {}",
                    started.elapsed().as_secs_f64(),
                    scenario.id(),
                    rep + 1,
                    opts.reps,
                    kind.name()
                );
                // The S1 hold (minutes) runs in the first repetition only.
                let settings = if rep == 0 {
                    opts.settings.clone()
                } else {
                    Settings {
                        hold_secs: 0,
                        ..opts.settings.clone()
                    }
                };
                let outcome = run_once(scenario, kind, &settings, run, port).await;
                unavailable |= outcome.unavailable.is_some();
                results.entry((scenario, kind)).or_default().push(outcome);
                run += 1;
                port = port.wrapping_add(1);
            }
        }
    }
    let elapsed = started.elapsed();
    let text = document(&opts, &results, &date, elapsed).await;
    println!("{text}");
    if let Some(out) = &opts.out {
        write_results(out, &text, opts.settings.quick, &date)?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// The whole report: header, table, method notes, details.
async fn document(opts: &Options, results: &Results, date: &str, elapsed: Duration) -> String {
    let mode = if opts.settings.quick { "quick" } else { "full" };
    let socketio = opts.scenarios.iter().any(|s| s.node_peer() == "server.mjs");
    let plain = opts
        .scenarios
        .iter()
        .any(|s| s.node_peer() == "ws-server.mjs");
    let peer = match (socketio, plain) {
        (true, true) => "Node.js socket.io (S6–S7: Node.js ws)",
        (false, true) => "Node.js ws",
        _ => "Node.js socket.io",
    };
    let mut t = format!(
        "# Switchboard vs {peer}: {mode} run, {date}\n\n\
         Command: `{}`  \n\
         Duration: {:.1} min; {} repetition(s) per scenario and server, medians shown; \
         ratio = Switchboard ÷ Node.  \n\
         Machine: {}\n\n",
        opts.command,
        elapsed.as_secs_f64() / 60.0,
        opts.reps,
        machine(&opts.settings.env).await
    );
    t.push_str(&report::render(results, &opts.scenarios));
    t.push_str(
        "\nServer CPU-seconds are utime+stime of the server process from /proc/PID/stat; RSS is VmRSS \
         from /proc/PID/status. The load generator and PostgreSQL share the same cores, so \
         saturation rates are those of the whole machine; per-CPU-second figures are the \
         server's own efficiency. See bench/README.md for what each scenario does.\n",
    );
    t.push_str("\n<details><summary>Every run</summary>\n");
    t.push_str(&report::details(results));
    t.push_str("\n</details>\n");
    t
}

fn write_results(out: &Path, text: &str, quick: bool, date: &str) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
        let stamp: String = date
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let mode = if quick { "quick" } else { "full" };
        std::fs::write(dir.join(format!("{mode}-{stamp}.md")), text)?;
    }
    std::fs::write(out, text)?;
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown date".to_owned())
}

/// CPU model and count, memory, Node and PostgreSQL versions, fsync setting.
pub async fn machine(env: &Env) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let node = tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let pg = db::psql(&env.db_url, "select current_setting('server_version') || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')")
        .await
        .unwrap_or_default();
    format!(
        "{cpus} × {model}, {mem_gib:.0} GiB; Node {node}; PostgreSQL {pg}; pool {} connections on both servers",
        env.pool_size
    )
}
