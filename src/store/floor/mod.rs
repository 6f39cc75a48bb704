//! Restaurants, restaurant tables and reservations as the entity gateway lists and
//! reads them, and as REST changes them (contract §7.4, §7.5).
//!
//! Every write returns what the gateway announces: the item after the change and, for
//! an update, the section it was in before (connections of that section are told too).
//! Reads take the caller's visibility ([`Visibility`]) and section into the `where`
//! clause, so a list never counts or returns what the caller may not see.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, Postgres, QueryBuilder};
use uuid::Uuid;

mod reservations;
mod restaurants;
mod tables;

use super::Store;
use crate::domain::floor::{ListQuery, Page, Reservation, Table};
use crate::error::AppError;

/// Which restaurants' tables and reservations a reader may see.
#[derive(Debug, Clone)]
pub struct Visibility {
    /// Admin and service: every restaurant.
    pub anywhere: bool,
    /// Otherwise these (empty: none).
    pub restaurants: Vec<Uuid>,
}

/// An item after an update, and the section it was in before.
#[derive(Debug)]
pub struct Updated<T> {
    /// The item as it is now.
    pub item: T,
    /// Its section before the update (equal to the item's when it did not move).
    pub section_before: String,
}

/// A deleted table, and the reservations that held it (now without a table).
#[derive(Debug)]
pub struct DeletedTable {
    /// The table as it was.
    pub table: Table,
    /// Reservations whose `table_id` was cleared.
    pub released: Vec<Reservation>,
}

/// What a gateway list reads: the rows its reader may see, in its section, whose name
/// contains its search.
///
/// Each list is built with only the conditions that apply (rather than one statement
/// with `($1 or restaurant_id = any($2)) and ($3 is null or section = $3) …`) and runs
/// as an unnamed statement, planned with its values every time. Measured on PostgreSQL
/// 15 with 100,000 reservations in one restaurant:
/// - `restaurant_id = any('{r}')` cannot give rows in `starts_at` order from the
///   `(restaurant_id, starts_at, id)` index on PostgreSQL 15, so a first page read
///   and sorted the whole restaurant: 30–40 ms, a deep page 80 ms (its sort spilled to
///   disk). `restaurant_id = $1` reads 20 index entries: under 0.1 ms. (A token of
///   several restaurants keeps `any`: its lists without a search read and sort every
///   row of those restaurants.)
/// - A prepared statement switches to a generic plan after five runs, which cannot
///   know the search: it combined the trigram index with the restaurant's 100,000 index
///   entries to count the matches: 7.7 ms where the plan made for the search took
///   1.6 ms, and 69 ms for a two-letter search (no trigram to look up: it read the
///   whole trigram index) where one scan of the table takes 28 ms.
struct Filter<'a> {
    /// Who reads (`None`: restaurants, which every reader sees).
    who: Option<&'a Visibility>,
    /// The section (`None`: every section).
    section: Option<&'a str>,
    /// The column `search` looks in; a trigram index (migration 0021) serves `ilike`
    /// on it.
    name_column: &'static str,
    /// [`ListQuery::pattern`].
    pattern: Option<String>,
}

impl Filter<'_> {
    /// Appends the `where` clause.
    fn push_where(&self, sql: &mut QueryBuilder<Postgres>) {
        sql.push(" where true");
        if let Some(who) = self.who.filter(|w| !w.anywhere) {
            match who.restaurants.as_slice() {
                [one] => sql.push(" and restaurant_id = ").push_bind(*one),
                many => sql
                    .push(" and restaurant_id = any(")
                    .push_bind(many.to_vec())
                    .push(")"),
            };
        }
        if let Some(section) = self.section {
            sql.push(" and section = ").push_bind(section);
        }
        if let Some(pattern) = &self.pattern {
            sql.push(format_args!(" and {} ilike ", self.name_column))
                .push_bind(pattern.as_str());
        }
    }
}

/// A row of a searched list and the number of matches (`count(*) over ()`).
#[derive(FromRow)]
struct Counted<Row> {
    #[sqlx(flatten)]
    row: Row,
    total: i64,
}

/// A page's `total` when the page itself shows it: one that is not full holds the last
/// match, so the total is the items before it plus its own (not so for an empty page
/// past the end). A section of fewer items than a page needs no count.
fn total_from_page(q: &ListQuery, len: usize) -> Option<i64> {
    let len = i64::try_from(len).ok()?;
    (len < q.limit() && (len > 0 || q.offset() == 0)).then(|| q.offset().saturating_add(len))
}

/// A row and the section it had before an update (`section_before`).
#[derive(FromRow)]
struct Moved<Row> {
    #[sqlx(flatten)]
    row: Row,
    section_before: String,
}

impl<Row> Moved<Row> {
    fn into_updated<T: From<Row>>(self) -> Updated<T> {
        Updated {
            item: self.row.into(),
            section_before: self.section_before,
        }
    }
}

