//! Per-socket, per-event token buckets (`RATE_LIMIT_PER_SEC` refill, `RATE_LIMIT_BURST` size).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::AppError;

/// Distinct event names tracked per socket; names past this share one bucket, so a
/// client inventing event names cannot grow server memory.
const MAX_BUCKETS: usize = 64;
const OVERFLOW_KEY: &str = "\u{0}overflow";

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of one socket.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A full set of buckets.
    pub fn new(per_sec: f64, burst: f64) -> Self {
        RateLimiter {
            per_sec,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `event`, or answers `RateLimited`.
    pub fn check(&self, event: &str) -> Result<(), AppError> {
        self.check_at(event, Instant::now())
    }

    fn check_at(&self, event: &str, now: Instant) -> Result<(), AppError> {
        // A poisoned lock only means another handler panicked mid-update; the map is
        // still usable, so keep limiting rather than failing every event.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = if buckets.contains_key(event) || buckets.len() < MAX_BUCKETS {
            event
        } else {
            OVERFLOW_KEY
        };
        // Every event passes here: allocate the key only the first time a name is seen.
        if !buckets.contains_key(key) {
            buckets.insert(
                key.to_owned(),
                Bucket {
                    tokens: self.burst,
                    last: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(AppError::RateLimited)
        }
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
            limiter.check_at("a", t0).unwrap();
        }
        assert!(limiter.check_at("a", t0).is_err());
        // Another event has its own bucket.
        limiter.check_at("b", t0).unwrap();
        // 100 ms refills one token at 10/s.
        limiter
            .check_at("a", t0 + Duration::from_millis(100))
            .unwrap();
        assert!(
            limiter
                .check_at("a", t0 + Duration::from_millis(100))
                .is_err()
        );
    }

    #[test]
    fn invented_event_names_share_an_overflow_bucket() {
        let limiter = RateLimiter::new(1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS {
            limiter.check_at(&format!("e{i}"), t0).unwrap();
        }
        limiter.check_at("new-1", t0).unwrap();
        assert!(limiter.check_at("new-2", t0).is_err());
        assert_eq!(limiter.buckets.lock().unwrap().len(), MAX_BUCKETS + 1);
    }
}
