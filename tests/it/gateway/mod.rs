//! Seed 000's entity gateway `/ws/:entity/:section[/:token]` and the REST routes that
//! feed it (contract §7.4, §7.5's restaurant, table and reservation rows, §7.7), as a
//! floor-plan screen and a backend see them: a real server, real sockets, a
//! tokio-tungstenite client. One file a contract section:
//!
//! * `connect`: routes, token places and refusals before the upgrade (§7.4, §7.1, §7.7);
//! * `commands`: `list_*`/`get_*` and their aliases, paging and search (§7.4);
//! * `bad_commands`: error reasons, the rate limit and the limits of `/ws` (§7.4, §7.1);
//! * `access`: who sees which items (§7.4's items and access);
//! * `snapshots`: change events from REST and from `table:complete` (§7.4, §7.7);
//! * `rest`: the REST routes' roles, bodies and conflicts (§7.5);
//! * `cluster`: snapshots across the nodes of a cluster (§7.4, §10);
//! * `load`: snapshots under a storm of updates (§7.4, §7.1's slow consumer).
//!
//! This file holds what they share: the gateway client, tokens and fixtures.

mod access;
mod bad_commands;
mod cluster;
mod commands;
mod connect;
mod load;
mod rest;
mod snapshots;

use std::time::Duration;

use crate::support::ws::{self, Stream};
use crate::support::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use uuid::Uuid;

const GATEWAYS: &str = "switchboard_ws_connections{route=\"/ws/:entity/:section\"} ";

fn admin() -> String {
    token(901, &["admin"])
}

/// A token with `roles` for `restaurants`.
fn member(user: i64, roles: &[&str], restaurants: &[Uuid]) -> String {
    sign(
        json!({ "sub": user, "roles": roles, "restaurants": restaurants, "exp": now_secs() + 3600 }),
    )
}

fn request(server: &TestServer, path: &str) -> Request {
    format!("{}{path}", server.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap()
}

/// A gateway client.
struct Gw {
    stream: Stream,
    /// Its `system.connected`.
    hello: Value,
}

impl Gw {
    /// Opens `request` and reads `system.connected`.
    async fn open(request: Request) -> Gw {
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut gw = Gw {
            stream,
            hello: Value::Null,
        };
        gw.hello = gw.next().await;
        assert_eq!(gw.hello["event"], "system.connected", "{}", gw.hello);
        gw
    }

    /// `/ws/<entity>/<section>/<token>`.
    async fn connect(server: &TestServer, entity: &str, section: &str, token: &str) -> Gw {
        Self::open(request(server, &format!("/ws/{entity}/{section}/{token}"))).await
    }

    async fn send(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    async fn send_json(&mut self, value: Value) {
        self.send(Message::text(value.to_string())).await;
    }

    /// The next frame that is not a ping, within `within`.
    async fn frame_within(&mut self, within: Duration) -> Option<Message> {
        ws::next_frame(&mut self.stream, within).await
    }

    /// The next message, within 5 s, with the seed's five fields and a timestamp.
    async fn next(&mut self) -> Value {
        let text = match self.frame_within(Duration::from_secs(5)).await {
            Some(Message::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a message, got {other:?}"),
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 5, "{text}");
        for key in ["event", "entity", "section", "data", "metadata"] {
            assert!(keys.contains(&key), "{key} missing: {text}");
        }
        assert!(
            value["metadata"]["timestamp"]
                .as_str()
                .is_some_and(rfc3339_ms),
            "{text}"
        );
        value
    }

    /// Sends a command and reads its reply, which must echo `request_id` and `action`.
    async fn command(&mut self, action: &str, payload: Value) -> Value {
        let request_id = Uuid::new_v4().to_string();
        self.send_json(json!({ "action": action, "payload": payload, "request_id": request_id }))
            .await;
        let reply = self.next().await;
        assert_eq!(reply["metadata"]["request_id"], request_id, "{reply}");
        assert_eq!(reply["metadata"]["action"], action, "{reply}");
        reply
    }

    /// A command's `data`, which must come as `event`.
    async fn ok(&mut self, action: &str, payload: Value, event: &str) -> Value {
        let reply = self.command(action, payload).await;
        assert_eq!(reply["event"], event, "{action}: {reply}");
        reply["data"].clone()
    }

    /// A command's error reason (data and metadata must agree).
    async fn error(&mut self, action: &str, payload: Value) -> String {
        let reply = self.command(action, payload).await;
        error_reason(&reply)
    }

    /// The next message, which must be a snapshot: `(op, item)`.
    async fn snapshot(&mut self) -> (String, Value) {
        let m = self.next().await;
        let entity = m["entity"].as_str().unwrap();
        assert_eq!(m["event"], format!("{entity}.snapshot"), "{m}");
        (
            m["data"]["op"].as_str().unwrap().to_owned(),
            m["data"]["item"].clone(),
        )
    }

    /// Nothing arrives within `ms`.
    async fn quiet(&mut self, within: Duration) {
        if let Some(message) = self.frame_within(within).await {
            panic!("unexpected {message:?}");
        }
    }

    /// Reads until the server's close frame; its code.
    async fn close_code(&mut self, within: Duration) -> u16 {
        ws::close_code(&mut self.stream, within).await
    }
}

#[track_caller]
fn error_reason(reply: &Value) -> String {
    let entity = reply["entity"].as_str().unwrap();
    assert_eq!(reply["event"], format!("{entity}.error"), "{reply}");
    let reason = reply["data"]["reason"].as_str().unwrap().to_owned();
    assert_eq!(reply["metadata"]["reason"], reason, "{reply}");
    assert!(
        reply["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
    reason
}

async fn restaurant(server: &TestServer, name: &str, section: &str) -> Uuid {
    let body = server
        .expect(
            201,
            "POST",
            "/api/restaurants",
            &service(),
            Some(json!({ "name": name, "section": section, "cuisine": "Thai" })),
        )
        .await;
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
}

async fn table(server: &TestServer, r: Uuid, id: &str, name: &str, section: &str) -> Value {
    server
        .expect(
            201,
            "POST",
            &format!("/api/restaurants/{r}/tables"),
            &service(),
            Some(json!({ "id": id, "name": name, "section": section, "seats": 4 })),
        )
        .await
}

async fn reservation(server: &TestServer, r: Uuid, guest: &str, body: Value) -> Value {
    let mut body = body;
    body["guest_name"] = json!(guest);
    if body.get("party_size").is_none() {
        body["party_size"] = json!(2);
    }
    if body.get("starts_at").is_none() {
        body["starts_at"] = json!("2030-05-01T19:00:00Z");
    }
    server
        .expect(
            201,
            "POST",
            &format!("/api/restaurants/{r}/reservations"),
            &service(),
            Some(body),
        )
        .await
}
