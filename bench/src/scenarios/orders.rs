//! S4: order events fanned out. Restaurants (500; 100 in quick mode) with 20 tablets
//! each on the default namespace, every tablet in `restaurant:<id>` (`join:restaurant`)
//! and four of them also in a station room (`join:station`). Orders are created through
//! `POST /api/restaurants/:id/orders` at a fixed open-loop rate, round-robin over the
//! restaurants; each must reach the 20 tablets of its restaurant once as `order:created`.
//! Same offered load for both servers: deliveries per server CPU-second and delivery
//! latency (request sent → event received) are compared.
//!
//! Restaurant support is being built in Switchboard; when `POST /api/restaurants`
//! answers 404 the scenario reports "not available" instead of figures.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{Ctx, Outcome, plain_client, settle};
use crate::rest::{self, Posted};
use crate::token;
use crate::util::{Latency, Result, epoch_us};
use crate::worker::SetupEmit;

const NS: &str = "/";
const FIRST_USER: i64 = 400_000;
const TABLETS: usize = 20;
const STATIONS: [&str; 4] = ["kitchen", "bar", "expo", "pos"];

/// Runs S4.
pub async fn run(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let s = ctx.settings;
    let restaurants = s.pick(100, 500);
    let rate = s.pick(100.0, 200.0);
    let seconds = s.pick(8, 20);
    let mut out = Outcome::default();
    let base = ctx.base();
    let service = token::service(&s.env.secret)?;

    // Availability and restaurants.
    let ids: Vec<String> = (0..restaurants)
        .map(|r| restaurant_id(ctx.run, r))
        .collect();
    for (r, id) in ids.iter().enumerate() {
        let (status, body) = rest::post(
            &ctx.http,
            &format!("{base}/api/restaurants"),
            &service,
            &json!({ "id": id, "name": format!("Bench {r}") }),
        )
        .await?;
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            out.unavailable = Some(format!(
                "POST /api/restaurants answered {status}: restaurant routes not available"
            ));
            return Ok(out);
        }
        if !status.is_success() {
            return Err(format!("create restaurant: {status} {body}").into());
        }
    }

    let mut clients = Vec::with_capacity(restaurants * TABLETS);
    for (r, id) in ids.iter().enumerate() {
        for k in 0..TABLETS {
            let mut c = plain_client(FIRST_USER + (r * TABLETS + k) as i64);
            c.roles = vec!["staff".to_owned()];
            c.restaurants = vec![id.clone()];
            c.setup.push(SetupEmit {
                event: "join:restaurant".to_owned(),
                payload: json!({ "restaurantId": id }),
            });
            if let Some(station) = STATIONS.get(k) {
                c.setup.push(SetupEmit {
                    event: "join:station".to_owned(),
                    payload: json!({ "restaurantId": id, "station": station }),
                });
            }
            clients.push(c);
        }
    }
    let (mut workers, connected) = ctx
        .open_clients(NS, clients, &["order:created"], 100)
        .await?;
    if connected.failed > 0 {
        out.note(format!(
            "{} tablets failed: {:?}",
            connected.failed, connected.errors
        ));
    }
    let ids = Arc::new(ids);

    // Warm-up.
    let warm = post_orders(ctx, &service, &ids, 20.0, 3, 0).await?;
    workers
        .await_deliveries(warm.ok * TABLETS as u64, Duration::from_secs(10))
        .await?;
    settle(500).await;
    workers.stats(true).await?;

    let before = ctx.usage()?;
    let own = || {
        crate::procstat::read(std::process::id())
            .map(|u| u.cpu_s)
            .unwrap_or(0.0)
    };
    let (gen_before, db_before) = (workers.cpu_s() + own(), ctx.db_cpu());
    let sent = post_orders(ctx, &service, &ids, rate, seconds, 1_000_000).await?;
    let expected = sent.ok * TABLETS as u64;
    let got = workers
        .await_deliveries(expected, Duration::from_secs(15))
        .await?;
    let after = ctx.usage()?;
    let (gen_cpu, db_cpu) = (
        workers.cpu_s() + own() - gen_before,
        ctx.db_cpu() - db_before,
    );
    let stats = workers.stats(true).await?;
    let closed = workers.close().await?;
    let cpu = after.cpu_s - before.cpu_s;
    let sys = after.sys_s - before.sys_s;
    let delivery = Latency::of(&stats.deliveries);
    out.note(format!(
        "{} orders at {rate:.0}/s for {seconds} s ({} HTTP errors, POST {}), {} of {expected} deliveries, CPU-s server {cpu:.2} (kernel {sys:.2}) / generator {gen_cpu:.2} / postgres {db_cpu:.2}, delivery {}",
        sent.ok,
        sent.failed,
        sent.http.describe(),
        got,
        delivery.describe()
    ));
    if let Some(e) = &sent.first_error {
        out.note(format!("first HTTP error: {e}"));
    }
    out.set_fanout(
        "s4",
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
        out.note(format!("{} tablets dropped by the server", closed.dropped));
    }
    Ok(out)
}

/// A restaurant id unique to this run and index (a valid UUID).
fn restaurant_id(run: u32, r: usize) -> String {
    format!("00000000-0000-4000-8{:03x}-{:012x}", run % 4096, r)
}

/// Creates orders at `rate` per second for `seconds`, open loop (at most 256 requests
/// in flight), each carrying its send time in the first item's notes.
async fn post_orders(
    ctx: &Ctx<'_>,
    token: &str,
    ids: &Arc<Vec<String>>,
    rate: f64,
    seconds: u64,
    first_number: u64,
) -> Result<Posted> {
    let total = (rate * seconds as f64) as u64;
    let base = ctx.base();
    Ok(rest::open_loop(&ctx.http, token, rate, total, |n| {
        let restaurant = &ids[(n as usize) % ids.len()];
        let url = format!("{base}/api/restaurants/{restaurant}/orders");
        let body = json!({
            "order_number": format!("B{}", first_number + n),
            "type": "dine_in",
            "table_number": format!("{}", n % 40 + 1),
            "items": [
                { "name": "Burger", "quantity": 1, "station": "kitchen", "notes": format!("@T{}", epoch_us()) },
                { "name": "Lager", "quantity": 2, "station": "bar" }
            ],
            "total": 23.5
        });
        (url, body)
    })
    .await)
}
