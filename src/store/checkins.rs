//! Event check-ins (`POST`/`GET /api/sessions/:sessionId/checkins`).

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use crate::domain::checkins::{Checkin, CreateCheckin};

#[derive(sqlx::FromRow)]
struct CheckinRow {
    id: Uuid,
    session_id: Uuid,
    user_id: UserId,
    user_name: String,
    profile_url: Option<String>,
    success: bool,
    message: String,
    checkin_time: DateTime<Utc>,
}

impl From<CheckinRow> for Checkin {
    fn from(row: CheckinRow) -> Self {
        Checkin {
            id: row.id,
            session_id: row.session_id,
            user_id: row.user_id,
            user_name: row.user_name,
            profile_url: row.profile_url,
            success: row.success,
            message: row.message,
            checkin_time: row.checkin_time,
        }
    }
}

impl Store {
    /// Stores a check-in of `session_id`, stamped now by the database.
    pub async fn insert_checkin(
        &self,
        session_id: Uuid,
        checkin: &CreateCheckin,
    ) -> Result<Checkin, sqlx::Error> {
        let row: CheckinRow = sqlx::query_as(
            "insert into checkins (id, session_id, user_id, user_name, profile_url, success, message)
             values ($1, $2, $3, $4, $5, $6, $7)
             returning id, session_id, user_id, user_name, profile_url, success, message, checkin_time",
        )
        .bind(Uuid::now_v7())
        .bind(session_id)
        .bind(&checkin.user_id)
        .bind(&checkin.user_name)
        .bind(&checkin.profile_url)
        .bind(checkin.success)
        .bind(&checkin.message)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// The newest `limit` check-ins of `session_id`, newest first.
    pub async fn list_checkins(
        &self,
        session_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Checkin>, sqlx::Error> {
        let rows: Vec<CheckinRow> = sqlx::query_as(
            "select id, session_id, user_id, user_name, profile_url, success, message, checkin_time
             from checkins where session_id = $1
             order by checkin_time desc, id desc limit $2",
        )
        .bind(session_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Checkin::from).collect())
    }
}
