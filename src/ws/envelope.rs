//! The envelope dialect of `/ws` (seed 003, contract §7.2) on the wire:
//! `{ type, payload, id?, timestamp? }` both ways.
//!
//! Incoming frames are decoded here into [`Inbound`] (or refused with `invalid_message`);
//! outgoing messages are rendered here, each once, into a text frame that every
//! recipient's queue shares. What a message means is `conn`'s business.

use crate::domain::user::UserId;
use std::borrow::Cow;

use super::frame::Frame;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::time::rfc3339_ms;
use crate::error::AppError;

/// Message types a client sends.
pub mod client {
    /// Authenticate with `{token}`.
    pub const AUTH: &str = "auth";
    /// Join `{channel}`.
    pub const SUBSCRIBE: &str = "subscribe";
    /// Leave `{channel}`.
    pub const UNSUBSCRIBE: &str = "unsubscribe";
    /// Heartbeat; answered with `pong`.
    pub const PING: &str = "ping";
    /// Send `{conversation_id, content, type?}` to a conversation.
    pub const CHAT_MESSAGE: &str = "chat_message";
}

/// Message types the server sends.
pub mod server {
    /// `{user_id}` after a good token.
    pub const AUTH_SUCCESS: &str = "auth_success";
    /// `{error}` after a bad one.
    pub const AUTH_ERROR: &str = "auth_error";
    /// `{channel}` once joined.
    pub const SUBSCRIBED: &str = "subscribed";
    /// `{channel}` once left (asked for, or a revoked grant).
    pub const UNSUBSCRIBED: &str = "unsubscribed";
    /// Answer to `ping`.
    pub const PONG: &str = "pong";
    /// `{code, message}`.
    pub const ERROR: &str = "error";
}

/// The `type` label an incoming message is counted under: the known client types by
/// name, anything else `unknown` (a client cannot grow the label set).
pub fn type_label(kind: &str) -> &'static str {
    match kind {
        client::AUTH => client::AUTH,
        client::SUBSCRIBE => client::SUBSCRIBE,
        client::UNSUBSCRIBE => client::UNSUBSCRIBE,
        client::PING => client::PING,
        client::CHAT_MESSAGE => client::CHAT_MESSAGE,
        _ => "unknown",
    }
}

/// A decoded client message.
#[derive(Debug)]
pub struct Inbound {
    /// `type`.
    pub kind: String,
    /// `payload` (absent or `null`: empty).
    pub payload: Map<String, Value>,
    /// `id`, echoed on the direct reply.
    pub id: Option<String>,
}

/// An error reply of the envelope dialect: `{type:"error", payload:{code, message}}`.
#[derive(Debug)]
pub struct WsError {
    /// One of §7.2's codes.
    pub code: &'static str,
    /// Says what was wrong (never internal detail).
    pub message: Cow<'static, str>,
}

impl WsError {
    /// Bad JSON, a frame that is not an object, or an envelope field of the wrong type.
    pub fn invalid_message(message: impl Into<Cow<'static, str>>) -> Self {
        WsError {
            code: "invalid_message",
            message: message.into(),
        }
    }

    /// A payload field missing or of the wrong type; the message names it.
    pub fn invalid_payload(message: impl Into<Cow<'static, str>>) -> Self {
        WsError {
            code: "invalid_payload",
            message: message.into(),
        }
    }

    /// A `type` the server does not handle.
    pub fn unknown_type(kind: &str) -> Self {
        // The client's text comes back bounded, so a huge type cannot double a reply.
        let shown: String = kind.chars().take(64).collect();
        WsError {
            code: "unknown_type",
            message: format!("unknown message type {shown:?}").into(),
        }
    }

    /// The connection holds the most channels it may.
    pub fn too_many_channels(max: usize) -> Self {
        WsError {
            code: "too_many_channels",
            message: format!("a connection may hold at most {max} channels").into(),
        }
    }

    /// A non-public channel before `auth`.
    pub fn unauthorized() -> Self {
        WsError {
            code: "unauthorized",
            message: "authenticate first".into(),
        }
    }

    /// A channel this principal may not join.
    pub fn forbidden() -> Self {
        WsError {
            code: "forbidden",
            message: "cannot access this channel".into(),
        }
    }
}

impl From<AppError> for WsError {
    /// The one classification of [`AppError`], in this dialect's spelling; server faults
    /// are logged here, once, and reach the client as `internal` only.
    fn from(e: AppError) -> Self {
        e.log();
        WsError {
            code: e.code().envelope(),
            message: e.public_message().into(),
        }
    }
}

