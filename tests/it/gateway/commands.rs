//! Gateway commands (contract §7.4's `list_*`, `get_*` and their aliases, §7.7's search):
//! every alias answers with its `request_id` echoed; pages, limits and search.

use super::*;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test]
async fn every_alias_lists_and_gets_with_request_id_echoed(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Noodle Bar", "downtown").await;
    table(&server, r, "table-17", "Window", "main-hall").await;
    let booked = reservation(&server, r, "Ada", json!({ "table_id": "table-17" })).await;
    let svc = service();

    let mut restaurants =
        Gw::connect(&server, "restaurants", "downtown", &token(5, &["user"])).await;
    for action in [
        "list_restaurants",
        "list_restaurant",
        "list",
        "fetch_all",
        "LIST_Restaurants",
    ] {
        let page = restaurants.ok(action, json!({}), "restaurants.list").await;
        assert_eq!(
            (
                page["page"].as_i64(),
                page["limit"].as_i64(),
                page["total"].as_i64()
            ),
            (Some(1), Some(20), Some(1)),
            "{action}"
        );
        let item = &page["items"][0];
        assert_eq!(item["id"], r.to_string());
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "address",
                "created_at",
                "cuisine",
                "id",
                "name",
                "section",
                "updated_at"
            ]
        );
        assert_eq!(
            (
                item["name"].as_str(),
                item["section"].as_str(),
                item["cuisine"].as_str()
            ),
            (Some("Noodle Bar"), Some("downtown"), Some("Thai"))
        );
        assert!(item["address"].is_null());
    }
    for action in ["get_restaurant", "get_restaurants", "detail", "fetch_one"] {
        let item = restaurants
            .ok(action, json!({ "id": r }), "restaurants.detail")
            .await;
        assert_eq!(item["id"], r.to_string(), "{action}");
    }

    let mut tables = Gw::connect(&server, "tables", "main-hall", &svc).await;
    for action in ["list_tables", "list_table", "list", "fetch_all"] {
        let page = tables
            .ok(action, json!({ "page": 1, "limit": 10 }), "tables.list")
            .await;
        assert_eq!(page["total"], 1, "{action}");
        assert_eq!(
            page["items"][0],
            json!({
                "id": "table-17", "restaurant_id": r, "section": "main-hall", "name": "Window",
                "seats": 4, "status": "available", "updated_at": page["items"][0]["updated_at"]
            })
        );
        assert!(
            page["items"][0]["updated_at"]
                .as_str()
                .is_some_and(rfc3339_ms)
        );
    }
    for action in ["get_table", "get_tables", "detail", "fetch_one"] {
        let item = tables
            .ok(action, json!({ "id": "table-17" }), "tables.detail")
            .await;
        assert_eq!(item["name"], "Window", "{action}");
    }

    let mut bookings = Gw::connect(&server, "reservations", "main-hall", &svc).await;
    for action in ["list_reservations", "list_reservation", "list", "fetch_all"] {
        let page = bookings.ok(action, json!({}), "reservations.list").await;
        assert_eq!(page["items"], json!([booked]), "{action}");
    }
    for action in ["get_reservation", "get_reservations", "detail", "fetch_one"] {
        let item = bookings
            .ok(action, json!({ "id": booked["id"] }), "reservations.detail")
            .await;
        assert_eq!(item, booked, "{action}");
    }
    // The reservation took its table's section; its fields are the contract's.
    assert_eq!(booked["section"], "main-hall");
    let keys: Vec<&String> = booked.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "guest_name",
            "id",
            "notes",
            "party_size",
            "restaurant_id",
            "section",
            "starts_at",
            "status",
            "table_id",
            "updated_at"
        ]
    );
    assert_eq!(booked["starts_at"], "2030-05-01T19:00:00.000Z");
    assert_eq!(booked["status"], "booked");

    // A command without a request_id gets a reply without one.
    tables.send_json(json!({ "action": "list" })).await;
    let reply = tables.next().await;
    assert_eq!(reply["event"], "tables.list");
    assert!(reply["metadata"].get("request_id").is_none(), "{reply}");
    assert_eq!(reply["metadata"]["action"], "list");
}

