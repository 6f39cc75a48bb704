//! JWT verification with a pinned algorithm.
//!
//! The algorithm comes from configuration, never from the token header, so `alg: none`
//! and HS256-with-the-public-key tricks fail. `exp` is required; `nbf`, when present,
//! is honoured (both with `JWT_LEEWAY_SECS` of leeway).

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::principal::{Principal, Role};
use crate::config::{JwtConfig, JwtKey};
use crate::domain::user::UserId;
use crate::error::AppError;

/// Verifies tokens into principals. Cheap to clone behind an `Arc`.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    recent: Recent,
}

/// How many verified tokens [`Recent`] keeps.
const RECENT_TOKENS: usize = 4096;
/// Longer tokens are verified every time (and not kept).
const RECENT_MAX_TOKEN_BYTES: usize = 4096;

/// Tokens that verified lately, by the SHA-256 of the token, with the principal they
/// verified to. A backend sends the same service token with every request (S7's
/// `POST /api/publish`: the signature check was 35.6 k of the 120.7 k instructions of
/// a publish; a hash and a lookup are ≈ 3 k). Only tokens that verified are kept, so
/// nothing an unauthenticated client sends is; a token is served from here only until
/// its `exp` (plus the leeway) as the library would judge it, then verified again
/// (and refused). The key is a digest, so no token is kept in memory. Bounded: when
/// full, expired entries go, and if that frees nothing, all of them.
struct Recent {
    entries: Mutex<HashMap<[u8; 32], Principal>>,
    leeway_secs: u64,
}

impl Recent {
    fn new(leeway_secs: u64) -> Self {
        Recent {
            entries: Mutex::new(HashMap::new()),
            leeway_secs,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Principal>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Still valid at `now`: `exp` (floored, so never later than the library's) plus the
    /// leeway is not in the past.
    fn valid(&self, principal: &Principal, now: u64) -> bool {
        let until = principal
            .expires_at
            .saturating_add(i64::try_from(self.leeway_secs).unwrap_or(i64::MAX));
        i64::try_from(now).is_ok_and(|now| now <= until)
    }

    fn get(&self, digest: &[u8; 32], now: u64) -> Option<Principal> {
        let mut entries = self.entries();
        let principal = entries.get(digest)?;
        if self.valid(principal, now) {
            return Some(principal.clone());
        }
        entries.remove(digest);
        None
    }

    fn put(&self, digest: [u8; 32], principal: &Principal, now: u64) {
        let mut entries = self.entries();
        if entries.len() >= RECENT_TOKENS {
            entries.retain(|_, p| self.valid(p, now));
            if entries.len() >= RECENT_TOKENS {
                entries.clear();
            }
        }
        entries.insert(digest, principal.clone());
    }
}

/// Seconds since the Unix epoch, as `jsonwebtoken` reads the clock.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// `tenant_id` arrives as a string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum TenantId {
    Number(i64),
    Text(String),
}

#[derive(Deserialize)]
struct Claims {
    /// A JSON integer or 1–128 printable characters; anything else refuses the token.
    sub: UserId,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    restaurants: Option<Vec<String>>,
    /// The principal's tenant (seed 003's `tenant:<id>` channels); `tenantId` also
    /// accepted. A string, or a number taken as its decimal text.
    #[serde(default, alias = "tenantId")]
    tenant_id: Option<TenantId>,
    /// Display name (seed 002/003 chat: a message's `sender_name`). Anything but a
    /// string is ignored rather than refusing the token.
    #[serde(default)]
    name: Option<serde_json::Value>,
    /// Checked by the library; kept so a socket can be ended when it passes. A JSON
    /// number, possibly fractional (the library accepts both).
    exp: f64,
}

impl Verifier {
    /// Builds the verifier; fails on an unreadable PEM key.
    pub fn new(config: &JwtConfig) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = match &config.key {
            JwtKey::Secret(secret) => DecodingKey::from_secret(secret.as_bytes()),
            JwtKey::PublicKeyPem(pem) => match config.algorithm {
                jsonwebtoken::Algorithm::ES256 => DecodingKey::from_ec_pem(pem.as_bytes())?,
                _ => DecodingKey::from_rsa_pem(pem.as_bytes())?,
            },
        };
        let mut validation = Validation::new(config.algorithm);
        // `sub` is required by `Claims` itself: the library only recognises string subjects.
        // `iss`/`aud` must be present when configured, not only correct when present.
        let mut required = vec!["exp"];
        if config.issuer.is_some() {
            required.push("iss");
        }
        if config.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        // Off by default in jsonwebtoken: a token minted for later must not work now.
        validation.validate_nbf = true;
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Verifier {
            key,
            recent: Recent::new(validation.leeway),
            validation,
        })
    }

