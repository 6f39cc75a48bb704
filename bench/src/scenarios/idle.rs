//! S1: idle websocket connections on `/notifications`, ramped in steps up to 19,000
//! (5,000 in quick mode). Measures RSS per connection (RSS growth from the warmed-up
//! baseline to the last step, divided by the connections), the connect rate (websocket
//! handshake + socket.io CONNECT with a JWT, 100 in flight per worker), and optionally
//! holds the last step for minutes, counting connections the server dropped.
//!
//! S6: the same ramp with plain WebSocket connections on `/ws?token=` (envelope
//! dialect; each waits for its `auth_success`, so it is on its `user:` channel), against
//! the Node `ws` peer. No hold.

use std::time::{Duration, Instant};

use super::{Ctx, Outcome, plain_client, settle};
use crate::pool::{CLIENTS_PER_WORKER, Workers};
use crate::servers::Kind;
use crate::util::Result;
use crate::worker::Protocol;

const NS: &str = "/notifications";
const FIRST_USER: i64 = 100_000;
/// S6's users: apart from S1's, so no two scenarios share a token.
const FIRST_PLAIN_USER: i64 = 600_000;

/// Runs S1.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let hold = ctx.settings.hold_secs > 0
        && (ctx.server.kind == Kind::Switchboard || ctx.settings.hold_node);
    ramp(ctx, Protocol::SocketIo, "s1", FIRST_USER, hold).await
}

/// Runs S6.
pub async fn run_plain(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    ramp(ctx, Protocol::Plain, "s6", FIRST_PLAIN_USER, false).await
}

/// The ramp of idle connections speaking `protocol`; figures are named `<key>.…`.
async fn ramp(
    ctx: &mut Ctx<'_>,
    protocol: Protocol,
    key: &str,
    first_user: i64,
    hold: bool,
) -> Result<Outcome> {
    let s = ctx.settings;
    let k = |name: &str| format!("{key}.{name}");
    let steps: Vec<usize> = s.pick(vec![1000, 2500, 5000], vec![1000, 5000, 10_000, 19_000]);
    let total = steps.last().copied().unwrap_or(0);
    let mut out = Outcome::default();

    // Warm-up: 300 connections opened and closed, so lazily built state (JIT, pools,
    // allocator arenas) is in the baseline rather than in the per-connection figure.
    {
        let clients = (0..300)
            .map(|i| plain_client(first_user - 1000 + i))
            .collect();
        let (workers, warm) = ctx.open_clients_as(protocol, NS, clients, &[], 50).await?;
        if warm.failed > 0 {
            out.note(format!(
                "warm-up: {} of 300 failed, e.g. {:?}",
                warm.failed,
                warm.errors.first()
            ));
        }
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
            .map(|i| plain_client(first_user + i as i64))
            .collect();
        let jobs = ctx.split_as(protocol, NS, clients, &[], 100, n_workers);
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
    out.set(&k("conns"), conns);
    out.set(
        &k("rss_per_conn_kib"),
        last.rss_kib.saturating_sub(base.rss_kib) as f64 / conns.max(1.0),
    );
    // Growth from the first step to the last: the cost of one more connection once
    // the process has warmed up (Node's heap is partly reserved in the baseline).
    if let Some((n0, rss0)) = first
        && open > n0
    {
        out.set(
            &k("marginal_kib"),
            last.rss_kib.saturating_sub(rss0) as f64 / (open - n0) as f64,
        );
    }
    out.set(&k("rss_mib"), last.rss_kib as f64 / 1024.0);
    out.set(&k("connect_rate"), conns / (connect_ms / 1000.0).max(1e-3));
    out.set(&k("cpu_s"), last.cpu_s - base.cpu_s);
    out.set(&k("failed"), failed as f64);

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
        out.set(&k("hold_dropped"), dropped.max(c.dropped) as f64);
        out.set(&k("hold_secs"), s.hold_secs as f64);
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
