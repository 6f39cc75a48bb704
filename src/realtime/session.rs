//! What a socket carries for its whole life: who it is, its rate limits, its dialect.

use socketioxide::adapter::Adapter;

use crate::auth::Principal;
use crate::realtime::ack::Dialect;
use crate::realtime::rate_limit::RateLimiter;
use crate::state::AppState;

/// Per-socket context, shared by all of the socket's event handlers.
pub struct Session<A: Adapter> {
    /// Application state.
    pub app: AppState<A>,
    /// Identity fixed at connect.
    pub principal: Principal,
    /// Token buckets.
    pub limiter: RateLimiter,
    /// Envelope dialect of the namespace.
    pub dialect: Dialect,
    /// Namespace path (for logs and broadcasts).
    pub ns: &'static str,
}

impl<A: Adapter> Session<A> {
    /// A new session for a verified principal.
    pub fn new(app: AppState<A>, principal: Principal, dialect: Dialect, ns: &'static str) -> Self {
        let limiter = RateLimiter::new(app.config.rate_limit_per_sec, app.config.rate_limit_burst);
        Session {
            app,
            principal,
            limiter,
            dialect,
            ns,
        }
    }

    /// The acting user.
    pub fn user_id(&self) -> i64 {
        self.principal.user_id
    }
}