/// A reservation written for a table the restaurant does not have (or that is being
/// deleted at that moment) is the client's mistake.
fn table_reference(e: sqlx::Error) -> AppError {
    match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("reservations_table_fkey") => {
            AppError::bad_request("table_id: no such table in this restaurant")
        }
        _ => AppError::Database(e),
    }
}

impl Store {
    /// A page of `columns` of `table` under `filter`, in `order`, and the count of every
    /// match.
    ///
    /// Without a search: the page, read in order from the btree of the filter, then the
    /// count unless the page shows it ([`total_from_page`]). With one: every match first
    /// (`materialized`, so from the trigram index, or one scan when the search is too
    /// short for it), then the page and the count of that set. Left to pick, the planner
    /// walks the name-ordered btree hoping for 20 early matches: names a search matches
    /// sort together (`Garden 1…` after every `Alcove`, `Bar`, `Corner`), and it read
    /// 62,500 tables to find them (24 ms where the set of 1,389 matches takes 4 ms).
    async fn list_page<Row, T>(
        &self,
        columns: &str,
        table: &str,
        order: &str,
        filter: &Filter<'_>,
        q: &ListQuery,
    ) -> Result<Page<T>, sqlx::Error>
    where
        Row: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        T: From<Row>,
    {
        let (items, total) = if filter.pattern.is_some() {
            let mut sql = QueryBuilder::new(format!(
                "with matches as materialized (select {columns} from {table}"
            ));
            filter.push_where(&mut sql);
            sql.push(format_args!(
                ") select *, count(*) over () as total from matches order by {order} limit "
            ))
            .push_bind(q.limit())
            .push(" offset ")
            .push_bind(q.offset());
            let rows: Vec<Counted<Row>> = sql
                .build_query_as()
                .persistent(false)
                .fetch_all(&self.pool)
                .await?;
            let total = match rows.first() {
                Some(row) => Some(row.total),
                None => (q.offset() == 0).then_some(0),
            };
            let items: Vec<T> = rows.into_iter().map(|r| r.row.into()).collect();
            (items, total)
        } else {
            let mut sql = QueryBuilder::new(format!("select {columns} from {table}"));
            filter.push_where(&mut sql);
            sql.push(format_args!(" order by {order} limit "))
                .push_bind(q.limit())
                .push(" offset ")
                .push_bind(q.offset());
            let rows: Vec<Row> = sql
                .build_query_as()
                .persistent(false)
                .fetch_all(&self.pool)
                .await?;
            let total = total_from_page(q, rows.len());
            (rows.into_iter().map(T::from).collect(), total)
        };
        let total = match total {
            Some(total) => total,
            // A page past the end says nothing of how many there are.
            None => {
                let mut count = QueryBuilder::new(format!("select count(*) from {table}"));
                filter.push_where(&mut count);
                count
                    .build_query_scalar()
                    .persistent(false)
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(Page {
            items,
            page: q.page(),
            limit: q.limit(),
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(page: i64, limit: i64) -> ListQuery {
        ListQuery {
            page: Some(page),
            limit: Some(limit),
            search: None,
        }
    }

    #[test]
    fn only_a_page_that_is_not_full_and_not_past_the_end_shows_the_total() {
        assert_eq!(total_from_page(&query(1, 20), 7), Some(7));
        assert_eq!(total_from_page(&query(1, 20), 0), Some(0));
        assert_eq!(total_from_page(&query(3, 20), 5), Some(45));
        // Full: there may be more. Empty past the first page: how many is unknown.
        assert_eq!(total_from_page(&query(1, 20), 20), None);
        assert_eq!(total_from_page(&query(4, 20), 0), None);
        assert_eq!(total_from_page(&query(i64::MAX, 100), 0), None);
    }

    #[test]
    fn a_list_has_only_the_conditions_that_apply() {
        let sql = |who: Option<&Visibility>, section, pattern: Option<&str>| {
            let filter = Filter {
                who,
                section,
                name_column: "guest_name",
                pattern: pattern.map(str::to_owned),
            };
            let mut sql = QueryBuilder::new("select 1 from reservations");
            filter.push_where(&mut sql);
            sql.into_string()
        };
        let anywhere = Visibility {
            anywhere: true,
            restaurants: vec![Uuid::nil()],
        };
        let one = Visibility {
            anywhere: false,
            restaurants: vec![Uuid::nil()],
        };
        let two = Visibility {
            anywhere: false,
            restaurants: vec![Uuid::nil(), Uuid::max()],
        };
        assert_eq!(
            sql(Some(&anywhere), None, None),
            "select 1 from reservations where true"
        );
        assert_eq!(
            sql(None, Some("patio"), None),
            "select 1 from reservations where true and section = $1"
        );
        // One restaurant is an equality: its index gives the rows in order.
        assert_eq!(
            sql(Some(&one), None, Some("%eve%")),
            "select 1 from reservations where true and restaurant_id = $1 and guest_name ilike $2"
        );
        assert_eq!(
            sql(Some(&two), Some("patio"), None),
            "select 1 from reservations where true and restaurant_id = any($1) and section = $2"
        );
    }
}
