//! Messages and read cursors: sending (through `chat_send`'s shared transactions),
//! reading, editing, deleting, paging, and unread counts.

use crate::domain::user::UserId;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::Store;
use super::chat::lock_members;
use super::chat_send::{NewMessage, SendError, Sent};
use crate::domain::chat::{Message, UnreadCount};

/// The message columns every read returns, with `seen_by` derived from read cursors.
macro_rules! message_select {
    () => {
        "select m.id, m.seq, m.conversation_id, m.sender_id, m.content, m.attachments, m.client_id,
                m.created_at, m.updated_at, m.message_type, m.sender_name,
                array(select cm.user_id from conversation_members cm
                      where cm.conversation_id = m.conversation_id
                        and cm.last_read_seq >= m.seq and cm.user_id <> m.sender_id
                      order by cm.user_id) as seen_by
         from messages m "
    };
}

#[derive(FromRow)]
pub(super) struct MessageRow {
    pub(super) id: Uuid,
    seq: i64,
    pub(super) conversation_id: Uuid,
    sender_id: UserId,
    content: String,
    attachments: Vec<String>,
    client_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: Option<DateTime<Utc>>,
    message_type: String,
    sender_name: Option<String>,
    seen_by: Vec<UserId>,
}

impl MessageRow {
    fn into_message(self) -> (Message, i64) {
        let seq = self.seq;
        (
            Message {
                id: self.id,
                conversation_id: self.conversation_id,
                sender_id: self.sender_id,
                content: self.content,
                attachments: self.attachments,
                seen_by: self.seen_by,
                client_id: self.client_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
                message_type: self.message_type,
                sender_name: self.sender_name,
            },
            seq,
        )
    }
}

/// A stored message with its position, for cursor updates.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The message as clients see it.
    pub message: Message,
    /// Its global order.
    pub seq: i64,
}

pub(super) fn stored(row: MessageRow) -> StoredMessage {
    let (message, seq) = row.into_message();
    StoredMessage { message, seq }
}

impl Store {
    /// Stores a message, moves the sender's read cursor to it and counts it as unread
    /// for every other member; answers once committed. Concurrent sends share a
    /// transaction (see `chat_send`). A repeated `client_id` from the same sender in the
    /// same conversation returns the first message instead (even if it was deleted
    /// since: a repeat gets the same answer). Refused with `SendError::NotMember` unless
    /// the sender is a member when the message is written.
    pub async fn send_message(&self, new: NewMessage) -> Result<Sent, SendError> {
        self.sends.send(new).await
    }

