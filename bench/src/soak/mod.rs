//! `sbbench soak`: Switchboard under connect/disconnect churn and steady traffic for a
//! long time (default an hour), sampled every ~10 s: RSS, open files, threads and live
//! tokio tasks must stay flat. Switchboard only: the question is whether this server
//! holds on to anything per client, not how it compares with Node.
//!
//! `load.rs` makes the clients and traffic, `polling.rs` is the long-polling client,
//! `verdict.rs` turns the samples into the table and the verdict; this module starts the
//! server, samples it, stops everything and writes the report.
//!
//! Past 400 lines: the soak's sampling, its verdicts and its report read as one run.

mod load;
mod polling;
mod verdict;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::compare::{machine, utc_now};
use crate::db;
use crate::servers::{Env, Kind, Server};
use crate::util::Result;

use load::Counters;
pub use load::Shape;
use verdict::Sample;

/// Options of `sbbench soak`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server settings (binary, database, secret, pool).
    pub env: Env,
    /// Creates the soak database.
    pub admin_url: String,
    /// Build the release binary first.
    pub build: bool,
    /// Port of the server.
    pub port: u16,
    /// How long the load runs.
    pub minutes: f64,
    /// Seconds between samples.
    pub sample_secs: u64,
    /// The load.
    pub shape: Shape,
    /// The report file (`None`: only printed).
    pub out: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

/// Runs the soak and writes its report.
pub async fn soak(opts: Options) -> Result<()> {
    let date = utc_now();
    let commit = crate::cluster::server_commit(&opts.env.root).await;
    let mut server = start_server(&opts).await?;
    eprintln!(
        "soak: Switchboard pid {} on {}, {} min, a sample every {} s",
        server.pid, server.addr, opts.minutes, opts.sample_secs
    );
    let scrape = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let baseline = sample(&server, &scrape, 0.0, None).await?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;
    let fx = Arc::new(load::fixture(server.addr, &opts.env.secret, &opts.shape, http).await?);
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = load::start(fx.clone(), opts.shape, counters.clone(), stop_rx)?;

    let duration = Duration::from_secs_f64(opts.minutes * 60.0);
    let every = Duration::from_secs(opts.sample_secs.max(1));
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut previous = (0.0, baseline_events(&server, &scrape).await);
    let mut next = tokio::time::Instant::now() + every;
    let mut died = false;
    while started.elapsed() < duration {
        tokio::time::sleep_until(next).await;
        next += every;
        if !server.alive() {
            died = true;
            eprintln!("soak: the server exited");
            break;
        }
        let elapsed = started.elapsed().as_secs_f64();
        match sample(&server, &scrape, elapsed, Some(previous)).await {
            Ok(s) => {
                previous = (elapsed, s.events_total);
                eprintln!(
                    "[{}] RSS {:.1} MiB, {} fds, {} threads, {} tasks, {} sockets, {:.0} events/s; {} connects, {} refused, {} acks ok",
                    verdict::clock(elapsed),
                    s.sample.rss_mib,
                    s.sample.fds,
                    s.sample.threads,
                    s.sample.tasks,
                    s.sample.sockets,
                    s.sample.events_per_s,
                    Counters::get(&counters.connects),
                    Counters::get(&counters.refused),
                    Counters::get(&counters.acks_ok),
                );
                samples.push(s.sample);
            }
            Err(e) => eprintln!("soak: sample failed: {e}"),
        }
    }
    let ran = started.elapsed();

    // Stop the load and let the clients leave, then see what the server kept.
    let _ = stop_tx.send(true);
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .is_err()
        {
            eprintln!("soak: a client did not stop within 30 s");
        }
    }
    drop(fx);
    let drained = if died {
        None
    } else {
        Some(drain(&server, &scrape, &baseline.sample).await)
    };
    let alive = server.alive();
    server.stop().await?;

    let text = document(
        &opts,
        &date,
        &commit,
        ran,
        &baseline.sample,
        drained.as_ref(),
        &samples,
        &counters,
        alive && !died,
    )
    .await;
    println!("{text}");
    if let Some(out) = &opts.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, &text)?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// `soak-<date>.md` in `bench/results`, named like the other modes' dated copies.
pub fn default_out(root: &std::path::Path) -> PathBuf {
    let stamp: String = utc_now()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    root.join(format!("bench/results/soak-{stamp}.md"))
}

