//! Pure rules and the shapes clients see. No I/O here: `store` reads and writes,
//! `realtime` and `http` carry these values over the wire.

pub mod channels;
pub mod chat;
pub mod checkins;
pub mod floor;
pub mod input;
pub mod notifications;
pub mod orders;
pub mod time;
pub mod user;
