//! Connecting to the gateway (contract §7.4's routes, §7.1's refusals before the
//! upgrade, §7.7's order of checks): every place a token may come from, entity
//! capitalisation, the legacy route, and what is refused first.

use std::time::Duration;

use super::*;
use crate::support::ws::{refused, with_bearer};
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test]
async fn refusals_come_before_the_upgrade_in_the_contracts_order(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let good = token(5, &["user"]);
    // The entity first: 404 even without a token.
    for path in [
        "/ws/users/main".to_owned(),
        "/ws/users/main/nope".to_owned(),
        format!("/ws/orders/main/{good}"),
        "/ws/dashboards/x/y".to_owned(),
    ] {
        assert_eq!(
            refused(request(&server, &path)).await,
            (404, "NOT_FOUND".to_owned()),
            "{path}"
        );
    }
    // Then the section: 400, even without a token.
    for section in ["a%2Fb".to_owned(), "s".repeat(65), "caf%C3%A9".to_owned()] {
        assert_eq!(
            refused(request(&server, &format!("/ws/tables/{section}"))).await,
            (400, "BAD_REQUEST".to_owned()),
            "{section}"
        );
    }
    // Then the token: missing, forged, expired, in each place.
    let expired = sign(json!({ "sub": 5, "roles": ["staff"], "exp": now_secs() - 3600 }));
    for req in [
        request(&server, "/ws/tables/main"),
        request(&server, "/ws/tables/main/forged"),
        request(&server, &format!("/ws/tables/main/{expired}")),
        request(&server, "/ws/tables/main?token=forged"),
        with_bearer(request(&server, "/ws/tables/main"), &expired),
    ] {
        assert_eq!(refused(req).await, (401, "AUTH_INVALID".to_owned()));
    }
    // A plain GET with everything right is not an upgrade.
    let res = server
        .http()
        .get(server.url(&format!("/ws/tables/main/{good}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(metric(&server, GATEWAYS).await, 0.0);
}

#[sqlx::test]
async fn with_allowed_origins_a_foreign_origin_is_refused_first(pool: PgPool) {
    let server =
        TestServer::start_with(pool, &[("ALLOWED_ORIGINS", "https://floor.example")]).await;
    let with_origin = |path: &str, origin: &str| {
        let mut req = request(&server, path);
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    let t = token(5, &["user"]);
    assert_eq!(
        refused(with_origin("/ws/users/main", "https://evil.example")).await,
        (403, "FORBIDDEN".to_owned())
    );
    assert_eq!(
        refused(with_origin(
            &format!("/ws/tables/main/{t}"),
            "https://evil.example"
        ))
        .await,
        (403, "FORBIDDEN".to_owned())
    );
    let gw = Gw::open(with_origin(
        &format!("/ws/tables/main/{t}"),
        "https://floor.example",
    ))
    .await;
    assert_eq!(gw.hello["data"]["entity"], "tables");
}

#[sqlx::test]
async fn every_token_place_capitalisation_and_the_legacy_route_connect(pool: PgPool) {
    let server =
        TestServer::start_with(pool, &[("WEBSOCKET_ALLOWED_ACTIONS", "create, seat_guest")]).await;
    let t = token(5, &["user"]);
    let cases = [
        (
            request(&server, &format!("/ws/tables/main-hall/{t}")),
            "tables",
            "main-hall",
        ),
        (
            request(&server, &format!("/ws/TABLES/Patio_2.e?token={t}")),
            "tables",
            "Patio_2.e",
        ),
        (
            with_bearer(request(&server, "/ws/Reservations/all"), &t),
            "reservations",
            "all",
        ),
        (
            request(&server, &format!("/ws/restaurant/downtown/{t}")),
            "restaurants",
            "downtown",
        ),
        (
            request(&server, &format!("/ws/restaurant/downtown?token={t}")),
            "restaurants",
            "downtown",
        ),
        (
            request(&server, &format!("/ws/rEsTaUrAnTs/x/{t}")),
            "restaurants",
            "x",
        ),
    ];
    let mut open = Vec::new();
    for (req, entity, section) in cases {
        let gw = Gw::open(req).await;
        let hello = &gw.hello;
        assert_eq!(
            (hello["entity"].as_str(), hello["section"].as_str()),
            (Some(entity), Some(section))
        );
        assert_eq!(
            hello["data"],
            json!({
                "entity": entity,
                "section": section,
                "topics": [
                    format!("{entity}.snapshot"), format!("{entity}.list"),
                    format!("{entity}.detail"), format!("{entity}.error"),
                    format!("{entity}.create"), format!("{entity}.seat_guest"),
                ]
            })
        );
        assert!(hello["metadata"].get("request_id").is_none());
        open.push(gw);
    }
    assert_eq!(metric(&server, GATEWAYS).await, 6.0);
    drop(open);
    wait_metric(&server, GATEWAYS, 0.0, Duration::from_secs(5)).await;
}
