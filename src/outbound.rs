//! What a client that does not read may cost: a byte budget and a stall limit per
//! connection, enforced where bytes leave the process.
//!
//! socketioxide queues each socket's packets in a channel bounded in packets (4096),
//! not bytes, and exposes neither its length nor a way to close a socket whose queue
//! is full (`disconnect` itself needs a free slot). So the budget is kept one level
//! down, on the TCP connection, where both ends are visible:
//!
//! - every byte the kernel accepts is counted by the listener's stream wrapper
//!   ([`Meter::wrote`]); a write the kernel refuses (its buffer full: the client is not
//!   reading) starts the stall clock, the next accepted byte stops it;
//! - every reply and direct emit our code queues for one socket is charged to the
//!   socket's connection ([`Meter::charge`]): the backlog is what was charged and not
//!   yet matched by written bytes. Past `MAX_SOCKET_BUFFER_BYTES` the connection is
//!   closed. Broadcast packets are not charged: their payload is serialized once and
//!   shared by every recipient's queue, so what one stuck socket adds is a queue slot;
//! - a connection whose writes have been refused for `WRITE_STALL_TIMEOUT_SECS` is
//!   closed by one sweeper task for all connections ([`Meters::sweep`]).
//!
//! Closing is done by the stream wrapper: once killed, its reads and writes fail, so
//! hyper, or the websocket's reader after an upgrade, ends the connection and
//! engine.io closes its sockets (whatever their queue holds). A socket that upgraded
//! from long-polling reaches its websocket's meter through a [`MeterSlot`]: the
//! handshake request carries the slot, and the upgrade request (which names the
//! engine.io session) points it at its own connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use futures_util::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::ReasonLabel;

/// One TCP connection's outbound accounting and kill switch.
#[derive(Debug)]
pub struct Meter {
    epoch: Instant,
    /// Bytes the kernel accepted.
    written: AtomicU64,
    /// Milliseconds after `epoch` (plus one) when writes started being refused; 0 while
    /// they are not.
    blocked_since: AtomicU64,
    killed: AtomicBool,
    /// The connection's task, woken when the meter is killed.
    reader: AtomicWaker,
    writer: AtomicWaker,
    backlog: Mutex<Backlog>,
}

#[derive(Debug, Default)]
struct Backlog {
    /// Charged bytes not yet matched by written ones.
    bytes: u64,
    /// `written` when the backlog was last brought up to date.
    seen: u64,
}

impl Meter {
    fn new(epoch: Instant) -> Self {
        Meter {
            epoch,
            written: AtomicU64::new(0),
            blocked_since: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
            backlog: Mutex::new(Backlog::default()),
        }
    }

    /// Before a read: fails once killed, and remembers whom to wake.
    pub fn poll_read_allowed(&self, cx: &Context<'_>) -> Poll<std::io::Result<()>> {
        self.reader.register(cx.waker());
        self.allowed()
    }

    /// Before a write: fails once killed, and remembers whom to wake.
    pub fn poll_write_allowed(&self, cx: &Context<'_>) -> Poll<std::io::Result<()>> {
        self.writer.register(cx.waker());
        self.allowed()
    }

    fn allowed(&self) -> Poll<std::io::Result<()>> {
        if self.killed.load(Ordering::Relaxed) {
            Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "slow consumer: connection closed by the server",
            )))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    /// After a write: counts what the kernel took, or starts the stall clock when it
    /// took nothing.
    pub fn wrote<T>(&self, result: &Poll<std::io::Result<T>>, bytes: impl FnOnce(&T) -> usize) {
        match result {
            Poll::Ready(Ok(n)) => {
                let n = bytes(n);
                if n > 0 {
                    self.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.blocked_since.store(0, Ordering::Relaxed);
                }
            }
            Poll::Pending => {
                if self.blocked_since.load(Ordering::Relaxed) == 0 {
                    let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.blocked_since
                        .store(ms.saturating_add(1), Ordering::Relaxed);
                }
            }
            Poll::Ready(Err(_)) => {}
        }
    }

    /// How long writes have been refused, if they are now.
    fn blocked_for(&self, now: Instant) -> Option<Duration> {
        match self.blocked_since.load(Ordering::Relaxed) {
            0 => None,
            since => {
                Some(now.saturating_duration_since(self.epoch + Duration::from_millis(since - 1)))
            }
        }
    }

    /// Charges `bytes` queued for one of this connection's sockets; false (and the
    /// connection killed) when the backlog passes `budget`.
    pub fn charge(&self, bytes: usize, budget: u64) -> bool {
        let written = self.written.load(Ordering::Relaxed);
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        let drained = written.saturating_sub(backlog.seen);
        backlog.seen = written;
        backlog.bytes = backlog.bytes.saturating_sub(drained) + bytes as u64;
        let over = backlog.bytes > budget;
        drop(backlog);
        if over {
            self.kill();
        }
        !over
    }

    /// Closes the connection: its next read or write fails.
    pub fn kill(&self) {
        if !self.killed.swap(true, Ordering::Relaxed) {
            self.reader.wake();
            self.writer.wake();
        }
    }

    /// Whether [`Self::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

