//! The entity gateway on the wire (contract §7.4): server messages
//! `{event, entity, section, data, metadata}`, each rendered once into a text frame,
//! and client commands `{action, payload?, request_id?}`.

use crate::ws::frame::Frame;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Context, Entity, Topic};
use crate::domain::time::rfc3339_ms;

/// Longest `request_id` echoed back (characters).
const MAX_REQUEST_ID: usize = 200;

/// The longest piece of a client's text an error shows back.
const SHOWN: usize = 64;

/// `metadata` of a server message.
#[derive(Debug, Serialize)]
pub struct Metadata<'a> {
    /// RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// The command's `request_id`, on replies to a command that had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// The command's `action`, on replies to a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'a str>,
    /// Why a command failed, on `{entity}.error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Metadata<'_> {
    /// Metadata of an unprompted message (a snapshot, `system.connected`).
    pub fn at(at: DateTime<Utc>) -> Metadata<'static> {
        Metadata {
            timestamp: rfc3339_ms(&at),
            request_id: None,
            action: None,
            reason: None,
        }
    }
}

#[derive(Serialize)]
struct Outgoing<'a, D: Serialize> {
    event: &'a str,
    entity: &'a str,
    section: &'a str,
    data: D,
    metadata: Metadata<'a>,
}

/// Renders one server message into a text frame (`None`, logged, if it cannot be).
pub fn render<D: Serialize>(
    event: &str,
    entity: Entity,
    section: &str,
    data: D,
    metadata: Metadata<'_>,
) -> Option<Frame> {
    let outgoing = Outgoing {
        event,
        entity: entity.name(),
        section,
        data,
        metadata,
    };
    match serde_json::to_string(&outgoing) {
        Ok(text) => Some(Frame::text(text)),
        Err(e) => {
            tracing::error!(error = %e, event, "could not render a gateway message");
            None
        }
    }
}

/// The `event` of the first message.
pub const CONNECTED: &str = "system.connected";

#[derive(Serialize)]
struct Connected<'a> {
    entity: &'a str,
    section: &'a str,
    topics: Vec<String>,
}

/// `system.connected` for `context`: its entity, section and topics (the four base
/// topics, then `{entity}.{action}` for each of `allowed_actions`).
pub fn connected(context: &Context, allowed_actions: &[String]) -> Option<Frame> {
    let entity = context.entity;
    let topics = [Topic::Snapshot, Topic::List, Topic::Detail, Topic::Error]
        .into_iter()
        .map(|t| entity.topic(t).to_owned())
        .chain(
            allowed_actions
                .iter()
                .map(|action| format!("{}.{action}", entity.name())),
        )
        .collect();
    render(
        CONNECTED,
        entity,
        &context.section,
        Connected {
            entity: entity.name(),
            section: &context.section,
            topics,
        },
        Metadata::at(Utc::now()),
    )
}

/// `data` of `{entity}.error`.
#[derive(Serialize)]
pub struct ErrorData<'a> {
    /// One of `unknown_action`, `invalid_payload`, `not_found`, `forbidden`,
    /// `rate_limited`, `internal`.
    pub reason: &'static str,
    /// Says what was wrong (never internal detail).
    pub message: &'a str,
}

/// A command's failure, as `{entity}.error` tells it.
#[derive(Debug)]
pub struct Failure {
    /// The reason code.
    pub reason: &'static str,
    /// The text.
    pub message: String,
}

impl Failure {
    /// A frame that is not a command, or a payload that does not decode.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            reason: "invalid_payload",
            message: message.into(),
        }
    }
}

impl From<crate::error::AppError> for Failure {
    fn from(error: crate::error::AppError) -> Self {
        use crate::error::AppError;
        if matches!(error, AppError::Database(_) | AppError::Internal(_)) {
            error.log();
        }
        let reason = match error.code().envelope() {
            "not_found" => "not_found",
            "forbidden" | "unauthorized" => "forbidden",
            "rate_limited" => "rate_limited",
            "internal" => "internal",
            _ => "invalid_payload",
        };
        Failure {
            reason,
            message: error.public_message(),
        }
    }
}

