//! Reading the configuration from a map of variables.

use super::checks::example_secret;
use super::redact::redact_url;
use super::*;
use std::collections::HashMap;

const SECRET: &str = "unit-test-secret-of-at-least-32-bytes";

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn engine_options_read_like_nodes() {
    let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
    assert_eq!(c.engine.path, "/socket.io");
    assert_eq!(c.engine.ping_interval, Duration::from_secs(25));
    assert_eq!(c.engine.ping_timeout, Duration::from_secs(20));
    assert!(c.engine.polling && c.engine.websocket);
    assert!(!c.engine.allow_eio3);
    assert_eq!(c.engine.parser, ParserKind::Json);
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("SOCKETIO_PATH", "/realtime/io/"),
        ("PING_INTERVAL_MS", "5000"),
        ("PING_TIMEOUT_MS", "3000"),
        ("TRANSPORTS", "websocket"),
    ]))
    .unwrap();
    assert_eq!(c.engine.path, "/realtime/io");
    assert_eq!(c.engine.ping_interval, Duration::from_secs(5));
    assert_eq!(c.engine.ping_timeout, Duration::from_secs(3));
    assert!(!c.engine.polling && c.engine.websocket);
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("ALLOW_EIO3", "true"),
        ("PARSER", "msgpack"),
    ]))
    .unwrap();
    assert!(c.engine.allow_eio3);
    assert_eq!(c.engine.parser, ParserKind::Msgpack);
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("ALLOW_EIO3", "false"),
        ("PARSER", "json"),
    ]))
    .unwrap();
    assert!(!c.engine.allow_eio3);
    assert_eq!(c.engine.parser, ParserKind::Json);
    for (name, value) in [
        ("SOCKETIO_PATH", "socket.io"),
        ("SOCKETIO_PATH", "/"),
        ("SOCKETIO_PATH", "/api"),
        ("SOCKETIO_PATH", "/ws/io"),
        ("SOCKETIO_PATH", "/a b"),
        ("SOCKETIO_PATH", "/a//b"),
        ("PING_INTERVAL_MS", "999"),
        ("PING_TIMEOUT_MS", "600001"),
        ("PING_TIMEOUT_MS", "soon"),
        ("TRANSPORTS", "webtransport"),
        ("TRANSPORTS", ","),
        ("ALLOW_EIO3", "1"),
        ("ALLOW_EIO3", "yes"),
        ("ALLOW_EIO3", "TRUE"),
        ("PARSER", "msgpackr"),
        ("PARSER", "cbor"),
    ] {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET), (name, value)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert_eq!(err.name, name, "{name}={value}: {err}");
    }
}

#[test]
fn admin_ui_is_off_unless_asked_and_then_needs_a_bcrypt_hash() {
    let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
    assert!(!c.admin_ui.enabled);
    assert_eq!(c.admin_ui.username, "admin");
    let hash = bcrypt::hash("pw", 4).unwrap();
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("ADMIN_UI", "true"),
        ("ADMIN_UI_USERNAME", "ops"),
        ("ADMIN_UI_PASSWORD_HASH", &hash),
        ("ADMIN_UI_DIR", "/opt/ui/dist"),
    ]))
    .unwrap();
    assert!(c.admin_ui.enabled);
    assert_eq!(c.admin_ui.username, "ops");
    assert_eq!(c.admin_ui.password_hash.as_deref(), Some(hash.as_str()));
    assert_eq!(c.admin_ui.dir, Some(PathBuf::from("/opt/ui/dist")));
    for (pairs, name) in [
        (vec![("ADMIN_UI", "true")], "ADMIN_UI_PASSWORD_HASH"),
        (vec![("ADMIN_UI", "yes")], "ADMIN_UI"),
        (
            vec![("ADMIN_UI", "true"), ("ADMIN_UI_PASSWORD_HASH", "secret")],
            "ADMIN_UI_PASSWORD_HASH",
        ),
    ] {
        let mut all = vec![("JWT_SECRET", SECRET)];
        all.extend(pairs);
        let err = Config::from_lookup(lookup(&all)).err().unwrap();
        assert_eq!(err.name, name, "{err}");
    }
}

#[test]
fn defaults_follow_the_contract() {
    let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
    assert_eq!(c.bind_addr.to_string(), "0.0.0.0:3001");
    assert_eq!(c.max_payload_bytes, 1_000_000);
    assert_eq!(c.rate_limit_per_sec, 10.0);
    assert_eq!(c.rate_limit_burst, 20.0);
    assert_eq!(c.rest_rate_limit_per_sec, 50.0);
    assert_eq!(c.rest_rate_limit_burst, 200.0);
    assert_eq!(c.jwt.leeway_secs, 30);
    assert_eq!(c.jwt.algorithm, jsonwebtoken::Algorithm::HS256);
    assert!(c.database_url.is_none());
    assert!(c.migrate);
    assert!(c.allowed_origins.is_none());
    assert_eq!(c.max_conversation_members, 1000);
    assert_eq!(c.ws.max_message_bytes, 65_536);
    assert_eq!(c.ws.send_queue, 256);
    assert_eq!(c.ws.ping_interval, Duration::from_secs(54));
    assert_eq!(c.ws.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.ws.max_channels, 100);
    assert!(!c.ws.dashboard_require_token);
    assert!(c.ws.allowed_actions.is_empty());
}

