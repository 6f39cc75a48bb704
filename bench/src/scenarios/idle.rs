//! S1: idle websocket connections on `/notifications`, ramped in steps up to 19,000
//! (5,000 in quick mode). Measures RSS per connection (RSS growth from the warmed-up
//! baseline to the last step, divided by the connections), the connect rate (websocket
//! handshake + socket.io CONNECT with a JWT, 100 in flight per worker), and optionally
//! holds the last step for minutes, counting connections the server dropped.

use std::time::{Duration, Instant};

use super::{Ctx, Outcome, plain_client, settle};
use crate::pool::{CLIENTS_PER_WORKER, Workers};
use crate::servers::Kind;
use crate::util::Result;

const NS: &str = "/notifications";
const FIRST_USER: i64 = 100_000;

/// Runs S1.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let steps: Vec<usize> = s.pick(vec![1000, 2500, 5000], vec![1000, 5000, 10_000, 19_000]);
    let total = steps.last().copied().unwrap_or(0);
    let mut out = Outcome::default();

    // Warm-up: 300 connections opened and closed, so lazily built state (JIT, pools,
    // allocator arenas) is in the baseline rather than in the per-connection figure.
    {
        let clients = (0..300)
            .map(|i| plain_client(FIRST_USER - 1000 + i))
            .collect();
        let (workers, _) = ctx.open_clients(NS, clients, &[], 50).await?;
        workers.close().await?;
    }
    settle(3000).await;
    let base = ctx.usage()?;
    out.note(format!(
        "baseline after warm-up: RSS {:.1} MiB",
        base.rss_kib as f64 / 1024.0
    ));

    let n_workers = total.div_ceil(CLIENTS_PER_WORKER).max(1);
    let mut workers = Workers::spawn(n_workers).await?;
    let mut open = 0usize;
    let mut connect_ms = 0.0;
    let mut failed = 0u64;
    let mut last = base;
    let mut first: Option<(usize, u64)> = None;
    for &step in &steps {
        let clients = (open..step)
            .map(|i| plain_client(FIRST_USER + i as i64))
            .collect();
        let jobs = ctx.split(NS, clients, &[], 100, n_workers);
        let c = workers.connect(jobs).await?;
        connect_ms += c.elapsed_ms;
        failed += c.failed;
        if let Some(e) = c.errors.first() {
            out.note(format!("step {step}: {} failed, e.g. {e}", c.failed));
        }
        open = step;
        settle(3000).await;
        last = ctx.usage()?;
        first.get_or_insert((open, last.rss_kib));
        let conns = open as f64 - failed as f64;
        out.note(format!(
            "{step} connections: RSS {:.1} MiB ({:.1} KiB/conn over baseline), batch connected in {:.0} ms ({:.0}/s)",
            last.rss_kib as f64 / 1024.0,
            (last.rss_kib.saturating_sub(base.rss_kib)) as f64 / conns.max(1.0),
            c.elapsed_ms,
            c.ok as f64 / (c.elapsed_ms / 1000.0).max(1e-3),
        ));
    }
    let conns = (open as u64).saturating_sub(failed) as f64;
    out.set("s1.conns", conns);
    out.set(
        "s1.rss_per_conn_kib",
        last.rss_kib.saturating_sub(base.rss_kib) as f64 / conns.max(1.0),
    );
    // Growth from the first step to the last: the cost of one more connection once
    // the process has warmed up (Node's heap is partly reserved in the baseline).
    if let Some((n0, rss0)) = first
        && open > n0
    {
        out.set(
            "s1.marginal_kib",
            last.rss_kib.saturating_sub(rss0) as f64 / (open - n0) as f64,
        );
    }
    out.set("s1.rss_mib", last.rss_kib as f64 / 1024.0);
    out.set("s1.connect_rate", conns / (connect_ms / 1000.0).max(1e-3));
    out.set("s1.cpu_s", last.cpu_s - base.cpu_s);
    out.set("s1.failed", failed as f64);

    let hold = s.hold_secs > 0 && (ctx.server.kind == Kind::Switchboard || s.hold_node);
    if hold {
        let started = Instant::now();
        let until = started + Duration::from_secs(s.hold_secs);
        let mut dropped = 0;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(30).min(until - Instant::now())).await;
            let c = workers.count().await?;
            dropped = c.dropped;
            if !ctx.server.alive() {
                return Err("server exited during the hold".into());
            }
        }
        let c = workers.count().await?;
        let u = ctx.usage()?;
        out.set("s1.hold_dropped", dropped.max(c.dropped) as f64);
        out.set("s1.hold_secs", s.hold_secs as f64);
        out.note(format!(
            "held {} connections for {} s: {} dropped, {} still open; RSS {:.1} MiB, CPU {:.2} s during the hold",
            conns,
            s.hold_secs,
            c.dropped,
            c.open,
            u.rss_kib as f64 / 1024.0,
            u.cpu_s - last.cpu_s
        ));
    }
    let end = workers.close().await?;
    if !hold && end.dropped > 0 {
        out.note(format!("{} connections dropped by the server", end.dropped));
    }
    Ok(out)
}
