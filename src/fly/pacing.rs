//! Client-side pacing at Fly's documented Machines API rate limits, so a burst of
//! calls queues instead of drawing 429s: 1 req/s with bursts of 3 per (action,
//! machine or app); Get Machine 5 req/s with bursts of 10; app deletions 100 per
//! minute. Uses `governor` keyed limiters. Knows nothing of HTTP.
//!
//! The sustained rates run 10% under Fly's numbers: our clock and Fly's never
//! agree exactly, and requests reach Fly later than they leave here, so pacing at
//! the exact limit would still draw an occasional 429.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Which documented limit a call falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaceClass {
    /// Any action on one machine or app: 1 req/s, burst 3.
    Action,
    /// Get Machine: 5 req/s, burst 10.
    GetMachine,
    /// App deletion: 100 per minute (across the token's apps).
    AppDelete,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(v) => v,
        None => NonZeroU32::MIN,
    }
}

/// Keyed limiters shared by every clone of a client.
pub(crate) struct Pacer {
    action: DefaultKeyedRateLimiter<String>,
    get_machine: DefaultKeyedRateLimiter<String>,
    app_delete: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").finish_non_exhaustive()
    }
}

/// One request per `period` (stretched by the safety margin), bursts of `burst`.
fn quota(period: Duration, burst: u32) -> Quota {
    let stretched = period.saturating_add(period / 10);
    Quota::with_period(stretched)
        .unwrap_or_else(|| Quota::per_second(nz(1)))
        .allow_burst(nz(burst))
}

impl Pacer {
    pub(crate) fn new() -> Pacer {
        Pacer {
            action: RateLimiter::keyed(quota(Duration::from_secs(1), 3)),
            get_machine: RateLimiter::keyed(quota(Duration::from_millis(200), 10)),
            app_delete: RateLimiter::keyed(quota(Duration::from_millis(600), 100)),
        }
    }

    /// Waits until a call of `class` keyed by `key` (e.g. `start:0801…`) may go.
    pub(crate) async fn until_ready(&self, class: PaceClass, key: &str) {
        let limiter = match class {
            PaceClass::Action => &self.action,
            PaceClass::GetMachine => &self.get_machine,
            PaceClass::AppDelete => &self.app_delete,
        };
        let key = key.to_owned();
        limiter.until_key_ready(&key).await;
        if limiter.len() > 4096 {
            limiter.retain_recent();
        }
    }
}
