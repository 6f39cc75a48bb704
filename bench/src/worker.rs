//! A load-generator worker process: holds a share of the clients, runs the open-loop
//! sender, records ack and delivery latencies, and answers the coordinator.
//!
//! The coordinator (`compare`, `run`) starts `sbbench worker` several times (one
//! process holds at most a few thousand sockets, well under the 20,000 open files of a
//! process) and talks to each over stdin/stdout, one JSON [`Cmd`] per line in, one
//! JSON [`Reply`] per line out. Every command is bounded in time; the worker exits on
//! `Close` or when its stdin closes (the coordinator went away).
//!
//! Past 400 lines: the worker's job types (connect, load, stats), the clients it holds
//! (plain and socket.io) and the shared state they report to make one process.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Conn, PlainConn};
use crate::proto::{self, Packet};
use crate::token;
use crate::util::{HistData, Result, epoch_us, new_histogram};

/// One event a client emits right after connecting, waiting for a successful ack
/// (`conversation:join`, `join:restaurant`, …); for a plain client, one request
/// (`subscribe`) waiting for its reply, which must not be an `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupEmit {
    /// Event name.
    pub event: String,
    /// Payload.
    pub payload: Value,
}

/// The event a client emits during load. `payload` is JSON text in which `{T}` is
/// replaced by the send time (epoch µs) at each emit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadTemplate {
    /// Event name.
    pub event: String,
    /// Payload text with an optional `{T}` placeholder.
    pub payload: String,
}

/// One client to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSpec {
    /// `sub` of its token.
    pub user: i64,
    /// `roles` of its token.
    #[serde(default)]
    pub roles: Vec<String>,
    /// `restaurants` of its token.
    #[serde(default)]
    pub restaurants: Vec<String>,
    /// Source address of its TCP connection (127.x.y.z).
    pub src: Ipv4Addr,
    /// Emitted (with ack) once connected.
    #[serde(default)]
    pub setup: Vec<SetupEmit>,
    /// Emitted at the open-loop rate during `Load`.
    #[serde(default)]
    pub load: Option<LoadTemplate>,
}

/// What the clients of a job speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// engine.io 4 / socket.io 5 over a websocket (`/socket.io/`), attached to `ns`.
    #[default]
    SocketIo,
    /// Plain WebSocket, `/ws?token=` in the envelope dialect (`{type, payload, id?}`):
    /// setup steps are requests (`subscribe` …) answered by the message with their
    /// `id`; tracked "events" are envelope `type`s; `ns` is not used.
    Plain,
}

/// Open clients (added to those already open).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectJob {
    /// Server address.
    pub server: SocketAddr,
    /// What the clients speak.
    #[serde(default)]
    pub protocol: Protocol,
    /// Namespace to attach to (socket.io only).
    pub ns: String,
    /// HS256 secret for the tokens.
    pub secret: String,
    /// Clients to open.
    pub clients: Vec<ClientSpec>,
    /// Connections in flight at once.
    pub concurrency: usize,
    /// Events whose deliveries are measured (payload carries a `@T` send time).
    pub track: Vec<String>,
    /// Bound for each client's connect and setup.
    pub timeout_ms: u64,
}

/// Emit the load event at `rate` per second for `duration_ms`, spread round-robin over
/// the clients that have a load template; then wait up to `drain_ms` for the acks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct LoadJob {
    /// Emits per second (this worker's share).
    pub rate: f64,
    /// Sending time.
    pub duration_ms: u64,
    /// Longest wait for outstanding acks after sending.
    pub drain_ms: u64,
}

/// Coordinator → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Cmd {
    /// Open clients.
    Connect(ConnectJob),
    /// Run an open-loop load.
    Load(LoadJob),
    /// Delivery statistics (optionally resetting them).
    Stats {
        /// Start a new measurement window after reading.
        reset: bool,
    },
    /// Delivery count only (cheap, for polling).
    Count,
    /// Close every client and exit.
    Close,
}

/// Result of `Connect`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Connected {
    /// Clients connected and set up.
    pub ok: u64,
    /// Clients that failed.
    pub failed: u64,
    /// Wall time of the whole batch.
    pub elapsed_ms: f64,
    /// A few error texts.
    pub errors: Vec<String>,
}

