//! Plain WebSocket channels (contract §7.2): what a channel name may be, and the REST
//! payloads that publish to channels and grant them.
//!
//! Who may subscribe to which channel depends on data (an order's customer, a grant)
//! and lives in `ws::access`; this module only knows the shapes.

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

/// Longest channel name, in characters.
pub const MAX_CHANNEL_CHARS: usize = 200;

/// Longest `type` a backend may publish, in characters.
pub const MAX_TYPE_CHARS: usize = 64;

/// A well-formed channel name split at its first colon: `order:42` is kind `order`,
/// id `42`. The id may hold further colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel<'a> {
    /// What the channel is about (`user`, `order`, `tenant`, `public`, …).
    pub kind: &'a str,
    /// Which one.
    pub id: &'a str,
}

/// Why a channel name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadChannel {
    /// No colon, or nothing before or after it.
    Shape,
    /// Over [`MAX_CHANNEL_CHARS`].
    TooLong,
}

impl BadChannel {
    /// The text a client sees (the field is named by the caller).
    pub fn message(self) -> &'static str {
        match self {
            BadChannel::Shape => "must be type:id (a colon with text on both sides)",
            BadChannel::TooLong => "must be at most 200 characters",
        }
    }
}

impl<'a> Channel<'a> {
    /// Checks the name rules of §7.2: `type:id`, at most 200 characters.
    pub fn parse(name: &'a str) -> Result<Self, BadChannel> {
        if name.chars().count() > MAX_CHANNEL_CHARS {
            return Err(BadChannel::TooLong);
        }
        match name.split_once(':') {
            Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(Channel { kind, id }),
            _ => Err(BadChannel::Shape),
        }
    }

    /// `public:` channels are open to anyone, unauthenticated connections included.
    pub fn is_public(&self) -> bool {
        self.kind == "public"
    }
}

fn channel_name(name: &str) -> Result<(), ValidationError> {
    Channel::parse(name)
        .map(|_| ())
        .map_err(|e| ValidationError::new("channel").with_message(e.message().into()))
}

fn grantable_channel(name: &str) -> Result<(), ValidationError> {
    channel_name(name)?;
    if Channel::parse(name).is_ok_and(|c| c.is_public()) {
        return Err(ValidationError::new("channel")
            .with_message("public channels are open to anyone and take no grant".into()));
    }
    Ok(())
}

fn message_type(kind: &str) -> Result<(), ValidationError> {
    let n = kind.chars().count();
    if (1..=MAX_TYPE_CHARS).contains(&n) && !kind.trim().is_empty() {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("must be 1 to 64 characters".into()))
    }
}

/// `POST /api/publish` `{ channel, type, payload }`.
#[derive(Debug, Deserialize, Validate)]
pub struct Publish {
    /// Where it goes.
    #[validate(custom(function = "channel_name"))]
    pub channel: String,
    /// The envelope's `type` (`cart_update`, `inventory_alert`, anything).
    #[serde(rename = "type")]
    #[validate(custom(function = "message_type"))]
    pub kind: String,
    /// The envelope's `payload`: an object (absent: `{}`).
    #[serde(default)]
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// `POST` / `DELETE /api/channels/grants` `{ channel, user_id }`.
#[derive(Debug, Deserialize, Validate)]
pub struct GrantChannel {
    /// A non-public channel.
    #[validate(custom(function = "grantable_channel"))]
    pub channel: String,
    /// Who may subscribe to it.
    #[serde(deserialize_with = "crate::domain::input::user_id")]
    pub user_id: UserId,
}

/// A stored grant, as `POST /api/channels/grants` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelGrant {
    /// The channel.
    pub channel: String,
    /// The user it lets in.
    pub user_id: UserId,
    /// When it was granted.
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::decode;
    use serde_json::json;

    #[test]
    fn channel_names_need_a_colon_and_at_most_200_characters() {
        assert_eq!(
            Channel::parse("order:1:2"),
            Ok(Channel {
                kind: "order",
                id: "1:2"
            })
        );
        assert_eq!(Channel::parse("nocolon"), Err(BadChannel::Shape));
        assert_eq!(Channel::parse(":x"), Err(BadChannel::Shape));
        assert_eq!(Channel::parse("x:"), Err(BadChannel::Shape));
        let longest = format!("public:{}", "é".repeat(200 - 7));
        assert!(Channel::parse(&longest).is_ok());
        assert_eq!(
            Channel::parse(&format!("{longest}x")),
            Err(BadChannel::TooLong)
        );
    }

    #[test]
    fn grants_refuse_public_channels_and_name_the_field() {
        let e =
            decode::<GrantChannel>(json!({ "channel": "public:news", "user_id": 1 })).unwrap_err();
        assert!(e.to_string().contains("channel"), "{e}");
        let e = decode::<GrantChannel>(json!({ "channel": "order:1", "user_id": "" })).unwrap_err();
        assert!(e.to_string().contains("user_id"), "{e}");
        let e = decode::<Publish>(json!({ "channel": "order:1", "type": "x", "payload": [1] }))
            .unwrap_err();
        assert!(e.to_string().contains("payload"), "{e}");
        let p = decode::<Publish>(json!({ "channel": "order:1", "type": "cart_update" })).unwrap();
        assert!(p.payload.is_empty());
    }
}
