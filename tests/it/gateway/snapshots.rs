//! Gateway change events (contract §7.4's `{entity}.snapshot`, §7.5's REST rows, §7.7's
//! `table:complete`): every REST change reaches its section and `all`, and
//! `table:complete` frees the table it names, by id or by name.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test]
async fn every_rest_change_is_a_snapshot_in_its_section_and_in_all(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Diner", "north").await;
    let svc = service();
    let manager = member(20, &["manager"], &[r]);
    let staff = member(21, &["staff"], &[r]);

    let mut north = Gw::connect(&server, "restaurants", "north", &token(1, &["user"])).await;
    let mut south = Gw::connect(&server, "restaurants", "south", &token(1, &["user"])).await;
    let mut all_restaurants =
        Gw::connect(&server, "restaurants", "all", &token(1, &["user"])).await;
    let mut hall = Gw::connect(&server, "tables", "hall", &staff).await;
    let mut patio = Gw::connect(&server, "tables", "patio", &staff).await;
    let mut all_tables = Gw::connect(&server, "tables", "all", &svc).await;
    let mut bookings = Gw::connect(&server, "reservations", "hall", &staff).await;

    // A restaurant moving from north to south: both sections hear it, and `all` once.
    let moved = server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{r}"),
            &manager,
            Some(json!({ "section": "south", "address": "1 Main St" })),
        )
        .await;
    assert_eq!(
        (
            moved["section"].as_str(),
            moved["address"].as_str(),
            moved["cuisine"].as_str()
        ),
        (Some("south"), Some("1 Main St"), Some("Thai"))
    );
    for gw in [&mut north, &mut south, &mut all_restaurants] {
        let m = gw.next().await;
        assert_eq!(
            (m["event"].as_str(), m["data"]["op"].as_str()),
            (Some("restaurants.snapshot"), Some("updated"))
        );
        assert_eq!(m["data"]["item"], moved);
        assert_eq!(
            m["section"], "south",
            "the message names the item's section"
        );
        gw.quiet(QUIET).await;
    }
    // Clearing a field.
    let cleared = server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{r}"),
            &svc,
            Some(json!({ "cuisine": null })),
        )
        .await;
    assert!(cleared["cuisine"].is_null());
    assert_eq!(south.snapshot().await.1, cleared);
    north.quiet(QUIET).await;
    all_restaurants.snapshot().await;

    // Tables: created, updated, moved, deleted.
    let created = table(&server, r, "t1", "One", "hall").await;
    assert_eq!(
        hall.snapshot().await,
        ("created".to_owned(), created.clone())
    );
    assert_eq!(all_tables.snapshot().await, ("created".to_owned(), created));
    patio.quiet(QUIET).await;
    let updated = server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{r}/tables/t1"),
            &manager,
            Some(json!({ "status": "cleaning", "seats": 6 })),
        )
        .await;
    assert_eq!(
        hall.snapshot().await,
        ("updated".to_owned(), updated.clone())
    );
    all_tables.snapshot().await;
    let moved = server
        .expect(
            200,
            "PATCH",
            &format!("/api/restaurants/{r}/tables/t1"),
            &manager,
            Some(json!({ "section": "patio" })),
        )
        .await;
    assert_eq!(hall.snapshot().await, ("updated".to_owned(), moved.clone()));
    assert_eq!(
        patio.snapshot().await,
        ("updated".to_owned(), moved.clone())
    );
    assert_eq!(
        all_tables.snapshot().await,
        ("updated".to_owned(), moved.clone())
    );
    all_tables.quiet(QUIET).await;

    // Reservations: created, updated, deleted; deleting the table frees its reservations.
    table(&server, r, "t2", "Two", "hall").await;
    hall.snapshot().await;
    all_tables.snapshot().await;
    let booked = server.expect(201, "POST", &format!("/api/restaurants/{r}/reservations"), &staff, Some(json!({ "guest_name": "Ada", "party_size": 4, "starts_at": "2030-01-01T19:30:00+02:00", "table_id": "t2", "notes": "window" }))).await;
    assert_eq!(booked["starts_at"], "2030-01-01T17:30:00.000Z");
    assert_eq!(
        bookings.snapshot().await,
        ("created".to_owned(), booked.clone())
    );
    let seated = server
        .expect(
            200,
            "PATCH",
            &format!("/api/reservations/{}", booked["id"].as_str().unwrap()),
            &staff,
            Some(json!({ "status": "seated", "notes": null })),
        )
        .await;
    assert_eq!(
        (seated["status"].as_str(), seated["notes"].clone()),
        (Some("seated"), Value::Null)
    );
    assert_eq!(
        bookings.snapshot().await,
        ("updated".to_owned(), seated.clone())
    );
    server
        .expect(
            204,
            "DELETE",
            &format!("/api/restaurants/{r}/tables/t2"),
            &manager,
            None,
        )
        .await;
    let (op, released) = bookings.snapshot().await;
    assert_eq!(
        (
            op.as_str(),
            released["table_id"].clone(),
            released["id"].clone()
        ),
        ("updated", Value::Null, booked["id"].clone())
    );
    let (op, gone) = hall.snapshot().await;
    assert_eq!((op.as_str(), gone["id"].as_str()), ("deleted", Some("t2")));
    all_tables.snapshot().await;
    server
        .expect(
            204,
            "DELETE",
            &format!("/api/reservations/{}", booked["id"].as_str().unwrap()),
            &svc,
            None,
        )
        .await;
    let (op, gone) = bookings.snapshot().await;
    assert_eq!(
        (op.as_str(), gone["id"].clone()),
        ("deleted", booked["id"].clone())
    );
    for gw in [
        &mut north,
        &mut south,
        &mut hall,
        &mut patio,
        &mut bookings,
        &mut all_tables,
    ] {
        gw.quiet(Duration::from_millis(100)).await;
    }
}

