//! Decoding client payloads into typed commands, with errors that name the field.
//!
//! Every event payload goes through [`decode`]: serde (with the path of the failing
//! field) and then `validator`. A missing or `null` payload decodes like `{}`, so the
//! error says which field is missing rather than "invalid type: null".

use crate::domain::user::UserId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use validator::{Validate, ValidationErrors, ValidationErrorsKind};

use crate::error::AppError;

/// Decodes and validates a JSON payload.
pub fn decode<T: DeserializeOwned + Validate>(value: serde_json::Value) -> Result<T, AppError> {
    let value = match value {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        // serde would read an array positionally into a struct; no payload is an array.
        serde_json::Value::Array(_) => {
            return Err(AppError::bad_request(
                "payload: expected an object, not an array",
            ));
        }
        other => other,
    };
    // PostgreSQL text and jsonb cannot hold U+0000: a NUL anywhere in the payload is this
    // request's bad input, refused here so that it can never fail a write (or a
    // transaction shared with other clients' writes).
    if let Some(mut path) = nul_path(&value) {
        if path.is_empty() {
            path.push_str("payload");
        }
        return Err(AppError::bad_request(format!(
            "{path}: must not contain NUL characters"
        )));
    }
    // `validator` reports Rust field names; keep the payload's own keys to name the
    // field the way the client spelled it (camelCase on the socket, snake_case in REST).
    let keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let parsed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // serde reports a missing field at the parent's path; name the field itself.
            match inner
                .strip_prefix("missing field `")
                .and_then(|r| r.strip_suffix('`'))
            {
                Some(field) => AppError::bad_request(format!("{field}: required")),
                None => AppError::bad_request(inner),
            }
        } else {
            AppError::bad_request(format!("{path}: {inner}"))
        }
    })?;
    parsed
        .validate()
        .map_err(|e| AppError::bad_request(describe(&e, &keys)))?;
    Ok(parsed)
}

/// Where the first string (a key or a value) holding U+0000 is, as `a.b[2]`.
fn nul_path(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|rest| format!("[{i}]{}", dotted(&rest)))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(key.replace('\0', "\\0"));
            }
            nul_path(item).map(|rest| format!("{key}{}", dotted(&rest)))
        }),
        _ => None,
    }
}

/// Joins a sub-path: `[i]` directly, a field name after a dot.
fn dotted(rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') {
        rest.to_owned()
    } else {
        format!(".{rest}")
    }
}

/// The payload's spelling of a Rust field name: as is, or its camelCase form.
fn wire_name(field: &str, keys: &[String]) -> String {
    if keys.iter().any(|k| k == field) {
        return field.to_owned();
    }
    let mut camel = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    if keys.contains(&camel) {
        camel
    } else {
        field.to_owned()
    }
}

/// The first validation failure as `field: message`.
fn describe(errors: &ValidationErrors, keys: &[String]) -> String {
    for (field, kind) in errors.errors() {
        let field = wire_name(field, keys);
        match kind {
            ValidationErrorsKind::Field(list) => {
                if let Some(first) = list.first() {
                    let message = first
                        .message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| first.code.to_string());
                    return format!("{field}: {message}");
                }
            }
            ValidationErrorsKind::Struct(inner) => {
                return format!("{field}.{}", describe(inner, &[]));
            }
            ValidationErrorsKind::List(items) => {
                if let Some((index, inner)) = items.iter().next() {
                    return format!("{field}[{index}].{}", describe(inner, &[]));
                }
            }
        }
    }
    "invalid payload".to_owned()
}

/// A payload taken as it came, for events whose shape is decided by hand.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawPayload(pub serde_json::Value);

impl Validate for RawPayload {
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
}

/// Deserializes a string trimmed of surrounding white space (lengths count after trimming).
pub fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    no_nul::<D>(&s)?;
    Ok(s.trim().to_owned())
}

/// PostgreSQL text cannot hold U+0000: refuse it as bad input rather than fail the write.
fn no_nul<'de, D: Deserializer<'de>>(s: &str) -> Result<(), D::Error> {
    if s.contains('\0') {
        return Err(serde::de::Error::custom("must not contain NUL characters"));
    }
    Ok(())
}

/// Like [`trimmed`] for an optional string; an empty result becomes `None`.
pub fn trimmed_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        no_nul::<D>(s)?;
    }
    Ok(s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// A user id as `sub` is accepted (see [`UserId`]), with a message a client can act on.
pub fn user_id<'de, D: Deserializer<'de>>(d: D) -> Result<UserId, D::Error> {
    UserId::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a user id: an integer or 1-128 printable characters")
    })
}

/// Like [`user_id`] for an optional field.
pub fn user_id_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UserId>, D::Error> {
    Option::<serde_json::Value>::deserialize(d)?
        .filter(|v| !v.is_null())
        .map(|v| user_id(v).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        let cases = [
            (
                json!({ "attachments": ["https://a", "https://b\u{0}"] }),
                "attachments[1]",
            ),
            (
                json!({ "items": [{ "notes": "x\u{0}" }] }),
                "items[0].notes",
            ),
            (json!({ "a\u{0}": 1 }), "a\\0"),
            (json!("x\u{0}"), "payload"),
        ];
        for (payload, path) in cases {
            let e = decode::<RawPayload>(payload).unwrap_err().to_string();
            assert_eq!(e, format!("{path}: must not contain NUL characters"));
        }
        decode::<RawPayload>(json!({ "ok": ["fine"] })).unwrap();
    }

    #[derive(Debug, Deserialize, Validate)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        conversation_id: uuid::Uuid,
        #[serde(deserialize_with = "trimmed")]
        #[validate(length(min = 1, max = 5, message = "must be 1 to 5 characters"))]
        content: String,
    }

    #[test]
    fn errors_name_the_field() {
        let id = uuid::Uuid::new_v4();
        let e = decode::<Probe>(json!({ "content": "x" })).unwrap_err();
        assert!(e.to_string().contains("conversationId"), "{e}");
        let e = decode::<Probe>(json!({ "conversationId": "nope", "content": "x" })).unwrap_err();
        assert!(e.to_string().starts_with("conversationId:"), "{e}");
        let e = decode::<Probe>(json!({ "conversationId": id, "content": "   " })).unwrap_err();
        assert_eq!(e.to_string(), "content: must be 1 to 5 characters");
        let e = decode::<Probe>(json!([id, "x"])).unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");
        let e = decode::<Probe>(serde_json::Value::Null).unwrap_err();
        assert!(e.to_string().contains("conversationId"), "{e}");
        let ok = decode::<Probe>(json!({ "conversationId": id, "content": " héllo " })).unwrap();
        assert_eq!(ok.content, "héllo");
        assert_eq!(ok.conversation_id, id);
    }
}
