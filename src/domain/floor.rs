//! The floor of a restaurant as seed 000's entity gateway shows it (contract §7.4, §7.5):
//! restaurants with their section, address and cuisine, restaurant tables, and
//! reservations; the REST bodies that change them and the gateway commands that read
//! them. Pure shapes and rules: `store::floor` reads and writes them.
//!
//! One file past 400 lines on purpose: the three entities share the list query, the
//! page shape and the field checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::input::{trimmed, trimmed_opt};

/// The gateway's word for every section; never a stored section.
pub const ALL_SECTIONS: &str = "all";

/// Default page size of a gateway list.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest page of a gateway list.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Longest `search` (characters, after trimming): a name is at most 200.
pub const MAX_SEARCH: usize = 200;

/// Whether `s` is a section as the gateway path and the database spell it: 1–64
/// characters of `[A-Za-z0-9_.-]`.
pub fn is_section(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `validator` rule for a stored section.
pub fn section_rule(s: &str) -> Result<(), ValidationError> {
    if !is_section(s) {
        Err(ValidationError::new("section")
            .with_message("must be 1 to 64 characters of A-Z, a-z, 0-9, _ . -".into()))
    } else if s == ALL_SECTIONS {
        Err(ValidationError::new("section")
            .with_message("\"all\" means every section and cannot be stored".into()))
    } else {
        Ok(())
    }
}

/// Whether `s` is a table id: 1–64 characters of `[A-Za-z0-9_.:-]` (`table-17`).
pub fn is_table_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn table_id_rule(s: &str) -> Result<(), ValidationError> {
    if is_table_id(s) {
        Ok(())
    } else {
        Err(ValidationError::new("table_id")
            .with_message("must be 1 to 64 characters of A-Z, a-z, 0-9, _ . : -".into()))
    }
}

/// A PATCH field that may be cleared: absent is `None` (through `#[serde(default)]`),
/// `null` or blank `Some(None)`, a value `Some(Some(trimmed))`.
fn patch_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    trimmed_opt(d).map(Some)
}

/// A PATCH field that may not be cleared: `null` is refused rather than ignored.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    trimmed(d).map(Some)
}

/// A restaurant as the gateway and REST show it.
#[derive(Debug, Clone, Serialize)]
pub struct RestaurantItem {
    /// Id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The section it is listed in.
    pub section: String,
    /// Street address, if known.
    pub address: Option<String>,
    /// Kind of food, if known.
    pub cuisine: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// `PATCH /api/restaurants/:id`: each field absent is unchanged.
#[derive(Debug, Deserialize, Validate)]
pub struct PatchRestaurant {
    /// 1..=200 characters.
    #[serde(default, deserialize_with = "present")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub name: Option<String>,
    /// A section (not `all`).
    #[serde(default, deserialize_with = "present")]
    #[validate(custom(function = "section_rule"))]
    pub section: Option<String>,
    /// At most 500 characters; `null` or blank clears it.
    #[serde(default, deserialize_with = "patch_opt")]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    pub address: Option<Option<String>>,
    /// At most 100 characters; `null` or blank clears it.
    #[serde(default, deserialize_with = "patch_opt")]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    pub cuisine: Option<Option<String>>,
}

/// A table's state on the floor plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// Free for the next guests.
    Available,
    /// Guests are seated.
    Occupied,
    /// Held for a reservation.
    Reserved,
    /// Being cleared.
    Cleaning,
}

impl TableStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Available => "available",
            TableStatus::Occupied => "occupied",
            TableStatus::Reserved => "reserved",
            TableStatus::Cleaning => "cleaning",
        }
    }

    /// Reads the database spelling (checked by a constraint).
    pub fn from_db(s: &str) -> TableStatus {
        match s {
            "occupied" => TableStatus::Occupied,
            "reserved" => TableStatus::Reserved,
            "cleaning" => TableStatus::Cleaning,
            _ => TableStatus::Available,
        }
    }
}

/// A restaurant table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// The backend's id (`table-17`), unique within the restaurant.
    pub id: String,
    /// Its restaurant.
    pub restaurant_id: Uuid,
    /// Its section of the floor.
    pub section: String,
    /// What staff call it ("Window 2").
    pub name: String,
    /// Seats.
    pub seats: i32,
    /// State.
    pub status: TableStatus,
    /// Last change.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/restaurants/:id/tables`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateTable {
    /// The backend's id; made by the server (`table-<hex>`) when absent.
    #[serde(default)]
    #[validate(custom(function = "table_id_rule"))]
    pub id: Option<String>,
    /// 1..=100 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    pub name: String,
    /// A section (not `all`); the restaurant's own when absent.
    #[serde(default)]
    #[validate(custom(function = "section_rule"))]
    pub section: Option<String>,
    /// 1..=1000.
    #[validate(range(min = 1, max = 1000, message = "must be 1 to 1000"))]
    pub seats: i32,
    /// `available` when absent.
    #[serde(default)]
    pub status: Option<TableStatus>,
}

