//! Who may subscribe to which channel on `/ws` (contract §7.2).
//!
//! The server decides, never the client: `public:` is open to anyone; every other
//! channel needs an authenticated connection and either a rule that follows from the
//! token and the data (`user:` its own id, `tenant:` its `tenant_id`, `order:` its
//! customer or the staff of its restaurant) or a grant made over REST.

use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::envelope::WsError;
use crate::auth::{Principal, Role};
use crate::domain::channels::Channel;
use crate::error::AppError;
use crate::state::AppState;

/// What the rules say before grants are looked at.
enum Rule {
    Allowed,
    Denied,
    /// Admin or service asked for an order that does not exist.
    Missing,
}

/// Allows `principal` (or an unauthenticated connection) into `channel`, named `name`,
/// or says why not: `unauthorized`, `forbidden`, `not_found`, `internal`.
pub async fn check<A: Adapter>(
    app: &AppState<A>,
    principal: Option<&Principal>,
    channel: Channel<'_>,
    name: &str,
) -> Result<(), WsError> {
    if channel.is_public() {
        return Ok(());
    }
    let Some(me) = principal else {
        return Err(WsError::unauthorized());
    };
    match by_rule(app, me, channel).await? {
        Rule::Allowed => Ok(()),
        Rule::Missing => Err(AppError::not_found("order not found").into()),
        Rule::Denied => {
            let granted = app
                .store
                .has_grant(name, &me.user_id)
                .await
                .map_err(AppError::from)?;
            if granted {
                Ok(())
            } else {
                Err(WsError::forbidden())
            }
        }
    }
}

async fn by_rule<A: Adapter>(
    app: &AppState<A>,
    me: &Principal,
    channel: Channel<'_>,
) -> Result<Rule, WsError> {
    let allowed = |yes: bool| if yes { Rule::Allowed } else { Rule::Denied };
    Ok(match channel.kind {
        "user" => allowed(channel.id == me.user_id.to_string()),
        "tenant" => allowed(me.is_admin() || me.tenant_id.as_deref() == Some(channel.id)),
        "order" => {
            let anywhere = me.is_admin() || me.has_role(Role::Service);
            // Orders are named as the server spells their ids (lowercase, hyphenated):
            // another spelling would be a second channel that publishes never reach.
            let id = Uuid::try_parse(channel.id)
                .ok()
                .filter(|id| id.hyphenated().to_string() == channel.id);
            let parties = match id {
                Some(id) => app
                    .store
                    .find_order_parties(id)
                    .await
                    .map_err(AppError::from)?,
                None => None,
            };
            match parties {
                None if anywhere => Rule::Missing,
                None => Rule::Denied,
                Some(order) => allowed(
                    anywhere
                        || order.customer_id.as_ref() == Some(&me.user_id)
                        || (me.rank() >= Role::Staff
                            && me.restaurants.contains(&order.restaurant_id)),
                ),
            }
        }
        _ => Rule::Denied,
    })
}
