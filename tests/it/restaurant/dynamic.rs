//! The dynamic namespace `/restaurants/<id>` (contract §6, §9's access before existence):
//! admitted only for an accessible, existing restaurant and in its room at once; refusals
//! and reconnects never leave a namespace or route behind nor delete one in use; a
//! database fault closes the transport instead of refusing.

use std::time::Duration;

use super::*;
use crate::support::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[sqlx::test]
async fn dynamic_namespace_admits_only_accessible_existing_restaurants(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let ghost = Uuid::new_v4();
    let refused = |ns: String, token: String| {
        let server = &server;
        async move { refusal(server, &ns, Some(&token)).await }
    };
    assert_eq!(
        refused(format!("/restaurants/{other}"), staff(1, &[r])).await,
        "PERMISSION_DENIED"
    );
    assert_eq!(
        refused(format!("/restaurants/{ghost}"), staff(1, &[r])).await,
        "PERMISSION_DENIED"
    );
    assert_eq!(
        refused(format!("/restaurants/{ghost}"), staff(1, &[ghost])).await,
        "INVALID_RESTAURANT"
    );
    assert_eq!(
        refused("/restaurants/not-a-uuid".into(), token(1, &["admin"])).await,
        "INVALID_RESTAURANT"
    );

    // Admitted sockets are in the restaurant room at once, without joining.
    let c = tablet(&server, &format!("/restaurants/{r}"), r).await;
    let order = create_order(&server, r, Some("4"), &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
}

#[sqlx::test]
async fn a_dynamic_namespace_socket_can_follow_another_restaurant(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let a = create_restaurant(&server, "Bistro").await;
    let b = create_restaurant(&server, "Bistro").await;
    let c = server
        .client_with(&format!("/restaurants/{a}"), &staff(1, &[a, b]))
        .await;
    succeeds(&c, "join:restaurant", json!({ "restaurantId": b })).await;
    let order = create_order(&server, b, None, &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
    create_order(&server, a, None, &["kitchen"]).await;
    c.expect_none("order:created", QUIET).await;
}

#[sqlx::test]
async fn refused_connects_leave_no_namespace_or_route_behind(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let other = create_restaurant(&server, "Bistro").await;
    let mounted = metric(&server, NAMESPACES).await;
    assert_eq!(metric(&server, DYNAMIC_ROUTES).await, 0.0);
    let admin = token(1, &["admin"]);
    let mine = staff(1, &[r]);
    let long = "x".repeat(4000);
    let upper = r.to_string().to_uppercase();
    for _ in 0..10 {
        let stranger = format!("/restaurants/{}", Uuid::new_v4());
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            (stranger.clone(), None, "AUTH_FAILED"),
            (format!("/restaurants/{r}"), None, "AUTH_FAILED"),
            (stranger.clone(), Some("not.a.token"), "AUTH_FAILED"),
            (
                format!("/restaurants/{other}"),
                Some(&mine),
                "PERMISSION_DENIED",
            ),
            (
                format!("/restaurants/{long}"),
                Some(&admin),
                "INVALID_RESTAURANT",
            ),
            (stranger, Some(&admin), "INVALID_RESTAURANT"),
            // Other spellings of an accessible restaurant are refused, not mapped.
            (
                format!("/restaurants/{upper}"),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{{{r}}}"),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{}", r.urn()),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
            (
                format!("/restaurants/{}", r.simple()),
                Some(&mine),
                "INVALID_RESTAURANT",
            ),
        ];
        for (ns, token, code) in cases {
            assert_eq!(refusal(&server, &ns, token).await, code, "{ns}");
        }
    }
    let within = Duration::from_secs(5);
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;

    // An admitted socket holds its path and the restaurants it follows, until it goes.
    let c = server
        .client_with(&format!("/restaurants/{r}"), &staff(1, &[r, other]))
        .await;
    succeeds(&c, "join:restaurant", json!({ "restaurantId": other })).await;
    assert_eq!(metric(&server, NAMESPACES).await, mounted + 1.0);
    // The held path, and (r, path), (other, path).
    assert_eq!(metric(&server, DYNAMIC_ROUTES).await, 3.0);
    c.close().await;
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;
}

/// Connects a tablet on `ns`; the first attempt must be admitted (no transport closed
/// for it to retry on).
async fn tablet_at_once(base: &str, ns: &str, token: &str) -> SioClient {
    let opts = ConnectOptions {
        auth: Some(json!({ "token": token })),
        ..Default::default()
    };
    match SioClient::connect(base, ns, opts).await {
        Ok(c) => c,
        Err(e) => panic!("{ns}: a tablet was not admitted at once: {e}"),
    }
}

#[sqlx::test]
async fn refusals_never_delete_a_namespace_in_use_or_being_joined(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    let token = staff(1, &[r]);
    for _ in 0..20 {
        // Strangers refused on a quiet path while a tablet is being admitted there:
        // every one gets its own answer, the tablet is admitted at once.
        let strangers = futures_util::future::join_all((0..5).map(|_| refusal(&server, &ns, None)));
        let (codes, tablet) = tokio::join!(strangers, tablet_at_once(&server.base, &ns, &token));
        assert!(codes.iter().all(|c| c == "AUTH_FAILED"), "{codes:?}");
        // It sits on the namespace that events are sent to.
        let order = create_order(&server, r, None, &["kitchen"]).await;
        assert_eq!(tablet.recv("order:created").await, order);
        tablet.close().await;
    }
    let within = Duration::from_secs(5);
    wait_metric(&server, NAMESPACES, mounted, within).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, within).await;
}

