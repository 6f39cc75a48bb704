//! Ending a user's sessions on every node (`POST /api/users/:userId/disconnect`).
//!
//! Each node ends its own connections, found in its [`Lifetimes`] registry whatever the
//! namespace (the dynamic `/restaurants/<id>` ones included, which another node may not
//! have mounted) or the protocol. The request reaches the other nodes on the cluster
//! bus ([`Topic::Sessions`]).
//!
//! [`Lifetimes`]: super::lifetime::Lifetimes

use crate::domain::user::UserId;
use serde::{Deserialize, Serialize};
use socketioxide::adapter::Adapter;

use super::cluster_bus::Topic;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One request: end `user`'s connections.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    user: UserId,
}

/// Ends this node's connections of the users other nodes name (cluster only).
pub fn start<A: Adapter>(app: &AppState<A>) {
    let Some(bus) = app.cluster_bus() else {
        return;
    };
    let mut rx = bus.subscribe(Topic::Sessions);
    let app = app.clone();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            match serde_json::from_value::<Request>(message) {
                Ok(request) => {
                    end_local(&app, &request.user);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable session request from another node");
                }
            }
        }
    });
}

/// Ends this node's connections of `user`; returns how many.
fn end_local<A: Adapter>(app: &AppState<A>, user: &UserId) -> usize {
    let connections = app.lifetimes.connections_of(user);
    let mut stuck = 0_usize;
    for connection in &connections {
        if !connection.end() {
            stuck += 1;
        }
    }
    if stuck > 0 {
        // Only a connection whose send queue is full: it is not reading at all.
        tracing::warn!(
            user = %user,
            stuck,
            "connections not ended: their send queues are full"
        );
    }
    tracing::info!(
        user = %user,
        ended = connections.len() - stuck,
        "user's connections ended on this node"
    );
    connections.len() - stuck
}

/// Ends `user`'s connections on this node, then asks the other nodes to end theirs.
/// Fails only when the other nodes could not be told (this node's are ended already).
pub async fn end_user_sessions<A: Adapter>(app: &AppState<A>, user: &UserId) -> AppResult<usize> {
    let ended = end_local(app, user);
    if let Some(bus) = app.cluster_bus() {
        // Logged and counted by the bus; the caller answers 500 so the operator retries.
        bus.publish(Topic::Sessions, &Request { user: user.clone() })
            .await
            .map_err(|e| AppError::Internal(format!("other nodes not told: {e}")))?;
    }
    Ok(ended)
}
