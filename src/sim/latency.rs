//! The latency model: how long each platform operation takes before the machine or
//! volume reaches its next state. Defaults follow what Fly's docs say about relative
//! speeds (resume from suspended < start from stopped < update < create) and
//! observed orders of magnitude; every value is multiplied by
//! `SimConfig::time_scale` (`0` = instant).
//!
//! | Field | Default | Meaning |
//! |---|---|---|
//! | `api_ms` | 40 | every API response (automatic mode only) |
//! | `create_ms` | 2000 | create → the machine begins `starting` (placement, image pull) |
//! | `boot_ms` | 1500 | `starting` → `started` after a create |
//! | `start_ms` | 900 | `stopped`/`created` → `started` |
//! | `resume_ms` | 300 | `suspended` → `started` |
//! | `stop_ms` | 1000 | `stopping` → `stopped` |
//! | `suspend_ms` | 1200 | `suspending` → `suspended` |
//! | `update_ms` | 1500 | `updating`/`replacing` → the new version begins starting |
//! | `destroy_ms` | 700 | `destroying` → `destroyed` |
//! | `volume_create_ms` | 800 | volume response delay (automatic mode) |
//! | `volume_restore_ms` | 5000 | `restoring` → `created` |
//! | `ip_allocate_ms` | 300 | IP allocation response delay (automatic mode) |
//!
//! So: resume 0.3 s < start 0.9 s < update 1.5 + 0.9 s < create 2 + 1.5 s.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LatencyModel {
    pub api_ms: u64,
    pub create_ms: u64,
    pub boot_ms: u64,
    pub start_ms: u64,
    pub resume_ms: u64,
    pub stop_ms: u64,
    pub suspend_ms: u64,
    pub update_ms: u64,
    pub destroy_ms: u64,
    pub volume_create_ms: u64,
    pub volume_restore_ms: u64,
    pub ip_allocate_ms: u64,
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel {
            api_ms: 40,
            create_ms: 2000,
            boot_ms: 1500,
            start_ms: 900,
            resume_ms: 300,
            stop_ms: 1000,
            suspend_ms: 1200,
            update_ms: 1500,
            destroy_ms: 700,
            volume_create_ms: 800,
            volume_restore_ms: 5000,
            ip_allocate_ms: 300,
        }
    }
}

/// `base` scaled by `scale`, in whole milliseconds.
pub(crate) fn scaled(base: u64, scale: f64) -> u64 {
    #[allow(clippy::cast_precision_loss)]
    let v = (base as f64) * scale;
    if v.is_finite() && v > 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let out = v.round() as u64;
        out
    } else {
        0
    }
}

pub(crate) fn scaled_duration(base: u64, scale: f64) -> Duration {
    Duration::from_millis(scaled(base, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_fly_ordering() {
        let l = LatencyModel::default();
        assert!(l.resume_ms < l.start_ms);
        assert!(l.start_ms < l.update_ms + l.start_ms);
        assert!(l.update_ms + l.start_ms < l.create_ms + l.boot_ms);
        assert_eq!(scaled(2000, 0.001), 2);
        assert_eq!(scaled(2000, 0.0), 0);
    }
}
