//! `/ws` across the nodes of a cluster (contract §10: each due connection gets each
//! event once, whichever node holds it and whichever caused the event).
//!
//! Every delivery a node makes to its own plain connections is also cast, once, to the
//! other nodes on the cluster bus ([`Topic::Publish`]), which make the same delivery to
//! theirs. What travels is what the hub delivers, already rendered: a domain event's
//! frames (one per dialect) and their channels, a backend's publication (stamped where
//! it was published, so every node shows the same `timestamp`), or a revoked grant.
//! Receiving nodes do not render again and do not cast again.
//!
//! Casts wait in a bounded queue ([`CAST_QUEUE`]) for the one task that publishes them,
//! so a handler never waits on the bus and one node's casts keep their order; a full
//! queue drops the cast (logged and counted in `switchboard_ws_cluster_casts_dropped_total`),
//! as the bus drops for a reader that does not keep up.

use crate::domain::user::UserId;

use super::frame::Frame;
use serde::{Deserialize, Serialize};
use socketioxide::adapter::Adapter;
use tokio::sync::mpsc;

use super::Publication;
use super::events::kind;
use super::hub::{Frames, Hub};
use crate::realtime::cluster_bus::Topic;
use crate::realtime::fanout::Fanout;

/// Casts waiting for the bus.
pub const CAST_QUEUE: usize = 1024;

/// Who a cast delivery is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The subscribers of these channels.
    Channels(Vec<String>),
    /// Every authenticated connection (a broadcast notification).
    Authenticated,
}

/// One delivery, as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Cast {
    /// A domain event's frames.
    Frames {
        /// Its recipients.
        target: Target,
        /// The envelope rendering, if that dialect gets it.
        envelope: Option<String>,
        /// The bare rendering, if that dialect gets it.
        bare: Option<String>,
        /// The check-in dashboards' rendering, if they get it (absent from casts of
        /// nodes that predate dashboards).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dashboard: Option<String>,
        /// The entity gateway's rendering, if its connections get it (absent from
        /// casts of nodes that predate the gateway).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gateway: Option<String>,
        /// The `ws_messages_out` label.
        kind: String,
    },
    /// What a backend published.
    Publish(Publication),
    /// A grant taken back: the user's connections leave the channel.
    Revoke {
        /// The channel.
        channel: String,
        /// The user.
        user: UserId,
    },
}

fn text(frame: &Option<Frame>) -> Option<String> {
    frame.as_ref()?.as_text().map(str::to_owned)
}

impl Cast {
    /// The cast of `frames` for `target`.
    pub fn frames(target: Target, frames: &Frames, label: &'static str) -> Self {
        Cast::Frames {
            target,
            envelope: text(&frames.envelope),
            bare: text(&frames.bare),
            dashboard: text(&frames.dashboard),
            gateway: text(&frames.gateway),
            kind: label.to_owned(),
        }
    }
}

/// The static label of a delivery kind that came from another node.
fn label(name: &str) -> &'static str {
    super::gateway::SNAPSHOT_LABELS
        .into_iter()
        .chain([
            kind::CHAT_MESSAGE,
            kind::CHAT_MESSAGE_EDITED,
            kind::CHAT_MESSAGE_DELETED,
            kind::NOTIFICATION,
            kind::NOTIFICATION_READ,
            kind::NOTIFICATION_READ_ALL,
            kind::NOTIFICATION_DELETED,
            kind::ORDER_UPDATE,
            kind::CHECKIN,
        ])
        .find(|k| *k == name)
        .unwrap_or("other")
}

