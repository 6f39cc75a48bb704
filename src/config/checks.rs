//! Checks of single values: secrets, durations, the gateway's action list, the Redis URL.

use std::time::Duration;

use super::{ConfigError, problem};

/// Most entries of `WEBSOCKET_ALLOWED_ACTIONS`: each becomes a topic in every
/// gateway connection's first message.
const MAX_ALLOWED_ACTIONS: usize = 32;

/// `WEBSOCKET_ALLOWED_ACTIONS`: a comma list of action names, each 1–64 characters of
/// `[A-Za-z0-9_.-]`; blanks between commas are skipped, repeats kept once.
/// `url` asking for RESP3 unless it names a protocol itself: pub/sub on a shared
/// connection needs RESP3 (Redis 7+).
pub(super) fn with_resp3(url: String) -> String {
    if url.contains("protocol=") {
        url
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

pub(super) fn allowed_actions(raw: Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut actions: Vec<String> = Vec::new();
    for action in raw.iter().flat_map(|r| r.split(',')).map(str::trim) {
        if action.is_empty() || actions.iter().any(|a| a == action) {
            continue;
        }
        if action.len() > 64
            || !action
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(problem(
                "WEBSOCKET_ALLOWED_ACTIONS",
                "each action is 1 to 64 characters of A-Z, a-z, 0-9, _ . -",
            ));
        }
        actions.push(action.to_owned());
    }
    if actions.len() > MAX_ALLOWED_ACTIONS {
        return Err(problem("WEBSOCKET_ALLOWED_ACTIONS", "at most 32 actions"));
    }
    Ok(actions)
}

/// The development placeholder shipped in `.env.example`, read from that file at build
/// time so the two cannot drift apart.
pub(super) fn example_secret() -> Option<&'static str> {
    include_str!("../../.env.example")
        .lines()
        .find_map(|line| line.strip_prefix("JWT_SECRET="))
        .map(str::trim)
}

/// Shortest HS256 secret accepted: the hash's output size, as RFC 7518 §3.2 requires.
const MIN_SECRET_BYTES: usize = 32;

/// Refuses secrets anyone can guess: short ones, and the published placeholder.
pub(super) fn checked_secret(secret: String) -> Result<String, ConfigError> {
    if example_secret() == Some(secret.as_str()) {
        return Err(problem(
            "JWT_SECRET",
            "is the published placeholder from .env.example: set a random secret \
             (e.g. `openssl rand -hex 32`; scripts/run writes one into a new .env)",
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(problem(
            "JWT_SECRET",
            format!(
                "is {} bytes; at least {MIN_SECRET_BYTES} are required (e.g. `openssl rand -hex 32`)",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

pub(super) fn positive_secs(name: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(problem(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}
