//! User ids as tokens carry them (contract §2): `sub` is a JSON integer (seeds 001,
//! 004) or a string such as a UUID or `user_789` (seeds 002, 003). Stored as text;
//! rendered back as a JSON number when it is a canonical decimal integer that fits in 64
//! bits, else as a string, so each client sees ids of the kind it issued.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Longest id accepted, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;

/// A user id: 1–128 printable characters (no control characters), surrounding
/// whitespace trimmed. `42` and `"42"` are the same user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct UserId(String);

impl UserId {
    /// The id a text names, if it is one.
    pub fn parse(raw: &str) -> Option<UserId> {
        let s = raw.trim();
        let chars = s.chars().count();
        ((1..=MAX_USER_ID_CHARS).contains(&chars) && !s.chars().any(char::is_control))
            .then(|| UserId(s.to_owned()))
    }

    /// The id as stored and as used in room and channel names.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a JSON number, when it is a canonical decimal integer of 64 bits.
    fn as_number(&self) -> Option<Number> {
        let s = self.0.as_str();
        if let Ok(n) = s.parse::<i64>() {
            return (n.to_string() == s).then_some(Number::Signed(n));
        }
        s.parse::<u64>()
            .ok()
            .filter(|n| n.to_string() == s)
            .map(Number::Unsigned)
    }
}

enum Number {
    Signed(i64),
    Unsigned(u64),
}

impl From<i64> for UserId {
    fn from(n: i64) -> Self {
        UserId(n.to_string())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_number() {
            Some(Number::Signed(n)) => serializer.serialize_i64(n),
            Some(Number::Unsigned(n)) => serializer.serialize_u64(n),
            None => serializer.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Id;
        impl Visitor<'_> for Id {
            type Value = UserId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a user id: an integer or 1-{MAX_USER_ID_CHARS} printable characters"
                )
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<UserId, E> {
                Ok(UserId(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<UserId, E> {
                Ok(UserId(n.to_string()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<UserId, E> {
                UserId::parse(s).ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
        }
        deserializer.deserialize_any(Id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_ids_render_as_numbers_and_others_as_strings() {
        for (input, out) in [
            (json!(42), json!(42)),
            (json!("42"), json!(42)),
            (json!(" 7 "), json!(7)),
            (json!(-3), json!(-3)),
            (json!(u64::MAX), json!(u64::MAX)),
            (json!("042"), json!("042")),
            (json!("user_789"), json!("user_789")),
            (
                json!("9f1c2d3e-0000-4000-8000-000000000001"),
                json!("9f1c2d3e-0000-4000-8000-000000000001"),
            ),
            (json!("18446744073709551616"), json!("18446744073709551616")),
        ] {
            let id: UserId = serde_json::from_value(input.clone()).unwrap();
            assert_eq!(serde_json::to_value(&id).unwrap(), out, "{input}");
        }
        assert_eq!(
            serde_json::from_value::<UserId>(json!(5)).unwrap(),
            serde_json::from_value::<UserId>(json!("5")).unwrap()
        );
    }

    #[test]
    fn empty_long_control_and_non_scalar_ids_are_refused() {
        for bad in [
            json!(""),
            json!("   "),
            json!("a".repeat(129)),
            json!("a\u{0}b"),
            json!("a\nb"),
            json!(1.5),
            json!(true),
            json!(null),
            json!([1]),
        ] {
            assert!(
                serde_json::from_value::<UserId>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(UserId::parse(&"é".repeat(128)).is_some());
    }
}
