//! The HTTP layers around REST and socket.io that are not routes: CORS, refusing
//! websocket upgrades from foreign origins, refusing engine.io 3 unless allowed,
//! copying a handshake's request parts out of hyper's buffer, and counting REST
//! requests as in flight.
//!
//! The order they wrap the router in is the application's (`app::assemble`); the
//! access log, rate limit and client bundle layers live with their own concerns.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socketioxide::adapter::Adapter;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::config::Config;
use crate::error::AppError;
use crate::outbound;
use crate::state::AppState;

/// Counts REST requests as in flight, like socket events, so shutdown lets them finish.
pub(crate) async fn track_rest<A: Adapter>(
    State(app): State<AppState<A>>,
    req: Request,
    next: Next,
) -> Response {
    let _in_flight = app.in_flight.enter();
    next.run(req).await
}

/// What [`refuse_eio3`] needs to know.
#[derive(Clone)]
pub(crate) struct EngineGate {
    /// `SOCKETIO_PATH`.
    pub(crate) path: Arc<str>,
    /// `ALLOW_EIO3`.
    pub(crate) allow_eio3: bool,
}

/// The body engine.io answers a protocol version it does not speak with: the body Node
/// sends with `allowEIO3: false`, spelled as engineioxide spells its own errors (and
/// its answer to `EIO=2`).
const UNSUPPORTED_PROTOCOL: &str = r#"{"code":"5","message":"Unsupported protocol version"}"#;

/// The engine.io protocol a request names: the first `EIO=` of its query, as
/// engineioxide reads it.
fn eio_version(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find(|pair| pair.starts_with("EIO="))
        .and_then(|pair| pair.split('=').nth(1))
}

/// socketioxide's `v4` feature (compiled in for `ALLOW_EIO3`) admits engine.io 3 with
/// no switch of its own: without `ALLOW_EIO3=true` its requests (handshakes, polls and
/// upgrades alike) are answered here as Node answers them with `allowEIO3: false`.
pub(crate) async fn refuse_eio3(
    State(gate): State<EngineGate>,
    req: Request,
    next: Next,
) -> Response {
    if !gate.allow_eio3
        && outbound::under(req.uri().path(), &gate.path)
        && eio_version(req.uri().query()) == Some("3")
    {
        tracing::debug!("engine.io 3 request refused (ALLOW_EIO3 is off)");
        return (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            UNSUPPORTED_PROTOCOL,
        )
            .into_response();
    }
    next.run(req).await
}

/// socketioxide keeps each socket's handshake request parts for its whole life; the
/// header values and URI are slices of hyper's 16 KiB read buffer, which they keep
/// alive. Copying them out frees that buffer (bench S1: ~34 → ~24 KiB per connection).
pub(crate) async fn own_handshake_parts(
    State(engine_path): State<Arc<str>>,
    req: Request,
) -> Request {
    if !outbound::under(req.uri().path(), &engine_path) {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let Ok(owned) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.append(name.clone(), owned);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = axum::http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// CORS for polling and REST: the allow-list with credentials, or any origin without.
pub(crate) fn cors(config: &Config) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .max_age(Duration::from_secs(600));
    match &config.allowed_origins {
        Some(origins) => {
            let list: Vec<HeaderValue> = origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            base.allow_origin(AllowOrigin::list(list))
                .allow_credentials(true)
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        }
        None => base.allow_origin(Any).allow_headers(Any),
    }
}

/// With `ALLOWED_ORIGINS` set, a websocket upgrade from another origin is refused with
/// 403 (browsers do not apply CORS to websockets, so the server must).
pub(crate) async fn refuse_foreign_websockets(
    State(allowed): State<Option<Arc<Vec<String>>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(allowed) = allowed.as_deref() {
        let is_upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if is_upgrade
            && let Some(origin) = origin
            && !allowed.iter().any(|a| a == origin.trim_end_matches('/'))
        {
            tracing::debug!(origin, "websocket upgrade from a foreign origin refused");
            return AppError::forbidden("origin not allowed").into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::eio_version;

    #[test]
    fn the_first_eio_parameter_names_the_protocol() {
        assert_eq!(eio_version(Some("EIO=3&transport=polling")), Some("3"));
        assert_eq!(eio_version(Some("transport=websocket&EIO=4")), Some("4"));
        assert_eq!(eio_version(Some("EIO=4&EIO=3")), Some("4"));
        assert_eq!(eio_version(Some("XEIO=3&transport=polling")), None);
        assert_eq!(eio_version(Some("transport=polling")), None);
        assert_eq!(eio_version(None), None);
    }
}
