//! Typed configuration, read once from the environment (and `.env`) at start.
//!
//! Everything else receives a [`Config`] value; nothing else reads the environment.
//! `.env.example` lists every variable read here with its default.

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

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured without `..`: a new field must be placed here (and judged).
        let Config {
            bind_addr,
            database_url,
            data_dir,
            migrate,
            database_max_connections,
            allowed_origins,
            max_payload_bytes,
            jwt,
            rate_limit_per_sec,
            rate_limit_burst,
            rest_rate_limit_per_sec,
            rest_rate_limit_burst,
            order_batch,
            shutdown_grace,
            access_log,
            notify_socket,
            adapter,
            redis_url,
            adapter_prefix,
            log_format,
            max_socket_buffer_bytes,
            write_stall_timeout,
            max_conversation_members,
            http_header_timeout,
            http_idle_timeout,
            max_connections,
            ws,
            engine,
            admin_ui,
        } = self;
        f.debug_struct("Config")
            .field("bind_addr", bind_addr)
            .field("database_url", &database_url.as_deref().map(redact_url))
            .field("data_dir", data_dir)
            .field("migrate", migrate)
            .field("database_max_connections", database_max_connections)
            .field("allowed_origins", allowed_origins)
            .field("max_payload_bytes", max_payload_bytes)
            .field("jwt", jwt)
            .field("rate_limit_per_sec", rate_limit_per_sec)
            .field("rate_limit_burst", rate_limit_burst)
            .field("rest_rate_limit_per_sec", rest_rate_limit_per_sec)
            .field("rest_rate_limit_burst", rest_rate_limit_burst)
            .field("order_batch", order_batch)
            .field("shutdown_grace", shutdown_grace)
            .field("access_log", access_log)
            .field("notify_socket", notify_socket)
            .field("adapter", adapter)
            .field("redis_url", &redis_url.as_deref().map(redact_url))
            .field("adapter_prefix", adapter_prefix)
            .field("log_format", log_format)
            .field("max_socket_buffer_bytes", max_socket_buffer_bytes)
            .field("write_stall_timeout", write_stall_timeout)
            .field("max_conversation_members", max_conversation_members)
            .field("http_header_timeout", http_header_timeout)
            .field("http_idle_timeout", http_idle_timeout)
            .field("max_connections", max_connections)
            .field("ws", ws)
            .field("engine", engine)
            .field("admin_ui", admin_ui)
            .finish()
    }
}

impl std::fmt::Debug for AdminUiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let AdminUiConfig {
            enabled,
            username,
            password_hash,
            dir,
        } = self;
        f.debug_struct("AdminUiConfig")
            .field("enabled", enabled)
            .field("username", username)
            .field(
                "password_hash",
                &password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("dir", dir)
            .finish()
    }
}

/// `url` with its password replaced by `***`, for `Debug`: the one in the userinfo
/// (`postgres://user:***@host/db`) and a `password=` query parameter (which libpq and
/// sqlx also read). The userinfo ends at the last `@`, so a password holding `/`, `?`
/// or `@` unencoded is hidden too (at worst more than the password is).
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, after)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            after
        }
        None => rest,
    };
    let (head, query) = match rest.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (rest, None),
    };
    out.push_str(head);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    out.push_str(key);
                    out.push_str("=***");
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// The socket.io Admin UI's `/admin` namespace and its files, as Node's
/// `instrument(io, { auth: { type: "basic", username, password }, mode: "production" })`.
#[derive(Clone)]
pub struct AdminUiConfig {
    /// `/admin` is mounted (`ADMIN_UI`, default false: then `/admin` is refused like any
    /// unknown namespace).
    pub enabled: bool,
    /// The login name (`ADMIN_UI_USERNAME`, default `admin`).
    pub username: String,
    /// The password's bcrypt hash (`ADMIN_UI_PASSWORD_HASH`), required when enabled.
    pub password_hash: Option<String>,
    /// The npm package's `ui/dist`, served at `/admin/ui/` (`ADMIN_UI_DIR`).
    pub dir: Option<PathBuf>,
}

