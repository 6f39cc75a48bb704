//! What happened, told to every dialect: one function per domain event, called once by
//! the handler or REST route that caused it, with the event's payload typed here.
//!
//! Each renders the event for socket.io (its rooms, through the [`Broadcaster`], on
//! every node through the adapter) and for plain WebSocket connections (`ws::events`:
//! envelope and bare renderings, each serialized once, cast to the other nodes). A
//! handler does not know how many dialects exist; a new one is added here.
//!
//! [`Broadcaster`]: crate::realtime::broadcast::Broadcaster

pub mod chat;
pub mod notifications;
pub mod orders;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

/// The connections of the actor that an announcement skips, because the actor answers
/// them itself (`message:created` skips the sender's socket, contract §9).
#[derive(Clone, Copy)]
pub struct Skip<'a, A: Adapter> {
    /// The socket.io socket that acted.
    pub socket: Option<&'a SocketRef<A>>,
    /// The `/ws` connection that acted, when it gets its own copy.
    pub plain: Option<u64>,
}