#[sqlx::test]
async fn paging_and_search_are_case_insensitive_and_literal(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = restaurant(&server, "Diner", "north").await;
    for (n, name) in ["Bob", "bobby", "Alice", "100%_Club", "100 Club", "Zed"]
        .iter()
        .enumerate()
    {
        table(&server, r, &format!("t{n}"), name, "main").await;
    }
    table(&server, r, "elsewhere", "Bob on the patio", "patio").await;
    let mut gw = Gw::connect(&server, "tables", "main", &admin()).await;
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = gw.ok("list", json!({ "limit": 100 }), "tables.list").await;
    assert_eq!(all["total"], 6);
    assert_eq!(
        names(&all),
        ["100 Club", "100%_Club", "Alice", "Bob", "Zed", "bobby"]
    );
    let second = gw
        .ok("list", json!({ "page": 2, "limit": 4 }), "tables.list")
        .await;
    assert_eq!(
        (
            names(&second),
            second["total"].as_i64(),
            second["page"].as_i64(),
            second["limit"].as_i64()
        ),
        (
            vec!["Zed".to_owned(), "bobby".to_owned()],
            Some(6),
            Some(2),
            Some(4)
        )
    );
    let past = gw.ok("list", json!({ "page": 9 }), "tables.list").await;
    assert_eq!(
        (past["items"].clone(), past["total"].as_i64()),
        (json!([]), Some(6))
    );
    let bob = gw
        .ok("list", json!({ "search": "BOB" }), "tables.list")
        .await;
    assert_eq!(
        (names(&bob), bob["total"].as_i64()),
        (vec!["Bob".to_owned(), "bobby".to_owned()], Some(2))
    );
    // LIKE's wildcards in a search are the characters themselves.
    let literal = gw
        .ok("list", json!({ "search": "0%_c" }), "tables.list")
        .await;
    assert_eq!(names(&literal), ["100%_Club"]);
    let underscore = gw.ok("list", json!({ "search": "_" }), "tables.list").await;
    assert_eq!(names(&underscore), ["100%_Club"]);
    let none = gw.ok("list", json!({ "search": "%" }), "tables.list").await;
    assert_eq!(names(&none), ["100%_Club"]);
    // Section `all` sees every section.
    let mut every = Gw::connect(&server, "tables", "all", &admin()).await;
    let bob = every
        .ok("list_tables", json!({ "search": "bob" }), "tables.list")
        .await;
    assert_eq!(names(&bob), ["Bob", "Bob on the patio", "bobby"]);

    // Reservations: by time, search on the guest's name.
    for (guest, at) in [
        ("Late Lee", "2030-01-01T21:00:00Z"),
        ("Early Eve", "2030-01-01T18:00:00Z"),
        ("eve again", "2030-01-02T12:00:00Z"),
    ] {
        reservation(
            &server,
            r,
            guest,
            json!({ "starts_at": at, "section": "main" }),
        )
        .await;
    }
    let mut bookings = Gw::connect(&server, "reservations", "main", &service()).await;
    let page = bookings.ok("list", json!({}), "reservations.list").await;
    let guests: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["guest_name"].as_str().unwrap())
        .collect();
    assert_eq!(guests, ["Early Eve", "Late Lee", "eve again"]);
    let eve = bookings
        .ok("list", json!({ "search": "EVE" }), "reservations.list")
        .await;
    assert_eq!(eve["total"], 2);
    // A searched page counts every match, past the end too, and nothing is 0.
    for (payload, guests, total) in [
        (json!({ "search": "eve", "limit": 1 }), vec!["Early Eve"], 2),
        (
            json!({ "search": "eve", "limit": 1, "page": 2 }),
            vec!["eve again"],
            2,
        ),
        (json!({ "search": "eve", "limit": 1, "page": 3 }), vec![], 2),
        (json!({ "search": "nobody" }), vec![], 0),
        (json!({ "search": "nobody", "page": 2 }), vec![], 0),
    ] {
        let page = bookings
            .ok("list", payload.clone(), "reservations.list")
            .await;
        let got: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["guest_name"].as_str().unwrap())
            .collect();
        assert_eq!(
            (got, page["total"].as_i64()),
            (guests, Some(total)),
            "{payload}"
        );
    }
}
