//! Reading on `/chat` (contract §4's `message:read`, `unread:count` and `message:list`):
//! the read cursor only moves forward, counts follow it, history pages both ways.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn read_cursor_moves_forward_only_and_updates_counts(pool: PgPool) {
    let (server, conv, alice, bob) = pair(pool).await;
    let bob_phone = server.client("/chat", 2).await;
    let mut ids = vec![];
    for i in 0..3 {
        let m = alice
            .ok(
                "message:send",
                json!({ "conversationId": conv, "content": format!("m{i}") }),
            )
            .await;
        ids.push(m["_id"].clone());
    }
    // Read up to the second: one left.
    bob.ok("message:read", json!({ "messageId": ids[1] })).await;
    let read = alice.recv("message:read").await;
    assert_eq!(read["messageId"], ids[1]);
    assert_eq!(read["readerId"], 2);
    assert_eq!(read["conversationId"], json!(conv));
    assert!(read["readAt"].as_str().unwrap().ends_with('Z'));
    // Every device of the reader gets the new count.
    let last = recv_until(&bob_phone, "unread:count", |c| c["total"] == 1).await;
    assert_eq!(
        last,
        json!({ "total": 1, "byConversation": { conv.clone(): 1 } })
    );
    // Reading an older message does not move the cursor back.
    bob.ok("message:read", json!({ "messageId": ids[0] })).await;
    let page = bob
        .ok("message:list", json!({ "conversationId": conv }))
        .await;
    let seen: Vec<Value> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seen_by"].clone())
        .collect();
    assert_eq!(
        seen,
        vec![json!([]), json!([2]), json!([2])],
        "newest first"
    );
    // Own messages never count as unread.
    let fresh = server.client("/chat", 1).await;
    assert_eq!(fresh.recv("unread:count").await["total"], 0);
}

#[sqlx::test]
async fn history_pages_with_before_and_after(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let conv = create_conversation(&server, 1, "group", &[]).await;
    let c = joined(&server, 1, &conv).await;
    let mut ids = vec![];
    for i in 0..5 {
        let m = c
            .ok(
                "message:send",
                json!({ "conversationId": conv, "content": format!("{i}") }),
            )
            .await;
        ids.push(m["_id"].clone());
    }
    let contents = |page: &Value| -> Vec<String> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "limit": 2 }),
        )
        .await;
    assert_eq!(contents(&newest), ["4", "3"]);
    let older = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "before": ids[3], "limit": 2 }),
        )
        .await;
    assert_eq!(contents(&older), ["2", "1"]);
    let after = c
        .ok(
            "message:list",
            json!({ "conversationId": conv, "after": ids[1] }),
        )
        .await;
    assert_eq!(
        contents(&after),
        ["2", "3", "4"],
        "catching up is oldest first"
    );
    for limit in [0, 101] {
        c.refused(
            "message:list",
            json!({ "conversationId": conv, "limit": limit }),
            "BAD_REQUEST",
        )
        .await;
    }
    let stranger = json!({ "conversationId": conv, "before": Uuid::new_v4() });
    c.refused("message:list", stranger, "NOT_FOUND").await;
}
