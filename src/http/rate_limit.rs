//! REST rate limit per token (contract §8): a token bucket per bearer token,
//! `REST_RATE_LIMIT_PER_SEC` refill and `REST_RATE_LIMIT_BURST` size; over it, 429
//! `RATE_LIMITED` with `Retry-After` in whole seconds, and nothing is done.
//!
//! Only tokens that verify get a bucket: a request without one, or with a forged or
//! expired one, passes on to its route, which answers 401 without keeping anything. A
//! bucket back to full is the same as no bucket, so buckets idle for longer than a full
//! refill are dropped: the map holds the tokens used in the last `burst ÷ rate` seconds
//! (4 s by default), never more.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socketioxide::adapter::Adapter;

use crate::auth::bearer_from_headers;
use crate::error::AppError;
use crate::state::AppState;

/// How often idle buckets are dropped, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct Buckets {
    /// By a keyed hash of the token (the token itself is not kept).
    by_token: HashMap<u64, Bucket>,
    swept: Instant,
}

/// The buckets of every token seen lately.
#[derive(Debug)]
pub struct RestLimiter {
    per_sec: f64,
    burst: f64,
    hasher: std::collections::hash_map::RandomState,
    buckets: Mutex<Buckets>,
}

impl RestLimiter {
    /// No bucket yet.
    pub fn new(per_sec: f64, burst: f64) -> Self {
        RestLimiter {
            per_sec,
            burst,
            hasher: Default::default(),
            buckets: Mutex::new(Buckets {
                by_token: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Takes one request from `token`'s bucket, or answers how many whole seconds until
    /// the next one is allowed.
    pub fn take(&self, token: &str, now: Instant) -> Result<(), u64> {
        let key = self.hasher.hash_one(token);
        let full = Bucket {
            tokens: self.burst,
            last: now,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(buckets.swept) >= SWEEP_EVERY {
            let refill = Duration::from_secs_f64(self.burst / self.per_sec);
            buckets
                .by_token
                .retain(|_, b| now.saturating_duration_since(b.last) < refill);
            buckets.swept = now;
        }
        let bucket = buckets.by_token.entry(key).or_insert(full);
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// Tokens with a bucket now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_token
            .len()
    }
}

/// Middleware over `/api/*`: counts the request against its verified bearer token.
pub async fn limit<A: Adapter>(
    State((app, limiter)): State<(AppState<A>, Arc<RestLimiter>)>,
    mut req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let verified = bearer_from_headers(req.headers())
        .and_then(|token| Some((token.to_owned(), app.verifier.verify(token).ok()?)));
    let verdict = match verified {
        Some((token, principal)) => {
            let verdict = limiter.take(&token, Instant::now());
            // The route's `Authenticated` takes it from here instead of verifying again.
            req.extensions_mut().insert(principal);
            verdict
        }
        None => Ok(()),
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(retry_after) => {
            app.metrics.rest_rate_limited.inc();
            let mut response = AppError::RateLimited.into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_refill_rate_with_the_wait_in_whole_seconds() {
        let limiter = RestLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take("a", t0), Ok(()));
        }
        // Empty: the next token comes in 0.5 s, said as 1 s.
        assert_eq!(limiter.take("a", t0), Err(1));
        // Another token has its own bucket.
        assert_eq!(limiter.take("b", t0), Ok(()));
        assert_eq!(limiter.take("a", t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.take("a", t0 + Duration::from_millis(500)), Err(1));
    }

    #[test]
    fn idle_buckets_are_dropped_once_they_would_be_full() {
        let limiter = RestLimiter::new(10.0, 20.0); // refilled in 2 s
        let t0 = Instant::now();
        for i in 0..100 {
            assert_eq!(limiter.take(&format!("token-{i}"), t0), Ok(()));
        }
        assert_eq!(limiter.tracked(), 100);
        limiter
            .take("late", t0 + Duration::from_millis(2500))
            .unwrap_or_else(|_| panic!("a fresh token is limited"));
        assert_eq!(
            limiter.tracked(),
            1,
            "only the token used within 2 s is kept"
        );
    }

    #[test]
    fn a_long_wait_is_rounded_up() {
        let limiter = RestLimiter::new(0.25, 1.0);
        let t0 = Instant::now();
        assert_eq!(limiter.take("a", t0), Ok(()));
        assert_eq!(limiter.take("a", t0), Err(4));
    }
}
