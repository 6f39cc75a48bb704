//! The soak's load: a steady population of long-lived sockets with light traffic, churn
//! (short-lived clients connecting and leaving all the time, some of them refused), and
//! REST traffic (notifications, orders). Everything is bounded in rate and count and
//! stops when the stop signal flips.
//!
//! Every client runs in this process (no worker processes): the soak is about the
//! server staying flat, not about load the generator could not produce alone, and a few
//! hundred sockets with a few dozen events a second fit one tokio runtime easily.
//!
//! Past 400 lines: the soak's population (steady sockets, churn, refused clients, REST and
//! order moves) shares one fixture and one set of counters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::polling::{Connect, Polling};
use crate::client::Conn;
use crate::proto::{self, Packet};
use crate::rest;
use crate::token;
use crate::util::{Result, epoch_us};

/// How long any one client step (connect, an ack) may take before it counts as failed.
const STEP_LIMIT: Duration = Duration::from_secs(15);
/// First user id of the steady population; churn-only users follow at +50,000.
const FIRST_USER: i64 = 900_000;
/// Members of each conversation that only churn clients use.
const CHURN_MEMBERS: i64 = 2;
/// Failure messages kept for the report.
const KEPT_ERRORS: usize = 12;

/// What the soak loads the server with.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Long-lived sockets held for the whole run.
    pub sockets: usize,
    /// Short-lived client connects per second (refused ones included).
    pub churn_per_s: f64,
    /// Concurrent churn loops (each waits for its client before starting the next).
    pub churn_loops: usize,
    /// Seconds between two `message:send` of one steady chat client.
    pub chat_every_s: f64,
    /// `POST /api/notifications` per second.
    pub notifications_per_s: f64,
    /// `POST /api/restaurants/:id/orders` per second; each order is then moved
    /// preparing → ready → completed over a socket.
    pub orders_per_s: f64,
}

