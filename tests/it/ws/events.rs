//! Domain events on `/ws` (contract §7.2's `chat_message`, `notification` and
//! `order_update`, §7.3's server messages, §7.1's shutdown): chat messages, notifications
//! and order changes reach plain connections once, in their dialect, whichever route
//! caused them.

use std::time::Duration;

use super::*;
use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

#[sqlx::test]
async fn an_envelope_chat_message_echoes_its_id_and_chat_sends_reach_ws(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut anon = Ws::connect(&server, "").await;
    anon.send(json!({ "type": "chat_message", "id": "a0",
        "payload": { "conversation_id": conversation, "content": "hi" } }))
        .await;
    anon.expect_error("unauthorized", Some("a0")).await;

    let mut ann = Ws::authed(&server, &named(1, "Ann")).await;
    let mut ann_phone = Ws::authed(&server, &named(1, "Ann")).await;
    let mut bob = Bare::connect(&server, &token(2, &["user"])).await;
    let bob_sio = server.client("/chat", 2).await;
    bob_sio.join(&conversation).await;

    ann.send(json!({ "type": "chat_message", "id": "m1",
        "payload": { "conversation_id": conversation, "content": "hi" } }))
        .await;
    let own = ann.expect("chat_message").await;
    assert_eq!(own["id"], "m1");
    assert_eq!(own["payload"]["message"]["message_type"], "text");
    assert_eq!(own["payload"]["message"]["sender_name"], "Ann");
    let other = ann_phone.expect("chat_message").await;
    assert!(other.get("id").is_none(), "{other}");
    assert_eq!(other["payload"], own["payload"]);
    let bare = bob.recv().await;
    assert_eq!(bare["id"], own["payload"]["message"]["id"]);
    assert_eq!(bare["message_type"], "text");
    assert_eq!(bob_sio.recv("message:created").await["content"], "hi");
    ann.quiet(QUIET).await;

    // Errors carry the request id.
    for (payload, code) in [
        (
            json!({ "conversation_id": conversation }),
            "invalid_payload",
        ),
        (
            json!({ "conversation_id": 5, "content": "x" }),
            "invalid_payload",
        ),
        (
            json!({ "conversation_id": Uuid::new_v4(), "content": "x" }),
            "not_found",
        ),
    ] {
        ann.send(json!({ "type": "chat_message", "id": "e", "payload": payload }))
            .await;
        ann.expect_error(code, Some("e")).await;
    }
    let mut eve = Ws::authed(&server, &token(5, &["user"])).await;
    eve.send(json!({ "type": "chat_message", "id": "e5",
        "payload": { "conversation_id": conversation, "content": "x" } }))
        .await;
    eve.expect_error("forbidden", Some("e5")).await;

    // A socket.io send reaches the members' /ws connections, the sender's included.
    let ann_sio = server.client("/chat", 1).await;
    let sent = ann_sio.send_message(&conversation, "from sio").await;
    for ws in [&mut ann, &mut ann_phone] {
        let got = ws.expect("chat_message").await;
        assert_eq!(got["payload"]["message"]["id"], sent["_id"]);
        assert_eq!(got["payload"]["message"]["content"], "from sio");
        // The socket.io token has no `name` claim.
        assert_eq!(got["payload"]["message"]["sender_name"], Value::Null);
    }
    assert_eq!(bob.recv().await["id"], sent["_id"]);
    bob.quiet(QUIET).await;
    eve.quiet(Duration::ZERO).await;
}

/// A grant on another member's `user:` channel puts a connection in two of the
/// message's channels; it still gets the message once, from this node and from another.
#[sqlx::test]
async fn a_connection_in_two_members_channels_gets_a_message_once(pool: PgPool) {
    let (a, b, _) = TestServer::two_nodes(&pool, "redis").await;
    let conversation = create_conversation(&a, 1, "group", &[2]).await;
    assert_eq!(grant(&a, reqwest::Method::POST, "user:2", 1).await, 201);
    let mut ann = Ws::authed(&a, &token(1, &["user"])).await;
    ann.join("user:2").await;
    for (node, content) in [(&a, "same node"), (&b, "other node")] {
        let bob = node.client("/chat", 2).await;
        let sent = bob.send_message(&conversation, content).await;
        let got = ann.expect("chat_message").await;
        assert_eq!(got["payload"]["message"]["id"], sent["_id"]);
        ann.quiet(QUIET).await;
    }
}

