//! Linking engine.io sessions to the connections their packets leave by.

use std::sync::Arc;

use axum::response::IntoResponse;

use super::{Meter, MeterSlot, Meters, under};

/// Links engine.io sockets to the connections their packets leave by. Runs on every
/// `/socket.io/` request, after the listener put the connection's [`Meter`] in the
/// request's extensions:
/// - a handshake (no `sid`) gets a [`MeterSlot`] that the socket keeps (socketioxide
///   keeps the handshake's request parts for the socket's life); a long-polling
///   handshake's session is remembered until it upgrades;
/// - a websocket upgrade (`sid`, `transport=websocket`) points the session's slot at its
///   own connection, which carries the session from then on;
/// - any other request of a session carries it while in flight (a long-poll);
/// - a request of a session whose transport was closed ([`Meters::close_transport`]) is
///   answered as engine.io answers an unknown session.
pub async fn link_sessions(
    axum::extract::State(meters): axum::extract::State<Arc<Meters>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let meter = req.extensions().get::<Arc<Meter>>().cloned();
    let Some(meter) = meter.filter(|_| under(req.uri().path(), &meters.engine_path)) else {
        return next.run(req).await;
    };
    let query = req.uri().query().unwrap_or_default();
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        })
    };
    let websocket = param("transport").as_deref() == Some("websocket");
    match param("sid") {
        Some(session) if meters.was_cut(&session) => (
            axum::http::StatusCode::BAD_REQUEST,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"code":1,"message":"Session ID unknown"}"#,
        )
            .into_response(),
        Some(session) if websocket => {
            meters.upgraded(&session, &meter);
            next.run(req).await
        }
        Some(session) => {
            meters.carry(&session, &meter);
            let _carrying = Carrying {
                meters: &meters,
                session: &session,
                meter: &meter,
            };
            next.run(req).await
        }
        None => {
            let slot = meters.slot(meter, websocket);
            req.extensions_mut().insert(slot.clone());
            let response = next.run(req).await;
            if websocket || !response.status().is_success() {
                return response;
            }
            remember_polling_session(&meters, &slot, response).await
        }
    }
}

/// A request of a session in flight on a connection (until answered or abandoned).
struct Carrying<'a> {
    meters: &'a Meters,
    session: &'a str,
    meter: &'a Arc<Meter>,
}

impl Drop for Carrying<'_> {
    fn drop(&mut self) {
        self.meters.uncarry(self.session, self.meter);
    }
}

/// Reads the session id out of a long-polling handshake's answer (`0{"sid":…}`, about
/// 100 bytes; `96:0{"sid":…}` for engine.io 3) and gives the answer back unchanged.
async fn remember_polling_session(
    meters: &Meters,
    slot: &Arc<MeterSlot>,
    response: axum::response::Response,
) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::debug!(error = %e, "handshake answer unreadable");
            return axum::response::Response::from_parts(parts, axum::body::Body::empty());
        }
    };
    #[derive(serde::Deserialize)]
    struct Open {
        sid: String,
    }
    if let Some(open) = open_packet(&bytes)
        && let Ok(Open { sid }) = serde_json::from_slice::<Open>(open)
    {
        meters.await_upgrade(sid, slot);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The OPEN packet's JSON in a polling handshake's answer: `0{…}`, or with engine.io 3's
/// length prefix, `<length>:0{…}` (socket.io-client 2.x with `ALLOW_EIO3`).
pub(super) fn open_packet(bytes: &[u8]) -> Option<&[u8]> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let packet = match bytes.get(digits) {
        Some(b':') if digits > 0 => bytes.get(digits + 1..)?,
        _ => bytes,
    };
    packet.strip_prefix(b"0")
}
