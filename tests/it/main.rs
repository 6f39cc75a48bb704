//! Switchboard's integration tests, one binary: each former `tests/<name>.rs` is a module
//! here (`cargo test <test name>` still finds a test), `support` holds what they share.
//! Tests unwrap, expect and panic: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin_ui;
mod auth;
mod binary;
mod chat;
mod cluster;
mod dashboard;
mod embedded_pg;
mod faults;
mod gateway;
mod notifications;
mod operations;
mod rest_and_server;
mod restaurant;
mod sio_client_selftest;
mod slow_consumers;
mod ws;
mod ws_frames;
