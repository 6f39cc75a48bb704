//! Socket.IO: namespaces, per-socket sessions, event dispatch and broadcasting.
//!
//! Every client event goes through [`handler::on`]: rate limit, decode and validate,
//! run, reply once. Namespaces only say what each event does.

pub mod ack;
pub mod announce;
pub mod broadcast;
pub mod cluster;
pub mod cluster_bus;
pub mod dynamic;
pub mod events;
pub mod handler;
pub mod lifetime;
pub mod namespaces;
pub mod order_bus;
pub mod orders;
pub mod pg_link;
pub mod pg_notify;
pub mod rate_limit;
pub mod redis_link;
pub mod rooms;
pub mod session;
pub mod session_bus;
