//! Event check-ins (contract §7.5, §7.6; seed 002's dashboard): what a backend posts
//! for a session, and what REST and the session's dashboards show of it.

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::input::{trimmed, trimmed_opt, user_id};

/// Default page size of `GET /api/sessions/:sessionId/checkins`.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page of `GET /api/sessions/:sessionId/checkins`.
pub const MAX_PAGE: i64 = 100;

/// One stored check-in, as REST answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Checkin {
    /// Server-made id.
    pub id: Uuid,
    /// The event session it belongs to.
    pub session_id: Uuid,
    /// Who checked in: an integer or a string id (a UUID in seed 002), as the
    /// backend sent it.
    pub user_id: UserId,
    /// Their display name at check-in time.
    pub user_name: String,
    /// Their picture, if the backend sent one.
    pub profile_url: Option<String>,
    /// Whether the check-in went through.
    pub success: bool,
    /// What the dashboard shows with it ("Check-in successful", or why not).
    pub message: String,
    /// When it was stored.
    #[serde(serialize_with = "super::time::serialize")]
    pub checkin_time: DateTime<Utc>,
}

/// `POST /api/sessions/:sessionId/checkins`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateCheckin {
    /// Who checked in: a JSON integer or a string id.
    #[serde(deserialize_with = "user_id")]
    pub user_id: UserId,
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub user_name: String,
    /// At most 2000 characters; absent, `null` or blank: none.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    pub profile_url: Option<String>,
    /// Whether it went through.
    pub success: bool,
    /// 1..=2000 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 2000, message = "must be 1 to 2000 characters"))]
    pub message: String,
}

fn page_range(limit: i64) -> Result<(), ValidationError> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be between 1 and 100".into()))
    }
}

/// `GET /api/sessions/:sessionId/checkins?limit=`.
#[derive(Debug, Deserialize, Validate)]
pub struct ListCheckins {
    /// 1..=100, default 50.
    #[serde(default)]
    #[validate(custom(function = "page_range"))]
    pub limit: Option<i64>,
}

impl ListCheckins {
    /// The page size asked for, or the default.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::decode;
    use serde_json::json;

    #[test]
    fn a_checkin_is_checked_field_by_field() {
        let ok: CreateCheckin = decode(json!({
            "user_id": "42", "user_name": " Ada ", "profile_url": "  ",
            "success": true, "message": "Check-in successful"
        }))
        .unwrap();
        assert_eq!((ok.user_id.as_str(), ok.user_name.as_str()), ("42", "Ada"));
        assert_eq!(ok.profile_url, None);
        let base = json!({ "user_id": 1, "user_name": "A", "success": false, "message": "m" });
        let cases = [
            ("user_id", json!(""), "user_id:"),
            ("user_id", json!(1.5), "user_id:"),
            ("user_name", json!(" "), "user_name: must be 1 to 200"),
            (
                "user_name",
                json!("x".repeat(201)),
                "user_name: must be 1 to 200",
            ),
            (
                "message",
                json!("x".repeat(2001)),
                "message: must be 1 to 2000",
            ),
            (
                "profile_url",
                json!("x".repeat(2001)),
                "profile_url: must be at most",
            ),
            ("success", json!("yes"), "success:"),
        ];
        for (field, value, expected) in cases {
            let mut body = base.clone();
            body[field] = value;
            let e = decode::<CreateCheckin>(body).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{field}: {e}");
        }
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove("success");
        let e = decode::<CreateCheckin>(body).unwrap_err().to_string();
        assert_eq!(e, "success: required");
    }

    #[test]
    fn the_page_is_1_to_100() {
        assert_eq!(decode::<ListCheckins>(json!({})).unwrap().limit(), 50);
        assert_eq!(
            decode::<ListCheckins>(json!({ "limit": 100 }))
                .unwrap()
                .limit(),
            100
        );
        for bad in [0, 101, -1] {
            let e = decode::<ListCheckins>(json!({ "limit": bad })).unwrap_err();
            assert_eq!(e.to_string(), "limit: must be between 1 and 100");
        }
    }
}
