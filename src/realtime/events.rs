//! Event names on the wire, so a typo is a compile error rather than a silent miss.

/// Namespace paths.
pub mod ns {
    /// Chat namespace.
    pub const CHAT: &str = "/chat";
    /// Notifications namespace.
    pub const NOTIFICATIONS: &str = "/notifications";
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

/// Sent to one socket when an event without an ack failed.
pub const ERROR: &str = "error";
