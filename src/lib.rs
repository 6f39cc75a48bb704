//! Switchboard: a Socket.IO-compatible realtime server (chat, notifications, restaurant
//! order boards) on axum, socketioxide and PostgreSQL.
//!
//! `main.rs` only reads configuration and calls [`serve`]; tests and examples start the
//! same server on a listener they bind themselves (port 0) and stop it with their own
//! shutdown future.

pub mod admin;
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
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socketioxide::SocketIo;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use socketioxide::SocketIoBuilder;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide_core::adapter::DefinedAdapter;
use socketioxide_postgres::{CustomPostgresAdapter, PostgresAdapterConfig, PostgresAdapterCtr};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use std::sync::Arc;

use crate::auth::Verifier;
use crate::config::AdapterKind;
use crate::config::Config;
use crate::config::ParserKind;
use crate::metrics::Metrics;
use crate::realtime::cluster::{AdapterProbe, BoxFuture, LinkHealth, Mounter, NsInit};
use crate::realtime::cluster_bus::{BusTransport, ClusterBus};
use crate::realtime::pg_link::PgLink;
use crate::realtime::redis_link::RedisLink;
use crate::state::AppState;
use crate::state::InFlight;
use crate::store::Store;

/// Packets queued for one socket at most (see the builder below).
pub const SOCKET_QUEUE_PACKETS: usize = 1024;

