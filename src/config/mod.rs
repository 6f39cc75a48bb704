//! Typed configuration, read once from the environment (and `.env`) at start.
//!
//! Everything else receives a [`Config`] value; nothing else reads the environment.
//! `.env.example` lists every variable read here with its default.
//!
//! Here: the settings and `Config::from_env`; `sections.rs` the engine, plain WebSocket
//! and Admin UI sections with their readers; `checks.rs` the value checks (secrets,
//! durations, action lists, the Redis URL); `redact.rs` the `Debug` that prints no secret.

mod checks;
mod redact;
mod sections;
#[cfg(test)]
mod tests;

use checks::{allowed_actions, checked_secret, positive_secs, with_resp3};
pub use sections::{AdminUiConfig, EngineConfig, ParserKind, WsConfig};
use sections::{admin_ui_config, engine_config};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How JWTs are verified.
#[derive(Clone)]
pub enum JwtKey {
    /// Shared secret, HS256.
    Secret(String),
    /// PEM public key, RS256 or ES256 (see [`JwtConfig::algorithm`]).
    PublicKeyPem(String),
}

impl std::fmt::Debug for JwtKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("JwtKey::Secret(<redacted>)"),
            JwtKey::PublicKeyPem(_) => f.write_str("JwtKey::PublicKeyPem(..)"),
        }
    }
}

/// JWT verification settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Key material.
    pub key: JwtKey,
    /// Pinned algorithm; the token's header never chooses it.
    pub algorithm: jsonwebtoken::Algorithm,
    /// Required `iss` when set.
    pub issuer: Option<String>,
    /// Required `aud` when set.
    pub audience: Option<String>,
    /// Clock leeway for `exp`/`nbf`.
    pub leeway_secs: u64,
}

/// Which socket.io adapter carries broadcasts between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// One node: in-memory rooms.
    Local,
    /// Several nodes over PostgreSQL LISTEN/NOTIFY on `DATABASE_URL` (socketioxide-postgres).
    Postgres,
    /// Several nodes over Redis 7+ pub/sub on `REDIS_URL` (socketioxide-redis).
    Redis,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// All settings of a Switchboard process.
