//! Chat shapes (contract §4) and the rules that need no database: body limits,
//! paging bounds, who may manage a conversation.

use crate::domain::user::UserId;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::input::{trimmed, trimmed_opt, user_id};
use crate::auth::Principal;

/// Longest message body, in characters after trimming.
pub const MAX_CONTENT_CHARS: u64 = 4000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Default and largest history page.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest history page.
pub const MAX_PAGE: i64 = 100;

/// `private` (two people) or `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationType {
    /// One-to-one.
    Private,
    /// Many members, managed by its owner.
    Group,
}

impl ConversationType {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationType::Private => "private",
            ConversationType::Group => "group",
        }
    }
}

/// A conversation as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// Server-made id.
    #[serde(rename = "_id")]
    pub id: Uuid,
    /// Kind of conversation.
    #[serde(rename = "type")]
    pub kind: ConversationType,
    /// Display name (groups).
    pub name: Option<String>,
    /// Member user ids.
    pub participants: Vec<UserId>,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A message as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// Server-made id.
    #[serde(rename = "_id")]
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Author (from the token, never from the client).
    pub sender_id: UserId,
    /// Body, trimmed.
    pub content: String,
    /// Attachment URLs.
    pub attachments: Vec<String>,
    /// Members other than the sender whose read cursor is at or past this message.
    pub seen_by: Vec<UserId>,
    /// The sender's idempotency key, echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last edit, or `null`.
    #[serde(serialize_with = "super::time::serialize_opt")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Kind (`text` unless a plain WebSocket client said otherwise); rendered by the
    /// plain dialects only, so socket.io payloads are unchanged.
    #[serde(skip)]
    pub message_type: String,
    /// The sender's display name when sent (the token's `name` claim); plain dialects only.
    #[serde(skip)]
    pub sender_name: Option<String>,
}

/// `unread:count` payload.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UnreadCount {
    /// Sum over conversations.
    pub total: i64,
    /// Per conversation id; zeros omitted.
    pub by_conversation: BTreeMap<Uuid, i64>,
}

/// A member's standing in a conversation, read in one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// The creator.
    Owner,
    /// Anyone else in it.
    Member,
}

/// What the store knows about a conversation and the acting user.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Private or group.
    pub kind: ConversationType,
    /// The acting user's role, `None` when not a member.
    pub role: Option<MemberRole>,
}

impl Access {
    /// Members may read and write.
    pub fn is_member(&self) -> bool {
        self.role.is_some()
    }

    /// "Owner/admin": the conversation's owner or a principal with role `admin`.
    pub fn can_manage(&self, principal: &Principal) -> bool {
        self.role == Some(MemberRole::Owner) || principal.is_admin()
    }
}

fn attachment_urls(list: &[String]) -> Result<(), ValidationError> {
    if list.len() > MAX_ATTACHMENTS {
        return Err(ValidationError::new("too_many").with_message("at most 10 attachments".into()));
    }
    for url in list {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len()
            && url.len() <= 2048
            && !url.chars().any(char::is_whitespace);
        if !ok {
            return Err(ValidationError::new("url")
                .with_message("each attachment must be an http(s) URL".into()));
        }
    }
    Ok(())
}

fn limit_range(limit: i64) -> Result<(), ValidationError> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be between 1 and 100".into()))
    }
}

fn client_id_len(id: &str) -> Result<(), ValidationError> {
    if id.chars().count() <= 128 {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("must be at most 128 characters".into()))
    }
}

/// `{ conversationId }` (join, leave).
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ConversationRef {
    /// Target conversation.
    pub conversation_id: Uuid,
}

/// `message:send`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    /// Target conversation.
    pub conversation_id: Uuid,
    /// Body, 1..=4000 characters after trimming.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = MAX_CONTENT_CHARS, message = "must be 1 to 4000 characters"))]
    pub content: String,
    /// Up to 10 URLs.
    #[serde(default)]
    #[validate(custom(function = "attachment_urls"))]
    pub attachments: Vec<String>,
    /// Idempotency key per sender.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(custom(function = "client_id_len"))]
    pub client_id: Option<String>,
}

/// A chat message from a plain WebSocket client: the envelope's `chat_message`
/// payload (seed 003) or a bare frame (seed 002), `{conversation_id, content, type?}`.
#[derive(Debug, Deserialize, Validate)]
pub struct PlainSendMessage {
    /// Target conversation.
    pub conversation_id: Uuid,
    /// Body, 1..=4000 characters after trimming.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = MAX_CONTENT_CHARS, message = "must be 1 to 4000 characters"))]
    pub content: String,
    /// Kind, 1..=32 characters (default `text`).
    #[serde(rename = "type", default, deserialize_with = "trimmed_opt")]
    #[validate(length(min = 1, max = 32, message = "must be 1 to 32 characters"))]
    pub message_type: Option<String>,
}

impl PlainSendMessage {
    /// The `message:send` it stands for, and its kind.
    pub fn into_send(self) -> (SendMessage, String) {
        let send = SendMessage {
            conversation_id: self.conversation_id,
            content: self.content,
            attachments: Vec::new(),
            client_id: None,
        };
        (send, self.message_type.unwrap_or_else(|| "text".to_owned()))
    }
}

