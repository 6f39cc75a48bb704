//! S2: ack round trips without the database. Clients on `/notifications` emit
//! `notification:ping` (answered with a `pong` event and an ack) at a fixed open-loop
//! rate, in steps of increasing rate. The saturation rate is the highest step whose
//! emits were all acked with p99 ≤ 50 ms; acks per server CPU-second are read there.
//! Then, at half that rate, steps alternate without and with `GET /metrics` every second
//! (where the server has it): the server's CPU per ack with scraping over without it is
//! what the metrics cost on the hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Ctx, Outcome, Step, measure_step, plain_client};
use crate::pool::Workers;
use crate::util::Result;
use crate::worker::LoadTemplate;

const NS: &str = "/notifications";
const FIRST_USER: i64 = 200_000;
/// p99 bound of a sustained step.
const P99_MS: f64 = 50.0;

/// Runs S2.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let n = s.pick(200, 500);
    let step_ms = s.pick(2500, 5000);
    let rates: Vec<f64> = s.pick(
        vec![
            2000.0, 4000.0, 8000.0, 15_000.0, 26_000.0, 45_000.0, 80_000.0, 130_000.0,
        ],
        vec![
            2000.0, 4000.0, 6000.0, 8000.0, 11_000.0, 15_000.0, 20_000.0, 26_000.0, 34_000.0,
            45_000.0, 60_000.0, 80_000.0, 100_000.0, 130_000.0,
        ],
    );
    let mut out = Outcome::default();
    let clients = (0..n)
        .map(|i| {
            let mut c = plain_client(FIRST_USER + i);
            c.load = Some(LoadTemplate {
                event: "notification:ping".to_owned(),
                payload: "{\"action\":\"ping\"}".to_owned(),
            });
            c
        })
        .collect();
    let (mut workers, connected) = ctx.open_clients(NS, clients, &[], 100).await?;
    if connected.failed > 0 {
        out.note(format!(
            "{} clients failed to connect: {:?}",
            connected.failed, connected.errors
        ));
    }
    // Warm-up (JIT, buffers, pool of the generator).
    let warm = measure_step(ctx, &mut workers, 2000.0, 2000, None).await?;
    out.note(format!("warm-up: {}", warm.describe()));

    let mut best: Option<Step> = None;
    for rate in s.ramp(&rates) {
        let step = measure_step(ctx, &mut workers, rate, step_ms, None).await?;
        out.note(step.describe());
        if step.complete && step.ack.p99_ms <= P99_MS {
            best = Some(step);
        } else {
            break;
        }
    }
    if let Some(b) = best {
        scrape_cost(ctx, &mut workers, b.achieved / 2.0, step_ms, &mut out).await?;
    }
    workers.close().await?;
    match best {
        Some(b) => {
            out.set("s2.saturation", b.achieved);
            out.set("s2.acks_per_cpu_s", b.acked as f64 / b.cpu_s.max(1e-3));
            if b.acked > 0 {
                out.set("s2.cpu_us_per_ack", b.cpu_s * 1e6 / b.acked as f64);
                out.set("s2.sys_us_per_ack", b.sys_s * 1e6 / b.acked as f64);
            }
            out.set("s2.p50_ms", b.ack.p50_ms);
            out.set("s2.p99_ms", b.ack.p99_ms);
            out.set("s2.p999_ms", b.ack.p999_ms);
            out.set("s2.max_ms", b.ack.max_ms);
        }
        None => out.note("no step was sustained"),
    }
    out.set("s2.rss_mib", ctx.usage()?.hwm_kib as f64 / 1024.0);
    Ok(out)
}

/// Server CPU per ack with `/metrics` scraped every second ÷ without, as a percentage
/// above 1, over alternating steps at `rate` (pairs, so drift hits both sides alike).
async fn scrape_cost(
    ctx: &Ctx<'_>,
    workers: &mut Workers,
    rate: f64,
    step_ms: u64,
    out: &mut Outcome,
) -> Result<()> {
    let url = format!("{}/metrics", ctx.base());
    let probe = ctx.http.get(&url).send().await?;
    if !probe.status().is_success() {
        out.note(format!(
            "no /metrics here ({}): scrape cost not measured",
            probe.status()
        ));
        return Ok(());
    }
    let size = probe.bytes().await?.len();
    let pairs = ctx.settings.pick(2, 3);
    let (mut plain, mut scraped) = ((0.0, 0u64), (0.0, 0u64));
    for _ in 0..pairs {
        let step = measure_step(ctx, workers, rate, step_ms, None).await?;
        out.note(format!("without scraping: {}", step.describe()));
        plain.0 += step.cpu_s;
        plain.1 += step.acked;

        let stop = Arc::new(AtomicBool::new(false));
        let scraper = tokio::spawn(scrape(ctx.http.clone(), url.clone(), stop.clone()));
        let step = measure_step(ctx, workers, rate, step_ms, None).await?;
        stop.store(true, Ordering::Relaxed);
        let (scrapes, failures) = scraper.await.unwrap_or((0, 1));
        out.note(format!(
            "scraping /metrics every second ({scrapes} scrapes of ~{} KiB, {failures} failed): {}",
            size / 1024,
            step.describe()
        ));
        scraped.0 += step.cpu_s;
        scraped.1 += step.acked;
    }
    if plain.1 > 0 && scraped.1 > 0 && plain.0 > 0.0 {
        let per_ack = |(cpu, acks): (f64, u64)| cpu / acks as f64;
        out.set(
            "s2.scrape_overhead_pct",
            (per_ack(scraped) / per_ack(plain) - 1.0) * 100.0,
        );
        out.set("s2.scrape_rate", rate);
    }
    Ok(())
}

/// `GET url` every second until `stop`; (scrapes answered 200, other outcomes).
async fn scrape(http: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let answered = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        };
        if answered {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    (ok, failed)
}
