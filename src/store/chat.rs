//! Conversations and their members (messages and read cursors: `messages.rs`).

use crate::domain::user::UserId;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::Store;
use crate::domain::chat::{Access, Conversation, ConversationType, MemberRole};

/// What `insert_member` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAdded {
    /// Added now.
    Added,
    /// Was a member already; nothing changed.
    AlreadyMember,
    /// The conversation is at its member cap; nothing changed.
    Full,
}

/// One of a user's conversations, as `GET /api/conversations` lists it.
#[derive(Debug, Clone)]
pub struct ConversationEntry {
    /// The conversation.
    pub conversation: Conversation,
    /// The user's unread messages in it.
    pub unread_count: i64,
    /// Its newest live message's time, else its creation.
    pub activity: DateTime<Utc>,
}

#[derive(FromRow)]
struct ConversationRow {
    id: Uuid,
    kind: String,
    name: Option<String>,
    created_at: DateTime<Utc>,
    unread: i64,
    activity: DateTime<Utc>,
    participants: Vec<UserId>,
}

fn parse_kind(s: &str) -> ConversationType {
    // The column is checked to be one of the two.
    if s == "private" {
        ConversationType::Private
    } else {
        ConversationType::Group
    }
}

impl Store {
    /// Creates a conversation; the first member is its owner.
    pub async fn insert_conversation(
        &self,
        kind: ConversationType,
        name: Option<&str>,
        members: &[UserId],
    ) -> Result<Conversation, sqlx::Error> {
        let id = Uuid::now_v7();
        let owner = members.first().cloned().unwrap_or_else(|| UserId::from(0));
        let mut tx = self.pool.begin().await?;
        let created_at: DateTime<Utc> = sqlx::query_scalar(
            "insert into conversations (id, type, name, owner_id) values ($1, $2, $3, $4) returning created_at",
        )
        .bind(id)
        .bind(kind.as_str())
        .bind(name)
        .bind(&owner)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "insert into conversation_members (conversation_id, user_id, role)
             select $1, u, case when u = $3 then 'owner' else 'member' end from unnest($2::text[]) as u",
        )
        .bind(id)
        .bind(members)
        .bind(&owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Conversation {
            id,
            kind,
            name: name.map(str::to_owned),
            participants: members.to_vec(),
            created_at,
        })
    }

    /// `user`'s conversations by latest activity (its newest live message, else its
    /// creation), newest first, after the `(activity, id)` position `after`; each with
    /// the user's unread count and its activity.
    pub async fn list_conversations(
        &self,
        user: &UserId,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ConversationEntry>, sqlx::Error> {
        let rows: Vec<ConversationRow> = sqlx::query_as(
            "with mine as (
                 select c.id, c.type, c.name, c.created_at, cm.unread_count::bigint as unread,
                        coalesce((select m.created_at from messages m
                                  where m.conversation_id = c.id and m.deleted_at is null
                                  order by m.seq desc limit 1), c.created_at) as activity
                 from conversation_members cm join conversations c on c.id = cm.conversation_id
                 where cm.user_id = $1
             )
             select id, type as kind, name, created_at, unread, activity,
                    array(select x.user_id from conversation_members x where x.conversation_id = mine.id
                          order by x.role <> 'owner', x.user_id) as participants
             from mine
             where $2::timestamptz is null or (activity, id) < ($2, $3)
             order by activity desc, id desc
             limit $4",
        )
        .bind(user)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, id)| id))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ConversationEntry {
                conversation: Conversation {
                    id: r.id,
                    kind: parse_kind(&r.kind),
                    name: r.name,
                    participants: r.participants,
                    created_at: r.created_at,
                },
                unread_count: r.unread,
                activity: r.activity,
            })
            .collect())
    }

    /// The conversation with its participants (owner first), if it exists.
    pub async fn find_conversation(&self, id: Uuid) -> Result<Option<Conversation>, sqlx::Error> {
        let row: Option<ConversationRow> = sqlx::query_as(
            "select c.id, c.type as kind, c.name, c.created_at, 0::bigint as unread,
                    c.created_at as activity,
                    array(select x.user_id from conversation_members x where x.conversation_id = c.id
                          order by x.role <> 'owner', x.user_id) as participants
             from conversations c where c.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Conversation {
            id: r.id,
            kind: parse_kind(&r.kind),
            name: r.name,
            participants: r.participants,
            created_at: r.created_at,
        }))
    }

    /// The conversation's kind and the user's role in it; `None` if it does not exist.
    pub async fn find_access(
        &self,
        conversation_id: Uuid,
        user_id: &UserId,
    ) -> Result<Option<Access>, sqlx::Error> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "select c.type, m.role from conversations c
             left join conversation_members m on m.conversation_id = c.id and m.user_id = $2
             where c.id = $1",
        )
        .bind(conversation_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(kind, role)| Access {
            kind: parse_kind(&kind),
            role: role.map(|r| {
                if r == "owner" {
                    MemberRole::Owner
                } else {
                    MemberRole::Member
                }
            }),
        }))
    }

    /// Deletes a conversation; returns its participants, or `None` if it did not exist.
    pub async fn delete_conversation(
        &self,
        conversation_id: Uuid,
    ) -> Result<Option<Vec<UserId>>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let members: Vec<UserId> = sqlx::query_scalar(
            "select user_id from conversation_members where conversation_id = $1 order by user_id",
        )
        .bind(conversation_id)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = sqlx::query("delete from conversations where id = $1")
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((deleted == 1).then_some(members))
    }

    /// Member user ids of a conversation.
    pub async fn list_member_ids(&self, conversation_id: Uuid) -> Result<Vec<UserId>, sqlx::Error> {
        sqlx::query_scalar(
            "select user_id from conversation_members where conversation_id = $1 order by user_id",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Adds a member whose read cursor starts at the newest message, unless it is one
    /// already or the conversation has `max_members` already.
    pub async fn insert_member(
        &self,
        conversation_id: Uuid,
        user_id: &UserId,
        max_members: usize,
    ) -> Result<MemberAdded, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Adds to one conversation take turns here, so the count below is final: two
        // adds at `max_members - 1` cannot both see room. `no key update` leaves the
        // key-share locks of message inserts (foreign keys) alone.
        sqlx::query("select 1 from conversations where id = $1 for no key update")
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?;
        // Waits for sends in flight, so the newest message is final when read below.
        lock_members(&mut tx, conversation_id).await?;
        // A statement after the locks sees every add committed before them.
        let inserted = sqlx::query(
            "insert into conversation_members (conversation_id, user_id, role, last_read_seq)
             select $1, $2, 'member', coalesce((select max(seq) from messages where conversation_id = $1), 0)
             where (select count(*) from conversation_members where conversation_id = $1) < $3
             on conflict (conversation_id, user_id) do nothing",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(i64::try_from(max_members).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if inserted == 1 {
            MemberAdded::Added
        } else {
            let member: bool = sqlx::query_scalar(
                "select exists(select 1 from conversation_members where conversation_id = $1 and user_id = $2)",
            )
            .bind(conversation_id)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            if member {
                MemberAdded::AlreadyMember
            } else {
                MemberAdded::Full
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Removes a member. False if it was not one.
    pub async fn delete_member(
        &self,
        conversation_id: Uuid,
        user_id: &UserId,
    ) -> Result<bool, sqlx::Error> {
        let deleted = sqlx::query(
            "delete from conversation_members where conversation_id = $1 and user_id = $2",
        )
        .bind(conversation_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(deleted == 1)
    }
}

/// Locks every member row of a conversation, in one order (by user id) so that two
/// transactions taking them cannot deadlock. Sends, deletes and joins of one
/// conversation take these locks first, which keeps the unread counters exact.
pub(super) async fn lock_members(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    conversation_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "select 1 from conversation_members where conversation_id = $1 order by user_id for update",
    )
    .bind(conversation_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
