//! Notifications: personal rows and broadcasts with per-user receipts.

use crate::domain::user::UserId;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::Store;
use crate::domain::notifications::{Notification, NotificationType, Priority};

#[derive(FromRow)]
struct Row {
    id: Uuid,
    user_id: Option<UserId>,
    #[sqlx(rename = "type")]
    kind: String,
    title: String,
    content: String,
    related_id: Option<String>,
    link: Option<String>,
    priority: String,
    is_read: bool,
    created_at: DateTime<Utc>,
}

impl From<Row> for Notification {
    fn from(r: Row) -> Self {
        Notification {
            id: r.id,
            user_id: r.user_id,
            kind: NotificationType::from_db(&r.kind),
            title: r.title,
            content: r.content,
            is_read: r.is_read,
            related_id: r.related_id,
            created_at: r.created_at,
            link: r.link,
            priority: Priority::from_db(&r.priority),
        }
    }
}

/// One user's view of every notification: their own rows plus broadcasts they have not
/// deleted, with the read flag from the receipt for broadcasts. `$1` is the user.
macro_rules! visible {
    () => {
        "select n.id, n.seq, n.user_id, n.type, n.title, n.content, n.related_id, n.link, n.priority, n.created_at,
                (n.is_read or r.read_at is not null) as is_read
         from notifications n
         left join notification_receipts r on r.notification_id = n.id and r.user_id = $1
         where (n.user_id = $1 or (n.user_id is null and r.deleted_at is null)) "
    };
}

/// The broadcast half of a page (`$1` user, `$2` cursor, `$3` limit), with an extra
/// filter, followed by the merge of both halves.
macro_rules! broadcast_page {
    ($filter:literal) => {
        concat!(
            "(select n.id, n.seq, n.user_id, n.type, n.title, n.content, n.related_id, n.link, n.priority, n.created_at,
                     r.read_at is not null as is_read
              from notifications n
              left join notification_receipts r on r.notification_id = n.id and r.user_id = $1
              where n.user_id is null and r.deleted_at is null and n.seq < $2 ",
            $filter,
            " order by n.seq desc limit $3)
             order by seq desc limit $3"
        )
    };
}

/// A notification to store.
#[derive(Debug, Clone, Copy)]
pub struct NewNotification<'a> {
    /// Owner; `None` makes it a broadcast.
    pub user_id: Option<&'a UserId>,
    /// Kind.
    pub kind: NotificationType,
    /// Headline.
    pub title: &'a str,
    /// Body.
    pub content: &'a str,
    /// What it refers to.
    pub related_id: Option<&'a str>,
    /// Where it points.
    pub link: Option<&'a str>,
    /// How urgent.
    pub priority: Priority,
}

impl Store {
    /// Stores a notification.
    pub async fn insert_notification(
        &self,
        new: NewNotification<'_>,
    ) -> Result<Notification, sqlx::Error> {
        let NewNotification {
            user_id,
            kind,
            title,
            content,
            related_id,
            link,
            priority,
        } = new;
        let row: Row = sqlx::query_as(
            "insert into notifications (id, user_id, type, title, content, related_id, link, priority)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             returning id, user_id, type, title, content, related_id, link, priority, is_read, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(kind.as_str())
        .bind(title)
        .bind(content)
        .bind(related_id)
        .bind(link)
        .bind(priority.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// A page newest first, older than `before` when given. Personal rows and broadcasts
    /// are each read through their own index and merged, so a user with 100k
    /// notifications pays for one page, not for all of them.
    pub async fn list_notifications(
        &self,
        user_id: &UserId,
        unread_only: bool,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Option<Vec<Notification>>, sqlx::Error> {
        let before_seq: Option<i64> = match before {
            None => None,
            Some(id) => match self.find_notification_seq(user_id, id).await? {
                Some(seq) => Some(seq),
                None => return Ok(None),
            },
        };
        // Two fixed statements rather than `$x is null or …` / `not $y or …`: a prepared
        // statement gets a generic plan, and those forms keep the cursor and the unread
        // filter out of the index condition (a deep page then walks the whole inbox).
        let query = if unread_only {
            concat!(
                "(select n.id, n.seq, n.user_id, n.type, n.title, n.content, n.related_id, n.link, n.priority, n.created_at, n.is_read
                  from notifications n
                  where n.user_id = $1 and n.seq < $2 and not n.is_read
                  order by n.seq desc limit $3)
                 union all ",
                broadcast_page!("and r.read_at is null")
            )
        } else {
            concat!(
                "(select n.id, n.seq, n.user_id, n.type, n.title, n.content, n.related_id, n.link, n.priority, n.created_at, n.is_read
                  from notifications n
                  where n.user_id = $1 and n.seq < $2
                  order by n.seq desc limit $3)
                 union all ",
                broadcast_page!("")
            )
        };
        let rows: Vec<Row> = sqlx::query_as(query)
            .bind(user_id)
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(rows.into_iter().map(Notification::from).collect()))
    }

    async fn find_notification_seq(
        &self,
        user_id: &UserId,
        id: Uuid,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(concat!("select seq from (", visible!(), "and n.id = $2) v"))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// One notification as `user_id` sees it, if visible to them.
    pub async fn find_notification(
        &self,
        user_id: &UserId,
        id: Uuid,
    ) -> Result<Option<Notification>, sqlx::Error> {
        let row: Option<Row> = sqlx::query_as(concat!(visible!(), "and n.id = $2"))
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Notification::from))
    }

