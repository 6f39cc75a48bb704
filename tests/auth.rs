//! Identity at connect (contract §2): token sources, refusals, claim forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64_url::encode as b64;
use common::*;
use serde_json::json;
use sqlx::PgPool;

mod base64_url {
    /// Unpadded base64url, enough to forge tokens by hand.
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

async fn refused(server: &TestServer, opts: ConnectOptions) -> String {
    match SioClient::connect(&server.base, "/chat", opts).await {
        Err(ConnectError::Refused(message)) => message,
        Err(other) => panic!("expected connect_error, got {other}"),
        Ok(_) => panic!("expected connect_error, got a connection"),
    }
}

fn with_auth(token: &str) -> ConnectOptions {
    ConnectOptions {
        auth: Some(json!({ "token": token })),
        ..Default::default()
    }
}

#[sqlx::test]
async fn all_three_token_sources_are_accepted(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let t = token(7, &["user"]);
    for opts in [
        with_auth(&t),
        with_auth(&format!("Bearer {t}")),
        ConnectOptions {
            headers: vec![("Authorization".into(), format!("Bearer {t}"))],
            ..Default::default()
        },
        ConnectOptions {
            query: vec![("token".into(), t.clone())],
            ..Default::default()
        },
    ] {
        let c = SioClient::connect(&server.base, "/chat", opts)
            .await
            .unwrap();
        assert!(!c.sid().is_empty());
        assert_eq!(c.recv("unread:count").await["total"], 0);
    }
}

#[sqlx::test]
async fn the_auth_payload_wins_over_the_header(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let opts = ConnectOptions {
        auth: Some(json!({ "token": "garbage" })),
        headers: vec![(
            "Authorization".into(),
            format!("Bearer {}", token(7, &["user"])),
        )],
        ..Default::default()
    };
    assert_eq!(refused(&server, opts).await, "AUTH_INVALID");
}

#[sqlx::test]
async fn bad_tokens_are_refused_with_the_code_as_message(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let expired = sign(json!({ "sub": 1, "exp": now_secs() - 120 }));
    let no_exp = sign(json!({ "sub": 1 }));
    let forged = {
        let other = jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret!!!");
        let claims = json!({ "sub": 1, "exp": now_secs() + 60 });
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &other).unwrap()
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(json!({ "sub": 1, "exp": now_secs() + 60 })
            .to_string()
            .as_bytes())
    );
    let non_numeric_sub = sign(json!({ "sub": "alice", "exp": now_secs() + 60 }));
    for bad in [
        expired,
        no_exp,
        forged,
        alg_none,
        non_numeric_sub,
        "not.a.jwt".to_owned(),
    ] {
        assert_eq!(
            refused(&server, with_auth(&bad)).await,
            "AUTH_INVALID",
            "token {bad}"
        );
    }
    assert_eq!(
        refused(&server, ConnectOptions::default()).await,
        "AUTH_INVALID"
    );
}

#[sqlx::test]
async fn expiry_has_a_small_leeway(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let just_expired = sign(json!({ "sub": 1, "exp": now_secs() - 5 }));
    SioClient::connect(&server.base, "/chat", with_auth(&just_expired))
        .await
        .unwrap();
}

#[sqlx::test]
async fn sub_may_be_a_numeric_string_and_role_a_single_string(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let t = sign(json!({ "sub": "42", "role": "admin", "exp": now_secs() + 60 }));
    let c = server.client_with("/chat", &t).await;
    // An admin may manage a conversation it does not own.
    let conv = create_conversation(&server, 1, "group", &[2]).await;
    assert_ok(
        &c.emit_ack(
            "members:add",
            json!({ "conversationId": conv, "userId": 3 }),
        )
        .await,
    );
}

#[sqlx::test]
async fn issuer_and_audience_are_checked_when_configured(pool: PgPool) {
    let server = TestServer::start_with(
        pool,
        &[
            ("JWT_ISSUER", "auth.example"),
            ("JWT_AUDIENCE", "switchboard"),
        ],
    )
    .await;
    let exp = now_secs() + 60;
    let good = sign(json!({ "sub": 1, "exp": exp, "iss": "auth.example", "aud": "switchboard" }));
    server.client_with("/chat", &good).await;
    for bad in [
        sign(json!({ "sub": 1, "exp": exp, "iss": "evil.example", "aud": "switchboard" })),
        sign(json!({ "sub": 1, "exp": exp, "iss": "auth.example", "aud": "other" })),
        sign(json!({ "sub": 1, "exp": exp })),
    ] {
        assert_eq!(refused(&server, with_auth(&bad)).await, "AUTH_INVALID");
    }
}

#[sqlx::test]
async fn rest_requires_a_valid_bearer_token(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let body = json!({ "type": "group", "participants": [] });
    let res = server
        .http()
        .post(server.url("/api/conversations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let err: serde_json::Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "AUTH_INVALID");
    let expired = sign(json!({ "sub": 1, "exp": now_secs() - 300 }));
    let res = server
        .http()
        .post(server.url("/api/conversations"))
        .bearer_auth(expired)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[sqlx::test]
async fn public_key_tokens_verify_with_the_pinned_algorithm(pool: PgPool) {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let read = |name: &str| std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap();
    for (alg, name) in [
        (jsonwebtoken::Algorithm::ES256, "es256"),
        (jsonwebtoken::Algorithm::RS256, "rs256"),
    ] {
        let public = read(&format!("test-{name}-public.pem"));
        let private = read(&format!("test-{name}-private.pem"));
        let alg_name = format!("{alg:?}");
        let server = TestServer::start_with(
            pool.clone(),
            &[
                ("JWT_SECRET", ""),
                ("JWT_PUBLIC_KEY", &public),
                ("JWT_ALGORITHM", &alg_name),
            ],
        )
        .await;
        let key = match alg {
            jsonwebtoken::Algorithm::ES256 => {
                jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap()
            }
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        };
        let claims = json!({ "sub": 5, "exp": now_secs() + 60 });
        let good = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap();
        let c = server.client_with("/chat", &good).await;
        assert_eq!(c.recv("unread:count").await["total"], 0, "{alg_name}");
        // Key confusion: an HS256 token whose secret is the public key must not pass.
        let confused = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            refused(&server, with_auth(&confused)).await,
            "AUTH_INVALID",
            "{alg_name}"
        );
        // A token of the shared-secret kind is refused too.
        assert_eq!(
            refused(&server, with_auth(&token(5, &["user"]))).await,
            "AUTH_INVALID",
            "{alg_name}"
        );
    }
}

/// The development token tool, compiled here so its tokens are checked against a server.
#[path = "../examples/mint_token.rs"]
#[allow(dead_code)]
mod mint_token;

#[sqlx::test]
async fn the_mint_token_example_makes_tokens_the_server_accepts(pool: PgPool) {
    let args =
        mint_token::parse_args(["--sub", "7", "--roles", "user,staff"].map(str::to_owned)).unwrap();
    assert_eq!(args.roles, ["user", "staff"]);
    let good = mint_token::mint(SECRET, &args, now_secs(), None, None).unwrap();
    let server = TestServer::start(pool).await;
    let c = server.client_with("/chat", &good).await;
    assert_eq!(c.recv("unread:count").await["total"], 0);
    // Expired (`--ttl` counts from `now`) and missing `--sub` are caught.
    let old = mint_token::mint(SECRET, &args, now_secs() - 7200, None, None).unwrap();
    assert_eq!(refused(&server, with_auth(&old)).await, "AUTH_INVALID");
    assert!(mint_token::parse_args(["--roles", "user"].map(str::to_owned)).is_err());
}
