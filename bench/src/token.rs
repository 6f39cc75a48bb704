//! HS256 tokens for the generated users, with the claims Switchboard reads:
//! `{ sub, roles, restaurants, exp }`.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

use crate::util::{Result, epoch_secs};

#[derive(Serialize)]
struct Claims<'a> {
    sub: i64,
    roles: &'a [String],
    restaurants: &'a [String],
    exp: u64,
}

/// Signs a token valid for six hours.
pub fn sign(secret: &str, user: i64, roles: &[String], restaurants: &[String]) -> Result<String> {
    let claims = Claims {
        sub: user,
        roles,
        restaurants,
        exp: epoch_secs() + 6 * 3600,
    };
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// A token with the `service` role (REST calls from "another backend").
pub fn service(secret: &str) -> Result<String> {
    sign(secret, 1, &["service".to_owned()], &[])
}
