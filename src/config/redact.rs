//! `Debug` for the configuration: every field, no secret, no password in a URL.

use super::{AdminUiConfig, Config};

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
pub(super) fn redact_url(url: &str) -> String {
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