fn admin_ui_config(var: &impl Fn(&str) -> Option<String>) -> Result<AdminUiConfig, ConfigError> {
    let enabled = match var("ADMIN_UI").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(problem("ADMIN_UI", format!("{other:?}: use true or false")));
        }
    };
    let password_hash = var("ADMIN_UI_PASSWORD_HASH");
    if let Some(hash) = &password_hash
        && hash.parse::<bcrypt::HashParts>().is_err()
    {
        return Err(problem(
            "ADMIN_UI_PASSWORD_HASH",
            "is not a bcrypt hash ($2b$12$...; e.g. `htpasswd -bnBC 12 \"\" secret | tr -d ':'`)",
        ));
    }
    if enabled && password_hash.is_none() {
        return Err(problem(
            "ADMIN_UI_PASSWORD_HASH",
            "required with ADMIN_UI=true: the bcrypt hash of the Admin UI's password",
        ));
    }
    Ok(AdminUiConfig {
        enabled,
        username: var("ADMIN_UI_USERNAME").unwrap_or_else(|| "admin".to_owned()),
        password_hash,
        dir: var("ADMIN_UI_DIR").map(PathBuf::from),
    })
}

/// The engine.io options a Node socket.io server is started with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where socket.io is served (`SOCKETIO_PATH`, default `/socket.io`; Node's `path`).
    pub path: String,
    /// How often the server pings (`PING_INTERVAL_MS`, default 25000).
    pub ping_interval: Duration,
    /// How long a ping waits for its pong (`PING_TIMEOUT_MS`, default 20000).
    pub ping_timeout: Duration,
    /// Long-polling allowed (`TRANSPORTS` has `polling`).
    pub polling: bool,
    /// Websocket allowed (`TRANSPORTS` has `websocket`).
    pub websocket: bool,
    /// An installed `socket.io-client/dist`, served at `<path>/socket.io.js` and its
    /// siblings (`SOCKETIO_CLIENT_DIR`; Node's `serveClient`).
    pub client_dir: Option<std::path::PathBuf>,
    /// socket.io-client 2.x (engine.io protocol 3, `EIO=3`) admitted (`ALLOW_EIO3`,
    /// default false; Node's `allowEIO3`). Off, its requests are answered 400 as Node
    /// answers them.
    pub allow_eio3: bool,
    /// How socket.io packets are encoded (`PARSER`, default `json`; Node's `parser`).
    pub parser: ParserKind,
}

/// The socket.io packet encoding every client of this server must use (Node's `parser`
/// option: there is one per server, not one per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParserKind {
    /// The default socket.io parser: text packets, binary as attachments.
    Json,
    /// `socket.io-msgpack-parser`: every packet one MessagePack binary frame.
    Msgpack,
}