/// Counters of what the clients saw; read by the sampler and the report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connects that succeeded (churn and steady).
    pub connects: AtomicU64,
    /// Connects refused as intended (bad token, unknown or malformed restaurant path).
    pub refused: AtomicU64,
    /// Connects meant to be refused that were accepted.
    pub wrongly_accepted: AtomicU64,
    /// Connects that failed (refused when they should not be, timeouts, I/O errors).
    pub connect_failures: AtomicU64,
    /// Acks with success.
    pub acks_ok: AtomicU64,
    /// Acks with an error envelope.
    pub acks_error: AtomicU64,
    /// Acks that did not come within the step limit.
    pub ack_timeouts: AtomicU64,
    /// Events pushed by the server to the clients.
    pub events: AtomicU64,
    /// Steady sockets the server (or the network) dropped; each is reconnected.
    pub steady_drops: AtomicU64,
    /// REST calls answered with success.
    pub rest_ok: AtomicU64,
    /// REST calls that failed.
    pub rest_failed: AtomicU64,
    /// Status moves dropped because the mover fell behind (bounded queue).
    pub moves_dropped: AtomicU64,
    /// The first few failure messages.
    pub errors: Mutex<Vec<String>>,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, what: impl Into<String>) {
        if let Ok(mut kept) = self.errors.lock()
            && kept.len() < KEPT_ERRORS
        {
            kept.push(what.into());
        }
    }

    fn ack(&self, body: &str) {
        if proto::ack_is_success(body) {
            Counters::add(&self.acks_ok);
        } else {
            Counters::add(&self.acks_error);
            self.error(format!("error ack {body}"));
        }
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What the clients need to know about the server and the data made for them.
#[derive(Debug)]
pub struct Fixture {
    /// Where the server listens.
    pub server: SocketAddr,
    /// `http://host:port`.
    pub base: String,
    /// Its JWT secret.
    pub secret: String,
    /// Restaurant ids (created).
    pub restaurants: Vec<String>,
    /// Group conversations: id and members (the first five steady, the rest churn-only).
    pub conversations: Vec<(String, Vec<i64>)>,
    /// Users of the steady `/notifications` sockets (targets of `POST /api/notifications`).
    pub notified: Vec<i64>,
    /// One HTTP client (connection pool) for REST and long-polling.
    pub http: reqwest::Client,
}

/// Steady sockets per namespace family, out of `sockets`.
struct Split {
    chat: usize,
    notifications: usize,
    tablets: usize,
    default_ns: usize,
    restaurant_ns: usize,
}

fn split(sockets: usize) -> Split {
    let chat = (sockets * 30 / 100).max(5);
    let notifications = (sockets * 30 / 100).max(1);
    let tablets = (sockets * 20 / 100).max(2);
    let default_ns = (sockets * 15 / 100).max(1);
    let restaurant_ns = sockets
        .saturating_sub(chat + notifications + tablets + default_ns)
        .max(1);
    Split {
        chat,
        notifications,
        tablets,
        default_ns,
        restaurant_ns,
    }
}

/// Creates the restaurants and conversations the population uses.
pub async fn fixture(
    server: SocketAddr,
    secret: &str,
    shape: &Shape,
    http: reqwest::Client,
) -> Result<Fixture> {
    let base = format!("http://{server}");
    let service = token::service(secret)?;
    let s = split(shape.sockets);
    let stamp = epoch_us() % 0xffff_ffff;
    let restaurants: Vec<String> = (0..(s.tablets / 4).max(2))
        .map(|r| format!("50a50000-{:04x}-4000-8000-{stamp:08x}{r:04x}", r % 0xffff))
        .collect();
    for (r, id) in restaurants.iter().enumerate() {
        let (status, body) = rest::post(
            &http,
            &format!("{base}/api/restaurants"),
            &service,
            &json!({ "id": id, "name": format!("Soak {r}") }),
        )
        .await?;
        if !status.is_success() {
            return Err(format!("create restaurant: {status} {body}").into());
        }
    }
    let mut conversations = Vec::new();
    let mut user = FIRST_USER;
    for c in 0..s.chat.div_ceil(5) {
        let steady: Vec<i64> = (0..5).map(|k| user + k).collect();
        user += 5;
        let churn: Vec<i64> = (0..CHURN_MEMBERS)
            .map(|k| FIRST_USER + 50_000 + c as i64 * CHURN_MEMBERS + k)
            .collect();
        let owner = token::sign(secret, steady[0], &["user".to_owned()], &[])?;
        let others: Vec<i64> = steady[1..].iter().chain(&churn).copied().collect();
        let id = rest::create_group(&http, &base, &owner, &format!("soak {c}"), &others).await?;
        conversations.push((id, steady.into_iter().chain(churn).collect()));
    }
    let notified = (0..s.notifications as i64).map(|k| user + k).collect();
    Ok(Fixture {
        server,
        base,
        secret: secret.to_owned(),
        restaurants,
        conversations,
        notified,
        http,
    })
}

/// A status move for the mover socket: order id, restaurant id, new status.
type Move = (String, String, &'static str);

/// What a steady socket does on each tick.
enum Duty {
    /// `message:send` to its conversation.
    Chat(String),
    /// `notification:ping`.
    Ping,
    /// `orders:sync` of its restaurant.
    Sync(String),
    /// Nothing: it only receives.
    Listen,
    /// Moves orders (one in flight at a time, so moves of one order stay in order).
    Mover(mpsc::Receiver<Move>),
}

/// One long-lived socket and what it does.
struct Steady {
    ns: String,
    auth: String,
    setup: Vec<(&'static str, String)>,
    duty: Duty,
    every: Duration,
    src: IpAddr,
}

fn auth(token: &str) -> String {
    json!({ "token": token }).to_string()
}

/// A loopback source address per client group, so that no single source runs short of
/// ephemeral ports over an hour of churn.
fn src(group: u8, index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 77, group, 1 + (index % 200) as u8))
}

/// The steady population, plus the mover fed by the order driver.
fn population(fx: &Fixture, shape: &Shape, moves: mpsc::Receiver<Move>) -> Result<Vec<Steady>> {
    let s = split(shape.sockets);
    let mut out = Vec::new();
    let user = |roles: &[&str], user: i64, restaurants: &[String]| -> Result<String> {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        Ok(auth(&token::sign(&fx.secret, user, &roles, restaurants)?))
    };
    let chat_every = Duration::from_secs_f64(shape.chat_every_s.max(0.1));
    for (i, (conv, members)) in fx.conversations.iter().enumerate() {
        for (k, &member) in members.iter().take(5).enumerate() {
            if i * 5 + k >= s.chat {
                break;
            }
            out.push(Steady {
                ns: "/chat".to_owned(),
                auth: user(&["user"], member, &[])?,
                setup: vec![(
                    "conversation:join",
                    json!({ "conversationId": conv }).to_string(),
                )],
                duty: Duty::Chat(conv.clone()),
                every: chat_every,
                src: src(1, out.len()),
            });
        }
    }
    for &u in &fx.notified {
        out.push(Steady {
            ns: "/notifications".to_owned(),
            auth: user(&["user"], u, &[])?,
            setup: Vec::new(),
            duty: Duty::Ping,
            every: Duration::from_secs(10),
            src: src(2, out.len()),
        });
    }
    let first = FIRST_USER + 100_000;
    for i in 0..s.tablets {
        let r = &fx.restaurants[i % fx.restaurants.len()];
        out.push(Steady {
            ns: format!("/restaurants/{r}"),
            auth: user(&["staff"], first + i as i64, std::slice::from_ref(r))?,
            setup: Vec::new(),
            duty: Duty::Sync(r.clone()),
            every: Duration::from_secs(30),
            src: src(3, out.len()),
        });
    }
    for i in 0..s.default_ns + s.restaurant_ns {
        let r = &fx.restaurants[i % fx.restaurants.len()];
        let ns = if i < s.default_ns { "/" } else { "/restaurant" };
        out.push(Steady {
            ns: ns.to_owned(),
            auth: user(
                &["staff"],
                first + 10_000 + i as i64,
                std::slice::from_ref(r),
            )?,
            // Half of them in batch mode, so batch windows are opened and flushed too.
            setup: vec![(
                "join:restaurant",
                json!({ "restaurantId": r, "batch": i % 2 == 1 }).to_string(),
            )],
            duty: Duty::Listen,
            every: Duration::from_secs(60),
            src: src(4, out.len()),
        });
    }
    out.push(Steady {
        ns: "/".to_owned(),
        auth: user(&["staff"], first + 20_000, &fx.restaurants)?,
        setup: Vec::new(),
        duty: Duty::Mover(moves),
        every: Duration::from_millis(50),
        src: src(5, 0),
    });
    Ok(out)
}

/// Starts every client and driver; they run until `stop` flips to true.
pub fn start(
    fx: Arc<Fixture>,
    shape: Shape,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let (move_tx, move_rx) = mpsc::channel::<Move>(600);
    let mut tasks = Vec::new();
    for (i, spec) in population(&fx, &shape, move_rx)?.into_iter().enumerate() {
        tasks.push(tokio::spawn(steady(
            spec,
            i,
            fx.clone(),
            counters.clone(),
            stop.clone(),
        )));
    }
    let loops = shape.churn_loops.max(1);
    let per_loop = Duration::from_secs_f64(loops as f64 / shape.churn_per_s.max(0.01));
    for l in 0..loops {
        tasks.push(tokio::spawn(churn(
            l,
            per_loop,
            fx.clone(),
            counters.clone(),
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(notifications(
        shape.notifications_per_s,
        fx.clone(),
        counters.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(orders(
        shape.orders_per_s,
        fx,
        move_tx,
        counters,
        stop,
    )));
    Ok(tasks)
}

/// A small deterministic generator (xorshift), so the mixture needs no extra crate.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

/// Whether the stop signal is set (a dropped sender counts as set).
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleeps `d` unless stopped first; returns false when stopped.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if stopped(stop) {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => !stopped(stop),
        _ = stop.changed() => false,
    }
}

/// One steady socket: connect, set up, do its duty each tick; reconnect when dropped.
async fn steady(
    mut spec: Steady,
    index: usize,
    fx: Arc<Fixture>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(epoch_us() ^ index as u64);
    // Spread the initial connects over a few seconds.
    if !pause(rng.millis(3000), &mut stop).await {
        return;
    }
    loop {
        let deadline = Instant::now() + STEP_LIMIT;
        let mut conn =
            match Conn::connect(fx.server, Some(spec.src), &spec.ns, &spec.auth, deadline).await {
                Ok(c) => c,
                Err(e) => {
                    Counters::add(&counters.connect_failures);
                    counters.error(format!("steady {} connect: {e}", spec.ns));
                    if !pause(Duration::from_secs(2), &mut stop).await {
                        return;
                    }
                    continue;
                }
            };
        Counters::add(&counters.connects);
        for (event, payload) in &spec.setup {
            match conn.emit_ack(event, payload, STEP_LIMIT).await {
                Ok((_, body)) => counters.ack(&body),
                Err(e) => counters.error(format!("steady {} {event}: {e}", spec.ns)),
            }
        }
        let first_tick = rng.millis(spec.every.as_millis() as u64);
        match serve(&mut conn, &mut spec, first_tick, &counters, &mut stop).await {
            None => {
                leave(conn).await;
                return;
            }
            Some(reason) => {
                Counters::add(&counters.steady_drops);
                counters.error(format!("steady {} dropped: {reason}", spec.ns));
                if !pause(Duration::from_secs(1), &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// The connected life of a steady socket. `None` when stopped, else why it ended.
async fn serve(
    conn: &mut Conn,
    spec: &mut Steady,
    first_tick: Duration,
    counters: &Counters,
    stop: &mut watch::Receiver<bool>,
) -> Option<String> {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first_tick, spec.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Option<(u64, Instant)> = None;
    let mut sent: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                if stopped(stop) {
                    return None;
                }
            }
            msg = conn.ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => return Some("connection closed".to_owned()),
                    Some(Err(e)) => return Some(format!("read: {e}")),
                    Some(Ok(_)) => continue,
                };
                match proto::parse(text.as_str()) {
                    Packet::Ping => {
                        if let Err(e) = conn.send("3".to_owned()).await {
                            return Some(e);
                        }
                    }
                    Packet::Ack { id, body, .. } if pending.is_some_and(|(p, _)| p == id) => {
                        counters.ack(body);
                        pending = None;
                    }
                    Packet::Event { .. } => Counters::add(&counters.events),
                    Packet::Close | Packet::Disconnected { .. } => {
                        return Some(format!("server sent {text}"));
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                if let Some((_, at)) = pending {
                    if at.elapsed() < STEP_LIMIT {
                        continue;
                    }
                    Counters::add(&counters.ack_timeouts);
                    counters.error(format!("steady {}: ack timed out", spec.ns));
                    pending = None;
                }
                let Some((event, payload)) = next_emit(&mut spec.duty, sent) else {
                    continue;
                };
                sent += 1;
                let id = conn.next_ack;
                conn.next_ack += 1;
                if let Err(e) = conn.send(proto::event_frame(&spec.ns, Some(id), event, &payload)).await {
                    return Some(e);
                }
                pending = Some((id, Instant::now()));
            }
        }
    }
}

/// The next event of a duty, if it has one now.
fn next_emit(duty: &mut Duty, n: u64) -> Option<(&'static str, String)> {
    match duty {
        Duty::Chat(conv) => Some((
            "message:send",
            json!({ "conversationId": conv, "content": format!("soak message {n}") }).to_string(),
        )),
        Duty::Ping => Some(("notification:ping", json!({ "action": "ping" }).to_string())),
        Duty::Sync(r) => Some(("orders:sync", json!({ "restaurantId": r }).to_string())),
        Duty::Listen => None,
        Duty::Mover(rx) => rx.try_recv().ok().map(|(order, r, status)| {
            (
                "order:update_status",
                json!({ "orderId": order, "status": status, "restaurantId": r }).to_string(),
            )
        }),
    }
}

/// socket.io DISCONNECT, then the websocket close handshake (bounded).
async fn leave(mut conn: Conn) {
    let frame = format!("41{}", proto::ns_prefix(&conn.ns));
    let _ = conn.send(frame).await;
    conn.close().await;
}

/// Reads (answering pings, counting events) for `d`.
async fn linger(conn: &mut Conn, d: Duration, counters: &Counters) {
    let until = tokio::time::Instant::now() + d;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, conn.ws.next()).await {
        if let Message::Text(t) = msg {
            match proto::parse(t.as_str()) {
                Packet::Ping => {
                    let _ = conn.send("3".to_owned()).await;
                }
                Packet::Event { .. } => Counters::add(&counters.events),
                _ => {}
            }
        }
    }
}

/// How a churn client ended.
enum Churned {
    /// Connected, did its events, left.
    Done,
    /// Refused at connect, as intended.
    Refused,
    /// Meant to be refused, but accepted.
    WronglyAccepted(String),
    /// Anything else.
    Failed(String),
}

/// The churn mixture, one entry per client kind; each loop walks it from its own offset.
const KINDS: usize = 12;

/// One churn loop: a client of the next kind every `interval`, until stopped.
async fn churn(
    index: usize,
    interval: Duration,
    fx: Arc<Fixture>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(epoch_us() ^ (0xC0FFEE + index as u64));
    let mut next = tokio::time::Instant::now() + rng.millis(interval.as_millis() as u64);
    let mut n = index;
    loop {
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        if !pause(wait, &mut stop).await {
            return;
        }
        next += interval;
        let kind = n % KINDS;
        n += 1;
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            churn_one(kind, n, &fx, &counters, &mut rng, index),
        )
        .await
        .unwrap_or_else(|_| Churned::Failed(format!("churn kind {kind}: over 30 s")));
        match outcome {
            Churned::Done => Counters::add(&counters.connects),
            Churned::Refused => Counters::add(&counters.refused),
            Churned::WronglyAccepted(what) => {
                Counters::add(&counters.wrongly_accepted);
                counters.error(format!("accepted, should be refused: {what}"));
            }
            Churned::Failed(e) => {
                Counters::add(&counters.connect_failures);
                counters.error(e);
            }
        }
    }
}

/// One short-lived client of `kind`.
async fn churn_one(
    kind: usize,
    n: usize,
    fx: &Fixture,
    counters: &Counters,
    rng: &mut Rng,
    loop_index: usize,
) -> Churned {
    let sign = |roles: &[&str], user: i64, restaurants: &[String]| -> String {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        token::sign(&fx.secret, user, &roles, restaurants)
            .map(|t| auth(&t))
            .unwrap_or_default()
    };
    let (conv, members) = &fx.conversations[n % fx.conversations.len()];
    // A churn-only member of the conversation (the last ones in the list).
    let member = members[members.len() - 1 - n % CHURN_MEMBERS as usize];
    let restaurant = &fx.restaurants[n % fx.restaurants.len()];
    let notified = fx.notified[n % fx.notified.len()];
    let linger_for = rng.millis(3000);
    let abrupt = rng.below(2) == 0;
    let from = src(10 + (loop_index % 100) as u8, n);
    let conv_json = json!({ "conversationId": conv }).to_string();
    match kind {
        0 => {
            let send = json!({ "conversationId": conv, "content": format!("churn {n}") });
            ws(
                fx,
                from,
                "/chat",
                &sign(&["user"], member, &[]),
                &[
                    ("conversation:join", conv_json),
                    ("message:send", send.to_string()),
                ],
                linger_for,
                abrupt,
                counters,
            )
            .await
        }
        1 => {
            ws(
                fx,
                from,
                "/notifications",
                &sign(&["user"], notified, &[]),
                &[("notification:ping", json!({ "action": "ping" }).to_string())],
                linger_for,
                abrupt,
                counters,
            )
            .await
        }
        2 => {
            let ns = format!("/restaurants/{restaurant}");
            ws(
                fx,
                from,
                &ns,
                &sign(
                    &["staff"],
                    990_000 + n as i64 % 1000,
                    std::slice::from_ref(restaurant),
                ),
                &[(
                    "orders:sync",
                    json!({ "restaurantId": restaurant }).to_string(),
                )],
                linger_for,
                abrupt,
                counters,
            )
            .await
        }
        3 | 11 => {
            let ns = if kind == 3 { "/" } else { "/restaurant" };
            let join = json!({ "restaurantId": restaurant, "batch": abrupt }).to_string();
            ws(
                fx,
                from,
                ns,
                &sign(
                    &["staff"],
                    991_000 + n as i64 % 1000,
                    std::slice::from_ref(restaurant),
                ),
                &[("join:restaurant", join)],
                linger_for,
                abrupt,
                counters,
            )
            .await
        }
        4 => {
            polling(
                fx,
                "/notifications",
                &sign(&["user"], notified, &[]),
                Some(("notification:ping", json!({ "action": "ping" }).to_string())),
                counters,
            )
            .await
        }
        5 => {
            polling(
                fx,
                "/chat",
                &sign(&["user"], member, &[]),
                Some(("conversation:join", conv_json)),
                counters,
            )
            .await
        }
        6 => {
            // Signed with another secret.
            let forged = token::sign("not-the-server-secret-at-all-000000", member, &[], &[])
                .map(|t| auth(&t))
                .unwrap_or_default();
            refused_ws(fx, from, "/chat", &forged).await
        }
        7 => {
            // A restaurant that does not exist, listed in the token: refused after a
            // database lookup, on a path never seen before (a fresh dynamic namespace).
            let unknown = format!("50a5dead-0000-4000-8000-{:012x}", rng.next() >> 16);
            let ns = format!("/restaurants/{unknown}");
            refused_ws(
                fx,
                from,
                &ns,
                &sign(&["staff"], 992_000, std::slice::from_ref(&unknown)),
            )
            .await
        }
        8 => {
            let ns = format!("/restaurants/{restaurant}");
            match Polling::connect(&fx.http, &fx.base, &ns, "{}").await {
                Ok(Connect::Refused(_)) => Churned::Refused,
                Ok(Connect::Connected(p)) => {
                    let _ = p.close().await;
                    Churned::WronglyAccepted(format!("polling {ns} without a token"))
                }
                Err(e) => Churned::Failed(format!("polling {ns} without a token: {e}")),
            }
        }
        9 => {
            ws(
                fx,
                from,
                "/notifications",
                &sign(&["user"], 993_000 + n as i64 % 1000, &[]),
                &[],
                linger_for * 2,
                true,
                counters,
            )
            .await
        }
        _ => {
            // A malformed restaurant path, different every time.
            let ns = format!("/restaurants/not-a-uuid-{}", rng.next() >> 20);
            refused_ws(fx, from, &ns, &sign(&["admin"], 994_000, &[])).await
        }
    }
}

/// A websocket client that connects, emits with acks, reads for a while and leaves
/// (politely, or by dropping the TCP connection when `abrupt`).
#[allow(clippy::too_many_arguments)]
async fn ws(
    fx: &Fixture,
    from: IpAddr,
    ns: &str,
    auth: &str,
    emits: &[(&str, String)],
    linger_for: Duration,
    abrupt: bool,
    counters: &Counters,
) -> Churned {
    let deadline = Instant::now() + STEP_LIMIT;
    let mut conn = match Conn::connect(fx.server, Some(from), ns, auth, deadline).await {
        Ok(c) => c,
        Err(e) => return Churned::Failed(format!("{ns} connect: {e}")),
    };
    for (event, payload) in emits {
        match conn.emit_ack(event, payload, STEP_LIMIT).await {
            Ok((_, body)) => counters.ack(&body),
            Err(e) => {
                Counters::add(&counters.ack_timeouts);
                return Churned::Failed(format!("{ns} {event}: {e}"));
            }
        }
    }
    linger(&mut conn, linger_for, counters).await;
    if abrupt {
        drop(conn);
    } else {
        leave(conn).await;
    }
    Churned::Done
}

/// A websocket connect that must be refused.
async fn refused_ws(fx: &Fixture, from: IpAddr, ns: &str, auth: &str) -> Churned {
    let deadline = Instant::now() + STEP_LIMIT;
    match Conn::connect(fx.server, Some(from), ns, auth, deadline).await {
        Err(e) if e.starts_with("connect_error") => Churned::Refused,
        // socketioxide answers an unknown namespace path with connect_error too; a
        // closed transport is also a refusal the client sees.
        Err(e) if e.contains("closed") => Churned::Refused,
        Err(e) => Churned::Failed(format!("{ns} (to be refused): {e}")),
        Ok(conn) => {
            leave(conn).await;
            Churned::WronglyAccepted(ns.to_owned())
        }
    }
}

/// A long-polling client: handshake, CONNECT, one event with an ack, CLOSE.
async fn polling(
    fx: &Fixture,
    ns: &str,
    auth: &str,
    emit: Option<(&str, String)>,
    counters: &Counters,
) -> Churned {
    let mut session = match Polling::connect(&fx.http, &fx.base, ns, auth).await {
        Ok(Connect::Connected(p)) => p,
        Ok(Connect::Refused(body)) => return Churned::Failed(format!("polling {ns}: {body}")),
        Err(e) => return Churned::Failed(format!("polling {ns}: {e}")),
    };
    if let Some((event, payload)) = emit {
        match session.emit_ack(event, &payload).await {
            Ok(body) => counters.ack(&body),
            Err(e) => return Churned::Failed(format!("polling {ns} {event}: {e}")),
        }
    }
    match session.close().await {
        Ok(()) => Churned::Done,
        Err(e) => Churned::Failed(format!("polling {ns} close: {e}")),
    }
}

/// `POST /api/notifications` to the steady users, at `rate` per second.
async fn notifications(
    rate: f64,
    fx: Arc<Fixture>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    let Ok(service) = token::service(&fx.secret) else {
        return;
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let url = format!("{}/api/notifications", fx.base);
    let mut n: usize = 0;
    while pause(interval, &mut stop).await {
        let user = fx.notified[n % fx.notified.len()];
        n += 1;
        let body = json!({ "user_id": user, "type": "system", "title": "Soak", "content": format!("soak {n}") });
        match rest::post(&fx.http, &url, &service, &body).await {
            Ok((StatusCode::CREATED, _)) => Counters::add(&counters.rest_ok),
            Ok((status, body)) => {
                Counters::add(&counters.rest_failed);
                counters.error(format!("POST /api/notifications: {status} {body}"));
            }
            Err(e) => {
                Counters::add(&counters.rest_failed);
                counters.error(format!("POST /api/notifications: {e}"));
            }
        }
    }
}

/// `POST /api/restaurants/:id/orders` at `rate` per second; each created order is
/// handed to the mover to go preparing → ready → completed, so active orders (and
/// `orders:sync` replies) stay bounded.
async fn orders(
    rate: f64,
    fx: Arc<Fixture>,
    moves: mpsc::Sender<Move>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    if rate <= 0.0 {
        return;
    }
    let Ok(service) = token::service(&fx.secret) else {
        return;
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut n: usize = 0;
    while pause(interval, &mut stop).await {
        let r = &fx.restaurants[n % fx.restaurants.len()];
        n += 1;
        let body = json!({
            "order_number": n.to_string(),
            "type": "dine_in",
            "table_number": n % 20 + 1,
            "total": 12.5,
            "items": [ { "name": "Soup", "quantity": 1, "station": "kitchen" },
                       { "name": "Tea", "quantity": 2, "station": "bar" } ],
        });
        let url = format!("{}/api/restaurants/{r}/orders", fx.base);
        match rest::post(&fx.http, &url, &service, &body).await {
            Ok((StatusCode::CREATED, order)) => {
                Counters::add(&counters.rest_ok);
                let Some(id) = order["id"].as_str() else {
                    counters.error(format!("order without id: {order}"));
                    continue;
                };
                for status in ["preparing", "ready", "completed"] {
                    if moves.try_send((id.to_owned(), r.clone(), status)).is_err() {
                        Counters::add(&counters.moves_dropped);
                    }
                }
            }
            Ok((status, body)) => {
                Counters::add(&counters.rest_failed);
                counters.error(format!("POST orders: {status} {body}"));
            }
            Err(e) => {
                Counters::add(&counters.rest_failed);
                counters.error(format!("POST orders: {e}"));
            }
        }
    }
}
