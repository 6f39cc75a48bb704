//! Domain events to plain WebSocket connections (contract §7.2, §7.3): each event is
//! rendered once per dialect that gets it, and the hub hands every connection the
//! rendering of its own dialect.
//!
//! - a chat message stored (over `/chat` or `/ws`): envelope `chat_message`, and the
//!   bare message object, on each member's `user:` channel;
//! - a chat message edited or deleted: the bare message object again, with its flags
//!   (the envelope dialect has no such events, §7.7);
//! - a notification created: envelope `notification`, bare `{…, event:"created"}`, on
//!   the owner's `user:` channel (a broadcast: every authenticated connection); read,
//!   read all and deleted: bare only;
//! - an order's status changed: envelope `order_update` on `order:<id>`;
//! - a check-in stored: the bare check-in object of seed 002 to the session's
//!   dashboards, on `checkins:<session>` (contract §7.6).
//!
//! These run on the node that caused the event, which renders it and casts the frames
//! to the other nodes ([`super::cluster`]); they deliver them as they are.

use super::frame::Frame;
use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::cluster::{Cast, Target};
use super::envelope;
use super::hub::{Frames, Hub};
use crate::domain::chat::Message as ChatMessage;
use crate::domain::checkins::Checkin;
use crate::domain::notifications::Notification;
use crate::domain::orders::{Order, OrderStatus};
use crate::domain::time::rfc3339_ms;

/// Envelope types (and `ws_messages_out` labels) of domain events.
pub mod kind {
    /// A chat message.
    pub const CHAT_MESSAGE: &str = "chat_message";
    /// A chat message edited (bare only).
    pub const CHAT_MESSAGE_EDITED: &str = "chat_message_edited";
    /// A chat message deleted (bare only).
    pub const CHAT_MESSAGE_DELETED: &str = "chat_message_deleted";
    /// A notification created.
    pub const NOTIFICATION: &str = "notification";
    /// A notification read (bare only).
    pub const NOTIFICATION_READ: &str = "notification_read";
    /// Every notification read (bare only).
    pub const NOTIFICATION_READ_ALL: &str = "notification_read_all";
    /// A notification deleted (bare only).
    pub const NOTIFICATION_DELETED: &str = "notification_deleted";
    /// An order's status changed.
    pub const ORDER_UPDATE: &str = "order_update";
    /// A check-in stored (dashboards only).
    pub const CHECKIN: &str = "checkin";
}

fn user_channel(user: &UserId) -> String {
    format!("user:{user}")
}

/// Serializes a bare message (no envelope) into a text frame.
pub fn bare<T: Serialize>(value: &T) -> Option<Frame> {
    match serde_json::to_string(value) {
        Ok(text) => Some(Frame::text(text)),
        Err(e) => {
            tracing::error!(error = %e, "could not render a bare /ws message");
            None
        }
    }
}

fn ts<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(t))
}

#[derive(Serialize)]
struct EnvelopeChat<'a> {
    conversation_id: Uuid,
    message: EnvelopeChatBody<'a>,
}

#[derive(Serialize)]
struct EnvelopeChatBody<'a> {
    id: Uuid,
    sender_id: &'a UserId,
    sender_name: Option<&'a str>,
    content: &'a str,
    message_type: &'a str,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
}

/// The bare (seed 002) chat message object.
#[derive(Serialize)]
struct BareChat<'a> {
    id: Uuid,
    conversation_id: Uuid,
    sender_id: &'a UserId,
    content: &'a str,
    message_type: &'a str,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
    is_edited: bool,
    is_deleted: bool,
}

fn bare_chat(message: &ChatMessage, is_deleted: bool) -> Option<Frame> {
    bare(&BareChat {
        id: message.id,
        conversation_id: message.conversation_id,
        sender_id: &message.sender_id,
        content: &message.content,
        message_type: &message.message_type,
        created_at: message.created_at,
        is_edited: message.updated_at.is_some(),
        is_deleted,
    })
}

