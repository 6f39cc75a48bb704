//! The one pipeline of a gateway connection's frames (contract §7.4): count, decode,
//! rate limit, run `list` or `get`, and exactly one reply (`{entity}.list`,
//! `{entity}.detail` or `{entity}.error`) that echoes the command's `request_id` and
//! `action`.

use chrono::Utc;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::wire::{self, Command, ErrorData, Failure, Metadata};
use super::{Context, Entity, Topic, visibility};
use crate::auth::Principal;
use crate::domain::floor::{GetQuery, ListQuery};
use crate::domain::input::decode;
use crate::error::AppError;
use crate::metrics::TypeLabel;
use crate::realtime::rate_limit::RateLimiter;
use crate::state::AppState;
use crate::ws::hub::Peer;

/// The one bucket every incoming message draws from (contract §7.1).
const RATE_KEY: &str = "ws";

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Get,
}

impl Kind {
    /// Reads `action` for `entity`: `list_<entity>` (singular or plural), `list`,
    /// `fetch_all`; `get_<entity>`, `detail`, `fetch_one`. Any capitalisation.
    fn of(action: &str, entity: Entity) -> Option<Kind> {
        if action.len() > 32 {
            return None;
        }
        let action = action.to_ascii_lowercase();
        let names = |rest: &str| rest == entity.name() || rest == entity.singular();
        match action.as_str() {
            "list" | "fetch_all" => Some(Kind::List),
            "detail" | "fetch_one" => Some(Kind::Get),
            other => {
                if other.strip_prefix("list_").is_some_and(names) {
                    Some(Kind::List)
                } else if other.strip_prefix("get_").is_some_and(names) {
                    Some(Kind::Get)
                } else {
                    None
                }
            }
        }
    }

    fn label(kind: Option<Kind>) -> &'static str {
        match kind {
            Some(Kind::List) => "list",
            Some(Kind::Get) => "get",
            None => "unknown",
        }
    }
}

/// Handles one text frame of a gateway connection.
pub async fn on_text<A: Adapter>(
    app: &AppState<A>,
    peer: &Peer,
    context: &Context,
    principal: &Principal,
    limiter: &RateLimiter,
    text: &str,
) {
    let decoded = wire::decode(text);
    let kind = decoded
        .as_ref()
        .ok()
        .and_then(|c| Kind::of(&c.action, context.entity));
    count_in(
        app,
        match &decoded {
            Ok(_) => Kind::label(kind),
            Err(_) => "invalid",
        },
    );
    let command = match decoded {
        Ok(command) => command,
        Err(undecoded) => {
            let failure = if limiter.check(RATE_KEY).is_err() {
                AppError::RateLimited.into()
            } else {
                undecoded.failure
            };
            let (id, action) = (undecoded.request_id, undecoded.action);
            return reply_error(
                app,
                peer,
                context,
                &failure,
                id.as_deref(),
                action.as_deref(),
            );
        }
    };
    let id = command.request_id.as_deref();
    if limiter.check(RATE_KEY).is_err() {
        let action = wire::shown(&command.action);
        let failure = AppError::RateLimited.into();
        return reply_error(app, peer, context, &failure, id, Some(&action));
    }
    let result = match kind {
        Some(Kind::List) => list(app, context, principal, &command).await,
        Some(Kind::Get) => get(app, context, principal, &command).await,
        None => Err(Failure {
            reason: "unknown_action",
            message: format!(
                "unknown action {:?}: use list_{} or get_{}",
                wire::shown(&command.action),
                context.entity.name(),
                context.entity.singular()
            ),
        }),
    };
    match result {
        Ok((topic, data)) => {
            let metadata = Metadata {
                request_id: id,
                action: Some(&command.action),
                ..Metadata::at(Utc::now())
            };
            let event = context.entity.topic(topic);
            if let Some(message) =
                wire::render(event, context.entity, &context.section, data, metadata)
            {
                push(app, peer, event, message);
            }
        }
        Err(failure) => {
            let action = wire::shown(&command.action);
            reply_error(app, peer, context, &failure, id, Some(&action));
        }
    }
}

