//! `/ws`, the plain WebSocket route of seeds 002 and 003 (contract §7.1, §7.2, §7.3 and
//! §7.5's publish and grants rows), as a plain WebSocket client sees it: a real server,
//! real sockets, a tokio-tungstenite client. One file a contract section:
//!
//! * `auth`: the handshake and authentication (§7.1's refusals, §7.2's `auth`);
//! * `channels`: who may subscribe to what, grants and publish (§7.2, §7.5);
//! * `bad_input`: errors in the dialect, the channel cap, the rate limit (§7.1, §7.2);
//! * `limits`: frame size, slow consumers, heartbeat, expiry and the closes (§7.1);
//! * `bare`: the bare dialect (§7.3);
//! * `events`: domain events in both dialects (§7.2's and §7.3's server messages);
//! * `cluster`: the same across the nodes of a cluster (§7, §10).
//!
//! This file holds what they share: the two dialects' clients and the REST helpers.

mod auth;
mod bad_input;
mod bare;
mod channels;
mod cluster;
mod events;
mod limits;

use std::time::Duration;

use crate::support::ws::{self, Stream};
use crate::support::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

/// A `/ws` client that reads envelopes.
struct Ws {
    stream: Stream,
}

fn ws_url(server: &TestServer, query: &str) -> String {
    format!("{}/ws{query}", server.base.replacen("http", "ws", 1))
}

/// A `/ws` client of one dialect; `check` asserts what every message of it carries.
trait Dialect {
    fn stream(&mut self) -> &mut Stream;

    fn check(message: &Value);

    async fn send(&mut self, message: Value) {
        let text = Message::text(message.to_string());
        self.stream().send(text).await.unwrap();
    }

    /// The next message, within 5 s.
    async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("a message within 5 s")
    }

    async fn recv_within(&mut self, within: Duration) -> Option<Value> {
        let message = ws::next_json(self.stream(), within).await?;
        Self::check(&message);
        Some(message)
    }

    /// Nothing arrives within `within`.
    async fn quiet(&mut self, within: Duration) {
        if let Some(message) = self.recv_within(within).await {
            panic!("unexpected message {message}");
        }
    }
}

impl Dialect for Ws {
    fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    fn check(message: &Value) {
        assert!(
            message["timestamp"].as_str().is_some_and(rfc3339_ms),
            "server messages carry an RFC 3339 timestamp with ms: {message}"
        );
        assert!(message["payload"].is_object(), "{message}");
    }
}

impl Ws {
    async fn connect(server: &TestServer, query: &str) -> Ws {
        let (stream, _) = tokio_tungstenite::connect_async(ws_url(server, query))
            .await
            .unwrap();
        Ws { stream }
    }

    /// Connected and authenticated with `?token=` (its `auth_success` read).
    async fn authed(server: &TestServer, token: &str) -> Ws {
        let mut ws = Ws::connect(server, &format!("?token={token}")).await;
        let ok = ws.expect("auth_success").await;
        assert!(ok["payload"]["user_id"].is_i64(), "{ok}");
        ws
    }

    async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    /// The next envelope, which must be of `kind`.
    async fn expect(&mut self, kind: &str) -> Value {
        let message = self.recv().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// The next envelope must be `error` with `code` (and `id` echoed when given).
    async fn expect_error(&mut self, code: &str, id: Option<&str>) -> Value {
        let message = self.expect("error").await;
        assert_eq!(message["payload"]["code"], code, "{message}");
        assert!(
            message["payload"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{message}"
        );
        assert_eq!(message.get("id").and_then(Value::as_str), id, "{message}");
        message
    }

    async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({ "type": "subscribe", "payload": { "channel": channel } }))
            .await;
        self.recv().await
    }

