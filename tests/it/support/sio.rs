//! Minimal socket.io v5 / engine.io v4 test client over a WebSocket.
//!
//! Gives the integration tests exact control over the frames sent to the
//! server. One client = one engine.io connection attached to one namespace.
//!
//! * a reader task answers engine.io pings at once, routes ACK packets to the
//!   pending `emit_ack*` calls and buffers EVENT packets for `recv*`;
//! * a writer task owns the websocket sink; every send waits until its frame
//!   has been written to the socket, so frames go out in call order;
//! * every wait is bounded (5 s by default): a broken test fails, it never hangs.
//!
//! Set `SIO_CLIENT_DEBUG=1` to print every frame sent and received to stderr.
//!
//! Past 400 lines: a whole engine.io/socket.io client (handshake, packets, acks, binary
//! attachments) the tests drive frame by frame.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default bound of every wait of this client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

// ---------------------------------------------------------------------------
// Options and errors
// ---------------------------------------------------------------------------

/// Options of [`SioClient::connect`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Auth payload of the socket.io CONNECT packet (`40/ns,{auth}`); none if `None`.
    pub auth: Option<Value>,
    /// Extra query parameters of the handshake URL (percent-encoded by the client).
    pub query: Vec<(String, String)>,
    /// Extra headers of the HTTP upgrade request (`Authorization`, `Origin`, ...).
    pub headers: Vec<(String, String)>,
}

impl ConnectOptions {
    /// Options with only an auth payload.
    pub fn with_auth(auth: Value) -> Self {
        Self {
            auth: Some(auth),
            ..Self::default()
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header of the HTTP upgrade request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
}

/// Why [`SioClient::connect`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered CONNECT_ERROR (`44/ns,{"message": ...}`); holds the message.
    Refused(String),
    /// Transport failure: refused HTTP upgrade (status in the text), closed socket,
    /// malformed handshake, timeout, bad option...
    Io(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(msg) => write!(f, "socket.io connect refused: {msg}"),
            Self::Io(msg) => write!(f, "socket.io connection failed: {msg}"),
        }
    }
}

impl std::error::Error for ConnectError {}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

/// socket.io packet types.
pub mod kind {
    /// CONNECT
    pub const CONNECT: u8 = 0;
    /// DISCONNECT
    pub const DISCONNECT: u8 = 1;
    /// EVENT
    pub const EVENT: u8 = 2;
    /// ACK
    pub const ACK: u8 = 3;
    /// CONNECT_ERROR
    pub const CONNECT_ERROR: u8 = 4;
    /// BINARY_EVENT
    pub const BINARY_EVENT: u8 = 5;
    /// BINARY_ACK
    pub const BINARY_ACK: u8 = 6;
}

/// A decoded socket.io packet (the payload of an engine.io MESSAGE, without the `4`).
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// Packet type (see [`kind`]).
    pub kind: u8,
    /// Namespace, `/` when the packet has no `/ns,` part.
    pub ns: String,
    /// Ack id, if any.
    pub ack_id: Option<u64>,
    /// JSON payload, if any.
    pub data: Option<Value>,
}

/// Parses a socket.io packet: type digit, optional `/ns,` (only when the packet
/// continues with `/`), optional ack id digits, optional JSON.
/// Binary packets have their `<n>-` attachment count skipped.
pub fn parse_sio_packet(s: &str) -> Result<SioPacket, String> {
    let first = s.as_bytes().first().ok_or("empty socket.io packet")?;
    if !first.is_ascii_digit() {
        return Err(format!("bad socket.io packet type in {s:?}"));
    }
    let kind = first - b'0';
    let mut rest = &s[1..];
    if kind == kind::BINARY_EVENT || kind == kind::BINARY_ACK {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with('-') {
            rest = &rest[digits + 1..];
        }
    }
    let ns = if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => {
                let ns = &rest[..i];
                rest = &rest[i + 1..];
                ns.to_owned()
            }
            None => {
                let ns = rest.to_owned();
                rest = "";
                ns
            }
        }
    } else {
        "/".to_owned()
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|e| format!("bad ack id in {s:?}: {e}"))?,
        )
    } else {
        None
    };
    rest = &rest[digits..];
    let data = if rest.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(rest).map_err(|e| format!("bad JSON in {s:?}: {e}"))?)
    };
    Ok(SioPacket {
        kind,
        ns,
        ack_id,
        data,
    })
}

