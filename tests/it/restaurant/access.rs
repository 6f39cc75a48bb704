//! Who gets in and what they may do on the restaurant namespaces (contract §6's access,
//! §9's access before existence, §2's roles, §3's replies in the restaurant dialect):
//! joins checked for access before existence, bad tokens refused, `connection:status`
//! on connect, payload errors that name the field, a `user` that may watch but not write.

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn join_restaurant_checks_access_before_existence(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let mine = create_restaurant(&server, "Bistro").await;
    let theirs = create_restaurant(&server, "Bistro").await;
    let unknown = Uuid::new_v4();
    let c = server.client_with("/", &staff(1, &[mine, unknown])).await;
    let ack = c.emit_ack("join:restaurant", json!(mine.to_string())).await;
    assert_eq!(
        assert_success(&ack),
        json!({ "room": format!("restaurant:{mine}") })
    );
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": theirs }),
        "PERMISSION_DENIED",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": Uuid::new_v4() }),
        "PERMISSION_DENIED",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!({ "restaurantId": unknown }),
        "INVALID_RESTAURANT",
    )
    .await;
    fails(
        &c,
        "join:restaurant",
        json!("not-a-uuid"),
        "INVALID_PAYLOAD",
    )
    .await;
    fails(&c, "orders:explode", json!({}), "INVALID_PAYLOAD").await;
    let admin = server
        .client_with("/restaurant", &token(2, &["admin"]))
        .await;
    succeeds(&admin, "join:restaurant", json!({ "restaurantId": theirs })).await;
}

#[sqlx::test]
async fn restaurant_namespaces_refuse_bad_tokens_with_auth_failed(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    for ns in ["/", "/restaurant", &format!("/restaurants/{r}")] {
        assert_eq!(
            refusal(&server, ns, Some("nope")).await,
            "AUTH_FAILED",
            "{ns}"
        );
    }
}

#[sqlx::test]
async fn payload_errors_name_the_field_in_the_restaurant_dialect(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let c = tablet(&server, "/", r).await;
    for payload in [json!("nope"), json!({ "restaurantId": 7 }), json!({})] {
        let ack = c.emit_ack("join:restaurant", payload.clone()).await;
        assert_failure(&ack, "INVALID_PAYLOAD");
        assert!(
            ack["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("restaurantId"),
            "{payload} -> {ack}"
        );
    }
    let ack = c
        .emit_ack("table:complete", json!({ "restaurantId": r }))
        .await;
    assert_failure(&ack, "INVALID_PAYLOAD");
    assert!(
        ack["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tableNumber"),
        "{ack}"
    );
}

#[sqlx::test]
async fn a_user_role_may_watch_a_board_but_not_change_its_orders(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, Some("4"), &["kitchen"]).await;
    let id = Uuid::parse_str(order["id"].as_str().unwrap()).unwrap();
    let user =
        sign(json!({ "sub": 2, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 600 }));
    let watcher = server.client_with("/", &user).await;
    // Reading and joining stay open to it.
    succeeds(&watcher, "join:restaurant", json!(r.to_string())).await;
    succeeds(&watcher, "orders:sync", json!({ "restaurantId": r })).await;
    let dynamic = server
        .client_with(&format!("/restaurants/{r}"), &user)
        .await;
    for c in [&watcher, &dynamic] {
        assert_failure(
            &update_status(c, r, &order, "preparing").await,
            "PERMISSION_DENIED",
        );
        fails(
            c,
            "table:complete",
            json!({ "tableNumber": "4", "restaurantId": r }),
            "PERMISSION_DENIED",
        )
        .await;
    }
    let status: String = sqlx::query_scalar("select status::text from orders where id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "new", "a refused write changed the order");
    watcher.expect_none("order:status_changed", QUIET).await;
    watcher.expect_none("table:completed", QUIET).await;
    // Staff, manager, admin and service may.
    let tokens = [
        staff(3, &[r]),
        manager(4, &[r]),
        token(5, &["admin"]),
        sign(
            json!({ "sub": 6, "roles": ["service"], "restaurants": [r], "exp": now_secs() + 600 }),
        ),
    ];
    let moves = ["pending", "confirmed", "preparing", "ready"];
    for (t, to) in tokens.iter().zip(moves) {
        let c = server.client_with("/", t).await;
        assert_success(&update_status(&c, r, &order, to).await);
    }
}

/// Seed 001's `connection:status` after every admitted connect on a restaurant
/// namespace; the chat namespaces have no such event.
#[sqlx::test]
async fn restaurant_namespaces_say_connected(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    for ns in [
        "/".to_owned(),
        "/restaurant".to_owned(),
        format!("/restaurants/{r}"),
    ] {
        let c = tablet(&server, &ns, r).await;
        assert_eq!(
            c.recv("connection:status").await,
            json!({ "state": "connected" }),
            "on {ns}"
        );
    }
    let chat = server.client("/chat", 1).await;
    chat.expect_none("connection:status", QUIET).await;
}
