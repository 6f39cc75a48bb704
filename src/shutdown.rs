//! Draining a node: what happens between the shutdown signal and `serve` returning.
//!
//! 1. At once: `/readyz` answers 503 (`draining`), so a load balancer stops sending new
//!    clients here, and new sessions (engine.io handshakes, plain WebSocket upgrades)
//!    are answered 503 with `Retry-After`; sessions already open keep being served.
//! 2. Over `SHUTDOWN_GRACE_SECS`: open connections are closed in waves, a share of what
//!    is left each time, so their clients reconnect to the other nodes spread over the
//!    window instead of all in the same second. A socket.io client sees its transport
//!    close and reconnects by itself; a plain WebSocket gets its close frame (1001).
//!    A connection with an event being handled waits for a later wave, so its ack
//!    goes out first; so does a socket whose batch window (restaurant batch mode) was
//!    just delivered.
//! 3. `serve` then stops accepting, lets what still runs finish, and closes the rest.
//!
//! Engine.io sessions with no namespace socket are not counted here: nothing lists
//! them; the final close (step 3) ends them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::metrics::CodeLabel;
use crate::outbound::{MeterSlot, under};
use crate::state::AppState;

/// Fewest connections a wave closes (but the last): a node with a handful of clients
/// has no stampede to spread, and they should not wait seconds for it.
pub const MIN_WAVE: usize = 10;
/// Most waves over the grace period.
pub const MAX_WAVES: usize = 10;

/// The answer to a new session while draining.
const DRAINING_BODY: &str =
    r#"{"error":{"code":"UNAVAILABLE","message":"server shutting down, retry later"}}"#;

/// Event handlers running for one socket (kept in its extensions): a wave leaves a
/// busy socket for later, so the reply in hand reaches it.
#[derive(Debug, Default)]
pub struct Busy(AtomicUsize);

/// Marks a socket busy until dropped.
#[derive(Debug)]
pub struct BusyGuard(Arc<Busy>);

impl Busy {
    /// The socket is handling one more event (call when the event arrives).
    pub fn enter(self: &Arc<Self>) -> BusyGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self.clone())
    }

    fn is_busy(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many waves `open` connections are closed in.
pub fn wave_count(open: usize) -> usize {
    open.div_ceil(MIN_WAVE).clamp(1, MAX_WAVES)
}

/// When wave `index` (from 0) of `waves` starts, after the signal.
pub fn wave_offset(grace: Duration, index: usize, waves: usize) -> Duration {
    let waves = u32::try_from(waves.max(1)).unwrap_or(u32::MAX);
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    grace / waves * index
}

/// One wave's count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wave {
    /// Connections closed by this wave.
    pub closed: usize,
    /// Connections still open after it (busy ones included).
    pub open: usize,
}

/// The drain's memory: the engine.io sessions it closed (a long-polling session stays
/// listed until engine.io times it out).
#[derive(Debug, Default)]
pub struct Drain {
    cut: HashSet<String>,
}

impl Drain {
    /// Open connections now (socket.io sessions and plain WebSockets).
    pub fn open<A: Adapter>(&self, app: &AppState<A>) -> usize {
        self.sessions(app).len() + app.ws.open_peers()
    }

    /// Closes a `1/waves_left` share of the open connections, idle ones only.
    pub fn close_wave<A: Adapter>(&mut self, app: &AppState<A>, waves_left: usize) -> Wave {
        let sessions = self.sessions(app);
        let peers = app.ws.open_peers();
        let open = sessions.len() + peers;
        let share = open.div_ceil(waves_left.max(1));
        let mut closed = 0;
        for (sid, sockets) in sessions {
            if closed == share {
                break;
            }
            if sockets.iter().any(is_busy) {
                continue;
            }
            // A batch window delivered now needs time to leave before the transport
            // is closed under it: the socket waits for a later wave (or the end).
            // Every socket's window, not only the first that held something.
            let flushed = sockets
                .iter()
                .filter(|s| crate::realtime::orders::flush_batch(s))
                .count()
                > 0;
            if flushed {
                continue;
            }
            if let Some(socket) = sockets.first() {
                app.meters.close_transport(socket.req_parts(), &sid);
                self.cut.insert(sid);
                closed += 1;
            }
        }
        closed += app
            .ws
            .close_idle(share - closed, crate::ws::CloseReason::Shutdown);
        Wave {
            closed,
            open: open - closed,
        }
    }

