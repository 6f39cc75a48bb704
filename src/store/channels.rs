//! Plain WebSocket channel access: grants (`POST`/`DELETE /api/channels/grants`) and
//! the order facts `order:<id>` subscriptions are checked against.

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use crate::domain::channels::ChannelGrant;

/// Who an order concerns: its restaurant's staff and its customer.
#[derive(Debug, Clone)]
pub struct OrderParties {
    /// The restaurant it belongs to.
    pub restaurant_id: Uuid,
    /// The customer it was created for, if any.
    pub customer_id: Option<UserId>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    channel: String,
    user_id: UserId,
    created_at: DateTime<Utc>,
}

impl From<GrantRow> for ChannelGrant {
    fn from(row: GrantRow) -> Self {
        ChannelGrant {
            channel: row.channel,
            user_id: row.user_id,
            created_at: row.created_at,
        }
    }
}

impl Store {
    /// Grants `user_id` the channel; `true` when the grant is new (an existing one is
    /// returned unchanged).
    pub async fn insert_grant(
        &self,
        channel: &str,
        user_id: &UserId,
        granted_by: &UserId,
    ) -> Result<(ChannelGrant, bool), sqlx::Error> {
        let inserted: Option<GrantRow> = sqlx::query_as(
            "insert into channel_grants (channel, user_id, granted_by) values ($1, $2, $3)
             on conflict (channel, user_id) do nothing
             returning channel, user_id, created_at",
        )
        .bind(channel)
        .bind(user_id)
        .bind(granted_by)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok((row.into(), true));
        }
        // It existed (grants are only deleted by DELETE, which a caller racing its own
        // POST can lose to: then the row is gone and the grant counts as new).
        let existing: Option<GrantRow> = sqlx::query_as(
            "select channel, user_id, created_at from channel_grants
             where channel = $1 and user_id = $2",
        )
        .bind(channel)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        match existing {
            Some(row) => Ok((row.into(), false)),
            None => Box::pin(self.insert_grant(channel, user_id, granted_by)).await,
        }
    }

    /// Removes a grant; `false` when there was none.
    pub async fn delete_grant(&self, channel: &str, user_id: &UserId) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("delete from channel_grants where channel = $1 and user_id = $2")
            .bind(channel)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether `user_id` holds a grant for `channel`.
    pub async fn has_grant(&self, channel: &str, user_id: &UserId) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "select exists (select 1 from channel_grants where channel = $1 and user_id = $2)",
        )
        .bind(channel)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await
    }

    /// The restaurant and customer of an order (deleted orders included: their customer
    /// may still follow them).
    pub async fn find_order_parties(&self, id: Uuid) -> Result<Option<OrderParties>, sqlx::Error> {
        let row: Option<(Uuid, Option<UserId>)> =
            sqlx::query_as("select restaurant_id, customer_id from orders where id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(restaurant_id, customer_id)| OrderParties {
            restaurant_id,
            customer_id,
        }))
    }
}
