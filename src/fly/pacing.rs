//! Client-side pacing at Fly's documented Machines API rate limits, so a burst of
//! calls queues instead of drawing 429s: 1 req/s with bursts of 3 per (action,
//! machine or app); Get Machine 5 req/s with bursts of 10; app deletions 100 per
//! minute. Uses `governor` keyed limiters. Knows nothing of HTTP.

use std::num::NonZeroU32;

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

impl Pacer {
    pub(crate) fn new() -> Pacer {
        Pacer {
            action: RateLimiter::keyed(Quota::per_second(nz(1)).allow_burst(nz(3))),
            get_machine: RateLimiter::keyed(Quota::per_second(nz(5)).allow_burst(nz(10))),
            app_delete: RateLimiter::keyed(Quota::per_minute(nz(100)).allow_burst(nz(100))),
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
