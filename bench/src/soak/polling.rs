//! A minimal engine.io long-polling client for the soak's churn: handshake, socket.io
//! CONNECT, one event with an ack, close. The load generator's websocket client lives in
//! `client.rs`; long-polling is here only because the soak must show that polling
//! sessions, which the server keeps between requests, are released too.
//!
//! A polling payload carries several engine.io packets separated by `\x1e`.

use std::time::Duration;

use crate::proto::{self, Packet};

/// engine.io's packet separator in a polling payload.
const SEPARATOR: char = '\x1e';

/// One long-polling session.
pub struct Polling {
    http: reqwest::Client,
    url: String,
    ns: String,
    next_ack: u64,
}

/// How a polling CONNECT ended.
pub enum Connect {
    /// Connected: the session, ready for events.
    Connected(Polling),
    /// The server answered `connect_error` (body of the packet).
    Refused(String),
}

impl Polling {
    /// Opens a session on `base` (`http://host:port`) and sends CONNECT to `ns`.
    pub async fn connect(
        http: &reqwest::Client,
        base: &str,
        ns: &str,
        auth_json: &str,
    ) -> Result<Connect, String> {
        let open = get(http, &format!("{base}/socket.io/?EIO=4&transport=polling")).await?;
        let sid = open
            .split(SEPARATOR)
            .find_map(|p| match proto::parse(p) {
                Packet::Open(json) => serde_json::from_str::<serde_json::Value>(json)
                    .ok()?
                    .get("sid")?
                    .as_str()
                    .map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| format!("no engine.io OPEN in {open:?}"))?;
        let session = Polling {
            http: http.clone(),
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
            ns: ns.to_owned(),
            next_ack: 1,
        };
        session.post(proto::connect_frame(ns, auth_json)).await?;
        loop {
            for packet in session.poll().await? {
                match proto::parse(&packet) {
                    Packet::Connected { ns: got } if got == ns => {
                        return Ok(Connect::Connected(session));
                    }
                    Packet::ConnectError { body, .. } => {
                        return Ok(Connect::Refused(body.to_owned()));
                    }
                    Packet::Close => return Err("server closed during connect".to_owned()),
                    _ => {}
                }
            }
        }
    }

    /// Emits `event` with an ack; returns the ack body.
    pub async fn emit_ack(&mut self, event: &str, payload_json: &str) -> Result<String, String> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.post(proto::event_frame(&self.ns, Some(id), event, payload_json))
            .await?;
        loop {
            for packet in self.poll().await? {
                match proto::parse(&packet) {
                    Packet::Ack { id: got, body, .. } if got == id => return Ok(body.to_owned()),
                    Packet::Ping => self.post("3".to_owned()).await?,
                    Packet::Close | Packet::Disconnected { .. } => {
                        return Err("disconnected by the server".to_owned());
                    }
                    _ => {}
                }
            }
        }
    }

    /// Ends the session with an engine.io CLOSE (`1`), as socket.io-client does.
    pub async fn close(self) -> Result<(), String> {
        self.post("1".to_owned()).await
    }

    /// One long-poll GET: the packets the server had queued (it holds the request up to
    /// a ping interval when it has none).
    async fn poll(&self) -> Result<Vec<String>, String> {
        let body = get(&self.http, &self.url).await?;
        Ok(body.split(SEPARATOR).map(str::to_owned).collect())
    }

    async fn post(&self, body: String) -> Result<(), String> {
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("POST: {}", r.status()));
        }
        Ok(())
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = http
        .get(url)
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .map_err(|e| format!("GET: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET: {}", r.status()));
    }
    r.text().await.map_err(|e| format!("GET body: {e}"))
}