#[sqlx::test]
async fn table_complete_frees_the_table_by_id_or_name(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Diner", "main").await;
    for (id, name) in [("table-9", "Nine"), ("t10", "10"), ("table-7", "table-9")] {
        table(&server, r, id, name, "hall").await;
        server
            .expect(
                200,
                "PATCH",
                &format!("/api/restaurants/{r}/tables/{id}"),
                &service(),
                Some(json!({ "status": "occupied" })),
            )
            .await;
    }
    let staff = member(30, &["staff"], &[r]);
    let mut floor = Gw::connect(&server, "tables", "hall", &staff).await;
    let pos = server
        .client_with(&format!("/restaurants/{r}"), &staff)
        .await;
    server.expect(201, "POST", &format!("/api/restaurants/{r}/orders"), &service(), Some(json!({ "order_number": "A1", "type": "dine_in", "table_number": 10, "total": 5, "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }] }))).await;

    // By name: table "10" is t10; its order completes and the table is available.
    let ack = pos
        .emit_ack(
            "table:complete",
            json!({ "tableNumber": 10, "restaurantId": r }),
        )
        .await;
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["data"]["orderIds"].as_array().unwrap().len(), 1);
    let (op, freed) = floor.snapshot().await;
    assert_eq!(
        (op.as_str(), freed["id"].as_str(), freed["status"].as_str()),
        ("updated", Some("t10"), Some("available"))
    );
    floor.quiet(QUIET).await;
    // An id wins over another table's equal name; no active orders still frees it.
    let ack = pos
        .emit_ack(
            "table:complete",
            json!({ "tableNumber": "table-9", "restaurantId": r }),
        )
        .await;
    assert_eq!(ack["data"]["orderIds"], json!([]));
    let (_, freed) = floor.snapshot().await;
    assert_eq!(
        (freed["id"].as_str(), freed["status"].as_str()),
        (Some("table-9"), Some("available"))
    );
    floor.quiet(QUIET).await;
    // Already available: nothing changes, nothing is announced.
    pos.emit_ack(
        "table:complete",
        json!({ "tableNumber": "table-9", "restaurantId": r }),
    )
    .await;
    floor.quiet(QUIET).await;
    let t7 = floor
        .ok("get_table", json!({ "id": "table-7" }), "tables.detail")
        .await;
    assert_eq!(t7["status"], "occupied");
}