/// The connection a socket's packets currently leave by: its handshake's, until an
/// upgrade to websocket moves it.
#[derive(Debug)]
pub struct MeterSlot {
    meter: Mutex<Arc<Meter>>,
    /// The connection is the socket's websocket (not a polling handshake's connection,
    /// which may carry other sessions' requests later).
    websocket: AtomicBool,
}

impl MeterSlot {
    /// The connection now carrying the socket.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The socket's own websocket connection carries it (or is upgrading to).
    pub fn is_websocket(&self) -> bool {
        self.websocket.load(Ordering::Relaxed)
    }

    fn set_websocket(&self, meter: Arc<Meter>) {
        *self.meter.lock().unwrap_or_else(|p| p.into_inner()) = meter;
        self.websocket.store(true, Ordering::Relaxed);
    }
}

/// Every open connection's meter, the engine.io sessions waiting for an upgrade, and
/// the limits.
#[derive(Debug)]
pub struct Meters {
    /// `SOCKETIO_PATH`.
    engine_path: String,
    /// How long a cut session's id is remembered.
    cut_memory: Duration,
    epoch: Instant,
    budget: u64,
    stall: Duration,
    live: Mutex<Vec<Weak<Meter>>>,
    /// Long-polling sessions that may still upgrade, by engine.io session id.
    sessions: Mutex<HashMap<String, Weak<MeterSlot>>>,
    /// Connections carrying each session now: its websocket, its requests in flight.
    carriers: Mutex<HashMap<String, Vec<Weak<Meter>>>>,
    /// Sessions whose transport was closed lately, and when.
    cut: Mutex<HashMap<String, Instant>>,
    closed: Family<ReasonLabel, Counter>,
}