/// `message:edit`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    /// Message to change.
    pub message_id: Uuid,
    /// New body.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = MAX_CONTENT_CHARS, message = "must be 1 to 4000 characters"))]
    pub content: String,
}

/// `{ messageId }` (delete, read).
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    /// Target message.
    pub message_id: Uuid,
}

/// `message:list`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ListMessages {
    /// Conversation to page through.
    pub conversation_id: Uuid,
    /// Page older than this message.
    #[serde(default)]
    pub before: Option<Uuid>,
    /// Page newer than this message (oldest first).
    #[serde(default)]
    pub after: Option<Uuid>,
    /// 1..=100, default 50.
    #[serde(default)]
    #[validate(custom(function = "limit_range"))]
    pub limit: Option<i64>,
}

/// `typing`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// Conversation typed in.
    pub conversation_id: Uuid,
    /// Started or stopped.
    pub is_typing: bool,
}

/// `members:add` / `members:remove`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct MemberChange {
    /// Conversation.
    pub conversation_id: Uuid,
    /// User to add or remove.
    #[serde(deserialize_with = "user_id")]
    pub user_id: UserId,
}

/// `POST /api/conversations`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateConversation {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: ConversationType,
    /// Optional display name, at most 200 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 200, message = "must be at most 200 characters"))]
    pub name: Option<String>,
    /// Other participants (the caller is added as owner); how many is bounded by
    /// `MAX_CONVERSATION_MEMBERS` in [`CreateConversation::members`].
    pub participants: Vec<UserId>,
}

impl CreateConversation {
    /// Everyone in the new conversation, the creator first, without duplicates, at
    /// most `max_members` of them, and the rule that a private conversation has exactly
    /// two people.
    pub fn members(&self, creator: &UserId, max_members: usize) -> Result<Vec<UserId>, String> {
        let mut members = vec![creator.clone()];
        let mut seen = std::collections::HashSet::from([creator]);
        for id in &self.participants {
            // A set: a thousand participants must not cost a million comparisons.
            if seen.insert(id) {
                members.push(id.clone());
            }
        }
        if members.len() > max_members {
            return Err(format!(
                "participants: a conversation has at most {max_members} members, its creator included"
            ));
        }
        if self.kind == ConversationType::Private && members.len() != 2 {
            return Err(
                "participants: a private conversation has exactly one other participant".into(),
            );
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::decode;
    use serde_json::json;

    #[test]
    fn content_limits_count_characters_after_trimming() {
        let id = Uuid::new_v4();
        let exactly = "é".repeat(4000);
        let ok: SendMessage =
            decode(json!({ "conversationId": id, "content": format!("  {exactly}  ") })).unwrap();
        assert_eq!(ok.content.chars().count(), 4000);
        let too_long = "a".repeat(4001);
        let e = decode::<SendMessage>(json!({ "conversationId": id, "content": too_long }))
            .unwrap_err();
        assert!(e.to_string().starts_with("content:"), "{e}");
        // The message's number is written out (validator wants a literal): it must be
        // the limit's.
        assert!(
            e.to_string()
                .contains(&format!("1 to {MAX_CONTENT_CHARS} characters")),
            "{e}"
        );
    }

    #[test]
    fn validation_messages_use_the_wire_names() {
        let id = Uuid::new_v4();
        let e = decode::<SendMessage>(
            json!({ "conversationId": id, "content": "x", "clientId": "k".repeat(129) }),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("clientId:"), "{e}");
        let e = decode::<crate::domain::orders::CompleteTable>(
            json!({ "restaurantId": id, "tableNumber": " " }),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("tableNumber:"), "{e}");
    }

    #[test]
    fn attachments_must_be_few_urls() {
        let id = Uuid::new_v4();
        let e = decode::<SendMessage>(
            json!({ "conversationId": id, "content": "x", "attachments": ["ftp://x"] }),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("attachments:"), "{e}");
        let many: Vec<String> = (0..11)
            .map(|i| format!("https://cdn.example/{i}"))
            .collect();
        let e = decode::<SendMessage>(
            json!({ "conversationId": id, "content": "x", "attachments": many }),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("attachments:"), "{e}");
    }

    fn ids(ids: &[i64]) -> Vec<UserId> {
        ids.iter().copied().map(UserId::from).collect()
    }

    #[test]
    fn private_conversations_have_two_people() {
        let c = CreateConversation {
            kind: ConversationType::Private,
            name: None,
            participants: ids(&[2, 2, 1]),
        };
        assert_eq!(c.members(&UserId::from(1), 1000).unwrap(), ids(&[1, 2]));
        let c = CreateConversation {
            kind: ConversationType::Private,
            name: None,
            participants: ids(&[2, 3]),
        };
        assert!(c.members(&UserId::from(1), 1000).is_err());
    }

    #[test]
    fn the_member_cap_counts_the_creator_and_ignores_repeats() {
        let c = CreateConversation {
            kind: ConversationType::Group,
            name: None,
            participants: ids(&[2, 3, 3, 1]),
        };
        assert_eq!(c.members(&UserId::from(1), 3).unwrap(), ids(&[1, 2, 3]));
        let e = c.members(&UserId::from(1), 2).unwrap_err();
        assert!(e.starts_with("participants:"), "{e}");
    }
}
