//! `/chat` end to end (contract §4, and §3's replies as `/chat` gives them): a real
//! server, a real database per test, a socket.io client over a real websocket. One file a
//! part of the contract:
//!
//! * `rooms`: connect and `conversation:join` (§4's rooms);
//! * `messages`: `message:send`, `message:edit`, `message:delete` and `clientId` (§4);
//! * `reading`: `message:read`, `unread:count` and `message:list` (§4);
//! * `typing`: `typing`, volatile (§4);
//! * `members`: `members:add`, `members:remove` and the member cap (§4);
//! * `replies`: unknown events, bad payloads, the rate limit, a database outage (§3, §4);
//! * `concurrency`: sends, reads and deletes at once keep exact counts (§4's rules);
//! * `send_batches`: sends sharing a transaction fail alone (§4's `message:send`);
//! * `rest`: the REST twins of the events (§4, §8).
//!
//! This file holds what they share: joined clients, the two-member fixture, counts.

mod concurrency;
mod members;
mod messages;
mod reading;
mod replies;
mod rest;
mod rooms;
mod send_batches;
mod typing;

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

async fn count_messages(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from messages")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What `members:add` and `members:remove` take and announce.
fn member(conversation: &str, user: impl serde::Serialize) -> Value {
    json!({ "conversationId": conversation, "userId": user })
}

async fn joined(server: &TestServer, user: i64, conversation: &str) -> SioClient {
    let c = server.client("/chat", user).await;
    c.join(&conversation).await;
    c
}

/// A server with a group conversation of user 1 (its owner) and user 2, both joined.
async fn pair(pool: PgPool) -> (TestServer, String, SioClient, SioClient) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let one = joined(&server, 1, &conv).await;
    let two = joined(&server, 2, &conv).await;
    (server, conv, one, two)
}
