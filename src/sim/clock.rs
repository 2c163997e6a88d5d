//! The simulator's clock, in Unix milliseconds: real time in automatic mode, or a
//! counter moved only by `advance` in stepped mode. Knows nothing of machines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where a stepped clock starts: 2026-01-01T00:00:00Z, so runs are reproducible.
pub(crate) const STEPPED_EPOCH_MS: u64 = 1_767_225_600_000;

#[derive(Debug)]
pub(crate) enum Clock {
    Stepped(AtomicU64),
    Real {
        start_ms: u64,
        start: Instant,
        /// Extra time added by `advance` in automatic mode.
        skew_ms: AtomicU64,
    },
}

impl Clock {
    pub(crate) fn new(stepped: bool) -> Self {
        if stepped {
            Clock::Stepped(AtomicU64::new(STEPPED_EPOCH_MS))
        } else {
            let start_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(STEPPED_EPOCH_MS);
            Clock::Real {
                start_ms,
                start: Instant::now(),
                skew_ms: AtomicU64::new(0),
            }
        }
    }

    pub(crate) fn is_stepped(&self) -> bool {
        matches!(self, Clock::Stepped(_))
    }

    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::Stepped(now) => now.load(Ordering::SeqCst),
            Clock::Real {
                start_ms,
                start,
                skew_ms,
            } => {
                let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                start_ms
                    .saturating_add(elapsed)
                    .saturating_add(skew_ms.load(Ordering::SeqCst))
            }
        }
    }

    pub(crate) fn advance_ms(&self, ms: u64) {
        match self {
            Clock::Stepped(now) => {
                now.fetch_add(ms, Ordering::SeqCst);
            }
            Clock::Real { skew_ms, .. } => {
                skew_ms.fetch_add(ms, Ordering::SeqCst);
            }
        }
    }
}

/// RFC 3339 with second precision, as Fly prints `created_at`.
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts.to_string(),
        Err(_) => String::from("1970-01-01T00:00:00Z"),
    }
}

/// RFC 3339 with millisecond precision (volumes, logs).
pub(crate) fn rfc3339_millis(ms: u64) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => String::from("1970-01-01T00:00:00.000Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepped_clock_moves_only_when_advanced() {
        let c = Clock::new(true);
        assert_eq!(c.now_ms(), STEPPED_EPOCH_MS);
        c.advance_ms(1500);
        assert_eq!(c.now_ms(), STEPPED_EPOCH_MS + 1500);
    }

    #[test]
    fn formats_timestamps_like_fly() {
        assert_eq!(rfc3339(STEPPED_EPOCH_MS + 1500), "2026-01-01T00:00:01Z");
        assert_eq!(
            rfc3339_millis(STEPPED_EPOCH_MS + 1500),
            "2026-01-01T00:00:01.500Z"
        );
    }
}