///
/// Its `Debug` prints no secret: not the JWT key, not the Admin UI's password hash,
/// not the password inside `DATABASE_URL` or `REDIS_URL`.
#[derive(Clone)]
pub struct Config {
    /// Listen address (`BIND_ADDR`).
    pub bind_addr: SocketAddr,
    /// External database (`DATABASE_URL`); `None` runs the embedded PostgreSQL.
    pub database_url: Option<String>,
    /// Where the embedded database keeps its files (`DATA_DIR`).
    pub data_dir: PathBuf,
    /// Apply pending migrations at start (`MIGRATE`).
    pub migrate: bool,
    /// Pool size (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// CORS allow-list (`ALLOWED_ORIGINS`); `None` = any origin, no credentials.
    pub allowed_origins: Option<Vec<String>>,
    /// Largest polling payload and websocket message (`MAX_PAYLOAD_BYTES`).
    pub max_payload_bytes: usize,
    /// JWT settings.
    pub jwt: JwtConfig,
    /// Token-bucket refill per second, per socket and event (`RATE_LIMIT_PER_SEC`).
    pub rate_limit_per_sec: f64,
    /// Token-bucket size (`RATE_LIMIT_BURST`).
    pub rate_limit_burst: f64,
    /// REST requests per second per bearer token, refill (`REST_RATE_LIMIT_PER_SEC`).
    pub rest_rate_limit_per_sec: f64,
    /// REST token-bucket size (`REST_RATE_LIMIT_BURST`).
    pub rest_rate_limit_burst: f64,
    /// Restaurant batch window (`ORDER_BATCH_MS`).
    pub order_batch: Duration,
    /// The shutdown window (`SHUTDOWN_GRACE_SECS`): connections are closed in waves
    /// over it, and running handlers get up to its end to send their acks.
    pub shutdown_grace: Duration,
    /// One log line per REST request and per handshake (`ACCESS_LOG`).
    pub access_log: bool,
    /// Where systemd listens for readiness (`NOTIFY_SOCKET`, set by systemd for
    /// `Type=notify` units).
    pub notify_socket: Option<String>,
    /// Socket.io adapter (`ADAPTER`).
    pub adapter: AdapterKind,
    /// Redis for `ADAPTER=redis` (`REDIS_URL`), with `protocol=resp3` added when it
    /// names no protocol.
    pub redis_url: Option<String>,
    /// Channel prefix of the cluster adapter (`ADAPTER_PREFIX`): nodes with the same
    /// prefix form one cluster.
    pub adapter_prefix: String,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Bytes of replies queued for one connection and not yet taken by the kernel,
    /// past which the connection is closed (`MAX_SOCKET_BUFFER_BYTES`).
    pub max_socket_buffer_bytes: u64,
    /// How long a connection's writes may be refused (the client not reading) before
    /// it is closed (`WRITE_STALL_TIMEOUT_SECS`).
    pub write_stall_timeout: Duration,
    /// Most members a conversation may have, its owner included
    /// (`MAX_CONVERSATION_MEMBERS`): at create and at `members:add`.
    pub max_conversation_members: usize,
    /// Longest wait for a complete request head, from accept or from the end of the
    /// previous response (`HTTP_HEADER_TIMEOUT_SECS`).
    pub http_header_timeout: Duration,
    /// Longest time a plain HTTP connection may move no byte either way
    /// (`HTTP_IDLE_TIMEOUT_SECS`); upgraded websockets and parked long-polls are exempt.
    pub http_idle_timeout: Duration,
    /// Open TCP connections at most; more are answered 503 (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Plain WebSocket routes (`WS_*`).
    pub ws: WsConfig,
    /// engine.io options, as Node's `new Server({ path, pingInterval, pingTimeout,
    /// transports })`.
    pub engine: EngineConfig,
    /// The socket.io Admin UI (`ADMIN_UI*`), Node's `instrument(io, ...)`.
    pub admin_ui: AdminUiConfig,
}

/// A configuration variable with a bad value.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {name}: {problem}")]
pub struct ConfigError {
    name: &'static str,
    problem: String,
}

