//! The plain WebSocket routes' own framing end to end, over a raw TCP socket with
//! hand-built frames: what a library client would never send (unmasked frames, bad
//! UTF-8 across fragments, a header announcing more than the limit) and what the
//! protocol asks of the server (pongs, fragments reassembled, the close echoed).

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const MASK: [u8; 4] = [0xA1, 0x05, 0x5C, 0x3E];
const WITHIN: Duration = Duration::from_secs(5);

/// A client frame, masked unless `masked` is false.
fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let bit = if masked { 0x80 } else { 0 };
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, opcode, payload, true)
}

/// A WebSocket client that is a TCP socket and a buffer.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Sends the handshake for `path` and `extra` bytes in the same write; returns the
    /// response's head and the connection (upgraded or not).
    async fn handshake(
        server: &TestServer,
        path: &str,
        key: Option<&str>,
        extra: &[u8],
    ) -> (String, Raw) {
        let host = server.base.trim_start_matches("http://");
        let mut tcp = TcpStream::connect(host).await.unwrap();
        let key = key
            .map(|k| format!("sec-websocket-key: {k}\r\n"))
            .unwrap_or_default();
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-version: 13\r\n{key}\r\n"
        )
        .into_bytes();
        request.extend_from_slice(extra);
        tcp.write_all(&request).await.unwrap();
        let mut raw = Raw {
            tcp,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw.buf[..end]).into_owned();
                raw.buf.drain(..end + 4);
                break head;
            }
            assert!(raw.fill().await, "closed before the response head");
        };
        (head, raw)
    }

    /// An upgraded `/ws` connection; `extra` goes with the request.
    async fn open(server: &TestServer, extra: &[u8]) -> Raw {
        let (head, raw) =
            Raw::handshake(server, "/ws", Some("dGhlIHNhbXBsZSBub25jZQ=="), extra).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// Reads more; false at the end of the stream (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(WITHIN, self.tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Ok(_) => false,
            Err(_) => panic!("nothing from the server within {WITHIN:?}"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// The next server frame (opcode, payload); `None` at the end of the stream. Server
    /// frames must be final and unmasked.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let [b0, b1, ..] = self.buf[..] {
                assert_eq!(b0 & 0xF0, 0x80, "a final frame without RSV bits");
                assert_eq!(b1 & 0x80, 0, "server frames are unmasked");
                let (len, header) = match b1 & 0x7F {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if header > 0 && self.buf.len() >= header + len {
                    let payload = self.buf[header..header + len].to_vec();
                    self.buf.drain(..header + len);
                    return Some((b0 & 0x0F, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next text message, parsed (pings skipped).
    async fn json(&mut self) -> Value {
        loop {
            match self.next().await {
                Some((TEXT, payload)) => return serde_json::from_slice(&payload).unwrap(),
                Some((PING, _)) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The code of the server's close frame (text and pings before it skipped).
    async fn close_code(&mut self) -> u16 {
        loop {
            match self.next().await {
                Some((CLOSE, payload)) => {
                    assert!(payload.len() >= 2, "a close frame with a code");
                    return u16::from_be_bytes([payload[0], payload[1]]);
                }
                Some(_) => {}
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Whether the server ends the TCP connection within [`WITHIN`] (after its close).
    async fn ends(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        loop {
            match tokio::time::timeout(WITHIN, self.tcp.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

fn ping_request(id: &str) -> Vec<u8> {
    json!({ "type": "ping", "id": id }).to_string().into_bytes()
}

#[sqlx::test]
async fn the_handshake_answers_the_accept_key_and_refuses_a_request_without_one(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let (head, _) = Raw::handshake(&server, "/ws", Some("dGhlIHNhbXBsZSBub25jZQ=="), b"").await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(head.contains("upgrade: websocket"), "{head}");
    let (head, _) = Raw::handshake(&server, "/ws", None, b"").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

#[sqlx::test]
async fn frames_sent_with_the_handshake_are_read(pool: PgPool) {
    let server = TestServer::start(pool).await;
    // The request and a first frame in one write: hyper reads past the request, and
    // the connection must take those bytes over.
    let mut ws = Raw::open(&server, &masked(true, TEXT, &ping_request("early"))).await;
    let pong = ws.json().await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("early"))
    );
}

#[sqlx::test]
async fn a_fragmented_message_is_reassembled_and_a_ping_between_is_answered(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Raw::open(&server, b"").await;
    let text = ping_request("frag");
    let (a, rest) = text.split_at(5);
    let (b, c) = rest.split_at(7);
    ws.send(&masked(false, TEXT, a)).await;
    ws.send(&masked(true, PING, b"are you there")).await;
    ws.send(&masked(false, CONTINUATION, b)).await;
    ws.send(&masked(true, CONTINUATION, c)).await;
    assert_eq!(ws.next().await, Some((PONG, b"are you there".to_vec())));
    let pong = ws.json().await;
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("frag"))
    );
}

#[sqlx::test]
async fn an_unmasked_client_frame_closes_with_1002(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Raw::open(&server, b"").await;
    ws.send(&frame(true, TEXT, &ping_request("x"), false)).await;
    assert_eq!(ws.close_code().await, 1002);
    assert!(ws.ends().await, "the server ends the connection");
}

#[sqlx::test]
async fn invalid_utf8_across_fragments_closes_with_1007(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Raw::open(&server, b"").await;
    let euro = "€".as_bytes();
    // A valid character split across fragments is fine...
    let mut ok = b"{\"type\":\"ping\",\"id\":\"".to_vec();
    ok.push(euro[0]);
    ws.send(&masked(false, TEXT, &ok)).await;
    ws.send(&masked(true, CONTINUATION, &[&euro[1..], b"\"}"].concat()))
        .await;
    assert_eq!(ws.json().await["id"], "€");
    // ...a broken one is not.
    ws.send(&masked(false, TEXT, &euro[..2])).await;
    ws.send(&masked(true, CONTINUATION, &euro[..1])).await;
    assert_eq!(ws.close_code().await, 1007);
}

#[sqlx::test]
async fn a_header_over_the_limit_closes_with_1009_before_its_payload(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_MAX_MESSAGE_BYTES", "1024")]).await;
    let mut ws = Raw::open(&server, b"").await;
    // Only the header of a 64 MiB frame: the server answers without waiting for it.
    let mut header = vec![0x80 | TEXT, 0x80 | 127];
    header.extend_from_slice(&(64u64 << 20).to_be_bytes());
    header.extend_from_slice(&MASK);
    ws.send(&header).await;
    assert_eq!(ws.close_code().await, 1009);
}

#[sqlx::test]
async fn the_clients_close_is_echoed_and_the_connection_ends(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Raw::open(&server, b"").await;
    let mut close = 4000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    ws.send(&masked(true, CLOSE, &close)).await;
    let (opcode, payload) = ws.next().await.unwrap();
    assert_eq!((opcode, &payload[..2]), (CLOSE, &4000u16.to_be_bytes()[..]));
    assert!(
        ws.ends().await,
        "the server ends the connection after the echo"
    );
    wait_metric(
        &server,
        "switchboard_ws_closes_total{reason=\"client\"} ",
        1.0,
        WITHIN,
    )
    .await;
}

#[sqlx::test]
async fn a_control_frame_over_125_bytes_closes_with_1002(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut ws = Raw::open(&server, b"").await;
    ws.send(&masked(true, PING, &[0; 126])).await;
    assert_eq!(ws.close_code().await, 1002);
}

#[sqlx::test]
async fn a_client_that_pings_and_never_reads_its_pongs_is_closed_as_a_slow_consumer(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("WS_SEND_QUEUE", "4")]).await;
    let mut raw = Raw::open(&server, &[]).await;
    // Pings with the largest control payload, never reading the pongs: once the kernel's
    // buffers hold all they take, the pongs queue, and past the bound (plus its slack for
    // control frames) the server closes. Writing stops when the server stops reading.
    let burst = masked(true, PING, &[0x55; 125]).repeat(100);
    let mut written = 0usize;
    while written < 64 << 20 {
        match tokio::time::timeout(Duration::from_millis(500), raw.tcp.write_all(&burst)).await {
            Ok(Ok(())) => written += burst.len(),
            _ => break,
        }
    }
    assert!(
        written < 64 << 20,
        "the server kept reading pings for 64 MiB"
    );
    assert_eq!(raw.close_code().await, 1013);
    assert_eq!(
        metric(
            &server,
            "switchboard_ws_closes_total{reason=\"slow_consumer\"}"
        )
        .await,
        1.0
    );
}
