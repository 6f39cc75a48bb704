//! One `/ws` connection from upgrade to close: a reader that handles the client's
//! messages and a writer that drains the connection's one bounded queue, pings, and
//! sends the close frame. Both run as futures of the connection's single task.
//!
//! Every message the client sends goes through one pipeline ([`Conn::on_text`]): count,
//! decode, rate limit, handle, and exactly one direct reply, which echoes the request's
//! `id`. Replies and channel deliveries share the queue, so a client sees them in the
//! order the server produced them, and a client that does not read is closed (1013)
//! instead of growing memory.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use uuid::Uuid;

use super::access;
use super::envelope::{
    self, AuthError, AuthSuccess, ChannelReply, Empty, ErrorPayload, Inbound, WsError, client,
    server, string_field,
};
use super::events;
use super::gateway;
use super::hub::{CloseReason, Dialect, Peer, TooManyChannels};
use super::outbox::Next;
use crate::auth::Principal;
use crate::domain::channels::Channel;
use crate::domain::chat::PlainSendMessage;
use crate::domain::input::decode;
use crate::error::AppError;
use crate::metrics::{RouteLabel, TypeLabel};
use crate::realtime::lifetime::LifetimeKey;
use crate::realtime::namespaces::chat;
use crate::realtime::rate_limit::RateLimiter;
use crate::state::AppState;

/// The route label of a dialect's connections.
fn route(dialect: Dialect) -> RouteLabel {
    RouteLabel {
        route: match dialect {
            Dialect::Envelope | Dialect::Bare => "/ws",
            Dialect::Dashboard => "/ws/dashboard",
            Dialect::Gateway => "/ws/:entity/:section",
        },
    }
}

/// The `ws_messages_in` label of what a dashboard sends (and is ignored).
const IGNORED: &str = "ignored";

/// How long the close frame may take to leave: a client that stopped reading for a
/// moment (a phone waking up) still learns why it was closed (1013) after what fitted
/// in the buffers; one that never reads is dropped after this.
const CLOSE_WRITE: Duration = Duration::from_secs(5);

/// How long the server waits for the client's answer to its close frame before it
/// drops the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Queued messages written with one flush at most.
const WRITE_BATCH: usize = 32;

/// The one bucket every incoming message draws from (contract §7.1).
const RATE_KEY: &str = "ws";

/// seed 003's text for every refused token.
const INVALID_TOKEN: &str = "Invalid or expired token";

/// How a connection starts.
pub enum Start {
    /// The envelope dialect, with the handshake's token if any (`?token=`, or the
    /// header with `?format=envelope`), checked here so that a bad one opens the
    /// connection unauthenticated with `auth_error` (contract §7.7).
    Envelope(Option<String>),
    /// The bare dialect, whose token was verified before the upgrade.
    Bare(Principal),
    /// A check-in dashboard of one session (contract §7.6), with the principal whose
    /// token was verified before the upgrade when `DASHBOARD_REQUIRE_TOKEN` asks for one.
    Dashboard {
        /// The session whose check-ins it receives.
        session: Uuid,
        /// Who it acts as, if a token was required.
        principal: Option<Principal>,
    },
    /// An entity gateway connection (contract §7.4), whose token was verified before
    /// the upgrade.
    Gateway {
        /// Its entity and section.
        context: gateway::Context,
        /// Who it acts as.
        principal: Principal,
    },
}

impl Start {
    fn dialect(&self) -> Dialect {
        match self {
            Start::Envelope(_) => Dialect::Envelope,
            Start::Bare(_) => Dialect::Bare,
            Start::Dashboard { .. } => Dialect::Dashboard,
            Start::Gateway { .. } => Dialect::Gateway,
        }
    }
}

/// A connection in the hub before its upgrade completes: what is delivered between the
/// handshake's answer and the connection's first step waits in its queue, so a
/// dashboard hears a check-in posted the moment it connected. Dropped (the upgrade
/// failed, or the connection ended), it leaves the hub.
pub struct Registered {
    hub: super::Hub,
    peer: Arc<Peer>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.hub.remove(&self.peer);
    }
}