#[sqlx::test]
async fn a_tablet_that_reconnects_the_moment_it_disconnects_is_admitted_every_time(pool: PgPool) {
    // A page reload: the old socket's hold goes as the new CONNECT arrives. The namespace
    // must still be there for the new socket, not deleted under it (which closed its
    // transport and made it reconnect).
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    let token = staff(1, &[r]);
    let mut tablet = tablet_at_once(&server.base, &ns, &token).await;
    // The server drops the old connection (a frame over the payload limit) and the
    // tablet reconnects as soon as it sees it go.
    let too_big = format!("42{ns},[\"x\",\"{}\"]", "z".repeat(1_000_001));
    for _ in 0..30 {
        tablet.send_raw(&too_big).await;
        assert!(tablet.wait_disconnected(Duration::from_secs(5)).await);
        tablet = tablet_at_once(&server.base, &ns, &token).await;
    }
    let order = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(tablet.recv("order:created").await, order);
    tablet.close().await;
    wait_metric(&server, NAMESPACES, mounted, Duration::from_secs(5)).await;
    wait_metric(&server, DYNAMIC_ROUTES, 0.0, Duration::from_secs(5)).await;
}

#[sqlx::test]
async fn a_database_fault_while_admitting_closes_the_transport_instead_of_refusing(pool: PgPool) {
    let server = TestServer::start(pool.clone()).await;
    let r = create_restaurant(&server, "Bistro").await;
    let ns = format!("/restaurants/{r}");
    let mounted = metric(&server, NAMESPACES).await;
    // The existence check fails as it would with the database away.
    sqlx::query("alter table restaurants rename to restaurants_away")
        .execute(&pool)
        .await
        .unwrap();
    let opts = ConnectOptions {
        auth: Some(json!({ "token": staff(1, &[r]) })),
        ..Default::default()
    };
    match SioClient::connect(&server.base, &ns, opts).await {
        Err(ConnectError::Io(_)) => {}
        Err(ConnectError::Refused(code)) => {
            panic!("a database fault answered connect_error {code}: clients never retry")
        }
        Ok(_) => panic!("admitted without the existence check"),
    }
    wait_metric(&server, NAMESPACES, mounted, Duration::from_secs(5)).await;
    sqlx::query("alter table restaurants_away rename to restaurants")
        .execute(&pool)
        .await
        .unwrap();
    // Back: the same tablet is admitted and gets its restaurant's events.
    let c = tablet(&server, &ns, r).await;
    let order = create_order(&server, r, None, &["kitchen"]).await;
    assert_eq!(c.recv("order:created").await, order);
}
