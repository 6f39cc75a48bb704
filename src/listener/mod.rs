//! The TCP accept loop under the application: connection limit, header-read and idle
//! timeouts, TCP_NODELAY, HTTP/1 with upgrades, graceful shutdown.
//!
//! `axum::serve` offers none of the timeouts, so this loop drives hyper itself, as
//! `axum::serve` does inside. What it owns is the life of a TCP connection until hyper
//! hands it to a websocket; the websocket's liveness is engine.io's ping timeout, and
//! closing sockets at shutdown is `serve`'s job (in `serve.rs`).

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Config;
use crate::metrics::{Metrics, TimeoutLabel};
use crate::outbound::Meters;

mod tracked;

pub(crate) use tracked::Tracked;

/// The answer to a connection over `MAX_CONNECTIONS`, written before reading anything.
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 5\r\n\
connection: close\r\n\
content-length: 78\r\n\
\r\n\
{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"too many connections, retry later\"}}";

/// How long a refused connection may take to receive its 503 and close.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The limits and counters the loop applies, taken from [`Config`] and [`Metrics`].
#[derive(Clone)]
pub struct Limits {
    header_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    open: Gauge,
    refused: Counter,
    timeouts: Family<TimeoutLabel, Counter>,
    meters: Arc<Meters>,
    bytes: Bytes,
}

/// `switchboard_bytes_sent_total` and `switchboard_bytes_received_total`.
#[derive(Clone)]
struct Bytes {
    sent: Counter,
    received: Counter,
}

impl Limits {
    /// Limits from `config`, counted in `metrics`.
    pub fn new(config: &Config, metrics: &Metrics, meters: Arc<Meters>) -> Self {
        Limits {
            header_timeout: config.http_header_timeout,
            idle_timeout: config.http_idle_timeout,
            max_connections: config.max_connections,
            open: metrics.connections_open.clone(),
            refused: metrics.connections_refused.clone(),
            timeouts: metrics.connection_timeouts.clone(),
            meters,
            bytes: Bytes {
                sent: metrics.bytes_sent.clone(),
                received: metrics.bytes_received.clone(),
            },
        }
    }

    /// Takes a connection slot, or `None` when `MAX_CONNECTIONS` are open.
    fn take_slot(&self) -> Option<Slot> {
        let before = self.open.inc();
        if usize::try_from(before).unwrap_or(usize::MAX) >= self.max_connections {
            self.open.dec();
            return None;
        }
        Some(Slot(self.open.clone()))
    }
}

/// One open connection in the gauge, for as long as its socket lives (websockets
/// included: hyper hands this IO on at the upgrade).
struct Slot(Gauge);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, lets
/// every connection finish its current request and returns once they have all closed.
/// Dropping the returned future aborts the connections still open.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Two small frames (an event then its ack) must not wait for the delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        match limits.take_slot() {
            Some(slot) => {
                connections.spawn(serve_connection(
                    tcp,
                    slot,
                    router.clone(),
                    limits.clone(),
                    stop.clone(),
                ));
            }
            None => {
                limits.refused.inc();
                connections.spawn(refuse(tcp));
            }
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Errors of one connection that say nothing about the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Answers 503 and closes. Reading what the client sent before closing keeps the
/// kernel from resetting the connection, which would lose the answer.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        tcp.write_all(FULL_RESPONSE).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// One connection: HTTP/1 with upgrades, until it closes, upgrades, times out, or
/// shutdown lets its current request finish.
async fn serve_connection(
    tcp: TcpStream,
    slot: Slot,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    // Once this function returns (closed, or upgraded to a WebSocket that keeps the
    // stream), nothing reads the clock: the writes of an upgraded socket stop reading
    // the time (a `clock_gettime` a delivery: 2% of the server's CPU in S7).
    let _unwatched = Unwatch(activity.clone());
    let meter = limits.meters.open();
    // The peer, for the access log and for what keys on it (the Admin UI's login limit);
    // socket.io keeps the handshake request's extensions, so a socket's peer stays readable.
    let peer = tcp.peer_addr().ok();
    let io = TokioIo::new(Tracked {
        inner: tcp,
        activity: activity.clone(),
        meter: meter.clone(),
        bytes: limits.bytes.clone(),
        _slot: slot,
    });
    let parks = activity.clone();
    let engine_path = limits.meters.engine_path().to_owned();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut router = router.clone();
        // A long-poll GET waits for data by design (up to the ping interval): it is
        // engine.io's to time out, not ours.
        let parked = is_long_poll(&req, &engine_path).then(|| Park::new(parks.clone()));
        let mut req = req.map(Body::new);
        // Sockets opened by this request charge their replies to this connection.
        req.extensions_mut().insert(meter.clone());
        if let Some(peer) = peer {
            req.extensions_mut().insert(PeerAddr(peer));
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        async move {
            let response = tower::Service::call(&mut router, req).await;
            drop(parked);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut draining = false;
    loop {
        let idle_deadline = activity.last() + limits.idle_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        limits.timeouts.get_or_create(&TimeoutLabel { kind: "header" }).inc();
                    }
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stop| *stop), if !draining => {
                // Finish the request in progress, then close (idle ones close now).
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                if activity.is_parked() {
                    // Look again one period from now; answering the poll restarts it too.
                    activity.touch();
                } else if activity.last() + limits.idle_timeout <= Instant::now() {
                    limits.timeouts.get_or_create(&TimeoutLabel { kind: "idle" }).inc();
                    tracing::debug!("closing a connection idle for HTTP_IDLE_TIMEOUT_SECS");
                    return;
                }
            }
        }
    }
}

/// An engine.io long-polling GET (under `SOCKETIO_PATH`).
fn is_long_poll(req: &Request<Incoming>, engine_path: &str) -> bool {
    req.method() == Method::GET && crate::outbound::under(req.uri().path(), engine_path)
}

/// The client's address, in every request's extensions (for the access log).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// When a connection last moved a byte, and whether a long-poll is parked on it.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last byte read or written.
    last_ms: AtomicU64,
    parked: AtomicUsize,
    /// Whether the HTTP connection's idle check still reads `last_ms`.
    watched: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            parked: AtomicUsize::new(0),
            watched: AtomicBool::new(true),
        }
    }

    fn touch(&self) {
        if !self.watched.load(Ordering::Relaxed) {
            return;
        }
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn is_parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed) > 0
    }
}

/// Stops [`Activity::touch`] once the HTTP connection's idle check is gone.
struct Unwatch(Arc<Activity>);

impl Drop for Unwatch {
    fn drop(&mut self) {
        self.0.watched.store(false, Ordering::Relaxed);
    }
}

/// A long-poll in progress; the idle clock restarts when it is answered.
struct Park(Arc<Activity>);

impl Park {
    fn new(activity: Arc<Activity>) -> Self {
        activity.parked.fetch_add(1, Ordering::Relaxed);
        Park(activity)
    }
}

impl Drop for Park {
    fn drop(&mut self) {
        self.0.touch();
        self.0.parked.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::FULL_RESPONSE;

    #[test]
    fn the_full_response_declares_its_body_length() {
        let text = std::str::from_utf8(FULL_RESPONSE).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