/// The envelope `chat_message` for `message`, echoing `id` (the sender's own copy).
pub fn envelope_chat(message: &ChatMessage, id: Option<&str>) -> Option<Frame> {
    let payload = EnvelopeChat {
        conversation_id: message.conversation_id,
        message: EnvelopeChatBody {
            id: message.id,
            sender_id: &message.sender_id,
            sender_name: message.sender_name.as_deref(),
            content: &message.content,
            message_type: &message.message_type,
            created_at: message.created_at,
        },
    };
    envelope::render(kind::CHAT_MESSAGE, payload, id, Utc::now())
}

/// A stored message to every member's connections, except the connection `except`
/// (an envelope sender, which gets its own copy with its request `id`). Returns how
/// many connections took it.
pub fn message_created(
    hub: &Hub,
    message: &ChatMessage,
    members: &[UserId],
    except: Option<u64>,
) -> usize {
    if !hub.has_audience() {
        return 0;
    }
    let frames = Frames {
        envelope: envelope_chat(message, None),
        bare: bare_chat(message, false),
        ..Frames::default()
    };
    let channels: Vec<String> = members.iter().map(user_channel).collect();
    let delivered = hub.deliver_frames_to(&channels, &frames, kind::CHAT_MESSAGE, except);
    hub.cast(Cast::frames(
        Target::Channels(channels),
        &frames,
        kind::CHAT_MESSAGE,
    ));
    delivered
}

/// An edited or deleted message, in full with its flags, to the members' bare
/// connections.
pub fn message_changed(hub: &Hub, message: &ChatMessage, members: &[UserId], deleted: bool) {
    if !hub.has_audience() {
        return;
    }
    let frames = Frames {
        bare: bare_chat(message, deleted),
        ..Frames::default()
    };
    let label = if deleted {
        kind::CHAT_MESSAGE_DELETED
    } else {
        kind::CHAT_MESSAGE_EDITED
    };
    let channels: Vec<String> = members.iter().map(user_channel).collect();
    hub.deliver_frames_to(&channels, &frames, label, None);
    hub.cast(Cast::frames(Target::Channels(channels), &frames, label));
}

#[derive(Serialize)]
struct EnvelopeNotification<'a> {
    id: Uuid,
    title: &'a str,
    body: &'a str,
    action_url: Option<&'a str>,
    icon: &'a str,
    priority: &'a str,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
}

/// Go's `sql.NullString`, as seed 002 serializes `link`.
#[derive(Serialize)]
struct NullString<'a> {
    #[serde(rename = "String")]
    string: &'a str,
    #[serde(rename = "Valid")]
    valid: bool,
}

#[derive(Serialize)]
struct BareNotification<'a> {
    id: Uuid,
    user_id: Option<&'a UserId>,
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    message: &'a str,
    link: NullString<'a>,
    is_read: bool,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
    event: &'static str,
}

/// A new notification: to its owner's connections, or for a broadcast to every
/// authenticated connection.
pub fn notification_created(hub: &Hub, n: &Notification) {
    if !hub.has_audience() {
        return;
    }
    let envelope = envelope::render(
        kind::NOTIFICATION,
        EnvelopeNotification {
            id: n.id,
            title: &n.title,
            body: &n.content,
            action_url: n.link.as_deref(),
            icon: n.kind.as_str(),
            priority: n.priority.as_str(),
            created_at: n.created_at,
        },
        None,
        Utc::now(),
    );
    let bare = bare(&BareNotification {
        id: n.id,
        user_id: n.user_id.as_ref(),
        kind: n.kind.as_str(),
        title: &n.title,
        message: &n.content,
        link: NullString {
            string: n.link.as_deref().unwrap_or(""),
            valid: n.link.is_some(),
        },
        is_read: n.is_read,
        created_at: n.created_at,
        event: "created",
    });
    let frames = Frames {
        envelope,
        bare,
        ..Frames::default()
    };
    let target = match &n.user_id {
        Some(user) => {
            let channel = user_channel(user);
            hub.deliver_frames(&channel, &frames, kind::NOTIFICATION, None);
            Target::Channels(vec![channel])
        }
        None => {
            hub.deliver_authenticated(&frames, kind::NOTIFICATION);
            Target::Authenticated
        }
    };
    hub.cast(Cast::frames(target, &frames, kind::NOTIFICATION));
}

