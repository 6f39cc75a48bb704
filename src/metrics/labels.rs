//! The label sets, each a closed set of values (see the module docs of `metrics`).

use prometheus_client::encoding::EncodeLabelSet;

/// `namespace` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NsLabel {
    /// Namespace family.
    pub namespace: &'static str,
}

/// `namespace`, `event` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Namespace family.
    pub namespace: &'static str,
    /// Event name (known names only; others are `unknown`).
    pub event: &'static str,
}

/// `code` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// Error code (chat dialect spelling).
    pub code: &'static str,
}

/// `namespace`, `reason` labels of socket.io disconnects.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisconnectLabels {
    /// Namespace family.
    pub namespace: &'static str,
    /// socketioxide's reason, in snake case (`transport_close`, `heartbeat_timeout`, ...).
    pub reason: &'static str,
}

/// `transport` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabel {
    /// `polling` or `websocket`.
    pub transport: &'static str,
}

/// `version`, `git_sha` labels of `switchboard_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The commit built from (`unknown` outside a git checkout).
    pub git_sha: &'static str,
}

/// `state` label of the pool gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabel {
    /// `in_use` or `idle`.
    pub state: &'static str,
}

/// `link` label: a node's connection that carries cluster traffic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabel {
    /// `postgres_listen` (the LISTEN connection) or `redis`.
    pub link: &'static str,
}

/// `reason` label of closed connections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Slow consumers: `budget` (MAX_SOCKET_BUFFER_BYTES) or `stall`
    /// (WRITE_STALL_TIMEOUT_SECS); plain WebSocket closes: see [`WsMetrics::closes`].
    pub reason: &'static str,
}

/// `route` label of plain WebSocket connections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route pattern (`/ws`).
    pub route: &'static str,
}

/// `type` label of plain WebSocket messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// A type the server knows (client types it handles, its own reply types),
    /// `published` for `POST /api/publish` deliveries, `unknown` or `invalid` otherwise.
    pub r#type: &'static str,
}

/// `kind` label of connection timeouts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimeoutLabel {
    /// `header` (request head too slow) or `idle` (no byte moved).
    pub kind: &'static str,
}

/// `topic` label of the cluster bus.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// `orders`, `sessions` or `publish`.
    pub topic: &'static str,
}

/// `topic`, `direction` labels of cluster bus messages.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    /// `orders`, `sessions` or `publish`.
    pub topic: &'static str,
    /// `out` (published by this node) or `in` (from another node).
    pub direction: &'static str,
}
