//! `typing` on `/chat` (contract §4): to the room but the sender, and volatile for a
//! member that is not polling.

use super::*;
use crate::support::sio::{connect_polling_handshake, encode_sio_packet, parse_sio_packet};
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn typing_reaches_others_only(pool: PgPool) {
    let (_server, conv, alice, bob) = pair(pool).await;
    alice
        .ok(
            "typing",
            json!({ "conversationId": conv, "isTyping": true }),
        )
        .await;
    assert_eq!(
        bob.recv("typing").await,
        json!({ "conversationId": conv, "userId": 1, "isTyping": true })
    );
    alice.expect_none("typing", QUIET).await;
    alice
        .refused(
            "typing",
            json!({ "conversationId": conv, "isTyping": "yes" }),
            "BAD_REQUEST",
        )
        .await;
}

/// A long-polling member that does not poll while others type: when it polls again it
/// gets every message but only the newest `typing` state (volatile, as Node's
/// `socket.volatile`), not a replay of stale ones.
#[sqlx::test]
async fn a_member_that_is_not_polling_gets_only_the_newest_typing_state(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    let alice = joined(&server, 1, &conv).await;
    // Bob on raw long-polling, so the test decides when he reads.
    let sid = connect_polling_handshake(&server.base).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let http = server.http();
    let poll = || async {
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        body.split('\u{1e}').map(str::to_owned).collect::<Vec<_>>()
    };
    let post = |packet: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let res = http.post(&url).body(packet).send().await.unwrap();
            assert!(res.status().is_success());
        }
    };
    post(format!(
        "4{}",
        encode_sio_packet(
            0,
            "/chat",
            None,
            Some(&json!({ "token": token(2, &["user"]) })),
        )
    ))
    .await;
    let mut seen = Vec::new();
    while !seen.iter().any(|p: &String| p.starts_with("40/chat,")) {
        seen.extend(poll().await);
    }
    post(format!(
        "4{}",
        encode_sio_packet(
            2,
            "/chat",
            Some(1),
            Some(&json!(["conversation:join", { "conversationId": conv }])),
        )
    ))
    .await;
    while !seen.iter().any(|p| p.starts_with("43/chat,1")) {
        seen.extend(poll().await);
    }
    // Bob is not polling now: Alice starts typing, stops, and sends a message.
    for typing in [true, false, true, false] {
        alice
            .ok(
                "typing",
                json!({ "conversationId": conv, "isTyping": typing }),
            )
            .await;
    }
    let sent = alice.send_message(&conv, "hi").await;
    let mut received = Vec::new();
    while !received
        .iter()
        .any(|p: &String| p.contains("\"message:created\""))
    {
        received.extend(poll().await);
    }
    // The message and the newest typing state may come in separate responses.
    while !received.iter().any(|p| p.contains("\"typing\"")) {
        received.extend(poll().await);
    }
    let typing: Vec<&String> = received
        .iter()
        .filter(|p| p.contains("\"typing\""))
        .collect();
    assert_eq!(typing.len(), 1, "one typing state, not four: {received:?}");
    let packet = parse_sio_packet(&typing[0][1..]).unwrap();
    assert_eq!(
        packet.data,
        Some(json!(["typing", { "conversationId": conv, "userId": 1, "isTyping": false }]))
    );
    assert!(
        received
            .iter()
            .any(|p| p.contains(sent["_id"].as_str().unwrap())),
        "the message itself is never dropped: {received:?}"
    );
}