    /// Marks one notification read for `user_id`; `None` when not visible to them.
    pub async fn mark_notification_read(
        &self,
        user_id: &UserId,
        id: Uuid,
    ) -> Result<Option<Notification>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let personal =
            sqlx::query("update notifications set is_read = true where id = $1 and user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if personal == 0 {
            sqlx::query(
                "insert into notification_receipts (notification_id, user_id, read_at)
                 select id, $2, now() from notifications where id = $1 and user_id is null
                 on conflict (user_id, notification_id)
                 do update set read_at = coalesce(notification_receipts.read_at, excluded.read_at)
                 where notification_receipts.deleted_at is null",
            )
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.find_notification(user_id, id).await
    }

    /// Marks everything visible to `user_id` read; returns how many changed.
    pub async fn mark_all_notifications_read(&self, user_id: &UserId) -> Result<i64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let personal = sqlx::query(
            "update notifications set is_read = true where user_id = $1 and not is_read",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let broadcasts = sqlx::query(
            "insert into notification_receipts (notification_id, user_id, read_at)
             select n.id, $1, now() from notifications n
             left join notification_receipts r on r.notification_id = n.id and r.user_id = $1
             where n.user_id is null and r.read_at is null and r.deleted_at is null
             on conflict (user_id, notification_id) do update set read_at = excluded.read_at",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(i64::try_from(personal + broadcasts).unwrap_or(i64::MAX))
    }

    /// Deletes a notification for `user_id` (a broadcast is only hidden from them).
    /// False when it was not visible to them.
    pub async fn delete_notification(
        &self,
        user_id: &UserId,
        id: Uuid,
    ) -> Result<bool, sqlx::Error> {
        let personal = sqlx::query("delete from notifications where id = $1 and user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if personal == 1 {
            return Ok(true);
        }
        let hidden = sqlx::query(
            "insert into notification_receipts (notification_id, user_id, deleted_at)
             select id, $2, now() from notifications where id = $1 and user_id is null
             on conflict (user_id, notification_id) do update set deleted_at = excluded.deleted_at
             where notification_receipts.deleted_at is null",
        )
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(hidden == 1)
    }

    /// Unread counts of several users in one query, broadcasts included.
    pub async fn notification_counts(
        &self,
        user_ids: &[UserId],
    ) -> Result<HashMap<UserId, i64>, sqlx::Error> {
        let rows: Vec<(UserId, i64)> = sqlx::query_as(
            "select u.id,
                    (select count(*) from notifications n where n.user_id = u.id and not n.is_read)
                  + (select count(*) from notifications n
                     where n.user_id is null
                       and not exists (select 1 from notification_receipts r
                                       where r.notification_id = n.id and r.user_id = u.id
                                         and (r.read_at is not null or r.deleted_at is not null)))
             from unnest($1::text[]) as u(id)",
        )
        .bind(user_ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// One user's unread count.
    pub async fn notification_count(&self, user_id: &UserId) -> Result<i64, sqlx::Error> {
        Ok(self
            .notification_counts(std::slice::from_ref(user_id))
            .await?
            .remove(user_id)
            .unwrap_or(0))
    }
}
