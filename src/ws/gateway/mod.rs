//! Seed 000's entity gateway, `/ws/:entity/:section[/:token]` (contract §7.4, §7.7): a
//! plain WebSocket per entity and section that lists and reads restaurants, tables or
//! reservations and is told of every change as `{entity}.snapshot`.
//!
//! A gateway connection is a connection of the `/ws` hub in its own dialect
//! ([`super::Dialect::Gateway`]): same queue, heartbeat, limits, rate limit, metrics and
//! shutdown. What it may see decides which hub channels it is in, once, at
//! registration: `gw:<entity>:<section>:<restaurant>` for each restaurant of a staff+
//! token, `gw:<entity>:<section>:*` for admin and service (and for restaurants, which
//! every token may see). A snapshot is delivered to the channels of the item's
//! restaurant and of `*`, for its section and for `all`: a connection is in one of them
//! at most, so it gets each snapshot once, and never one it may not see. Snapshots go
//! to other nodes on the cluster cast of [`super::cluster`], like every `/ws` delivery.
//!
//! - `wire`: the messages both ways;
//! - `commands`: `list` and `get`;
//! - `snapshots`: change events, called by REST and `table:complete`.

mod commands;
pub mod snapshots;
mod wire;

use std::sync::Arc;

use uuid::Uuid;

use super::hub::{Hub, Peer};
use crate::auth::{Principal, Role};
use crate::domain::floor::{ALL_SECTIONS, is_section};
use crate::error::AppError;
use crate::store::floor::Visibility;

pub use commands::{on_binary, on_text};
pub use wire::{CONNECTED, connected};

/// An entity the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// `restaurants` (also `restaurant`, the legacy route).
    Restaurants,
    /// `tables`.
    Tables,
    /// `reservations`.
    Reservations,
}

impl Entity {
    /// Reads the path segment, in any capitalisation; `None` for an unknown entity.
    pub fn parse(segment: &str) -> Option<Entity> {
        match segment.to_ascii_lowercase().as_str() {
            "restaurants" | "restaurant" => Some(Entity::Restaurants),
            "tables" => Some(Entity::Tables),
            "reservations" => Some(Entity::Reservations),
            _ => None,
        }
    }

    /// The normalized (plural) name every message carries.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Restaurants => "restaurants",
            Entity::Tables => "tables",
            Entity::Reservations => "reservations",
        }
    }

    /// The singular, for command aliases (`get_table`).
    fn singular(self) -> &'static str {
        match self {
            Entity::Restaurants => "restaurant",
            Entity::Tables => "table",
            Entity::Reservations => "reservation",
        }
    }

    /// `{entity}.{kind}` for the four base topics, as static strings (they are also
    /// metric labels).
    pub fn topic(self, kind: Topic) -> &'static str {
        use Entity::*;
        use Topic::*;
        match (self, kind) {
            (Restaurants, Snapshot) => "restaurants.snapshot",
            (Restaurants, List) => "restaurants.list",
            (Restaurants, Detail) => "restaurants.detail",
            (Restaurants, Error) => "restaurants.error",
            (Tables, Snapshot) => "tables.snapshot",
            (Tables, List) => "tables.list",
            (Tables, Detail) => "tables.detail",
            (Tables, Error) => "tables.error",
            (Reservations, Snapshot) => "reservations.snapshot",
            (Reservations, List) => "reservations.list",
            (Reservations, Detail) => "reservations.detail",
            (Reservations, Error) => "reservations.error",
        }
    }

    /// Whether every valid token may see every item (restaurants), rather than staff+
    /// of the item's restaurant, admin and service (tables, reservations).
    fn is_public(self) -> bool {
        self == Entity::Restaurants
    }
}

/// The base topics of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `{entity}.snapshot`: an item changed.
    Snapshot,
    /// `{entity}.list`: a page.
    List,
    /// `{entity}.detail`: one item.
    Detail,
    /// `{entity}.error`: a command failed.
    Error,
}

/// The `ws_messages_out` labels of snapshots (also read back from cluster casts).
pub const SNAPSHOT_LABELS: [&str; 3] = [
    "restaurants.snapshot",
    "tables.snapshot",
    "reservations.snapshot",
];

