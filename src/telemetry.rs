//! Structured logs with `tracing`. Spans carry namespace, socket id, user id and event;
//! tokens and message bodies are never logged.
//!
//! The libraries under us do log them below `info`: socketioxide prints the CONNECT
//! auth payload (`auth: {"token": ..}`) and every packet at `debug`, engineioxide the
//! packets and the request it could not parse (its URI holds `?token=`) at `debug`,
//! tungstenite the frames at `trace`. Those targets are held at `info` whatever
//! `RUST_LOG` says, so `RUST_LOG=debug` or `trace` stays safe to turn on.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

use crate::config::LogFormat;

/// Targets whose logs below `info` carry tokens or message bodies (prefix matches, so
/// `socketioxide` covers `socketioxide_core`, `socketioxide_redis`, ...).
const CAPPED_TARGETS: [&str; 3] = ["socketioxide", "engineioxide", "tungstenite"];

/// `RUST_LOG` (default `info`) with the token-carrying targets capped at `info`.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut filter = rust_log
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for target in CAPPED_TARGETS {
        // Added last, an equal-target directive replaces one from `RUST_LOG`.
        if let Ok(directive) = format!("{target}=info").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber (`RUST_LOG` filters, default `info`).
pub fn init(format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(rust_log.as_deref()))
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging already initialised: {e}");
    }
}
