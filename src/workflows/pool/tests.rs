//! Unit tests of the pool's pure parts.

use super::*;

fn spec() -> PoolSpec {
    PoolSpec {
        app: "envs".into(),
        pool: "dev".into(),
        region: Some("iad".into()),
        config: MachineConfig {
            image: "nginx:1".into(),
            ..MachineConfig::default()
        },
        park: Park::Suspended,
    }
}

#[test]
fn template_hash_is_stable_and_sensitive() {
    let a = spec();
    assert_eq!(a.template_hash(), spec().template_hash());
    assert_eq!(a.template_hash().len(), 12);
    let mut b = spec();
    b.config.image = "nginx:2".into();
    assert_ne!(a.template_hash(), b.template_hash());
    let mut c = spec();
    c.park = Park::Stopped;
    assert_ne!(a.template_hash(), c.template_hash());
}

#[test]
fn canonical_json_sorts_keys() {
    let v = serde_json::json!({"b": 1, "a": {"d": [2, {"z": 1, "y": 2}], "c": null}});
    assert_eq!(
        canonical_json(&v),
        r#"{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}"#
    );
}

#[test]
fn member_classification() {
    let mut m = Machine {
        id: "m1".into(),
        state: MachineState::Suspended,
        config: Some(MachineConfig::default()),
        ..Machine::default()
    };
    let md = &mut m.config.as_mut().unwrap().metadata;
    md.insert(STATE_KEY.into(), "free".into());
    assert!(Member::of(&m).broken.is_none());
    m.state = MachineState::Started;
    assert!(Member::of(&m).broken.is_some());
    let md = &mut m.config.as_mut().unwrap().metadata;
    md.insert(STATE_KEY.into(), "claimed".into());
    md.insert(EXPIRES_KEY.into(), "2026-01-01T00:00:00Z".into());
    let member = Member::of(&m);
    assert!(member.broken.is_none());
    assert!(member.is_expired("2026-01-01T00:00:01Z".parse().unwrap()));
    assert!(!member.is_expired("2025-12-31T23:59:59Z".parse().unwrap()));
}
