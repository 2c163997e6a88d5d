//! Unit tests of sizing, keys, configs and failure reports.

use super::sizing::guest_config;
use super::*;
use crate::workflows::{Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE};

fn size(name: &str, cpus: f64, mem: i64, month: f64) -> fly::VmSize {
    fly::VmSize {
        name: name.into(),
        cpu_cores: cpus,
        memory_mb: mem,
        memory_gb: mem as f64 / 1024.0,
        max_memory_mb: mem * 8,
        memory_increments_mb: vec![256],
        price_month: month,
        price_second: month / 2_592_000.0,
    }
}

fn spec() -> EnvSpec {
    EnvSpec {
        app: "dev-alice".into(),
        org: "personal".into(),
        region: "iad".into(),
        image: "nginx:latest".into(),
        cmd: None,
        guest: GuestSpec::Default,
        volume: Some(VolumeSpec {
            name: "data".into(),
            size_gb: 1,
            path: "/data".into(),
            auto_extend: Some((80, 1, 10)),
        }),
        services: Vec::new(),
        checks: BTreeMap::new(),
        env: BTreeMap::new(),
        user: Some("alice".into()),
        expires_at: Some("2030-01-01T00:00:00Z".into()),
        machine_name: "env".into(),
        public_ips: true,
        idempotency_key: None,
        wait_timeout: Duration::from_secs(5),
        secrets: AppSecrets::default(),
    }
}

#[test]
fn cost_uses_the_matching_preset_plus_extra_memory_and_volume() {
    let sizes = [
        size("shared-cpu-1x", 1.0, 256, 1.94),
        size("performance-1x", 1.0, 2048, 32.19),
    ];
    let c = estimate_cost(&guest_config("shared", 1, 1024), 10, &sizes).unwrap();
    assert_eq!(c.machine_usd, 5.69);
    assert_eq!(c.volume_usd, 1.5);
    assert_eq!(c.total_usd, 7.19);
    assert!(c.basis.contains("shared-cpu-1x"));
    let p = estimate_cost(&guest_config("performance", 1, 2048), 0, &sizes).unwrap();
    assert_eq!(p.total_usd, 32.19);
    assert!(estimate_cost(&guest_config("shared", 3, 256), 0, &sizes).is_none());
}

#[test]
fn idempotency_key_is_stable_and_depends_on_identity_only() {
    let a = spec();
    let mut b = spec();
    b.image = "caddy:2".into();
    assert_eq!(a.idempotency_key(), b.idempotency_key());
    let mut c = spec();
    c.machine_name = "other".into();
    assert_ne!(a.idempotency_key(), c.idempotency_key());
    assert!(a.idempotency_key().starts_with("prov-"));
    assert_ne!(a.app_key(), a.idempotency_key());
}

#[test]
fn machine_config_carries_ownership_mount_and_metadata() {
    let s = spec();
    let cfg = machine_config(&s, guest_config("shared", 1, 256), Some("vol_1"));
    assert_eq!(
        cfg.metadata.get(OWNER_METADATA_KEY).unwrap(),
        OWNER_METADATA_VALUE
    );
    assert_eq!(cfg.metadata.get(USER_METADATA_KEY).unwrap(), "alice");
    assert_eq!(
        cfg.metadata.get(EXPIRES_AT_METADATA_KEY).unwrap(),
        "2030-01-01T00:00:00Z"
    );
    assert_eq!(cfg.mounts.len(), 1);
    assert_eq!(cfg.mounts[0].volume, "vol_1");
    assert_eq!(cfg.mounts[0].extend_threshold_percent, Some(80));
    assert!(cfg.init.is_none());
}

#[test]
fn failure_report_names_what_is_left_and_how_to_resume() {
    let f = ProvisionFailure {
        step: "machine".into(),
        error: Error::Invalid {
            field: "x".into(),
            rule: "y".into(),
        },
        created: vec![Resource::App { name: "a".into() }],
        rolled_back: Vec::new(),
        left: vec![
            Resource::App { name: "a".into() },
            Resource::Volume {
                id: "vol_1".into(),
                name: "data".into(),
            },
        ],
        rollback_errors: Vec::new(),
    };
    let text = f.into_error("a", false).source_text();
    assert!(text.contains("app a, volume vol_1 (data)"), "{text}");
    assert!(text.contains("call provision_environment again"), "{text}");
    assert!(text.contains("invalid x: y"), "{text}");
}