/// `path` is `prefix` (`SOCKETIO_PATH`) or below it.
pub fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Meters {
    /// Meters with a backlog `budget` in bytes and a `stall` limit, counting closed
    /// connections in `closed` by reason.
    pub fn new(
        budget: u64,
        stall: Duration,
        closed: Family<ReasonLabel, Counter>,
        engine: &crate::config::EngineConfig,
    ) -> Arc<Self> {
        Arc::new(Meters {
            engine_path: engine.path.clone(),
            // Past the ping interval plus timeout engine.io has dropped the session
            // itself and answers the same; twice that, to be sure.
            cut_memory: (engine.ping_interval + engine.ping_timeout) * 2,
            epoch: Instant::now(),
            budget,
            stall,
            live: Mutex::default(),
            sessions: Mutex::default(),
            carriers: Mutex::default(),
            cut: Mutex::default(),
            closed,
        })
    }

    /// A meter for a new connection (the listener wraps its stream with it).
    pub fn open(&self) -> Arc<Meter> {
        let meter = Arc::new(Meter::new(self.epoch));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&meter));
        meter
    }

    /// A slot for a socket handshaking on `meter`'s connection, over a websocket or
    /// long-polling.
    pub fn slot(&self, meter: Arc<Meter>, websocket: bool) -> Arc<MeterSlot> {
        Arc::new(MeterSlot {
            meter: Mutex::new(meter),
            websocket: AtomicBool::new(websocket),
        })
    }

    /// Remembers a long-polling session's slot until it upgrades or ends.
    pub fn await_upgrade(&self, session: String, slot: &Arc<MeterSlot>) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session, Arc::downgrade(slot));
    }

    /// A websocket upgrade of `session` arrived on `meter`'s connection: the socket's
    /// packets leave by it from now on.
    pub fn upgraded(&self, session: &str, meter: &Arc<Meter>) {
        let slot = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session)
            .and_then(|weak| weak.upgrade());
        if let Some(slot) = slot {
            slot.set_websocket(meter.clone());
        }
        self.carry(session, meter);
        // A cut between the caller's `was_cut` check and the carry above found no
        // carrier to close: close this one now (the client is still in its handshake).
        if self.was_cut(session) {
            meter.kill();
        }
    }

    fn carry(&self, session: &str, meter: &Arc<Meter>) {
        self.carriers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session.to_owned())
            .or_default()
            .push(Arc::downgrade(meter));
    }

    fn uncarry(&self, session: &str, meter: &Arc<Meter>) {
        let mut carriers = self.carriers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = carriers.get_mut(session) {
            list.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(meter)));
            if list.is_empty() {
                carriers.remove(session);
            }
        }
    }

    fn was_cut(&self, session: &str) -> bool {
        self.cut
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(session)
            .is_some_and(|at| at.elapsed() < self.cut_memory)
    }

    /// `SOCKETIO_PATH`: where engine.io requests go.
    pub fn engine_path(&self) -> &str {
        &self.engine_path
    }

    /// Ends the transport of the socket whose handshake request is `parts` and whose
    /// engine.io session is `session`, so that socket.io-client reconnects by itself
    /// (socketioxide answers a failing connect middleware with `connect_error`, after
    /// which the client never retries, and cannot close one socket's transport itself).
    /// Every connection carrying the session now is closed (its websocket, a long-poll
    /// in flight), and its later requests are answered as engine.io answers an unknown
    /// session. A polling handshake's own connection is left alone: keep-alive may
    /// carry other sessions' requests on it.
    pub fn close_transport(&self, parts: &axum::http::request::Parts, session: &str) {
        {
            let mut cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded by the rate of cuts over the memory window.
            let memory = self.cut_memory;
            cut.retain(|_, at| at.elapsed() < memory);
            cut.insert(session.to_owned(), Instant::now());
        }
        let carriers = self
            .carriers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session)
            .unwrap_or_default();
        for meter in carriers.iter().filter_map(Weak::upgrade) {
            meter.kill();
        }
        match parts.extensions.get::<Arc<MeterSlot>>() {
            Some(slot) if slot.websocket.load(Ordering::Relaxed) => slot.meter().kill(),
            Some(_) => {}
            None => tracing::warn!("socket without a metered connection; transport left open"),
        }
    }

    /// Charges `bytes` queued for a socket to its connection; false when that closed
    /// the connection (counted).
    pub fn charge(&self, slot: &MeterSlot, bytes: usize) -> bool {
        let meter = slot.meter();
        if meter.is_killed() {
            return false; // closed already (and counted once)
        }
        let ok = meter.charge(bytes, self.budget);
        if !ok {
            self.count("budget");
            tracing::info!(
                budget = self.budget,
                "closing a connection over MAX_SOCKET_BUFFER_BYTES (client not reading)"
            );
        }
        ok
    }

    fn count(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Closes every connection whose writes were refused for longer than the stall
    /// limit, and forgets meters and sessions that are gone. Returns how many it closed.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut closed = 0;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|weak| {
                let Some(meter) = weak.upgrade() else {
                    return false;
                };
                if !meter.is_killed() && meter.blocked_for(now).is_some_and(|d| d >= self.stall) {
                    meter.kill();
                    closed += 1;
                }
                true
            });
        for _ in 0..closed {
            self.count("stall");
        }
        if closed > 0 {
            tracing::info!(
                closed,
                "closed connections whose client stopped reading (WRITE_STALL_TIMEOUT_SECS)"
            );
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, slot| slot.strong_count() > 0);
        self.carriers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, list| {
                list.retain(|w| w.strong_count() > 0);
                !list.is_empty()
            });
        closed
    }

    /// Open connections tracked (for tests and metrics).
    pub fn open_connections(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Runs [`Self::sweep`] every second until `meters` is dropped elsewhere.
    pub fn spawn_sweeper(meters: &Arc<Self>) {
        let weak = Arc::downgrade(meters);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(meters) = weak.upgrade() else {
                    return;
                };
                meters.sweep(Instant::now());
            }
        });
    }
}

