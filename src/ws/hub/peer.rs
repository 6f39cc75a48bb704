//! One connection as the hub sees it ([`Peer`]): its outbox (socket, queue, close
//! signal), its channels, who it acts as; why it closes ([`CloseReason`]) and which
//! rendering of an event it gets ([`Dialect`], [`Frames`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::super::frame::Frame;
use super::super::outbox::{Outbox, Refused};
use crate::domain::user::UserId;
use crate::metrics::ReasonLabel;
use crate::realtime::lifetime::{Connection, Expired};

/// Why a connection ends, with the close code the server sends for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed (a close frame), or its connection went away without one.
    Client,
    /// A write that failed (the connection is broken).
    Error,
    /// A frame the protocol forbids: unmasked, a bad opcode or length, bad
    /// fragmentation (1002).
    Protocol,
    /// A text message that is not UTF-8 (1007).
    InvalidData,
    /// Nothing arrived for `WS_IDLE_TIMEOUT_SECS`.
    Idle,
    /// Its send queue was full: the client does not read (1013).
    SlowConsumer,
    /// A message over `WS_MAX_MESSAGE_BYTES` (1009).
    TooBig,
    /// The server is shutting down (1001).
    Shutdown,
    /// The token it authenticated with expired (4001).
    TokenExpired,
    /// An operator ended the user's sessions (1008).
    Disconnected,
}

impl CloseReason {
    /// The close frame the server sends, or `None` when the client closed first (its
    /// close is answered by the protocol) or the connection is broken.
    pub fn frame(self) -> Option<(u16, &'static str)> {
        match self {
            CloseReason::Client | CloseReason::Error => None,
            CloseReason::Protocol => Some((1002, "protocol error")),
            CloseReason::InvalidData => Some((1007, "invalid UTF-8")),
            CloseReason::Idle => Some((1000, "idle timeout")),
            CloseReason::SlowConsumer => Some((1013, "slow consumer: send queue full")),
            CloseReason::TooBig => Some((1009, "message too big")),
            CloseReason::Shutdown => Some((1001, "server shutting down")),
            CloseReason::TokenExpired => Some((4001, "token expired")),
            CloseReason::Disconnected => Some((1008, "disconnected by an operator")),
        }
    }

    /// The `reason` label of `switchboard_ws_closes_total`.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            // Counted as before the own framing, when these ended without a frame.
            CloseReason::Error | CloseReason::Protocol | CloseReason::InvalidData => "error",
            CloseReason::Idle => "idle",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::TooBig => "too_big",
            CloseReason::Shutdown => "shutdown",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::Disconnected => "disconnected",
        }
    }
}

/// The wire format a connection speaks (contract §7.2, §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Seed 003: `{type, payload, id?, timestamp}` both ways.
    Envelope,
    /// Seed 002: bare JSON objects (chat messages, notification events).
    Bare,
    /// Seed 002's check-in dashboard (`/ws/dashboard/:sessionID`, contract §7.6): bare
    /// check-in objects of one session, nothing else.
    Dashboard,
    /// Seed 000's entity gateway (`/ws/:entity/:section`, contract §7.4):
    /// `{event, entity, section, data, metadata}` messages.
    Gateway,
}

/// One event rendered for each dialect that gets it (each rendering serialized once,
/// its bytes shared by every queue); `None`: that dialect does not get the event.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    /// For envelope connections.
    pub envelope: Option<Frame>,
    /// For bare connections.
    pub bare: Option<Frame>,
    /// For check-in dashboards.
    pub dashboard: Option<Frame>,
    /// For entity gateway connections.
    pub gateway: Option<Frame>,
}

impl Frames {
    /// Only envelope connections get it.
    pub fn envelope(message: Frame) -> Self {
        Frames {
            envelope: Some(message),
            ..Frames::default()
        }
    }

    /// Only check-in dashboards get it.
    pub fn dashboard(message: Frame) -> Self {
        Frames {
            dashboard: Some(message),
            ..Frames::default()
        }
    }

    /// Only entity gateway connections get it.
    pub fn gateway(message: Frame) -> Self {
        Frames {
            gateway: Some(message),
            ..Frames::default()
        }
    }