fn engine_config(var: &impl Fn(&str) -> Option<String>) -> Result<EngineConfig, ConfigError> {
    let path = match var("SOCKETIO_PATH") {
        None => "/socket.io".to_owned(),
        Some(raw) => {
            let trimmed = raw.trim_end_matches('/');
            let ok = trimmed.starts_with('/')
                && trimmed.len() > 1
                && trimmed.len() <= 100
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
                && !trimmed.contains("//")
                && trimmed != "/api"
                && !trimmed.starts_with("/api/")
                && trimmed != "/ws"
                && !trimmed.starts_with("/ws/");
            if !ok {
                return Err(problem(
                    "SOCKETIO_PATH",
                    format!(
                        "{raw:?}: a path like /socket.io (letters, digits, /_.-, at most 100 \
                         characters, not under /api or /ws)"
                    ),
                ));
            }
            trimmed.to_owned()
        }
    };
    let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
        let ms: u64 = match var(name) {
            None => default,
            Some(v) => v
                .parse()
                .map_err(|e| problem(name, format!("{v:?}: {e}")))?,
        };
        if !(1000..=600_000).contains(&ms) {
            return Err(problem(name, "must be 1000 to 600000 milliseconds"));
        }
        Ok(Duration::from_millis(ms))
    };
    let (mut polling, mut websocket) = (false, false);
    match var("TRANSPORTS") {
        None => (polling, websocket) = (true, true),
        Some(list) => {
            for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                match t {
                    "polling" => polling = true,
                    "websocket" => websocket = true,
                    other => {
                        return Err(problem(
                            "TRANSPORTS",
                            format!("{other:?}: use polling and/or websocket"),
                        ));
                    }
                }
            }
            if !(polling || websocket) {
                return Err(problem("TRANSPORTS", "name polling, websocket or both"));
            }
        }
    }
    let allow_eio3 = match var("ALLOW_EIO3").as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(problem(
                "ALLOW_EIO3",
                format!("{other:?}: use true or false"),
            ));
        }
    };
    let parser = match var("PARSER").as_deref().map(str::trim) {
        None | Some("json") => ParserKind::Json,
        Some("msgpack") => ParserKind::Msgpack,
        Some(other) => {
            return Err(problem("PARSER", format!("{other:?}: use json or msgpack")));
        }
    };
    Ok(EngineConfig {
        path,
        ping_interval: millis("PING_INTERVAL_MS", 25_000)?,
        ping_timeout: millis("PING_TIMEOUT_MS", 20_000)?,
        polling,
        websocket,
        client_dir: var("SOCKETIO_CLIENT_DIR").map(std::path::PathBuf::from),
        allow_eio3,
        parser,
    })
}

/// Limits of the plain WebSocket routes (contract §7.1).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Largest incoming message; a bigger one closes the connection with 1009
    /// (`WS_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// Messages queued for one connection; a full queue closes it with 1013
    /// (`WS_SEND_QUEUE`).
    pub send_queue: usize,
    /// How often the server pings (`WS_PING_INTERVAL_SECS`).
    pub ping_interval: Duration,
    /// A connection that sent nothing (no pong, no message) this long is closed
    /// (`WS_IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// Channels one connection may hold, its automatic `user:` channel included
    /// (`WS_MAX_CHANNELS`).
    pub max_channels: usize,
    /// `/ws/dashboard/:sessionID` requires a staff+ token (`DASHBOARD_REQUIRE_TOKEN`,
    /// default false: seed 002's dashboards connect without one).
    pub dashboard_require_token: bool,
    /// Extra actions the entity gateway lists in `system.connected`'s topics as
    /// `{entity}.{action}` (`WEBSOCKET_ALLOWED_ACTIONS`, comma list, default none).
    pub allowed_actions: Vec<String>,
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

/// Most entries of `WEBSOCKET_ALLOWED_ACTIONS`: each becomes a topic in every
/// gateway connection's first message.
const MAX_ALLOWED_ACTIONS: usize = 32;

/// `WEBSOCKET_ALLOWED_ACTIONS`: a comma list of action names, each 1–64 characters of
/// `[A-Za-z0-9_.-]`; blanks between commas are skipped, repeats kept once.
/// `url` asking for RESP3 unless it names a protocol itself: pub/sub on a shared
/// connection needs RESP3 (Redis 7+).
fn with_resp3(url: String) -> String {
    if url.contains("protocol=") {
        url
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn allowed_actions(raw: Option<String>) -> Result<Vec<String>, ConfigError> {
    let mut actions: Vec<String> = Vec::new();
    for action in raw.iter().flat_map(|r| r.split(',')).map(str::trim) {
        if action.is_empty() || actions.iter().any(|a| a == action) {
            continue;
        }
        if action.len() > 64
            || !action
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(problem(
                "WEBSOCKET_ALLOWED_ACTIONS",
                "each action is 1 to 64 characters of A-Z, a-z, 0-9, _ . -",
            ));
        }
        actions.push(action.to_owned());
    }
    if actions.len() > MAX_ALLOWED_ACTIONS {
        return Err(problem("WEBSOCKET_ALLOWED_ACTIONS", "at most 32 actions"));
    }
    Ok(actions)
}

/// The development placeholder shipped in `.env.example`, read from that file at build
/// time so the two cannot drift apart.
fn example_secret() -> Option<&'static str> {
    include_str!("../.env.example")
        .lines()
        .find_map(|line| line.strip_prefix("JWT_SECRET="))
        .map(str::trim)
}