/// Registers the connection `start` describes (a dashboard joins its session's
/// channel here); [`run`] serves it once upgraded.
pub fn register<A: Adapter>(app: &AppState<A>, start: &Start) -> Registered {
    let peer = app.ws.register(app.config.ws.send_queue, start.dialect());
    if let Start::Dashboard { session, .. } = start
        && app
            .ws
            .subscribe(&peer, &events::checkins_channel(*session))
            .is_err()
    {
        // Only a channel limit of 0 refuses a fresh connection; configuration forbids it.
        tracing::warn!("a dashboard could not join its session's channel");
    }
    if let Start::Gateway { context, principal } = start {
        // `system.connected` is the first message, ahead of any snapshot.
        if let Some(hello) = gateway::connected(context, &app.config.ws.allowed_actions)
            && peer.push(hello)
        {
            app.ws.count_out(gateway::CONNECTED, 1);
        }
        context.subscribe(&app.ws, &peer, principal);
    }
    Registered {
        hub: app.ws.clone(),
        peer,
    }
}

/// Serves one upgraded connection until it closes: sets it up here, at once, and
/// returns the future that serves it.
///
/// The setup is not part of that future on purpose: an `async fn` keeps its arguments
/// for its whole life, so the socket (moved into its two halves) and the `Start` (moved
/// into the connection) would be stored a second time in every idle connection's task.
pub fn run<A: Adapter>(
    app: AppState<A>,
    socket: WebSocket,
    start: Start,
    registered: Registered,
) -> impl Future<Output = ()> {
    let peer = registered.peer.clone();
    let route = route(peer.dialect());
    app.metrics.ws.connections.get_or_create(&route).inc();
    let ping_every = app.config.ws.ping_interval;
    let mut conn = Box::new(Conn {
        limiter: RateLimiter::new(app.config.rate_limit_per_sec, app.config.rate_limit_burst),
        app,
        peer: peer.clone(),
        principal: None,
        lifetime: None,
        gateway: None,
        registered,
        route,
    });
    match start {
        Start::Envelope(Some(token)) => conn.authenticate(&token, None),
        Start::Envelope(None) => {}
        Start::Bare(principal) => {
            if conn.adopt(principal).is_err() {
                // A fresh connection holds no channel: only a limit of 0 refuses it.
                let max = conn.app.ws.max_channels();
                conn.reply_error(&WsError::too_many_channels(max), None);
            }
        }
        // A dashboard joined its channel at registration and joins nothing else; with a
        // token, the token's expiry and operator disconnects end it as on `/ws`.
        Start::Dashboard { principal, .. } => {
            if let Some(principal) = principal {
                conn.lifetime = Some(conn.app.lifetimes.register(
                    principal.user_id.clone(),
                    principal.expires_at,
                    peer.clone(),
                ));
                conn.principal = Some(principal);
            }
        }
        // The gateway joined its channels at registration; its token's expiry and
        // operator disconnects end it as on `/ws`.
        Start::Gateway { context, principal } => {
            conn.lifetime = Some(conn.app.lifetimes.register(
                principal.user_id.clone(),
                principal.expires_at,
                peer.clone(),
            ));
            conn.principal = Some(principal);
            conn.gateway = Some(context);
        }
    }
    let (sink, stream) = socket.split();
    serve(conn, sink, stream, ping_every)
}

