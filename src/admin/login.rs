//! Who may open `/admin`: the Admin UI's `auth` checked as Node's `instrument(io, { auth:
//! { type: "basic", username, password } })` checks it, and the sessions it hands out.
//!
//! - `{ sessionId }` naming a live session of this node is let in without a password
//!   (the UI keeps the id in `localStorage` and reconnects with it).
//! - `{ username, password }`: the password is verified against `ADMIN_UI_PASSWORD_HASH`
//!   (bcrypt, on a blocking thread: ~50-250 ms of CPU each). On success a new random
//!   session id is made and sent to the socket as `session`.
//! - Anything else, and every failure, is `connect_error` with the message the UI
//!   compares against, `invalid credentials`; nothing says which part was wrong.
//!
//! A stranger cannot make bcrypt burn the CPU: attempts are counted before any hashing,
//! per peer (burst [`PER_PEER_BURST`], then one per [`PER_PEER_EVERY`]) and for
//! the whole node (burst [`NODE_BURST`], then [`NODE_PER_SEC`] a second); over either,
//! the attempt is refused unverified. A peer is an IPv4 address or an IPv6 /64 (one
//! host commonly holds a whole /64, so counting single IPv6 addresses would give it
//! 2^64 fresh budgets and this node as many counters to keep: the per-peer map holds
//! the peers of the last minute, which an attacker can then only grow by the networks
//! it really has). The password itself is bounded
//! ([`MAX_PASSWORD_BYTES`]) before it is looked at. Sessions are bounded too
//! ([`MAX_SESSIONS`], oldest dropped first) and expire after [`SESSION_TTL`], as the
//! package's `RedisStore` sessions do; they live in this node's memory (a UI that lands
//! on another node of a cluster logs in again).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::rate_limit::RestLimiter;

/// The key a peer's attempts are counted under: an IPv4 address (also when mapped into
/// IPv6), or the /64 an IPv6 address belongs to.
fn peer_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// What the UI compares `err.message` against to show "invalid credentials".
pub const INVALID_CREDENTIALS: &str = "invalid credentials";

/// Login attempts one peer may make at once before it is slowed down.
pub const PER_PEER_BURST: f64 = 10.0;
/// Then one attempt per this long.
pub const PER_PEER_EVERY: Duration = Duration::from_secs(6);
/// Login attempts the whole node takes at once (every peer together).
pub const NODE_BURST: f64 = 20.0;
/// Then this many a second: at bcrypt's ~0.1-0.25 s each, under half a core.
pub const NODE_PER_SEC: f64 = 2.0;
/// Longest password looked at (bcrypt reads 72 bytes; more is someone probing).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Sessions kept at most; past it the oldest goes.
pub const MAX_SESSIONS: usize = 1000;
/// How long a session lets its UI back in (the package's `RedisStore` default).
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A refused `/admin` connection; `Display` is the UI's message.
#[derive(Debug)]
pub struct InvalidCredentials;

impl std::fmt::Display for InvalidCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(INVALID_CREDENTIALS)
    }
}

/// How a connection was let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// With a live session id.
    Session,
    /// With the password: the new session's id, for the `session` event.
    NewSession(String),
}

/// Credentials, sessions and attempt limits of one node.
#[derive(Debug)]
pub struct Login {
    username: String,
    password_hash: String,
    sessions: Mutex<HashMap<String, Instant>>,
    per_peer: RestLimiter,
    node: RestLimiter,
}

impl Login {
    /// Checks logins against `username` and the bcrypt `password_hash`.
    pub fn new(username: String, password_hash: String) -> Self {
        Login {
            username,
            password_hash,
            sessions: Mutex::default(),
            per_peer: RestLimiter::new(1.0 / PER_PEER_EVERY.as_secs_f64(), PER_PEER_BURST),
            node: RestLimiter::new(NODE_PER_SEC, NODE_BURST),
        }
    }

