//! Reservations: lists, reads and writes, each status change checked in SQL.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{Filter, Moved, Updated, Visibility, table_reference};
use crate::domain::floor::{
    CreateReservation, ListQuery, Page, PatchReservation, Reservation, ReservationStatus,
};
use crate::error::{AppError, AppResult};
use crate::store::Store;

#[derive(FromRow)]
pub(super) struct ReservationRow {
    id: Uuid,
    restaurant_id: Uuid,
    section: String,
    table_id: Option<String>,
    guest_name: String,
    party_size: i32,
    starts_at: DateTime<Utc>,
    status: String,
    notes: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ReservationRow> for Reservation {
    fn from(r: ReservationRow) -> Self {
        Reservation {
            id: r.id,
            restaurant_id: r.restaurant_id,
            section: r.section,
            table_id: r.table_id,
            guest_name: r.guest_name,
            party_size: r.party_size,
            starts_at: r.starts_at,
            status: ReservationStatus::from_db(&r.status),
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl Store {
    /// A page of the reservations `who` may see in `section` (every section for
    /// `None`), by time.
    pub async fn list_reservations(
        &self,
        who: &Visibility,
        section: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Reservation>, sqlx::Error> {
        let filter = Filter {
            who: Some(who),
            section,
            name_column: "guest_name",
            pattern: q.pattern(),
        };
        self.list_page::<ReservationRow, Reservation>(
            "id, restaurant_id, section, table_id, guest_name, party_size, starts_at, status,
             notes, created_at, updated_at",
            "reservations",
            "starts_at, id",
            &filter,
            q,
        )
        .await
    }

    /// The reservation `id`, whoever may see it (REST authorizes against its
    /// restaurant).
    pub async fn find_reservation(&self, id: Uuid) -> Result<Option<Reservation>, sqlx::Error> {
        let row: Option<ReservationRow> = sqlx::query_as(
            "select id, restaurant_id, section, table_id, guest_name, party_size, starts_at,
                    status, notes, created_at, updated_at
             from reservations where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Reservation::from))
    }

    /// The reservation `id` if `who` may see it and it is in `section`.
    pub async fn find_visible_reservation(
        &self,
        who: &Visibility,
        section: Option<&str>,
        id: Uuid,
    ) -> Result<Option<Reservation>, sqlx::Error> {
        let row: Option<ReservationRow> = sqlx::query_as(
            "select id, restaurant_id, section, table_id, guest_name, party_size, starts_at,
                    status, notes, created_at, updated_at
             from reservations
             where id = $1 and ($2 or restaurant_id = any($3))
               and ($4::text is null or section = $4)",
        )
        .bind(id)
        .bind(who.anywhere)
        .bind(&who.restaurants)
        .bind(section)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Reservation::from))
    }

    /// Books a reservation at restaurant `restaurant_id` (which exists). Its section is
    /// the body's, else its table's, else the restaurant's.
    pub async fn insert_reservation(
        &self,
        restaurant_id: Uuid,
        body: &CreateReservation,
    ) -> AppResult<Reservation> {
        let row: Option<ReservationRow> = sqlx::query_as(
            "insert into reservations
                (id, restaurant_id, section, table_id, guest_name, party_size, starts_at, status, notes)
             select $1, r.id, coalesce($3, t.section, r.section), $4, $5, $6, $7, $8, $9
             from restaurants r
             left join restaurant_tables t on t.restaurant_id = r.id and t.id = $4
             where r.id = $2
             returning id, restaurant_id, section, table_id, guest_name, party_size, starts_at,
                       status, notes, created_at, updated_at",
        )
        .bind(Uuid::now_v7())
        .bind(restaurant_id)
        .bind(&body.section)
        .bind(&body.table_id)
        .bind(&body.guest_name)
        .bind(body.party_size)
        .bind(body.starts_at)
        .bind(body.status.unwrap_or(ReservationStatus::Booked).as_str())
        .bind(&body.notes)
        .fetch_optional(&self.pool)
        .await
        .map_err(table_reference)?;
        row.map(Reservation::from)
            .ok_or_else(|| AppError::not_found("restaurant not found"))
    }

    /// Applies a PATCH to reservation `id`; `None` when there is none.
    pub async fn patch_reservation(
        &self,
        id: Uuid,
        patch: &PatchReservation,
    ) -> AppResult<Option<Updated<Reservation>>> {
        let row: Option<Moved<ReservationRow>> = sqlx::query_as(
            "with old as (select id, section from reservations where id = $1 for update)
             update reservations r set
                guest_name = coalesce($2, r.guest_name),
                party_size = coalesce($3, r.party_size),
                starts_at = coalesce($4, r.starts_at),
                table_id = case when $5 then $6 else r.table_id end,
                section = coalesce($7, r.section),
                status = coalesce($8, r.status),
                notes = case when $9 then $10 else r.notes end,
                updated_at = now()
             from old where r.id = old.id
             returning r.id, r.restaurant_id, r.section, r.table_id, r.guest_name,
                       r.party_size, r.starts_at, r.status, r.notes, r.created_at,
                       r.updated_at, old.section as section_before",
        )
        .bind(id)
        .bind(&patch.guest_name)
        .bind(patch.party_size)
        .bind(patch.starts_at)
        .bind(patch.table_id.is_some())
        .bind(patch.table_id.clone().flatten())
        .bind(&patch.section)
        .bind(patch.status.map(ReservationStatus::as_str))
        .bind(patch.notes.is_some())
        .bind(patch.notes.clone().flatten())
        .fetch_optional(&self.pool)
        .await
        .map_err(table_reference)?;
        Ok(row.map(Moved::into_updated))
    }

    /// Deletes reservation `id`; `None` when there is none.
    pub async fn delete_reservation(&self, id: Uuid) -> Result<Option<Reservation>, sqlx::Error> {
        let row: Option<ReservationRow> = sqlx::query_as(
            "delete from reservations where id = $1
             returning id, restaurant_id, section, table_id, guest_name, party_size, starts_at,
                       status, notes, created_at, updated_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Reservation::from))
    }
}
