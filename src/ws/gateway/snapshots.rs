//! `{entity}.snapshot` (contract §7.4): an item created, updated or deleted, to every
//! gateway connection of its section (and of `all`) that may see it, on every node.
//!
//! The message is rendered once, with the item's section in its envelope (an `all`
//! connection learns where the item is), delivered to the channels of every section
//! concerned, and cast to the other nodes once. An item that moved to another section
//! is announced in both: the old section's connections learn it is no longer theirs
//! (its `section` says where it went), the new one's that it arrived.

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use super::wire::{self, Metadata};
use super::{Entity, Topic, channel};
use crate::domain::floor::{ALL_SECTIONS, Reservation, RestaurantItem, Table};
use crate::ws::Hub;
use crate::ws::cluster::{Cast, Target};
use crate::ws::hub::Frames;

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// It is new.
    Created,
    /// It changed.
    Updated,
    /// It is gone (the item as it was).
    Deleted,
}

#[derive(Serialize)]
struct Snapshot<'a, T: Serialize> {
    op: Op,
    item: &'a T,
}

/// A restaurant changed (`section_before`: its section before an update).
pub fn restaurant(hub: &Hub, op: Op, item: &RestaurantItem, section_before: Option<&str>) {
    announce(
        hub,
        Entity::Restaurants,
        op,
        item,
        None,
        &item.section,
        section_before,
    );
}

/// A table changed (`section_before`: its section before an update).
pub fn table(hub: &Hub, op: Op, item: &Table, section_before: Option<&str>) {
    announce(
        hub,
        Entity::Tables,
        op,
        item,
        Some(item.restaurant_id),
        &item.section,
        section_before,
    );
}

/// A reservation changed (`section_before`: its section before an update).
pub fn reservation(hub: &Hub, op: Op, item: &Reservation, section_before: Option<&str>) {
    announce(
        hub,
        Entity::Reservations,
        op,
        item,
        Some(item.restaurant_id),
        &item.section,
        section_before,
    );
}

/// Delivers the snapshot to this node's connections and casts each section's frame to
/// the other nodes. `restaurant`: the item's restaurant, whose readers (and those of
/// every restaurant) get it; `None`: everyone's item (restaurants).
fn announce<T: Serialize>(
    hub: &Hub,
    entity: Entity,
    op: Op,
    item: &T,
    restaurant: Option<Uuid>,
    section: &str,
    section_before: Option<&str>,
) {
    if !hub.has_audience() {
        return;
    }
    let label = entity.topic(Topic::Snapshot);
    let Some(message) = wire::render(
        label,
        entity,
        section,
        Snapshot { op, item },
        Metadata::at(Utc::now()),
    ) else {
        return;
    };
    let frames = Frames::gateway(message);
    let mut sections = vec![section, ALL_SECTIONS];
    if let Some(before) = section_before.filter(|b| *b != section) {
        sections.push(before);
    }
    let channels: Vec<String> = sections
        .into_iter()
        .flat_map(|s| {
            std::iter::once(channel(entity, s, None))
                .chain(restaurant.map(|r| channel(entity, s, Some(r))))
        })
        .collect();
    hub.deliver_frames_to(&channels, &frames, label, None);
    hub.cast(Cast::frames(Target::Channels(channels), &frames, label));
}