/// Result of `Load`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Loaded {
    /// Events emitted.
    pub sent: u64,
    /// Acks with `ok`/`success` true.
    pub acked_ok: u64,
    /// Acks reporting an error.
    pub acked_err: u64,
    /// From the first emit to the last ack (or the end of the drain).
    pub span_ms: f64,
    /// Longest delay of the scheduler behind the intended send time.
    pub max_lag_ms: f64,
    /// Ack round trips (µs).
    pub acks: HistData,
    /// A few error ack bodies.
    pub errors: Vec<String>,
}

/// Result of `Stats` and `Count`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Tracked events received.
    pub delivered: u64,
    /// First and last receipt of a tracked event (epoch µs; 0 when none).
    pub first_recv_us: u64,
    /// Last receipt.
    pub last_recv_us: u64,
    /// Delivery latencies (µs, send time in the payload → receipt).
    pub deliveries: HistData,
    /// Clients currently connected.
    pub open: u64,
    /// Clients the server disconnected (or whose connection broke).
    pub dropped: u64,
}

/// Worker → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    /// After `Connect`.
    Connected(Connected),
    /// After `Load`.
    Loaded(Loaded),
    /// After `Stats`, `Count` and `Close`.
    Stats(Stats),
    /// The command failed.
    Failed(String),
}

/// What the clients of one worker record into.
struct Shared {
    track: Mutex<Vec<String>>,
    acks: Mutex<Histogram<u64>>,
    deliveries: Mutex<Histogram<u64>>,
    ack_errors: Mutex<Vec<String>>,
    acked_ok: AtomicU64,
    acked_err: AtomicU64,
    last_ack_us: AtomicU64,
    delivered: AtomicU64,
    first_recv_us: AtomicU64,
    last_recv_us: AtomicU64,
    open: AtomicU64,
    dropped: AtomicU64,
}

