//! Notification shapes (contract §5) and their payload rules.

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::input::{trimmed, trimmed_opt, user_id};

/// Default page size of `notification:list`.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page of `notification:list`.
pub const MAX_PAGE: i64 = 200;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    /// A chat message.
    Message,
    /// An invitation to a group.
    GroupInvite,
    /// Anything from the system.
    System,
}

impl NotificationType {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Message => "message",
            NotificationType::GroupInvite => "group_invite",
            NotificationType::System => "system",
        }
    }

    /// Reads the database spelling (checked by a constraint).
    pub fn from_db(s: &str) -> Self {
        match s {
            "message" => NotificationType::Message,
            "group_invite" => NotificationType::GroupInvite,
            _ => NotificationType::System,
        }
    }
}

/// A notification as one user sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// Server-made id.
    #[serde(rename = "_id")]
    pub id: Uuid,
    /// Owner; `null` for a broadcast.
    pub user_id: Option<UserId>,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// Headline.
    pub title: String,
    /// Body.
    pub content: String,
    /// Read by this user.
    pub is_read: bool,
    /// What it refers to (a conversation id, say).
    pub related_id: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Where it points (`POST /api/notifications` `link`); plain dialects only, so
    /// socket.io and REST payloads are unchanged.
    #[serde(skip)]
    pub link: Option<String>,
    /// `low`, `normal` or `high`; plain dialects only.
    #[serde(skip)]
    pub priority: Priority,
}

/// How urgent a notification is (`POST /api/notifications` `priority`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Show it now.
    High,
}

impl Priority {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    /// Reads the database spelling (checked by a constraint).
    pub fn from_db(s: &str) -> Self {
        match s {
            "low" => Priority::Low,
            "high" => Priority::High,
            _ => Priority::Normal,
        }
    }
}

/// `notification:count` payload.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct NotificationCount {
    /// Unread notifications, broadcasts included.
    pub count: i64,
}

fn page_range(limit: i64) -> Result<(), ValidationError> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be between 1 and 200".into()))
    }
}

fn is_ping(action: &str) -> Result<(), ValidationError> {
    if action == "ping" {
        Ok(())
    } else {
        Err(ValidationError::new("ping").with_message("must be \"ping\"".into()))
    }
}

/// `notification:list`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ListNotifications {
    /// Only unread ones.
    #[serde(default)]
    pub unread_only: bool,
    /// Older than this notification.
    #[serde(default)]
    pub before: Option<Uuid>,
    /// 1..=200, default 50.
    #[serde(default)]
    #[validate(custom(function = "page_range"))]
    pub limit: Option<i64>,
}

/// `{ notificationId }` (get, read, delete).
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRef {
    /// Target.
    pub notification_id: Uuid,
}

/// `notification:read_all` (`{}`).
#[derive(Debug, Deserialize, Validate)]
pub struct ReadAll {}

/// `notification:ping` (`{ action: 'ping' }`; the action may be left out).
#[derive(Debug, Deserialize, Validate)]
pub struct Ping {
    /// Must be `ping` when given.
    #[serde(default)]
    #[validate(custom(function = "is_ping"))]
    pub action: Option<String>,
}

/// `POST /api/notifications`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateNotification {
    /// Recipient.
    #[serde(deserialize_with = "user_id")]
    pub user_id: UserId,
    /// Kind.
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub title: String,
    /// 1..=4000 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 4000, message = "must be 1 to 4000 characters"))]
    pub content: String,
    /// Optional reference, at most 200 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    pub related_id: Option<String>,
    /// Where it points, at most 2000 characters (rendered by the plain dialects).
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    pub link: Option<String>,
    /// `low`, `normal` (default) or `high`.
    #[serde(default)]
    pub priority: Priority,
}

/// `POST /api/notifications/broadcast`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateBroadcast {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: NotificationType,
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub title: String,
    /// 1..=4000 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 4000, message = "must be 1 to 4000 characters"))]
    pub content: String,
}