async fn notify(server: &TestServer, body: Value) -> Value {
    let res = server.post("/api/notifications", &service(), &body).await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[sqlx::test]
async fn notifications_reach_both_plain_dialects_from_rest_and_from_notifications(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mut envelope = Ws::authed(&server, &token(7, &["user"])).await;
    let mut bare = Bare::connect(&server, &token(7, &["user"])).await;
    let mut other = Bare::connect(&server, &token(8, &["user"])).await;
    let mut anon = Ws::connect(&server, "").await;
    anon.alive().await;

    let created = notify(
        &server,
        json!({ "user_id": 7, "type": "system", "title": "Hi", "content": "Body",
                "link": "https://shop.example/o/1", "priority": "high" }),
    )
    .await;
    let id = created["_id"].as_str().unwrap();
    assert!(
        created.get("link").is_none(),
        "REST body unchanged: {created}"
    );
    let n = envelope.expect("notification").await;
    assert_eq!(
        n["payload"],
        json!({ "id": id, "title": "Hi", "body": "Body", "action_url": "https://shop.example/o/1",
                "icon": "system", "priority": "high", "created_at": created["created_at"] })
    );
    assert_eq!(
        bare.recv().await,
        json!({ "id": id, "user_id": 7, "type": "system", "title": "Hi", "message": "Body",
                "link": { "String": "https://shop.example/o/1", "Valid": true },
                "is_read": false, "created_at": created["created_at"], "event": "created" })
    );
    // Without link and priority: null / normal, `Valid: false`.
    notify(
        &server,
        json!({ "user_id": 7, "type": "message", "title": "T", "content": "C" }),
    )
    .await;
    let n = envelope.expect("notification").await;
    assert_eq!(n["payload"]["action_url"], Value::Null);
    assert_eq!(n["payload"]["priority"], "normal");
    assert_eq!(
        bare.recv().await["link"],
        json!({ "String": "", "Valid": false })
    );
    // Bad link and priority are the caller's 400.
    for body in [
        json!({ "user_id": 7, "type": "system", "title": "T", "content": "C", "priority": "urgent" }),
        json!({ "user_id": 7, "type": "system", "title": "T", "content": "C", "link": "x".repeat(2001) }),
    ] {
        let res = server.post("/api/notifications", &service(), &body).await;
        assert_eq!(res.status(), 400);
    }

    // Changes made on /notifications reach the bare dialect only.
    let sio = server.client("/notifications", 7).await;
    sio.ok("notification:read", json!({ "notificationId": id }))
        .await;
    assert_eq!(
        bare.recv().await,
        json!({ "event": "read", "notification_id": id })
    );
    sio.ok("notification:read_all", json!({})).await;
    assert_eq!(bare.recv().await, json!({ "event": "read_all" }));
    sio.ok("notification:delete", json!({ "notificationId": id }))
        .await;
    assert_eq!(
        bare.recv().await,
        json!({ "event": "deleted", "notification_id": id })
    );
    envelope.quiet(QUIET).await;
    other.quiet(Duration::ZERO).await;

    // A broadcast reaches every authenticated connection, not the anonymous one.
    broadcast(&server, &service(), "All", "Everyone").await;
    assert_eq!(
        envelope.expect("notification").await["payload"]["title"],
        "All"
    );
    let b = bare.recv().await;
    assert_eq!(
        (b["event"].as_str(), b["user_id"].is_null()),
        (Some("created"), true)
    );
    assert_eq!(other.recv().await["title"], "All");
    anon.quiet(QUIET).await;
}

#[sqlx::test]
async fn an_order_status_change_reaches_its_order_channel(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let restaurant = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, restaurant, Some(5)).await;
    let other = create_order(&server, restaurant, Some(5)).await;
    let mut customer = Ws::authed(&server, &token(5, &["user"])).await;
    customer.join(&format!("order:{order}")).await;
    let mut staff = Ws::authed(&server, &staff_at(6, restaurant)).await;
    staff.join(&format!("order:{order}")).await;
    staff.join(&format!("order:{other}")).await;
    let mut bare = Bare::connect(&server, &token(5, &["user"])).await;

    let res = server
        .patch(
            &format!("/api/orders/{order}"),
            &service(),
            &json!({ "status": "preparing" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    for ws in [&mut customer, &mut staff] {
        let update = ws.expect("order_update").await;
        assert_eq!(
            update["payload"],
            json!({ "order_id": order, "status": "preparing", "previous_status": "new",
                    "updated_at": body["updated_at"] })
        );
    }
    // Other changes than the status: no order_update.
    let res = server
        .patch(
            &format!("/api/orders/{order}"),
            &service(),
            &json!({ "table_number": "12" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    // A move on the restaurant board over socket.io reaches the channel too.
    let board = server
        .client_with("/restaurant", &staff_at(6, restaurant))
        .await;
    let ack = board
        .emit_ack(
            "order:update_status",
            json!({ "restaurantId": restaurant, "orderId": other, "status": "ready" }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    let update = staff.expect("order_update").await;
    assert_eq!(update["payload"]["order_id"], other.as_str());
    assert_eq!(update["payload"]["status"], "ready");
    customer.quiet(QUIET).await;
    bare.quiet(Duration::ZERO).await;
}

#[sqlx::test]
async fn shutdown_answers_every_chat_message_it_stored_before_closing_with_1001(pool: PgPool) {
    let server = TestServer::start_with(pool.clone(), UNLIMITED).await;
    let conversation = create_conversation(&server, 1, "group", &[2]).await;
    let mut ws = Ws::authed(&server, &token(1, &["user"])).await;
    // Sends queued on the socket; shutdown once the server is working through them:
    // whatever it took is stored and answered before the close frame, what it did not
    // take is neither.
    for n in 0..200 {
        ws.send(json!({ "type": "chat_message", "id": format!("m{n}"),
            "payload": { "conversation_id": conversation, "content": format!("n{n}") } }))
            .await;
    }
    let first = ws.expect("chat_message").await;
    assert_eq!(first["id"], "m0");
    let stopping = tokio::spawn(server.stop());
    let mut answered = vec![first["payload"]["message"]["content"].clone()];
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(message["type"], "chat_message", "{message}");
                answered.push(message["payload"]["message"]["content"].clone());
            }
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                // Sends the protocol's answer, so the server need not wait for it.
                let _ = ws.stream.flush().await;
                break u16::from(frame.code);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected messages then a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1001);
    assert!(
        answered.len() < 200,
        "shutdown does not wait for a backlog the server had not taken"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
    let stored: Vec<String> = sqlx::query_scalar("select content from messages order by seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    let answered: Vec<String> = answered
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        answered, stored,
        "each stored send answered, in order, before 1001"
    );
}
