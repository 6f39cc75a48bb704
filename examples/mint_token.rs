//! Mints a development token signed with `JWT_SECRET` (from the environment or `.env`),
//! for trying the server by hand:
//!
//! ```text
//! cargo run --example mint_token -- --sub 1 --roles user
//! cargo run --example mint_token -- --sub 9 --roles staff --restaurants <uuid>,<uuid> --ttl 600
//! ```
//!
//! Prints the token alone on stdout. `JWT_ISSUER` / `JWT_AUDIENCE`, when set, become
//! its `iss` / `aud`, so the server configured by the same `.env` accepts it.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// What goes into the token.
#[derive(Debug)]
pub struct Args {
    /// `sub`: the user id.
    pub sub: i64,
    /// `roles`.
    pub roles: Vec<String>,
    /// `restaurants` the user may see, if any.
    pub restaurants: Vec<String>,
    /// Seconds until `exp`.
    pub ttl_secs: i64,
}

const USAGE: &str = "usage: mint_token --sub <user id> [--roles user,staff,admin] \
                     [--restaurants <id>,<id>] [--ttl <seconds>]";

/// Reads `--sub`, `--roles` (default `user`), `--restaurants`, `--ttl` (default 3600).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let list = |v: String| -> Vec<String> {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let (mut sub, mut roles, mut restaurants, mut ttl_secs) =
        (None, vec!["user".to_owned()], Vec::new(), 3600);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sub" => {
                sub = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--sub {value}: not an integer"))?,
                )
            }
            "--roles" => roles = list(value),
            "--restaurants" => restaurants = list(value),
            "--ttl" => {
                ttl_secs = value
                    .parse()
                    .map_err(|_| format!("--ttl {value}: not a number"))?
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let sub = sub.ok_or_else(|| format!("--sub is required\n{USAGE}"))?;
    Ok(Args {
        sub,
        roles,
        restaurants,
        ttl_secs,
    })
}

/// Signs the claims of `args` (HS256), expiring `ttl` seconds after `now`.
pub fn mint(
    secret: &str,
    args: &Args,
    now: i64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut claims = json!({
        "sub": args.sub,
        "roles": args.roles,
        "iat": now,
        "exp": now + args.ttl_secs,
    });
    if !args.restaurants.is_empty() {
        claims["restaurants"] = json!(args.restaurants);
    }
    if let Some(iss) = issuer {
        claims["iss"] = Value::from(iss);
    }
    if let Some(aud) = audience {
        claims["aud"] = Value::from(aud);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Prints a token for the claims on the command line, signed with `JWT_SECRET`.
pub fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(secret) = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty()) else {
        eprintln!("JWT_SECRET is not set (in the environment or .env)");
        return ExitCode::from(2);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match mint(
        &secret,
        &args,
        now,
        env("JWT_ISSUER").as_deref(),
        env("JWT_AUDIENCE").as_deref(),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("could not sign: {e}");
            ExitCode::FAILURE
        }
    }
}
