//! What a client's text and binary messages do, per dialect: the one pipeline every
//! message goes through ([`Conn::on_text`]: count, decode, rate limit, handle, and
//! exactly one direct reply, which echoes the request's `id`), and the replies.

use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;

use super::super::access;
use super::super::envelope::{
    self, AuthError, AuthSuccess, ChannelReply, Empty, ErrorPayload, Inbound, WsError, client,
    server, string_field,
};
use super::super::events;
use super::super::gateway;
use super::super::hub::{Dialect, TooManyChannels};
use super::Conn;
use crate::auth::Principal;
use crate::domain::channels::Channel;
use crate::domain::chat::PlainSendMessage;
use crate::domain::input::decode;
use crate::error::AppError;
use crate::metrics::TypeLabel;
use crate::realtime::namespaces::chat;

/// The `ws_messages_in` label of what a dashboard sends (and is ignored).
const IGNORED: &str = "ignored";

/// The one bucket every incoming message draws from (contract §7.1).
const RATE_KEY: &str = "ws";

/// seed 003's text for every refused token.
const INVALID_TOKEN: &str = "Invalid or expired token";

impl<A: Adapter> Conn<A> {
    pub(super) fn count_in(&self, kind: &'static str) {
        self.app
            .metrics
            .ws
            .messages_in
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
    }

    /// The pipeline every text message goes through.
    pub(super) async fn on_text(&mut self, text: &str) {
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
            && self.peer.push(&own)
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
            && self.peer.push(&message)
        {
            self.app.ws.count_out(server::ERROR, 1);
        }
    }

    pub(super) fn on_binary(&mut self) {
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
    pub(super) fn authenticate(&mut self, token: &str, id: Option<&str>) {
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
    pub(super) fn adopt(&mut self, principal: Principal) -> Result<(), TooManyChannels> {
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
        if self.peer.push(&message) {
            self.app
                .metrics
                .ws
                .messages_out
                .get_or_create(&TypeLabel { r#type: kind })
                .inc();
        }
    }

    pub(super) fn reply_error(&self, error: &WsError, id: Option<&str>) {
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