    /// Subscribes and asserts `subscribed`.
    async fn join(&mut self, channel: &str) {
        let reply = self.subscribe(channel).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["payload"]["channel"], channel);
    }

    /// A ping answered by a pong: the connection is open and in step.
    async fn alive(&mut self) {
        self.send(json!({ "type": "ping", "id": "alive" })).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["id"], "alive");
    }

    /// Reads until the server's close frame; its code.
    async fn close_code(&mut self, within: Duration) -> u16 {
        ws::close_code(&mut self.stream, within).await
    }
}

impl Ws {
    async fn expect_error_on_subscribe(&mut self, channel: &str, code: &str) {
        let reply = self.subscribe(channel).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["payload"]["code"], code, "{reply}");
    }
}

async fn publish(server: &TestServer, channel: &str, kind: &str, payload: Value) {
    let res = server
        .post(
            "/api/publish",
            &service(),
            &json!({ "channel": channel, "type": kind, "payload": payload }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({ "channel": channel, "type": kind }));
}

async fn grant(server: &TestServer, method: reqwest::Method, channel: &str, user: i64) -> u16 {
    server
        .http()
        .request(method, server.url("/api/channels/grants"))
        .bearer_auth(service())
        .json(&json!({ "channel": channel, "user_id": user }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An order of `restaurant` for `customer`, created over REST; its id.
async fn create_order(server: &TestServer, restaurant: Uuid, customer: Option<i64>) -> String {
    let body = json!({
        "order_number": 7, "type": "online", "total": 12.5, "customer_id": customer,
        "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }]
    });
    let order = post_order(server, restaurant, &body).await;
    order["id"].as_str().unwrap().to_owned()
}

const HUB_ENTRIES: &str = "switchboard_ws_hub_entries ";
const HUB_CHANNELS: &str = "switchboard_ws_hub_channels ";
const WS_CONNECTIONS: &str = "switchboard_ws_connections{route=\"/ws\"} ";

/// Rate limits out of the way of tests that send many messages on purpose.
const UNLIMITED: &[(&str, &str)] = &[("RATE_LIMIT_PER_SEC", "1000"), ("RATE_LIMIT_BURST", "1000")];

fn closes(reason: &str) -> String {
    format!("switchboard_ws_closes_total{{reason=\"{reason}\"}} ")
}

/// Waits (up to 5 s) until `/metrics` counts `n` closes for `reason`.
async fn wait_closes(server: &TestServer, reason: &str, n: f64) {
    wait_metric(server, &closes(reason), n, Duration::from_secs(5)).await;
}

/// A `/ws` client of the bare dialect: bare JSON objects both ways.
struct Bare {
    stream: Stream,
}

fn with_bearer(
    server: &TestServer,
    query: &str,
    token: &str,
) -> tungstenite::handshake::client::Request {
    ws::with_bearer(ws_url(server, query).into_client_request().unwrap(), token)
}

impl Dialect for Bare {
    fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    fn check(message: &Value) {
        assert!(
            message.get("type").is_none() || message.get("payload").is_none(),
            "not bare: {message}"
        );
    }
}

impl Bare {
    /// Connected with `Authorization: Bearer` (which selects the bare dialect).
    async fn connect(server: &TestServer, token: &str) -> Bare {
        let (stream, _) = tokio_tungstenite::connect_async(with_bearer(server, "", token))
            .await
            .unwrap();
        let mut bare = Bare { stream };
        // The user channel is joined before the upgrade completes its first read: a
        // round trip through an error reply proves the connection is registered.
        bare.send(json!({})).await;
        assert_eq!(bare.recv().await["error"]["code"], "BAD_REQUEST");
        bare
    }

    /// The next message must be `{error:{code, message}}`.
    async fn expect_error(&mut self, code: &str) {
        let message = self.recv().await;
        assert_eq!(message["error"]["code"], code, "{message}");
        assert!(
            message["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{message}"
        );
    }
}

fn named(user: i64, name: &str) -> String {
    sign(json!({ "sub": user, "roles": ["user"], "name": name, "exp": now_secs() + 3600 }))
}