/// Makes on this node a delivery another node cast. Returns how many connections took
/// it.
pub fn apply(hub: &Hub, cast: Cast) -> usize {
    match cast {
        Cast::Frames {
            target,
            envelope,
            bare,
            dashboard,
            gateway,
            kind,
        } => {
            let message = |t: String| Frame::text(t);
            let frames = Frames {
                envelope: envelope.map(message),
                bare: bare.map(message),
                dashboard: dashboard.map(message),
                gateway: gateway.map(message),
            };
            let label = label(&kind);
            match target {
                Target::Channels(channels) => {
                    hub.deliver_frames_to(&channels, &frames, label, None)
                }
                Target::Authenticated => hub.deliver_authenticated(&frames, label),
            }
        }
        Cast::Publish(publication) => super::publish_local(hub, &publication),
        Cast::Revoke { channel, user } => super::unsubscribe_local(hub, &channel, &user),
    }
}

/// The queue a clustered hub casts into ([`Hub::new`]) and its receiving end, for
/// [`start`].
pub fn cast_queue() -> (mpsc::Sender<Cast>, mpsc::Receiver<Cast>) {
    mpsc::channel(CAST_QUEUE)
}

/// Links this node's hub to the cluster bus, both ways: publishes what the hub casts
/// (`outgoing`, from [`cast_queue`]) and applies what other nodes cast (cluster only).
pub fn start<A: Adapter>(fanout: &Fanout<A>, mut outgoing: mpsc::Receiver<Cast>) {
    let Some(bus) = fanout.cluster_bus() else {
        return;
    };
    let sender = fanout.clone();
    tokio::spawn(async move {
        while let Some(cast) = outgoing.recv().await {
            if let Some(bus) = sender.cluster_bus() {
                // A failure is logged and counted by the bus.
                let _ = bus.publish(Topic::Publish, &cast).await;
            }
        }
    });
    let mut incoming = bus.subscribe(Topic::Publish);
    let hub = fanout.ws.clone();
    tokio::spawn(async move {
        while let Some(message) = incoming.recv().await {
            match serde_json::from_value::<Cast>(message) {
                Ok(cast) => {
                    apply(&hub, cast);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable /ws delivery from another node");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cast_reads_back_as_it_was_sent() {
        let frames = Frames::envelope(Frame::text("{\"type\":\"x\"}"));
        let cast = Cast::frames(
            Target::Channels(vec!["user:7".into()]),
            &frames,
            kind::NOTIFICATION,
        );
        let wire = serde_json::to_value(&cast).unwrap_or_default();
        let back: Cast = serde_json::from_value(wire).unwrap_or(Cast::Revoke {
            channel: String::new(),
            user: UserId::from(0),
        });
        match back {
            Cast::Frames {
                target,
                envelope,
                bare,
                dashboard,
                gateway,
                kind,
            } => {
                assert_eq!(target, Target::Channels(vec!["user:7".into()]));
                assert_eq!(envelope.as_deref(), Some("{\"type\":\"x\"}"));
                assert_eq!((bare, dashboard, gateway), (None, None, None));
                assert_eq!(label(&kind), kind::NOTIFICATION);
            }
            other => panic!("read back as {other:?}"),
        }
        assert_eq!(label("something new"), "other");
    }

    #[test]
    fn a_checkin_cast_carries_only_the_dashboard_rendering_and_old_casts_still_read() {
        let frames = Frames::dashboard(Frame::text("{\"success\":true}"));
        let cast = Cast::frames(
            Target::Channels(vec!["checkins:s".into()]),
            &frames,
            kind::CHECKIN,
        );
        let wire = serde_json::to_value(&cast).unwrap_or_default();
        assert_eq!(wire["dashboard"], "{\"success\":true}");
        assert_eq!(
            label(wire["kind"].as_str().unwrap_or_default()),
            kind::CHECKIN
        );
        // A node from before dashboards casts no `dashboard` field at all.
        let old = serde_json::json!({
            "op": "frames", "target": { "channels": ["user:1"] },
            "envelope": "{}", "bare": null, "kind": "notification"
        });
        let back = serde_json::from_value::<Cast>(old);
        assert!(
            matches!(
                back,
                Ok(Cast::Frames {
                    dashboard: None,
                    ..
                })
            ),
            "{back:?}"
        );
    }
}