/// Encodes a socket.io packet (without the engine.io `4` prefix).
/// Namespace `/` is written without the `/ns,` part.
pub fn encode_sio_packet(kind: u8, ns: &str, ack_id: Option<u64>, data: Option<&Value>) -> String {
    let mut s = kind.to_string();
    if ns != "/" && !ns.is_empty() {
        s.push_str(ns);
        s.push(',');
    }
    if let Some(id) = ack_id {
        s.push_str(&id.to_string());
    }
    if let Some(data) = data {
        s.push_str(&data.to_string());
    }
    s
}

fn normalize_ns(ns: &str) -> String {
    if ns.is_empty() {
        "/".to_owned()
    } else if ns.starts_with('/') {
        ns.to_owned()
    } else {
        format!("/{ns}")
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `http://h:p` / `ws://h:p` (optionally with a path prefix) -> engine.io URL.
fn engine_url(base: &str, transport: &str, query: &[(String, String)], websocket: bool) -> String {
    let base = base.trim_end_matches('/');
    let base = if websocket {
        if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if base.contains("://") {
            base.to_owned()
        } else {
            format!("ws://{base}")
        }
    } else if let Some(rest) = base.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = base.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if base.contains("://") {
        base.to_owned()
    } else {
        format!("http://{base}")
    };
    let mut url = format!("{base}/socket.io/?EIO=4&transport={transport}");
    for (k, v) in query {
        url.push('&');
        url.push_str(&percent_encode(k));
        url.push('=');
        url.push_str(&percent_encode(v));
    }
    url
}

fn debug_enabled() -> bool {
    std::env::var_os("SIO_CLIENT_DEBUG").is_some()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Shared state between the client handle and its tasks
// ---------------------------------------------------------------------------

struct Shared {
    ns: String,
    /// Received EVENTs of our namespace, in arrival order: (name, arguments).
    events: Mutex<VecDeque<(String, Vec<Value>)>>,
    /// Pending acks by id.
    acks: Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>,
    /// Woken on every new event and on disconnection.
    notify: Notify,
    disconnected: AtomicBool,
    disconnect_reason: Mutex<Option<String>>,
    /// engine.io pings answered since the handshake.
    pings: AtomicU64,
    /// Every text frame received except engine.io pings (for debugging).
    frames: Mutex<Vec<String>>,
}

impl Shared {
    fn mark_disconnected(&self, reason: String) {
        {
            let mut r = lock(&self.disconnect_reason);
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.disconnected.store(true, Ordering::SeqCst);
        // Dropping the senders makes the pending emit_ack calls fail at once.
        lock(&self.acks).clear();
        self.notify.notify_waiters();
    }

    fn push_event(&self, name: String, args: Vec<Value>) {
        lock(&self.events).push_back((name, args));
        self.notify.notify_waiters();
    }

    fn take_event(&self, event: &str) -> Option<Vec<Value>> {
        let mut events = lock(&self.events);
        let pos = events.iter().position(|(name, _)| name == event)?;
        events.remove(pos).map(|(_, args)| args)
    }

    fn is_disconnected(&self) -> bool {
        self.disconnected.load(Ordering::SeqCst)
    }

    fn buffered_names(&self) -> Vec<String> {
        lock(&self.events).iter().map(|(n, _)| n.clone()).collect()
    }

    /// Handles one sio packet of any namespace received after the handshake.
    fn handle_sio(&self, packet: SioPacket) {
        if packet.ns != self.ns {
            return;
        }
        match packet.kind {
            kind::EVENT => match packet.data {
                Some(Value::Array(mut arr)) if matches!(arr.first(), Some(Value::String(_))) => {
                    let args = arr.split_off(1);
                    if let Some(Value::String(name)) = arr.pop() {
                        self.push_event(name, args);
                    }
                }
                other => eprintln!("[sio client] ignoring malformed EVENT payload: {other:?}"),
            },
            kind::ACK => {
                let args = match packet.data {
                    Some(Value::Array(arr)) => arr,
                    Some(other) => vec![other],
                    None => Vec::new(),
                };
                let sender = packet.ack_id.and_then(|id| lock(&self.acks).remove(&id));
                match sender {
                    Some(tx) => {
                        let _ = tx.send(args);
                    }
                    None => eprintln!(
                        "[sio client] ACK with unknown id {:?}: {args:?}",
                        packet.ack_id
                    ),
                }
            }
            kind::DISCONNECT => {
                self.mark_disconnected(format!("server sent DISCONNECT for {}", self.ns));
            }
            kind::CONNECT_ERROR => {
                self.mark_disconnected(format!(
                    "server sent CONNECT_ERROR for {}: {:?}",
                    self.ns, packet.data
                ));
            }
            _ => {}
        }
    }
}

enum Out {
    /// A frame and whom to tell whether it was written.
    Frame(Message, Option<oneshot::Sender<bool>>),
    /// Send a websocket close frame and stop.
    Close,
}

async fn writer_loop(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::UnboundedReceiver<Out>) {
    while let Some(out) = rx.recv().await {
        match out {
            Out::Frame(msg, done) => {
                if debug_enabled() {
                    match &msg {
                        Message::Text(t) => eprintln!("[sio client] >> {}", t.as_str()),
                        other => eprintln!("[sio client] >> {other:?}"),
                    }
                }
                let ok = matches!(timeout(DEFAULT_TIMEOUT, sink.send(msg)).await, Ok(Ok(())));
                if let Some(done) = done {
                    let _ = done.send(ok);
                }
                if !ok {
                    break;
                }
            }
            Out::Close => {
                let _ = timeout(DEFAULT_TIMEOUT, sink.send(Message::Close(None))).await;
                let _ = timeout(DEFAULT_TIMEOUT, sink.close()).await;
                break;
            }
        }
    }
}

async fn reader_loop(
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Out>,
) {
    let reason = loop {
        let msg = match stream.next().await {
            None => break "websocket stream ended".to_owned(),
            Some(Err(e)) => break format!("websocket error: {e}"),
            Some(Ok(msg)) => msg,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                // Keep reading so that the close handshake completes.
                shared.mark_disconnected(format!("websocket closed by server: {frame:?}"));
                continue;
            }
            _ => continue,
        };
        let text = text.as_str();
        if debug_enabled() {
            eprintln!("[sio client] << {text}");
        }
        match text.as_bytes().first() {
            Some(b'2') => {
                shared.pings.fetch_add(1, Ordering::SeqCst);
                let _ = out.send(Out::Frame(Message::text(format!("3{}", &text[1..])), None));
                continue;
            }
            Some(b'1') => {
                lock(&shared.frames).push(text.to_owned());
                shared.mark_disconnected("server sent engine.io CLOSE".to_owned());
                continue;
            }
            _ => {}
        }
        lock(&shared.frames).push(text.to_owned());
        if let Some(payload) = text.strip_prefix('4') {
            match parse_sio_packet(payload) {
                Ok(packet) => shared.handle_sio(packet),
                Err(e) => eprintln!("[sio client] unparsable frame: {e}"),
            }
        }
    };
    shared.mark_disconnected(reason);
}

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

/// Next text frame during the handshake, answering pings.
async fn handshake_next(
    ws: &mut Ws,
    deadline: Instant,
    what: &str,
) -> Result<String, ConnectError> {
    loop {
        let msg = timeout_at(deadline, ws.next())
            .await
            .map_err(|_| ConnectError::Io(format!("timed out waiting for {what}")))?;
        match msg {
            None => {
                return Err(ConnectError::Io(format!(
                    "socket closed while waiting for {what}"
                )));
            }
            Some(Err(e)) => {
                return Err(ConnectError::Io(format!(
                    "websocket error while waiting for {what}: {e}"
                )));
            }
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if debug_enabled() {
                    eprintln!("[sio client] << {t}");
                }
                if let Some(payload) = t.strip_prefix('2') {
                    ws.send(Message::text(format!("3{payload}")))
                        .await
                        .map_err(|e| ConnectError::Io(format!("cannot answer ping: {e}")))?;
                    continue;
                }
                return Ok(t.to_owned());
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(ConnectError::Io(format!(
                    "socket closed by server while waiting for {what}: {frame:?}"
                )));
            }
            Some(Ok(_)) => continue,
        }
    }
}

async fn close_quietly(ws: &mut Ws) {
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// A socket.io client connected to one namespace over a websocket.
pub struct SioClient {
    ns: String,
    sid: String,
    open: Value,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Out>,
    next_ack: AtomicU64,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
}

impl fmt::Debug for SioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SioClient")
            .field("ns", &self.ns)
            .field("sid", &self.sid)
            .field("disconnected", &self.shared.is_disconnected())
            .finish()
    }
}

impl SioClient {
    /// Opens `ws://…/socket.io/?EIO=4&transport=websocket` (plus `opts.query`) with
    /// `opts.headers` on the upgrade request, reads the engine.io OPEN packet, sends
    /// CONNECT for `ns` with `opts.auth` and waits for the server's CONNECT (sid) or
    /// CONNECT_ERROR. `base` is `http://127.0.0.1:PORT` (or `ws://…`); `ns` like `/chat`.
    pub async fn connect(
        base: &str,
        ns: &str,
        opts: ConnectOptions,
    ) -> Result<SioClient, ConnectError> {
        let ns = normalize_ns(ns);
        let url = engine_url(base, "websocket", &opts.query, true);
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Io(format!("bad url {url}: {e}")))?;
        for (name, value) in &opts.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ConnectError::Io(format!("bad header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| ConnectError::Io(format!("bad header value {value:?}: {e}")))?;
            req.headers_mut().append(name, value);
        }

        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        let mut ws = match timeout_at(deadline, tokio_tungstenite::connect_async(req)).await {
            Err(_) => return Err(ConnectError::Io(format!("timed out opening {url}"))),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                return Err(ConnectError::Io(format!(
                    "HTTP upgrade refused: status {} for {url}: {body}",
                    resp.status()
                )));
            }
            Ok(Err(e)) => return Err(ConnectError::Io(format!("cannot open {url}: {e}"))),
            Ok(Ok((ws, _resp))) => ws,
        };

        // engine.io OPEN
        let open_frame = handshake_next(&mut ws, deadline, "engine.io OPEN").await?;
        let open: Value = match open_frame.strip_prefix('0').map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => {
                close_quietly(&mut ws).await;
                return Err(ConnectError::Io(format!(
                    "expected engine.io OPEN, got {open_frame:?}"
                )));
            }
        };

        // socket.io CONNECT
        let connect = format!(
            "4{}",
            encode_sio_packet(kind::CONNECT, &ns, None, opts.auth.as_ref())
        );
        if debug_enabled() {
            eprintln!("[sio client] >> {connect}");
        }
        ws.send(Message::text(connect))
            .await
            .map_err(|e| ConnectError::Io(format!("cannot send CONNECT: {e}")))?;

        let mut early_events = VecDeque::new();
        let sid = loop {
            let frame =
                handshake_next(&mut ws, deadline, &format!("CONNECT answer for {ns}")).await?;
            if frame.starts_with('1') {
                return Err(ConnectError::Io(format!(
                    "engine.io CLOSE while connecting to {ns}"
                )));
            }
            let Some(payload) = frame.strip_prefix('4') else {
                continue;
            };
            let packet = match parse_sio_packet(payload) {
                Ok(p) => p,
                Err(e) => {
                    close_quietly(&mut ws).await;
                    return Err(ConnectError::Io(e));
                }
            };
            if packet.ns != ns {
                continue;
            }
            match packet.kind {
                kind::CONNECT => {
                    let sid = packet
                        .data
                        .as_ref()
                        .and_then(|d| d.get("sid"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    match sid {
                        Some(sid) => break sid,
                        None => {
                            close_quietly(&mut ws).await;
                            return Err(ConnectError::Io(format!(
                                "CONNECT without sid: {frame:?}"
                            )));
                        }
                    }
                }
                kind::CONNECT_ERROR => {
                    let message = match &packet.data {
                        Some(Value::Object(o)) => match o.get("message") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => Value::Object(o.clone()).to_string(),
                        },
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    close_quietly(&mut ws).await;
                    return Err(ConnectError::Refused(message));
                }
                kind::EVENT => {
                    if let Some(Value::Array(mut arr)) = packet.data
                        && let Some(Value::String(_)) = arr.first()
                    {
                        let args = arr.split_off(1);
                        if let Some(Value::String(name)) = arr.pop() {
                            early_events.push_back((name, args));
                        }
                    }
                }
                kind::DISCONNECT => {
                    close_quietly(&mut ws).await;
                    return Err(ConnectError::Io(format!(
                        "DISCONNECT while connecting to {ns}"
                    )));
                }
                _ => {}
            }
        };

        let shared = Arc::new(Shared {
            ns: ns.clone(),
            events: Mutex::new(early_events),
            acks: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            disconnected: AtomicBool::new(false),
            disconnect_reason: Mutex::new(None),
            pings: AtomicU64::new(0),
            frames: Mutex::new(Vec::new()),
        });
        let (sink, stream) = ws.split();
        let (out, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(writer_loop(sink, rx));
        let reader = tokio::spawn(reader_loop(stream, shared.clone(), out.clone()));
        Ok(SioClient {
            ns,
            sid,
            open,
            shared,
            out,
            next_ack: AtomicU64::new(1),
            writer: Some(writer),
            reader: Some(reader),
        })
    }

    /// socket.io sid from the server's CONNECT packet.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Namespace this client is connected to.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The engine.io OPEN packet JSON (`sid`, `pingInterval`, `pingTimeout`, `maxPayload`, ...).
    pub fn open_packet(&self) -> &Value {
        &self.open
    }

    /// True once the server closed the namespace or the connection.
    pub fn is_disconnected(&self) -> bool {
        self.shared.is_disconnected()
    }

    /// Why the client got disconnected, if it did.
    pub fn disconnect_reason(&self) -> Option<String> {
        lock(&self.shared.disconnect_reason).clone()
    }

    /// Number of engine.io pings answered since the handshake.
    pub fn pings_answered(&self) -> u64 {
        self.shared.pings.load(Ordering::SeqCst)
    }

    /// Every text frame received after the handshake, except engine.io pings.
    pub fn frames(&self) -> Vec<String> {
        lock(&self.shared.frames).clone()
    }

    /// Sends a raw engine.io text frame (e.g. `42["x"]`, `4garbage`) and waits until
    /// it is written. Returns false if the connection is closed.
    pub async fn send_raw(&self, frame: &str) -> bool {
        self.send_frame(frame.to_owned()).await
    }

    /// Sends a raw binary websocket frame (a socket.io binary attachment: engine.io v4
    /// sends attachments as bare binary frames) and waits until it is written.
    pub async fn send_raw_binary(&self, data: Vec<u8>) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .out
            .send(Out::Frame(Message::binary(data), Some(tx)))
            .is_err()
        {
            return false;
        }
        matches!(timeout(DEFAULT_TIMEOUT, rx).await, Ok(Ok(true)))
    }

    async fn send_frame(&self, frame: String) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .out
            .send(Out::Frame(Message::text(frame), Some(tx)))
            .is_err()
        {
            return false;
        }
        matches!(timeout(DEFAULT_TIMEOUT, rx).await, Ok(Ok(true)))
    }

    fn event_frame(&self, event: &str, args: Vec<Value>, ack_id: Option<u64>) -> String {
        let mut arr = Vec::with_capacity(args.len() + 1);
        arr.push(Value::String(event.to_owned()));
        arr.extend(args);
        format!(
            "4{}",
            encode_sio_packet(kind::EVENT, &self.ns, ack_id, Some(&Value::Array(arr)))
        )
    }

    /// Fire and forget: sends `["event", data]` and returns once the frame is written.
    /// If the connection is already closed the frame is dropped silently (see
    /// [`Self::is_disconnected`]).
    pub async fn emit(&self, event: &str, data: Value) {
        self.emit_args(event, vec![data]).await;
    }

    /// Fire and forget with a raw argument list: sends `["event", ...args]`.
    pub async fn emit_args(&self, event: &str, args: Vec<Value>) {
        let frame = self.event_frame(event, args, None);
        self.send_frame(frame).await;
    }

    /// Emits `["event", data]` with an ack id and waits (up to 5 s, then panics) for
    /// the ack; returns its first argument (`Null` if the ack has no argument).
    pub async fn emit_ack(&self, event: &str, data: Value) -> Value {
        self.emit_ack_args(event, vec![data]).await
    }

    /// Like [`Self::emit_ack`] with a raw argument list: sends `["event", ...args]`.
    pub async fn emit_ack_args(&self, event: &str, args: Vec<Value>) -> Value {
        self.emit_ack_all(event, args)
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Like [`Self::emit_ack_args`] but returns every argument of the ack.
    pub async fn emit_ack_all(&self, event: &str, args: Vec<Value>) -> Vec<Value> {
        match self.emit_ack_timeout(event, args, DEFAULT_TIMEOUT).await {
            Ok(args) => args,
            Err(e) => panic!("emit_ack(`{event}`) on {}: {e}", self.ns),
        }
    }

    /// Emits `["event", ...args]` with an ack id and waits up to `within` for the
    /// ack's arguments. Err says why there is none (timeout or closed connection);
    /// use it to check that the server does *not* answer.
    pub async fn emit_ack_timeout(
        &self,
        event: &str,
        args: Vec<Value>,
        within: Duration,
    ) -> Result<Vec<Value>, String> {
        let id = self.next_ack.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.acks).insert(id, tx);
        if self.shared.is_disconnected() {
            lock(&self.shared.acks).remove(&id);
            return Err(format!(
                "connection already closed ({})",
                self.disconnect_reason().unwrap_or_default()
            ));
        }
        let frame = self.event_frame(event, args, Some(id));
        if !self.send_frame(frame).await {
            lock(&self.shared.acks).remove(&id);
            return Err("could not write the EVENT frame (connection closed)".to_owned());
        }
        self.ack_within(id, rx, within).await
    }

    /// Waits up to `within` for the ack `id` that `rx` receives.
    async fn ack_within(
        &self,
        id: u64,
        rx: oneshot::Receiver<Vec<Value>>,
        within: Duration,
    ) -> Result<Vec<Value>, String> {
        match timeout(within, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(format!(
                "connection closed before the ack ({})",
                self.disconnect_reason().unwrap_or_default()
            )),
            Err(_) => {
                lock(&self.shared.acks).remove(&id);
                Err(format!("no ack (id {id}) within {within:?}"))
            }
        }
    }

    /// Emits a socket.io BINARY_EVENT `["event", {_placeholder, num: 0}, …]` with one
    /// placeholder per attachment, then each attachment as a binary frame, and waits up
    /// to `within` for the ack (Err as in [`Self::emit_ack_timeout`]).
    pub async fn emit_binary_ack(
        &self,
        event: &str,
        attachments: Vec<Vec<u8>>,
        within: Duration,
    ) -> Result<Vec<Value>, String> {
        let id = self.next_ack.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.acks).insert(id, tx);
        let mut args = vec![Value::String(event.to_owned())];
        args.extend(
            (0..attachments.len())
                .map(|num| serde_json::json!({ "_placeholder": true, "num": num })),
        );
        let nsp = if self.ns == "/" {
            String::new()
        } else {
            format!("{},", self.ns)
        };
        let frame = format!("45{}-{nsp}{id}{}", attachments.len(), Value::Array(args));
        if !self.send_frame(frame).await {
            return Err("could not write the BINARY_EVENT frame".to_owned());
        }
        for data in attachments {
            if !self.send_raw_binary(data).await {
                return Err("could not write an attachment (connection closed)".to_owned());
            }
        }
        self.ack_within(id, rx, within).await
    }

    /// Waits (up to 5 s, then panics naming the event) for the next EVENT `event`;
    /// returns its first argument (`Null` if none). Other events stay buffered.
    pub async fn recv(&self, event: &str) -> Value {
        self.recv_args(event)
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Like [`Self::recv`] but returns every argument of the event.
    pub async fn recv_args(&self, event: &str) -> Vec<Value> {
        match self.recv_args_timeout(event, DEFAULT_TIMEOUT).await {
            Some(args) => args,
            None => {
                let state = match self.disconnect_reason() {
                    Some(reason) => format!("disconnected: {reason}"),
                    None => "still connected".to_owned(),
                };
                panic!(
                    "recv(`{event}`) on {}: no such event within {DEFAULT_TIMEOUT:?} ({state}); \
                     other buffered events: {:?}",
                    self.ns,
                    self.shared.buffered_names()
                )
            }
        }
    }

    /// Like [`Self::recv`] with a custom timeout; None on timeout (or as soon as the
    /// connection is closed with no such event buffered).
    pub async fn recv_timeout(&self, event: &str, timeout: Duration) -> Option<Value> {
        self.recv_args_timeout(event, timeout)
            .await
            .map(|args| args.into_iter().next().unwrap_or(Value::Null))
    }

    /// Like [`Self::recv_timeout`] but returns every argument of the event.
    pub async fn recv_args_timeout(&self, event: &str, timeout: Duration) -> Option<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(args) = self.shared.take_event(event) {
                return Some(args);
            }
            if self.shared.is_disconnected() {
                return None;
            }
            if timeout_at(deadline, notified).await.is_err() {
                return self.shared.take_event(event);
            }
        }
    }

    /// Panics if an event `event` is buffered or arrives within `within`.
    pub async fn expect_none(&self, event: &str, within: Duration) {
        if let Some(args) = self.recv_args_timeout(event, within).await {
            panic!(
                "expect_none(`{event}`) on {}: unexpected event received with args {args:?}",
                self.ns
            );
        }
    }

    /// Drains every buffered event named `event` (first arguments, arrival order).
    pub fn drain(&self, event: &str) -> Vec<Value> {
        self.drain_args(event)
            .into_iter()
            .map(|args| args.into_iter().next().unwrap_or(Value::Null))
            .collect()
    }

    /// Drains every buffered event named `event` (all arguments, arrival order).
    pub fn drain_args(&self, event: &str) -> Vec<Vec<Value>> {
        let mut events = lock(&self.shared.events);
        let mut taken = Vec::new();
        events.retain(|(name, args)| {
            if name == event {
                taken.push(args.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    /// Waits until the server closes the namespace (DISCONNECT) or the connection;
    /// true if it did within `timeout`.
    pub async fn wait_disconnected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.is_disconnected() {
                return true;
            }
            if timeout_at(deadline, notified).await.is_err() {
                return self.shared.is_disconnected();
            }
        }
    }

    /// Sends socket.io DISCONNECT, closes the websocket and waits (bounded) until the
    /// server has acknowledged the close.
    pub async fn close(mut self) {
        let frame = format!(
            "4{}",
            encode_sio_packet(kind::DISCONNECT, &self.ns, None, None)
        );
        self.send_frame(frame).await;
        self.shutdown().await;
    }

    /// Closes the websocket *without* socket.io DISCONNECT (transport loss) and waits
    /// (bounded) until the server has acknowledged the close.
    pub async fn close_transport(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        let _ = self.out.send(Out::Close);
        if let Some(writer) = self.writer.take() {
            let _ = timeout(Duration::from_secs(2), writer).await;
        }
        if let Some(mut reader) = self.reader.take()
            && timeout(Duration::from_secs(2), &mut reader).await.is_err()
        {
            reader.abort();
        }
    }
}

impl Drop for SioClient {
    /// A dropped client closes its websocket (after the frames already queued).
    fn drop(&mut self) {
        let _ = self.out.send(Out::Close);
    }
}

/// HTTP GET of `/socket.io/?EIO=4&transport=polling`; returns the OPEN packet JSON
/// (leading `0` stripped). Panics on any failure (5 s bound).
pub async fn connect_polling_handshake(base: &str) -> Value {
    let url = engine_url(base, "polling", &[], false);
    let fut = async {
        let resp = reqwest::get(&url)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("GET {url} body: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: status {status}: {body}"));
        }
        // Several packets may be separated by the record separator.
        let first = body.split('\u{1e}').next().unwrap_or_default();
        let json = first
            .strip_prefix('0')
            .ok_or_else(|| format!("GET {url}: not an OPEN packet: {body:?}"))?;
        serde_json::from_str::<Value>(json)
            .map_err(|e| format!("GET {url}: bad OPEN JSON {body:?}: {e}"))
    };
    match timeout(DEFAULT_TIMEOUT, fut).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("polling handshake failed: {e}"),
        Err(_) => panic!("polling handshake: no answer from {url} within {DEFAULT_TIMEOUT:?}"),
    }
}
