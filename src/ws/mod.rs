//! Plain WebSocket routes (contract §7): `/ws` in the envelope dialect of seed 003 and
//! the bare dialect of seed 002, and seed 002's check-in dashboard
//! `/ws/dashboard/:sessionID` (§7.6), which is a connection of the same hub in the
//! channel `checkins:<session>`, and seed 000's entity gateway
//! `/ws/:entity/:section[/:token]` (§7.4, [`gateway`]), connections of the same hub in
//! their own dialect.
//!
//! - `upgrade`: the opening handshake, and taking the socket back from hyper;
//! - `frame`: RFC 6455 framing (our own: see there why);
//! - `outbox`: one connection's socket and bounded queue, written by whoever has a frame;
//! - `hub`: the channel registry and the one queue per connection;
//! - `conn`: one connection's life (read, handle, reply, heartbeat, close);
//! - `envelope`: the wire format both ways, and its error codes;
//! - `access`: who may subscribe to which channel;
//! - `events`: domain events (chat messages, notifications, order status) rendered for
//!   each dialect and delivered on `user:` and `order:` channels.
//!
//! [`publish`] is the single way a payload reaches channel subscribers: REST calls it
//! today; a cluster bus will call it on every node with the [`Publication`] it carries.
//! Domain events reach `/ws` through [`events`], called next to the socket.io emits of
//! the same event, on the node that caused it.

mod access;
pub mod cluster;
mod conn;
mod envelope;
pub mod events;
mod frame;
pub mod gateway;
mod hub;
mod outbox;
mod upgrade;

pub use hub::{CloseReason, Hub};

use crate::domain::user::UserId;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use crate::auth::{bearer_from_headers, token_from_query};
use crate::error::AppError;
use crate::state::AppState;
use upgrade::{Handshake, Upgrade};

/// The plain WebSocket routes.
pub fn router<A: Adapter>() -> Router<AppState<A>> {
    Router::new()
        .route("/ws", get(upgrade::<A>))
        .route("/ws/dashboard/{session}", get(upgrade_dashboard::<A>))
        .route("/ws/{entity}/{section}", get(upgrade_gateway::<A>))
        .route(
            "/ws/{entity}/{section}/{token}",
            get(upgrade_gateway_token::<A>),
        )
}

/// A payload for the subscribers of a channel, as a backend published it: rendered
/// `{type, payload, timestamp}` to every envelope connection in `channel`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publication {
    /// Where it goes.
    pub channel: String,
    /// The envelope's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The envelope's `payload`.
    pub payload: Map<String, Value>,
    /// When it was published (the `timestamp` every recipient sees, on every node).
    pub at: DateTime<Utc>,
}

impl Publication {
    /// A publication stamped now.
    pub fn new(channel: String, kind: String, payload: Map<String, Value>) -> Self {
        Publication {
            channel,
            kind,
            payload,
            at: Utc::now(),
        }
    }
}

/// Delivers `publication` to the subscribers of its channel on every node; returns how
/// many of this node's connections took it.
pub fn publish(hub: &Hub, publication: &Publication) -> usize {
    let delivered = publish_local(hub, publication);
    // The copy (its payload is a JSON tree) only when there are other nodes to tell.
    if hub.in_cluster() {
        hub.cast(cluster::Cast::Publish(publication.clone()));
    }
    delivered
}

/// Takes `user`'s connections out of `channel` on every node (a revoked grant); each is
/// told `unsubscribed`. Returns how many of this node's.
pub fn unsubscribe_user(hub: &Hub, channel: &str, user: &UserId) -> usize {
    let told = unsubscribe_local(hub, channel, user);
    hub.cast(cluster::Cast::Revoke {
        channel: channel.to_owned(),
        user: user.clone(),
    });
    told
}

/// Delivers `publication` to this node's subscribers of its channel, rendered once;
/// returns how many connections took it.
fn publish_local(hub: &Hub, publication: &Publication) -> usize {
    let Some(message) = envelope::render(
        &publication.kind,
        &publication.payload,
        None,
        publication.at,
    ) else {
        return 0;
    };
    hub.deliver(&publication.channel, &message, "published")
}

/// Takes `user`'s connections on this node out of `channel`; each is told
/// `unsubscribed`. Returns how many.
fn unsubscribe_local(hub: &Hub, channel: &str, user: &UserId) -> usize {
    let revoked = hub.revoke(channel, user);
    if revoked.is_empty() {
        return 0;
    }
    let Some(message) = envelope::render(
        envelope::server::UNSUBSCRIBED,
        envelope::ChannelReply { channel },
        None,
        Utc::now(),
    ) else {
        return 0;
    };
    let told = revoked.iter().filter(|peer| peer.push(&message)).count();
    hub.metrics()
        .messages_out
        .get_or_create(&crate::metrics::TypeLabel {
            r#type: envelope::server::UNSUBSCRIBED,
        })
        .inc_by(told as u64);
    revoked.len()
}

