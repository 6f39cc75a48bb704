//! Event names on the wire, so a typo is a compile error rather than a silent miss.

/// Namespace paths.
pub mod ns {
    /// Chat namespace.
    pub const CHAT: &str = "/chat";
    /// Notifications namespace.
    pub const NOTIFICATIONS: &str = "/notifications";
    /// Restaurant OS default namespace.
    pub const ROOT: &str = "/";
    /// Restaurant namespace.
    pub const RESTAURANT: &str = "/restaurant";
    /// Dynamic per-restaurant namespace pattern.
    pub const RESTAURANT_DYNAMIC: &str = "/restaurants/{restaurant_id}";
}

/// Events of `/chat`.
pub mod chat {
    /// Client: join a conversation room.
    pub const CONVERSATION_JOIN: &str = "conversation:join";
    /// Client: leave a conversation room.
    pub const CONVERSATION_LEAVE: &str = "conversation:leave";
    /// Client: send a message.
    pub const MESSAGE_SEND: &str = "message:send";
    /// Client: edit a message.
    pub const MESSAGE_EDIT: &str = "message:edit";
    /// Client: delete a message.
    pub const MESSAGE_DELETE: &str = "message:delete";
    /// Client: move the read cursor; server: someone read.
    pub const MESSAGE_READ: &str = "message:read";
    /// Client: history page.
    pub const MESSAGE_LIST: &str = "message:list";
    /// Client and server: typing indicator.
    pub const TYPING: &str = "typing";
    /// Client: add a member.
    pub const MEMBERS_ADD: &str = "members:add";
    /// Client: remove a member.
    pub const MEMBERS_REMOVE: &str = "members:remove";
    /// Server: a message was stored.
    pub const MESSAGE_CREATED: &str = "message:created";
    /// Server: a message was edited.
    pub const MESSAGE_UPDATED: &str = "message:updated";
    /// Server: a message was deleted.
    pub const MESSAGE_DELETED: &str = "message:deleted";
    /// Server: a member joined.
    pub const MEMBERS_ADDED: &str = "members:added";
    /// Server: a member left or was removed.
    pub const MEMBERS_REMOVED: &str = "members:removed";
    /// Server: unread counts of this user.
    pub const UNREAD_COUNT: &str = "unread:count";
    /// Server: a conversation including this user was created.
    pub const CONVERSATION_CREATED: &str = "conversation:created";
    /// Server: a conversation was deleted.
    pub const CONVERSATION_DELETED: &str = "conversation:deleted";
}

/// Events of `/notifications`.
pub mod notifications {
    /// Client: a page of notifications.
    pub const LIST: &str = "notification:list";
    /// Client: one notification.
    pub const GET: &str = "notification:get";
    /// Client: mark one read; server: it was read.
    pub const READ: &str = "notification:read";
    /// Client: mark all read; server: all were read.
    pub const READ_ALL: &str = "notification:read_all";
    /// Client: delete one.
    pub const DELETE: &str = "notification:delete";
    /// Client: heartbeat.
    pub const PING: &str = "notification:ping";
    /// Server: heartbeat answer.
    pub const PONG: &str = "pong";
    /// Server: one was deleted.
    pub const DELETED: &str = "notification:deleted";
    /// Server: a new notification (also sent on `/chat`).
    pub const CREATED: &str = "notification:created";
    /// Server: this user's unread count.
    pub const COUNT: &str = "notification:count";
}

/// Events of the restaurant namespaces (seed 001).
pub mod restaurant {
    /// Client: join a restaurant's board.
    pub const JOIN_RESTAURANT: &str = "join:restaurant";
    /// Client: join a station room.
    pub const JOIN_STATION: &str = "join:station";
    /// Client: read the active orders.
    pub const ORDERS_SYNC: &str = "orders:sync";
    /// Server: the answer to `orders:sync`.
    pub const ORDERS_SYNC_COMPLETE: &str = "orders:sync:complete";
    /// Client: move an order.
    pub const ORDER_UPDATE_STATUS: &str = "order:update_status";
    /// Client: complete every order of a table.
    pub const TABLE_COMPLETE: &str = "table:complete";
    /// Server: a table was completed.
    pub const TABLE_COMPLETED: &str = "table:completed";
    /// Server: a new order.
    pub const ORDER_CREATED: &str = "order:created";
    /// Server: an order changed.
    pub const ORDER_UPDATED: &str = "order:updated";
    /// Server: an order moved.
    pub const ORDER_STATUS_CHANGED: &str = "order:status_changed";
    /// Server: an order left the board.
    pub const ORDER_DELETED: &str = "order:deleted";
    /// Server: every active order of a table is ready.
    pub const TABLE_READY: &str = "table:ready";
    /// Server: an urgent message for the kitchen (never batched).
    pub const KITCHEN_ALERT: &str = "kitchen:alert";
    /// Server: batched order events.
    pub const ORDERS_BATCH_UPDATE: &str = "orders:batch_update";
    /// Server: `{ state: "connected" }` once a socket is admitted (seed 001).
    pub const CONNECTION_STATUS: &str = "connection:status";
}

/// Sent to one socket when an event without an ack failed.
pub const ERROR: &str = "error";

/// Events about the connection itself, on every namespace.
pub mod session {
    /// Server: the token expired; the socket is disconnected right after.
    pub const SESSION_EXPIRED: &str = "session:expired";
}