/// How long shutdown waits for plain WebSocket connections to send their close frames.
const PLAIN_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Binary attachments one socket.io packet may carry (none of our events use any).
const MAX_BINARY_ATTACHMENTS: usize = 10;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The JWT key could not be read.
    #[error("JWT key: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// Database connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The embedded PostgreSQL could not start.
    #[error("{0}")]
    Embedded(#[from] embedded_pg::EmbeddedPgError),
    /// The socket.io adapter could not connect or subscribe.
    #[error("adapter: {0}")]
    Adapter(String),
    /// Listening or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The socket.io client files could not be read.
    #[error("{0}")]
    ClientBundle(#[from] http::client_bundle::BundleError),
    /// The Admin UI's files could not be read.
    #[error("{0}")]
    AdminUi(#[from] admin::files::UiFilesError),
}

/// Opens a pool on `url` with the configured size.
pub async fn connect_pool(config: &Config, url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // No ping before every query (one round trip each, ~18% of server CPU in the
        // bench's S3); a dead connection fails its query, answers INTERNAL and is dropped.
        .test_before_acquire(false)
        .connect(url)
        .await
}

/// What `serve` needs of a built application, whatever its adapter.
pub trait Running: Send + Sync {
    /// Running event handlers.
    fn in_flight(&self) -> &InFlight;
    /// Stops plain WebSocket connections from taking new client messages.
    fn stop_reading(&self);
    /// Delivers every open batch-mode window of this node.
    fn flush_batches(&self);
    /// Disconnects every socket of this node.
    fn close(&self) -> BoxFuture<()>;
    /// The database pool.
    fn pool(&self) -> &PgPool;
    /// Metrics (the listener counts connections in them).
    fn metrics(&self) -> &Metrics;
    /// The connections' outbound meters.
    fn meters(&self) -> &Arc<outbound::Meters>;
    /// Probes readiness once (before serving, so `/readyz` is right from the start).
    fn probe_readiness(&self) -> BoxFuture<()>;
    /// Starts the background readiness probe that `/readyz` reads.
    fn spawn_readiness_probe(&self) -> tokio::task::JoinHandle<()>;
    /// The cluster bus (none on a single node).
    fn cluster_bus(&self) -> Option<&ClusterBus>;
    /// `/readyz` answers 503 and new sessions are refused from now on.
    fn start_draining(&self);
    /// Connections open now (see [`shutdown::Drain::open`]).
    fn open_connections(&self, drain: &shutdown::Drain) -> usize;
    /// Closes one wave of connections (see [`shutdown::Drain::close_wave`]).
    fn close_wave(&self, drain: &mut shutdown::Drain, waves_left: usize) -> shutdown::Wave;
}

impl<A: Adapter> Running for AppState<A> {
    fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }
    fn stop_reading(&self) {
        self.ws.stop_reading();
    }
    fn flush_batches(&self) {
        realtime::orders::flush_all_batches(self);
    }
    fn close(&self) -> BoxFuture<()> {
        let io = self.broadcaster.io().clone();
        let plain = self.ws.clone();
        Box::pin(async move {
            plain.close_all(ws::CloseReason::Shutdown);
            io.close().await;
            // Their close frames (1001) are out before `serve` returns.
            let left = plain.wait_closed(PLAIN_CLOSE_WAIT).await;
            if left > 0 {
                tracing::warn!(left, "plain WebSocket connections still open at shutdown");
            }
        })
    }
    fn pool(&self) -> &PgPool {
        self.store.pool()
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn meters(&self) -> &Arc<outbound::Meters> {
        &self.meters
    }
    fn probe_readiness(&self) -> BoxFuture<()> {
        let app = self.clone();
        Box::pin(async move { http::health::probe_readiness(&app).await })
    }
    fn spawn_readiness_probe(&self) -> tokio::task::JoinHandle<()> {
        http::health::spawn_readiness_probe(self.clone())
    }
    fn cluster_bus(&self) -> Option<&ClusterBus> {
        AppState::cluster_bus(self)
    }
    fn start_draining(&self) {
        self.readiness.start_draining();
    }
    fn open_connections(&self, drain: &shutdown::Drain) -> usize {
        drain.open(self)
    }
    fn close_wave(&self, drain: &mut shutdown::Drain, waves_left: usize) -> shutdown::Wave {
        drain.close_wave(self, waves_left)
    }
}

/// Builds the whole application (REST routes with socket.io layered on) over `pool`,
/// with the socket.io adapter chosen by `ADAPTER`. The only place that names adapters.
pub async fn build_app(
    config: Config,
    pool: PgPool,
) -> Result<(Router, Arc<dyn Running>), StartError> {
    let verifier = Verifier::new(&config.jwt)?;
    let max_payload = config.max_payload_bytes;
    let builder = SocketIo::builder()
        .max_payload(max_payload as u64)
        .ws_max_message_size(max_payload)
        .ws_max_frame_size(max_payload)
        .req_path(config.engine.path.clone())
        .ping_interval(config.engine.ping_interval)
        .ping_timeout(config.engine.ping_timeout)
        // Each websocket keeps its read buffer for life: 4 KiB by default, though events
        // are small (a bigger frame still arrives whole, in more reads). 1 KiB took the
        // bench's S1 from 23.1 to 19.7 KiB per idle connection; 512 B saved nothing more.
        .ws_read_buffer_size(1024)
        // Packets queued per socket before emits to it fail. A burst (a busy room, a
        // client pipelining sends) must not drop packets, acks included: 128 did with
        // 100 pipelined sends. The queue grows in 32-slot blocks only as it fills, so the
        // bound costs nothing while idle, but a client that stops reading fills it before
        // WRITE_STALL_TIMEOUT_SECS closes it: 200 such sockets in a busy room grew RSS by
        // ~180 MiB at 4096 slots (broadcast payloads are shared; the slots are not).
        .max_buffer_size(SOCKET_QUEUE_PACKETS);
    // Node's `parser`: one encoding for every client of the server.
    let builder = match config.engine.parser {
        // No event takes binary data, but the parser holds a binary packet's attachments
        // until the last one arrives, before the client is even authenticated: 10,000
        // attachments and 10 MB per connection by default. A binary event still gets its
        // BAD_REQUEST ack (it decodes like a missing payload) if it is small; past these
        // bounds the connection is closed.
        ParserKind::Json => builder.with_parser(
            socketioxide::ParserConfig::common()
                .max_incoming_binaries(MAX_BINARY_ATTACHMENTS)
                .max_incoming_binary_buf_size(max_payload)
                .packet_completion_timeout(Duration::from_secs(10)),
        ),
        // Every packet is one MessagePack frame, binary inline: no attachments are held
        // between frames, and a frame is bounded by MAX_PAYLOAD_BYTES like any other
        // (max_payload for polling, ws_max_message_size for websocket).
        ParserKind::Msgpack => builder.with_parser(socketioxide::ParserConfig::msgpack()),
    };
    // Node's `transports` option: a server that refuses one answers its handshakes 400.
    let builder = match (config.engine.polling, config.engine.websocket) {
        (true, false) => builder.transports([socketioxide::TransportType::Polling]),
        (false, true) => builder.transports([socketioxide::TransportType::Websocket]),
        _ => builder,
    };
    let metrics = Metrics::default();
    // The cluster bus rides the adapter's own link: a Redis node opens no LISTEN
    // connection, a PostgreSQL node one (shared by every namespace and the bus).
    let bus = |transport| async {
        ClusterBus::start(transport, &config.adapter_prefix, &metrics.cluster_bus)
            .await
            .map_err(|e| StartError::Adapter(e.to_string()))
    };
    match config.adapter {
        AdapterKind::Local => assemble(builder, config, pool, verifier, metrics, None, None).await,
        AdapterKind::Redis => {
            let url = config.redis_url.clone().unwrap_or_default();
            // Pub/sub on a shared connection needs RESP3 (Redis 7+).
            let url = if url.contains("protocol=") {
                url
            } else if url.contains('?') {
                format!("{url}&protocol=resp3")
            } else {
                format!("{url}?protocol=resp3")
            };
            let client =
                redis::Client::open(url).map_err(|e| StartError::Adapter(e.to_string()))?;
            let link = RedisLink::connect(client, LinkHealth::new(&metrics, "redis"))
                .await
                .map_err(|e| StartError::Adapter(e.to_string()))?;
            let cluster_bus = bus(BusTransport::Redis(link.clone())).await?;
            let settings = RedisAdapterConfig::new().with_prefix(config.adapter_prefix.clone());
            let ctr = RedisAdapterCtr::new_with_driver(link.clone(), settings);
            let builder = builder.with_adapter::<CustomRedisAdapter<Emitter, RedisLink>>(ctr);
            let ping: AdapterProbe = Box::new(move || {
                let link = link.clone();
                Box::pin(async move { link.ping().await.map_err(|e| e.to_string()) })
            });
            assemble(
                builder,
                config,
                pool,
                verifier,
                metrics,
                Some(ping),
                Some(cluster_bus),
            )
            .await
        }
        AdapterKind::Postgres => {
            let listen = PgLink::start(pool.clone(), LinkHealth::new(&metrics, "postgres_listen"))
                .await
                .map_err(|e| StartError::Adapter(e.to_string()))?;
            let cluster_bus = bus(BusTransport::Postgres(listen.clone(), pool.clone())).await?;
            let settings = PostgresAdapterConfig::new().with_prefix(config.adapter_prefix.clone());
            let ctr = PostgresAdapterCtr::new_with_driver(listen.clone(), settings);
            let builder = builder.with_adapter::<CustomPostgresAdapter<Emitter, PgLink>>(ctr);
            assemble(
                builder,
                config,
                pool,
                verifier,
                metrics,
                Some(listen_probe(listen)),
                Some(cluster_bus),
            )
            .await
        }
    }
}

/// Readiness of a PostgreSQL node's cluster link: its LISTEN connection (the pool's
/// own connections are covered by the database ping).
fn listen_probe(listen: PgLink) -> AdapterProbe {
    Box::new(move || {
        let up = listen.is_up();
        Box::pin(async move {
            if up {
                Ok(())
            } else {
                Err("LISTEN connection down".to_owned())
            }
        })
    })
}

async fn assemble<A>(
    builder: SocketIoBuilder<A>,
    config: Config,
    pool: PgPool,
    verifier: Verifier,
    metrics: Metrics,
    probe: Option<AdapterProbe>,
    cluster_bus: Option<ClusterBus>,
) -> Result<(Router, Arc<dyn Running>), StartError>
where
    A: Adapter + DefinedAdapter,
    A::InitRes: NsInit,
{
    let max_payload = config.max_payload_bytes;
    let (io_layer, io) = builder.build_layer();
    let app = AppState::new(
        config,
        Store::new(pool),
        verifier,
        io.clone(),
        metrics,
        cluster_bus,
    );
    let (inits, per_restaurant) = realtime::namespaces::register_all(&app);
    for init in inits {
        init.ready().await.map_err(StartError::Adapter)?;
    }
    if let Some(init) = admin::register(&app) {
        init.ready().await.map_err(StartError::Adapter)?;
    }
    let mount_app = app.clone();
    // One mount per path even when the first events for a restaurant race each other.
    let mounts: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<()>>>>> =
        Arc::default();
    let mounter: Mounter = Box::new(move |path: String| {
        let io = mount_app.broadcaster.io().clone();
        // Pinned first: a path this node sends to is never deleted under it.
        mount_app.dynamic.pin(&path);
        // Called on every restaurant event in a cluster: build nothing once mounted.
        if io.of(&path).is_some() {
            return Box::pin(async {});
        }
        let once = mounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(path.clone())
            .or_default()
            .clone();
        let handler = per_restaurant.handler(&mount_app);
        Box::pin(async move {
            // A failed mount is tried again by the next event.
            let _ = once
                .get_or_try_init(|| async move {
                    if io.of(&path).is_some() {
                        return Ok(());
                    }
                    io.ns(path.clone(), handler).ready().await.map_err(|e| {
                        tracing::warn!(ns = %path, error = %e, "could not mount namespace for cluster routing");
                    })
                })
                .await;
        })
    });
    app.set_mounter(mounter);
    app.lifetimes.start();
    realtime::order_bus::start(&app);
    realtime::session_bus::start(&app);
    ws::cluster::start(&app);
    if let Some(probe) = probe {
        app.set_adapter_probe(probe);
    }

    outbound::Meters::spawn_sweeper(&app.meters);
    let router = http::router()
        .with_state(app.clone())
        .layer(DefaultBodyLimit::max(max_payload))
        .layer(axum::middleware::from_fn_with_state(
            (
                app.clone(),
                Arc::new(http::rate_limit::RestLimiter::new(
                    app.config.rest_rate_limit_per_sec,
                    app.config.rest_rate_limit_burst,
                )),
            ),
            http::rate_limit::limit::<A>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            track_rest::<A>,
        ))
        .layer(io_layer)
        // Right around the engine: sees its answers, not `link_sessions`' own.
        .layer(axum::middleware::from_fn_with_state(
            http::access::EngineAnswers {
                engine_path: Arc::from(app.config.engine.path.as_str()),
                session_unknown: app.metrics.session_id_unknown.clone(),
            },
            http::access::count_unknown_sessions,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            shutdown::refuse_new_sessions::<A>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            EngineGate {
                path: Arc::from(app.config.engine.path.as_str()),
                allow_eio3: app.config.engine.allow_eio3,
            },
            refuse_eio3,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.meters.clone(),
            outbound::link_sessions,
        ))
        // Before the session linking, which reads a handshake's answer for its sid.
        .layer(axum::middleware::from_fn_with_state(
            http::client_bundle::ClientBundle::load(
                &app.config.engine.path,
                app.config.engine.client_dir.as_deref(),
            )?,
            http::client_bundle::serve,
        ))
        .layer(axum::middleware::map_request_with_state(
            Arc::<str>::from(app.config.engine.path.as_str()),
            own_handshake_parts,
        ))
        .layer(axum::middleware::from_fn_with_state(
            admin::files::UiFiles::load(
                app.config
                    .admin_ui
                    .dir
                    .as_deref()
                    .filter(|_| app.config.admin_ui.enabled),
            )?,
            admin::files::serve,
        ))
        .layer(cors(&app.config))
        .layer(axum::middleware::from_fn_with_state(
            app.config.allowed_origins.clone(),
            refuse_foreign_websockets,
        ));
    // Outermost: the line carries the status the client got, whoever answered.
    let router = if app.config.access_log {
        router.layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(app.config.engine.path.as_str()),
            http::access::log,
        ))
    } else {
        router
    };
    Ok((router, Arc::new(app)))
}

