//! How a connection starts: its dialect and identity from the handshake ([`Start`]),
//! and its place in the hub from the 101 on ([`Registered`]).

use std::sync::Arc;

use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::super::events;
use super::super::gateway;
use super::super::hub::{Dialect, Peer};
use crate::auth::Principal;
use crate::state::AppState;

/// How a connection starts.
pub enum Start {
    /// The envelope dialect, with the handshake's token if any (`?token=`, or the
    /// header with `?format=envelope`), checked here so that a bad one opens the
    /// connection unauthenticated with `auth_error` (contract §7.7).
    Envelope(Option<String>),
    /// The bare dialect, whose token was verified before the upgrade.
    Bare(Principal),
    /// A check-in dashboard of one session (contract §7.6), with the principal whose
    /// token was verified before the upgrade when `DASHBOARD_REQUIRE_TOKEN` asks for one.
    Dashboard {
        /// The session whose check-ins it receives.
        session: Uuid,
        /// Who it acts as, if a token was required.
        principal: Option<Principal>,
    },
    /// An entity gateway connection (contract §7.4), whose token was verified before
    /// the upgrade.
    Gateway {
        /// Its entity and section.
        context: gateway::Context,
        /// Who it acts as.
        principal: Principal,
    },
}

impl Start {
    fn dialect(&self) -> Dialect {
        match self {
            Start::Envelope(_) => Dialect::Envelope,
            Start::Bare(_) => Dialect::Bare,
            Start::Dashboard { .. } => Dialect::Dashboard,
            Start::Gateway { .. } => Dialect::Gateway,
        }
    }
}

/// A connection in the hub before its upgrade completes: what is delivered between the
/// handshake's answer and the connection's first step waits in its queue, so a
/// dashboard hears a check-in posted the moment it connected. Dropped (the upgrade
/// failed, or the connection ended), it leaves the hub.
pub struct Registered {
    hub: crate::ws::Hub,
    pub(super) peer: Arc<Peer>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.remove(&self.peer);
    }
}

/// Registers the connection `start` describes (a dashboard joins its session's
/// channel here); [`run`] serves it once upgraded.
pub fn register<A: Adapter>(app: &AppState<A>, start: &Start) -> Registered {
    let peer = app.ws.register(app.config.ws.send_queue, start.dialect());
    if let Start::Dashboard { session, .. } = start
        && app
            .ws
            .subscribe(&peer, &events::checkins_channel(*session))
            .is_err()
    {
        // Only a channel limit of 0 refuses a fresh connection; configuration forbids it.
        tracing::warn!("a dashboard could not join its session's channel");
    }
    if let Start::Gateway { context, principal } = start {
        // `system.connected` is the first message, ahead of any snapshot.
        if let Some(hello) = gateway::connected(context, &app.config.ws.allowed_actions)
            && peer.push(&hello)
        {
            app.ws.count_out(gateway::CONNECTED, 1);
        }
        context.subscribe(&app.ws, &peer, principal);
    }
    Registered {
        hub: app.ws.clone(),
        peer,
    }
}
