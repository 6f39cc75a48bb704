//! The engine (socket.io), plain WebSocket and Admin UI sections, each with its reader.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, problem};

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

pub(super) fn admin_ui_config(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<AdminUiConfig, ConfigError> {
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

pub(super) fn engine_config(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<EngineConfig, ConfigError> {
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