/// Reads and writes until both halves have ended, then takes the connection out of
/// the hub. The connection's state is boxed (the task keeps a pointer, once).
async fn serve<A: Adapter>(
    mut conn: Box<Conn<A>>,
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    ping_every: Duration,
) {
    let peer = conn.peer.clone();
    let writer = write(sink, &peer, ping_every);
    tokio::join!(conn.read(stream), writer);
    // Both halves end only once a reason is set; counted there.
    let reason = peer.closing().unwrap_or(CloseReason::Client);
    let Conn {
        app,
        registered,
        route,
        lifetime,
        principal,
        ..
    } = *conn;
    // Out of the hub (every channel, the registry).
    drop(registered);
    if let Some(key) = lifetime {
        app.lifetimes.remove(key);
    }
    app.metrics.ws.connections.get_or_create(&route).dec();
    tracing::debug!(
        user = principal
            .as_ref()
            .map(|p| tracing::field::display(&p.user_id)),
        reason = reason.label(),
        route = route.route,
        "plain WebSocket connection closed"
    );
}

/// Drains the queue into the socket and pings, until the connection must close; then
/// sends the close frame (bounded by [`CLOSE_WRITE`]).
async fn write(mut sink: SplitSink<WebSocket, Message>, peer: &Peer, ping_every: Duration) {
    let outbox = peer.outbox();
    let start = tokio::time::Instant::now() + ping_every;
    let mut ping = tokio::time::interval_at(start, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let batch = tokio::select! {
            biased;
            next = outbox.next(WRITE_BATCH) => match next {
                Next::Messages(batch) => batch,
                Next::Close => break,
            },
            _ = ping.tick() => [Message::Ping(Default::default())].into(),
        };
        // What was queued goes in one write (a fan-out burst costs one flush, not one
        // per message). A write the client does not take blocks here; closing (a full
        // queue, the idle timeout, shutdown) must still get through.
        let write = async {
            for message in batch {
                sink.feed(message).await?;
            }
            sink.flush().await
        };
        let sent = tokio::select! {
            sent = write => sent,
            _ = outbox.closed() => break,
        };
        if let Err(e) = sent {
            peer.close(failure(e));
            break;
        }
    }
    // Cold, and larger than the loop: boxed, so an idle connection's task does not
    // carry its state.
    Box::pin(close(sink, peer)).await;
}

