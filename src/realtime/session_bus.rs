//! Ending a user's sessions on every node (`POST /api/users/:userId/disconnect`).
//!
//! Each node ends its own connections, found in its [`Lifetimes`] registry whatever the
//! namespace (the dynamic `/restaurants/<id>` ones included, which another node may not
//! have mounted) or the protocol. The request reaches the other nodes over a PostgreSQL
//! NOTIFY channel of the cluster, like the order bus: the database is shared whatever
//! the adapter.
//!
//! [`Lifetimes`]: super::lifetime::Lifetimes

use serde::{Deserialize, Serialize};
use socketioxide::adapter::Adapter;
use sqlx::PgPool;
use sqlx::postgres::PgNotification;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::order_bus::prefix_hash;
use super::pg_link::PgLink;
use crate::state::AppState;

/// One request: end `user`'s connections.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// Sending node (it has ended its own connections already).
    node: Uuid,
    user: i64,
}

/// Sends end-session requests to the other nodes of the cluster.
#[derive(Debug)]
pub struct SessionBus {
    node: Uuid,
    channel: String,
    pool: PgPool,
}

impl SessionBus {
    /// Listens on the cluster's channel (named after `prefix`) and ends this node's
    /// connections of the users other nodes name.
    pub async fn start<A: Adapter>(
        app: &AppState<A>,
        link: &PgLink,
        prefix: &str,
    ) -> Result<Self, sqlx::Error> {
        let channel = format!("switchboard_sessions_{:016x}", prefix_hash(prefix));
        let node = Uuid::new_v4();
        let rx = link.subscribe(&[&channel]).await?;
        tokio::spawn(receive(app.clone(), rx, node));
        Ok(SessionBus {
            node,
            channel,
            pool: app.store.pool().clone(),
        })
    }

    async fn publish(&self, user: i64) -> Result<(), sqlx::Error> {
        let payload = serde_json::to_string(&Request {
            node: self.node,
            user,
        })
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query("select pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn receive<A: Adapter>(app: AppState<A>, mut rx: mpsc::Receiver<PgNotification>, node: Uuid) {
    while let Some(notification) = rx.recv().await {
        match serde_json::from_str::<Request>(notification.payload()) {
            Ok(request) if request.node != node => {
                end_local(&app, request.user);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "unreadable session request from another node"),
        }
    }
}

/// Ends this node's connections of `user`; returns how many.
fn end_local<A: Adapter>(app: &AppState<A>, user: i64) -> usize {
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
            user,
            stuck,
            "connections not ended: their send queues are full"
        );
    }
    tracing::info!(
        user,
        ended = connections.len() - stuck,
        "user's connections ended on this node"
    );
    connections.len() - stuck
}

/// Ends `user`'s connections on this node, then asks the other nodes to end theirs.
/// Fails only when the other nodes could not be told (this node's are ended already).
pub async fn end_user_sessions<A: Adapter>(
    app: &AppState<A>,
    user: i64,
) -> Result<usize, sqlx::Error> {
    let ended = end_local(app, user);
    if let Some(bus) = app.session_bus() {
        bus.publish(user).await?;
    }
    Ok(ended)
}
