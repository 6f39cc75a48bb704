//! Forced leaves on every node before the reply (contract §10's forced leave): a removed
//! member, a tablet switching restaurant and a user an operator disconnects hear nothing
//! more, whichever node their sockets are on.

use std::time::Duration;

use super::*;
use serde_json::json;
use sqlx::PgPool;

async fn forced_leave_is_in_effect_everywhere_before_the_ack(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let conv = create_conversation(&a, 1, "group", &[2, 3]).await;
    let owner = a.client("/chat", 1).await;
    owner.join(&conv).await;
    let removed = b.client("/chat", 2).await;
    removed.join(&conv).await;
    let carol = b.client("/chat", 3).await;
    carol.join(&conv).await;
    for round in 0..5 {
        if round > 0 {
            owner
                .ok(
                    "members:add",
                    json!({ "conversationId": conv, "userId": 2 }),
                )
                .await;
            removed.join(&conv).await;
        }
        owner
            .ok(
                "members:remove",
                json!({ "conversationId": conv, "userId": 2 }),
            )
            .await;
        // Sent the moment the ack arrives, from the other node's client too.
        let content = format!("after removal {round}");
        carol.send_message(&conv, &content).await;
        assert_eq!(
            owner.recv("message:created").await["content"],
            json!(content)
        );
        removed
            .expect_none("message:created", Duration::from_millis(200))
            .await;
    }
}

async fn an_operator_disconnect_ends_the_users_sockets_on_every_node(pool: PgPool, adapter: &str) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let r = create_restaurant(&a, "Ban Bistro").await;
    let user = staff_at(7, r);
    // On B, among them a dynamic namespace that A has never mounted; one on A as well.
    let mut targets = Vec::new();
    for ns in [
        "/chat".to_owned(),
        "/".to_owned(),
        format!("/restaurants/{r}"),
    ] {
        targets.push((format!("b{ns}"), b.client_with(&ns, &user).await));
    }
    targets.push((
        "a/notifications".into(),
        a.client_with("/notifications", &user).await,
    ));
    let bystander = b.client_with("/chat", &token(8, &["user"])).await;
    let admin = token(1, &["admin"]);
    let body = a
        .expect(200, "POST", "/api/users/7/disconnect", &admin, None)
        .await;
    assert_eq!(body, json!({ "userId": 7, "disconnected": true }));
    for (at, c) in &targets {
        assert!(
            c.wait_disconnected(Duration::from_secs(5)).await,
            "{at} still connected"
        );
    }
    assert!(!bystander.is_disconnected());
}

async fn switching_restaurant_leaves_the_old_one_for_events_from_any_node(
    pool: PgPool,
    adapter: &str,
) {
    let (a, b) = two_nodes(&pool, adapter).await;
    let first = create_restaurant(&a, "First").await;
    let second = create_restaurant(&a, "Second").await;
    let staff = sign(
        json!({ "sub": 3, "roles": ["staff"], "restaurants": [first, second], "exp": now_secs() + 600 }),
    );
    let board = b.client_with("/", &staff).await;
    for r in [first, second] {
        let ack = board
            .emit_ack("join:restaurant", json!({ "restaurantId": r }))
            .await;
        assert_eq!(ack["success"], true, "{ack}");
    }
    // Right after the ack of the switch, events of the old restaurant caused on A stay
    // away; the new one's arrive.
    order_on(&a, first, 1).await;
    let new = order_on(&a, second, 2).await;
    assert_eq!(board.recv("order:created").await, new);
    board.expect_none("order:created", QUIET).await;
}

for_each_adapter!(
    switching_restaurant_leaves_the_old_one_for_events_from_any_node,
    forced_leave_is_in_effect_everywhere_before_the_ack,
    an_operator_disconnect_ends_the_users_sockets_on_every_node,
);
