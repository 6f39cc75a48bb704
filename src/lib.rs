//! Switchboard: a Socket.IO-compatible realtime server (chat, notifications, restaurant
//! order boards) on axum, socketioxide and PostgreSQL.
//!
//! `main.rs` only reads configuration and calls [`serve`]; tests and examples start the
//! same server on a listener they bind themselves (port 0) and stop it with their own
//! shutdown future.
//!
//! The map, from the edge inwards:
//! - starting: [`config`] (read once), [`app`] (socket.io engine, adapter, state,
//!   namespaces, router), [`serve`] (serve, then drain), [`listener`] (the accept
//!   loop), [`shutdown`] (drain waves), [`notify`] (systemd), [`embedded_pg`],
//!   [`telemetry`];
//! - wires: [`http`] (REST, health, layers), [`realtime`] (socket.io namespaces and
//!   fan-out), [`ws`] (plain WebSocket routes), [`admin`] (the Admin UI), [`outbound`]
//!   (per-connection byte budgets);
//! - rules and data: [`auth`], [`domain`] (pure rules), [`store`] (all SQL), [`error`]
//!   (one error type), [`state`] (what handlers share), [`metrics`].

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod embedded_pg;
pub mod error;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod realtime;
mod serve;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use app::{Running, SOCKET_QUEUE_PACKETS, StartError, build_app, connect_pool};
pub use serve::serve;