/// Builds (if asked), empties the soak database and starts the server on it. A
/// migration history that no longer matches the migrations means a fresh database.
async fn start_server(opts: &Options) -> Result<Server> {
    if opts.build {
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
            .current_dir(&opts.env.root)
            .status()
            .await?;
        if !status.success() {
            return Err("cargo build --release --bin switchboard failed".into());
        }
    }
    let name = db::database_name(&opts.env.db_url)?;
    db::ensure_database(&opts.admin_url, &name).await?;
    db::reset(&opts.env.db_url).await?;
    match Server::start(Kind::Switchboard, &opts.env, opts.port).await {
        Ok(server) => Ok(server),
        Err(e) => {
            eprintln!("Switchboard did not start on the soak database ({e}); recreating it");
            db::drop_database(&opts.admin_url, &name).await?;
            db::ensure_database(&opts.admin_url, &name).await?;
            Server::start(Kind::Switchboard, &opts.env, opts.port + 1).await
        }
    }
}

/// A sample and the raw event counter it was computed from.
struct Taken {
    sample: Sample,
    events_total: f64,
}

/// Reads `/proc` and `/metrics` once. `previous` is (elapsed, events counter) of the
/// last sample, for the event rate.
async fn sample(
    server: &Server,
    scrape: &reqwest::Client,
    elapsed_s: f64,
    previous: Option<(f64, f64)>,
) -> Result<Taken> {
    let usage = server.usage()?;
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid))?.count();
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let text = scrape
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await?
        .text()
        .await?;
    let m = Metrics::parse(&text);
    let tasks = m
        .tasks
        .ok_or("no switchboard_tokio_tasks_alive in /metrics")?;
    let events_per_s = match previous {
        Some((t, events)) if elapsed_s > t => (m.events - events).max(0.0) / (elapsed_s - t),
        _ => 0.0,
    };
    Ok(Taken {
        sample: Sample {
            elapsed_s,
            rss_mib: usage.rss_kib as f64 / 1024.0,
            fds: fds as f64,
            threads,
            tasks,
            sockets: m.sockets,
            connections: m.connections,
            events_per_s,
        },
        events_total: m.events,
    })
}

async fn baseline_events(server: &Server, scrape: &reqwest::Client) -> f64 {
    match scrape
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
    {
        Ok(r) => Metrics::parse(&r.text().await.unwrap_or_default()).events,
        Err(_) => 0.0,
    }
}

/// What the soak reads from `/metrics`.
#[derive(Debug, Default, PartialEq)]
struct Metrics {
    tasks: Option<f64>,
    sockets: f64,
    connections: f64,
    events: f64,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let base = name.split('{').next().unwrap_or(name);
            match base {
                "switchboard_tokio_tasks_alive" => m.tasks = Some(value),
                "switchboard_sockets_connected" => m.sockets += value,
                "switchboard_connections_open" => m.connections = value,
                "switchboard_events_received_total" => m.events += value,
                _ => {}
            }
        }
        m
    }
}

/// How long the server may take to let go of everything once the clients are gone:
/// engine.io keeps a polling session whose client went silent (the refused polling
/// clients never close theirs, as a browser tab left open would not) until its
/// heartbeat times out, at most pingInterval + pingTimeout = 45 s.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

/// The sample after every client left, and how long the server took to get there.
struct Drained {
    sample: Sample,
    /// Seconds until no socket, no extra connection and tasks back near the baseline;
    /// `None` if that did not happen within [`SETTLE_LIMIT`].
    settled_after_s: Option<f64>,
}

