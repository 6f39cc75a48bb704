//! `sbbench check`: the generator's client against the official `socket.io-client`.
//!
//! Against each server in turn, `bench/peers/node/check-client.mjs` (socket.io-client
//! 4.8) and this crate's client do the same thing: connect to `/notifications` (the
//! `notification:count` on connect), 200 `notification:ping` round trips (ack and
//! `pong`), then two users in a new group on `/chat`, 50 `message:send` from one,
//! `message:created` at the other. Both print the same report: counts, latencies and
//! the shape of every payload (keys and value types). The shapes and counts must be
//! equal, and the generator must not measure the server slower than the official
//! client does, for its figures to stand for what a real client sees. The open-loop worker path is also run once at low load.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::Conn;
use crate::compare;
use crate::db;
use crate::pool::Workers;
use crate::proto;
use crate::rest;
use crate::scenarios::plain_client;
use crate::servers::{Env, Kind, Server};
use crate::token;
use crate::util::{Latency, Result, epoch_us, new_histogram};
use crate::worker::{ConnectJob, LoadTemplate};

const PINGS: usize = 200;
const MESSAGES: usize = 50;

/// What either client observed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CheckReport {
    /// `socket.io-client` or `sbbench`.
    pub client: String,
    /// Time to a connected `/notifications` socket.
    pub connect_ms: f64,
    /// Shape of the `notification:count` received on connect ("" when none).
    pub count_shape: String,
    /// Pings acked with `ok: true`.
    pub ping_ok: u64,
    /// `pong` events received.
    pub pongs: u64,
    /// Ping round trip, median.
    pub ping_p50_ms: f64,
    /// Ping round trip, 99th percentile.
    pub ping_p99_ms: f64,
    /// Shape of a ping ack.
    pub ping_ack_shape: String,
    /// Shape of a `pong`.
    pub pong_shape: String,
    /// Messages acked with `ok: true`.
    pub chat_ok: u64,
    /// `message:created` received by the other member.
    pub chat_delivered: u64,
    /// `message:send` round trip, median.
    pub chat_ack_p50_ms: f64,
    /// Send → `message:created` at the other member, median.
    pub delivery_p50_ms: f64,
    /// Shape of a `message:send` ack.
    pub message_ack_shape: String,
    /// Shape of a `message:created`.
    pub created_shape: String,
}

