//! Per-key rate limiting: a token bucket per API key, in memory.
//!
//! Off by default. `--rate-limit-per-minute N` (`HUB_RATE_LIMIT_PER_MINUTE`)
//! refills N requests a minute per key; `--rate-limit-burst B`
//! (`HUB_RATE_LIMIT_BURST`, default N) is how many may come at once. A
//! refused request gets `429` with `Retry-After` in whole seconds, which the
//! station honours before retrying.
//!
//! Buckets are keyed by [`super::auth::Caller::rate_key`], i.e. per valid key,
//! so the map is bounded by the number of keys; unauthenticated requests never
//! create a bucket. With several hub processes each keeps its own buckets
//! (the limit then applies per process), which is fine for a guard against a
//! runaway station.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute per key (the refill rate); at least 1.
    pub per_minute: u32,
    /// Requests that may arrive at once; at least 1.
    pub burst: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets, one per key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter with this limit (zeros are raised to 1).
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        let limit = RateLimit { per_minute: limit.per_minute.max(1), burst: limit.burst.max(1) };
        RateLimiter { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// The limit in force.
    #[must_use]
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from `key`'s bucket at `now`, or says how long to
    /// wait until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let per_sec = f64::from(self.limit.per_minute) / 60.0;
        let capacity = f64::from(self.limit.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
#[must_use]
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_key() {
        let limiter = RateLimiter::new(RateLimit { per_minute: 60, burst: 2 });
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert!(limiter.check("a", t0).is_ok());
        let wait = limiter.check("a", t0).unwrap_err();
        assert_eq!(retry_after_secs(wait), 1, "one token a second");
        assert!(limiter.check("b", t0).is_ok(), "keys have their own buckets");
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_ok(), "refilled");
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn slow_limits_ask_for_long_waits() {
        let limiter = RateLimiter::new(RateLimit { per_minute: 2, burst: 1 });
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        assert_eq!(retry_after_secs(limiter.check("a", t0).unwrap_err()), 30);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
