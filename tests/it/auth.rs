//! Identity at connect (contract §2): token sources, refusals, claim forms.
//!
//! Past 400 lines: one test per identity rule of contract §2; each test reads alone.

use crate::support::*;
use base64_url::encode as b64;
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
    // `sub` is an integer or 1-128 printable characters (contract §2).
    let empty_sub = sign(json!({ "sub": " ", "exp": now_secs() + 60 }));
    let long_sub = sign(json!({ "sub": "a".repeat(129), "exp": now_secs() + 60 }));
    let float_sub = sign(json!({ "sub": 1.5, "exp": now_secs() + 60 }));
    for bad in [
        expired,
        no_exp,
        forged,
        alg_none,
        empty_sub,
        long_sub,
        float_sub,
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
    c.ok(
        "members:add",
        json!({ "conversationId": conv, "userId": 3 }),
    )
    .await;
}

/// Seeds 002/003 issue string user ids (`user_789`, UUIDs): they chat, count unread and
/// get notifications like integer users, and see their ids as strings; integer users
/// keep seeing numbers.
#[sqlx::test]
async fn string_user_ids_chat_and_get_notifications(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let exp = now_secs() + 600;
    let ana = "user_789";
    let bo = "9f1c2d3e-0000-4000-8000-000000000001";
    let as_user = |sub: &str| sign(json!({ "sub": sub, "roles": ["user"], "exp": exp }));
    let res = server
        .post(
            "/api/conversations",
            &as_user(ana),
            &json!({ "type": "group", "name": "mixed", "participants": [bo, 7] }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let conv: serde_json::Value = res.json().await.unwrap();
    assert_eq!(conv["participants"], json!([ana, bo, 7]));
    let id = conv["_id"].as_str().unwrap();
    let a = server.client_with("/chat", &as_user(ana)).await;
    let b = server.client_with("/chat", &as_user(bo)).await;
    let seven = server.client("/chat", 7).await;
    for c in [&a, &b, &seven] {
        c.join(&id).await;
    }
    let sent = a.send_message(&id, "hi").await;
    assert_eq!(sent["sender_id"], json!(ana));
    assert_eq!(b.recv("message:created").await["sender_id"], json!(ana));
    assert_eq!(seven.recv("message:created").await["sender_id"], json!(ana));
    let count = recv_until(&b, "unread:count", |c| c["total"] == json!(1)).await;
    assert_eq!(count["total"], json!(1));
    // Integer users still see numbers; a string id is refused nowhere.
    let back = seven.send_message(&id, "yo").await;
    assert_eq!(back["sender_id"], json!(7));
    a.ok(
        "members:remove",
        json!({ "conversationId": id, "userId": bo }),
    )
    .await;
    assert_eq!(
        b.recv("members:removed").await["userId"],
        json!(bo),
        "the removed member hears it with its own id"
    );
    // A notification for a string user reaches its /notifications socket.
    let n = server.client_with("/notifications", &as_user(ana)).await;
    let res = server
        .post(
            "/api/notifications",
            &token(500, &["service"]),
            &json!({ "user_id": ana, "type": "system", "title": "T", "content": "C" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created = n.recv("notification:created").await;
    assert_eq!(created["user_id"], json!(ana));
    let ids_in_db: Vec<String> =
        sqlx::query_scalar("select user_id from conversation_members order by user_id")
            .fetch_all(&server.pool)
            .await
            .unwrap();
    assert_eq!(ids_in_db, vec!["7", "user_789"]);
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
    let res = server.post("/api/conversations", &expired, &body).await;
    assert_eq!(res.status(), 401);
}

/// Tokens that verified are remembered (a backend's token is not checked again on every
/// request), but never past their `exp` + leeway: the same token that just worked is
/// refused once it expires, and a token that never verified is not remembered as valid.
#[sqlx::test]
async fn a_token_that_worked_is_refused_once_it_expires(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "0")]).await;
    let short = sign(json!({ "sub": 1, "roles": ["user"], "exp": now_secs() + 2 }));
    for _ in 0..3 {
        let (status, body) = server.call("GET", "/api/conversations", &short, None).await;
        assert_eq!(status, 200, "{body}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let (status, body) = server.call("GET", "/api/conversations", &short, None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("AUTH_INVALID")),
        "{body}"
    );
    // A forged token of the same claims is refused each time, before and after.
    let forged = format!("{}x", token(1, &["user"]));
    for _ in 0..2 {
        let (status, _) = server
            .call("GET", "/api/conversations", &forged, None)
            .await;
        assert_eq!(status, 401);
    }
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

// ---------------------------------------------------------------------------
// Identity for the life of a socket: expiry, nbf, operator disconnect
// ---------------------------------------------------------------------------

/// `switchboard_session_lifetimes`: connections waiting for their token to expire.
async fn lifetimes(server: &TestServer) -> i64 {
    metric(server, "switchboard_session_lifetimes ").await as i64
}

/// Waits (bounded) until the registry holds `expected` connections: it is updated by
/// the server's connect and disconnect handlers, just after the client sees either.
async fn lifetimes_become(server: &TestServer, expected: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = lifetimes(server).await;
        if now == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session_lifetimes stayed {now}, expected {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn create_restaurant(server: &TestServer) -> String {
    let res = server
        .post(
            "/api/restaurants",
            &token(500, &["service"]),
            &json!({ "name": "Lifetime Diner" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: serde_json::Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

/// Every namespace family, the dynamic restaurant one included.
fn every_namespace(restaurant: &str) -> Vec<String> {
    vec![
        "/chat".into(),
        "/notifications".into(),
        "/".into(),
        "/restaurant".into(),
        format!("/restaurants/{restaurant}"),
    ]
}

#[sqlx::test]
async fn an_expiring_token_is_told_then_disconnected_on_every_namespace(pool: PgPool) {
    // No leeway, so the socket ends at `exp` itself.
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "0")]).await;
    let r = create_restaurant(&server).await;
    let exp = now_secs() + 4;
    let short = sign(json!({ "sub": 7, "roles": ["staff"], "restaurants": [r], "exp": exp }));
    let mut clients = Vec::new();
    for ns in every_namespace(&r) {
        clients.push((ns.clone(), server.client_with(&ns, &short).await));
    }
    let long = server.client_with("/chat", &token(8, &["user"])).await;
    lifetimes_become(&server, 6).await;
    let expected_at = chrono::DateTime::from_timestamp(exp, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (ns, c) in &clients {
        let notice = c
            .recv_timeout("session:expired", std::time::Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no session:expired on {ns}"));
        assert_eq!(
            notice,
            json!({ "reason": "token expired", "expiredAt": expected_at }),
            "on {ns}"
        );
        assert!(
            c.wait_disconnected(std::time::Duration::from_secs(5)).await,
            "{ns} still connected after session:expired"
        );
        assert!(now_secs() >= exp, "{ns} ended before exp");
    }
    // Another user's socket with a longer token is untouched and still served.
    assert!(!long.is_disconnected());
    let ack = long
        .emit_ack(
            "conversation:join",
            json!({ "conversationId": "00000000-0000-0000-0000-000000000000" }),
        )
        .await;
    assert_error(&ack, "NOT_FOUND");
    lifetimes_become(&server, 1).await;
}

#[sqlx::test]
async fn expiry_honours_the_leeway(pool: PgPool) {
    // exp already passed but within the 2 s leeway: accepted, then ended when the
    // leeway runs out too (the moment a reconnect with it would be refused).
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "2")]).await;
    let exp = now_secs() - 1;
    let c = server
        .client_with("/chat", &sign(json!({ "sub": 7, "exp": exp })))
        .await;
    let notice = c
        .recv_timeout("session:expired", std::time::Duration::from_secs(6))
        .await
        .expect("no session:expired");
    assert_eq!(notice["reason"], "token expired");
    assert!(c.wait_disconnected(std::time::Duration::from_secs(5)).await);
    assert!(now_secs() >= exp + 2);
}

#[sqlx::test]
async fn a_socket_that_leaves_before_its_token_expires_leaves_no_timer(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server).await;
    let t =
        sign(json!({ "sub": 7, "roles": ["staff"], "restaurants": [r], "exp": now_secs() + 3600 }));
    let mut clients = Vec::new();
    for ns in every_namespace(&r) {
        clients.push(server.client_with(&ns, &t).await);
    }
    lifetimes_become(&server, 5).await;
    // One leaves politely, the others lose their transport.
    let mut clients = clients.into_iter();
    clients.next().unwrap().close().await;
    for c in clients {
        c.close_transport().await;
    }
    lifetimes_become(&server, 0).await;
    // A refused connection never registers.
    let bad = sign(json!({ "sub": 7, "exp": now_secs() - 3600 }));
    assert_eq!(refused(&server, with_auth(&bad)).await, "AUTH_INVALID");
    assert_eq!(lifetimes(&server).await, 0);
}

#[sqlx::test]
async fn a_token_not_yet_valid_is_refused_beyond_the_leeway(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let exp = now_secs() + 3600;
    let later = sign(json!({ "sub": 7, "exp": exp, "nbf": now_secs() + 300 }));
    assert_eq!(refused(&server, with_auth(&later)).await, "AUTH_INVALID");
    let res = server
        .post(
            "/api/conversations",
            &later,
            &json!({ "type": "group", "participants": [] }),
        )
        .await;
    assert_eq!(res.status(), 401);
    // Within JWT_LEEWAY_SECS (30) of now, and in the past: accepted.
    for nbf in [now_secs() + 10, now_secs() - 10] {
        let t = sign(json!({ "sub": 7, "exp": exp, "nbf": nbf }));
        server.client_with("/chat", &t).await;
    }
}

async fn post_disconnect(
    server: &TestServer,
    user: &str,
    bearer: Option<String>,
) -> reqwest::Response {
    let path = format!("/api/users/{user}/disconnect");
    let request = server.request("POST", &path, bearer.as_deref());
    request.send().await.unwrap()
}

#[sqlx::test]
async fn an_operator_disconnects_every_socket_of_a_user(pool: PgPool) {
    let server = TestServer::start(pool).await;
    let r = create_restaurant(&server).await;
    let t =
        sign(json!({ "sub": 7, "roles": ["staff"], "restaurants": [r], "exp": now_secs() + 3600 }));
    let mut targets = Vec::new();
    for ns in every_namespace(&r) {
        targets.push((ns.clone(), server.client_with(&ns, &t).await));
    }
    let bystander = server.client_with("/chat", &token(8, &["user"])).await;
    lifetimes_become(&server, 6).await;

    // 401 without a token, 403 for anyone but admin and service, 400 for a bad id.
    assert_eq!(post_disconnect(&server, "7", None).await.status(), 401);
    for roles in [&["user"][..], &["staff"], &["manager"]] {
        let res = post_disconnect(&server, "7", Some(token(9, roles))).await;
        assert_eq!(res.status(), 403, "{roles:?}");
    }
    let res = post_disconnect(&server, &"x".repeat(129), Some(token(1, &["admin"]))).await;
    bad_request(res, "a 129-character user id").await;
    // Nothing was ended by the refused calls.
    for (ns, c) in &targets {
        assert!(!c.is_disconnected(), "{ns} ended by a refused call");
    }

    for (caller, roles) in [(1, "admin"), (500, "service")] {
        let res = post_disconnect(&server, "7", Some(token(caller, &[roles]))).await;
        assert_eq!(res.status(), 200, "{roles}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body, json!({ "userId": 7, "disconnected": true }));
    }
    for (ns, c) in &targets {
        assert!(
            c.wait_disconnected(std::time::Duration::from_secs(5)).await,
            "{ns} still connected"
        );
    }
    assert!(!bystander.is_disconnected());
    lifetimes_become(&server, 1).await;
}

#[sqlx::test]
async fn a_long_polling_socket_is_told_and_disconnected_too(pool: PgPool) {
    let server = TestServer::start_with(pool, &[("JWT_LEEWAY_SECS", "0")]).await;
    let open = crate::support::sio::connect_polling_handshake(&server.base).await;
    let url = format!(
        "{}/socket.io/?EIO=4&transport=polling&sid={}",
        server.base,
        open["sid"].as_str().unwrap()
    );
    let t = sign(json!({ "sub": 7, "exp": now_secs() + 3 }));
    let http = server.http();
    let res = http
        .post(&url)
        .body(format!("40/chat,{}", json!({ "token": t })))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    // Each GET returns what is queued (or waits for it); collect packets until the
    // namespace's DISCONNECT arrives.
    let mut packets: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !packets.iter().any(|p| p == "41/chat,") {
        assert!(
            std::time::Instant::now() < deadline,
            "no DISCONNECT over polling; got {packets:?}"
        );
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            http.get(&url).send().await.unwrap().text(),
        )
        .await
        .unwrap()
        .unwrap();
        packets.extend(body.split('\u{1e}').map(str::to_owned));
    }
    let events: Vec<&String> = packets.iter().filter(|p| p.starts_with("4")).collect();
    assert!(events[0].starts_with("40/chat,"), "{packets:?}");
    let expired = packets
        .iter()
        .position(|p| p.starts_with("42/chat,[\"session:expired\""))
        .unwrap_or_else(|| panic!("no session:expired in {packets:?}"));
    let disconnect = packets.iter().position(|p| p == "41/chat,").unwrap();
    assert!(expired < disconnect, "{packets:?}");
}

/// The development token tool, compiled here so its tokens are checked against a server.
#[path = "../../examples/mint_token.rs"]
mod mint_token;

/// The example's `main` is compiled here with the rest of it; naming it keeps it used.
const _: fn() -> std::process::ExitCode = mint_token::main;

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
