//! Prometheus metrics, served as text on `GET /metrics`.
//!
//! Label sets are bounded: namespaces are the mounted families (dynamic restaurant
//! namespaces share one label), event names are the known ones or `unknown`, error codes
//! are the closed set. Recording is a read-locked map lookup plus atomics.
//!
//! Names follow Prometheus conventions under the `switchboard_` prefix, except the
//! process metrics (`process`), named as Node's prom-client names them.
//!
//! Past 400 lines because `Default` registers every metric with its help text in one
//! list, so `/metrics` and this file read in the same order.

mod labels;
pub(crate) mod process;

pub use labels::{
    BuildLabels, BusLabels, CodeLabel, DisconnectLabels, EventLabels, LinkLabel, NsLabel,
    PoolLabel, ReasonLabel, RouteLabel, TimeoutLabel, TopicLabel, TransportLabel, TypeLabel,
};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The plain WebSocket routes' metrics (contract §7.1).
#[derive(Clone, Default)]
pub struct WsMetrics {
    /// Open connections per route (`switchboard_ws_connections`).
    pub connections: Family<RouteLabel, Gauge>,
    /// Messages received, by type.
    pub messages_in: Family<TypeLabel, Counter>,
    /// Messages queued to clients, by type.
    pub messages_out: Family<TypeLabel, Counter>,
    /// Connections closed, by reason: `client`, `error`, `idle`, `slow_consumer`,
    /// `too_big`, `shutdown`, `token_expired`, `disconnected` (operator).
    pub closes: Family<ReasonLabel, Counter>,
    /// (channel, connection) subscriptions held by the channel registry.
    pub hub_entries: Gauge,
    /// Channels with at least one subscriber in the registry.
    pub hub_channels: Gauge,
    /// Messages not queued: the connection's queue was full (it is then closed as a
    /// slow consumer) or it was already closing.
    pub dropped: Counter,
    /// Deliveries not cast to the other nodes: the cast queue was full.
    pub cluster_casts_dropped: Counter,
}

impl WsMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "ws_connections",
            "Open plain WebSocket connections per route",
            self.connections.clone(),
        );
        registry.register(
            "ws_messages_in",
            "Plain WebSocket messages received, by type",
            self.messages_in.clone(),
        );
        registry.register(
            "ws_messages_out",
            "Plain WebSocket messages queued to clients, by type",
            self.messages_out.clone(),
        );
        registry.register(
            "ws_closes",
            "Plain WebSocket connections closed, by reason",
            self.closes.clone(),
        );
        registry.register(
            "ws_hub_entries",
            "Channel subscriptions held by the plain WebSocket registry",
            self.hub_entries.clone(),
        );
        registry.register(
            "ws_hub_channels",
            "Channels with subscribers in the plain WebSocket registry",
            self.hub_channels.clone(),
        );
        registry.register(
            "ws_dropped",
            "Plain WebSocket messages not queued (queue full or connection closing)",
            self.dropped.clone(),
        );
        registry.register(
            "ws_cluster_casts_dropped",
            "/ws deliveries not cast to the other nodes (cast queue full)",
            self.cluster_casts_dropped.clone(),
        );
    }
}

/// The cluster bus's metrics (see `realtime::cluster_bus`).
#[derive(Clone, Debug, Default)]
pub struct ClusterBusMetrics {
    /// Messages published (`out`) and received from other nodes (`in`), by topic.
    pub messages: Family<BusLabels, Counter>,
    /// Messages from other nodes dropped because the topic's reader was stalled.
    pub dropped: Family<TopicLabel, Counter>,
    /// Messages this node could not publish (logged with their cause).
    pub publish_failures: Family<TopicLabel, Counter>,
}

