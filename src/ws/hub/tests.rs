//! The registry without sockets: frames stay in each connection's queue.

use std::time::Duration;

use super::*;
use crate::domain::user::UserId;
use crate::ws::frame::Frame;
fn text(s: &str) -> Frame {
    Frame::text(s)
}

/// The text of the oldest frame queued to `peer` (short frames: a two-byte header).
fn next(peer: &Peer) -> Option<String> {
    let bytes = peer.outbox().try_pop()?;
    Some(String::from_utf8_lossy(&bytes[2..]).into_owned())
}

#[tokio::test]
async fn delivery_reaches_members_once_and_removal_leaves_nothing() {
    let metrics = WsMetrics::default();
    let hub = Hub::new(2, metrics.clone(), None);
    let a = hub.register(4, Dialect::Envelope);
    let b = hub.register(4, Dialect::Envelope);
    assert_eq!(hub.subscribe(&a, "public:x"), Ok(true));
    assert_eq!(hub.subscribe(&a, "public:x"), Ok(false));
    assert_eq!(hub.subscribe(&b, "public:x"), Ok(true));
    assert_eq!(hub.subscribe(&a, "order:1"), Ok(true));
    assert_eq!(hub.subscribe(&a, "order:2"), Err(TooManyChannels));
    assert_eq!(
        (metrics.hub_entries.get(), metrics.hub_channels.get()),
        (3, 2)
    );
    assert_eq!(hub.deliver("public:x", &text("m"), "published"), 2);
    assert_eq!(next(&a), Some("m".to_owned()));
    assert_eq!(next(&b), Some("m".to_owned()));
    assert!(next(&a).is_none());
    hub.remove(&a);
    hub.remove(&b);
    assert_eq!(hub.subscribe(&a, "public:y"), Ok(false));
    assert_eq!(
        (metrics.hub_entries.get(), metrics.hub_channels.get()),
        (0, 0)
    );
    assert_eq!(hub.connections(), 0);
}

#[tokio::test]
async fn a_full_queue_closes_only_that_connection() {
    let hub = Hub::new(10, WsMetrics::default(), None);
    let slow = hub.register(1, Dialect::Envelope);
    let ok = hub.register(8, Dialect::Envelope);
    hub.subscribe(&slow, "public:x").unwrap();
    hub.subscribe(&ok, "public:x").unwrap();
    hub.deliver("public:x", &text("1"), "published");
    hub.deliver("public:x", &text("2"), "published");
    assert_eq!(slow.closing(), Some(CloseReason::SlowConsumer));
    assert_eq!(ok.closing(), None);
    assert_eq!(next(&ok), Some("1".to_owned()));
    assert_eq!(next(&ok), Some("2".to_owned()));
}

#[tokio::test]
async fn closing_all_reaches_present_and_late_connections() {
    let hub = Hub::new(10, WsMetrics::default(), None);
    let early = hub.register(4, Dialect::Envelope);
    hub.close_all(CloseReason::Shutdown);
    let late = hub.register(4, Dialect::Envelope);
    assert_eq!(early.closing(), Some(CloseReason::Shutdown));
    assert_eq!(late.closing(), Some(CloseReason::Shutdown));
    hub.remove(&early);
    assert_eq!(hub.wait_closed(Duration::from_millis(10)).await, 1);
    hub.remove(&late);
    assert_eq!(hub.wait_closed(Duration::from_secs(1)).await, 0);
}

#[tokio::test]
async fn each_dialect_gets_only_its_own_rendering() {
    let hub = Hub::new(10, WsMetrics::default(), None);
    let env = hub.register(4, Dialect::Envelope);
    let bare = hub.register(4, Dialect::Bare);
    let dash = hub.register(4, Dialect::Dashboard);
    env.set_user(&UserId::from(1));
    bare.set_user(&UserId::from(1));
    for peer in [&env, &bare, &dash] {
        hub.subscribe(peer, "c:1").unwrap();
    }
    let domain = Frames {
        envelope: Some(text("e")),
        bare: Some(text("b")),
        ..Frames::default()
    };
    assert_eq!(hub.deliver_frames("c:1", &domain, "x", None), 2);
    assert_eq!(hub.deliver_authenticated(&domain, "x"), 2);
    assert!(next(&dash).is_none(), "no domain event reaches a dashboard");
    assert_eq!(
        hub.deliver_frames("c:1", &Frames::dashboard(text("d")), "checkin", None),
        1
    );
    assert_eq!(next(&dash), Some("d".to_owned()));
    for (peer, own) in [(&env, "e"), (&bare, "b")] {
        assert_eq!(next(peer), Some(own.to_owned()));
        assert_eq!(next(peer), Some(own.to_owned()));
        assert!(next(peer).is_none());
    }
}

#[tokio::test]
async fn revoking_takes_out_only_that_users_connections() {
    let hub = Hub::new(10, WsMetrics::default(), None);
    let a = hub.register(4, Dialect::Envelope);
    let b = hub.register(4, Dialect::Envelope);
    a.set_user(&UserId::from(1));
    b.set_user(&UserId::from(2));
    hub.subscribe(&a, "order:9").unwrap();
    hub.subscribe(&b, "order:9").unwrap();
    let revoked = hub.revoke("order:9", &UserId::from(1));
    assert_eq!(revoked.len(), 1);
    assert_eq!(hub.deliver("order:9", &text("m"), "published"), 1);
    assert!(hub.revoke("order:9", &UserId::from(1)).is_empty());
}
