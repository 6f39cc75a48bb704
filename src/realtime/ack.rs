//! Reply envelopes and their two dialects, and the [`Reply`] extractor that answers an
//! event exactly once: through the ack when the client asked for one, otherwise (on
//! failure only) with an `error` event to that socket.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;

use super::events;
use crate::error::{AppError, AppResult, ErrorCode};

/// Which envelope a namespace speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Seed 004: `{ ok, data | error: { code, message } }`.
    Chat,
    /// Seed 001: `{ success, data | error: { code, message, details? } }`.
    Restaurant,
}

impl Dialect {
    /// The code string for this dialect.
    pub fn code(self, code: ErrorCode) -> &'static str {
        match self {
            Dialect::Chat => code.chat(),
            Dialect::Restaurant => code.restaurant(),
        }
    }

    /// The success envelope; `Value::Null` data is left out.
    pub fn success(self, data: Value) -> Value {
        let key = self.ok_key();
        if data.is_null() {
            json!({ key: true })
        } else {
            json!({ key: true, "data": data })
        }
    }

    /// The failure envelope.
    pub fn failure(self, error: &AppError) -> Value {
        json!({ self.ok_key(): false, "error": self.error_body(error) })
    }

    /// `{ code, message }` as carried by the envelope and the `error` event.
    pub fn error_body(self, error: &AppError) -> Value {
        json!({ "code": self.code(error.code()), "message": error.public_message() })
    }

    fn ok_key(self) -> &'static str {
        match self {
            Dialect::Chat => "ok",
            Dialect::Restaurant => "success",
        }
    }
}

/// Answers one client event. Built by socketioxide for each incoming event.
pub struct Reply<A: Adapter> {
    ack: AckSender<A>,
    socket: SocketRef<A>,
    wants_ack: bool,
}

impl<A: Adapter> FromMessageParts<A> for Reply<A> {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<A>>,
        v: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(Reply {
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            socket: SocketRef::from_message_parts(s, v, ack_id)?,
            wants_ack: ack_id.is_some(),
        })
    }
}

impl<A: Adapter> Reply<A> {
    /// Sends the outcome. Errors are logged once here. A client that gave no ack gets
    /// nothing on success and an `error` event on failure.
    pub fn send(self, dialect: Dialect, result: AppResult<Value>) {
        if let Err(e) = &result {
            e.log();
        }
        let sent = match (result, self.wants_ack) {
            // Moved, not cloned: a history page can be megabytes.
            (Ok(data), true) => self.ack.send(&dialect.success(data)),
            (Err(e), true) => self.ack.send(&dialect.failure(&e)),
            (Err(e), false) => self.socket.emit(events::ERROR, &dialect.error_body(&e)),
            (Ok(_), false) => Ok(()),
        };
        if let Err(e) = sent {
            // The socket closed or its buffer is full: nothing more can be done for it.
            tracing::debug!(error = %e, "reply not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_two_dialects() {
        let e = AppError::bad_request("content: must be 1 to 4000 characters");
        assert_eq!(
            Dialect::Chat.failure(&e),
            json!({ "ok": false, "error": { "code": "BAD_REQUEST", "message": "content: must be 1 to 4000 characters" } })
        );
        assert_eq!(
            Dialect::Restaurant.failure(&e)["error"]["code"],
            "INVALID_PAYLOAD"
        );
        assert_eq!(Dialect::Chat.success(Value::Null), json!({ "ok": true }));
        assert_eq!(
            Dialect::Restaurant.success(json!([1])),
            json!({ "success": true, "data": [1] })
        );
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let e = AppError::Database(sqlx::Error::PoolTimedOut);
        assert_eq!(
            Dialect::Chat.failure(&e),
            json!({ "ok": false, "error": { "code": "INTERNAL", "message": "internal server error" } })
        );
    }
}
