//! S5: one broadcast notification to every connected user. 10,000 users (2,000 in
//! quick mode) on `/notifications`; `POST /api/notifications/broadcast` stores one row
//! and emits `notification:created` to every socket. Time to last delivery = the
//! latest receipt minus the moment the request was sent; five broadcasts after one
//! warm-up, median.

use std::time::Duration;

use serde_json::json;

use super::{Ctx, Outcome, plain_client, settle};
use crate::rest;
use crate::token;
use crate::util::{Latency, Result, epoch_us, median};

const NS: &str = "/notifications";
const FIRST_USER: i64 = 500_000;
const ROUNDS: usize = 5;

/// Runs S5.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let users: i64 = s.pick(2000, 10_000);
    let mut out = Outcome::default();
    let service = token::service(&s.env.secret)?;
    let url = format!("{}/api/notifications/broadcast", ctx.base());
    let clients = (0..users).map(|i| plain_client(FIRST_USER + i)).collect();
    let (mut workers, connected) = ctx
        .open_clients(NS, clients, &["notification:created"], 100)
        .await?;
    let expected = connected.ok;
    if connected.failed > 0 {
        out.note(format!(
            "{} users failed: {:?}",
            connected.failed, connected.errors
        ));
    }
    settle(1000).await;

    let mut lasts = Vec::new();
    let mut p50s = Vec::new();
    let mut missing = 0;
    for round in 0..=ROUNDS {
        workers.stats(true).await?;
        let before = ctx.usage()?;
        let gen_before = workers.cpu_s();
        let sent_us = epoch_us();
        let (status, body) = rest::post(
            &ctx.http,
            &url,
            &service,
            &json!({ "type": "system", "title": "bench", "content": format!("broadcast @T{sent_us}") }),
        )
        .await?;
        if !status.is_success() {
            return Err(format!("broadcast: {status} {body}").into());
        }
        workers
            .await_deliveries(expected, Duration::from_secs(30))
            .await?;
        let stats = workers.stats(true).await?;
        let after = ctx.usage()?;
        let gen_cpu_s = workers.cpu_s() - gen_before;
        let last_ms = stats.last_recv_us.saturating_sub(sent_us) as f64 / 1000.0;
        let lat = Latency::of(&stats.deliveries);
        let label = if round == 0 { "warm-up" } else { "broadcast" };
        out.note(format!(
            "{label}: {} of {expected} delivered, last after {last_ms:.1} ms, {}, CPU-s server {:.2} (whole request incl. counts) / generator {gen_cpu_s:.2}",
            stats.delivered,
            lat.describe(),
            after.cpu_s - before.cpu_s
        ));
        if round > 0 {
            lasts.push(last_ms);
            p50s.push(lat.p50_ms);
            missing += expected.saturating_sub(stats.delivered);
        }
        // Let the `notification:count` that follows each broadcast settle.
        settle(1500).await;
    }
    let closed = workers.close().await?;
    if let Some(v) = median(&lasts) {
        out.set("s5.last_delivery_ms", v);
    }
    if let Some(v) = median(&p50s) {
        out.set("s5.p50_delivery_ms", v);
    }
    out.set("s5.missing", missing as f64);
    out.set("s5.users", expected as f64);
    out.set("s5.rss_mib", ctx.usage()?.hwm_kib as f64 / 1024.0);
    if closed.dropped > 0 {
        out.note(format!("{} users dropped by the server", closed.dropped));
    }
    Ok(out)
}