/// Decodes one text frame into an envelope.
pub fn decode(text: &str) -> Result<Inbound, (WsError, Option<String>)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| (WsError::invalid_message("not valid JSON"), None))?;
    let Value::Object(mut envelope) = value else {
        return Err((
            WsError::invalid_message("a message is one JSON object"),
            None,
        ));
    };
    let id = match envelope.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err((WsError::invalid_message("id: must be a string"), None)),
    };
    let kind = match envelope.remove("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind,
        Some(Value::String(_)) | None => {
            return Err((WsError::invalid_message("type: required"), id));
        }
        Some(_) => return Err((WsError::invalid_message("type: must be a string"), id)),
    };
    let payload = match envelope.remove("payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(payload)) => payload,
        Some(_) => return Err((WsError::invalid_message("payload: must be an object"), id)),
    };
    Ok(Inbound { kind, payload, id })
}

/// A string field of a payload, or `invalid_payload` naming it.
pub fn string_field<'a>(payload: &'a Map<String, Value>, name: &str) -> Result<&'a str, WsError> {
    match payload.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(WsError::invalid_payload(format!("{name}: required"))),
        Some(_) => Err(WsError::invalid_payload(format!(
            "{name}: must be a string"
        ))),
    }
}

#[derive(Serialize)]
struct Outbound<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: P,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    timestamp: String,
}

/// Renders a server message into a text frame (serialized once; the frame's bytes are
/// shared by every queue it is pushed to).
pub fn render<P: Serialize>(
    kind: &str,
    payload: P,
    id: Option<&str>,
    at: DateTime<Utc>,
) -> Option<Frame> {
    let out = Outbound {
        kind,
        payload,
        id,
        timestamp: rfc3339_ms(&at),
    };
    match serde_json::to_string(&out) {
        Ok(text) => Some(Frame::text(text)),
        Err(e) => {
            tracing::error!(error = %e, kind, "could not render a /ws message");
            None
        }
    }
}

/// `auth_success` payload.
#[derive(Serialize)]
pub struct AuthSuccess {
    /// The authenticated user.
    pub user_id: UserId,
}

/// `auth_error` payload.
#[derive(Serialize)]
pub struct AuthError {
    /// Always "Invalid or expired token" (seed 003).
    pub error: &'static str,
}

/// `subscribed` / `unsubscribed` payload.
#[derive(Serialize)]
pub struct ChannelReply<'a> {
    /// The channel.
    pub channel: &'a str,
}

/// `error` payload.
#[derive(Serialize)]
pub struct ErrorPayload<'a> {
    /// The code.
    pub code: &'a str,
    /// What went wrong.
    pub message: &'a str,
}

/// An empty payload (`pong`).
#[derive(Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> (&'static str, Option<String>) {
        let (e, id) = decode(text).unwrap_err();
        (e.code, id)
    }

    #[test]
    fn envelopes_decode_and_bad_ones_name_what_is_wrong() {
        let m = decode(r#"{"type":"ping","id":"7"}"#).unwrap();
        assert_eq!((m.kind.as_str(), m.id.as_deref()), ("ping", Some("7")));
        assert!(m.payload.is_empty());
        assert_eq!(code("{"), ("invalid_message", None));
        assert_eq!(code("[1]"), ("invalid_message", None));
        assert_eq!(code(r#""x""#), ("invalid_message", None));
        assert_eq!(
            code(r#"{"id":"a","payload":{}}"#),
            ("invalid_message", Some("a".into()))
        );
        assert_eq!(code(r#"{"id":"a","type":3}"#).0, "invalid_message");
        assert_eq!(code(r#"{"id":5,"type":"ping"}"#), ("invalid_message", None));
        assert_eq!(
            code(r#"{"id":"b","type":"auth","payload":"t"}"#),
            ("invalid_message", Some("b".into()))
        );
    }

    #[test]
    fn rendered_messages_carry_type_payload_id_and_a_millisecond_timestamp() {
        let Some(text) = render(
            server::PONG,
            Empty {},
            Some("9"),
            chrono::DateTime::from_timestamp(0, 0).unwrap(),
        ) else {
            panic!("not text");
        };
        assert_eq!(
            text.as_text().unwrap_or_default(),
            r#"{"type":"pong","payload":{},"id":"9","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
    }

    #[test]
    fn unknown_types_share_one_label() {
        assert_eq!(type_label("subscribe"), "subscribe");
        assert_eq!(type_label("made_up"), "unknown");
    }
}