/// `PATCH /api/restaurants/:id/tables/:tableId`: each field absent is unchanged.
#[derive(Debug, Deserialize, Validate)]
pub struct PatchTable {
    /// 1..=100 characters.
    #[serde(default, deserialize_with = "present")]
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    pub name: Option<String>,
    /// A section (not `all`).
    #[serde(default, deserialize_with = "present")]
    #[validate(custom(function = "section_rule"))]
    pub section: Option<String>,
    /// 1..=1000.
    #[serde(default)]
    #[validate(range(min = 1, max = 1000, message = "must be 1 to 1000"))]
    pub seats: Option<i32>,
    /// New state.
    #[serde(default)]
    pub status: Option<TableStatus>,
}

/// A reservation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Expected.
    Booked,
    /// The party is at its table.
    Seated,
    /// The party left.
    Completed,
    /// Called off.
    Cancelled,
    /// The party did not come.
    NoShow,
}

impl ReservationStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Booked => "booked",
            ReservationStatus::Seated => "seated",
            ReservationStatus::Completed => "completed",
            ReservationStatus::Cancelled => "cancelled",
            ReservationStatus::NoShow => "no_show",
        }
    }

    /// Reads the database spelling (checked by a constraint).
    pub fn from_db(s: &str) -> ReservationStatus {
        match s {
            "seated" => ReservationStatus::Seated,
            "completed" => ReservationStatus::Completed,
            "cancelled" => ReservationStatus::Cancelled,
            "no_show" => ReservationStatus::NoShow,
            _ => ReservationStatus::Booked,
        }
    }
}

