//! Switchboard: a Socket.IO-compatible realtime server (chat, notifications, restaurant
//! order boards) on axum, socketioxide and PostgreSQL.
//!
//! `main.rs` only reads configuration and calls [`serve()`]; tests and examples start the
//! same server on a listener they bind themselves (port 0) and stop it with their own
//! shutdown future.
//!
//! The map, from the edge inwards (public: what `main.rs`, tests and examples use):
//! - starting: [`config`] (read once), `app` (socket.io engine, adapter, state,
//!   namespaces, router: [`build_app`]), `serve` (serve, then drain: [`serve()`]),
//!   [`listener`] (the accept loop), `shutdown` (drain waves), `notify` (systemd),
//!   [`embedded_pg`], [`telemetry`];
//! - wires: `http` (REST, health, layers), [`realtime`] (socket.io namespaces, fan-out,
//!   cluster links), `ws` (plain WebSocket routes), `admin` (the Admin UI), `outbound`
//!   (per-connection byte budgets);
//! - rules and data: `auth`, `domain` (pure rules), [`store`] (all SQL), `error` (one
//!   error type), `state` (what handlers share), [`metrics`].

mod admin;
mod app;
mod auth;
pub mod config;
mod domain;
pub mod embedded_pg;
mod error;
mod http;
pub mod listener;
pub mod metrics;
mod notify;
mod outbound;
pub mod realtime;
mod serve;
mod shutdown;
mod state;
pub mod store;
pub mod telemetry;
mod ws;

pub use app::{Running, StartError, build_app, connect_pool};
pub use serve::serve;