/// Counts REST requests as in flight, like socket events, so shutdown lets them finish.
async fn track_rest<A: Adapter>(
    State(app): State<AppState<A>>,
    req: Request,
    next: Next,
) -> Response {
    let _in_flight = app.in_flight.enter();
    next.run(req).await
}

/// What [`refuse_eio3`] needs to know.
#[derive(Clone)]
struct EngineGate {
    /// `SOCKETIO_PATH`.
    path: Arc<str>,
    /// `ALLOW_EIO3`.
    allow_eio3: bool,
}

/// The body engine.io answers a protocol version it does not speak with: the body Node
/// sends with `allowEIO3: false`, spelled as engineioxide spells its own errors (and
/// its answer to `EIO=2`).
const UNSUPPORTED_PROTOCOL: &str = r#"{"code":"5","message":"Unsupported protocol version"}"#;

/// The engine.io protocol a request names: the first `EIO=` of its query, as
/// engineioxide reads it.
fn eio_version(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find(|pair| pair.starts_with("EIO="))
        .and_then(|pair| pair.split('=').nth(1))
}

/// socketioxide's `v4` feature (compiled in for `ALLOW_EIO3`) admits engine.io 3 with
/// no switch of its own: without `ALLOW_EIO3=true` its requests (handshakes, polls and
/// upgrades alike) are answered here as Node answers them with `allowEIO3: false`.
async fn refuse_eio3(State(gate): State<EngineGate>, req: Request, next: Next) -> Response {
    if !gate.allow_eio3
        && outbound::under(req.uri().path(), &gate.path)
        && eio_version(req.uri().query()) == Some("3")
    {
        tracing::debug!("engine.io 3 request refused (ALLOW_EIO3 is off)");
        return (
            axum::http::StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            UNSUPPORTED_PROTOCOL,
        )
            .into_response();
    }
    next.run(req).await
}

