//! Who sees what on the gateway (contract §7.4's items and access): tables and
//! reservations for staff of their restaurant, admin and service; lists filtered,
//! `get` is `not_found` for the others.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn tables_and_reservations_are_for_staff_of_their_restaurant_admin_and_service(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let (mine, theirs) = (
        restaurant(&server, "Mine", "main").await,
        restaurant(&server, "Theirs", "main").await,
    );
    // The same table id in both restaurants.
    table(&server, mine, "t1", "Mine 1", "floor").await;
    table(&server, theirs, "t1", "Theirs 1", "floor").await;
    let their_booking = reservation(&server, theirs, "Zoe", json!({ "section": "floor" })).await;
    reservation(&server, mine, "Max", json!({ "section": "floor" })).await;

    let staff = member(10, &["staff"], &[mine]);
    let mut gw = Gw::connect(&server, "tables", "floor", &staff).await;
    let page = gw.ok("list", json!({}), "tables.list").await;
    assert_eq!(
        (page["total"].as_i64(), page["items"][0]["name"].as_str()),
        (Some(1), Some("Mine 1"))
    );
    assert_eq!(
        gw.ok("get_table", json!({ "id": "t1" }), "tables.detail")
            .await["restaurant_id"],
        mine.to_string()
    );
    assert_eq!(
        gw.error("get_table", json!({ "id": "t1", "restaurant_id": theirs }))
            .await,
        "not_found"
    );
    let mut bookings = Gw::connect(&server, "reservations", "floor", &staff).await;
    assert_eq!(
        bookings.ok("list", json!({}), "reservations.list").await["total"],
        1
    );
    assert_eq!(
        bookings
            .error("get_reservation", json!({ "id": their_booking["id"] }))
            .await,
        "not_found"
    );

    // Staff of several restaurants see each one's, and only theirs.
    let both = member(12, &["staff"], &[mine, theirs]);
    let mut two = Gw::connect(&server, "tables", "all", &both).await;
    let page = two.ok("list", json!({}), "tables.list").await;
    assert_eq!(page["total"], 2, "{page}");
    let found = two
        .ok("list", json!({ "search": "THEIRS" }), "tables.list")
        .await;
    assert_eq!(
        (
            found["total"].as_i64(),
            found["items"][0]["restaurant_id"].as_str()
        ),
        (Some(1), Some(theirs.to_string().as_str()))
    );
    let mine_and_gone = member(13, &["staff"], &[mine, Uuid::new_v4()]);
    let mut one = Gw::connect(&server, "tables", "all", &mine_and_gone).await;
    assert_eq!(one.ok("list", json!({}), "tables.list").await["total"], 1);

    // A user of the restaurant sees no tables and no reservations; restaurants, yes.
    let user = member(11, &["user"], &[mine]);
    let mut nothing = Gw::connect(&server, "tables", "floor", &user).await;
    assert_eq!(
        nothing.ok("list", json!({}), "tables.list").await["total"],
        0
    );
    assert_eq!(
        nothing.error("get_table", json!({ "id": "t1" })).await,
        "not_found"
    );
    let mut restaurants = Gw::connect(&server, "restaurants", "main", &user).await;
    assert_eq!(
        restaurants.ok("list", json!({}), "restaurants.list").await["total"],
        2
    );

    // Admin sees both restaurants' tables; a table get may pick the restaurant.
    let mut everything = Gw::connect(&server, "tables", "floor", &admin()).await;
    assert_eq!(
        everything.ok("list", json!({}), "tables.list").await["total"],
        2
    );
    assert_eq!(
        everything
            .ok(
                "get_table",
                json!({ "id": "t1", "restaurant_id": theirs }),
                "tables.detail"
            )
            .await["name"],
        "Theirs 1"
    );
    // `get` looks only in the connection's section.
    let mut patio = Gw::connect(&server, "tables", "patio", &admin()).await;
    assert_eq!(
        patio.error("get_table", json!({ "id": "t1" })).await,
        "not_found"
    );

    // Snapshots follow the same rule: staff of `mine` hear of mine only.
    server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{theirs}/tables/t1"),
            &service(),
            Some(json!({ "status": "occupied" })),
        )
        .await;
    let (op, item) = everything.snapshot().await;
    assert_eq!(
        (op.as_str(), item["restaurant_id"].as_str()),
        ("updated", Some(theirs.to_string().as_str()))
    );
    server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{mine}/tables/t1"),
            &service(),
            Some(json!({ "status": "occupied" })),
        )
        .await;
    let (_, item) = gw.snapshot().await;
    assert_eq!(item["restaurant_id"], mine.to_string());
    let (_, item) = everything.snapshot().await;
    assert_eq!(item["restaurant_id"], mine.to_string());
    gw.quiet(QUIET).await;
    nothing.quiet(Duration::ZERO).await;
    patio.quiet(Duration::ZERO).await;
}
