//! The REST routes that feed the gateway (contract §7.5's restaurant, table and
//! reservation rows): roles, body validation and conflicts.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// `POST path` of `body` is a 400 whose message starts with `field`.
async fn refused_naming(server: &TestServer, path: &str, bearer: &str, body: Value, field: &str) {
    let (status, got) = server.call("POST", path, bearer, Some(body.clone())).await;
    assert_eq!(status, 400, "{body}: {got}");
    let message = got["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(field), "{body}: {got}");
}

#[sqlx::test]
async fn rest_routes_check_roles_bodies_and_conflicts(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Diner", "main").await;
    let other = restaurant(&server, "Other", "main").await;
    let (svc, manager, staff, user) = (
        service(),
        member(1, &["manager"], &[r]),
        member(2, &["staff"], &[r]),
        member(3, &["user"], &[r]),
    );
    let elsewhere = member(4, &["manager"], &[other]);
    let tables = format!("/api/restaurants/{r}/tables");
    let good = json!({ "id": "t1", "name": "One", "seats": 2 });

    // Tables and restaurant details: manager+ of it, admin, service.
    for (who, bearer) in [
        ("staff", &staff),
        ("user", &user),
        ("another restaurant's manager", &elsewhere),
    ] {
        assert_eq!(
            server
                .call("POST", &tables, bearer, Some(good.clone()))
                .await
                .0,
            403,
            "{who}"
        );
        assert_eq!(
            server
                .call(
                    "PATCH",
                    &format!("/api/restaurants/{r}"),
                    bearer,
                    Some(json!({ "name": "X" }))
                )
                .await
                .0,
            403,
            "{who}"
        );
    }
    let created = server
        .expect(201, "POST", &tables, &manager, Some(good.clone()))
        .await;
    assert_eq!(
        created["section"], "main",
        "the restaurant's section by default"
    );
    let (status, body) = server
        .call("POST", &tables, &admin(), Some(good.clone()))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("INVALID_TRANSITION"))
    );
    // The same id in another restaurant is fine; no id: the server makes one.
    server
        .expect(
            201,
            "POST",
            &format!("/api/restaurants/{other}/tables"),
            &svc,
            Some(good.clone()),
        )
        .await;
    let made = server
        .expect(
            201,
            "POST",
            &tables,
            &svc,
            Some(json!({ "name": "Auto", "seats": 3 })),
        )
        .await;
    assert!(made["id"].as_str().unwrap().starts_with("table-"));
    for (body, field) in [
        (
            json!({ "name": "x", "seats": 2, "status": "broken" }),
            "status:",
        ),
        (json!({ "name": "x", "seats": -1 }), "seats:"),
        (
            json!({ "name": "x", "seats": 2, "section": "all" }),
            "section:",
        ),
        (
            json!({ "name": "x", "seats": 2, "section": "a/b" }),
            "section:",
        ),
        (json!({ "id": "has space", "name": "x", "seats": 2 }), "id:"),
    ] {
        refused_naming(&server, &tables, &svc, body, field).await;
    }
    server
        .expect(
            404,
            "POST",
            &format!("/api/restaurants/{}/tables", Uuid::new_v4()),
            &svc,
            Some(good.clone()),
        )
        .await;
    server
        .expect(
            404,
            "PATCH",
            &format!("{tables}/nope"),
            &svc,
            Some(json!({})),
        )
        .await;
    server
        .expect(204, "DELETE", &format!("{tables}/t1"), &manager, None)
        .await;
    server
        .expect(404, "DELETE", &format!("{tables}/t1"), &manager, None)
        .await;

    // Reservations: staff+ of it, admin, service.
    let reservations = format!("/api/restaurants/{r}/reservations");
    let booking =
        json!({ "guest_name": "Ada", "party_size": 2, "starts_at": "2030-01-01T19:00:00Z" });
    server
        .expect(403, "POST", &reservations, &user, Some(booking.clone()))
        .await;
    server
        .expect(
            403,
            "POST",
            &reservations,
            &elsewhere,
            Some(booking.clone()),
        )
        .await;
    for (patch, field) in [
        (json!({ "party_size": -2 }), "party_size:"),
        (json!({ "party_size": 0 }), "party_size:"),
        (json!({ "status": "eaten" }), "status:"),
        (json!({ "starts_at": "tomorrow" }), "starts_at:"),
        (json!({ "table_id": "no-such-table" }), "table_id:"),
        (json!({ "guest_name": " " }), "guest_name:"),
    ] {
        let mut body = booking.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        refused_naming(&server, &reservations, &staff, body, field).await;
    }
    server
        .expect(
            404,
            "POST",
            &format!("/api/restaurants/{}/reservations", Uuid::new_v4()),
            &svc,
            Some(booking.clone()),
        )
        .await;
    let booked = server
        .expect(201, "POST", &reservations, &staff, Some(booking.clone()))
        .await;
    let path = format!("/api/reservations/{}", booked["id"].as_str().unwrap());
    // Another restaurant's staff cannot tell it exists; a user of it may not change it.
    for (status, path, bearer, body) in [
        (
            404,
            path.as_str(),
            &elsewhere,
            json!({ "status": "seated" }),
        ),
        (403, &path, &user, json!({ "status": "seated" })),
        (400, &path, &staff, json!({ "status": "late" })),
        (400, "/api/reservations/nope", &staff, json!({})),
    ] {
        server
            .expect(status, "PATCH", path, bearer, Some(body))
            .await;
    }
    // Nothing of the refused changes was written.
    let mut gw = Gw::connect(&server, "reservations", "all", &staff).await;
    assert_eq!(
        gw.ok(
            "get_reservation",
            json!({ "id": booked["id"] }),
            "reservations.detail"
        )
        .await,
        booked
    );
    server.expect(204, "DELETE", &path, &staff, None).await;
    server.expect(404, "DELETE", &path, &staff, None).await;
}