    /// Verifies a raw token (no `Bearer ` prefix) into a principal; a token that
    /// verified lately and has not expired since is not checked again ([`Recent`]).
    pub fn verify(&self, token: &str) -> Result<Principal, AppError> {
        let now = unix_now();
        let digest: Option<[u8; 32]> = (token.len() <= RECENT_MAX_TOKEN_BYTES)
            .then(|| Sha256::digest(token.as_bytes()).into());
        if let Some(digest) = &digest
            && let Some(principal) = self.recent.get(digest, now)
        {
            return Ok(principal);
        }
        let principal = self.check(token)?;
        if let Some(digest) = digest {
            self.recent.put(digest, &principal, now);
        }
        Ok(principal)
    }

    /// The signature and claims check itself.
    fn check(&self, token: &str) -> Result<Principal, AppError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
                tracing::debug!(reason = %e, "token refused");
                AppError::Unauthenticated
            })?;
        let claims = data.claims;
        let user_id = claims.sub;
        let mut roles: Vec<Role> = claims
            .roles
            .iter()
            .flatten()
            .chain(claims.role.iter())
            .filter_map(|r| Role::parse(r))
            .collect();
        roles.sort();
        roles.dedup();
        let restaurants = claims
            .restaurants
            .iter()
            .flatten()
            .filter_map(|r| Uuid::parse_str(r).ok())
            .collect();
        let tenant_id = match claims.tenant_id {
            Some(TenantId::Number(n)) => Some(n.to_string()),
            Some(TenantId::Text(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            None => None,
        };
        Ok(Principal {
            user_id,
            roles,
            restaurants,
            tenant_id,
            name: claims
                .name
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .map(|n| n.trim().chars().take(200).collect::<String>())
                .filter(|n| !n.is_empty()),
            // Saturating float-to-int: the library has already checked it is in the future.
            expires_at: claims.exp.floor() as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JwtConfig;
    use serde_json::json;

    fn verifier() -> Verifier {
        Verifier::new(&JwtConfig {
            key: JwtKey::Secret("s3cret".into()),
            algorithm: jsonwebtoken::Algorithm::HS256,
            issuer: None,
            audience: None,
            leeway_secs: 30,
        })
        .unwrap()
    }

    fn sign(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn claims_in_every_accepted_form() {
        let v = verifier();
        let p = v
            .verify(&sign(json!({ "sub": 5, "roles": ["staff", "bogus"], "restaurants": ["11111111-1111-1111-1111-111111111111", "x"], "exp": in_an_hour() })))
            .unwrap();
        assert_eq!(p.user_id, UserId::from(5));
        assert_eq!(p.roles, vec![Role::Staff]);
        assert_eq!(p.restaurants.len(), 1);
        let p = v
            .verify(&sign(
                json!({ "sub": "6", "role": "admin", "exp": in_an_hour() }),
            ))
            .unwrap();
        assert_eq!((&p.user_id, p.is_admin()), (&UserId::from(6), true));
        // Seeds 002/003 issue string ids: a UUID, `user_789`.
        let p = v
            .verify(&sign(json!({ "sub": "user_789", "exp": in_an_hour() })))
            .unwrap();
        assert_eq!(p.user_id.as_str(), "user_789");
        for bad in [json!(""), json!("a".repeat(129)), json!(1.5), json!(["x"])] {
            assert!(
                v.verify(&sign(json!({ "sub": bad, "exp": in_an_hour() })))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(v.verify(&sign(json!({ "sub": 6 }))).is_err());
    }

    #[test]
    fn tenant_id_in_both_spellings_and_as_a_number() {
        let v = verifier();
        let tenant = |claims: serde_json::Value| v.verify(&sign(claims)).unwrap().tenant_id;
        let exp = in_an_hour();
        assert_eq!(
            tenant(json!({ "sub": 1, "exp": exp, "tenant_id": "acme" })).as_deref(),
            Some("acme")
        );
        assert_eq!(
            tenant(json!({ "sub": 1, "exp": exp, "tenantId": "acme" })).as_deref(),
            Some("acme")
        );
        assert_eq!(
            tenant(json!({ "sub": 1, "exp": exp, "tenant_id": 42 })).as_deref(),
            Some("42")
        );
        assert_eq!(
            tenant(json!({ "sub": 1, "exp": exp, "tenant_id": " " })),
            None
        );
        assert_eq!(tenant(json!({ "sub": 1, "exp": exp })), None);
        // A tenant of the wrong type is a malformed token, not a missing claim.
        assert!(
            v.verify(&sign(json!({ "sub": 1, "exp": exp, "tenant_id": [1] })))
                .is_err()
        );
    }

    #[test]
    fn exp_is_kept_and_nbf_is_honoured_with_leeway() {
        let v = verifier();
        let exp = in_an_hour();
        let p = v.verify(&sign(json!({ "sub": 5, "exp": exp }))).unwrap();
        assert_eq!(p.expires_at, exp);
        let now = chrono::Utc::now().timestamp();
        // Not yet valid, beyond the 30 s leeway.
        assert!(
            v.verify(&sign(json!({ "sub": 5, "exp": exp, "nbf": now + 120 })))
                .is_err()
        );
        // Within the leeway, and in the past: accepted.
        assert!(
            v.verify(&sign(json!({ "sub": 5, "exp": exp, "nbf": now + 10 })))
                .is_ok()
        );
        assert!(
            v.verify(&sign(json!({ "sub": 5, "exp": exp, "nbf": now - 10 })))
                .is_ok()
        );
    }

    #[test]
    fn a_token_that_verified_is_served_again_until_it_expires_and_only_it() {
        let v = verifier();
        let exp = in_an_hour();
        let token = sign(json!({ "sub": 7, "roles": ["service"], "exp": exp }));
        let first = v.verify(&token).unwrap();
        assert_eq!(v.recent.entries().len(), 1);
        let again = v.verify(&token).unwrap();
        assert_eq!(
            (again.user_id, again.roles, again.expires_at),
            (first.user_id, first.roles, exp)
        );
        // The same claims with another signature are not the cached token.
        let at = token.len() - 10;
        let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
        assert!(v.verify(&forged).is_err());
        // Refused tokens are not kept.
        assert_eq!(v.recent.entries().len(), 1);

        // Past `exp` + leeway the entry is dropped (and the library judges again).
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = u64::try_from(exp).unwrap();
        assert!(v.recent.get(&digest, now + 30).is_some());
        assert!(v.recent.get(&digest, now + 31).is_none());
        assert!(v.recent.entries().is_empty());

        // A token that expired (beyond the leeway) never verifies, cached or not.
        let old = sign(json!({ "sub": 7, "exp": chrono::Utc::now().timestamp() - 60 }));
        assert!(v.verify(&old).is_err());
        assert!(v.verify(&old).is_err());
        assert!(v.recent.entries().is_empty());
    }

    #[test]
    fn the_cache_is_bounded() {
        let v = verifier();
        let exp = in_an_hour();
        for sub in 0..RECENT_TOKENS + 10 {
            v.verify(&sign(json!({ "sub": sub, "exp": exp }))).unwrap();
        }
        let held = v.recent.entries().len();
        assert!((1..=RECENT_TOKENS).contains(&held), "{held}");
        // A token longer than the limit verifies and is not kept.
        let v = verifier();
        let long =
            sign(json!({ "sub": 1, "exp": exp, "name": "n".repeat(RECENT_MAX_TOKEN_BYTES) }));
        assert!(v.verify(&long).is_ok());
        assert!(v.recent.entries().is_empty());
    }
}