/// socketioxide keeps each socket's handshake request parts for its whole life; the
/// header values and URI are slices of hyper's 16 KiB read buffer, which they keep
/// alive. Copying them out frees that buffer (bench S1: ~34 → ~24 KiB per connection).
async fn own_handshake_parts(State(engine_path): State<Arc<str>>, req: Request) -> Request {
    if !outbound::under(req.uri().path(), &engine_path) {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let Ok(owned) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.append(name.clone(), owned);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = axum::http::Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// CORS for polling and REST: the allow-list with credentials, or any origin without.
fn cors(config: &Config) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .max_age(Duration::from_secs(600));
    match &config.allowed_origins {
        Some(origins) => {
            let list: Vec<HeaderValue> = origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            base.allow_origin(AllowOrigin::list(list))
                .allow_credentials(true)
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        }
        None => base.allow_origin(Any).allow_headers(Any),
    }
}

/// With `ALLOWED_ORIGINS` set, a websocket upgrade from another origin is refused with
/// 403 (browsers do not apply CORS to websockets, so the server must).
async fn refuse_foreign_websockets(
    State(allowed): State<Option<Vec<String>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(allowed) = &allowed {
        let is_upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if is_upgrade
            && let Some(origin) = origin
            && !allowed.iter().any(|a| a == origin.trim_end_matches('/'))
        {
            tracing::debug!(origin, "websocket upgrade from a foreign origin refused");
            return error::AppError::forbidden("origin not allowed").into_response();
        }
    }
    next.run(req).await
}

/// Serves on `listener` until `shutdown` resolves, then drains (see [`shutdown`]):
/// `/readyz` turns 503 at once and new sessions are refused; open connections are
/// closed in waves over `SHUTDOWN_GRACE_SECS` so their clients reconnect elsewhere
/// spread over that window; then it stops accepting, lets running handlers finish their
/// acks (until the window ends), closes what is left, and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let grace = config.shutdown_grace;
    let notify_socket = config.notify_socket.clone();
    let limits_config = config.clone();
    let (router, app) = build_app(config, pool).await?;
    let limits = listener::Limits::new(&limits_config, app.metrics(), app.meters().clone());
    app.probe_readiness().await;
    let probe = app.spawn_readiness_probe();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = listener::run(listener, router, limits, stop_rx);
    let mut server = tokio::spawn(server);
    notify::notify(notify_socket.as_deref(), "READY=1");
    tokio::select! {
        result = &mut server => {
            probe.abort();
            return flatten(result);
        }
        () = shutdown => {}
    }
    notify::notify(notify_socket.as_deref(), "STOPPING=1");
    let signalled = tokio::time::Instant::now();
    let deadline = signalled + grace;
    app.start_draining();
    let mut drain = shutdown::Drain::default();
    let waves = shutdown::wave_count(app.open_connections(&drain));
    tracing::info!(
        waves,
        grace_secs = grace.as_secs(),
        "shutting down: /readyz answers 503, closing connections in waves"
    );
    for wave in 0..waves {
        tokio::time::sleep_until(signalled + shutdown::wave_offset(grace, wave, waves)).await;
        let done = app.close_wave(&mut drain, waves - wave);
        tracing::debug!(
            wave,
            closed = done.closed,
            open = done.open,
            "shutdown wave"
        );
        if done.open == 0 {
            break;
        }
    }
    // The listener keeps answering /readyz (503) and REST through the waves; now it
    // stops accepting.
    let _ = stop_tx.send(true);
    // A /ws client with a backlog of messages would otherwise keep the server busy
    // (and waiting) until the deadline.
    app.stop_reading();
    let left = app
        .in_flight()
        .wait_idle(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    if left > 0 {
        tracing::warn!(left, "shutdown grace elapsed with events still running");
    }
    // Handlers are done: no order event can join a window after this.
    app.flush_batches();
    app.close().await;
    // Every event and REST request has finished and every socket is closed; what can
    // still hold the server is an engine.io long-poll with no namespace socket, which
    // socketioxide does not close. Give connections a moment, then drop them.
    let linger = grace.min(Duration::from_secs(1));
    let result = match tokio::time::timeout(linger, &mut server).await {
        Ok(result) => flatten(result),
        Err(_) => {
            tracing::info!("closing the connections still open after shutdown");
            server.abort();
            Ok(())
        }
    };
    probe.abort();
    // Namespace handlers hold the state (and so the pool) for as long as the socket.io
    // instance lives; close the pool explicitly so no connection outlives the server.
    app.pool().close().await;
    result
}

fn flatten(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), StartError> {
    match result {
        Ok(inner) => inner.map_err(StartError::from),
        Err(e) => Err(StartError::Io(std::io::Error::other(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::eio_version;

    #[test]
    fn the_first_eio_parameter_names_the_protocol() {
        assert_eq!(eio_version(Some("EIO=3&transport=polling")), Some("3"));
        assert_eq!(eio_version(Some("transport=websocket&EIO=4")), Some("4"));
        assert_eq!(eio_version(Some("EIO=4&EIO=3")), Some("4"));
        assert_eq!(eio_version(Some("XEIO=3&transport=polling")), None);
        assert_eq!(eio_version(Some("transport=polling")), None);
        assert_eq!(eio_version(None), None);
    }
}