#[test]
fn redis_url_asks_for_resp3_unless_it_names_a_protocol() {
    let redis = |url: &str| {
        Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("ADAPTER", "redis"),
            ("REDIS_URL", url),
        ]))
        .unwrap()
        .redis_url
    };
    assert_eq!(
        redis("redis://h:6379").as_deref(),
        Some("redis://h:6379?protocol=resp3")
    );
    assert_eq!(
        redis("redis://h:6379/0?timeout=5").as_deref(),
        Some("redis://h:6379/0?timeout=5&protocol=resp3")
    );
    assert_eq!(
        redis("redis://h:6379?protocol=resp3").as_deref(),
        Some("redis://h:6379?protocol=resp3")
    );
}

#[test]
fn debug_output_shows_no_secret() {
    let hash = bcrypt::hash("admin-password", 4).unwrap();
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        (
            "DATABASE_URL",
            "postgres://app:db-password-1@db.internal:5432/switchboard?password=db-password-2",
        ),
        ("ADAPTER", "redis"),
        ("REDIS_URL", "redis://:redis-password@cache.internal:6379/0"),
        ("ADMIN_UI", "true"),
        ("ADMIN_UI_PASSWORD_HASH", &hash),
    ]))
    .unwrap();
    let shown = format!("{c:?} {c:#?}");
    for secret in [
        SECRET,
        "db-password-1",
        "db-password-2",
        "redis-password",
        hash.as_str(),
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    // What an operator needs to tell which database and Redis are used stays.
    assert!(shown.contains("postgres://app:***@db.internal:5432/switchboard?password=***"));
    assert!(shown.contains("redis://:***@cache.internal:6379/0?protocol=resp3"));
    assert!(shown.contains("max_payload_bytes: 1000000"));
}

#[test]
fn urls_lose_their_passwords_only() {
    for (url, shown) in [
        ("postgres://user:pw@host/db", "postgres://user:***@host/db"),
        ("postgres://user@host/db", "postgres://user@host/db"),
        ("postgres://host:5432/db", "postgres://host:5432/db"),
        ("redis://:pw@host:6379", "redis://:***@host:6379"),
        ("postgres://u:p/w?@host/db", "postgres://u:***@host/db"),
        (
            "postgres://host/db?sslmode=require&PASSWORD=pw",
            "postgres://host/db?sslmode=require&PASSWORD=***",
        ),
    ] {
        assert_eq!(redact_url(url), shown);
    }
}

#[test]
fn allowed_actions_are_a_checked_comma_list() {
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        (
            "WEBSOCKET_ALLOWED_ACTIONS",
            " create, update,,create ,seat_guest",
        ),
    ]))
    .unwrap();
    assert_eq!(c.ws.allowed_actions, ["create", "update", "seat_guest"]);
    for bad in ["a b", "x/y", &"a".repeat(65)] {
        let err = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("WEBSOCKET_ALLOWED_ACTIONS", bad),
        ]))
        .unwrap_err();
        assert_eq!(err.name, "WEBSOCKET_ALLOWED_ACTIONS", "{bad}");
    }
}

#[test]
fn a_key_is_required_and_the_algorithm_must_fit_it() {
    assert!(Config::from_lookup(lookup(&[])).is_err());
    let err = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ALGORITHM", "RS256"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("JWT_ALGORITHM"));
    let c = Config::from_lookup(lookup(&[
        ("JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nabc"),
        ("JWT_ALGORITHM", "ES256"),
    ]))
    .unwrap();
    assert_eq!(c.jwt.algorithm, jsonwebtoken::Algorithm::ES256);
}

#[test]
fn origins_are_split_and_bad_numbers_name_the_variable() {
    let c = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("ALLOWED_ORIGINS", "https://a.example, https://b.example/"),
    ]))
    .unwrap();
    assert_eq!(
        c.allowed_origins.unwrap(),
        vec!["https://a.example", "https://b.example"]
    );
    let err = Config::from_lookup(lookup(&[
        ("JWT_SECRET", SECRET),
        ("MAX_PAYLOAD_BYTES", "lots"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("MAX_PAYLOAD_BYTES"));
}

#[test]
fn guessable_secrets_are_refused_naming_jwt_secret() {
    let placeholder = example_secret().unwrap();
    assert!(!placeholder.is_empty());
    for secret in [placeholder, "s", "31-bytes-is-one-byte-too-short!"] {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", secret)])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
    Config::from_lookup(lookup(&[(
        "JWT_SECRET",
        "32-bytes-is-just-long-enough-ok!",
    )]))
    .unwrap();
}

#[test]
fn connection_limits_default_and_refuse_zero() {
    let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
    assert_eq!(c.http_header_timeout, Duration::from_secs(10));
    assert_eq!(c.http_idle_timeout, Duration::from_secs(60));
    assert_eq!(c.max_connections, 20_000);
    for name in [
        "HTTP_HEADER_TIMEOUT_SECS",
        "HTTP_IDLE_TIMEOUT_SECS",
        "MAX_CONNECTIONS",
        "WS_SEND_QUEUE",
        "WS_PING_INTERVAL_SECS",
        "WS_IDLE_TIMEOUT_SECS",
        "WS_MAX_CHANNELS",
        "WS_MAX_MESSAGE_BYTES",
    ] {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET), (name, "0")])).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
    }
}