/// A decoded client command.
#[derive(Debug)]
pub struct Command {
    /// `action`, as sent.
    pub action: String,
    /// `payload` (absent or `null`: empty).
    pub payload: Map<String, Value>,
    /// `request_id`, echoed on the reply.
    pub request_id: Option<String>,
}

/// A frame that is not a command, with what of it can still be echoed.
#[derive(Debug)]
pub struct Undecoded {
    /// Why.
    pub failure: Failure,
    /// The `request_id`, when the frame was an object that had a usable one.
    pub request_id: Option<String>,
    /// The `action`, when it had one (cut to a few characters).
    pub action: Option<String>,
}

/// `text` shortened to what an error may show back.
pub fn shown(text: &str) -> String {
    text.chars().take(SHOWN).collect()
}

/// Reads one text frame: a JSON object with a string `action`, an object (or absent or
/// `null`) `payload`, and an optional string `request_id` (at most 200 characters).
pub fn decode(text: &str) -> Result<Command, Undecoded> {
    let bad = |message: &str, request_id: Option<String>, action: Option<String>| Undecoded {
        failure: Failure::invalid(message),
        request_id,
        action,
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Err(bad("not valid JSON", None, None));
    };
    let Value::Object(mut object) = value else {
        return Err(bad("a command is one JSON object", None, None));
    };
    let request_id = match object.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_REQUEST_ID => Some(id),
        Some(Value::String(_)) => {
            return Err(bad("request_id: at most 200 characters", None, None));
        }
        Some(_) => return Err(bad("request_id: expected a string", None, None)),
    };
    let action = match object.remove("action") {
        Some(Value::String(action)) => action,
        None | Some(Value::Null) => return Err(bad("action: required", request_id, None)),
        Some(_) => return Err(bad("action: expected a string", request_id, None)),
    };
    let payload = match object.remove("payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(payload)) => payload,
        Some(_) => {
            return Err(bad(
                "payload: expected an object",
                request_id,
                Some(shown(&action)),
            ));
        }
    };
    Ok(Command {
        action,
        payload,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_decode_and_bad_frames_say_why() {
        let c = decode(r#"{"action":"list","payload":null,"request_id":"r1"}"#).unwrap();
        assert_eq!(
            (c.action.as_str(), c.request_id.as_deref()),
            ("list", Some("r1"))
        );
        assert!(c.payload.is_empty());
        for (text, message, echoed) in [
            ("nope", "not valid JSON", None),
            ("[1]", "a command is one JSON object", None),
            (r#"{"request_id":"r"}"#, "action: required", Some("r")),
            (
                r#"{"action":5,"request_id":"r"}"#,
                "action: expected a string",
                Some("r"),
            ),
            (
                r#"{"action":"get","payload":[1]}"#,
                "payload: expected an object",
                None,
            ),
            (
                r#"{"action":"get","request_id":7}"#,
                "request_id: expected a string",
                None,
            ),
        ] {
            let e = decode(text).unwrap_err();
            assert_eq!(e.failure.reason, "invalid_payload");
            assert_eq!(e.failure.message, message, "{text}");
            assert_eq!(e.request_id.as_deref(), echoed, "{text}");
        }
    }

    #[test]
    fn a_message_has_the_seed_shape() {
        let Some(text) = render(
            "tables.detail",
            Entity::Tables,
            "patio",
            serde_json::json!({ "id": "t1" }),
            Metadata {
                timestamp: "2026-01-01T00:00:00.000Z".into(),
                request_id: Some("r"),
                action: Some("get_table"),
                reason: None,
            },
        ) else {
            panic!("not rendered");
        };
        let v: Value = serde_json::from_str(text.as_text().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "event": "tables.detail", "entity": "tables", "section": "patio",
                "data": { "id": "t1" },
                "metadata": { "timestamp": "2026-01-01T00:00:00.000Z", "request_id": "r", "action": "get_table" }
            })
        );
    }
}
