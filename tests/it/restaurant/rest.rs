//! The REST order routes (contract §8's restaurant rows, §9's REST and restaurant
//! details): roles, rights before the body, changes announced to the tablets, a quiet
//! PATCH to the current status, deletes kept for audit, and the REST board
//! `GET /api/restaurants/:id/orders`.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn rest_order_routes_enforce_roles_and_announce_changes(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let http = server.http();
    let body = json!({ "order_number": "A1", "type": "takeout", "items": [{ "name": "Tea", "quantity": 2, "station": "bar" }], "total": 4 });
    let post = |t: String| {
        http.post(server.url(&format!("/api/restaurants/{r}/orders")))
            .bearer_auth(t)
            .json(&body)
            .send()
    };
    assert_eq!(post(token(1, &["user"])).await.unwrap().status(), 403);
    assert_eq!(
        post(sign(
            json!({ "sub": 1, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 60 })
        ))
        .await
        .unwrap()
        .status(),
        403
    );
    let res = post(staff(2, &[r])).await.unwrap();
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    let ghost = Uuid::new_v4();
    let res = http
        .post(server.url(&format!("/api/restaurants/{ghost}/orders")))
        .bearer_auth(service())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let bad = json!({ "order_number": "A2", "type": "takeout", "items": [], "total": 4 });
    let res = http
        .post(server.url(&format!("/api/restaurants/{r}/orders")))
        .bearer_auth(service())
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let bar = tablet(&server, "/", r).await;
    succeeds(&bar, "join:station", at_station(r, "bar")).await;
    let url = server.url(&format!("/api/orders/{}", order["id"].as_str().unwrap()));
    let patch = json!({ "status": "preparing", "items": [{ "name": "Coffee", "quantity": 1, "station": "bar", "notes": "oat" }] });
    let res = http
        .patch(&url)
        .bearer_auth(staff(2, &[r]))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["status"], "preparing");
    let updated = bar.recv("order:updated").await;
    assert_eq!(updated["changes"], json!(["status", "items"]));
    assert_eq!(updated["order"], patched);
    assert_eq!(updated["updatedBy"], "2");
    assert_eq!(
        bar.recv("order:status_changed").await["previousStatus"],
        "new"
    );
    let res = http
        .patch(&url)
        .bearer_auth(staff(2, &[r]))
        .json(&json!({ "status": "new" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "INVALID_TRANSITION");

    assert_eq!(
        http.delete(&url)
            .bearer_auth(staff(2, &[r]))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = http
        .delete(&url)
        .bearer_auth(manager(3, &[r]))
        .json(&json!({ "reason": "customer left" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let deleted = bar.recv("order:deleted").await;
    assert_eq!(deleted["orderId"], order["id"]);
    assert_eq!(deleted["reason"], "customer left");
    assert_eq!(
        http.delete(&url)
            .bearer_auth(service())
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let kept: i64 = sqlx::query_scalar("select count(*) from orders where deleted_at is not null")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "deleted orders stay for audit");
    let sync = succeeds(&bar, "orders:sync", json!({ "restaurantId": r })).await;
    assert_eq!(sync["orders"], json!([]));
}

#[sqlx::test]
async fn rest_checks_rights_before_the_body_and_hides_other_restaurants_orders(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let a = create_restaurant(&server, "Bistro").await;
    let b = create_restaurant(&server, "Bistro").await;
    let order_b = create_order(&server, b, None, &["kitchen"]).await;
    let http = server.http();
    // No rights: 403 even though the body is invalid.
    let res = http
        .post(server.url(&format!("/api/restaurants/{b}/orders")))
        .bearer_auth(staff(1, &[a]))
        .json(&json!({ "garbage": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .post(server.url("/api/restaurants"))
        .bearer_auth(staff(1, &[a]))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // An order of a restaurant outside the token is not found, not forbidden.
    let url = server.url(&format!("/api/orders/{}", order_b["id"].as_str().unwrap()));
    let res = http
        .patch(&url)
        .bearer_auth(staff(1, &[a]))
        .json(&json!({ "status": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // In the token but only a `user`: forbidden.
    let user_b =
        sign(json!({ "sub": 2, "roles": ["user"], "restaurants": [b], "exp": now_secs() + 60 }));
    let res = http
        .patch(&url)
        .bearer_auth(user_b)
        .json(&json!({ "status": "ready" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// A PATCH to the status the order already has changes nothing and tells nobody.
#[sqlx::test]
async fn a_patch_to_the_current_status_is_a_quiet_success(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    let board = tablet(&server, "/", r).await;
    succeeds(&board, "join:restaurant", json!(r.to_string())).await;
    let res = server
        .patch(
            &format!("/api/orders/{}", order["id"].as_str().unwrap()),
            &staff(2, &[r]),
            &json!({ "status": "new" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "new");
    assert_eq!(body["updated_at"], order["updated_at"]);
    board.expect_none("order:updated", QUIET).await;
    board.expect_none("order:status_changed", QUIET).await;
}

/// `GET /api/restaurants/:id/orders`: the board of `orders:sync` over REST, with status
/// and station filters, under the REST rights rules.
#[sqlx::test]
async fn the_rest_board_lists_what_orders_sync_does_with_filters(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let soup = create_order(&server, r, Some("1"), &["kitchen"]).await;
    let tea = create_order(&server, r, Some("2"), &["bar"]).await;
    let both = create_order(&server, r, Some("3"), &["kitchen", "bar"]).await;
    let c = tablet(&server, "/", r).await;
    assert_success(&update_status(&c, r, &soup, "completed").await);
    let get = |path: String, tok: String| {
        let request = server.request("GET", &path, Some(&tok));
        async move { status_and_json(request.send().await.unwrap()).await }
    };
    let path = format!("/api/restaurants/{r}/orders");
    let (status, board) = get(path.clone(), staff(10, &[r])).await;
    assert_eq!(status, 200);
    let synced = succeeds(&c, "orders:sync", json!({ "restaurantId": r })).await;
    assert_eq!(board, synced["orders"], "the same board as orders:sync");
    assert_eq!(board.as_array().unwrap().len(), 2);
    let ids = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].clone())
            .collect()
    };
    let (_, done) = get(format!("{path}?status=completed"), staff(10, &[r])).await;
    assert_eq!(ids(&done), [soup["id"].clone()]);
    let (_, mixed) = get(format!("{path}?status=new,completed"), staff(10, &[r])).await;
    assert_eq!(
        ids(&mixed),
        [soup["id"].clone(), tea["id"].clone(), both["id"].clone()]
    );
    let (_, repeated) = get(
        format!("{path}?status=new&status=completed"),
        staff(10, &[r]),
    )
    .await;
    assert_eq!(repeated, mixed);
    let (_, bar) = get(format!("{path}?station=bar"), staff(10, &[r])).await;
    assert_eq!(ids(&bar), [tea["id"].clone(), both["id"].clone()]);
    let (_, kitchen_done) = get(
        format!("{path}?station=kitchen&status=completed"),
        staff(10, &[r]),
    )
    .await;
    assert_eq!(ids(&kitchen_done), [soup["id"].clone()]);
    // A `user` of the restaurant may watch the board, as on the socket.
    let viewer =
        sign(json!({ "sub": 11, "roles": ["user"], "restaurants": [r], "exp": now_secs() + 600 }));
    assert_eq!(get(path.clone(), viewer).await.0, 200);

    for (query, field) in [("status=eaten", "statuses"), ("station=grill", "station")] {
        let (status, body) = get(format!("{path}?{query}"), staff(10, &[r])).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    // Rights before existence, as for every restaurant route.
    let (status, _) = get(path.clone(), staff(10, &[other])).await;
    assert_eq!(status, 403);
    let (status, _) = get(
        format!("/api/restaurants/{}/orders", Uuid::new_v4()),
        service(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get("/api/restaurants/nope/orders".to_owned(), service()).await;
    assert_eq!(status, 400);
    let res = server.http().get(server.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// `DELETE /api/orders/:id` without a body announces `order:deleted` with no `reason`
/// key at all (not `null`); an unknown order is 404 and announces nothing.
#[sqlx::test]
async fn a_delete_without_a_reason_carries_no_reason_key(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    let board = tablet(&server, "/", r).await;
    succeeds(&board, "join:restaurant", json!(r.to_string())).await;
    let unknown = format!("/api/orders/{}", Uuid::now_v7());
    assert_eq!(
        server.delete(&unknown, &manager(3, &[r])).await.status(),
        404
    );
    board.expect_none("order:deleted", QUIET).await;

    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(server.delete(&path, &manager(3, &[r])).await.status(), 204);
    let deleted = board.recv("order:deleted").await;
    let mut keys: Vec<&str> = deleted
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["orderId", "timestamp"], "{deleted}");
    assert_eq!(deleted["orderId"], order["id"]);
}