fn problem(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads `.env` (if present) and the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is worth a warning, not a crash.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            eprintln!("warning: could not read .env: {e}");
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a configuration from any lookup function (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            value: Option<String>,
            default: T,
        ) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            match value {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|e: T::Err| problem(name, format!("{v:?}: {e}"))),
            }
        }

        let bind_addr = parse(
            "BIND_ADDR",
            var("BIND_ADDR"),
            SocketAddr::from(([0, 0, 0, 0], 3001)),
        )?;
        let algorithm_name = var("JWT_ALGORITHM");
        let key = match (var("JWT_SECRET"), var("JWT_PUBLIC_KEY")) {
            (Some(_), Some(_)) => {
                return Err(problem(
                    "JWT_SECRET",
                    "set either JWT_SECRET or JWT_PUBLIC_KEY, not both",
                ));
            }
            (Some(secret), None) => JwtKey::Secret(checked_secret(secret)?),
            // `\n` escapes let a PEM key live on one line of a .env file.
            (None, Some(pem)) => JwtKey::PublicKeyPem(pem.replace("\\n", "\n")),
            (None, None) => {
                return Err(problem(
                    "JWT_SECRET",
                    "required (or JWT_PUBLIC_KEY): tokens cannot be verified without a key",
                ));
            }
        };
        let algorithm = match (&key, algorithm_name.as_deref()) {
            (JwtKey::Secret(_), None | Some("HS256")) => jsonwebtoken::Algorithm::HS256,
            (JwtKey::PublicKeyPem(_), None | Some("RS256")) => jsonwebtoken::Algorithm::RS256,
            (JwtKey::PublicKeyPem(_), Some("ES256")) => jsonwebtoken::Algorithm::ES256,
            (_, Some(other)) => {
                return Err(problem(
                    "JWT_ALGORITHM",
                    format!(
                        "{other:?} does not fit the key (HS256 with JWT_SECRET; RS256 or ES256 with JWT_PUBLIC_KEY)"
                    ),
                ));
            }
        };
        let allowed_origins = var("ALLOWED_ORIGINS").map(|list| {
            list.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect::<Vec<_>>()
        });
        let adapter = match var("ADAPTER").as_deref() {
            None | Some("local") => AdapterKind::Local,
            Some("postgres") => AdapterKind::Postgres,
            Some("redis") => AdapterKind::Redis,
            Some(other) => {
                return Err(problem(
                    "ADAPTER",
                    format!("{other:?}: use local, postgres or redis"),
                ));
            }
        };
        let redis_url = var("REDIS_URL").map(with_resp3);
        if adapter == AdapterKind::Redis && redis_url.is_none() {
            return Err(problem("REDIS_URL", "required with ADAPTER=redis"));
        }
        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(problem(
                    "LOG_FORMAT",
                    format!("{other:?}: use pretty or json"),
                ));
            }
        };
        let rate_limit_per_sec: f64 = parse("RATE_LIMIT_PER_SEC", var("RATE_LIMIT_PER_SEC"), 10.0)?;
        let rate_limit_burst: f64 = parse("RATE_LIMIT_BURST", var("RATE_LIMIT_BURST"), 20.0)?;
        if !(rate_limit_per_sec > 0.0 && rate_limit_burst >= 1.0) {
            return Err(problem(
                "RATE_LIMIT_PER_SEC",
                "rate must be > 0 and RATE_LIMIT_BURST >= 1",
            ));
        }
        let rest_rate_limit_per_sec: f64 = parse(
            "REST_RATE_LIMIT_PER_SEC",
            var("REST_RATE_LIMIT_PER_SEC"),
            50.0,
        )?;
        let rest_rate_limit_burst: f64 =
            parse("REST_RATE_LIMIT_BURST", var("REST_RATE_LIMIT_BURST"), 200.0)?;
        if !(rest_rate_limit_per_sec > 0.0
            && rest_rate_limit_burst >= 1.0
            && rest_rate_limit_per_sec.is_finite()
            && rest_rate_limit_burst.is_finite())
        {
            return Err(problem(
                "REST_RATE_LIMIT_PER_SEC",
                "rate must be > 0 and REST_RATE_LIMIT_BURST >= 1, both finite",
            ));
        }
        let max_payload_bytes: usize =
            parse("MAX_PAYLOAD_BYTES", var("MAX_PAYLOAD_BYTES"), 1_000_000)?;
        if max_payload_bytes < 1024 {
            return Err(problem("MAX_PAYLOAD_BYTES", "must be at least 1024"));
        }

        Ok(Config {
            bind_addr,
            database_url: var("DATABASE_URL"),
            data_dir: PathBuf::from(var("DATA_DIR").unwrap_or_else(|| "./data".to_owned())),
            migrate: parse("MIGRATE", var("MIGRATE"), true)?,
            database_max_connections: parse(
                "DATABASE_MAX_CONNECTIONS",
                var("DATABASE_MAX_CONNECTIONS"),
                20,
            )?,
            allowed_origins,
            max_payload_bytes,
            jwt: JwtConfig {
                key,
                algorithm,
                issuer: var("JWT_ISSUER"),
                audience: var("JWT_AUDIENCE"),
                leeway_secs: parse("JWT_LEEWAY_SECS", var("JWT_LEEWAY_SECS"), 30)?,
            },
            rate_limit_per_sec,
            rate_limit_burst,
            rest_rate_limit_per_sec,
            rest_rate_limit_burst,
            order_batch: Duration::from_millis(parse(
                "ORDER_BATCH_MS",
                var("ORDER_BATCH_MS"),
                100,
            )?),
            shutdown_grace: Duration::from_secs(parse(
                "SHUTDOWN_GRACE_SECS",
                var("SHUTDOWN_GRACE_SECS"),
                10,
            )?),
            access_log: parse("ACCESS_LOG", var("ACCESS_LOG"), true)?,
            notify_socket: var("NOTIFY_SOCKET"),
            adapter,
            redis_url,
            adapter_prefix: var("ADAPTER_PREFIX").unwrap_or_else(|| "socket.io".to_owned()),
            log_format,
            max_socket_buffer_bytes: parse(
                "MAX_SOCKET_BUFFER_BYTES",
                var("MAX_SOCKET_BUFFER_BYTES"),
                4 << 20,
            )?,
            write_stall_timeout: Duration::from_secs(parse(
                "WRITE_STALL_TIMEOUT_SECS",
                var("WRITE_STALL_TIMEOUT_SECS"),
                20,
            )?),
            max_conversation_members: match parse(
                "MAX_CONVERSATION_MEMBERS",
                var("MAX_CONVERSATION_MEMBERS"),
                1000,
            )? {
                0 | 1 => return Err(problem("MAX_CONVERSATION_MEMBERS", "must be at least 2")),
                n => n,
            },
            http_header_timeout: positive_secs(
                "HTTP_HEADER_TIMEOUT_SECS",
                parse(
                    "HTTP_HEADER_TIMEOUT_SECS",
                    var("HTTP_HEADER_TIMEOUT_SECS"),
                    10,
                )?,
            )?,
            http_idle_timeout: positive_secs(
                "HTTP_IDLE_TIMEOUT_SECS",
                parse("HTTP_IDLE_TIMEOUT_SECS", var("HTTP_IDLE_TIMEOUT_SECS"), 60)?,
            )?,
            max_connections: match parse("MAX_CONNECTIONS", var("MAX_CONNECTIONS"), 20_000)? {
                0 => return Err(problem("MAX_CONNECTIONS", "must be at least 1")),
                n => n,
            },
            engine: engine_config(&var)?,
            admin_ui: admin_ui_config(&var)?,
            ws: WsConfig {
                max_message_bytes: match parse(
                    "WS_MAX_MESSAGE_BYTES",
                    var("WS_MAX_MESSAGE_BYTES"),
                    65_536,
                )? {
                    n if n < 256 => {
                        return Err(problem("WS_MAX_MESSAGE_BYTES", "must be at least 256"));
                    }
                    n => n,
                },
                send_queue: match parse("WS_SEND_QUEUE", var("WS_SEND_QUEUE"), 256)? {
                    0 => return Err(problem("WS_SEND_QUEUE", "must be at least 1")),
                    n => n,
                },
                ping_interval: positive_secs(
                    "WS_PING_INTERVAL_SECS",
                    parse("WS_PING_INTERVAL_SECS", var("WS_PING_INTERVAL_SECS"), 54)?,
                )?,
                idle_timeout: positive_secs(
                    "WS_IDLE_TIMEOUT_SECS",
                    parse("WS_IDLE_TIMEOUT_SECS", var("WS_IDLE_TIMEOUT_SECS"), 60)?,
                )?,
                max_channels: match parse("WS_MAX_CHANNELS", var("WS_MAX_CHANNELS"), 100)? {
                    0 => return Err(problem("WS_MAX_CHANNELS", "must be at least 1")),
                    n => n,
                },
                dashboard_require_token: parse(
                    "DASHBOARD_REQUIRE_TOKEN",
                    var("DASHBOARD_REQUIRE_TOKEN"),
                    false,
                )?,
                allowed_actions: allowed_actions(var("WEBSOCKET_ALLOWED_ACTIONS"))?,
            },
        })
    }
}
