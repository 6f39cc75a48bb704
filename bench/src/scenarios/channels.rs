//! S7: channel fan-out over plain WebSocket. 500 channels (100 in quick mode) × 20
//! subscribers: each subscriber is its own connection on `/ws?token=` (envelope
//! dialect, its own user) subscribed to one `public:fanout-<c>` channel, so 10,000
//! connections (2,000 quick). `POST /api/publish` at a fixed open-loop rate (500/s
//! full, 200/s quick; `--rates` sets another), round-robin over the channels; each
//! publish must reach the 20 subscribers of its channel once. Same offered load for
//! both servers: deliveries per server CPU-second and delivery latency (request sent →
//! message received; the payload carries the send time) are compared.

use std::time::Duration;

use serde_json::json;

use super::{Ctx, Outcome, plain_client, settle};
use crate::rest;
use crate::token;
use crate::util::{Latency, Result, epoch_us};
use crate::worker::{Protocol, SetupEmit};

const FIRST_USER: i64 = 800_000;
const SUBSCRIBERS: usize = 20;
/// The envelope `type` of what is published (and tracked by the workers).
const KIND: &str = "bench_tick";

fn channel(c: usize) -> String {
    format!("public:fanout-{c}")
}

/// Runs S7.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let channels = s.pick(100, 500);
    let rate = s
        .rates
        .first()
        .copied()
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(s.pick(200.0, 500.0));
    let seconds = s.pick(8, 20);
    let mut out = Outcome::default();
    let service = token::service(&s.env.secret)?;
    let url = format!("{}/api/publish", ctx.base());

    let mut clients = Vec::with_capacity(channels * SUBSCRIBERS);
    for c in 0..channels {
        for k in 0..SUBSCRIBERS {
            let mut client = plain_client(FIRST_USER + (c * SUBSCRIBERS + k) as i64);
            client.setup.push(SetupEmit {
                event: "subscribe".to_owned(),
                payload: json!({ "channel": channel(c) }),
            });
            clients.push(client);
        }
    }
    let (mut workers, connected) = ctx
        .open_clients_as(Protocol::Plain, "/ws", clients, &[KIND], 100)
        .await?;
    out.note(format!(
        "{} subscribers connected in {:.0} ms ({} failed{})",
        connected.ok,
        connected.elapsed_ms,
        connected.failed,
        connected
            .errors
            .first()
            .map(|e| format!(", e.g. {e}"))
            .unwrap_or_default()
    ));
    out.set("s7.conns", connected.ok as f64);
    let publish = |n: u64, c: usize| {
        let body = json!({
            "channel": channel(c),
            "type": KIND,
            "payload": { "seq": n, "sent": format!("@T{}", epoch_us()) }
        });
        (url.clone(), body)
    };

    // Warm-up: two seconds at the measured rate.
    let warm_total = (rate * 2.0) as u64;
    let warm = rest::open_loop(&ctx.http, &service, rate, warm_total, |n| {
        publish(n, n as usize % channels)
    })
    .await;
    workers
        .await_deliveries(warm.ok * SUBSCRIBERS as u64, Duration::from_secs(10))
        .await?;
    settle(500).await;
    workers.stats(true).await?;

    let before = ctx.usage()?;
    let own = || {
        crate::procstat::read(std::process::id())
            .map(|u| u.cpu_s)
            .unwrap_or(0.0)
    };
    let gen_before = workers.cpu_s() + own();
    let total = (rate * seconds as f64) as u64;
    let sent = rest::open_loop(&ctx.http, &service, rate, total, |n| {
        publish(warm_total + n, n as usize % channels)
    })
    .await;
    let expected = sent.ok * SUBSCRIBERS as u64;
    let got = workers
        .await_deliveries(expected, Duration::from_secs(15))
        .await?;
    let after = ctx.usage()?;
    let gen_cpu = workers.cpu_s() + own() - gen_before;
    let stats = workers.stats(true).await?;
    let closed = workers.close().await?;
    let cpu = after.cpu_s - before.cpu_s;
    let sys = after.sys_s - before.sys_s;
    let delivery = Latency::of(&stats.deliveries);
    out.note(format!(
        "{} publishes to {channels} channels at {rate:.0}/s for {seconds} s ({} HTTP errors, POST {}), {got} of {expected} deliveries, CPU-s server {cpu:.2} (kernel {sys:.2}) / generator {gen_cpu:.2}, delivery {}",
        sent.ok,
        sent.failed,
        sent.http.describe(),
        delivery.describe()
    ));
    if let Some(e) = &sent.first_error {
        out.note(format!("first HTTP error: {e}"));
    }
    out.set("s7.rate", rate);
    out.set_fanout(
        "s7",
        &super::FanoutRun {
            delivered: stats.delivered,
            expected,
            http_errors: sent.failed,
            cpu_s: cpu,
            sys_s: sys,
            delivery: &delivery,
            hwm_kib: after.hwm_kib,
        },
    );
    if closed.dropped > 0 {
        out.note(format!(
            "{} subscribers dropped by the server",
            closed.dropped
        ));
    }
    Ok(out)
}