    /// This node's socket.io sessions not closed yet, with their namespace sockets.
    fn sessions<A: Adapter>(&self, app: &AppState<A>) -> HashMap<String, Vec<SocketRef<A>>> {
        let mut sessions: HashMap<String, Vec<SocketRef<A>>> = HashMap::new();
        for ns in app.fanout.broadcaster.io().nsps() {
            for socket in ns.sockets() {
                let sid = socket.id.as_str().to_owned();
                if !self.cut.contains(&sid) {
                    sessions.entry(sid).or_default().push(socket);
                }
            }
        }
        sessions
    }
}

/// Handling an event, or upgrading from long-polling (closing the probe in between
/// leaves engine.io-client paused and deaf until its ping timeout; see
/// `realtime::namespaces::cut_transport`).
fn is_busy<A: Adapter>(socket: &SocketRef<A>) -> bool {
    let handling = socket
        .extensions
        .get::<Arc<Busy>>()
        .is_some_and(|busy| busy.is_busy());
    let upgrading = socket.transport_type() == socketioxide::TransportType::Polling
        && socket
            .req_parts()
            .extensions
            .get::<Arc<MeterSlot>>()
            .is_some_and(|slot| slot.is_websocket());
    handling || upgrading
}

/// While draining, answers new sessions 503 (an engine.io handshake: a request under
/// `SOCKETIO_PATH` with no `sid`; a plain WebSocket upgrade). Requests of open
/// sessions, REST and health routes go through.
pub async fn refuse_new_sessions<A: Adapter>(
    State(app): State<AppState<A>>,
    req: Request,
    next: Next,
) -> Response {
    if app.readiness.is_draining() && opens_session(&req, &app.config.engine.path) {
        app.metrics
            .connects_refused
            .get_or_create(&CodeLabel {
                code: "SHUTTING_DOWN",
            })
            .inc();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "5"),
            ],
            DRAINING_BODY,
        )
            .into_response();
    }
    next.run(req).await
}

/// An engine.io handshake, or a WebSocket upgrade outside `SOCKETIO_PATH`.
fn opens_session(req: &Request, engine_path: &str) -> bool {
    let path = req.uri().path();
    if under(path, engine_path) {
        let has_sid = req
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .any(|pair| pair.starts_with("sid="));
        return !has_sid;
    }
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handful_of_connections_close_in_one_wave() {
        assert_eq!(wave_count(0), 1);
        assert_eq!(wave_count(MIN_WAVE), 1);
        assert_eq!(wave_count(MIN_WAVE + 1), 2);
        assert_eq!(wave_count(100_000), MAX_WAVES);
    }

    #[test]
    fn waves_start_evenly_across_the_grace_period() {
        let grace = Duration::from_secs(10);
        assert_eq!(wave_offset(grace, 0, 4), Duration::ZERO);
        assert_eq!(wave_offset(grace, 1, 4), Duration::from_millis(2500));
        assert_eq!(wave_offset(grace, 3, 4), Duration::from_millis(7500));
        assert_eq!(wave_offset(Duration::ZERO, 3, 4), Duration::ZERO);
    }

    #[test]
    fn only_handshakes_and_plain_upgrades_open_sessions() {
        let req = |uri: &str, upgrade: bool| {
            let mut b = Request::builder().uri(uri);
            if upgrade {
                b = b.header(header::UPGRADE, "websocket");
            }
            b.body(axum::body::Body::empty()).unwrap_or_default()
        };
        assert!(opens_session(
            &req("/socket.io/?EIO=4&transport=polling", false),
            "/socket.io"
        ));
        assert!(opens_session(
            &req("/socket.io/?EIO=4&transport=websocket", true),
            "/socket.io"
        ));
        assert!(!opens_session(
            &req("/socket.io/?EIO=4&transport=polling&sid=abc", false),
            "/socket.io"
        ));
        assert!(!opens_session(
            &req("/socket.io/?EIO=4&transport=websocket&sid=abc", true),
            "/socket.io"
        ));
        assert!(opens_session(&req("/ws", true), "/socket.io"));
        assert!(!opens_session(
            &req("/api/conversations", false),
            "/socket.io"
        ));
        assert!(!opens_session(&req("/readyz", false), "/socket.io"));
    }
}
