//! Restaurant orders (contract §6): statuses and their moves, stations, the shapes
//! clients see, and the payloads they send.
//!
//! One file past 400 lines on purpose: the status graph, the payload types and their
//! checks are read together (a payload's check names the moves it allows).

use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::input::{trimmed, trimmed_opt};

/// Where an order is in the kitchen flow. Declared in flow order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, sqlx::Type,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "order_status", rename_all = "snake_case")]
pub enum OrderStatus {
    /// Just placed.
    New,
    /// Waiting for confirmation.
    Pending,
    /// Accepted.
    Confirmed,
    /// Being cooked.
    Preparing,
    /// Ready to serve.
    Ready,
    /// Served and closed (final).
    Completed,
    /// Cancelled (final).
    Cancelled,
}

impl OrderStatus {
    /// Every status but the final ones: what a board shows.
    pub const ACTIVE: [OrderStatus; 5] = [
        OrderStatus::New,
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Preparing,
        OrderStatus::Ready,
    ];

    /// `completed` and `cancelled` end an order.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }

    /// Forward moves (skipping allowed) and cancellation of a non-final order. The same
    /// rule is written in SQL (`store::orders`), where it is enforced atomically.
    pub fn can_move_to(self, to: OrderStatus) -> bool {
        !self.is_final() && (to == OrderStatus::Cancelled || to > self)
    }
}

/// Kitchen stations; each has a room per restaurant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Station {
    /// Hot line.
    Kitchen,
    /// Expediting / pass.
    Expo,
    /// Drinks.
    Bar,
    /// Front of house.
    Pos,
}

impl Station {
    /// Every station.
    pub const ALL: [Station; 4] = [Station::Kitchen, Station::Expo, Station::Bar, Station::Pos];

    /// The spelling used in rooms and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Station::Kitchen => "kitchen",
            Station::Expo => "expo",
            Station::Bar => "bar",
            Station::Pos => "pos",
        }
    }
}

/// How the order is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// At a table.
    DineIn,
    /// Picked up.
    Takeout,
    /// Delivered.
    Delivery,
    /// Ordered online.
    Online,
}

impl OrderType {
    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::DineIn => "dine_in",
            OrderType::Takeout => "takeout",
            OrderType::Delivery => "delivery",
            OrderType::Online => "online",
        }
    }

    /// Reads the database spelling (checked by a constraint).
    pub fn from_db(s: &str) -> OrderType {
        match s {
            "takeout" => OrderType::Takeout,
            "delivery" => OrderType::Delivery,
            "online" => OrderType::Online,
            _ => OrderType::DineIn,
        }
    }
}

/// One line of an order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrderItem {
    /// Item id.
    pub id: Uuid,
    /// Dish name.
    pub name: String,
    /// How many.
    pub quantity: i32,
    /// Which station makes it.
    pub station: Station,
    /// Free text for the cook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// An order as every client sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// Id.
    pub id: Uuid,
    /// Human number printed on the ticket.
    pub order_number: String,
    /// Flow position.
    pub status: OrderStatus,
    /// How it is served.
    #[serde(rename = "type")]
    pub kind: OrderType,
    /// Table, for dine-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_number: Option<String>,
    /// Lines.
    pub items: Vec<OrderItem>,
    /// Amount, a JSON number.
    pub total: f64,
    /// Creation time.
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Owner restaurant.
    pub restaurant_id: Uuid,
}

impl Order {
    /// The distinct stations of its items: the station rooms its events go to.
    pub fn stations(&self) -> Vec<Station> {
        stations_of([self])
    }
}

/// The distinct stations of the items of `orders`, sorted: the station rooms an event
/// about them goes to.
pub fn stations_of<'a>(orders: impl IntoIterator<Item = &'a Order>) -> Vec<Station> {
    let mut s: Vec<Station> = orders
        .into_iter()
        .flat_map(|o| o.items.iter().map(|i| i.station))
        .collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// A string or a number, as clients send ticket and table numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Text(String),
    Int(i64),
    Float(f64),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::Text(s) => s.trim().to_owned(),
            StringOrNumber::Int(n) => n.to_string(),
            StringOrNumber::Float(f) => f.to_string(),
        }
    }
}

/// `order_number` and `table_number` are strings; numbers are accepted and turned into strings.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    StringOrNumber::deserialize(d)
        .map(StringOrNumber::into_string)
        .map_err(|_| serde::de::Error::custom("expected a string or a number"))
}

/// Like [`string_or_number`] for an optional field; empty becomes `None`.
fn opt_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = Option::<StringOrNumber>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a string or a number"))?;
    Ok(raw
        .map(StringOrNumber::into_string)
        .filter(|s| !s.is_empty()))
}

/// A PATCH field that may be cleared: present (even `null`) is `Some`, and within it
/// [`opt_string_or_number`]'s value. Absent stays `None` through `#[serde(default)]`.
fn patch_string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    opt_string_or_number(d).map(Some)
}

