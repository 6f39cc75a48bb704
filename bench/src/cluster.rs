//! `sbbench cluster`: broadcast delivery latency across two Switchboard nodes against
//! one node, same workload, same machine, same run.
//!
//! Three setups, each on freshly started processes and an emptied database:
//!
//! - one node, `ADAPTER=local`;
//! - two nodes, `ADAPTER=postgres` on the same database;
//! - two nodes, `ADAPTER=redis` on `REDIS_URL`.
//!
//! The nodes of a pair are the same binary on two ports with the same `ADAPTER_PREFIX`
//! (unique to the run, so nothing else on the same Redis or database joins the cluster).
//! Every setup runs the same two workloads:
//!
//! - **chat** (as S3): rooms of 20 members on `/chat`, each joined to its group
//!   conversation. The 10 even members of each room are on node A and are the senders
//!   (`message:send`, round-robin, fixed open-loop rate); the 10 odd members are on node
//!   B (one node: on node A as well). Of the 19 deliveries of each message, 10 cross
//!   nodes. Delivery latency is the send time carried in the payload → receipt of
//!   `message:created` (one clock: the same machine's).
//! - **broadcast** (as S5): users on `/notifications`, half on each node;
//!   `POST /api/notifications/broadcast` on node A; time to last delivery.
//!
//! Worker process 0 holds node A's clients (and all the senders), worker 1 node B's, so
//! the deliveries of each half are also reported on their own.
//!
//! Past 400 lines: the two-node run's setup, load and latency tally are one scenario, read
//! top to bottom.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::compare::{machine, utc_now, wait_for_quiet};
use crate::db;
use crate::pool::{Workers, source_addr};
use crate::procstat::postgres_cpu;
use crate::report::{cell, medians};
use crate::rest;
use crate::scenarios::chat::clear_messages;
use crate::scenarios::{Outcome, connect_job, plain_client, settle};
use crate::servers::{Env, Kind, Server};
use crate::token;
use crate::util::{Latency, Result, epoch_us, median, new_histogram};
use crate::worker::{ClientSpec, Connected, LoadTemplate, SetupEmit};

const ROOM: usize = 20;
/// Deliveries of one message: the other members of its room.
const FANOUT: u64 = (ROOM - 1) as u64;
const CHAT_USER: i64 = 600_000;
const BROADCAST_USER: i64 = 650_000;

/// One, or two nodes over an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setup {
    /// One node, `ADAPTER=local`.
    One,
    /// Two nodes, `ADAPTER=postgres`.
    Postgres,
    /// Two nodes, `ADAPTER=redis`.
    Redis,
}

impl Setup {
    /// All of them, in the order they run in the first repetition.
    pub const ALL: [Setup; 3] = [Setup::One, Setup::Postgres, Setup::Redis];

    /// `one`, `postgres`, `redis`.
    pub fn id(self) -> &'static str {
        match self {
            Setup::One => "one",
            Setup::Postgres => "postgres",
            Setup::Redis => "redis",
        }
    }

    /// Column heading.
    fn label(self) -> &'static str {
        match self {
            Setup::One => "one node",
            Setup::Postgres => "two nodes, postgres adapter",
            Setup::Redis => "two nodes, redis adapter",
        }
    }

    /// Parses an id (case-insensitive; `local` for `one`).
    pub fn parse(s: &str) -> Option<Setup> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("local") {
            return Some(Setup::One);
        }
        Setup::ALL
            .into_iter()
            .find(|x| x.id().eq_ignore_ascii_case(s))
    }

    fn adapter(self) -> &'static str {
        match self {
            Setup::One => "local",
            Setup::Postgres => "postgres",
            Setup::Redis => "redis",
        }
    }

    fn nodes(self) -> usize {
        match self {
            Setup::One => 1,
            Setup::Postgres | Setup::Redis => 2,
        }
    }
}

/// Options of `sbbench cluster`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server settings (database, secret, pool size, binary).
    pub env: Env,
    /// Fewer rooms and users, shorter steps.
    pub quick: bool,
    /// Admin connection (creates the benchmark database).
    pub admin_url: String,
    /// Build the release binary first.
    pub build: bool,
    /// First listening port.
    pub port_base: u16,
    /// Repetitions per setup.
    pub reps: usize,
    /// Which setups.
    pub setups: Vec<Setup>,
    /// Offered chat rate, messages/s.
    pub rate: f64,
    /// Redis of the redis setup.
    pub redis_url: String,
    /// Where the report goes (`None`: only printed).
    pub out: Option<PathBuf>,
    /// The command line, for the report.
    pub command: String,
}