    /// A message that is not deleted.
    pub async fn find_message(
        &self,
        message_id: Uuid,
    ) -> Result<Option<StoredMessage>, sqlx::Error> {
        let row: Option<MessageRow> = sqlx::query_as(concat!(
            message_select!(),
            "where m.id = $1 and m.deleted_at is null"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(stored))
    }

    /// Changes the body of a live message written by `sender_id`.
    pub async fn update_message_content(
        &self,
        message_id: Uuid,
        sender_id: &UserId,
        content: &str,
    ) -> Result<Option<Message>, sqlx::Error> {
        let updated: Option<(Uuid,)> = sqlx::query_as(
            "update messages set content = $3, updated_at = now()
             where id = $1 and sender_id = $2 and deleted_at is null returning id",
        )
        .bind(message_id)
        .bind(sender_id)
        .bind(content)
        .fetch_optional(&self.pool)
        .await?;
        match updated {
            Some(_) => Ok(self.find_message(message_id).await?.map(|m| m.message)),
            None => Ok(None),
        }
    }

    /// Soft-deletes a message. False if it was already gone.
    pub async fn mark_message_deleted(&self, message_id: Uuid) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let conversation_id: Option<Uuid> =
            sqlx::query_scalar("select conversation_id from messages where id = $1")
                .bind(message_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(conversation_id) = conversation_id else {
            return Ok(false);
        };
        lock_members(&mut tx, conversation_id).await?;
        // The message leaves the counters of members who had not read it.
        let deleted: i64 = sqlx::query_scalar(
            "with del as (
                update messages set deleted_at = now() where id = $1 and deleted_at is null
                returning conversation_id, seq, sender_id
             ), dec as (
                update conversation_members cm set unread_count = greatest(cm.unread_count - 1, 0)
                from del
                where cm.conversation_id = del.conversation_id and cm.user_id <> del.sender_id
                  and cm.last_read_seq < del.seq
             )
             select count(*) from del",
        )
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Moves a reader's cursor forward to `seq` (never backwards); returns the time.
    pub async fn mark_read(
        &self,
        conversation_id: Uuid,
        user_id: &UserId,
        seq: i64,
    ) -> Result<DateTime<Utc>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Lock the member row first: an insert bumping this counter has then either
        // committed (and the recount below sees its message) or waits for us (and adds
        // its 1 after the recount).
        sqlx::query("select 1 from conversation_members where conversation_id = $1 and user_id = $2 for update")
            .bind(conversation_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let read_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "update conversation_members cm
             set last_read_seq = greatest(cm.last_read_seq, $3),
                 unread_count = (select count(*) from messages m
                                 where m.conversation_id = $1 and m.seq > greatest(cm.last_read_seq, $3)
                                   and m.sender_id <> $2 and m.deleted_at is null)
             where cm.conversation_id = $1 and cm.user_id = $2 returning now()",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(read_at.unwrap_or_else(Utc::now))
    }

    /// The `seq` of a message (deleted ones too) if it belongs to the conversation.
    pub async fn find_message_seq(
        &self,
        conversation_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar("select seq from messages where id = $1 and conversation_id = $2")
            .bind(message_id)
            .bind(conversation_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// A history page: newest first below `before_seq` (or the newest), or oldest
    /// first above `after_seq`.
    pub async fn list_messages(
        &self,
        conversation_id: Uuid,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Message>, sqlx::Error> {
        let rows: Vec<MessageRow> = match after_seq {
            Some(after) => {
                sqlx::query_as(concat!(
                    message_select!(),
                    "where m.conversation_id = $1 and m.deleted_at is null and m.seq > $2
                       and m.seq < $3
                     order by m.seq asc limit $4"
                ))
                .bind(conversation_id)
                .bind(after)
                .bind(before_seq.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as(concat!(
                    message_select!(),
                    "where m.conversation_id = $1 and m.deleted_at is null
                       and m.seq < $2
                     order by m.seq desc limit $3"
                ))
                .bind(conversation_id)
                .bind(before_seq.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.into_iter().map(|r| stored(r).message).collect())
    }

    /// Unread counts of several users at once (one query over the per-member counters:
    /// messages past the member's cursor, not deleted, not their own; see migration 0006).
    pub async fn unread_counts(
        &self,
        user_ids: &[UserId],
    ) -> Result<HashMap<UserId, UnreadCount>, sqlx::Error> {
        unread_counts(&self.pool, user_ids).await
    }

    /// One user's unread count.
    pub async fn unread_count(&self, user_id: &UserId) -> Result<UnreadCount, sqlx::Error> {
        Ok(self
            .unread_counts(std::slice::from_ref(user_id))
            .await?
            .remove(user_id)
            .unwrap_or_default())
    }
}

/// Unread counts of several users (see `Store::unread_counts`).
pub(super) async fn unread_counts(
    pool: &sqlx::PgPool,
    user_ids: &[UserId],
) -> Result<HashMap<UserId, UnreadCount>, sqlx::Error> {
    let rows: Vec<(UserId, Uuid, i64)> = sqlx::query_as(
        "select user_id, conversation_id, unread_count::bigint from conversation_members
             where user_id = any($1) and unread_count > 0",
    )
    .bind(user_ids)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<UserId, UnreadCount> = user_ids
        .iter()
        .map(|u| (u.clone(), UnreadCount::default()))
        .collect();
    for (user, conversation, count) in rows {
        let entry = out.entry(user).or_default();
        entry.total += count;
        entry.by_conversation.insert(conversation, count);
    }
    Ok(out)
}

/// The first message of a repeated `clientId` (see `Store::send_message`).
/// The message with this id, if stored.
pub(super) async fn stored_by_id(
    pool: &sqlx::PgPool,
    id: Uuid,
) -> Result<Option<MessageRow>, sqlx::Error> {
    sqlx::query_as(concat!(message_select!(), "where m.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub(super) async fn first_with_client_id(
    pool: &sqlx::PgPool,
    new: &NewMessage,
) -> Result<Message, sqlx::Error> {
    let first: MessageRow = sqlx::query_as(concat!(
        message_select!(),
        "where m.conversation_id = $1 and m.sender_id = $2 and m.client_id = $3"
    ))
    .bind(new.conversation_id)
    .bind(&new.sender_id)
    .bind(new.client_id.as_deref())
    .fetch_one(pool)
    .await?;
    Ok(stored(first).message)
}
