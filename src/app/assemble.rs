//! The adapter-independent half of building: the state, every namespace, the mounter
//! for `/restaurants/<id>`, the background tasks, and the router with its layers in
//! the order a request meets them (outermost last).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use socketioxide::SocketIoBuilder;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;
use sqlx::PgPool;

use super::{Running, StartError};
use crate::auth::Verifier;
use crate::config::Config;
use crate::http::layers;
use crate::metrics::Metrics;
use crate::realtime::cluster::{AdapterProbe, Mounter, NsInit};
use crate::realtime::cluster_bus::ClusterBus;
use crate::state::AppState;
use crate::store::Store;
use crate::{admin, http, outbound, realtime, shutdown, ws};

/// Builds the state over the socket.io `builder` (its adapter already chosen), mounts
/// the namespaces, starts the background tasks and layers the router.
pub(super) async fn assemble<A>(
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
            layers::track_rest::<A>,
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
            layers::EngineGate {
                path: Arc::from(app.config.engine.path.as_str()),
                allow_eio3: app.config.engine.allow_eio3,
            },
            layers::refuse_eio3,
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
            layers::own_handshake_parts,
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
        .layer(layers::cors(&app.config))
        .layer(axum::middleware::from_fn_with_state(
            app.config.allowed_origins.clone(),
            layers::refuse_foreign_websockets,
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
