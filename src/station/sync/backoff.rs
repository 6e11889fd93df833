//! Retry timing: exponential backoff with full jitter, `Retry-After`, and the
//! cooldown after repeated failures.

use std::time::Duration;

/// The longest single backoff, whatever the attempt number.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before retry number `attempt` (1 = the first retry): a uniformly
/// random time between zero and `base × 2^(attempt−1)` (capped at
/// [`MAX_BACKOFF`]) — "full jitter", so stations that failed together do not
/// come back together. A `Retry-After` from the hub is a floor.
#[must_use]
pub fn backoff_delay(base: Duration, attempt: u32, retry_after: Option<Duration>, random_unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let jittered = ceiling.mul_f64(random_unit.clamp(0.0, 1.0));
    match retry_after {
        Some(floor) => jittered.max(floor.min(MAX_BACKOFF.saturating_mul(4))),
        None => jittered,
    }
}

/// A random number in `[0, 1)` for jitter.
#[must_use]
pub fn jitter() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_doubling_ceiling() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff_delay(base, 1, None, 0.0), Duration::ZERO);
        assert_eq!(backoff_delay(base, 1, None, 0.999_999).as_secs(), 4);
        assert_eq!(backoff_delay(base, 3, None, 0.5), Duration::from_secs(10));
        assert_eq!(backoff_delay(base, 30, None, 1.0), MAX_BACKOFF, "capped");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff_delay(base, 1, Some(Duration::from_secs(7)), 0.5), Duration::from_secs(7));
        assert_eq!(
            backoff_delay(Duration::from_secs(100), 2, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(100),
            "a longer jittered wait wins over a short Retry-After"
        );
    }
}