fn nonempty_short(s: &str) -> Result<(), ValidationError> {
    let n = s.chars().count();
    if (1..=50).contains(&n) {
        Ok(())
    } else {
        Err(ValidationError::new("length").with_message("must be 1 to 50 characters".into()))
    }
}

fn money(total: f64) -> Result<(), ValidationError> {
    if total.is_finite() && (0.0..=9_999_999_999.0).contains(&total) {
        Ok(())
    } else {
        Err(ValidationError::new("range").with_message("must be a non-negative amount".into()))
    }
}

/// `join:restaurant`: a bare restaurant id string, or `{ restaurantId, batch? }`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct JoinRestaurant {
    /// Restaurant to join.
    pub restaurant_id: Uuid,
    /// Receive `orders:batch_update` instead of single events.
    #[serde(default)]
    pub batch: bool,
}

impl JoinRestaurant {
    /// Reads either form; errors name `restaurantId` like every other payload's do.
    pub fn from_payload(value: serde_json::Value) -> Result<Self, crate::error::AppError> {
        match value {
            serde_json::Value::String(raw) => Uuid::parse_str(raw.trim())
                .map(|restaurant_id| JoinRestaurant {
                    restaurant_id,
                    batch: false,
                })
                .map_err(|e| crate::error::AppError::bad_request(format!("restaurantId: {e}"))),
            other => super::input::decode(other),
        }
    }
}

/// `join:station`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct JoinStation {
    /// Restaurant.
    pub restaurant_id: Uuid,
    /// Station.
    pub station: Station,
}

/// Most orders one `orders:sync` answers (oldest first: the ones the kitchen works on
/// next). A board holds far fewer active orders; the cap bounds the reply (each order
/// may carry 100 items) so one request cannot queue megabytes for one socket. A
/// reply that stops at the cap says `truncated: true`.
pub const MAX_SYNC_ORDERS: i64 = 500;

/// `orders:sync`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct SyncOrders {
    /// Restaurant; without it, the one the socket is on (seed 001's reconnect recipe
    /// sends `orders:sync` with no payload right after `join:restaurant`).
    #[serde(default)]
    pub restaurant_id: Option<Uuid>,
    /// Filter; default: every active status.
    #[serde(default)]
    pub statuses: Option<Vec<OrderStatus>>,
}

/// `GET /api/restaurants/:id/orders?status=&station=`: `orders:sync` over REST (seed
/// 001's tablets polled it), with a station filter.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct BoardQuery {
    /// Filter; default: every active status.
    #[serde(default)]
    pub statuses: Option<Vec<OrderStatus>>,
    /// Only orders with an item for this station.
    #[serde(default)]
    pub station: Option<Station>,
}

/// `order:update_status`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    /// Order.
    pub order_id: Uuid,
    /// Target status.
    pub status: OrderStatus,
    /// Restaurant context (must own the order).
    pub restaurant_id: Uuid,
}

/// `table:complete`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CompleteTable {
    /// Table.
    #[serde(deserialize_with = "string_or_number")]
    #[validate(custom(function = "nonempty_short"))]
    pub table_number: String,
    /// Restaurant.
    pub restaurant_id: Uuid,
}

/// `POST /api/restaurants`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateRestaurant {
    /// Chosen id, or made by the server.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub name: String,
    /// The gateway section it is listed in (contract §7.4); `main` when absent.
    #[serde(default)]
    #[validate(custom(function = "super::floor::section_rule"))]
    pub section: Option<String>,
    /// At most 500 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    pub address: Option<String>,
    /// At most 100 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 100, message = "must be at most 100 characters"))]
    pub cuisine: Option<String>,
}

/// One line in `POST /api/restaurants/:id/orders` or a PATCH.
#[derive(Debug, Serialize, Deserialize, Validate)]
pub struct NewItem {
    /// 1..=200 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    pub name: String,
    /// 1..=1000.
    #[validate(range(min = 1, max = 1000, message = "must be 1 to 1000"))]
    pub quantity: i32,
    /// Station.
    pub station: Station,
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    pub notes: Option<String>,
}

/// `POST /api/restaurants/:id/orders`.
#[derive(Debug, Deserialize, Validate)]
pub struct CreateOrder {
    /// Ticket number.
    #[serde(deserialize_with = "string_or_number")]
    #[validate(custom(function = "nonempty_short"))]
    pub order_number: String,
    /// How it is served.
    #[serde(rename = "type")]
    pub kind: OrderType,
    /// Table, 1..=50 characters (as `table:complete` takes it).
    #[serde(default, deserialize_with = "opt_string_or_number")]
    #[validate(custom(function = "nonempty_short"))]
    pub table_number: Option<String>,
    /// 1..=100 lines.
    #[validate(
        length(min = 1, max = 100, message = "must have 1 to 100 items"),
        nested
    )]
    pub items: Vec<NewItem>,
    /// Amount.
    #[validate(custom(function = "money"))]
    pub total: f64,
    /// The customer it is for: that user may subscribe to `order:<id>` on `/ws`.
    #[serde(default, deserialize_with = "crate::domain::input::user_id_opt")]
    pub customer_id: Option<UserId>,
}

