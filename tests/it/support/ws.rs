//! A plain WebSocket as the `/ws`, `/ws/dashboard` and gateway tests read it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client WebSocket over plain TCP.
pub type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next frame that is not a ping, within `within`; `None` when none came.
pub async fn next_frame(stream: &mut Stream, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()?;
        match frame {
            Some(Ok(Message::Ping(_))) => {}
            Some(Ok(message)) => return Some(message),
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// The next text frame as JSON, within `within` (pings and pongs skipped); `None` when
/// none came.
pub async fn next_json(stream: &mut Stream, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_frame(stream, left).await? {
            Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
            Message::Pong(_) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Reads (skipping messages) until the server's close frame, answers it as a browser
/// would, and returns its code.
pub async fn close_code(stream: &mut Stream, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => panic!("no close within {within:?}"),
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                let _ = stream.flush().await;
                return u16::from(frame.code);
            }
            Ok(Some(Ok(Message::Close(None)))) => panic!("close without a code"),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

/// `request` with an `Authorization: Bearer <token>` header.
pub fn with_bearer(mut request: Request, token: &str) -> Request {
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The status and JSON error code of a refused upgrade (whose message must not be empty).
pub async fn refused(request: Request) -> (u16, String) {
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            let code = body["error"]["code"].as_str().unwrap().to_owned();
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{body}"
            );
            (response.status().as_u16(), code)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
