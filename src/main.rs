//! The `switchboard` binary: read configuration, start logging, pick the database
//! (embedded when `DATABASE_URL` is unset), migrate, serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use switchboard::config::Config;
use switchboard::embedded_pg::EmbeddedPostgres;
use switchboard::{StartError, connect_pool, serve, store, telemetry};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), StartError> {
    let (embedded, url) = match &config.database_url {
        Some(url) => (None, url.clone()),
        None => {
            tracing::info!(data_dir = %config.data_dir.display(), "DATABASE_URL unset: starting the embedded PostgreSQL");
            let pg = EmbeddedPostgres::start(&config.data_dir).await?;
            let url = pg.database_url().to_owned();
            (Some(pg), url)
        }
    };
    let result = serve_with(config, &url, embedded.is_some()).await;
    if let Some(pg) = embedded
        && let Err(e) = pg.stop().await
    {
        tracing::warn!(error = %e, "embedded PostgreSQL did not stop cleanly");
    }
    result
}

async fn serve_with(config: Config, url: &str, embedded: bool) -> Result<(), StartError> {
    let pool = connect_pool(&config, url).await?;
    if config.migrate || embedded {
        store::migrate(&pool).await?;
    }
    let listener = TcpListener::bind(config.bind_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "switchboard listening");
    serve(listener, config, pool.clone(), shutdown_signal()).await?;
    pool.close().await;
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