/// Links engine.io sockets to the connections their packets leave by. Runs on every
/// `/socket.io/` request, after the listener put the connection's [`Meter`] in the
/// request's extensions:
/// - a handshake (no `sid`) gets a [`MeterSlot`] that the socket keeps (socketioxide
///   keeps the handshake's request parts for the socket's life); a long-polling
///   handshake's session is remembered until it upgrades;
/// - a websocket upgrade (`sid`, `transport=websocket`) points the session's slot at its
///   own connection, which carries the session from then on;
/// - any other request of a session carries it while in flight (a long-poll);
/// - a request of a session whose transport was closed ([`Meters::close_transport`]) is
///   answered as engine.io answers an unknown session.
pub async fn link_sessions(
    axum::extract::State(meters): axum::extract::State<Arc<Meters>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let meter = req.extensions().get::<Arc<Meter>>().cloned();
    let Some(meter) = meter.filter(|_| under(req.uri().path(), &meters.engine_path)) else {
        return next.run(req).await;
    };
    let query = req.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        })
    };
    let websocket = param("transport").as_deref() == Some("websocket");
    match param("sid") {
        Some(session) if meters.was_cut(&session) => (
            axum::http::StatusCode::BAD_REQUEST,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"code":1,"message":"Session ID unknown"}"#,
        )
            .into_response(),
        Some(session) if websocket => {
            meters.upgraded(&session, &meter);
            next.run(req).await
        }
        Some(session) => {
            meters.carry(&session, &meter);
            let _carrying = Carrying {
                meters: &meters,
                session: &session,
                meter: &meter,
            };
            next.run(req).await
        }
        None => {
            let slot = meters.slot(meter, websocket);
            req.extensions_mut().insert(slot.clone());
            let response = next.run(req).await;
            if websocket || !response.status().is_success() {
                return response;
            }
            remember_polling_session(&meters, &slot, response).await
        }
    }
}

/// A request of a session in flight on a connection (until answered or abandoned).
struct Carrying<'a> {
    meters: &'a Meters,
    session: &'a str,
    meter: &'a Arc<Meter>,
}

impl Drop for Carrying<'_> {
    fn drop(&mut self) {
        self.meters.uncarry(self.session, self.meter);
    }
}

/// Reads the session id out of a long-polling handshake's answer (`0{"sid":…}`, about
/// 100 bytes; `96:0{"sid":…}` for engine.io 3) and gives the answer back unchanged.
async fn remember_polling_session(
    meters: &Meters,
    slot: &Arc<MeterSlot>,
    response: axum::response::Response,
) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(error = %e, "handshake answer unreadable");
            return axum::response::Response::from_parts(parts, axum::body::Body::empty());
        }
    };
    #[derive(serde::Deserialize)]
    struct Open {
        sid: String,
    }
    if let Some(open) = open_packet(&bytes)
        && let Ok(Open { sid }) = serde_json::from_slice::<Open>(open)
    {
        meters.await_upgrade(sid, slot);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The OPEN packet's JSON in a polling handshake's answer: `0{…}`, or with engine.io 3's
/// length prefix, `<length>:0{…}` (socket.io-client 2.x with `ALLOW_EIO3`).
fn open_packet(bytes: &[u8]) -> Option<&[u8]> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let packet = match bytes.get(digits) {
        Some(b':') if digits > 0 => bytes.get(digits + 1..)?,
        _ => bytes,
    };
    packet.strip_prefix(b"0")
}

/// About how many bytes `value` serializes to (strings by length, without escapes):
/// cheap enough for every reply, close enough for a budget in megabytes.
pub fn json_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

/// A lower bound of the bytes `value` takes in MessagePack (`PARSER=msgpack`): every
/// value in its shortest encoding. A JSON-sized charge would exceed what MessagePack
/// writes by a few bytes per field, and the backlog (charged minus written) would creep
/// up on a busy connection until a healthy client were closed as a slow one.
pub fn msgpack_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 1,
        Value::String(s) => s.len() + 1,
        Value::Array(items) => 1 + items.iter().map(msgpack_size).sum::<usize>(),
        Value::Object(map) => {
            1 + map
                .iter()
                .map(|(k, v)| k.len() + 1 + msgpack_size(v))
                .sum::<usize>()
        }
    }
}

