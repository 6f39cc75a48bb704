//! Socket.IO: namespaces, per-socket sessions, event dispatch and broadcasting.
//!
//! Every client event goes through `handler::on`: rate limit, decode and validate,
//! run, reply once. Namespaces only say what each event does.

pub(crate) mod ack;
pub(crate) mod announce;
pub(crate) mod broadcast;
pub mod cluster;
pub mod cluster_bus;
pub(crate) mod dynamic;
pub(crate) mod events;
pub(crate) mod fanout;
pub(crate) mod handler;
pub(crate) mod lifetime;
pub(crate) mod namespaces;
pub(crate) mod order_bus;
pub(crate) mod orders;
pub mod pg_link;
pub(crate) mod pg_notify;
pub(crate) mod rate_limit;
pub mod redis_link;
pub(crate) mod rooms;
pub(crate) mod session;
pub(crate) mod session_bus;
