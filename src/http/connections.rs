//! Connections the server can cut: every accepted TCP connection carries a switch that
//! ends it, and an engine.io session can be ended through the connections under it.
//!
//! This is how a socket.io client is told "come back later" rather than "you may not".
//! socketioxide answers a failing connect middleware with `connect_error`, after which
//! socket.io-client never reconnects, and has no public way to close one socket's
//! transport (its `close_underlying_transport` is crate-private). A transport that dies,
//! though, makes the client reconnect by itself with its backoff. So the server cuts the
//! TCP connections that carry the session: the websocket's (the handshake's own, or the
//! one upgraded from polling) and any long-poll in flight; and it answers later polling
//! requests of that session as engine.io answers an unknown one. Nothing socket.io
//! queued for the session after the cut can reach the client.
//!
//! The session id is the socket id: socketioxide gives a socket its engine.io sid.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a cut session's id is remembered: past the ping interval plus timeout
/// (25 s + 20 s) engine.io has dropped the session itself and answers the same.
const CUT_SESSION_MEMORY: Duration = Duration::from_secs(90);

/// The switch of one TCP connection.
#[derive(Debug, Default)]
pub struct Conn {
    cut: AtomicBool,
    read: AtomicWaker,
    write: AtomicWaker,
    /// The engine.io session upgraded to websocket on this connection, if any.
    upgraded: Mutex<Option<String>>,
}

impl Conn {
    /// Ends the connection: pending and later reads and writes fail, so hyper (or the
    /// websocket under engine.io) drops it.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.read.wake();
        self.write.wake();
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

/// Which connections carry each engine.io session now, and the sessions cut lately.
#[derive(Debug, Default)]
pub struct Sessions {
    carriers: Mutex<HashMap<String, Vec<Weak<Conn>>>>,
    cut: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    fn carriers(&self) -> MutexGuard<'_, HashMap<String, Vec<Weak<Conn>>>> {
        self.carriers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cut_list(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.cut.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, sid: &str, conn: &Arc<Conn>) {
        self.carriers()
            .entry(sid.to_owned())
            .or_default()
            .push(Arc::downgrade(conn));
    }

    fn remove(&self, sid: &str, conn: &Conn) {
        let mut carriers = self.carriers();
        if let Some(conns) = carriers.get_mut(sid) {
            conns.retain(|c| c.strong_count() > 0 && !std::ptr::eq(c.as_ptr(), conn));
            if conns.is_empty() {
                carriers.remove(sid);
            }
        }
    }

    fn was_cut(&self, sid: &str) -> bool {
        self.cut_list()
            .get(sid)
            .is_some_and(|at| at.elapsed() < CUT_SESSION_MEMORY)
    }

    /// Cuts every connection that carries `sid` now, and refuses its later requests.
    fn cut_session(&self, sid: &str) {
        {
            let mut cut = self.cut_list();
            // Bounded by the rate of cuts over the memory window.
            cut.retain(|_, at| at.elapsed() < CUT_SESSION_MEMORY);
            cut.insert(sid.to_owned(), Instant::now());
        }
        let conns = self.carriers().remove(sid).unwrap_or_default();
        for conn in conns.iter().filter_map(Weak::upgrade) {
            conn.cut();
        }
    }
}

/// What each request knows of its connection (axum's `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer.
    pub remote: SocketAddr,
    conn: Arc<Conn>,
    sessions: Arc<Sessions>,
}

impl Connected<IncomingStream<'_, Connections>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, Connections>) -> Self {
        let io = stream.io();
        ConnInfo {
            remote: *stream.remote_addr(),
            conn: io.conn.clone(),
            sessions: io.sessions.clone(),
        }
    }
}

/// Ends the transport of the socket whose handshake request is `parts` and whose
/// engine.io session is `sid`, so that the client reconnects by itself.
pub fn close_transport(parts: &Parts, sid: &str) {
    let Some(ConnectInfo(info)) = parts.extensions.get::<ConnectInfo<ConnInfo>>() else {
        tracing::warn!("no connection handle on this socket; transport left open");
        return;
    };
    info.sessions.cut_session(sid);
    // A websocket opened directly runs on the handshake's own connection. (A polling
    // handshake's connection may since carry other sessions' requests: not cut.)
    let direct_websocket = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "transport=websocket"));
    if direct_websocket {
        info.conn.cut();
    }
}

/// Records which connections carry each engine.io session (requests with `sid`), and
/// answers the requests of a cut session as engine.io answers an unknown one.
pub async fn track_sessions(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/socket.io") {
        return next.run(req).await;
    }
    let sid = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("sid=")))
        .map(str::to_owned);
    let info = req.extensions().get::<ConnectInfo<ConnInfo>>().cloned();
    let (Some(sid), Some(ConnectInfo(info))) = (sid, info) else {
        return next.run(req).await;
    };
    if info.sessions.was_cut(&sid) {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"code":1,"message":"Session ID unknown"}"#,
        )
            .into_response();
    }
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        // The websocket lives on after this response: it stays registered until the
        // connection closes (see `ConnIo`'s drop).
        info.sessions.add(&sid, &info.conn);
        *info.conn.upgraded.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid);
        return next.run(req).await;
    }
    // Until the response, or until the client gives up on the request.
    let _carrying = Carrying::new(&info.sessions, sid, &info.conn);
    next.run(req).await
}

/// A request of a session in flight on a connection.
struct Carrying<'a> {
    sessions: &'a Sessions,
    sid: String,
    conn: Arc<Conn>,
}

impl<'a> Carrying<'a> {
    fn new(sessions: &'a Sessions, sid: String, conn: &Arc<Conn>) -> Self {
        sessions.add(&sid, conn);
        Carrying {
            sessions,
            sid,
            conn: conn.clone(),
        }
    }
}

impl Drop for Carrying<'_> {
    fn drop(&mut self) {
        self.sessions.remove(&self.sid, &self.conn);
    }
}

/// The TCP listener of the server: sets TCP_NODELAY and gives each connection a switch.
#[derive(Debug)]
pub struct Connections {
    listener: TcpListener,
    sessions: Arc<Sessions>,
}

impl Connections {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener) -> Self {
        Connections {
            listener,
            sessions: Arc::default(),
        }
    }
}

impl Listener for Connections {
    type Io = ConnIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, addr)) => {
                    // Two small frames (an event then its ack) must not wait for the
                    // delayed ACK (Nagle): p99 40 ms → 0.3 ms.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    let io = ConnIo {
                        tcp,
                        conn: Arc::default(),
                        sessions: self.sessions.clone(),
                    };
                    return (io, addr);
                }
                Err(e) => {
                    // As axum's own TcpListener: out of descriptors and the like pass.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A TCP connection that fails every read and write once cut.
#[derive(Debug)]
pub struct ConnIo {
    tcp: TcpStream,
    conn: Arc<Conn>,
    sessions: Arc<Sessions>,
}

fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by the server",
    )
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Registered before the check, so a cut between the two still wakes this read.
        this.conn.read.register(cx.waker());
        if this.conn.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.conn.write.register(cx.waker());
        if this.conn.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.conn.is_cut() {
            return Poll::Ready(Err(cut_error()));
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        let upgraded = self
            .conn
            .upgraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(sid) = upgraded {
            self.sessions.remove(&sid, &self.conn);
        }
    }
}