impl ClusterBusMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_bus_messages",
            "Cluster bus messages by topic and direction (out: published, in: from other nodes)",
            self.messages.clone(),
        );
        registry.register(
            "cluster_bus_dropped",
            "Cluster bus messages dropped because the topic's reader was stalled",
            self.dropped.clone(),
        );
        registry.register(
            "cluster_bus_publish_failures",
            "Cluster bus messages this node could not publish",
            self.publish_failures.clone(),
        );
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// The unprefixed `process_*` metrics.
    process: Registry,
    /// Connected sockets per namespace family.
    pub sockets: Family<NsLabel, Gauge>,
    /// Client events received.
    pub events: Family<EventLabels, Counter>,
    /// Time from an event's arrival to its reply.
    pub ack_latency: Family<EventLabels, Histogram, fn() -> Histogram>,
    /// Error replies by code.
    pub errors: Family<CodeLabel, Counter>,
    /// Broadcasts that did not reach every target.
    pub broadcast_failures: Counter,
    /// Database pool connections by state (set at scrape time).
    pub pool: Family<PoolLabel, Gauge>,
    /// 1 while a cluster link is connected, 0 while it reconnects.
    pub link_up: Family<LinkLabel, Gauge>,
    /// Times a cluster link was lost.
    pub link_losses: Family<LinkLabel, Counter>,
    /// Times a lost cluster link came back (subscriptions restored).
    pub link_restores: Family<LinkLabel, Counter>,
    /// Cluster messages dropped because their subscriber's queue was full.
    pub link_dropped: Family<LinkLabel, Counter>,
    /// Connections closed because their client stopped reading, by reason.
    pub slow_consumers: Family<ReasonLabel, Counter>,
    /// Connections waiting for their token to expire (one entry each, none after close).
    pub session_lifetimes: Gauge,
    /// TCP connections open now (plain HTTP, long-polling and websockets alike).
    pub connections_open: Gauge,
    /// Connections answered 503 because `MAX_CONNECTIONS` were open.
    pub connections_refused: Counter,
    /// REST requests answered 429 by the per-token limit.
    pub rest_rate_limited: Counter,
    /// Connections closed by the header-read or idle timeout.
    pub connection_timeouts: Family<TimeoutLabel, Counter>,
    /// Socket.io namespaces mounted on this node (set at scrape time).
    pub namespaces: Gauge,
    /// Entries of the dynamic-namespace table: held and pinned paths, and the
    /// (restaurant, path) routes (set at scrape time).
    pub dynamic_routes: Gauge,
    /// Channels each cluster link is subscribed to (LISTEN or SUBSCRIBE).
    pub link_channels: Family<LinkLabel, Gauge>,
    /// Tasks alive in the tokio runtime (set at scrape time): a soak watches it stay flat.
    pub tokio_tasks_alive: Gauge,
    /// Node-to-node messages of the cluster bus.
    pub cluster_bus: ClusterBusMetrics,
    /// Plain WebSocket routes.
    pub ws: WsMetrics,
    /// Connections refused at connect, by code: socket.io `connect_error` codes, and
    /// `SHUTTING_DOWN` for new sessions while the node drains.
    pub connects_refused: Family<CodeLabel, Counter>,
    /// socket.io namespace sockets disconnected, by namespace family and reason.
    pub disconnects: Family<DisconnectLabels, Counter>,
    /// socket.io engine sessions with a namespace socket, by current transport (set at
    /// scrape time).
    pub socketio_connections: Family<TransportLabel, Gauge>,
    /// Server-initiated socket.io emits to rooms (one per emit, whatever the audience).
    pub socketio_emits: Family<NsLabel, Counter>,
    /// Bytes the kernel accepted from us, on every connection.
    pub bytes_sent: Counter,
    /// Bytes read from clients, on every connection.
    pub bytes_received: Counter,
    /// engine.io's "Session ID unknown" answers: a request naming a session this node
    /// does not have. Steady growth behind a load balancer means sticky sessions are
    /// not configured (each long-poll lands on a random node).
    pub session_id_unknown: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let sockets = Family::<NsLabel, Gauge>::default();
        let events = Family::<EventLabels, Counter>::default();
        let ack_latency = Family::<EventLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let errors = Family::<CodeLabel, Counter>::default();
        let broadcast_failures = Counter::default();
        let pool = Family::<PoolLabel, Gauge>::default();
        let link_up = Family::<LinkLabel, Gauge>::default();
        let link_losses = Family::<LinkLabel, Counter>::default();
        let link_restores = Family::<LinkLabel, Counter>::default();
        let link_dropped = Family::<LinkLabel, Counter>::default();
        let slow_consumers = Family::<ReasonLabel, Counter>::default();
        let connections_open = Gauge::default();
        let connections_refused = Counter::default();
        let rest_rate_limited = Counter::default();
        let connection_timeouts = Family::<TimeoutLabel, Counter>::default();
        registry.register(
            "sockets_connected",
            "Connected sockets per namespace",
            sockets.clone(),
        );
        registry.register("events_received", "Client events received", events.clone());
        registry.register(
            "ack_latency_seconds",
            "Time from event arrival to its reply",
            ack_latency.clone(),
        );
        registry.register("error_replies", "Error replies by code", errors.clone());
        registry.register(
            "broadcast_failures",
            "Broadcasts that did not reach every socket",
            broadcast_failures.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            pool.clone(),
        );
        registry.register(
            "cluster_link_up",
            "1 while the cluster link is connected",
            link_up.clone(),
        );
        registry.register(
            "cluster_link_losses",
            "Cluster link connections lost",
            link_losses.clone(),
        );
        registry.register(
            "cluster_link_restores",
            "Cluster link connections restored with their subscriptions",
            link_restores.clone(),
        );
        registry.register(
            "cluster_link_dropped",
            "Cluster messages dropped because a slow subscriber's queue was full",
            link_dropped.clone(),
        );
        registry.register(
            "slow_consumers_closed",
            "Connections closed because the client stopped reading (byte budget or stall)",
            slow_consumers.clone(),
        );
        let session_lifetimes = Gauge::default();
        registry.register(
            "session_lifetimes",
            "Connections registered to end when their token expires",
            session_lifetimes.clone(),
        );
        registry.register(
            "connections_open",
            "TCP connections open",
            connections_open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections answered 503 because MAX_CONNECTIONS were open",
            connections_refused.clone(),
        );
        registry.register(
            "rest_rate_limited",
            "REST requests answered 429 by the per-token rate limit",
            rest_rate_limited.clone(),
        );
        registry.register(
            "connection_timeouts",
            "Connections closed by the header-read or idle timeout",
            connection_timeouts.clone(),
        );
        let namespaces = Gauge::default();
        let dynamic_routes = Gauge::default();
        registry.register(
            "namespaces",
            "Socket.io namespaces mounted on this node",
            namespaces.clone(),
        );
        registry.register(
            "dynamic_namespace_routes",
            "Held and pinned /restaurants/<id> paths plus (restaurant, path) routes",
            dynamic_routes.clone(),
        );
        let link_channels = Family::<LinkLabel, Gauge>::default();
        registry.register(
            "cluster_link_channels",
            "Channels a cluster link is subscribed to",
            link_channels.clone(),
        );
        let tokio_tasks_alive = Gauge::default();
        registry.register(
            "tokio_tasks_alive",
            "Tasks alive in the tokio runtime",
            tokio_tasks_alive.clone(),
        );
        let cluster_bus = ClusterBusMetrics::default();
        cluster_bus.register(&mut registry);
        let ws = WsMetrics::default();
        ws.register(&mut registry);
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                git_sha: env!("SWITCHBOARD_GIT_SHA"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; labels name the version and the commit built from",
            build_info,
        );
        let connects_refused = Family::<CodeLabel, Counter>::default();
        registry.register(
            "connects_refused",
            "Connections refused at connect, by code (connect_error code, or SHUTTING_DOWN)",
            connects_refused.clone(),
        );
        let disconnects = Family::<DisconnectLabels, Counter>::default();
        registry.register(
            "disconnects",
            "socket.io sockets disconnected, by namespace and reason",
            disconnects.clone(),
        );
        let socketio_connections = Family::<TransportLabel, Gauge>::default();
        registry.register(
            "socketio_connections",
            "socket.io engine sessions with a namespace socket, by transport",
            socketio_connections.clone(),
        );
        let socketio_emits = Family::<NsLabel, Counter>::default();
        registry.register(
            "socketio_emits",
            "Server-initiated socket.io emits to rooms, by namespace (one per emit)",
            socketio_emits.clone(),
        );
        let bytes_sent = Counter::default();
        registry.register(
            "bytes_sent",
            "Bytes written to clients on every connection",
            bytes_sent.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "bytes_received",
            "Bytes read from clients on every connection",
            bytes_received.clone(),
        );
        let session_id_unknown = Counter::default();
        registry.register(
            "engine_session_unknown",
            "engine.io 'Session ID unknown' answers (sticky sessions misconfigured when it grows)",
            session_id_unknown.clone(),
        );
        // Series that exist from the start read 0 rather than absent: `rate()` and the
        // dashboard's queries work before the first event.
        for namespace in ["/chat", "/notifications", "restaurant"] {
            let _ = sockets.get_or_create(&NsLabel { namespace });
        }
        for reason in ["budget", "stall"] {
            let _ = slow_consumers.get_or_create(&ReasonLabel { reason });
        }
        for kind in ["header", "idle"] {
            let _ = connection_timeouts.get_or_create(&TimeoutLabel { kind });
        }
        for route in ["/ws", "/ws/dashboard"] {
            let _ = ws.connections.get_or_create(&RouteLabel { route });
        }
        let mut process = Registry::default();
        process.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            process,
            registry,
            sockets,
            events,
            ack_latency,
            errors,
            broadcast_failures,
            pool,
            link_up,
            link_losses,
            link_restores,
            link_dropped,
            slow_consumers,
            session_lifetimes,
            connections_open,
            connections_refused,
            rest_rate_limited,
            connection_timeouts,
            namespaces,
            dynamic_routes,
            link_channels,
            tokio_tasks_alive,
            cluster_bus,
            ws,
            connects_refused,
            disconnects,
            socketio_connections,
            socketio_emits,
            bytes_sent,
            bytes_received,
            session_id_unknown,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.process)
            .and_then(|()| encode_registry(&mut out, &self.registry))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }
}
