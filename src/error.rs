//! The one internal error type and its classification into stable codes.
//!
//! Every failure a client can see is an [`AppError`]. [`AppError::code`] is the single
//! place that classifies it; each wire (HTTP, chat ack, restaurant ack,
//! `connect_error`) only shapes the resulting [`ErrorCode`] into its own dialect.
//! Internal details (SQL errors, I/O) are logged once, never sent.

use std::borrow::Cow;

/// A failure that a client can be told about.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The token is missing, malformed, forged or expired (HTTP 401).
    #[error("authentication required")]
    Unauthenticated,
    /// The principal may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// The thing does not exist, or is not visible to this principal (HTTP 404).
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// The payload is malformed; the message names the field (HTTP 400).
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// The per-socket token bucket for this event is empty (HTTP 429).
    #[error("too many requests")]
    RateLimited,
    /// An order status move that the rules forbid (HTTP 409).
    #[error("{0}")]
    InvalidTransition(Cow<'static, str>),
    /// The thing exists already (a table id taken in its restaurant). Classified with
    /// [`ErrorCode::InvalidTransition`]: contract §9's one 409 code (HTTP 409).
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// A restaurant the principal may act in but that does not exist (HTTP 404).
    #[error("restaurant not found")]
    InvalidRestaurant,
    /// A request body over `MAX_PAYLOAD_BYTES` (HTTP 413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// A database fault. The cause is logged, the client only sees `INTERNAL`.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Any other server-side fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The closed set of error classes; each dialect names them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Bad or missing credentials.
    AuthInvalid,
    /// Not allowed.
    Forbidden,
    /// Not found.
    NotFound,
    /// Malformed input.
    BadRequest,
    /// Too many events.
    RateLimited,
    /// Forbidden status move.
    InvalidTransition,
    /// Unknown restaurant.
    InvalidRestaurant,
    /// Body too large.
    PayloadTooLarge,
    /// Server fault; retrying later may help.
    Internal,
}

impl ErrorCode {
    /// The code in the chat/notification dialect (seed 004) and in REST bodies.
    pub fn chat(self) -> &'static str {
        match self {
            ErrorCode::AuthInvalid => "AUTH_INVALID",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound | ErrorCode::InvalidRestaurant => "NOT_FOUND",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The code in the restaurant dialect (seed 001).
    pub fn restaurant(self) -> &'static str {
        match self {
            ErrorCode::AuthInvalid => "AUTH_FAILED",
            ErrorCode::Forbidden => "PERMISSION_DENIED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidRestaurant => "INVALID_RESTAURANT",
            ErrorCode::BadRequest | ErrorCode::PayloadTooLarge => "INVALID_PAYLOAD",
            ErrorCode::RateLimited => "RATE_LIMIT",
            ErrorCode::InvalidTransition => "INVALID_TRANSITION",
            ErrorCode::Internal => "INTERNAL_ERROR",
        }
    }

    /// The code in the plain WebSocket envelope dialect (seed 003, contract §7.2).
    pub fn envelope(self) -> &'static str {
        match self {
            ErrorCode::AuthInvalid => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound | ErrorCode::InvalidRestaurant => "not_found",
            ErrorCode::BadRequest | ErrorCode::PayloadTooLarge | ErrorCode::InvalidTransition => {
                "invalid_payload"
            }
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status for REST replies.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthInvalid => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::InvalidRestaurant => 404,
            ErrorCode::BadRequest => 400,
            ErrorCode::RateLimited => 429,
            ErrorCode::InvalidTransition => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Internal => 500,
        }
    }
}

impl AppError {
    /// Shorthand for a [`AppError::BadRequest`] naming a field.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::BadRequest(message.into())
    }

    /// Shorthand for [`AppError::NotFound`].
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::NotFound(message.into())
    }

    /// Shorthand for [`AppError::Forbidden`].
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Forbidden(message.into())
    }

    /// The one classification of every error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthenticated => ErrorCode::AuthInvalid,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::RateLimited => ErrorCode::RateLimited,
            AppError::InvalidTransition(_) | AppError::Conflict(_) => ErrorCode::InvalidTransition,
            AppError::InvalidRestaurant => ErrorCode::InvalidRestaurant,
            AppError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            AppError::Database(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The text a client may see: internal causes are replaced by a generic line.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Database(_) | AppError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }

    /// Logs server faults once, with their cause; client mistakes are not logged as errors.
    pub fn log(&self) {
        match self {
            AppError::Database(e) => tracing::error!(error = %e, source = ?e, "database fault"),
            AppError::Internal(e) => tracing::error!(error = %e, "internal fault"),
            other => tracing::debug!(code = other.code().chat(), "client error"),
        }
    }
}

/// Result alias used across the crate.
pub type AppResult<T> = Result<T, AppError>;
