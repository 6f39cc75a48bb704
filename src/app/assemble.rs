//! The adapter-independent half of building: the fan-out, then the state around it,
//! every namespace, the task that mounts `/restaurants/<id>` for the fan-out, the
//! background tasks, and the router with its layers in the order a request meets them
//! (outermost last).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use socketioxide::SocketIoBuilder;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;
use sqlx::PgPool;
use tower::Layer;

use super::{Running, StartError};
use crate::auth::Verifier;
use crate::config::Config;
use crate::http::layers;
use crate::metrics::Metrics;
use crate::realtime::cluster::{AdapterProbe, NsInit};
use crate::realtime::cluster_bus::ClusterBus;
use crate::realtime::fanout::Fanout;
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
    // In a cluster the hub casts its deliveries to the other nodes through this queue.
    let (casts, outgoing) = match &cluster_bus {
        Some(_) => {
            let (casts, outgoing) = ws::cluster::cast_queue();
            (Some(casts), Some(outgoing))
        }
        None => (None, None),
    };
    let hub = ws::Hub::new(config.ws.max_channels, metrics.ws.clone(), casts);
    let (fanout, mount_requests) = Fanout::new(io.clone(), hub, cluster_bus, &config, &metrics);
    let app = AppState::new(config, Store::new(pool), verifier, fanout, metrics, probe);
    let (inits, per_restaurant) = realtime::namespaces::register_all(&app);
    for init in inits {
        init.ready().await.map_err(StartError::Adapter)?;
    }
    if let Some(init) = admin::register(&app) {
        init.ready().await.map_err(StartError::Adapter)?;
    }
    // Serves `Fanout::mount` (cluster routing of restaurant events), now that the
    // namespace handlers have their state.
    let mount_app = app.clone();
    mount_requests.serve(move |path: String| {
        let handler = per_restaurant.handler(&mount_app);
        let io = io.clone();
        Box::pin(async move {
            if io.of(&path).is_some() {
                return Ok(());
            }
            io.ns(path, handler).ready().await
        })
    });
    app.lifetimes.start();
    realtime::order_bus::start(&app.fanout);
    realtime::session_bus::start(&app);
    if let Some(outgoing) = outgoing {
        ws::cluster::start(&app.fanout, outgoing);
    }

    outbound::Meters::spawn_sweeper(&app.meters);
    // The layers wrap the routed router once, as one stack, rather than each route by
    // `Router::layer`: that boxes every route's stack per layer, and every layer clones
    // (re-boxing) everything inside it on every request: about 80 allocations and
    // ≈ 90 k of the 211 k instructions of a `POST /api/publish` (bench/README.md, S7).
    let routes = http::router().with_state(app.clone());
    let service = DefaultBodyLimit::max(max_payload).layer(routes);
    let service = axum::middleware::from_fn_with_state(
        (
            app.clone(),
            Arc::new(http::rate_limit::RestLimiter::new(
                app.config.rest_rate_limit_per_sec,
                app.config.rest_rate_limit_burst,
            )),
        ),
        http::rate_limit::limit::<A>,
    )
    .layer(service);
    let service =
        axum::middleware::from_fn_with_state(app.clone(), layers::track_rest::<A>).layer(service);
    let service = io_layer.layer(service);
    // Right around the engine: sees its answers, not `link_sessions`' own.
    let service = axum::middleware::from_fn_with_state(
        http::access::EngineAnswers {
            engine_path: Arc::from(app.config.engine.path.as_str()),
            session_unknown: app.metrics.session_id_unknown.clone(),
        },
        http::access::count_unknown_sessions,
    )
    .layer(service);
    let service =
        axum::middleware::from_fn_with_state(app.clone(), shutdown::refuse_new_sessions::<A>)
            .layer(service);
    let service = axum::middleware::from_fn_with_state(
        layers::EngineGate {
            path: Arc::from(app.config.engine.path.as_str()),
            allow_eio3: app.config.engine.allow_eio3,
        },
        layers::refuse_eio3,
    )
    .layer(service);
    let service = axum::middleware::from_fn_with_state(app.meters.clone(), outbound::link_sessions)
        .layer(service);
    // Before the session linking, which reads a handshake's answer for its sid.
    let service = axum::middleware::from_fn_with_state(
        http::client_bundle::ClientBundle::load(
            &app.config.engine.path,
            app.config.engine.client_dir.as_deref(),
        )?,
        http::client_bundle::serve,
    )
    .layer(service);
    let service = axum::middleware::map_request_with_state(
        Arc::<str>::from(app.config.engine.path.as_str()),
        layers::own_handshake_parts,
    )
    .layer(service);
    let service = axum::middleware::from_fn_with_state(
        admin::files::UiFiles::load(
            app.config
                .admin_ui
                .dir
                .as_deref()
                .filter(|_| app.config.admin_ui.enabled),
        )?,
        admin::files::serve,
    )
    .layer(service);
    let service = layers::cors(&app.config).layer(service);
    let service = axum::middleware::from_fn_with_state(
        app.config.allowed_origins.clone().map(Arc::new),
        layers::refuse_foreign_websockets,
    )
    .layer(service);
    // Outermost: the line carries the status the client got, whoever answered.
    let router = if app.config.access_log {
        Router::new().fallback_service(
            axum::middleware::from_fn_with_state(
                Arc::<str>::from(app.config.engine.path.as_str()),
                http::access::log,
            )
            .layer(service),
        )
    } else {
        Router::new().fallback_service(service)
    };
    Ok((router, Arc::new(app)))
}
