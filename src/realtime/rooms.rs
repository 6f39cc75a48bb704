//! The only place that formats room names.

use uuid::Uuid;

/// Personal room of a user: every socket of that user on a namespace.
pub fn user(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// Room of a chat conversation.
pub fn conversation(conversation_id: Uuid) -> String {
    format!("conversation:{conversation_id}")
}
