//! The one dispatch path of client events: rate limit, decode, handle, reply once.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, SocketRef, TryData};
use tracing::Instrument;
use validator::Validate;

use super::ack::Reply;
use super::session::Session;
use crate::domain::input::decode;
use crate::error::{AppError, AppResult};
use crate::metrics::{CodeLabel, EventLabels};

/// Registers `handler` for `event` on `socket`. The handler gets the session, the socket
/// and the decoded payload, and returns the ack's `data` (`Value::Null` for none).
pub fn on<A, T, F, Fut>(
    socket: &SocketRef<A>,
    session: &Arc<Session<A>>,
    event: &'static str,
    handler: F,
) where
    A: Adapter,
    T: DeserializeOwned + Validate + Send + 'static,
    F: Fn(Arc<Session<A>>, SocketRef<A>, T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = AppResult<Value>> + Send + 'static,
{
    let session = session.clone();
    socket.on(
        event,
        move |socket: SocketRef<A>, TryData(data): TryData<Value>, reply: Reply<A>| {
            let session = session.clone();
            let handler = handler.clone();
            // Here, synchronously and in the socket's packet order: the rate limit (a
            // refused event does not wait for its turn) and the event's turn.
            let allowed = session.limiter.check(event);
            let mut turn = allowed.is_ok().then(|| session.turn()).flatten();
            // Counted from arrival, so a shutdown wave does not close the socket under it.
            let busy = session.busy.enter();
            async move {
                let _busy = busy;
                let _in_flight = session.app.in_flight.enter();
                let started = Instant::now();
                let span = tracing::info_span!("event", ns = session.ns, sid = %socket.id, user = %session.user_id(), event);
                let dialect = session.dialect;
                let socket_for_budget = socket.clone();
                let result = async {
                    allowed?;
                    if let Some(turn) = &mut turn {
                        turn.wait().await;
                    }
                    // A payload that is not JSON at all (binary) decodes like a missing one.
                    let payload = decode::<T>(data.unwrap_or(Value::Null))?;
                    handler(session.clone(), socket, payload).await
                }
                .instrument(span.clone())
                .await;
                let _enter = span.enter();
                record(&session, event, started, &result);
                if let Ok(data) = &result {
                    session.charge(&socket_for_budget, data);
                }
                reply.send(dialect, result);
            }
        },
    );
}

/// Answers every event name the namespace does not know with "unknown event"; the
/// rate limit counts these too.
pub fn on_unknown<A: Adapter>(socket: &SocketRef<A>, session: &Arc<Session<A>>) {
    let session = session.clone();
    socket.on_fallback(move |socket: SocketRef<A>, Event(event): Event, reply: Reply<A>| {
        let session = session.clone();
        async move {
            let span = tracing::info_span!("event", ns = session.ns, sid = %socket.id, user = %session.user_id(), event = %event);
            let _enter = span.enter();
            let started = Instant::now();
            // Every unknown name draws on one shared bucket: no key per invented name.
            let result = session
                .limiter
                .check_unknown()
                .and_then(|()| Err(AppError::bad_request("unknown event")));
            record(&session, "unknown", started, &result);
            reply.send(session.dialect, result);
        }
    });
}

/// Counts the event, its reply time and its error code.
fn record<A: Adapter>(
    session: &Session<A>,
    event: &'static str,
    started: Instant,
    result: &AppResult<Value>,
) {
    let metrics = &session.app.metrics;
    let labels = EventLabels {
        namespace: session.ns,
        event,
    };
    metrics.events.get_or_create(&labels).inc();
    metrics
        .ack_latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Err(e) = result {
        metrics
            .errors
            .get_or_create(&CodeLabel {
                code: e.code().chat(),
            })
            .inc();
    }
}
