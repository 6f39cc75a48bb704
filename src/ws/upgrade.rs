//! The WebSocket opening handshake (RFC 6455 §4.2) for the plain routes, in place of
//! axum's `WebSocketUpgrade`: the request is checked here, answered 101 with
//! `Sec-WebSocket-Accept`, and once hyper lets go of the connection its socket is taken
//! back whole ([`hyper::upgrade::Upgraded::downcast`] to the listener's
//! [`Tracked`] stream, with the bytes hyper had read past the request). The connection
//! then owns the bare `TcpStream`: hyper's upgrade state (0.34 KiB per connection,
//! heaptrack) and tokio-tungstenite's stream and split lock are gone.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};

use crate::error::AppError;
use crate::listener::Tracked;

/// RFC 6455 §1.3: appended to the client's key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request that may be upgraded: its accept key and hyper's promise of the socket.
pub struct Handshake {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// A request that is not a WebSocket upgrade (answered 400, as axum's rejection was).
#[derive(Debug)]
pub struct NotUpgrade;

impl IntoResponse for NotUpgrade {
    fn into_response(self) -> Response {
        AppError::bad_request("expected a WebSocket upgrade").into_response()
    }
}

/// Whether a comma-separated header holds `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = NotUpgrade;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NotUpgrade> {
        let headers = &parts.headers;
        let valid = parts.method == Method::GET
            && has_token(headers, header::CONNECTION, "upgrade")
            && has_token(headers, header::UPGRADE, "websocket")
            && headers
                .get(header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v.as_bytes() == b"13");
        let key = headers.get(header::SEC_WEBSOCKET_KEY).filter(|_| valid);
        let Some(key) = key else {
            return Err(NotUpgrade);
        };
        let accept = HeaderValue::from_str(&accept_key(key.as_bytes())).map_err(|_| NotUpgrade)?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or(NotUpgrade)?;
        Ok(Handshake { accept, on_upgrade })
    }
}

impl Handshake {
    /// Answers 101; once the connection is handed over, spawns `serve` with its socket
    /// and the bytes the client sent after the request. Dropping `serve` unused (the
    /// upgrade failed) is how a failed upgrade ends.
    pub fn accept<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Tracked, Bytes) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Handshake { accept, on_upgrade } = self;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            match upgraded.downcast::<TokioIo<Tracked>>() {
                // Its own task: this one's state (hyper's upgrade future) is not kept
                // by every idle connection.
                Ok(parts) => drop(tokio::spawn(serve(parts.io.into_inner(), parts.read_buf))),
                Err(_) => {
                    // Only the listener's connections are upgraded; anything else is
                    // closed rather than served through a second I/O path.
                    tracing::warn!("websocket upgrade on an unknown stream: closed");
                }
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty());
        match response {
            Ok(response) => response,
            Err(_) => AppError::Internal("building the 101 response".into()).into_response(),
        }
    }
}

/// For handlers: `Result<Handshake, NotUpgrade>` is what they extract.
pub type Upgrade = Result<Handshake, NotUpgrade>;

#[cfg(test)]
mod tests {
    #[test]
    fn the_accept_key_of_rfc_6455s_example() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
