//! Per-socket, per-event token buckets (`RATE_LIMIT_PER_SEC` refill, `RATE_LIMIT_BURST` size).
//!
//! The key set is fixed by the code, never by the client: one bucket per event name a
//! handler is registered for (`&'static str`, passed by `handler::on`), plus one bucket
//! that every event name the namespace does not know shares. A client inventing event
//! names therefore creates no key and allocates nothing; it only drains the shared
//! bucket.

use std::sync::Mutex;
use std::time::Instant;

use crate::error::AppError;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            last: now,
        }
    }

    fn take(&mut self, per_sec: f64, burst: f64, now: Instant) -> Result<(), AppError> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(AppError::RateLimited)
        }
    }
}

#[derive(Debug)]
struct Buckets {
    /// One per registered event; a namespace registers about ten, so a linear scan
    /// beats hashing the name.
    known: Vec<(&'static str, Bucket)>,
    /// Shared by every event name without a handler.
    unknown: Bucket,
}

/// The buckets of one socket.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// A full set of buckets.
    pub fn new(per_sec: f64, burst: f64) -> Self {
        RateLimiter {
            per_sec,
            burst,
            buckets: Mutex::new(Buckets {
                known: Vec::new(),
                unknown: Bucket::full(burst, Instant::now()),
            }),
        }
    }

    /// Takes one token for a registered `event`, or answers `RateLimited`.
    pub fn check(&self, event: &'static str) -> Result<(), AppError> {
        self.check_at(Some(event), Instant::now())
    }

    /// Takes one token from the bucket shared by every event name without a handler.
    pub fn check_unknown(&self) -> Result<(), AppError> {
        self.check_at(None, Instant::now())
    }

    fn check_at(&self, event: Option<&'static str>, now: Instant) -> Result<(), AppError> {
        // A poisoned lock only means another handler panicked mid-update; the buckets
        // are still usable, so keep limiting rather than failing every event.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(event) = event else {
            return buckets.unknown.take(self.per_sec, self.burst, now);
        };
        let index = match buckets.known.iter().position(|(name, _)| *name == event) {
            Some(index) => index,
            None => {
                buckets.known.push((event, Bucket::full(self.burst, now)));
                buckets.known.len() - 1
            }
        };
        buckets.known[index].1.take(self.per_sec, self.burst, now)
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .known
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_per_event() {
        let limiter = RateLimiter::new(10.0, 20.0);
        let t0 = Instant::now();
        for _ in 0..20 {
            limiter.check_at(Some("a"), t0).unwrap();
        }
        assert!(limiter.check_at(Some("a"), t0).is_err());
        // Another event has its own bucket.
        limiter.check_at(Some("b"), t0).unwrap();
        // 100 ms refills one token at 10/s.
        limiter
            .check_at(Some("a"), t0 + Duration::from_millis(100))
            .unwrap();
        assert!(
            limiter
                .check_at(Some("a"), t0 + Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn unknown_event_names_share_one_bucket_and_create_no_key() {
        let limiter = RateLimiter::new(1.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(None, t0).unwrap();
        }
        assert!(limiter.check_at(None, t0).is_err());
        assert_eq!(limiter.keys(), 0);
        // Known events keep their own buckets.
        limiter.check_at(Some("message:send"), t0).unwrap();
        assert_eq!(limiter.keys(), 1);
    }
}
