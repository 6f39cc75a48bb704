//! Channel membership and delivery: subscribe, unsubscribe, revoke, and queueing one
//! event to every member of a channel (its frame built once, shared by every queue).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::super::frame::Frame;
use super::peer::Frames;
use super::{Hub, Peer, TooManyChannels};
use crate::domain::user::UserId;
use crate::metrics::TypeLabel;

impl Hub {
    /// Joins `peer` to `channel`; `Ok(false)` when it was already in it.
    pub fn subscribe(&self, peer: &Arc<Peer>, channel: &str) -> Result<bool, TooManyChannels> {
        let mut subscriptions = peer.subscriptions();
        if subscriptions.gone || subscriptions.channels.contains(channel) {
            return Ok(false);
        }
        if subscriptions.channels.len() >= self.0.max_channels {
            return Err(TooManyChannels);
        }
        let name: Arc<str> = Arc::from(channel);
        subscriptions.channels.insert(name.clone());
        self.join_shard(peer, name);
        Ok(true)
    }

    /// Joins `peer` to `channel` whatever it holds already: for channels the server
    /// chooses from a verified token (an entity gateway connection's restaurants), which
    /// the client cannot grow. `false` when it was already in it or is gone.
    pub fn subscribe_server(&self, peer: &Arc<Peer>, channel: &str) -> bool {
        let mut subscriptions = peer.subscriptions();
        if subscriptions.gone || subscriptions.channels.contains(channel) {
            return false;
        }
        let name: Arc<str> = Arc::from(channel);
        subscriptions.channels.insert(name.clone());
        self.join_shard(peer, name);
        true
    }

    /// The shard half of a subscribe (the caller holds the connection's set).
    pub(super) fn join_shard(&self, peer: &Arc<Peer>, name: Arc<str>) {
        let mut shard = self.shard(&name).write().unwrap_or_else(|p| p.into_inner());
        match shard.entry(name) {
            Entry::Occupied(mut members) => {
                members.get_mut().insert(peer.id, peer.clone());
            }
            Entry::Vacant(slot) => {
                slot.insert(HashMap::from([(peer.id, peer.clone())]));
                self.0.metrics.hub_channels.inc();
            }
        }
        self.0.metrics.hub_entries.inc();
    }

    /// Takes `peer` out of `channel`; false when it was not in it.
    pub fn unsubscribe(&self, peer: &Peer, channel: &str) -> bool {
        let mut subscriptions = peer.subscriptions();
        if !subscriptions.channels.remove(channel) {
            return false;
        }
        self.forget(peer.id, channel);
        true
    }

    /// Takes `peer` out of every channel that is not `public:`; returns their names.
    pub fn leave_private(&self, peer: &Peer) -> Vec<Arc<str>> {
        let mut subscriptions = peer.subscriptions();
        let private: Vec<Arc<str>> = subscriptions
            .channels
            .iter()
            .filter(|c| !c.starts_with("public:"))
            .cloned()
            .collect();
        for channel in &private {
            subscriptions.channels.remove(channel);
            self.forget(peer.id, channel);
        }
        private
    }

    /// The shard half of an unsubscribe (the caller holds the connection's set).
    pub(super) fn forget(&self, id: u64, channel: &str) {
        let mut shard = self
            .shard(channel)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(members) = shard.get_mut(channel)
            && members.remove(&id).is_some()
        {
            self.0.metrics.hub_entries.dec();
            if members.is_empty() {
                shard.remove(channel);
                self.0.metrics.hub_channels.dec();
            }
        }
    }

    /// returns how many took it.
    pub fn deliver(&self, channel: &str, message: &Frame, kind: &'static str) -> usize {
        self.deliver_frames(channel, &Frames::envelope(message.clone()), kind, None)
    }

    /// Queues to every connection in `channel` the rendering of its dialect (none when
    /// `frames` has none for it), except the connection `except`; counted under
    /// `kind`. Returns how many took it.
    pub fn deliver_frames(
        &self,
        channel: &str,
        frames: &Frames,
        kind: &'static str,
        except: Option<u64>,
    ) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let delivered = {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let Some(members) = shard.get(channel) else {
                return 0;
            };
            members
                .values()
                .filter(|peer| Some(peer.id) != except)
                .filter_map(|peer| Some((peer, frames.for_dialect(peer.dialect)?)))
                .filter(|(peer, frame)| peer.push(frame))
                .count()
        };
        self.count_out(kind, delivered);
        delivered
    }

    /// Queues `frames` to every connection in any of `channels`, once per connection
    /// however many of them it is in (a grant on another user's `user:` channel puts a
    /// connection in two members' channels), except the connection `except`; counted
    /// under `kind`. Returns how many took it.
    pub fn deliver_frames_to(
        &self,
        channels: &[String],
        frames: &Frames,
        kind: &'static str,
        except: Option<u64>,
    ) -> usize {
        if let [channel] = channels {
            return self.deliver_frames(channel, frames, kind, except);
        }
        if frames.is_empty() {
            return 0;
        }
        let mut seen = HashSet::new();
        let mut delivered = 0;
        for channel in channels {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            let Some(members) = shard.get(channel.as_str()) else {
                continue;
            };
            for peer in members.values() {
                if Some(peer.id) == except || !seen.insert(peer.id) {
                    continue;
                }
                if let Some(message) = frames.for_dialect(peer.dialect)
                    && peer.push(message)
                {
                    delivered += 1;
                }
            }
        }
        self.count_out(kind, delivered);
        delivered
    }

    /// Queues to every authenticated connection (a broadcast notification).
    pub fn deliver_authenticated(&self, frames: &Frames, kind: &'static str) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let peers: Vec<Arc<Peer>> = self
            .peers()
            .values()
            .filter(|peer| peer.is_authenticated())
            .cloned()
            .collect();
        let delivered = peers
            .iter()
            .filter_map(|peer| Some((peer, frames.for_dialect(peer.dialect)?)))
            .filter(|(peer, frame)| peer.push(frame))
            .count();
        self.count_out(kind, delivered);
        delivered
    }

    /// Counts `n` messages of `kind` queued.
    pub fn count_out(&self, kind: &'static str, n: usize) {
        if n > 0 {
            self.0
                .metrics
                .messages_out
                .get_or_create(&TypeLabel { r#type: kind })
                .inc_by(n as u64);
        }
    }

    /// The connections of `user` in `channel`, taken out of it (a revoked grant).
    pub fn revoke(&self, channel: &str, user: &UserId) -> Vec<Arc<Peer>> {
        let members: Vec<Arc<Peer>> = {
            let shard = self
                .shard(channel)
                .read()
                .unwrap_or_else(|p| p.into_inner());
            shard
                .get(channel)
                .into_iter()
                .flat_map(|members| members.values())
                .filter(|peer| peer.is_user(user))
                .cloned()
                .collect()
        };
        members
            .into_iter()
            .filter(|peer| self.unsubscribe(peer, channel))
            .collect()
    }
}
