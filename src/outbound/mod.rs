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
//!
//! Here: the meters; `link.rs` the middleware that links engine.io sessions to their
//! connections; `size.rs` the cheap size estimates replies are charged with.
//!
//! Past 400 lines: `Meter` and `Meters` (budget, stall clock, sweeper) share their
//! counters; most of the length is the why above.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::ReasonLabel;

mod link;
mod size;
#[cfg(test)]
mod tests;

pub use link::link_sessions;
pub use size::encoded_size;

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
