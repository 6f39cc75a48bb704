//! What the HTTP layer records of each request: the access log line (`ACCESS_LOG`), and
//! engine.io's "Session ID unknown" answers, counted.
//!
//! The access log has one line per REST request and per handshake (an engine.io
//! request without `sid`, a plain WebSocket upgrade); a session's own polls and posts
//! would be one line per message and are left out. Health, readiness and metrics are
//! logged at `debug`: a load balancer probing every second would bury the rest.
//! Tokens never reach it: the `Authorization` header is not logged, a credential in
//! the query (`token`, `access_token`, ...) is replaced by `REDACTED`, and so is any
//! path segment that looks like a JWT.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;

use crate::listener::PeerAddr;
use crate::outbound::under;

/// Query parameters whose values are credentials (compared ignoring ASCII case).
const SECRET_PARAMS: [&str; 5] = ["token", "access_token", "auth", "authorization", "jwt"];
/// What replaces a credential.
const REDACTED: &str = "REDACTED";
/// Routes that are polled, not used: logged at `debug`.
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Logs one line per REST request and handshake. `engine_path` is `SOCKETIO_PATH`.
pub async fn log(State(engine_path): State<Arc<str>>, req: Request, next: Next) -> Response {
    // Under a `RUST_LOG` that drops the line (`warn`, as the bench runs), nothing of it
    // is built: the redacted target and the peer's address are strings per request.
    // Probes log at `debug`, below `info`: when `info` is off, so is their line.
    if !tracing::enabled!(target: "switchboard::access", tracing::Level::INFO) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let engine = under(path, &engine_path);
    if engine && query.split('&').any(|pair| pair.starts_with("sid=")) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let target = redact(path, req.uri().query());
    let remote = req
        .extensions()
        .get::<PeerAddr>()
        .map(|PeerAddr(addr)| addr.to_string())
        .unwrap_or_default();
    let probe = PROBES.contains(&path);
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let ms = (ms * 10.0).round() / 10.0;
    if probe {
        tracing::debug!(target: "switchboard::access", %method, path = %target, status, ms, %remote, "access");
    } else {
        tracing::info!(target: "switchboard::access", %method, path = %target, status, ms, %remote, "access");
    }
    response
}

/// `path?query` with credentials replaced by [`REDACTED`].
pub fn redact(path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + query.map_or(0, str::len) + 1);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if looks_like_jwt(segment) {
            REDACTED
        } else {
            segment
        });
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let secret = SECRET_PARAMS
                .iter()
                .any(|name| key.eq_ignore_ascii_case(name));
            if secret || looks_like_jwt(value) {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            } else {
                out.push_str(pair);
            }
        }
    }
    out
}

/// Three base64url parts, the first a JSON object (`eyJ`): a JWT, wherever it is.
fn looks_like_jwt(text: &str) -> bool {
    let text = text
        .strip_prefix("Bearer%20")
        .or_else(|| text.strip_prefix("Bearer+"))
        .unwrap_or(text);
    text.starts_with("eyJ") && text.split('.').count() == 3
}

/// engine.io's answer to a request naming a session it does not have.
const SESSION_UNKNOWN: &[u8] = b"Session ID unknown";
/// Its body is about 45 bytes; a 400 bigger than this is something else.
const SMALL_BODY: usize = 256;

/// What [`count_unknown_sessions`] needs.
#[derive(Clone)]
pub struct EngineAnswers {
    /// `SOCKETIO_PATH`.
    pub engine_path: Arc<str>,
    /// `switchboard_engine_session_unknown_total`.
    pub session_unknown: Counter,
}

/// Counts engine.io's "Session ID unknown" answers (400, code 1). Layered right
/// around the engine, so the answers our own session cutting gives
/// (`outbound::link_sessions`) are not counted: those sessions were known.
pub async fn count_unknown_sessions(
    State(answers): State<EngineAnswers>,
    req: Request,
    next: Next,
) -> Response {
    let engine = under(req.uri().path(), &answers.engine_path);
    let response = next.run(req).await;
    if !engine || response.status() != StatusCode::BAD_REQUEST {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, SMALL_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return Response::from_parts(parts, axum::body::Body::empty()),
    };
    if bytes
        .windows(SESSION_UNKNOWN.len())
        .any(|w| w == SESSION_UNKNOWN)
    {
        answers.session_unknown.inc();
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_in_the_query_are_redacted() {
        assert_eq!(
            redact("/socket.io/", Some("EIO=4&transport=polling&token=secret")),
            "/socket.io/?EIO=4&transport=polling&token=REDACTED"
        );
        assert_eq!(
            redact("/ws", Some("Token=abc&access_token=def&x=1")),
            "/ws?Token=REDACTED&access_token=REDACTED&x=1"
        );
        assert_eq!(redact("/api/x", None), "/api/x");
    }

    #[test]
    fn a_jwt_anywhere_is_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.c2ln";
        assert_eq!(
            redact(&format!("/ws/order/kitchen/{jwt}"), None),
            "/ws/order/kitchen/REDACTED"
        );
        assert_eq!(
            redact("/x", Some(&format!("t=Bearer%20{jwt}"))),
            "/x?t=REDACTED"
        );
    }
}