    pub(super) fn for_dialect(&self, dialect: Dialect) -> Option<&Frame> {
        match dialect {
            Dialect::Envelope => self.envelope.as_ref(),
            Dialect::Bare => self.bare.as_ref(),
            Dialect::Dashboard => self.dashboard.as_ref(),
            Dialect::Gateway => self.gateway.as_ref(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.envelope.is_none()
            && self.bare.is_none()
            && self.dashboard.is_none()
            && self.gateway.is_none()
    }
}

/// A subscribe that could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyChannels;

#[derive(Default)]
pub(super) struct Subscriptions {
    pub(super) channels: HashSet<Arc<str>>,
    /// Set when the connection is removed: nothing joins after that.
    pub(super) gone: bool,
}

/// One connection as the registry sees it: its queue, its channels, how to close it.
pub struct Peer {
    pub(super) id: u64,
    pub(super) dialect: Dialect,
    /// Its bounded queue and why it must close.
    pub(super) outbox: Outbox,
    /// Who the connection acts as; `None` until it authenticates.
    pub(super) user: std::sync::RwLock<Option<UserId>>,
    pub(super) subscriptions: Mutex<Subscriptions>,
    /// `switchboard_ws_closes_total`, counted when the reason is decided (the close
    /// frame may take a while to reach a client that does not read).
    pub(super) closes: Family<ReasonLabel, Counter>,
    /// `switchboard_ws_dropped_total`: messages that did not fit in the queue, or came
    /// after the connection began closing.
    pub(super) dropped: Counter,
    /// A client message is being handled: a shutdown wave leaves the connection for a
    /// later wave, so the reply goes out before the close frame.
    pub(super) busy: AtomicBool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub(super) fn subscriptions(&self) -> MutexGuard<'_, Subscriptions> {
        self.subscriptions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message without waiting. A full queue closes the connection as a slow
    /// consumer; false when the message was not queued.
    pub fn push(&self, frame: &Frame) -> bool {
        match self.outbox.push(frame) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.dropped.inc();
                self.close(CloseReason::SlowConsumer);
                false
            }
            Err(Refused::Shut) => {
                self.dropped.inc();
                false
            }
        }
    }

    /// Sends a ping or a pong (a little over the queue's bound); a queue full even of
    /// those closes the connection as a slow consumer.
    pub fn push_control(&self, frame: &Frame) {
        if self.outbox.push_control(frame) == Err(Refused::Full) {
            self.dropped.inc();
            self.close(CloseReason::SlowConsumer);
        }
    }

    /// The queue the connection's task drains, and its close signal.
    pub(crate) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Marks a client message as being handled until the guard drops.
    pub fn handling(&self) -> Handling<'_> {
        self.busy.store(true, Ordering::SeqCst);
        Handling(self)
    }

    /// The registry's id of this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The dialect it speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(super) fn is_authenticated(&self) -> bool {
        self.user
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Asks the connection to close for `reason` (the first reason wins, and is the
    /// one counted).
    pub fn close(&self, reason: CloseReason) {
        if self.outbox.close(reason) {
            self.closes
                .get_or_create(&ReasonLabel {
                    reason: reason.label(),
                })
                .inc();
        }
    }

    /// Why the connection is closing, once it is.
    pub fn closing(&self) -> Option<CloseReason> {
        self.outbox.closing()
    }

    /// Records who the connection acts as (for revoking grants).
    pub fn set_user(&self, user: &UserId) {
        *self.user.write().unwrap_or_else(|p| p.into_inner()) = Some(user.clone());
    }

    pub(super) fn is_user(&self, user: &UserId) -> bool {
        self.user.read().unwrap_or_else(|p| p.into_inner()).as_ref() == Some(user)
    }
}

/// A client message in hand (see [`Peer::handling`]).
#[derive(Debug)]
pub struct Handling<'a>(&'a Peer);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::SeqCst);
    }
}

/// Token expiry and operator disconnects reach a `/ws` connection through the shared
/// lifetime registry.
impl Connection for Peer {
    fn expire(&self, _: &Expired) -> bool {
        self.close(CloseReason::TokenExpired);
        true
    }

    fn end(&self) -> bool {
        self.close(CloseReason::Disconnected);
        true
    }
}
