//! Meters, session links and size estimates.

use super::link::open_packet;
use super::size::{json_size, msgpack_size};
use super::*;

#[test]
fn open_packets_of_both_engine_io_versions() {
    assert_eq!(
        open_packet(b"0{\"sid\":\"a\"}"),
        Some(&b"{\"sid\":\"a\"}"[..])
    );
    assert_eq!(
        open_packet(b"12:0{\"sid\":\"a\"}"),
        Some(&b"{\"sid\":\"a\"}"[..])
    );
    assert_eq!(open_packet(b"12:"), None);
    assert_eq!(open_packet(b":0{}"), None);
    assert_eq!(open_packet(b"40"), None);
    assert_eq!(open_packet(b""), None);
}

fn meters(budget: u64, stall_ms: u64) -> Arc<Meters> {
    let engine = crate::config::Config::from_lookup(|k| {
        (k == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef-test".to_owned())
    })
    .map(|c| c.engine)
    .unwrap_or_else(|e| panic!("test config: {e}"));
    Meters::new(
        budget,
        Duration::from_millis(stall_ms),
        Family::default(),
        &engine,
    )
}

#[test]
fn the_backlog_is_charged_minus_written_and_kills_past_the_budget() {
    let m = meters(1000, 60_000);
    let meter = m.open();
    let slot = m.slot(meter.clone(), true);
    assert!(m.charge(&slot, 600));
    // The kernel took 500 bytes: 100 left.
    meter.wrote(&Poll::Ready(Ok(500usize)), |n| *n);
    assert!(m.charge(&slot, 800)); // 900
    assert!(!meter.is_killed());
    assert!(!m.charge(&slot, 200)); // 1100 > 1000
    assert!(meter.is_killed());
    let waker = futures_util::task::noop_waker();
    let cx = Context::from_waker(&waker);
    assert!(matches!(meter.poll_read_allowed(&cx), Poll::Ready(Err(_))));
    assert!(matches!(meter.poll_write_allowed(&cx), Poll::Ready(Err(_))));
}

#[test]
fn written_bytes_beyond_the_charges_do_not_build_credit() {
    let m = meters(1000, 60_000);
    let meter = m.open();
    let slot = m.slot(meter.clone(), true);
    // Broadcasts written, never charged: the backlog stays at zero, not below.
    meter.wrote(&Poll::Ready(Ok(50_000usize)), |n| *n);
    assert!(m.charge(&slot, 900));
    assert!(!m.charge(&slot, 200));
}

#[test]
fn a_connection_refusing_writes_past_the_stall_limit_is_swept() {
    let m = meters(u64::MAX, 100);
    let stuck = m.open();
    let fine = m.open();
    stuck.wrote::<usize>(&Poll::Pending, |n| *n);
    fine.wrote::<usize>(&Poll::Pending, |n| *n);
    fine.wrote(&Poll::Ready(Ok(10usize)), |n| *n);
    assert_eq!(m.sweep(Instant::now()), 0);
    assert_eq!(m.sweep(Instant::now() + Duration::from_millis(150)), 1);
    assert!(stuck.is_killed());
    assert!(!fine.is_killed());
    drop(stuck);
    m.sweep(Instant::now());
    assert_eq!(m.open_connections(), 1);
}

#[test]
fn an_upgrade_moves_the_socket_to_its_websocket_connection() {
    let m = meters(100, 60_000);
    let polling = m.open();
    let slot = m.slot(polling.clone(), false);
    m.await_upgrade("sid1".into(), &slot);
    let ws = m.open();
    m.upgraded("sid1", &ws);
    assert!(!m.charge(&slot, 200));
    assert!(ws.is_killed());
    assert!(!polling.is_killed());
    // The session is forgotten once upgraded, and sessions of dropped slots are swept.
    assert!(m.sessions.lock().unwrap().is_empty());
    let other = m.slot(polling, false);
    m.await_upgrade("sid2".into(), &other);
    drop(other);
    m.sweep(Instant::now());
    assert!(m.sessions.lock().unwrap().is_empty());
}

#[test]
fn msgpack_size_never_exceeds_the_encoded_length() {
    for v in [
        serde_json::json!({ "a": [1, "xyz", { "k": null }], "long": "x".repeat(1000) }),
        serde_json::json!({ "id": 1_234_567_890_123_i64, "f": 1.5, "neg": -70000, "t": true }),
        serde_json::json!(["é".repeat(40), [], {}, "x".repeat(70_000)]),
    ] {
        let real = rmp_serde::to_vec_named(&v).unwrap().len();
        let estimate = msgpack_size(&v);
        assert!(
            estimate <= real && estimate + 64 > real,
            "{estimate} vs {real}"
        );
    }
}

#[test]
fn json_size_is_close_to_the_serialized_length() {
    let v = serde_json::json!({ "a": [1, "xyz", { "k": null }], "long": "x".repeat(1000) });
    let real = serde_json::to_string(&v).unwrap().len();
    let estimate = json_size(&v);
    assert!(
        estimate >= real && estimate < real + 64,
        "{estimate} vs {real}"
    );
}