/// Shortest HS256 secret accepted: the hash's output size, as RFC 7518 §3.2 requires.
const MIN_SECRET_BYTES: usize = 32;

/// Refuses secrets anyone can guess: short ones, and the published placeholder.
fn checked_secret(secret: String) -> Result<String, ConfigError> {
    if example_secret() == Some(secret.as_str()) {
        return Err(problem(
            "JWT_SECRET",
            "is the published placeholder from .env.example: set a random secret \
             (e.g. `openssl rand -hex 32`; scripts/run writes one into a new .env)",
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(problem(
            "JWT_SECRET",
            format!(
                "is {} bytes; at least {MIN_SECRET_BYTES} are required (e.g. `openssl rand -hex 32`)",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

fn positive_secs(name: &'static str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(problem(name, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "unit-test-secret-of-at-least-32-bytes";

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn engine_options_read_like_nodes() {
        let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
        assert_eq!(c.engine.path, "/socket.io");
        assert_eq!(c.engine.ping_interval, Duration::from_secs(25));
        assert_eq!(c.engine.ping_timeout, Duration::from_secs(20));
        assert!(c.engine.polling && c.engine.websocket);
        assert!(!c.engine.allow_eio3);
        assert_eq!(c.engine.parser, ParserKind::Json);
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("SOCKETIO_PATH", "/realtime/io/"),
            ("PING_INTERVAL_MS", "5000"),
            ("PING_TIMEOUT_MS", "3000"),
            ("TRANSPORTS", "websocket"),
        ]))
        .unwrap();
        assert_eq!(c.engine.path, "/realtime/io");
        assert_eq!(c.engine.ping_interval, Duration::from_secs(5));
        assert_eq!(c.engine.ping_timeout, Duration::from_secs(3));
        assert!(!c.engine.polling && c.engine.websocket);
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("ALLOW_EIO3", "true"),
            ("PARSER", "msgpack"),
        ]))
        .unwrap();
        assert!(c.engine.allow_eio3);
        assert_eq!(c.engine.parser, ParserKind::Msgpack);
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("ALLOW_EIO3", "false"),
            ("PARSER", "json"),
        ]))
        .unwrap();
        assert!(!c.engine.allow_eio3);
        assert_eq!(c.engine.parser, ParserKind::Json);
        for (name, value) in [
            ("SOCKETIO_PATH", "socket.io"),
            ("SOCKETIO_PATH", "/"),
            ("SOCKETIO_PATH", "/api"),
            ("SOCKETIO_PATH", "/ws/io"),
            ("SOCKETIO_PATH", "/a b"),
            ("SOCKETIO_PATH", "/a//b"),
            ("PING_INTERVAL_MS", "999"),
            ("PING_TIMEOUT_MS", "600001"),
            ("PING_TIMEOUT_MS", "soon"),
            ("TRANSPORTS", "webtransport"),
            ("TRANSPORTS", ","),
            ("ALLOW_EIO3", "1"),
            ("ALLOW_EIO3", "yes"),
            ("ALLOW_EIO3", "TRUE"),
            ("PARSER", "msgpackr"),
            ("PARSER", "cbor"),
        ] {
            let err = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET), (name, value)]))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} accepted"));
            assert_eq!(err.name, name, "{name}={value}: {err}");
        }
    }

    #[test]
    fn admin_ui_is_off_unless_asked_and_then_needs_a_bcrypt_hash() {
        let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
        assert!(!c.admin_ui.enabled);
        assert_eq!(c.admin_ui.username, "admin");
        let hash = bcrypt::hash("pw", 4).unwrap();
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("ADMIN_UI", "true"),
            ("ADMIN_UI_USERNAME", "ops"),
            ("ADMIN_UI_PASSWORD_HASH", &hash),
            ("ADMIN_UI_DIR", "/opt/ui/dist"),
        ]))
        .unwrap();
        assert!(c.admin_ui.enabled);
        assert_eq!(c.admin_ui.username, "ops");
        assert_eq!(c.admin_ui.password_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(c.admin_ui.dir, Some(PathBuf::from("/opt/ui/dist")));
        for (pairs, name) in [
            (vec![("ADMIN_UI", "true")], "ADMIN_UI_PASSWORD_HASH"),
            (vec![("ADMIN_UI", "yes")], "ADMIN_UI"),
            (
                vec![("ADMIN_UI", "true"), ("ADMIN_UI_PASSWORD_HASH", "secret")],
                "ADMIN_UI_PASSWORD_HASH",
            ),
        ] {
            let mut all = vec![("JWT_SECRET", SECRET)];
            all.extend(pairs);
            let err = Config::from_lookup(lookup(&all)).err().unwrap();
            assert_eq!(err.name, name, "{err}");
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:3001");
        assert_eq!(c.max_payload_bytes, 1_000_000);
        assert_eq!(c.rate_limit_per_sec, 10.0);
        assert_eq!(c.rate_limit_burst, 20.0);
        assert_eq!(c.rest_rate_limit_per_sec, 50.0);
        assert_eq!(c.rest_rate_limit_burst, 200.0);
        assert_eq!(c.jwt.leeway_secs, 30);
        assert_eq!(c.jwt.algorithm, jsonwebtoken::Algorithm::HS256);
        assert!(c.database_url.is_none());
        assert!(c.migrate);
        assert!(c.allowed_origins.is_none());
        assert_eq!(c.max_conversation_members, 1000);
        assert_eq!(c.ws.max_message_bytes, 65_536);
        assert_eq!(c.ws.send_queue, 256);
        assert_eq!(c.ws.ping_interval, Duration::from_secs(54));
        assert_eq!(c.ws.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.ws.max_channels, 100);
        assert!(!c.ws.dashboard_require_token);
        assert!(c.ws.allowed_actions.is_empty());
    }

    #[test]
    fn redis_url_asks_for_resp3_unless_it_names_a_protocol() {
        let redis = |url: &str| {
            Config::from_lookup(lookup(&[
                ("JWT_SECRET", SECRET),
                ("ADAPTER", "redis"),
                ("REDIS_URL", url),
            ]))
            .unwrap()
            .redis_url
        };
        assert_eq!(
            redis("redis://h:6379").as_deref(),
            Some("redis://h:6379?protocol=resp3")
        );
        assert_eq!(
            redis("redis://h:6379/0?timeout=5").as_deref(),
            Some("redis://h:6379/0?timeout=5&protocol=resp3")
        );
        assert_eq!(
            redis("redis://h:6379?protocol=resp3").as_deref(),
            Some("redis://h:6379?protocol=resp3")
        );
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let hash = bcrypt::hash("admin-password", 4).unwrap();
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            (
                "DATABASE_URL",
                "postgres://app:db-password-1@db.internal:5432/switchboard?password=db-password-2",
            ),
            ("ADAPTER", "redis"),
            ("REDIS_URL", "redis://:redis-password@cache.internal:6379/0"),
            ("ADMIN_UI", "true"),
            ("ADMIN_UI_PASSWORD_HASH", &hash),
        ]))
        .unwrap();
        let shown = format!("{c:?} {c:#?}");
        for secret in [
            SECRET,
            "db-password-1",
            "db-password-2",
            "redis-password",
            hash.as_str(),
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // What an operator needs to tell which database and Redis are used stays.
        assert!(shown.contains("postgres://app:***@db.internal:5432/switchboard?password=***"));
        assert!(shown.contains("redis://:***@cache.internal:6379/0?protocol=resp3"));
        assert!(shown.contains("max_payload_bytes: 1000000"));
    }

    #[test]
    fn urls_lose_their_passwords_only() {
        for (url, shown) in [
            ("postgres://user:pw@host/db", "postgres://user:***@host/db"),
            ("postgres://user@host/db", "postgres://user@host/db"),
            ("postgres://host:5432/db", "postgres://host:5432/db"),
            ("redis://:pw@host:6379", "redis://:***@host:6379"),
            ("postgres://u:p/w?@host/db", "postgres://u:***@host/db"),
            (
                "postgres://host/db?sslmode=require&PASSWORD=pw",
                "postgres://host/db?sslmode=require&PASSWORD=***",
            ),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn allowed_actions_are_a_checked_comma_list() {
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            (
                "WEBSOCKET_ALLOWED_ACTIONS",
                " create, update,,create ,seat_guest",
            ),
        ]))
        .unwrap();
        assert_eq!(c.ws.allowed_actions, ["create", "update", "seat_guest"]);
        for bad in ["a b", "x/y", &"a".repeat(65)] {
            let err = Config::from_lookup(lookup(&[
                ("JWT_SECRET", SECRET),
                ("WEBSOCKET_ALLOWED_ACTIONS", bad),
            ]))
            .unwrap_err();
            assert_eq!(err.name, "WEBSOCKET_ALLOWED_ACTIONS", "{bad}");
        }
    }

    #[test]
    fn a_key_is_required_and_the_algorithm_must_fit_it() {
        assert!(Config::from_lookup(lookup(&[])).is_err());
        let err = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("JWT_ALGORITHM", "RS256"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_ALGORITHM"));
        let c = Config::from_lookup(lookup(&[
            ("JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\\nabc"),
            ("JWT_ALGORITHM", "ES256"),
        ]))
        .unwrap();
        assert_eq!(c.jwt.algorithm, jsonwebtoken::Algorithm::ES256);
    }

    #[test]
    fn origins_are_split_and_bad_numbers_name_the_variable() {
        let c = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("ALLOWED_ORIGINS", "https://a.example, https://b.example/"),
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins.unwrap(),
            vec!["https://a.example", "https://b.example"]
        );
        let err = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("MAX_PAYLOAD_BYTES", "lots"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("MAX_PAYLOAD_BYTES"));
    }

    #[test]
    fn guessable_secrets_are_refused_naming_jwt_secret() {
        let placeholder = example_secret().unwrap();
        assert!(!placeholder.is_empty());
        for secret in [placeholder, "s", "31-bytes-is-one-byte-too-short!"] {
            let err = Config::from_lookup(lookup(&[("JWT_SECRET", secret)])).unwrap_err();
            assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        }
        Config::from_lookup(lookup(&[(
            "JWT_SECRET",
            "32-bytes-is-just-long-enough-ok!",
        )]))
        .unwrap();
    }

    #[test]
    fn connection_limits_default_and_refuse_zero() {
        let c = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap();
        assert_eq!(c.http_header_timeout, Duration::from_secs(10));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, 20_000);
        for name in [
            "HTTP_HEADER_TIMEOUT_SECS",
            "HTTP_IDLE_TIMEOUT_SECS",
            "MAX_CONNECTIONS",
            "WS_SEND_QUEUE",
            "WS_PING_INTERVAL_SECS",
            "WS_IDLE_TIMEOUT_SECS",
            "WS_MAX_CHANNELS",
            "WS_MAX_MESSAGE_BYTES",
        ] {
            let err =
                Config::from_lookup(lookup(&[("JWT_SECRET", SECRET), (name, "0")])).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