impl Shared {
    fn new() -> Self {
        Shared {
            track: Mutex::new(Vec::new()),
            acks: Mutex::new(new_histogram()),
            deliveries: Mutex::new(new_histogram()),
            ack_errors: Mutex::new(Vec::new()),
            acked_ok: AtomicU64::new(0),
            acked_err: AtomicU64::new(0),
            last_ack_us: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            first_recv_us: AtomicU64::new(u64::MAX),
            last_recv_us: AtomicU64::new(0),
            open: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn tracks(&self, name: &str) -> bool {
        lock(&self.track).iter().any(|t| t == name)
    }

    fn record_ack(&self, sent_at: Instant, body: &str) {
        let us = u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = lock(&self.acks).record(us.max(1));
        self.last_ack_us.fetch_max(epoch_us(), Ordering::Relaxed);
        if proto::ack_is_success(body) {
            self.acked_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.acked_err.fetch_add(1, Ordering::Relaxed);
            let mut errors = lock(&self.ack_errors);
            if errors.len() < 5 {
                errors.push(body.chars().take(300).collect());
            }
        }
    }

    fn record_delivery(&self, body: &str) {
        let now = epoch_us();
        if let Some(sent) = proto::find_time_marker(body) {
            let _ = lock(&self.deliveries).record(now.saturating_sub(sent).max(1));
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.first_recv_us.fetch_min(now, Ordering::Relaxed);
        self.last_recv_us.fetch_max(now, Ordering::Relaxed);
    }

    fn stats(&self, reset: bool) -> Stats {
        let mut deliveries = lock(&self.deliveries);
        let first = self.first_recv_us.load(Ordering::Relaxed);
        let stats = Stats {
            delivered: self.delivered.load(Ordering::Relaxed),
            first_recv_us: if first == u64::MAX { 0 } else { first },
            last_recv_us: self.last_recv_us.load(Ordering::Relaxed),
            deliveries: HistData::from_hist(&deliveries),
            open: self.open.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        };
        if reset {
            deliveries.reset();
            self.delivered.store(0, Ordering::Relaxed);
            self.first_recv_us.store(u64::MAX, Ordering::Relaxed);
            self.last_recv_us.store(0, Ordering::Relaxed);
        }
        stats
    }

    fn count(&self) -> Stats {
        Stats {
            delivered: self.delivered.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}

/// A poisoned lock only means a client task panicked mid-record; keep measuring.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Orders to one client task.
enum ClientCmd {
    /// Emit the load event now; `at` is the dispatch instant the latency counts from.
    Emit { at: Instant },
    /// Close the websocket and end.
    Close,
}

/// The load event of one client, pre-split around the `{T}` placeholder.
struct Template {
    head: String,
    mid: String,
    tail: String,
    timed: bool,
}

impl Template {
    fn new(ns: &str, t: &LoadTemplate) -> Self {
        let (before, after, timed) = match t.payload.split_once("{T}") {
            Some((b, a)) => (b.to_owned(), a.to_owned(), true),
            None => (t.payload.clone(), String::new(), false),
        };
        Template {
            head: format!("42{}", proto::ns_prefix(ns)),
            mid: format!("[\"{}\",{before}", t.event),
            tail: format!("{after}]"),
            timed,
        }
    }

    fn render(&self, id: u64) -> String {
        if self.timed {
            format!("{}{id}{}{}{}", self.head, self.mid, epoch_us(), self.tail)
        } else {
            format!("{}{id}{}{}", self.head, self.mid, self.tail)
        }
    }
}

struct ClientHandle {
    tx: mpsc::UnboundedSender<ClientCmd>,
    loads: bool,
}

/// Connects one client, runs its setup, reports readiness, then serves it until
/// told to close or the server drops it.
async fn client_task(
    job: Arc<ConnectJob>,
    spec: ClientSpec,
    shared: Arc<Shared>,
    ready: oneshot::Sender<std::result::Result<(), String>>,
    rx: mpsc::UnboundedReceiver<ClientCmd>,
) {
    match job.protocol {
        Protocol::SocketIo => socketio_client(job, spec, shared, ready, rx).await,
        Protocol::Plain => plain_client(job, spec, shared, ready, rx).await,
    }
}

/// A plain WebSocket client (`/ws`, envelope dialect): authenticated by `?token=`,
/// its setup requests answered, then it reads until closed. It emits no load (the
/// plain scenarios publish over REST); pings are answered by tungstenite as it reads.
async fn plain_client(
    job: Arc<ConnectJob>,
    spec: ClientSpec,
    shared: Arc<Shared>,
    ready: oneshot::Sender<std::result::Result<(), String>>,
    mut rx: mpsc::UnboundedReceiver<ClientCmd>,
) {
    let deadline = Instant::now() + Duration::from_millis(job.timeout_ms);
    let setup = async {
        let token = token::sign(&job.secret, spec.user, &spec.roles, &spec.restaurants)
            .map_err(|e| format!("token: {e}"))?;
        let mut conn =
            PlainConn::connect(job.server, Some(IpAddr::V4(spec.src)), &token, deadline).await?;
        for step in &spec.setup {
            let left = deadline.saturating_duration_since(Instant::now());
            let (kind, body) = conn
                .request(&step.event, &step.payload.to_string(), left)
                .await
                .map_err(|e| format!("{}: {e}", step.event))?;
            if kind == "error" {
                return Err(format!("{} refused: {body}", step.event));
            }
        }
        Ok::<PlainConn, String>(conn)
    };
    let mut conn = match setup.await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    shared.open.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(Ok(()));
    let dropped = loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(ClientCmd::Emit { .. }) => {}
                Some(ClientCmd::Close) | None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.ws.close(None)).await;
                    break false;
                }
            },
            msg = conn.ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(kind) = proto::plain_type(text.as_str())
                        && shared.tracks(&kind)
                    {
                        shared.record_delivery(text.as_str());
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
                Some(Ok(_)) => {}
            },
        }
    };
    shared.open.fetch_sub(1, Ordering::Relaxed);
    if dropped {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A socket.io client: connect, setup emits, then the load loop.
async fn socketio_client(
    job: Arc<ConnectJob>,
    spec: ClientSpec,
    shared: Arc<Shared>,
    ready: oneshot::Sender<std::result::Result<(), String>>,
    mut rx: mpsc::UnboundedReceiver<ClientCmd>,
) {
    let deadline = Instant::now() + Duration::from_millis(job.timeout_ms);
    let setup = async {
        let token = token::sign(&job.secret, spec.user, &spec.roles, &spec.restaurants)
            .map_err(|e| format!("token: {e}"))?;
        let auth = serde_json::json!({ "token": token }).to_string();
        let mut conn = Conn::connect(
            job.server,
            Some(IpAddr::V4(spec.src)),
            &job.ns,
            &auth,
            deadline,
        )
        .await?;
        for step in &spec.setup {
            let left = deadline.saturating_duration_since(Instant::now());
            let (_, body) = conn
                .emit_ack(&step.event, &step.payload.to_string(), left)
                .await
                .map_err(|e| format!("{}: {e}", step.event))?;
            if !proto::ack_is_success(&body) {
                return Err(format!("{} refused: {body}", step.event));
            }
        }
        Ok::<Conn, String>(conn)
    };
    let mut conn = match setup.await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    shared.open.fetch_add(1, Ordering::Relaxed);
    let _ = ready.send(Ok(()));
    let template = spec.load.as_ref().map(|t| Template::new(&job.ns, t));
    let mut pending: HashMap<u64, Instant> = HashMap::new();
    let dropped = loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(ClientCmd::Emit { at }) => {
                    let Some(t) = &template else { continue };
                    let id = conn.next_ack;
                    conn.next_ack += 1;
                    pending.insert(id, at);
                    if conn.ws.send(Message::text(t.render(id))).await.is_err() {
                        break true;
                    }
                }
                Some(ClientCmd::Close) | None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn.ws.close(None)).await;
                    break false;
                }
            },
            msg = conn.ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    match proto::parse(text.as_str()) {
                        Packet::Ping => {
                            let answered = conn.ws.send(Message::text("3")).await;
                            if answered.is_err() {
                                break true;
                            }
                        }
                        Packet::Ack { id, body, .. } => {
                            if let Some(at) = pending.remove(&id) {
                                shared.record_ack(at, body);
                            }
                        }
                        Packet::Event { name, body, .. } if shared.tracks(name) => {
                            shared.record_delivery(body);
                        }
                        Packet::Close | Packet::Disconnected { .. } => break true,
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
                Some(Ok(_)) => {}
            },
        }
    };
    shared.open.fetch_sub(1, Ordering::Relaxed);
    if dropped {
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The worker's state between commands.
struct Worker {
    shared: Arc<Shared>,
    clients: Vec<ClientHandle>,
}

impl Worker {
    async fn connect(&mut self, job: ConnectJob) -> Connected {
        *lock(&self.shared.track) = job.track.clone();
        let started = Instant::now();
        let mut job = job;
        let specs = std::mem::take(&mut job.clients);
        let job = Arc::new(job);
        let gate = Arc::new(Semaphore::new(job.concurrency.max(1)));
        let mut waiting = Vec::with_capacity(specs.len());
        for spec in specs {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                break;
            };
            let (ready_tx, ready_rx) = oneshot::channel();
            let (tx, rx) = mpsc::unbounded_channel();
            let loads = spec.load.is_some();
            let (job, shared) = (job.clone(), self.shared.clone());
            let (relay_tx, relay_rx) = oneshot::channel();
            tokio::spawn(client_task(job, spec, shared, ready_tx, rx));
            // Release the permit as soon as this client is ready (or failed).
            tokio::spawn(async move {
                let outcome = ready_rx
                    .await
                    .unwrap_or_else(|_| Err("client task ended".to_owned()));
                drop(permit);
                let _ = relay_tx.send(outcome);
            });
            waiting.push((ClientHandle { tx, loads }, relay_rx));
        }
        let mut out = Connected::default();
        for (handle, ready) in waiting {
            match ready.await {
                Ok(Ok(())) => {
                    out.ok += 1;
                    self.clients.push(handle);
                }
                Ok(Err(e)) => {
                    out.failed += 1;
                    if out.errors.len() < 5 {
                        out.errors.push(e);
                    }
                }
                Err(_) => out.failed += 1,
            }
        }
        out.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        out
    }

    async fn load(&mut self, job: LoadJob) -> Loaded {
        let senders: Vec<&ClientHandle> = self.clients.iter().filter(|c| c.loads).collect();
        let s = &self.shared;
        *lock(&s.acks) = new_histogram();
        lock(&s.ack_errors).clear();
        s.acked_ok.store(0, Ordering::Relaxed);
        s.acked_err.store(0, Ordering::Relaxed);
        let mut out = Loaded::default();
        if senders.is_empty() || job.rate <= 0.0 {
            return out;
        }
        let duration = Duration::from_millis(job.duration_ms);
        let total = (job.rate * duration.as_secs_f64()).round() as u64;
        let started = Instant::now();
        let started_us = epoch_us();
        s.last_ack_us.store(started_us, Ordering::Relaxed);
        let mut sent = 0u64;
        let mut max_lag = Duration::ZERO;
        // Open loop: the schedule never waits for acks; a 1 ms tick sends what is due.
        while sent < total && started.elapsed() < duration + Duration::from_secs(30) {
            let now = Instant::now();
            let due = ((now - started).as_secs_f64() * job.rate) as u64 + 1;
            let due = due.min(total);
            if due > sent {
                let intended = started + Duration::from_secs_f64(sent as f64 / job.rate);
                max_lag = max_lag.max(now.saturating_duration_since(intended));
                for k in sent..due {
                    let client = senders[(k as usize) % senders.len()];
                    let _ = client.tx.send(ClientCmd::Emit { at: now });
                }
                sent = due;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let drain_until = Instant::now() + Duration::from_millis(job.drain_ms);
        while Instant::now() < drain_until {
            let answered = s.acked_ok.load(Ordering::Relaxed) + s.acked_err.load(Ordering::Relaxed);
            if answered >= sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        out.sent = sent;
        out.acked_ok = s.acked_ok.load(Ordering::Relaxed);
        out.acked_err = s.acked_err.load(Ordering::Relaxed);
        let last = s.last_ack_us.load(Ordering::Relaxed);
        out.span_ms = last.saturating_sub(started_us) as f64 / 1000.0;
        out.max_lag_ms = max_lag.as_secs_f64() * 1000.0;
        out.acks = HistData::from_hist(&lock(&s.acks));
        out.errors = lock(&s.ack_errors).clone();
        out
    }

    async fn close(&mut self) -> Stats {
        for c in &self.clients {
            let _ = c.tx.send(ClientCmd::Close);
        }
        let until = Instant::now() + Duration::from_secs(10);
        while self.shared.open.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.clients.clear();
        self.shared.stats(false)
    }
}

/// `sbbench worker`: serve commands from stdin until `Close` or end of input.
pub async fn main() -> Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    let mut worker = Worker {
        shared: Arc::new(Shared::new()),
        clients: Vec::new(),
    };
    while let Some(line) = lines.next_line().await? {
        let cmd: Cmd = match serde_json::from_str(&line) {
            Ok(cmd) => cmd,
            Err(e) => {
                let reply = Reply::Failed(format!("bad command: {e}"));
                write_reply(&mut stdout, &reply).await?;
                continue;
            }
        };
        let closing = matches!(cmd, Cmd::Close);
        let reply = match cmd {
            Cmd::Connect(job) => Reply::Connected(worker.connect(job).await),
            Cmd::Load(job) => Reply::Loaded(worker.load(job).await),
            Cmd::Stats { reset } => Reply::Stats(worker.shared.stats(reset)),
            Cmd::Count => Reply::Stats(worker.shared.count()),
            Cmd::Close => Reply::Stats(worker.close().await),
        };
        write_reply(&mut stdout, &reply).await?;
        if closing {
            break;
        }
    }
    worker.close().await;
    Ok(())
}

async fn write_reply(out: &mut tokio::io::Stdout, reply: &Reply) -> Result<()> {
    let mut line = serde_json::to_string(reply)?;
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_jobs_default_to_socketio() {
        let job: ConnectJob = serde_json::from_str(
            r#"{"server":"127.0.0.1:1","ns":"/","secret":"s","clients":[],"concurrency":1,"track":[],"timeout_ms":1}"#,
        )
        .unwrap();
        assert_eq!(job.protocol, Protocol::SocketIo);
        let plain = serde_json::to_string(&ConnectJob {
            protocol: Protocol::Plain,
            ..job
        })
        .unwrap();
        let back: ConnectJob = serde_json::from_str(&plain).unwrap();
        assert_eq!(back.protocol, Protocol::Plain);
    }

    #[test]
    fn templates_place_the_time_and_the_ack_id() {
        let t = Template::new(
            "/chat",
            &LoadTemplate {
                event: "message:send".into(),
                payload: "{\"content\":\"m @T{T}\"}".into(),
            },
        );
        let frame = t.render(9);
        assert!(frame.starts_with("42/chat,9[\"message:send\",{\"content\":\"m @T"));
        assert!(frame.ends_with("\"}]"));
        assert!(proto::find_time_marker(&frame).is_some());
        let plain = Template::new(
            "/notifications",
            &LoadTemplate {
                event: "notification:ping".into(),
                payload: "{\"action\":\"ping\"}".into(),
            },
        );
        assert_eq!(
            plain.render(3),
            "42/notifications,3[\"notification:ping\",{\"action\":\"ping\"}]"
        );
    }
}