/// About how many bytes `value` takes in the server's packet encoding.
pub fn encoded_size(parser: crate::config::ParserKind, value: &serde_json::Value) -> usize {
    match parser {
        crate::config::ParserKind::Json => json_size(value),
        crate::config::ParserKind::Msgpack => msgpack_size(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_packets_of_both_engine_io_versions() {
        assert_eq!(
            open_packet(b"0{\"sid\":\"a\"}"),
            Some(&b"{\"sid\":\"a\"}"[..])
        );
        assert_eq!(
            open_packet(b"12:0{\"sid\":\"a\"}"),
            Some(&b"{\"sid\":\"a\"}"[..])
        );
        assert_eq!(open_packet(b"12:"), None);
        assert_eq!(open_packet(b":0{}"), None);
        assert_eq!(open_packet(b"40"), None);
        assert_eq!(open_packet(b""), None);
    }

    fn meters(budget: u64, stall_ms: u64) -> Arc<Meters> {
        let engine = crate::config::Config::from_lookup(|k| {
            (k == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef-test".to_owned())
        })
        .map(|c| c.engine)
        .unwrap_or_else(|e| panic!("test config: {e}"));
        Meters::new(
            budget,
            Duration::from_millis(stall_ms),
            Family::default(),
            &engine,
        )
    }

    #[test]
    fn the_backlog_is_charged_minus_written_and_kills_past_the_budget() {
        let m = meters(1000, 60_000);
        let meter = m.open();
        let slot = m.slot(meter.clone(), true);
        assert!(m.charge(&slot, 600));
        // The kernel took 500 bytes: 100 left.
        meter.wrote(&Poll::Ready(Ok(500usize)), |n| *n);
        assert!(m.charge(&slot, 800)); // 900
        assert!(!meter.is_killed());
        assert!(!m.charge(&slot, 200)); // 1100 > 1000
        assert!(meter.is_killed());
        let waker = futures_util::task::noop_waker();
        let cx = Context::from_waker(&waker);
        assert!(matches!(meter.poll_read_allowed(&cx), Poll::Ready(Err(_))));
        assert!(matches!(meter.poll_write_allowed(&cx), Poll::Ready(Err(_))));
    }

    #[test]
    fn written_bytes_beyond_the_charges_do_not_build_credit() {
        let m = meters(1000, 60_000);
        let meter = m.open();
        let slot = m.slot(meter.clone(), true);
        // Broadcasts written, never charged: the backlog stays at zero, not below.
        meter.wrote(&Poll::Ready(Ok(50_000usize)), |n| *n);
        assert!(m.charge(&slot, 900));
        assert!(!m.charge(&slot, 200));
    }

    #[test]
    fn a_connection_refusing_writes_past_the_stall_limit_is_swept() {
        let m = meters(u64::MAX, 100);
        let stuck = m.open();
        let fine = m.open();
        stuck.wrote::<usize>(&Poll::Pending, |n| *n);
        fine.wrote::<usize>(&Poll::Pending, |n| *n);
        fine.wrote(&Poll::Ready(Ok(10usize)), |n| *n);
        assert_eq!(m.sweep(Instant::now()), 0);
        assert_eq!(m.sweep(Instant::now() + Duration::from_millis(150)), 1);
        assert!(stuck.is_killed());
        assert!(!fine.is_killed());
        drop(stuck);
        m.sweep(Instant::now());
        assert_eq!(m.open_connections(), 1);
    }

    #[test]
    fn an_upgrade_moves_the_socket_to_its_websocket_connection() {
        let m = meters(100, 60_000);
        let polling = m.open();
        let slot = m.slot(polling.clone(), false);
        m.await_upgrade("sid1".into(), &slot);
        let ws = m.open();
        m.upgraded("sid1", &ws);
        assert!(!m.charge(&slot, 200));
        assert!(ws.is_killed());
        assert!(!polling.is_killed());
        // The session is forgotten once upgraded, and sessions of dropped slots are swept.
        assert!(m.sessions.lock().unwrap().is_empty());
        let other = m.slot(polling, false);
        m.await_upgrade("sid2".into(), &other);
        drop(other);
        m.sweep(Instant::now());
        assert!(m.sessions.lock().unwrap().is_empty());
    }

    #[test]
    fn msgpack_size_never_exceeds_the_encoded_length() {
        for v in [
            serde_json::json!({ "a": [1, "xyz", { "k": null }], "long": "x".repeat(1000) }),
            serde_json::json!({ "id": 1_234_567_890_123_i64, "f": 1.5, "neg": -70000, "t": true }),
            serde_json::json!(["é".repeat(40), [], {}, "x".repeat(70_000)]),
        ] {
            let real = rmp_serde::to_vec_named(&v).unwrap().len();
            let estimate = msgpack_size(&v);
            assert!(
                estimate <= real && estimate + 64 > real,
                "{estimate} vs {real}"
            );
        }
    }

    #[test]
    fn json_size_is_close_to_the_serialized_length() {
        let v = serde_json::json!({ "a": [1, "xyz", { "k": null }], "long": "x".repeat(1000) });
        let real = serde_json::to_string(&v).unwrap().len();
        let estimate = json_size(&v);
        assert!(
            estimate >= real && estimate < real + 64,
            "{estimate} vs {real}"
        );
    }
}
