//! Restaurants as the gateway lists them and REST creates and changes them.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{Filter, Moved, Updated};
use crate::domain::floor::{ListQuery, Page, PatchRestaurant, RestaurantItem};
use crate::domain::orders::CreateRestaurant;
use crate::error::{AppError, AppResult};
use crate::store::Store;

#[derive(FromRow)]
struct RestaurantRow {
    id: Uuid,
    name: String,
    section: String,
    address: Option<String>,
    cuisine: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RestaurantRow> for RestaurantItem {
    fn from(r: RestaurantRow) -> Self {
        RestaurantItem {
            id: r.id,
            name: r.name,
            section: r.section,
            address: r.address,
            cuisine: r.cuisine,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl Store {
    /// Creates a restaurant. A taken id is a client error.
    pub async fn insert_restaurant(&self, body: &CreateRestaurant) -> AppResult<RestaurantItem> {
        let row: Option<RestaurantRow> = sqlx::query_as(
            "insert into restaurants (id, name, section, address, cuisine)
             values ($1, $2, coalesce($3, 'main'), $4, $5)
             on conflict (id) do nothing
             returning id, name, section, address, cuisine, created_at, updated_at",
        )
        .bind(body.id.unwrap_or_else(Uuid::now_v7))
        .bind(&body.name)
        .bind(&body.section)
        .bind(&body.address)
        .bind(&body.cuisine)
        .fetch_optional(&self.pool)
        .await?;
        row.map(RestaurantItem::from)
            .ok_or_else(|| AppError::bad_request("id: a restaurant with this id exists"))
    }

    /// A page of restaurants of `section` (every section for `None`), by name.
    pub async fn list_restaurants(
        &self,
        section: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<RestaurantItem>, sqlx::Error> {
        let filter = Filter {
            who: None,
            section,
            name_column: "name",
            pattern: q.pattern(),
        };
        self.list_page::<RestaurantRow, RestaurantItem>(
            "id, name, section, address, cuisine, created_at, updated_at",
            "restaurants",
            "name, id",
            &filter,
            q,
        )
        .await
    }

    /// The restaurant `id` if it is in `section` (any for `None`).
    pub async fn find_restaurant_item(
        &self,
        id: Uuid,
        section: Option<&str>,
    ) -> Result<Option<RestaurantItem>, sqlx::Error> {
        let row: Option<RestaurantRow> = sqlx::query_as(
            "select id, name, section, address, cuisine, created_at, updated_at
             from restaurants where id = $1 and ($2::text is null or section = $2)",
        )
        .bind(id)
        .bind(section)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RestaurantItem::from))
    }

    /// Applies a PATCH to restaurant `id`; `None` when there is none.
    pub async fn patch_restaurant(
        &self,
        id: Uuid,
        patch: &PatchRestaurant,
    ) -> Result<Option<Updated<RestaurantItem>>, sqlx::Error> {
        let row: Option<Moved<RestaurantRow>> = sqlx::query_as(
            "with old as (select id, section from restaurants where id = $1 for update)
             update restaurants r set
                name = coalesce($2, r.name),
                section = coalesce($3, r.section),
                address = case when $4 then $5 else r.address end,
                cuisine = case when $6 then $7 else r.cuisine end,
                updated_at = now()
             from old where r.id = old.id
             returning r.id, r.name, r.section, r.address, r.cuisine, r.created_at,
                       r.updated_at, old.section as section_before",
        )
        .bind(id)
        .bind(&patch.name)
        .bind(&patch.section)
        .bind(patch.address.is_some())
        .bind(patch.address.clone().flatten())
        .bind(patch.cuisine.is_some())
        .bind(patch.cuisine.clone().flatten())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Moved::into_updated))
    }
}
