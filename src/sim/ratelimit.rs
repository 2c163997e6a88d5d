//! Fly's documented Machines API rate limits as token buckets on the simulator clock:
//! per action and per machine (or app), 1 req/s with bursts of 3; Get Machine 5 req/s
//! with bursts of 10; app deletions 100 per minute. Knows nothing of HTTP.
//!
//! Source: Fly's docs, "Working with the Machines API", section Rate limits
//! (<https://fly.io/docs/machines/api/working-with-machines-api/>), and a Fly staff answer
//! on the community forum ("Understanding Fly.io API Rate/Hard Limits": 1 request per
//! second per action, burstable to 3; Get Machine 5 req/s, burstable to 10).
//!
//! Windows scale with `time_scale` like every other duration (at `0.01` a bucket
//! refills 100 times faster; at `0` nothing is limited). A 429 carries no
//! `Retry-After` header: Fly's docs don't mention one and its clients don't read it.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    /// Tokens added per second.
    pub per_sec: f64,
    pub burst: f64,
}

pub(crate) const DEFAULT: Limit = Limit {
    per_sec: 1.0,
    burst: 3.0,
};
pub(crate) const GET_MACHINE: Limit = Limit {
    per_sec: 5.0,
    burst: 10.0,
};
pub(crate) const APP_DELETE: Limit = Limit {
    per_sec: 100.0 / 60.0,
    burst: 100.0,
};

#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: HashMap<String, (f64, u64)>,
}

impl RateLimiter {
    /// Takes one token from `key`'s bucket; `Err(ms)` is how long until one is free.
    pub(crate) fn take(
        &mut self,
        key: &str,
        limit: Limit,
        now_ms: u64,
        time_scale: f64,
    ) -> Result<(), u64> {
        if time_scale <= 0.0 {
            return Ok(());
        }
        let (tokens, last) = self
            .buckets
            .entry(key.to_owned())
            .or_insert((limit.burst, now_ms));
        #[allow(clippy::cast_precision_loss)]
        let elapsed = now_ms.saturating_sub(*last) as f64 / 1000.0 / time_scale;
        *tokens = (*tokens + elapsed * limit.per_sec).min(limit.burst);
        *last = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / limit.per_sec * 1000.0 * time_scale;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait = wait.ceil().max(1.0) as u64;
            Err(wait)
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut r = RateLimiter::default();
        for _ in 0..3 {
            assert!(r.take("k", DEFAULT, 0, 1.0).is_ok());
        }
        assert_eq!(r.take("k", DEFAULT, 0, 1.0), Err(1000));
        assert!(r.take("k", DEFAULT, 1000, 1.0).is_ok());
        assert!(r.take("other", DEFAULT, 0, 1.0).is_ok());
        // at a hundredth of the time scale a token comes back after 10 ms
        for _ in 0..3 {
            assert!(r.take("fast", DEFAULT, 0, 0.01).is_ok());
        }
        assert!(r.take("fast", DEFAULT, 0, 0.01).is_err());
        assert!(r.take("fast", DEFAULT, 10, 0.01).is_ok());
    }
}