/// What one gateway connection is: its entity and section.
#[derive(Debug, Clone)]
pub struct Context {
    /// The entity.
    pub entity: Entity,
    /// The section as the path spelled it (`all`: every section).
    pub section: String,
}

impl Context {
    /// Checks the path: an unknown entity is 404 (before anything else, contract §7.7),
    /// a section outside 1–64 characters of `[A-Za-z0-9_.-]` 400.
    pub fn from_path(entity: &str, section: &str) -> Result<Context, AppError> {
        let entity = Entity::parse(entity).ok_or_else(|| {
            AppError::not_found("unknown entity: use restaurants, tables or reservations")
        })?;
        if !is_section(section) {
            return Err(AppError::bad_request(
                "section: must be 1 to 64 characters of A-Z, a-z, 0-9, _ . -",
            ));
        }
        Ok(Context {
            entity,
            section: section.to_owned(),
        })
    }

    /// The store's section filter: `None` for `all`.
    pub fn section_filter(&self) -> Option<&str> {
        (self.section != ALL_SECTIONS).then_some(self.section.as_str())
    }

    /// Joins `peer` to the channels of what `principal` may see here.
    pub fn subscribe(&self, hub: &Hub, peer: &Arc<Peer>, principal: &Principal) {
        for channel in self.channels(principal) {
            hub.subscribe_server(peer, &channel);
        }
    }

    fn channels(&self, principal: &Principal) -> Vec<String> {
        let who = visibility(principal);
        if self.entity.is_public() || who.anywhere {
            return vec![channel(self.entity, &self.section, None)];
        }
        who.restaurants
            .iter()
            .map(|r| channel(self.entity, &self.section, Some(*r)))
            .collect()
    }
}

/// Whose tables and reservations `principal` may see: admin and service every
/// restaurant's, staff and managers their token's, users none.
pub fn visibility(principal: &Principal) -> Visibility {
    let anywhere = principal.is_service_or_admin();
    let restaurants = if !anywhere && principal.rank() >= Role::Staff {
        principal.restaurants.clone()
    } else {
        Vec::new()
    };
    Visibility {
        anywhere,
        restaurants,
    }
}

/// The hub channel of an entity's section, for one restaurant's readers (or `None`:
/// the readers of every restaurant). Not a name a `/ws` client can subscribe to.
fn channel(entity: Entity, section: &str, restaurant: Option<Uuid>) -> String {
    match restaurant {
        Some(r) => format!("gw:{}:{section}:{r}", entity.name()),
        None => format!("gw:{}:{section}:*", entity.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], restaurants: &[Uuid]) -> Principal {
        Principal {
            user_id: 1.into(),
            roles: roles.to_vec(),
            restaurants: restaurants.to_vec(),
            tenant_id: None,
            name: None,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn entities_read_in_any_case_and_the_legacy_name() {
        assert_eq!(Entity::parse("TaBlEs"), Some(Entity::Tables));
        assert_eq!(Entity::parse("restaurant"), Some(Entity::Restaurants));
        assert_eq!(Entity::parse("RESERVATIONS"), Some(Entity::Reservations));
        assert_eq!(Entity::parse("users"), None);
        assert!(Context::from_path("tables", "a/b").is_err());
        assert!(Context::from_path("tables", &"s".repeat(65)).is_err());
        let all = Context::from_path("Tables", "all").unwrap();
        assert_eq!(all.section_filter(), None);
    }

    #[test]
    fn channels_follow_what_the_token_may_see() {
        let (r1, r2) = (Uuid::new_v4(), Uuid::new_v4());
        let tables = Context::from_path("tables", "patio").unwrap();
        let staff = principal(&[Role::Staff], &[r1, r2]);
        assert_eq!(
            tables.channels(&staff),
            vec![
                format!("gw:tables:patio:{r1}"),
                format!("gw:tables:patio:{r2}")
            ]
        );
        let user = principal(&[Role::User], &[r1]);
        assert!(tables.channels(&user).is_empty());
        let service = principal(&[Role::Service], &[r1]);
        assert_eq!(tables.channels(&service), vec!["gw:tables:patio:*"]);
        let restaurants = Context::from_path("restaurant", "all").unwrap();
        assert_eq!(restaurants.channels(&user), vec!["gw:restaurants:all:*"]);
    }
}
