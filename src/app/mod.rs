//! Building the application: the socket.io engine with its tuned knobs, the adapter
//! `ADAPTER` names (the only place that names adapters), then the state, namespaces
//! and router ([`assemble`]).
//!
//! It leaves serving and draining to [`crate::serve()`], the layers' own logic to
//! [`crate::http::layers`], and what an adapter link does to `realtime/`.

mod assemble;
mod running;

use std::time::Duration;

use axum::Router;
use socketioxide::SocketIo;
use socketioxide::adapter::Emitter;
use socketioxide_postgres::{CustomPostgresAdapter, PostgresAdapterConfig, PostgresAdapterCtr};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;

use crate::auth::Verifier;
use crate::config::{AdapterKind, Config, ParserKind};
use crate::metrics::Metrics;
use crate::realtime::cluster::{AdapterProbe, LinkHealth};
use crate::realtime::cluster_bus::{BusTransport, ClusterBus};
use crate::realtime::pg_link::PgLink;
use crate::realtime::redis_link::RedisLink;
use crate::{admin, embedded_pg, http};

use assemble::assemble;
pub use running::Running;

/// Packets queued for one socket at most (see [`build_app`]).
pub const SOCKET_QUEUE_PACKETS: usize = 1024;

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
    // No `_` arm: a new kind must be wired here before it compiles.
    match config.adapter {
        AdapterKind::Local => assemble(builder, config, pool, verifier, metrics, None, None).await,
        AdapterKind::Redis => {
            // `Config` requires REDIS_URL with ADAPTER=redis and adds RESP3 to it.
            let url = config
                .redis_url
                .clone()
                .ok_or_else(|| StartError::Adapter("REDIS_URL is unset".to_owned()))?;
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
