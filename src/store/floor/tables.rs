//! Restaurant tables: lists, reads, writes, and freeing a table when it is completed.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::reservations::ReservationRow;
use super::{DeletedTable, Filter, Moved, Updated, Visibility};
use crate::domain::floor::{
    CreateTable, ListQuery, Page, PatchTable, Reservation, Table, TableStatus,
};
use crate::error::{AppError, AppResult};
use crate::store::Store;

#[derive(FromRow)]
struct TableRow {
    id: String,
    restaurant_id: Uuid,
    section: String,
    name: String,
    seats: i32,
    status: String,
    updated_at: DateTime<Utc>,
}

impl From<TableRow> for Table {
    fn from(t: TableRow) -> Self {
        Table {
            id: t.id,
            restaurant_id: t.restaurant_id,
            section: t.section,
            name: t.name,
            seats: t.seats,
            status: TableStatus::from_db(&t.status),
            updated_at: t.updated_at,
        }
    }
}

impl Store {
    /// A page of the tables `who` may see in `section` (every section for `None`), by
    /// name.
    pub async fn list_tables(
        &self,
        who: &Visibility,
        section: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Table>, sqlx::Error> {
        let filter = Filter {
            who: Some(who),
            section,
            name_column: "name",
            pattern: q.pattern(),
        };
        self.list_page::<TableRow, Table>(
            "id, restaurant_id, section, name, seats, status, updated_at",
            "restaurant_tables",
            "name, restaurant_id, id",
            &filter,
            q,
        )
        .await
    }

    /// The table `id` that `who` may see in `section`, of `restaurant` when given (ids
    /// are unique per restaurant only; without it the first restaurant's, by id).
    pub async fn find_table(
        &self,
        who: &Visibility,
        section: Option<&str>,
        id: &str,
        restaurant: Option<Uuid>,
    ) -> Result<Option<Table>, sqlx::Error> {
        let row: Option<TableRow> = sqlx::query_as(
            "select id, restaurant_id, section, name, seats, status, updated_at
             from restaurant_tables
             where id = $1 and ($2::uuid is null or restaurant_id = $2)
               and ($3 or restaurant_id = any($4))
               and ($5::text is null or section = $5)
             order by restaurant_id limit 1",
        )
        .bind(id)
        .bind(restaurant)
        .bind(who.anywhere)
        .bind(&who.restaurants)
        .bind(section)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Table::from))
    }

    /// Adds a table to restaurant `restaurant_id` (which exists). A taken id is 409.
    pub async fn insert_table(&self, restaurant_id: Uuid, body: &CreateTable) -> AppResult<Table> {
        let id = body
            .id
            .clone()
            .unwrap_or_else(|| format!("table-{}", Uuid::now_v7().simple()));
        let row: Option<TableRow> = sqlx::query_as(
            "insert into restaurant_tables (restaurant_id, id, section, name, seats, status)
             select r.id, $2, coalesce($3, r.section), $4, $5, $6
             from restaurants r where r.id = $1
             on conflict on constraint restaurant_tables_pkey do nothing
             returning id, restaurant_id, section, name, seats, status, updated_at",
        )
        .bind(restaurant_id)
        .bind(&id)
        .bind(&body.section)
        .bind(&body.name)
        .bind(body.seats)
        .bind(body.status.unwrap_or(TableStatus::Available).as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Table::from).ok_or_else(|| {
            AppError::Conflict("id: this restaurant already has a table with this id".into())
        })
    }

    /// Applies a PATCH to a table; `None` when the restaurant has no such table.
    pub async fn patch_table(
        &self,
        restaurant_id: Uuid,
        id: &str,
        patch: &PatchTable,
    ) -> Result<Option<Updated<Table>>, sqlx::Error> {
        let row: Option<Moved<TableRow>> = sqlx::query_as(
            "with old as (
                select restaurant_id, id, section from restaurant_tables
                where restaurant_id = $1 and id = $2 for update
             )
             update restaurant_tables t set
                name = coalesce($3, t.name),
                section = coalesce($4, t.section),
                seats = coalesce($5, t.seats),
                status = coalesce($6, t.status),
                updated_at = now()
             from old where t.restaurant_id = old.restaurant_id and t.id = old.id
             returning t.id, t.restaurant_id, t.section, t.name, t.seats, t.status,
                       t.updated_at, old.section as section_before",
        )
        .bind(restaurant_id)
        .bind(id)
        .bind(&patch.name)
        .bind(&patch.section)
        .bind(patch.seats)
        .bind(patch.status.map(TableStatus::as_str))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Moved::into_updated))
    }

    /// Deletes a table, first taking it off the reservations that held it; `None` when
    /// the restaurant has no such table.
    pub async fn delete_table(
        &self,
        restaurant_id: Uuid,
        id: &str,
    ) -> Result<Option<DeletedTable>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let released: Vec<ReservationRow> = sqlx::query_as(
            "update reservations set table_id = null, updated_at = now()
             where restaurant_id = $1 and table_id = $2
             returning id, restaurant_id, section, table_id, guest_name, party_size,
                       starts_at, status, notes, created_at, updated_at",
        )
        .bind(restaurant_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let table: Option<TableRow> = sqlx::query_as(
            "delete from restaurant_tables where restaurant_id = $1 and id = $2
             returning id, restaurant_id, section, name, seats, status, updated_at",
        )
        .bind(restaurant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(table) = table else {
            // Nothing to delete, so nothing was released either.
            tx.rollback().await?;
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(DeletedTable {
            table: table.into(),
            released: released.into_iter().map(Reservation::from).collect(),
        }))
    }

    /// `table:complete`'s side on the floor: the restaurant's table whose id is
    /// `number` (else every table named `number`) becomes `available`. Returns the
    /// tables that changed (none already available is touched).
    pub async fn free_table(
        &self,
        restaurant_id: Uuid,
        number: &str,
    ) -> Result<Vec<Table>, sqlx::Error> {
        let rows: Vec<TableRow> = sqlx::query_as(
            "update restaurant_tables set status = 'available', updated_at = now()
             where restaurant_id = $1 and status <> 'available'
               and (id = $2 or (name = $2 and not exists (
                    select 1 from restaurant_tables where restaurant_id = $1 and id = $2)))
             returning id, restaurant_id, section, name, seats, status, updated_at",
        )
        .bind(restaurant_id)
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Table::from).collect())
    }
}