impl Options {
    fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }

    fn rooms(&self) -> usize {
        self.pick(20, 50)
    }

    fn step_ms(&self) -> u64 {
        self.pick(5_000, 10_000)
    }

    fn users(&self) -> usize {
        self.pick(1_000, 4_000)
    }

    fn rounds(&self) -> usize {
        self.pick(3, 5)
    }
}

/// `sbbench cluster`.
pub async fn cluster(opts: Options) -> Result<()> {
    let started = Instant::now();
    let date = utc_now();
    // Before the build (if any): the tree the binary is built from.
    let commit = server_commit(&opts.env.root).await;
    crate::compare::prepare(&opts.env, &opts.admin_url, opts.build, opts.port_base).await?;
    let mut results: BTreeMap<Setup, Vec<Outcome>> = BTreeMap::new();
    let mut run: u32 = 0;
    for rep in 0..opts.reps {
        // Rotate which setup goes first, so drift on the machine does not favour one.
        let mut order = opts.setups.clone();
        let n = order.len().max(1);
        order.rotate_left(rep % n);
        for setup in order {
            eprintln!(
                "[{:>4.0} s] cluster rep {}/{}: {}",
                started.elapsed().as_secs_f64(),
                rep + 1,
                opts.reps,
                setup.label()
            );
            // Ports of this run: port_base + 60 + 2 × run and the next one.
            let port = opts.port_base.wrapping_add(60 + 2 * (run as u16 % 400));
            let outcome = run_setup(&opts, setup, run, port).await;
            results.entry(setup).or_default().push(outcome);
            run += 1;
        }
    }
    let text = document(&opts, &results, &date, &commit, started.elapsed()).await;
    println!("{text}");
    if let Some(out) = &opts.out {
        write_results(out, &text, &date)?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// One setup: start its node(s), run both workloads, stop them.
async fn run_setup(opts: &Options, setup: Setup, run: u32, port: u16) -> Outcome {
    let started = Instant::now();
    let reset = reset_retrying(&opts.env.db_url).await;
    let mut outcome = Outcome::default();
    outcome.note(wait_for_quiet(Duration::from_secs(10)).await);
    let result = async {
        reset?;
        let mut extra = vec![
            ("ADAPTER", setup.adapter().to_owned()),
            (
                "ADAPTER_PREFIX",
                format!("sbbench_{}_{run}", std::process::id()),
            ),
        ];
        if setup == Setup::Redis {
            extra.push(("REDIS_URL", opts.redis_url.clone()));
        }
        let mut nodes = Vec::with_capacity(setup.nodes());
        for i in 0..setup.nodes() {
            // One after the other: the first applies the migrations.
            let node =
                Server::start_with(Kind::Switchboard, &opts.env, port + i as u16, &extra).await?;
            nodes.push(node);
        }
        let limit = Duration::from_secs(opts.pick(150, 600));
        let measured = tokio::time::timeout(limit, workload(opts, &nodes, run, &mut outcome)).await;
        let alive = nodes.iter_mut().all(Server::alive);
        for node in nodes {
            node.stop().await?;
        }
        if !alive {
            outcome.note("a server process had exited by the end of the run");
        }
        measured.map_err(|_| "workload timed out")?
    }
    .await;
    if let Err(e) = result {
        outcome.note(format!("run failed: {}", one_line(&e.to_string())));
    }
    eprintln!(
        "  {} done in {:.0} s{}",
        setup.label(),
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

/// Empties the database (`db::reset` ends the previous setup's leftover backends
/// first); retried if it deadlocks all the same.
async fn reset_retrying(url: &str) -> Result<()> {
    let mut attempt = 0;
    loop {
        match db::reset(url).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 3 => {
                eprintln!("  reset failed ({}), retrying", one_line(&e.to_string()));
                attempt += 1;
                settle(1000).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Empties `messages` between chat steps (as S3 does). A statement of the previous
/// step can still hold a row of `conversation_members`: retried when that deadlocks.
async fn clear_messages_retrying(url: &str) -> Result<()> {
    let mut attempt = 0;
    loop {
        settle(300).await;
        match clear_messages(url).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 3 => {
                eprintln!(
                    "  emptying messages failed ({}), retrying",
                    one_line(&e.to_string())
                );
                attempt += 1;
                settle(1000).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Error text on one line (for notes in a markdown list).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Both workloads against running nodes (node A is `nodes[0]`), into `out` (what was
/// measured before a failure stays).
async fn workload(opts: &Options, nodes: &[Server], run: u32, out: &mut Outcome) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    for node in nodes {
        wait_ready(&http, node).await?;
    }
    chat(opts, nodes, run, &http, out).await?;
    broadcast(opts, nodes, run, &http, out).await
}

/// `/readyz` is 200 once the database and (for a cluster node) its adapter link are up.
async fn wait_ready(http: &reqwest::Client, node: &Server) -> Result<()> {
    let url = format!("{}/readyz", node.base_url());
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("{url} did not answer 200 within 30 s").into());
        }
        settle(100).await;
    }
}

/// Two worker processes: worker `h` holds `halves[h]`, connected to node `h` (node A
/// when there is one node).
async fn open_halves(
    opts: &Options,
    nodes: &[Server],
    block: u32,
    ns: &str,
    halves: [Vec<ClientSpec>; 2],
    track: &str,
) -> Result<(Workers, Connected)> {
    let mut workers = Workers::spawn(2).await?;
    let jobs = halves
        .into_iter()
        .enumerate()
        .map(|(w, clients)| {
            let mut job = connect_job(nodes[w % nodes.len()].addr, &opts.env.secret, ns, &[track]);
            job.clients = clients
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    c.src = source_addr(block, w, i);
                    c
                })
                .collect();
            job
        })
        .collect();
    let connected = workers.connect(jobs).await?;
    Ok((workers, connected))
}

/// Source-address block of a run's workload (`phase` 0 chat, 1 broadcast), away from
/// those `compare` uses for its first runs.
fn block(run: u32, phase: u32) -> u32 {
    120 + 2 * run + phase
}

/// One open-loop chat step, measured.
struct ChatStep {
    offered: f64,
    achieved: f64,
    sent: u64,
    acked_ok: u64,
    acked_err: u64,
    max_lag_ms: f64,
    ack: Latency,
    /// Every delivery.
    all: Latency,
    /// Deliveries to each half (worker 0: node A, with the senders; worker 1: node B).
    halves: Vec<Latency>,
    missing: u64,
    server_cpu_s: f64,
    db_cpu_s: f64,
    gen_cpu_s: f64,
}

impl ChatStep {
    fn complete(&self) -> bool {
        self.sent > 0
            && self.acked_err == 0
            && self.acked_ok == self.sent
            && self.missing == 0
            && self.max_lag_ms <= 50.0
    }

    fn describe(&self) -> String {
        let half = |i: usize| {
            self.halves
                .get(i)
                .map(Latency::describe)
                .unwrap_or_default()
        };
        format!(
            "offered {:.0}/s → {:.0}/s acked ({}; {} sent, {} error acks, {} deliveries missing, scheduler lag ≤ {:.1} ms), \
             CPU-s servers {:.2} / generator {:.2} / postgres {:.2}; ack {}; delivery {}; \
             node A's half {}; node B's half {}",
            self.offered,
            self.achieved,
            if self.complete() { "all" } else { "INCOMPLETE" },
            self.sent,
            self.acked_err,
            self.missing,
            self.max_lag_ms,
            self.server_cpu_s,
            self.gen_cpu_s,
            self.db_cpu_s,
            self.ack.describe(),
            self.all.describe(),
            half(0),
            half(1)
        )
    }
}

/// Server CPU-seconds of every node so far.
fn nodes_cpu(nodes: &[Server]) -> f64 {
    nodes
        .iter()
        .filter_map(|n| n.usage().ok())
        .map(|u| u.cpu_s)
        .sum()
}

async fn chat_step(
    opts: &Options,
    nodes: &[Server],
    workers: &mut Workers,
    rate: f64,
    duration_ms: u64,
) -> Result<ChatStep> {
    let database = db::database_name(&opts.env.db_url)?;
    workers.stats(true).await?;
    let (cpu0, db0, gen0) = (nodes_cpu(nodes), postgres_cpu(&database), workers.cpu_s());
    // Only worker 0 holds senders.
    let load = workers.load_on(1, rate, duration_ms, 5000).await?;
    let expected = load.acked_ok * FANOUT;
    workers
        .await_deliveries(expected, Duration::from_secs(5))
        .await?;
    let per = workers.stats_each(true).await?;
    let (cpu1, db1, gen1) = (nodes_cpu(nodes), postgres_cpu(&database), workers.cpu_s());
    let mut all = new_histogram();
    for s in &per {
        all.add(&s.deliveries)
            .map_err(|e| format!("merging histograms: {e:?}"))?;
    }
    let delivered: u64 = per.iter().map(|s| s.delivered).sum();
    let span_s = (load.span_ms / 1000.0).max(duration_ms as f64 / 1000.0);
    Ok(ChatStep {
        offered: rate,
        achieved: load.acked_ok as f64 / span_s,
        sent: load.sent,
        acked_ok: load.acked_ok,
        acked_err: load.acked_err,
        max_lag_ms: load.max_lag_ms,
        ack: Latency::of(&load.acks),
        all: Latency::of(&all),
        halves: per.iter().map(|s| Latency::of(&s.deliveries)).collect(),
        missing: expected.saturating_sub(delivered),
        server_cpu_s: cpu1 - cpu0,
        db_cpu_s: db1 - db0,
        gen_cpu_s: gen1 - gen0,
    })
}

/// The chat workload: rooms of 20, senders on node A, half the receivers on node B.
async fn chat(
    opts: &Options,
    nodes: &[Server],
    run: u32,
    http: &reqwest::Client,
    out: &mut Outcome,
) -> Result<()> {
    let base = nodes[0].base_url();
    let mut halves: [Vec<ClientSpec>; 2] = [Vec::new(), Vec::new()];
    for r in 0..opts.rooms() {
        let members: Vec<i64> = (0..ROOM)
            .map(|k| CHAT_USER + (r * ROOM + k) as i64)
            .collect();
        let owner = token::sign(&opts.env.secret, members[0], &["user".to_owned()], &[])?;
        let id = rest::create_group(http, &base, &owner, &format!("cluster {r}"), &members).await?;
        for (k, &user) in members.iter().enumerate() {
            let mut c = plain_client(user);
            c.setup = vec![SetupEmit {
                event: "conversation:join".to_owned(),
                payload: json!({ "conversationId": id }),
            }];
            if k % 2 == 0 {
                c.load = Some(LoadTemplate {
                    event: "message:send".to_owned(),
                    payload: format!(
                        "{{\"conversationId\":\"{id}\",\"content\":\"cluster message @T{{T}}\"}}"
                    ),
                });
            }
            halves[k % 2].push(c);
        }
    }
    let (mut workers, connected) = open_halves(
        opts,
        nodes,
        block(run, 0),
        "/chat",
        halves,
        "message:created",
    )
    .await?;
    out.note(format!(
        "chat: {} clients in {} rooms connected and joined in {:.0} ms{}",
        connected.ok,
        opts.rooms(),
        connected.elapsed_ms,
        if connected.failed > 0 {
            format!(", {} FAILED: {:?}", connected.failed, connected.errors)
        } else {
            String::new()
        }
    ));
    let warm = chat_step(opts, nodes, &mut workers, 100.0, 2000).await?;
    out.note(format!("chat warm-up: {}", warm.describe()));
    clear_messages_retrying(&opts.env.db_url).await?;
    let step = chat_step(opts, nodes, &mut workers, opts.rate, opts.step_ms()).await?;
    out.note(format!("chat: {}", step.describe()));
    let closed = workers.close().await?;
    if closed.dropped > 0 {
        out.note(format!(
            "chat: {} clients dropped by the server",
            closed.dropped
        ));
    }
    out.set("chat.rate", step.achieved);
    out.set("chat.complete", if step.complete() { 1.0 } else { 0.0 });
    out.set("chat.p50", step.all.p50_ms);
    out.set("chat.p99", step.all.p99_ms);
    out.set("chat.p999", step.all.p999_ms);
    out.set("chat.max", step.all.max_ms);
    for (i, half) in step.halves.iter().enumerate().take(2) {
        let side = if i == 0 { "a" } else { "b" };
        out.set(&format!("chat.{side}_p50"), half.p50_ms);
        out.set(&format!("chat.{side}_p99"), half.p99_ms);
    }
    out.set("chat.ack_p50", step.ack.p50_ms);
    out.set("chat.ack_p99", step.ack.p99_ms);
    out.set("chat.missing", step.missing as f64);
    out.set("chat.errors", step.acked_err as f64);
    let msgs = step.acked_ok.max(1) as f64;
    out.set("chat.cpu_ms_per_msg", step.server_cpu_s * 1000.0 / msgs);
    out.set("chat.db_ms_per_msg", step.db_cpu_s * 1000.0 / msgs);
    clear_messages_retrying(&opts.env.db_url).await?;
    Ok(())
}

/// The broadcast workload: users half on each node, the REST call on node A.
async fn broadcast(
    opts: &Options,
    nodes: &[Server],
    run: u32,
    http: &reqwest::Client,
    out: &mut Outcome,
) -> Result<()> {
    let mut halves: [Vec<ClientSpec>; 2] = [Vec::new(), Vec::new()];
    for i in 0..opts.users() {
        halves[i % 2].push(plain_client(BROADCAST_USER + i as i64));
    }
    let (mut workers, connected) = open_halves(
        opts,
        nodes,
        block(run, 1),
        "/notifications",
        halves,
        "notification:created",
    )
    .await?;
    let expected = connected.ok;
    if connected.failed > 0 {
        out.note(format!(
            "broadcast: {} users FAILED to connect: {:?}",
            connected.failed, connected.errors
        ));
    }
    settle(1000).await;
    let service = token::service(&opts.env.secret)?;
    let url = format!("{}/api/notifications/broadcast", nodes[0].base_url());
    let (mut lasts, mut p50s, mut missing) = (Vec::new(), Vec::new(), 0);
    for round in 0..=opts.rounds() {
        workers.stats(true).await?;
        let sent_us = epoch_us();
        let (status, body) = rest::post(
            http,
            &url,
            &service,
            &json!({ "type": "system", "title": "cluster", "content": format!("broadcast @T{sent_us}") }),
        )
        .await?;
        if !status.is_success() {
            return Err(format!("broadcast: {status} {body}").into());
        }
        workers
            .await_deliveries(expected, Duration::from_secs(30))
            .await?;
        let per = workers.stats_each(true).await?;
        let mut all = new_histogram();
        for s in &per {
            all.add(&s.deliveries)
                .map_err(|e| format!("merging histograms: {e:?}"))?;
        }
        let delivered: u64 = per.iter().map(|s| s.delivered).sum();
        let last_us = per.iter().map(|s| s.last_recv_us).max().unwrap_or(0);
        let last_ms = last_us.saturating_sub(sent_us) as f64 / 1000.0;
        let half_last: Vec<String> = per
            .iter()
            .map(|s| {
                format!(
                    "{:.1}",
                    s.last_recv_us.saturating_sub(sent_us) as f64 / 1000.0
                )
            })
            .collect();
        let lat = Latency::of(&all);
        out.note(format!(
            "{}: {delivered} of {expected} delivered, last after {last_ms:.1} ms (node A's half / node B's half: {} ms), {}",
            if round == 0 {
                "broadcast warm-up"
            } else {
                "broadcast"
            },
            half_last.join(" / "),
            lat.describe()
        ));
        if round > 0 {
            lasts.push(last_ms);
            p50s.push(lat.p50_ms);
            missing += expected.saturating_sub(delivered);
        }
        // Let the `notification:count` that follows each broadcast settle.
        settle(1500).await;
    }
    workers.close().await?;
    out.set("bcast.users", expected as f64);
    if let Some(v) = median(&lasts) {
        out.set("bcast.last_ms", v);
    }
    if let Some(v) = median(&p50s) {
        out.set("bcast.p50_ms", v);
    }
    out.set("bcast.missing", missing as f64);
    Ok(())
}

/// A row of the table: keys shown as `first (others)`, the first carries the ratio.
struct Row {
    keys: &'static [&'static str],
    label: &'static str,
    decimals: usize,
    ratio: bool,
}

const fn row(
    keys: &'static [&'static str],
    label: &'static str,
    decimals: usize,
    ratio: bool,
) -> Row {
    Row {
        keys,
        label,
        decimals,
        ratio,
    }
}

const ROWS: &[Row] = &[
    row(
        &["chat.p50"],
        "chat delivery p50, ms (send → `message:created`)",
        2,
        true,
    ),
    row(&["chat.p99"], "chat delivery p99, ms", 2, true),
    row(&["chat.p999"], "chat delivery p99.9, ms", 2, true),
    row(&["chat.max"], "chat delivery max, ms", 2, true),
    row(
        &["chat.a_p99", "chat.a_p50"],
        "… p99 (p50) to the receivers on node A, with the senders, ms",
        2,
        true,
    ),
    row(
        &["chat.b_p99", "chat.b_p50"],
        "… p99 (p50) to the receivers on node B (one node: the same half, on A), ms",
        2,
        true,
    ),
    row(&["chat.ack_p50"], "chat ack p50, ms", 2, true),
    row(&["chat.ack_p99"], "chat ack p99, ms", 2, true),
    row(
        &["chat.rate"],
        "chat messages/s acked (offered rate in the notes)",
        0,
        true,
    ),
    row(
        &["chat.missing", "chat.errors"],
        "chat missing deliveries (error acks)",
        0,
        false,
    ),
    row(
        &["chat.cpu_ms_per_msg"],
        "server CPU-ms per message, all nodes",
        2,
        true,
    ),
    row(
        &["chat.db_ms_per_msg"],
        "PostgreSQL CPU-ms per message",
        2,
        true,
    ),
    row(&["bcast.users"], "broadcast: connected users", 0, false),
    row(
        &["bcast.last_ms"],
        "broadcast: time to last delivery, ms",
        1,
        true,
    ),
    row(&["bcast.p50_ms"], "broadcast: median delivery, ms", 1, true),
    row(
        &["bcast.missing"],
        "broadcast: missing deliveries",
        0,
        false,
    ),
];

/// The markdown table: one column per setup, ratios two nodes ÷ one node.
pub fn render(results: &BTreeMap<Setup, Vec<Outcome>>, setups: &[Setup]) -> String {
    let one = results.get(&Setup::One);
    let mut t = String::from("| figure |");
    let mut rule = String::from("| --- |");
    for &s in setups {
        let _ = write!(t, " {} |", s.label());
        rule.push_str(" ---: |");
        if s != Setup::One && one.is_some() {
            t.push_str(" ÷ one node |");
            rule.push_str(" ---: |");
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "{rule}");
    for r in ROWS {
        let columns: Vec<Vec<Option<f64>>> = setups
            .iter()
            .map(|s| r.keys.iter().map(|k| medians(results.get(s), k)).collect())
            .collect();
        if columns.iter().flatten().all(Option::is_none) {
            continue;
        }
        let base = r.keys.first().and_then(|k| medians(one, k));
        let _ = write!(t, "| {} |", r.label);
        for (&s, values) in setups.iter().zip(&columns) {
            let _ = write!(t, " {} |", cell(values, r.decimals));
            if s != Setup::One && one.is_some() {
                let ratio = match (values.first().copied().flatten(), base) {
                    (Some(a), Some(b)) if r.ratio && b != 0.0 => format!("{:.2}×", a / b),
                    _ => "–".to_owned(),
                };
                let _ = write!(t, " {ratio} |");
            }
        }
        let _ = writeln!(t);
    }
    t
}

/// The whole report: header, table, method, details.
async fn document(
    opts: &Options,
    results: &BTreeMap<Setup, Vec<Outcome>>,
    date: &str,
    commit: &str,
    elapsed: Duration,
) -> String {
    let mode = if opts.quick { "quick" } else { "full" };
    let redis = redis_version(&opts.redis_url).await;
    let binary = if opts.build {
        format!(
            "`{}`, built from commit {commit}",
            opts.env.switchboard_bin.display()
        )
    } else {
        format!(
            "`{}` (not built by this run; the tree was at commit {commit})",
            opts.env.switchboard_bin.display()
        )
    };
    let mut t = format!(
        "# Switchboard cluster: one node vs two nodes, {mode} run, {date}\n\n\
         Command: `{}`  \n\
         Switchboard: {binary}  \n\
         Duration: {:.1} min; {} repetition(s) per setup, medians shown; ratio = two nodes ÷ one node.  \n\
         Machine: {}; Redis {redis}\n\n",
        opts.command,
        elapsed.as_secs_f64() / 60.0,
        opts.reps,
        machine(&opts.env).await,
    );
    t.push_str(&render(results, &opts.setups));
    let _ = write!(
        t,
        "\nWorkload, the same for every setup: {rooms} rooms of {ROOM} members on `/chat`, the \
         {half} even members of each room on node A sending `message:send` round-robin at \
         {rate:.0} messages/s (open loop, {secs:.0} s after a 2 s warm-up at 100/s), the {half} \
         odd members on node B (one node: on node A too), so {cross} of each message's {FANOUT} \
         deliveries cross nodes. Delivery latency runs from the send time in the payload to the \
         receipt of `message:created` (one machine, one clock), over every delivery of the step; \
         ack latency from the emit to the ack. Then {users} users on `/notifications`, half on \
         each node, and `POST /api/notifications/broadcast` on node A: {rounds} broadcasts after \
         one warm-up, medians. Each setup runs on freshly started server processes and an \
         emptied database; the two nodes of a pair are the same binary on two ports, same \
         database, same `ADAPTER_PREFIX`. Server CPU is utime+stime of the node processes; \
         PostgreSQL CPU that of the benchmark database's backends (with the postgres adapter \
         it includes the NOTIFY/LISTEN traffic).\n\n\
         The load generator, PostgreSQL, Redis and the nodes share the machine's cores. Other \
         work on the machine (builds, test suites) skews the figures: each setup waits up to \
         10 s for a quiet machine and its notes say what it saw.\n",
        rooms = opts.rooms(),
        half = ROOM / 2,
        cross = ROOM / 2,
        rate = opts.rate,
        secs = opts.step_ms() as f64 / 1000.0,
        users = opts.users(),
        rounds = opts.rounds(),
    );
    t.push_str("\n<details><summary>Every run</summary>\n");
    for (setup, runs) in results {
        for (i, o) in runs.iter().enumerate() {
            let _ = writeln!(t, "\n**{} · run {}**\n", setup.label(), i + 1);
            for n in &o.notes {
                let _ = writeln!(t, "- {n}");
            }
        }
    }
    t.push_str("\n</details>\n");
    t
}

/// The commit the server was built from, and whether its sources had changes on top.
pub(crate) async fn server_commit(root: &Path) -> String {
    let git = |args: &'static [&'static str]| async move {
        tokio::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .await
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).await;
    if head.is_empty() {
        return "unknown".to_owned();
    }
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "migrations",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .await;
    if changed.is_empty() {
        head
    } else {
        format!("{head} with uncommitted changes to the server")
    }
}

/// `redis_version` from `INFO server`, or what went wrong.
async fn redis_version(url: &str) -> String {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-u", url, "INFO", "server"])
        .output()
        .await;
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("redis_version:").map(str::to_owned))
            .unwrap_or_else(|| "(version unknown)".to_owned()),
        Err(_) => "(redis-cli not found)".to_owned(),
    }
}

fn write_results(out: &Path, text: &str, date: &str) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
        let stamp: String = date
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        std::fs::write(dir.join(format!("cluster-{stamp}.md")), text)?;
    }
    std::fs::write(out, text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setups_parse_and_table_shows_ratios() {
        assert_eq!(Setup::parse("Redis"), Some(Setup::Redis));
        assert_eq!(Setup::parse("local"), Some(Setup::One));
        assert_eq!(Setup::parse("three"), None);
        let mut results = BTreeMap::new();
        for (setup, p99) in [(Setup::One, 4.0), (Setup::Postgres, 6.0)] {
            let mut o = Outcome::default();
            o.set("chat.p99", p99);
            o.set("chat.missing", 0.0);
            results.insert(setup, vec![o]);
        }
        let t = render(&results, &[Setup::One, Setup::Postgres, Setup::Redis]);
        assert!(
            t.contains("| chat delivery p99, ms | 4.00 | 6.00 | 1.50× | n/a | – |"),
            "{t}"
        );
        assert!(t.contains("| chat missing deliveries (error acks) | 0 (n/a) | 0 (n/a) | – |"));
    }
}