/// A binary frame: the gateway speaks JSON text only.
pub fn on_binary<A: Adapter>(
    app: &AppState<A>,
    peer: &Peer,
    context: &Context,
    limiter: &RateLimiter,
) {
    count_in(app, "invalid");
    let failure = if limiter.check(RATE_KEY).is_err() {
        AppError::RateLimited.into()
    } else {
        Failure::invalid("binary frames are not supported: send JSON text")
    };
    reply_error(app, peer, context, &failure, None, None);
}

async fn list<A: Adapter>(
    app: &AppState<A>,
    context: &Context,
    principal: &Principal,
    command: &Command,
) -> Result<(Topic, Value), Failure> {
    let query: ListQuery = decode(Value::Object(command.payload.clone()))?;
    let section = context.section_filter();
    let store = &app.store;
    let page = match context.entity {
        Entity::Restaurants => to_value(store.list_restaurants(section, &query).await),
        Entity::Tables => to_value(
            store
                .list_tables(&visibility(principal), section, &query)
                .await,
        ),
        Entity::Reservations => to_value(
            store
                .list_reservations(&visibility(principal), section, &query)
                .await,
        ),
    }?;
    Ok((Topic::List, page))
}

async fn get<A: Adapter>(
    app: &AppState<A>,
    context: &Context,
    principal: &Principal,
    command: &Command,
) -> Result<(Topic, Value), Failure> {
    let query: GetQuery = decode(Value::Object(command.payload.clone()))?;
    let section = context.section_filter();
    let store = &app.store;
    let uuid = || Uuid::parse_str(&query.id).map_err(|_| Failure::invalid("id: not a UUID"));
    let item = match context.entity {
        Entity::Restaurants => to_value(store.find_restaurant_item(uuid()?, section).await),
        Entity::Tables => to_value(
            store
                .find_table(
                    &visibility(principal),
                    section,
                    &query.id,
                    query.restaurant_id,
                )
                .await,
        ),
        Entity::Reservations => to_value(
            store
                .find_visible_reservation(&visibility(principal), section, uuid()?)
                .await,
        ),
    }?;
    if item.is_null() {
        return Err(Failure {
            reason: "not_found",
            message: format!("no such {} in this section", context.entity.singular()),
        });
    }
    Ok((Topic::Detail, item))
}

/// A store answer as JSON (an absent item is `null`).
fn to_value<T: serde::Serialize>(found: Result<T, sqlx::Error>) -> Result<Value, Failure> {
    let found = found.map_err(AppError::from)?;
    serde_json::to_value(found).map_err(|e| AppError::Internal(e.to_string()).into())
}

fn count_in<A: Adapter>(app: &AppState<A>, label: &'static str) {
    app.metrics
        .ws
        .messages_in
        .get_or_create(&TypeLabel { r#type: label })
        .inc();
}

fn push<A: Adapter>(
    app: &AppState<A>,
    peer: &Peer,
    label: &'static str,
    message: crate::ws::frame::Frame,
) {
    if peer.push(&message) {
        app.ws.count_out(label, 1);
    }
}

fn reply_error<A: Adapter>(
    app: &AppState<A>,
    peer: &Peer,
    context: &Context,
    failure: &Failure,
    request_id: Option<&str>,
    action: Option<&str>,
) {
    let event = context.entity.topic(Topic::Error);
    let metadata = Metadata {
        request_id,
        action,
        reason: Some(failure.reason),
        ..Metadata::at(Utc::now())
    };
    let data = ErrorData {
        reason: failure.reason,
        message: &failure.message,
    };
    if let Some(message) = wire::render(event, context.entity, &context.section, data, metadata) {
        push(app, peer, event, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_singular_and_plural_in_any_case() {
        for action in [
            "list_tables",
            "list_table",
            "LIST",
            "fetch_all",
            "List_Tables",
        ] {
            assert_eq!(
                Kind::of(action, Entity::Tables),
                Some(Kind::List),
                "{action}"
            );
        }
        for action in ["get_tables", "get_table", "detail", "FETCH_ONE"] {
            assert_eq!(
                Kind::of(action, Entity::Tables),
                Some(Kind::Get),
                "{action}"
            );
        }
        for action in ["list_restaurants", "get_reservation", "delete", "", "list_"] {
            assert_eq!(Kind::of(action, Entity::Tables), None, "{action}");
        }
        assert_eq!(
            Kind::of("get_restaurant", Entity::Restaurants),
            Some(Kind::Get)
        );
    }
}