/// The shape of a JSON value: keys (sorted) and value types, recursively. The same
/// function is in `check-client.mjs`.
pub fn shape(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "b".to_owned(),
        Value::Number(_) => "n".to_owned(),
        Value::String(_) => "s".to_owned(),
        Value::Array(items) => format!("[{}]", items.first().map(shape).unwrap_or_default()),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", shape(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

/// The first argument of an event or ack body (`["name", arg]` / `[arg]`).
fn arg(body: &str, skip_name: bool) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v.get(usize::from(skip_name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The generator's side of the check.
async fn with_generator(server: SocketAddr, secret: &str, a: i64, b: i64) -> Result<CheckReport> {
    let mut r = CheckReport {
        client: "sbbench".to_owned(),
        ..CheckReport::default()
    };
    let auth = |user: i64| -> Result<String> {
        let t = token::sign(secret, user, &["user".to_owned()], &[])?;
        Ok(json!({ "token": t }).to_string())
    };
    let deadline = || Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    let mut n = Conn::connect(server, None, "/notifications", &auth(a)?, deadline()).await?;
    r.connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    n.keep_events = true;
    if let Ok(body) = n
        .next_event("notification:count", Duration::from_secs(2))
        .await
    {
        r.count_shape = shape(&arg(&body, true));
    }
    let mut rtt = new_histogram();
    for _ in 0..PINGS {
        let (d, body) = n
            .emit_ack(
                "notification:ping",
                "{\"action\":\"ping\"}",
                Duration::from_secs(5),
            )
            .await?;
        let _ = rtt.record((d.as_micros() as u64).max(1));
        if proto::ack_is_success(&body) {
            r.ping_ok += 1;
        }
        r.ping_ack_shape = shape(&arg(&body, false));
        if let Ok(pong) = n.next_event("pong", Duration::from_secs(1)).await {
            r.pongs += 1;
            r.pong_shape = shape(&arg(&pong, true));
        }
    }
    let l = Latency::of(&rtt);
    r.ping_p50_ms = l.p50_ms;
    r.ping_p99_ms = l.p99_ms;
    n.close().await;

    let http = reqwest::Client::new();
    let owner = token::sign(secret, a, &["user".to_owned()], &[])?;
    let id =
        rest::create_group(&http, &format!("http://{server}"), &owner, "check", &[a, b]).await?;
    let mut sender = Conn::connect(server, None, "/chat", &auth(a)?, deadline()).await?;
    let mut receiver = Conn::connect(server, None, "/chat", &auth(b)?, deadline()).await?;
    let join = json!({ "conversationId": id }).to_string();
    for c in [&mut sender, &mut receiver] {
        let (_, body) = c
            .emit_ack("conversation:join", &join, Duration::from_secs(5))
            .await?;
        if !proto::ack_is_success(&body) {
            return Err(format!("conversation:join refused: {body}").into());
        }
    }
    // The receiver reads on its own task so a delivery is timed when it arrives.
    let reading = tokio::spawn(async move {
        let mut lat = new_histogram();
        let mut shape_seen = String::new();
        let mut got = 0u64;
        while got < MESSAGES as u64 {
            let Ok(body) = receiver
                .next_event("message:created", Duration::from_secs(5))
                .await
            else {
                break;
            };
            if let Some(sent) = proto::find_time_marker(&body) {
                let _ = lat.record(epoch_us().saturating_sub(sent).max(1));
            }
            shape_seen = shape(&arg(&body, true));
            got += 1;
        }
        receiver.close().await;
        (got, Latency::of(&lat), shape_seen)
    });
    let mut acks = new_histogram();
    for i in 0..MESSAGES {
        let payload =
            json!({ "conversationId": id, "content": format!("check {i} @T{}", epoch_us()) });
        let (d, body) = sender
            .emit_ack("message:send", &payload.to_string(), Duration::from_secs(5))
            .await?;
        let _ = acks.record((d.as_micros() as u64).max(1));
        if proto::ack_is_success(&body) {
            r.chat_ok += 1;
        }
        r.message_ack_shape = shape(&arg(&body, false));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (got, lat, created) = reading.await?;
    sender.close().await;
    r.chat_delivered = got;
    r.chat_ack_p50_ms = Latency::of(&acks).p50_ms;
    r.delivery_p50_ms = lat.p50_ms;
    r.created_shape = created;
    Ok(r)
}

/// The official client's side (`node check-client.mjs`).
async fn with_socketio_client(
    env: &Env,
    server: SocketAddr,
    a: i64,
    b: i64,
) -> Result<CheckReport> {
    let out = tokio::process::Command::new("node")
        .arg(env.root.join("bench/peers/node/check-client.mjs"))
        .args([
            "--url",
            &format!("http://{server}"),
            "--secret",
            &env.secret,
            "--user-a",
            &a.to_string(),
            "--user-b",
            &b.to_string(),
            "--pings",
            &PINGS.to_string(),
            "--messages",
            &MESSAGES.to_string(),
        ])
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "check-client.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Open-loop pings through a worker process (the path the scenarios use), at low load.
async fn worker_path(server: SocketAddr, secret: &str, first_user: i64) -> Result<Latency> {
    let mut workers = Workers::spawn(1).await?;
    let clients = (0..20)
        .map(|i| {
            let mut c = plain_client(first_user + i);
            c.src = std::net::Ipv4Addr::new(127, 250, 0, 1 + (i % 8) as u8);
            c.load = Some(LoadTemplate {
                event: "notification:ping".to_owned(),
                payload: "{\"action\":\"ping\"}".to_owned(),
            });
            c
        })
        .collect();
    workers
        .connect(vec![ConnectJob {
            server,
            protocol: crate::worker::Protocol::SocketIo,
            ns: "/notifications".to_owned(),
            secret: secret.to_owned(),
            clients,
            concurrency: 20,
            track: Vec::new(),
            timeout_ms: 10_000,
        }])
        .await?;
    let load = workers.load(200.0, 3000, 2000).await?;
    workers.close().await?;
    if load.acked_ok != load.sent {
        return Err(format!("worker path: {} of {} acked", load.acked_ok, load.sent).into());
    }
    Ok(Latency::of(&load.acks))
}

/// The generator must not see the server slower than the official client does: its
/// median may be lower (socket.io-client adds its own event-loop time to every round
/// trip, a few hundred microseconds), but not higher by more than 0.5 ms or 2×.
fn not_slower(official: f64, ours: f64) -> bool {
    ours <= official + 0.5 || ours <= official * 2.0
}

/// `sbbench check`: both clients against both servers; fails if they disagree.
pub async fn check(env: Env, admin_url: &str, build: bool, port: u16) -> Result<()> {
    compare::prepare(&env, admin_url, build, port).await?;
    let mut table = String::from(
        "| server | client | connect ms | pings ok / pongs | ping p50 / p99 ms | messages ok / delivered | send p50 ms | delivery p50 ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut problems = Vec::new();
    let mut shapes_by_server: Vec<(Kind, CheckReport)> = Vec::new();
    for (i, kind) in [Kind::Switchboard, Kind::Node].into_iter().enumerate() {
        db::reset(&env.db_url).await?;
        let server = Server::start(kind, &env, port + 2 + i as u16).await?;
        let result = async {
            let js = with_socketio_client(&env, server.addr, 900_001, 900_002).await?;
            let ours = with_generator(server.addr, &env.secret, 900_011, 900_012).await?;
            let open_loop = worker_path(server.addr, &env.secret, 900_100).await?;
            Ok::<_, crate::util::Error>((js, ours, open_loop))
        }
        .await;
        server.stop().await?;
        let (js, ours, open_loop) = result?;
        for r in [&js, &ours] {
            table.push_str(&format!(
                "| {} | {} | {:.1} | {} / {} | {:.2} / {:.2} | {} / {} | {:.2} | {:.2} |\n",
                kind.name(),
                r.client,
                r.connect_ms,
                r.ping_ok,
                r.pongs,
                r.ping_p50_ms,
                r.ping_p99_ms,
                r.chat_ok,
                r.chat_delivered,
                r.chat_ack_p50_ms,
                r.delivery_p50_ms
            ));
        }
        table.push_str(&format!(
            "| {} | sbbench worker, open loop 200/s | | {} acked | {:.2} / {:.2} | | | |\n",
            kind.name(),
            open_loop.count,
            open_loop.p50_ms,
            open_loop.p99_ms
        ));
        let shapes = [
            ("notification:count", &js.count_shape, &ours.count_shape),
            ("ping ack", &js.ping_ack_shape, &ours.ping_ack_shape),
            ("pong", &js.pong_shape, &ours.pong_shape),
            (
                "message:send ack",
                &js.message_ack_shape,
                &ours.message_ack_shape,
            ),
            ("message:created", &js.created_shape, &ours.created_shape),
        ];
        for (what, a, b) in shapes {
            if a != b || a.is_empty() {
                problems.push(format!(
                    "{}: {what} differs: socket.io-client {a} vs sbbench {b}",
                    kind.name()
                ));
            }
        }
        let counts = [
            ("pings ok", js.ping_ok, ours.ping_ok, PINGS as u64),
            ("pongs", js.pongs, ours.pongs, PINGS as u64),
            ("messages ok", js.chat_ok, ours.chat_ok, MESSAGES as u64),
            (
                "delivered",
                js.chat_delivered,
                ours.chat_delivered,
                MESSAGES as u64,
            ),
        ];
        for (what, a, b, want) in counts {
            if a != want || b != want {
                problems.push(format!(
                    "{}: {what}: socket.io-client {a}, sbbench {b}, expected {want}",
                    kind.name()
                ));
            }
        }
        let medians = [
            ("ping", js.ping_p50_ms, ours.ping_p50_ms),
            ("message:send", js.chat_ack_p50_ms, ours.chat_ack_p50_ms),
            ("delivery", js.delivery_p50_ms, ours.delivery_p50_ms),
        ];
        for (what, official, mine) in medians {
            if !not_slower(official, mine) {
                problems.push(format!(
                    "{}: {what} p50 of the generator above the official client's: {mine:.2} vs {official:.2} ms",
                    kind.name()
                ));
            }
        }
        shapes_by_server.push((kind, ours.clone()));
        println!(
            "{}: payload shapes\n  notification:count {}\n  ping ack {}\n  pong {}\n  message:send ack {}\n  message:created {}",
            kind.name(),
            ours.count_shape,
            ours.ping_ack_shape,
            ours.pong_shape,
            ours.message_ack_shape,
            ours.created_shape
        );
    }
    // The Node peer must answer like Switchboard, or the comparison compares different work.
    if let [(_, sb), (_, node)] = shapes_by_server.as_slice() {
        let pairs = [
            ("notification:count", &sb.count_shape, &node.count_shape),
            ("ping ack", &sb.ping_ack_shape, &node.ping_ack_shape),
            ("pong", &sb.pong_shape, &node.pong_shape),
            (
                "message:send ack",
                &sb.message_ack_shape,
                &node.message_ack_shape,
            ),
            ("message:created", &sb.created_shape, &node.created_shape),
        ];
        for (what, a, b) in pairs {
            if a != b {
                problems.push(format!("{what}: Switchboard {a} vs Node peer {b}"));
            }
        }
    }
    println!("\n{table}");
    if problems.is_empty() {
        println!(
            "check passed: same events, same payload shapes (both clients, both servers), same counts; the generator never sees the server slower than socket.io-client does."
        );
        Ok(())
    } else {
        for p in &problems {
            println!("- {p}");
        }
        Err(format!("check found {} difference(s)", problems.len()).into())
    }
}