/// Sends the close frame after what may still go out before it, bounded by
/// [`CLOSE_WRITE`].
async fn close(mut sink: SplitSink<WebSocket, Message>, peer: &Peer) {
    let queued = peer.outbox().shut();
    let reason = peer.closing().unwrap_or(CloseReason::Error);
    let _ = tokio::time::timeout(CLOSE_WRITE, async {
        // Replies already queued (to messages handled before a shutdown, say) go out
        // before the close frame; a slow consumer's queue is what it would not read,
        // and a client that closed or broke the connection takes nothing more.
        if reason.frame().is_some() && reason != CloseReason::SlowConsumer {
            for message in queued {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
        }
        let _ = match reason.frame() {
            Some((code, why)) => {
                let frame = CloseFrame {
                    code,
                    reason: why.into(),
                };
                sink.send(Message::Close(Some(frame))).await
            }
            // The client's close is answered by the protocol layer; this flushes it.
            None => sink.close().await,
        };
    })
    .await;
}

/// The reading side and everything a message can change.
struct Conn<A: Adapter> {
    app: AppState<A>,
    peer: Arc<Peer>,
    principal: Option<Principal>,
    lifetime: Option<LifetimeKey>,
    limiter: RateLimiter,
    /// An entity gateway connection's entity and section.
    gateway: Option<gateway::Context>,
    /// Its place in the hub, left when the connection ends.
    registered: Registered,
    /// Its route's label in the metrics.
    route: RouteLabel,
}

impl<A: Adapter> Conn<A> {
    /// Reads until the client leaves, goes quiet, breaks the protocol, or the
    /// connection is closed from elsewhere.
    async fn read(&mut self, mut stream: SplitStream<WebSocket>) {
        let idle = self.app.config.ws.idle_timeout;
        let mut draining = self.app.ws.draining();
        let peer = self.peer.clone();
        let outbox = peer.outbox();
        loop {
            let frame = tokio::select! {
                biased;
                _ = outbox.closed() => break,
                _ = draining.wait_for(|d| *d) => None,
                frame = tokio::time::timeout(idle, stream.next()) => Some(frame),
            };
            let Some(frame) = frame else {
                // Shutdown: nothing new is taken; the close (1001) follows once every
                // connection's message in hand is answered.
                outbox.closed().await;
                break;
            };
            match frame {
                Err(_) => self.peer.close(CloseReason::Idle),
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => self.peer.close(CloseReason::Client),
                Ok(Some(Err(e))) => self.peer.close(failure(e)),
                Ok(Some(Ok(Message::Text(text)))) => {
                    let _handling = peer.handling();
                    // Boxed: the handlers' futures (a chat message's database round
                    // trips) are several times the rest of the connection's state, which
                    // every idle connection would otherwise carry.
                    Box::pin(self.on_text(text.as_str())).await;
                }
                Ok(Some(Ok(Message::Binary(_)))) => self.on_binary(),
                // Pings are answered by the protocol layer; both only prove liveness.
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            }
        }
        // After the server's close frame the client answers with its own; reading it
        // lets the TCP connection end cleanly rather than be reset under the frame.
        if self.peer.closing().and_then(CloseReason::frame).is_some() {
            // The close frame itself may take up to CLOSE_WRITE to leave. Boxed like
            // the handlers: cold, and no idle connection should carry it.
            let _ = Box::pin(tokio::time::timeout(CLOSE_WRITE + CLOSE_WAIT, async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            }))
            .await;
        }
    }

    fn count_in(&self, kind: &'static str) {
        self.app
            .metrics
            .ws
            .messages_in
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    /// The pipeline every text message goes through.
    async fn on_text(&mut self, text: &str) {
        match self.peer.dialect() {
            // Contract §7.7: a dashboard ignores every message (its pings are answered
            // by the protocol layer, and any frame proves it alive).
            Dialect::Dashboard => return self.count_in(IGNORED),
            Dialect::Bare => {
                let app = self.app.clone();
                let _running = app.in_flight.enter();
                return self.on_bare(text).await;
            }
            Dialect::Gateway => {
                let _running = self.app.in_flight.enter();
                if let (Some(context), Some(principal)) = (&self.gateway, &self.principal) {
                    gateway::on_text(
                        &self.app,
                        &self.peer,
                        context,
                        principal,
                        &self.limiter,
                        text,
                    )
                    .await;
                }
                return;
            }
            Dialect::Envelope => {}
        }
        let app = self.app.clone();
        let _running = app.in_flight.enter();
        let decoded = envelope::decode(text);
        self.count_in(match &decoded {
            Ok(message) => envelope::type_label(&message.kind),
            Err(_) => "invalid",
        });
        if self.limiter.check(RATE_KEY).is_err() {
            let id = match &decoded {
                Ok(message) => message.id.as_deref(),
                Err((_, id)) => id.as_deref(),
            };
            self.reply_error(&crate::error::AppError::RateLimited.into(), id);
            return;
        }
        match decoded {
            Ok(message) => self.dispatch(message).await,
            Err((error, id)) => self.reply_error(&error, id.as_deref()),
        }
    }

    /// A bare (seed 002) frame: `{conversation_id, content, type?}` is a chat message;
    /// its sender hears it with the other members' connections, and only errors are
    /// answered directly.
    async fn on_bare(&mut self, text: &str) {
        let decoded = serde_json::from_str::<Value>(text)
            .map_err(|_| AppError::bad_request("not valid JSON"))
            .and_then(|value| match value {
                Value::Object(_) => decode::<PlainSendMessage>(value),
                _ => Err(AppError::bad_request("a message is one JSON object")),
            });
        self.count_in(if decoded.is_ok() {
            envelope::client::CHAT_MESSAGE
        } else {
            "invalid"
        });
        if self.limiter.check(RATE_KEY).is_err() {
            return self.reply_bare_error(&AppError::RateLimited);
        }
        let sent = match decoded {
            Ok(message) => self.send_chat(message, None).await,
            Err(error) => Err(error),
        };
        if let Err(error) = sent {
            self.reply_bare_error(&error);
        }
    }

    /// Stores and announces a chat message sent on this connection (contract §7.2,
    /// §7.3: the same path as `/chat`'s `message:send`). An envelope sender gets its own
    /// copy here, with the request's `id`; a bare one with the others.
    async fn send_chat(
        &mut self,
        message: PlainSendMessage,
        id: Option<&str>,
    ) -> Result<(), AppError> {
        let Some(principal) = self.principal.as_ref() else {
            return Err(AppError::Unauthenticated);
        };
        let envelope = self.peer.dialect() == Dialect::Envelope;
        let from = chat::Sender {
            principal,
            socket: None,
            plain: envelope.then_some(self.peer.id()),
        };
        let (send, message_type) = message.into_send();
        let stored = chat::send(&self.app, from, send, message_type).await?;
        if envelope
            && let Some(own) = events::envelope_chat(&stored, id)
            && self.peer.push(own)
        {
            self.app.ws.count_out(events::kind::CHAT_MESSAGE, 1);
        }
        Ok(())
    }

    fn reply_bare_error(&self, error: &AppError) {
        if matches!(error, AppError::Database(_) | AppError::Internal(_)) {
            error.log();
        }
        let body = BareError {
            error: BareErrorBody {
                code: error.code().chat(),
                message: &error.public_message(),
            },
        };
        if let Some(message) = events::bare(&body)
            && self.peer.push(message)
        {
            self.app.ws.count_out(server::ERROR, 1);
        }
    }

    fn on_binary(&mut self) {
        if self.peer.dialect() == Dialect::Dashboard {
            return self.count_in(IGNORED);
        }
        if let Some(context) = &self.gateway {
            return gateway::on_binary(&self.app, &self.peer, context, &self.limiter);
        }
        self.count_in("invalid");
        if self.peer.dialect() == Dialect::Bare {
            let error = if self.limiter.check(RATE_KEY).is_err() {
                AppError::RateLimited
            } else {
                AppError::bad_request("binary frames are not supported: send JSON text")
            };
            return self.reply_bare_error(&error);
        }
        let error = if self.limiter.check(RATE_KEY).is_err() {
            crate::error::AppError::RateLimited.into()
        } else {
            WsError::invalid_message("binary frames are not supported: send JSON text")
        };
        self.reply_error(&error, None);
    }

    async fn dispatch(&mut self, message: Inbound) {
        let Inbound { kind, payload, id } = message;
        let id = id.as_deref();
        match kind.as_str() {
            client::AUTH => match string_field(&payload, "token") {
                Ok(token) => self.authenticate(token, id),
                Err(error) => self.reply_error(&error, id),
            },
            client::SUBSCRIBE => match self.subscribe(&payload).await {
                Ok(channel) => self.reply(server::SUBSCRIBED, ChannelReply { channel }, id),
                Err(error) => self.reply_error(&error, id),
            },
            client::UNSUBSCRIBE => match channel_field(&payload) {
                Ok((name, _)) => {
                    self.app.ws.unsubscribe(&self.peer, name);
                    self.reply(server::UNSUBSCRIBED, ChannelReply { channel: name }, id);
                }
                Err(error) => self.reply_error(&error, id),
            },
            client::PING => self.reply(server::PONG, Empty {}, id),
            client::CHAT_MESSAGE => {
                let sent = match decode::<PlainSendMessage>(Value::Object(payload)) {
                    Ok(message) => self.send_chat(message, id).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = sent {
                    let error = match error {
                        AppError::Unauthenticated => WsError::unauthorized(),
                        other => other.into(),
                    };
                    self.reply_error(&error, id);
                }
            }
            other => self.reply_error(&WsError::unknown_type(other), id),
        }
    }

    /// `auth`, or the handshake's token: a good token (re)sets the identity and its
    /// `user:` channel; a bad one changes nothing.
    fn authenticate(&mut self, token: &str, id: Option<&str>) {
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let principal = match self.app.verifier.verify(token) {
            Ok(principal) => principal,
            Err(_) => {
                let error = AuthError {
                    error: INVALID_TOKEN,
                };
                self.reply(server::AUTH_ERROR, error, id);
                return;
            }
        };
        let user_id = principal.user_id.clone();
        let joined = self.adopt(principal);
        self.reply(server::AUTH_SUCCESS, AuthSuccess { user_id }, id);
        if joined.is_err() {
            let max = self.app.ws.max_channels();
            self.reply_error(&WsError::too_many_channels(max), id);
        }
    }

    /// Takes `principal` as the connection's identity and joins its `user:` channel
    /// (leaving what another user's identity was let into).
    fn adopt(&mut self, principal: Principal) -> Result<(), TooManyChannels> {
        let user_id = principal.user_id.clone();
        if let Some(before) = self.principal.take()
            && before.user_id != user_id
        {
            // Another user: what the previous identity was let into is not this one's.
            let own = format!("user:{}", before.user_id);
            for channel in self.app.ws.leave_private(&self.peer) {
                if *channel != *own {
                    self.reply(
                        server::UNSUBSCRIBED,
                        ChannelReply { channel: &channel },
                        None,
                    );
                }
            }
        }
        if let Some(key) = self.lifetime.take() {
            self.app.lifetimes.remove(key);
        }
        self.lifetime = Some(self.app.lifetimes.register(
            user_id.clone(),
            principal.expires_at,
            self.peer.clone(),
        ));
        self.peer.set_user(&user_id);
        self.principal = Some(principal);
        self.app
            .ws
            .subscribe(&self.peer, &format!("user:{user_id}"))
            .map(|_| ())
    }

    async fn subscribe<'p>(&mut self, payload: &'p Map<String, Value>) -> Result<&'p str, WsError> {
        let (name, channel) = channel_field(payload)?;
        access::check(&self.app, self.principal.as_ref(), channel, name).await?;
        self.app
            .ws
            .subscribe(&self.peer, name)
            .map_err(|_| WsError::too_many_channels(self.app.ws.max_channels()))?;
        Ok(name)
    }

    /// Queues a direct reply (a full queue closes the connection instead).
    fn reply<P: Serialize>(&self, kind: &'static str, payload: P, id: Option<&str>) {
        let Some(message) = envelope::render(kind, payload, id, chrono::Utc::now()) else {
            return;
        };
        if self.peer.push(message) {
            self.app
                .metrics
                .ws
                .messages_out
                .get_or_create(&TypeLabel { r#type: kind })
                .inc();
        }
    }

    fn reply_error(&self, error: &WsError, id: Option<&str>) {
        let payload = ErrorPayload {
            code: error.code,
            message: &error.message,
        };
        self.reply(server::ERROR, payload, id);
    }
}

/// A bare dialect error: `{error:{code, message}}` with the codes of contract §3.
#[derive(Serialize)]
struct BareError<'a> {
    error: BareErrorBody<'a>,
}

#[derive(Serialize)]
struct BareErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

/// The `channel` of a subscribe or unsubscribe payload, checked against the name rules.
fn channel_field(payload: &Map<String, Value>) -> Result<(&str, Channel<'_>), WsError> {
    let name = string_field(payload, "channel")?;
    let channel = Channel::parse(name)
        .map_err(|e| WsError::invalid_payload(format!("channel: {}", e.message())))?;
    Ok((name, channel))
}

/// Why a read or write failed: a message over `WS_MAX_MESSAGE_BYTES`, a client that went away
/// without a close frame (a dropped mobile connection: counted as `client`), or a
/// protocol violation (invalid UTF-8, a bad frame).
fn failure(error: axum::Error) -> CloseReason {
    use tungstenite::error::{Error, ProtocolError};
    match error.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(_)) => CloseReason::TooBig,
        Some(
            Error::Io(_)
            | Error::ConnectionClosed
            | Error::AlreadyClosed
            | Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        ) => CloseReason::Client,
        _ => CloseReason::Error,
    }
}