    /// Admits the handshake `auth` of a connection from `peer`, or refuses it.
    pub async fn admit(
        &self,
        auth: Option<&Value>,
        peer: Option<IpAddr>,
    ) -> Result<Admitted, InvalidCredentials> {
        let field = |name: &str| auth.and_then(|a| a.get(name)).and_then(Value::as_str);
        if let Some(id) = field("sessionId")
            && self.session_is_live(id, Instant::now())
        {
            return Ok(Admitted::Session);
        }
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            return Err(InvalidCredentials);
        };
        if password.len() > MAX_PASSWORD_BYTES || username.len() > MAX_PASSWORD_BYTES {
            return Err(InvalidCredentials);
        }
        let now = Instant::now();
        let peer_key = peer.map_or_else(|| "unknown".to_owned(), peer_key);
        if self.per_peer.take(&peer_key, now).is_err() || self.node.take("node", now).is_err() {
            tracing::warn!(peer = %peer_key, "Admin UI login attempt over the limit; refused unverified");
            return Err(InvalidCredentials);
        }
        // The hash is checked whatever the name, so that the time taken does not tell
        // a right name from a wrong one.
        let name_matches = constant_time_eq(username.as_bytes(), self.username.as_bytes());
        let password = password.to_owned();
        let hash = self.password_hash.clone();
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "bcrypt task failed");
                InvalidCredentials
            })?
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "ADMIN_UI_PASSWORD_HASH could not be used");
                false
            });
        if !(verified && name_matches) {
            tracing::info!(peer = %peer_key, "Admin UI login refused");
            return Err(InvalidCredentials);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.save_session(id.clone(), Instant::now());
        tracing::info!(peer = %peer_key, "Admin UI login");
        Ok(Admitted::NewSession(id))
    }

    fn session_is_live(&self, id: &str, now: Instant) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get(id) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                sessions.remove(id);
                false
            }
            None => false,
        }
    }

    fn save_session(&self, id: String, now: Instant) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, expires| *expires > now);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => sessions.remove(&oldest),
                None => break,
            };
        }
        sessions.insert(id, now + SESSION_TTL);
    }

    /// Sessions kept now.
    #[cfg(test)]
    pub fn sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login() -> Login {
        let hash = bcrypt::hash("s3cret", 4).unwrap_or_else(|e| panic!("{e}"));
        Login::new("admin".into(), hash)
    }

    #[tokio::test]
    async fn the_right_password_makes_a_session_that_lets_the_ui_back_in() {
        let l = login();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let auth = json!({ "username": "admin", "password": "s3cret" });
        let Ok(Admitted::NewSession(id)) = l.admit(Some(&auth), ip).await else {
            panic!("refused");
        };
        assert_eq!(id.len(), 32);
        let again = json!({ "sessionId": id });
        assert_eq!(
            l.admit(Some(&again), ip).await.ok(),
            Some(Admitted::Session)
        );
        let forged = json!({ "sessionId": "0123456789abcdef0123456789abcdef" });
        assert!(l.admit(Some(&forged), ip).await.is_err());
    }

    #[tokio::test]
    async fn wrong_name_wrong_password_and_no_auth_are_all_the_same_refusal() {
        let l = login();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for auth in [
            json!({ "username": "admin", "password": "nope" }),
            json!({ "username": "root", "password": "s3cret" }),
            json!({ "username": "admin" }),
            json!({ "password": "s3cret" }),
            json!({ "username": "admin", "password": 5 }),
            json!({ "username": "admin", "password": "x".repeat(MAX_PASSWORD_BYTES + 1) }),
            json!("admin"),
        ] {
            let err = l.admit(Some(&auth), ip).await.err();
            assert_eq!(
                err.map(|e| e.to_string()).as_deref(),
                Some(INVALID_CREDENTIALS),
                "{auth}"
            );
        }
        assert!(l.admit(None, ip).await.is_err());
        assert_eq!(l.sessions(), 0);
    }

    #[tokio::test]
    async fn a_peer_over_its_attempts_is_refused_even_with_the_right_password() {
        let l = login();
        let ip = Some(IpAddr::from([10, 1, 2, 3]));
        let wrong = json!({ "username": "admin", "password": "guess" });
        for _ in 0..PER_PEER_BURST as usize {
            assert!(l.admit(Some(&wrong), ip).await.is_err());
        }
        let right = json!({ "username": "admin", "password": "s3cret" });
        assert!(l.admit(Some(&right), ip).await.is_err(), "over the limit");
        // Another peer is not held up by this one.
        let other = Some(IpAddr::from([10, 1, 2, 4]));
        assert!(l.admit(Some(&right), other).await.is_ok());
    }

    #[tokio::test]
    async fn the_addresses_of_one_ipv6_64_share_one_budget() {
        let l = login();
        let wrong = json!({ "username": "admin", "password": "guess" });
        // A host walking through its /64: every attempt is a fresh address.
        for i in 0..PER_PEER_BURST as u16 {
            let ip = IpAddr::from([0x2001, 0xdb8, 7, 1, 0, 0, 0, i + 1]);
            assert!(l.admit(Some(&wrong), Some(ip)).await.is_err());
        }
        let right = json!({ "username": "admin", "password": "s3cret" });
        let fresh = IpAddr::from([0x2001, 0xdb8, 7, 1, 0xffff, 1, 2, 3]);
        assert!(
            l.admit(Some(&right), Some(fresh)).await.is_err(),
            "a new address of the same /64 is over the limit"
        );
        assert_eq!(l.per_peer.tracked(), 1, "one counter for the whole /64");
        // The next /64 is another peer; an IPv4-mapped address counts as its IPv4 one.
        let next = IpAddr::from([0x2001, 0xdb8, 7, 2, 0, 0, 0, 1]);
        assert!(l.admit(Some(&right), Some(next)).await.is_ok());
        assert_eq!(
            peer_key(
                "::ffff:10.1.2.3"
                    .parse()
                    .unwrap_or(IpAddr::from([0, 0, 0, 0]))
            ),
            "10.1.2.3"
        );
    }

    #[test]
    fn sessions_are_bounded_and_expire() {
        let l = login();
        let start = Instant::now();
        for i in 0..MAX_SESSIONS + 5 {
            l.save_session(format!("s{i}"), start + Duration::from_millis(i as u64));
        }
        assert_eq!(l.sessions(), MAX_SESSIONS);
        assert!(!l.session_is_live("s0", start), "the oldest went first");
        let last = format!("s{}", MAX_SESSIONS + 4);
        assert!(l.session_is_live(&last, start + Duration::from_secs(1)));
        assert!(!l.session_is_live(&last, start + SESSION_TTL + Duration::from_secs(5)));
    }

    #[test]
    fn equal_bytes_compare_equal_and_nothing_else_does() {
        assert!(constant_time_eq(b"admin", b"admin"));
        assert!(!constant_time_eq(b"admin", b"admim"));
        assert!(!constant_time_eq(b"admin", b"admin2"));
        assert!(!constant_time_eq(b"", b"admin"));
        assert!(!constant_time_eq(b"admin", b""));
        assert!(constant_time_eq(b"", b""));
    }
}