/// `PATCH /api/orders/:id`.
#[derive(Debug, Deserialize, Validate)]
pub struct PatchOrder {
    /// New status (same move rules as `order:update_status`).
    #[serde(default)]
    pub status: Option<OrderStatus>,
    /// Replacement lines.
    #[serde(default)]
    #[validate(
        length(min = 1, max = 100, message = "must have 1 to 100 items"),
        nested
    )]
    pub items: Option<Vec<NewItem>>,
    /// Absent: unchanged; `null` or `""`: cleared; otherwise the new table, 1..=50
    /// characters.
    #[serde(default, deserialize_with = "patch_string_or_number")]
    #[validate(custom(function = "nonempty_short"))]
    pub table_number: Option<Option<String>>,
}

/// `DELETE /api/orders/:id` body (optional).
#[derive(Debug, Default, Deserialize, Validate)]
pub struct DeleteOrder {
    /// Why, shown to the kitchen.
    #[serde(default, deserialize_with = "trimmed_opt")]
    #[validate(length(max = 500, message = "must be at most 500 characters"))]
    pub reason: Option<String>,
}

/// Alert urgency.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertType {
    /// Act now.
    Urgent,
    /// Attention.
    Warning,
    /// For information.
    Info,
}

/// `POST /api/restaurants/:id/alerts`, and the `kitchen:alert` payload.
#[derive(Debug, Clone, Serialize, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct KitchenAlert {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: AlertType,
    /// Text, 1..=500 characters.
    #[serde(deserialize_with = "trimmed")]
    #[validate(length(min = 1, max = 500, message = "must be 1 to 500 characters"))]
    pub message: String,
    /// Related order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// Related table, 1..=50 characters.
    #[serde(
        default,
        deserialize_with = "opt_string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    #[validate(custom(function = "nonempty_short"))]
    pub table_number: Option<String>,
    /// 1..=5, 5 most urgent.
    #[validate(range(min = 1, max = 5, message = "must be 1 to 5"))]
    pub severity: u8,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::decode;
    use OrderStatus::*;
    use serde_json::{Value, json};

    #[test]
    fn moves_go_forward_or_to_cancelled() {
        assert!(New.can_move_to(Pending));
        assert!(New.can_move_to(Ready), "skipping is allowed");
        assert!(Preparing.can_move_to(Cancelled));
        assert!(!Ready.can_move_to(Preparing), "no backward move");
        assert!(!Ready.can_move_to(Ready), "no move to the same status");
        assert!(!Completed.can_move_to(Cancelled));
        assert!(!Cancelled.can_move_to(Completed));
    }

    #[test]
    fn numbers_are_accepted_as_order_and_table_numbers() {
        let o: CreateOrder = decode(json!({
            "order_number": 42, "type": "dine_in", "table_number": 5, "total": 12.5,
            "items": [{ "name": "Soup", "quantity": 1, "station": "kitchen" }]
        }))
        .unwrap();
        assert_eq!(
            (o.order_number.as_str(), o.table_number.as_deref()),
            ("42", Some("5"))
        );
        let e = decode::<CreateOrder>(json!({
            "order_number": "1", "type": "dine_in", "total": 1,
            "items": [{ "name": "Soup", "quantity": 0, "station": "kitchen" }]
        }))
        .unwrap_err();
        assert!(e.to_string().contains("items[0].quantity"), "{e}");
    }

    #[test]
    fn a_patch_tells_an_absent_table_from_a_cleared_one() {
        let table = |v: Value| decode::<PatchOrder>(v).map(|p| p.table_number);
        assert_eq!(table(json!({})).unwrap(), None);
        assert_eq!(table(json!({ "table_number": null })).unwrap(), Some(None));
        assert_eq!(table(json!({ "table_number": " " })).unwrap(), Some(None));
        assert_eq!(
            table(json!({ "table_number": 9 })).unwrap(),
            Some(Some("9".to_owned()))
        );
        let e = table(json!({ "table_number": "9".repeat(51) })).unwrap_err();
        assert!(e.to_string().contains("table_number"), "{e}");
        let e = table(json!({ "table_number": [] })).unwrap_err();
        assert!(e.to_string().contains("table_number"), "{e}");
    }

    #[test]
    fn join_restaurant_takes_both_forms() {
        let id = Uuid::new_v4();
        let bare = JoinRestaurant::from_payload(json!(id)).unwrap();
        assert!(!bare.batch);
        let obj =
            JoinRestaurant::from_payload(json!({ "restaurantId": id, "batch": true })).unwrap();
        assert!(obj.batch);
        for bad in [json!("not-a-uuid"), json!({ "restaurantId": 5 }), json!({})] {
            let e = JoinRestaurant::from_payload(bad).unwrap_err();
            assert!(e.to_string().starts_with("restaurantId"), "{e}");
        }
    }
}