#[derive(Serialize)]
struct BareNotificationChange {
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification_id: Option<Uuid>,
}

fn notification_change(hub: &Hub, user: &UserId, event: &'static str, id: Option<Uuid>) {
    if !hub.has_audience() {
        return;
    }
    let label = match event {
        "read" => kind::NOTIFICATION_READ,
        "read_all" => kind::NOTIFICATION_READ_ALL,
        _ => kind::NOTIFICATION_DELETED,
    };
    let frames = Frames {
        bare: bare(&BareNotificationChange {
            event,
            notification_id: id,
        }),
        ..Frames::default()
    };
    let channel = user_channel(user);
    hub.deliver_frames(&channel, &frames, label, None);
    hub.cast(Cast::frames(
        Target::Channels(vec![channel]),
        &frames,
        label,
    ));
}

/// `user` read one notification (bare `{event:"read", notification_id}`).
pub fn notification_read(hub: &Hub, user: &UserId, id: Uuid) {
    notification_change(hub, user, "read", Some(id));
}

/// `user` read every notification (bare `{event:"read_all"}`).
pub fn notifications_read_all(hub: &Hub, user: &UserId) {
    notification_change(hub, user, "read_all", None);
}

/// `user` deleted one notification (bare `{event:"deleted", notification_id}`).
pub fn notification_deleted(hub: &Hub, user: &UserId, id: Uuid) {
    notification_change(hub, user, "deleted", Some(id));
}

#[derive(Serialize)]
struct OrderUpdate {
    order_id: Uuid,
    status: OrderStatus,
    previous_status: OrderStatus,
    #[serde(serialize_with = "ts")]
    updated_at: DateTime<Utc>,
}

/// An order's status changed: `order_update` to the subscribers of `order:<id>`.
pub fn order_status_changed(hub: &Hub, previous: OrderStatus, order: &Order) {
    if !hub.has_audience() {
        return;
    }
    let envelope = envelope::render(
        kind::ORDER_UPDATE,
        OrderUpdate {
            order_id: order.id,
            status: order.status,
            previous_status: previous,
            updated_at: order.updated_at,
        },
        None,
        Utc::now(),
    );
    let frames = Frames {
        envelope,
        ..Frames::default()
    };
    let channel = format!("order:{}", order.id);
    hub.deliver_frames(&channel, &frames, kind::ORDER_UPDATE, None);
    hub.cast(Cast::frames(
        Target::Channels(vec![channel]),
        &frames,
        kind::ORDER_UPDATE,
    ));
}

/// The channel a session's dashboards are in (not one a `/ws` client may subscribe to).
pub fn checkins_channel(session: Uuid) -> String {
    format!("checkins:{session}")
}

/// A check-in as seed 002's dashboard reads it: these fields, in this order.
#[derive(Serialize)]
struct DashboardCheckin<'a> {
    #[serde(serialize_with = "ts")]
    checkin_time: DateTime<Utc>,
    message: &'a str,
    profile_url: Option<&'a str>,
    session_id: Uuid,
    success: bool,
    user_id: &'a UserId,
    user_name: &'a str,
}

/// A check-in stored: to its session's dashboards, on every node. Returns how many of
/// this node's took it.
pub fn checkin_stored(hub: &Hub, checkin: &Checkin) -> usize {
    if !hub.has_audience() {
        return 0;
    }
    let Some(message) = bare(&DashboardCheckin {
        checkin_time: checkin.checkin_time,
        message: &checkin.message,
        profile_url: checkin.profile_url.as_deref(),
        session_id: checkin.session_id,
        success: checkin.success,
        user_id: &checkin.user_id,
        user_name: &checkin.user_name,
    }) else {
        return 0;
    };
    let frames = Frames::dashboard(message);
    let channel = checkins_channel(checkin.session_id);
    let delivered = hub.deliver_frames(&channel, &frames, kind::CHECKIN, None);
    hub.cast(Cast::frames(
        Target::Channels(vec![channel]),
        &frames,
        kind::CHECKIN,
    ));
    delivered
}
