//! S2: ack round trips without the database. Clients on `/notifications` emit
//! `notification:ping` (answered with a `pong` event and an ack) at a fixed open-loop
//! rate, in steps of increasing rate. The saturation rate is the highest step whose
//! emits were all acked with p99 ≤ 50 ms; acks per server CPU-second are read there.

use super::{Ctx, Outcome, Step, measure_step, plain_client};
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
    workers.close().await?;
    match best {
        Some(b) => {
            out.set("s2.saturation", b.achieved);
            out.set("s2.acks_per_cpu_s", b.acked as f64 / b.cpu_s.max(1e-3));
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
