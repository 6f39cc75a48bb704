//! Two nodes on one database behave as one server (contract §10), for each cluster
//! adapter: PostgreSQL LISTEN/NOTIFY and Redis. Every event reaches each due socket
//! exactly once, whichever node holds the socket and whichever node caused it.
//!
//! The Redis variants need `REDIS_URL` (scripts/test starts a Redis server). A cross-node
//! case is one body run for both adapters by `for_each_adapter!`. One file a part of §10:
//!
//! * `delivery`: chat, notification and order events cross nodes, each once, batch mode
//!   included (§10's exactly once, batch mode on the node that holds the socket);
//! * `leaves`: forced leaves and operator disconnects in effect on every node (§10);
//! * `namespaces`: refused connects and many restaurants cost the link nothing lasting
//!   (§10, §6's dynamic namespace);
//! * `links`: `/readyz` and broadcasts through a Redis restart, a cut or refused LISTEN
//!   connection, and a stalled subscriber (§10's adapters and `/readyz`);
//! * `bus`: the cluster bus on the adapter's link: topics, overflow, large messages.
//!
//! This file holds what they share: two nodes, an order on one, the admin connection and
//! the macro that runs a case for each adapter.

use crate::support::*;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// Runs each case named as a test for both adapters, `postgres::<case>` and
/// `redis::<case>`. Defined above the `mod` lines so that their files see it.
macro_rules! for_each_adapter {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[sqlx::test]
                async fn $name(pool: PgPool) {
                    super::$name(pool, "postgres").await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[sqlx::test]
                async fn $name(pool: PgPool) {
                    super::$name(pool, "redis").await;
                }
            )*
        }
    };
}

mod bus;
mod delivery;
mod leaves;
mod links;
mod namespaces;

/// Two nodes on one database and the adapter.
async fn two_nodes(pool: &PgPool, adapter: &str) -> (TestServer, TestServer) {
    let (a, b, _) = TestServer::two_nodes(pool, adapter).await;
    (a, b)
}

/// A one-item order created over REST on `node`.
async fn order_on(node: &TestServer, r: Uuid, number: i64) -> Value {
    let body = json!({ "order_number": number, "type": "takeout", "total": 2,
                       "items": [{ "name": "Tea", "quantity": 1, "station": "bar" }] });
    post_order(node, r, &body).await
}

/// An admin connection to the test's database server (not counted in any node's pool).
async fn admin_and_db(pool: &PgPool) -> (PgPool, String) {
    let db: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let admin = PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    (admin, db)
}