/// A reservation.
#[derive(Debug, Clone, Serialize)]
pub struct Reservation {
    /// Id.
    pub id: Uuid,
    /// Its restaurant.
    pub restaurant_id: Uuid,
    /// Its section of the floor.
    pub section: String,
    /// The table it holds, if one is assigned.
    pub table_id: Option<String>,
    /// Who booked.
    pub guest_name: String,
    /// How many guests.
    pub party_size: i32,
    /// When they come.
    #[serde(serialize_with = "super::time::serialize")]
    pub starts_at: DateTime<Utc>,
    /// State.
    pub status: ReservationStatus,
    /// Free text for the host.
    pub notes: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/restaurants/:id/reservations`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateReservation {
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub guest_name: String,
    /// 1..=1000.
    #[validate(range(min = 1, max = 1000, message = "must be 1 to 1000"))]
    pub party_size: i32,
    /// RFC 3339.
    pub starts_at: DateTime<Utc>,
    /// A table of the restaurant.
    #[serde(default)]
    #[validate(custom(function = "table_id_rule"))]
    pub table_id: Option<String>,
    /// A section (not `all`); the table's when absent, else the restaurant's.
    #[serde(default)]
    #[validate(custom(function = "section_rule"))]
    pub section: Option<String>,
    /// `booked` when absent.
    #[serde(default)]
    pub status: Option<ReservationStatus>,
    /// At most 2000 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    pub notes: Option<String>,
}

/// `PATCH /api/reservations/:id`: each field absent is unchanged.
#[derive(Debug, Deserialize, Validate)]
pub struct PatchReservation {
    /// 1..=200 characters.
    #[serde(default, deserialize_with = "present")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub guest_name: Option<String>,
    /// 1..=1000.
    #[serde(default)]
    #[validate(range(min = 1, max = 1000, message = "must be 1 to 1000"))]
    pub party_size: Option<i32>,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// A table of the restaurant; `null` clears it.
    #[serde(default, deserialize_with = "patch_opt")]
    #[validate(custom(function = "table_id_rule"))]
    pub table_id: Option<Option<String>>,
    /// A section (not `all`).
    #[serde(default, deserialize_with = "present")]
    #[validate(custom(function = "section_rule"))]
    pub section: Option<String>,
    /// New state.
    #[serde(default)]
    pub status: Option<ReservationStatus>,
    /// At most 2000 characters; `null` or blank clears them.
    #[serde(default, deserialize_with = "patch_opt")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    pub notes: Option<Option<String>>,
}

fn page_rule(page: i64) -> Result<(), ValidationError> {
    if page >= 1 {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be at least 1".into()))
    }
}

fn limit_rule(limit: i64) -> Result<(), ValidationError> {
    if (1..=MAX_PAGE_SIZE).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be between 1 and 100".into()))
    }
}

fn search_rule(search: &str) -> Result<(), ValidationError> {
    if search.chars().count() <= MAX_SEARCH {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("must be at most 200 characters".into()))
    }
}

/// A gateway `list` command's payload: `{page ≥ 1 = 1, limit 1..=100 = 20, search?}`.
#[derive(Debug, Default, Deserialize, Validate)]
pub struct ListQuery {
    /// 1-based page.
    #[serde(default)]
    #[validate(custom(function = "page_rule"))]
    pub page: Option<i64>,
    /// Items per page.
    #[serde(default)]
    #[validate(custom(function = "limit_rule"))]
    pub limit: Option<i64>,
    /// Case-insensitive part of the name (reservations: the guest's name); blank is none.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(custom(function = "search_rule"))]
    pub search: Option<String>,
}

impl ListQuery {
    /// The page asked for, or the first.
    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1)
    }

    /// The page size asked for, or the default.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// Rows to skip. Saturating: page × limit past `i64` is simply past the end.
    pub fn offset(&self) -> i64 {
        (self.page() - 1).saturating_mul(self.limit())
    }

    /// The `ILIKE` pattern for `search`: the text with `%`, `_` and `\` escaped (so a
    /// guest called `100%_Bob` is searched for literally), inside `%…%`.
    pub fn pattern(&self) -> Option<String> {
        self.search.as_deref().map(like_contains)
    }
}

/// `%text%` with the `LIKE` wildcards of `text` escaped by `\` (PostgreSQL's default
/// escape character).
pub fn like_contains(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A gateway `get` command's payload: `{id, restaurant_id?}` (the restaurant only
/// narrows a table's id, which is unique per restaurant only).
#[derive(Debug, Deserialize, Validate)]
pub struct GetQuery {
    /// The item's id (a string).
    pub id: String,
    /// For tables: the restaurant among whose tables to look.
    #[serde(default)]
    pub restaurant_id: Option<Uuid>,
}

/// A page of a gateway list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Which page.
    pub page: i64,
    /// Its size.
    pub limit: i64,
    /// How many items match in all.
    pub total: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::decode;
    use serde_json::json;

    #[test]
    fn sections_follow_the_path_rule() {
        for good in ["main-hall", "a", "Patio_2.east", &"x".repeat(64)] {
            assert!(is_section(good), "{good}");
        }
        for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!is_section(bad), "{bad}");
        }
        let e = decode::<PatchTable>(json!({ "section": "all" })).unwrap_err();
        assert!(e.to_string().starts_with("section:"), "{e}");
    }

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(like_contains("bob"), "%bob%");
        assert_eq!(like_contains("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }

    #[test]
    fn list_paging_defaults_and_bounds() {
        let q: ListQuery = decode(json!({})).unwrap();
        assert_eq!((q.page(), q.limit(), q.offset()), (1, 20, 0));
        let q: ListQuery = decode(json!({ "page": 3, "limit": 100, "search": "  " })).unwrap();
        assert_eq!((q.offset(), q.pattern()), (200, None));
        for (bad, field) in [
            (json!({ "page": 0 }), "page:"),
            (json!({ "limit": 0 }), "limit:"),
            (json!({ "limit": 101 }), "limit:"),
            (json!({ "page": "1" }), "page:"),
            (json!({ "search": "s".repeat(201) }), "search:"),
            (json!({ "search": 5 }), "search:"),
        ] {
            let e = decode::<ListQuery>(bad).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
        let huge: ListQuery = decode(json!({ "page": i64::MAX, "limit": 100 })).unwrap();
        assert_eq!(huge.offset(), i64::MAX);
    }

    #[test]
    fn a_patch_tells_absent_from_cleared_and_refuses_null_where_it_cannot_clear() {
        let p: PatchReservation = decode(json!({ "table_id": null, "notes": "  " })).unwrap();
        assert_eq!((p.table_id, p.notes), (Some(None), Some(None)));
        let p: PatchReservation = decode(json!({})).unwrap();
        assert_eq!((p.table_id, p.guest_name), (None, None));
        let e = decode::<PatchReservation>(json!({ "guest_name": null })).unwrap_err();
        assert!(e.to_string().starts_with("guest_name:"), "{e}");
        let e = decode::<PatchReservation>(json!({ "party_size": -2 })).unwrap_err();
        assert_eq!(e.to_string(), "party_size: must be 1 to 1000");
        let e = decode::<PatchReservation>(json!({ "status": "eaten" })).unwrap_err();
        assert!(e.to_string().starts_with("status:"), "{e}");
    }

    #[test]
    fn a_table_is_checked_field_by_field() {
        let t: CreateTable =
            decode(json!({ "id": "table-17", "name": " Window ", "seats": 4 })).unwrap();
        assert_eq!((t.name.as_str(), t.status), ("Window", None));
        for (body, field) in [
            (json!({ "id": "a/b", "name": "x", "seats": 1 }), "id:"),
            (json!({ "name": "", "seats": 1 }), "name:"),
            (json!({ "name": "x", "seats": 0 }), "seats:"),
            (json!({ "name": "x" }), "seats: required"),
            (
                json!({ "name": "x", "seats": 2, "status": "broken" }),
                "status:",
            ),
        ] {
            let e = decode::<CreateTable>(body).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
