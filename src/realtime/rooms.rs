//! The only place that formats room names.

use crate::domain::user::UserId;
use uuid::Uuid;

use crate::domain::orders::Station;

/// Personal room of a user: every socket of that user on a namespace.
pub fn user(user_id: &UserId) -> String {
    format!("user:{user_id}")
}

/// The user id of a `user:<id>` room.
pub fn parse_user(room: &str) -> Option<UserId> {
    UserId::parse(room.strip_prefix("user:")?)
}

/// Room of a chat conversation.
pub fn conversation(conversation_id: Uuid) -> String {
    format!("conversation:{conversation_id}")
}

/// Room of a restaurant's board.
pub fn restaurant(restaurant_id: Uuid) -> String {
    format!("restaurant:{restaurant_id}")
}

/// The restaurant of a `restaurant:<id>` room.
pub fn parse_restaurant(room: &str) -> Option<Uuid> {
    room.strip_prefix("restaurant:")?.parse().ok()
}

/// Room of one station of a restaurant.
pub fn station(restaurant_id: Uuid, station: Station) -> String {
    format!("station:{restaurant_id}:{}", station.as_str())
}

/// Prefix of every station room of a restaurant.
pub fn station_prefix(restaurant_id: Uuid) -> String {
    format!("station:{restaurant_id}:")
}

const BATCH_PREFIX: &str = "batch:";

/// The batch-mode twin of a restaurant or station room: sockets in batch mode are in
/// these instead, so single order events skip them and the batcher finds them.
pub fn batched(room: &str) -> String {
    format!("{BATCH_PREFIX}{room}")
}

/// Splits a room into (is batch twin, base room).
pub fn split_batched(room: &str) -> (bool, &str) {
    match room.strip_prefix(BATCH_PREFIX) {
        Some(base) => (true, base),
        None => (false, room),
    }
}

/// Whether a base room is a restaurant or station room (of any restaurant).
pub fn is_restaurant_scoped(room: &str) -> bool {
    room.starts_with("restaurant:") || room.starts_with("station:")
}