/// The value of `name` in a query string (not decoded: only used for plain words).
fn query_word<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name))
        .map(|(_, v)| v)
}

/// `GET /ws`: the envelope or the bare dialect. Refusals before the upgrade carry the
/// §8 error body; a bad `?token=` in the envelope dialect is not one of them (the client
/// may authenticate later).
async fn upgrade<A: Adapter>(
    State(app): State<AppState<A>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Upgrade,
) -> Response {
    let query = query.as_deref();
    let header_token = bearer_from_headers(&headers);
    let bare = match query_word(query, "format") {
        Some("envelope") => false,
        Some("bare") => true,
        // Contract §7.3: the header (without `format=envelope`) selects seed 002's dialect.
        None => header_token.is_some(),
        Some(_) => {
            return AppError::bad_request("format: use envelope or bare").into_response();
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => return AppError::bad_request("expected a WebSocket upgrade").into_response(),
    };
    let token = header_token
        .map(str::to_owned)
        .or_else(|| token_from_query(query));
    let start = if bare {
        // The bare dialect has no `auth` message: its token is required, and a bad one
        // is refused before the upgrade (contract §7.7).
        let principal = token
            .as_deref()
            .ok_or(AppError::Unauthenticated)
            .and_then(|token| app.verifier.verify(token));
        match principal {
            Ok(principal) => conn::Start::Bare(principal),
            Err(e) => return e.into_response(),
        }
    } else {
        conn::Start::Envelope(token)
    };
    accept(app, upgrade, start)
}

/// Registers the connection and completes the upgrade with the limits of §7.1.
fn accept<A: Adapter>(app: AppState<A>, upgrade: Handshake, start: conn::Start) -> Response {
    let registered = conn::register(&app, &start);
    upgrade.accept(move |wire, read| conn::run(app, wire, read, start, registered))
}

/// `GET /ws/dashboard/:sessionID` (contract §7.6): the check-ins of one session as they
/// are stored. Refused before the upgrade: a session id that is not a UUID (404), and
/// with `DASHBOARD_REQUIRE_TOKEN=true` a missing or bad token (401) or one below staff
/// (403). The token comes from `Authorization: Bearer` or `?token=`.
async fn upgrade_dashboard<A: Adapter>(
    State(app): State<AppState<A>>,
    Path(session): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Upgrade,
) -> Response {
    let Ok(session) = Uuid::parse_str(&session) else {
        return AppError::not_found("sessionID: not a UUID").into_response();
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => return AppError::bad_request("expected a WebSocket upgrade").into_response(),
    };
    let principal = if app.config.ws.dashboard_require_token {
        let token = bearer_from_headers(&headers)
            .map(str::to_owned)
            .or_else(|| token_from_query(query.as_deref()));
        let principal = token
            .as_deref()
            .ok_or(AppError::Unauthenticated)
            .and_then(|token| app.verifier.verify(token))
            .and_then(|principal| {
                if principal.is_staff_or_above() {
                    Ok(principal)
                } else {
                    Err(AppError::forbidden(
                        "dashboards need a staff, manager, admin or service token",
                    ))
                }
            });
        match principal {
            Ok(principal) => Some(principal),
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    accept(app, upgrade, conn::Start::Dashboard { session, principal })
}

/// `GET /ws/:entity/:section` (contract §7.4): the token from `Authorization: Bearer` or
/// `?token=`.
async fn upgrade_gateway<A: Adapter>(
    State(app): State<AppState<A>>,
    Path((entity, section)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Upgrade,
) -> Response {
    let token = bearer_from_headers(&headers)
        .map(str::to_owned)
        .or_else(|| token_from_query(query.as_deref()));
    accept_gateway(app, &entity, &section, token, upgrade)
}

/// `GET /ws/:entity/:section/:token` (contract §7.4): the token in the path.
async fn upgrade_gateway_token<A: Adapter>(
    State(app): State<AppState<A>>,
    Path((entity, section, token)): Path<(String, String, String)>,
    upgrade: Upgrade,
) -> Response {
    accept_gateway(app, &entity, &section, Some(token), upgrade)
}

/// The gateway's refusals, all before the upgrade and in this order (contract §7.7):
/// an unknown entity (404, even without a token), a bad section (400), a request that
/// is not an upgrade (400), then a missing or bad token (401). Any valid token may
/// connect; what it sees is decided per item.
fn accept_gateway<A: Adapter>(
    app: AppState<A>,
    entity: &str,
    section: &str,
    token: Option<String>,
    upgrade: Upgrade,
) -> Response {
    let context = match gateway::Context::from_path(entity, section) {
        Ok(context) => context,
        Err(e) => return e.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(_) => return AppError::bad_request("expected a WebSocket upgrade").into_response(),
    };
    let principal = token
        .as_deref()
        .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).trim())
        .ok_or(AppError::Unauthenticated)
        .and_then(|token| app.verifier.verify(token));
    match principal {
        Ok(principal) => accept(app, upgrade, conn::Start::Gateway { context, principal }),
        Err(e) => e.into_response(),
    }
}