/// After the clients left: waits (up to [`SETTLE_LIMIT`]) for the server to count no
/// socket, no connection beyond the baseline's and tasks back within the tolerance of
/// the baseline, then samples once more.
async fn drain(server: &Server, scrape: &reqwest::Client, baseline: &Sample) -> Result<Drained> {
    let started = Instant::now();
    let task_slack = verdict::RULES[3].absolute;
    loop {
        let s = sample(server, scrape, 0.0, None).await?.sample;
        // The scrape's own connection is one of those open.
        let settled = s.sockets == 0.0
            && s.connections <= baseline.connections.max(1.0)
            && s.tasks <= baseline.tasks + task_slack;
        if settled || started.elapsed() >= SETTLE_LIMIT {
            return Ok(Drained {
                sample: s,
                settled_after_s: settled.then(|| started.elapsed().as_secs_f64()),
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The report.
#[allow(clippy::too_many_arguments)]
async fn document(
    opts: &Options,
    date: &str,
    commit: &str,
    ran: Duration,
    baseline: &Sample,
    drained: Option<&Result<Drained>>,
    samples: &[Sample],
    counters: &Counters,
    alive: bool,
) -> String {
    let shape = &opts.shape;
    let duration_s = ran.as_secs_f64();
    let judged = verdict::judge(samples, duration_s);
    let flat = judged.as_ref().is_some_and(|js| js.iter().all(|j| j.flat));
    let headline = match (&judged, alive) {
        (_, false) => "**NOT FLAT: the server exited during the run.**".to_owned(),
        (None, _) => "No verdict: too few samples (a run needs at least a sample in the second and in the last quarter).".to_owned(),
        (Some(_), true) if flat => "**FLAT**: every series' last-quarter median is within its tolerance of the second quarter's.".to_owned(),
        (Some(js), true) => format!(
            "**NOT FLAT**: {} grew past its tolerance.",
            js.iter()
                .filter(|j| !j.flat)
                .map(|j| j.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let get = Counters::get;
    let mut t = format!(
        "# Switchboard soak, {:.0} min, {date}\n\n\
         Command: `{}`  \n\
         Switchboard: `{}` ({}; the tree was at commit {commit})  \n\
         Ran {:.1} min, a sample every {} s.  \n\
         Machine: {}\n\n## Verdict\n\n{headline}\n\n",
        opts.minutes,
        opts.command,
        opts.env.switchboard_bin.display(),
        if opts.build {
            "built by this run"
        } else {
            "not built by this run"
        },
        duration_s / 60.0,
        opts.sample_secs,
        machine(&opts.env).await,
    );
    if let Some(js) = &judged {
        t.push_str(&verdict::verdict_table(js));
    }
    let _ = write!(
        t,
        "\nWarm-up: the first 10% of the run ({}) is left out of the slopes; the second \
         quarter is {}–{}, the last quarter {}–{}.\n\n",
        verdict::clock(0.10 * duration_s),
        verdict::clock(0.25 * duration_s),
        verdict::clock(0.50 * duration_s),
        verdict::clock(0.75 * duration_s),
        verdict::clock(duration_s),
    );
    t.push_str("### Before the load and after every client left\n\n");
    match drained {
        Some(Ok(Drained {
            sample: after,
            settled_after_s,
        })) => {
            t.push_str(
                "| | RSS MiB | open fds | threads | tokio tasks | sockets connected | TCP connections |\n\
                 | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
            );
            for (label, s) in [
                ("server started, no client", baseline),
                ("clients gone", after),
            ] {
                let _ = writeln!(
                    t,
                    "| {label} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    s.rss_mib, s.fds, s.threads, s.tasks, s.sockets, s.connections
                );
            }
            let settled = match settled_after_s {
                Some(secs) => format!(
                    "The server let go within {secs:.0} s of the load stopping: no socket, no \
                     extra connection, tasks within {} of the baseline.",
                    verdict::RULES[3].absolute
                ),
                None => format!(
                    "**Not settled within {} s** of the load stopping (sockets, connections \
                     or tasks above the baseline).",
                    SETTLE_LIMIT.as_secs()
                ),
            };
            let _ = writeln!(
                t,
                "\n{settled} Tasks left over the baseline: {:+.0}; open files: {:+.0}. \
                 Silent polling sessions (the refused polling clients leave theirs open) end \
                 at their heartbeat timeout, up to 45 s. RSS is not expected to fall back: \
                 the allocator keeps freed pages for reuse.",
                after.tasks - baseline.tasks,
                after.fds - baseline.fds
            );
        }
        Some(Err(e)) => {
            let _ = writeln!(t, "Could not sample after the load: {e}");
        }
        None => t.push_str("Not sampled: the server had exited.\n"),
    }
    let _ = write!(
        t,
        "\n## Traffic\n\n\
         | | count |\n| --- | ---: |\n\
         | connects (steady and churn) | {} |\n\
         | connects refused, as intended | {} |\n\
         | connects accepted that should have been refused | {} |\n\
         | connect failures (timeouts, I/O, unexpected refusals) | {} |\n\
         | acks ok | {} |\n\
         | acks with an error | {} |\n\
         | acks not received within 15 s | {} |\n\
         | events pushed to the clients | {} |\n\
         | steady sockets dropped (and reconnected) | {} |\n\
         | REST calls ok (notifications, orders) | {} |\n\
         | REST calls failed | {} |\n\
         | status moves dropped (mover behind) | {} |\n",
        get(&counters.connects),
        get(&counters.refused),
        get(&counters.wrongly_accepted),
        get(&counters.connect_failures),
        get(&counters.acks_ok),
        get(&counters.acks_error),
        get(&counters.ack_timeouts),
        get(&counters.events),
        get(&counters.steady_drops),
        get(&counters.rest_ok),
        get(&counters.rest_failed),
        get(&counters.moves_dropped),
    );
    if let Ok(errors) = counters.errors.lock()
        && !errors.is_empty()
    {
        t.push_str("\nFirst failures:\n\n");
        for e in errors.iter() {
            let _ = writeln!(t, "- `{}`", e.replace('`', "'"));
        }
    }
    let _ = write!(
        t,
        "\n## Load\n\n\
         - {} steady websocket sockets held for the whole run (30% `/chat`, each joined to a \
         group conversation of 5 steady + 2 churn-only members and sending `message:send` with \
         an ack every {:.0} s; 30% `/notifications` sending `notification:ping` every 10 s; 20% \
         tablets on `/restaurants/<id>` with `orders:sync` every 30 s; 15% on `/` and the rest \
         on `/restaurant` after `join:restaurant`, half of them in batch mode; one staff socket \
         on `/` moving every order preparing → ready → completed with `order:update_status`). \
         A steady socket the server drops is counted and reconnected.\n\
         - Churn: {:.1} short-lived clients a second over {} loops, in turn: `/chat` (join, send) \
         over websocket and over long-polling, `/notifications` (ping) over websocket and \
         long-polling, `/restaurants/<id>` (`orders:sync`), `/` and `/restaurant` \
         (`join:restaurant`), an idle `/notifications` socket; each stays 0–3 s, then leaves \
         politely (socket.io DISCONNECT, websocket close, engine.io CLOSE) or drops its TCP \
         connection. A third of them must be refused: a token signed with another secret on \
         `/chat`, `/restaurants/<a fresh unknown id>` (listed in the token), \
         `/restaurants/not-a-uuid-<fresh>`, `/restaurants/<id>` over polling without a token.\n\
         - REST: `POST /api/notifications` {:.1}/s to the steady `/notifications` users; \
         `POST /api/restaurants/:id/orders` {:.1}/s, each order then moved to completed.\n\
         - Loopback only (clients bind 127.77.x.y); the server runs with the bench's \
         environment (rate limits out of the way, `RUST_LOG=warn`).\n\n\
         Samples: `VmRSS` of `/proc/<pid>/status`, the entries of `/proc/<pid>/fd`, `Threads:`; \
         from `/metrics`: `switchboard_tokio_tasks_alive` (tokio's `num_alive_tasks()`, read at \
         scrape time), the sum of `switchboard_sockets_connected`, \
         `switchboard_connections_open`, and the rate of `switchboard_events_received_total`.\n",
        shape.sockets,
        shape.chat_every_s,
        shape.churn_per_s,
        shape.churn_loops,
        shape.notifications_per_s,
        shape.orders_per_s,
    );
    t.push_str("\n## Samples\n\n");
    t.push_str(&verdict::table(samples));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_series_it_needs_from_metrics() {
        let text = "# HELP switchboard_tokio_tasks_alive Tasks alive\n\
                    switchboard_tokio_tasks_alive 812\n\
                    switchboard_sockets_connected{namespace=\"/chat\"} 3\n\
                    switchboard_sockets_connected{namespace=\"restaurant\"} 4\n\
                    switchboard_connections_open 9\n\
                    switchboard_events_received_total{namespace=\"/chat\",event=\"message:send\"} 10\n\
                    switchboard_events_received_total{namespace=\"/\",event=\"orders:sync\"} 5\n";
        assert_eq!(
            Metrics::parse(text),
            Metrics {
                tasks: Some(812.0),
                sockets: 7.0,
                connections: 9.0,
                events: 15.0
            }
        );
        assert_eq!(Metrics::parse("").tasks, None);
    }
}
