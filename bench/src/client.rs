//! One socket.io client over one websocket: connect from a chosen source address,
//! attach to a namespace, emit with acks, wait for events, answer pings.
//!
//! [`Conn`] is the interactive form (setup steps, the `check` command). The load
//! form, which owns a `Conn` for the rest of its life and reports into shared
//! histograms, lives in `worker.rs`.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout_at;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::proto::{self, Packet};

/// The websocket of one client.
pub type Ws = WebSocketStream<TcpStream>;

/// Events kept while waiting for something else (the interactive form only).
const KEPT_EVENTS: usize = 256;

/// A connected socket.io client attached to one namespace.
pub struct Conn {
    /// The websocket (the load loop reads and writes it directly).
    pub ws: Ws,
    /// Namespace, e.g. `/chat` or `/`.
    pub ns: String,
    /// Next ack id.
    pub next_ack: u64,
    /// Events received while waiting for an ack, when `keep_events` is set.
    pub kept: VecDeque<String>,
    /// Keep events seen during `emit_ack` for `next_event` (interactive use).
    pub keep_events: bool,
}

/// Small buffers: a generator holding 19,000 idle clients must not spend 256 KiB on each.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
}

/// Opens a TCP connection to `server` from `src` (port chosen by the kernel).
async fn tcp_connect(server: SocketAddr, src: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Websocket handshake, engine.io open, socket.io CONNECT to `ns` with `auth`
    /// (a JSON object), all before `deadline`.
    pub async fn connect(
        server: SocketAddr,
        src: Option<IpAddr>,
        ns: &str,
        auth_json: &str,
        deadline: Instant,
    ) -> Result<Conn, String> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let tcp = timeout_at(deadline, tcp_connect(server, src))
            .await
            .map_err(|_| "tcp connect timed out".to_owned())?
            .map_err(|e| format!("tcp connect: {e}"))?;
        let request = format!("ws://{server}{}", proto::WS_PATH)
            .into_client_request()
            .map_err(|e| format!("request: {e}"))?;
        let (ws, _) = timeout_at(
            deadline,
            tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config())),
        )
        .await
        .map_err(|_| "websocket handshake timed out".to_owned())?
        .map_err(|e| format!("websocket handshake: {e}"))?;
        let mut conn = Conn {
            ws,
            ns: ns.to_owned(),
            next_ack: 1,
            kept: VecDeque::new(),
            keep_events: false,
        };
        // engine.io OPEN comes first.
        loop {
            let frame = conn.next_text(deadline).await?;
            if let Packet::Open(_) = proto::parse(&frame) {
                break;
            }
        }
        conn.send(proto::connect_frame(ns, auth_json)).await?;
        loop {
            let frame = conn.next_text(deadline).await?;
            match proto::parse(&frame) {
                Packet::Connected { ns: got } if got == ns => return Ok(conn),
                Packet::ConnectError { body, .. } => return Err(format!("connect_error {body}")),
                Packet::Ping => conn.send("3".to_owned()).await?,
                Packet::Close => return Err("server closed during connect".to_owned()),
                _ => {}
            }
        }
    }

    /// Writes one text frame.
    pub async fn send(&mut self, frame: String) -> Result<(), String> {
        self.ws
            .send(Message::text(frame))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next text frame (pings are not answered here).
    async fn next_text(&mut self, deadline: tokio::time::Instant) -> Result<String, String> {
        loop {
            match timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err("timed out waiting for the server".to_owned()),
                Ok(None) => return Err("connection closed".to_owned()),
                Ok(Some(Err(e))) => return Err(format!("read: {e}")),
                Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_owned()),
                Ok(Some(Ok(Message::Close(_)))) => return Err("connection closed".to_owned()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Handles what can be handled without the caller: pings, kept events.
    /// Returns the frame when the caller should look at it.
    async fn pump(&mut self, deadline: tokio::time::Instant) -> Result<String, String> {
        loop {
            let frame = self.next_text(deadline).await?;
            match proto::parse(&frame) {
                Packet::Ping => self.send("3".to_owned()).await?,
                Packet::Close | Packet::Disconnected { .. } => {
                    return Err("disconnected by the server".to_owned());
                }
                _ => return Ok(frame),
            }
        }
    }

    /// Emits `event` with an ack and waits for it. Returns the round trip and the ack body.
    pub async fn emit_ack(
        &mut self,
        event: &str,
        payload_json: &str,
        limit: Duration,
    ) -> Result<(Duration, String), String> {
        let id = self.next_ack;
        self.next_ack += 1;
        let deadline = tokio::time::Instant::now() + limit;
        let started = Instant::now();
        self.send(proto::event_frame(&self.ns, Some(id), event, payload_json))
            .await?;
        loop {
            let frame = self.pump(deadline).await?;
            match proto::parse(&frame) {
                Packet::Ack { id: got, body, .. } if got == id => {
                    return Ok((started.elapsed(), body.to_owned()));
                }
                Packet::Event { .. } if self.keep_events => {
                    if self.kept.len() == KEPT_EVENTS {
                        self.kept.pop_front();
                    }
                    self.kept.push_back(frame);
                }
                _ => {}
            }
        }
    }

    /// Waits for the next `event` (kept ones first) and returns its JSON array body.
    pub async fn next_event(&mut self, event: &str, limit: Duration) -> Result<String, String> {
        if let Some(pos) = self.kept.iter().position(|f| is_event(f, event))
            && let Some(frame) = self.kept.remove(pos)
        {
            return Ok(event_body(&frame));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = self
                .pump(deadline)
                .await
                .map_err(|e| format!("waiting for {event}: {e}"))?;
            if is_event(&frame, event) {
                return Ok(event_body(&frame));
            }
        }
    }

    /// Closes the websocket politely (bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

fn is_event(frame: &str, event: &str) -> bool {
    matches!(proto::parse(frame), Packet::Event { name, .. } if name == event)
}

fn event_body(frame: &str) -> String {
    match proto::parse(frame) {
        Packet::Event { body, .. } => body.to_owned(),
        _ => String::new(),
    }
}

/// A plain WebSocket client of `/ws` in the envelope dialect (PROTOCOL §8), for the
/// plain scenarios: authenticated by `?token=` at the handshake.
pub struct PlainConn {
    /// The websocket (the worker's loop reads it directly).
    pub ws: Ws,
    /// Next request id.
    next_id: u64,
}

impl PlainConn {
    /// Websocket handshake on `/ws?token=…`, then waits for `auth_success` (an
    /// `auth_error` is a failure), all before `deadline`.
    pub async fn connect(
        server: SocketAddr,
        src: Option<IpAddr>,
        token: &str,
        deadline: Instant,
    ) -> Result<PlainConn, String> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let tcp = timeout_at(deadline, tcp_connect(server, src))
            .await
            .map_err(|_| "tcp connect timed out".to_owned())?
            .map_err(|e| format!("tcp connect: {e}"))?;
        let request = format!("ws://{server}{}{token}", proto::PLAIN_WS_PATH)
            .into_client_request()
            .map_err(|e| format!("request: {e}"))?;
        let (ws, _) = timeout_at(
            deadline,
            tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config())),
        )
        .await
        .map_err(|_| "websocket handshake timed out".to_owned())?
        .map_err(|e| format!("websocket handshake: {e}"))?;
        let mut conn = PlainConn { ws, next_id: 1 };
        loop {
            let frame = conn.next_text(deadline).await?;
            match proto::plain_type(&frame).as_deref() {
                Some("auth_success") => return Ok(conn),
                Some("auth_error") => return Err(format!("auth_error {frame}")),
                _ => {}
            }
        }
    }

    /// The next text frame (pings are answered by tungstenite while reading).
    async fn next_text(&mut self, deadline: tokio::time::Instant) -> Result<String, String> {
        loop {
            match timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err("timed out waiting for the server".to_owned()),
                Ok(None) => return Err("connection closed".to_owned()),
                Ok(Some(Err(e))) => return Err(format!("read: {e}")),
                Ok(Some(Ok(Message::Text(t)))) => return Ok(t.as_str().to_owned()),
                Ok(Some(Ok(Message::Close(_)))) => return Err("connection closed".to_owned()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Sends `{type, payload, id}` and waits for the message that echoes the `id`.
    /// Returns that message's `type` and the whole message.
    pub async fn request(
        &mut self,
        kind: &str,
        payload_json: &str,
        limit: Duration,
    ) -> Result<(String, String), String> {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        let deadline = tokio::time::Instant::now() + limit;
        let frame = format!("{{\"type\":\"{kind}\",\"payload\":{payload_json},\"id\":\"{id}\"}}");
        self.ws
            .send(Message::text(frame))
            .await
            .map_err(|e| format!("send: {e}"))?;
        loop {
            let frame = self.next_text(deadline).await?;
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&frame) else {
                continue;
            };
            if value.get("id").and_then(|v| v.as_str()) == Some(id.as_str()) {
                let kind = value
                    .get("type")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned();
                return Ok((kind, frame));
            }
        }
    }
}
