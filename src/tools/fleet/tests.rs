//! What the model reads from the fleet tools.

use super::*;
use crate::tools::catalog::ToolOutput;

fn member(id: &str, slot: u32, state: &str, pool: &str, user: Option<&str>) -> MemberOut {
    MemberOut {
        machine_id: id.into(),
        slot: Some(slot),
        region: "iad".into(),
        machine_state: state.into(),
        pool_state: pool.into(),
        user: user.map(str::to_owned),
        expires_at: user.map(|_| "2026-11-21T15:00:00Z".to_owned()),
        problem: (pool == "broken").then(|| "free but started".to_owned()),
    }
}

#[test]
fn texts_the_model_reads() {
    let status = PoolStatusOut {
        app: "devboxes".into(),
        pool: "dev".into(),
        free: 1,
        claimed: 1,
        expiring: 0,
        expired: 0,
        filling: 0,
        broken: 1,
        members: vec![
            member("148e1d4ae77d89", 0, "suspended", "free", None),
            member(
                "2865d90c412e08",
                1,
                "started",
                "claimed",
                Some("ana@example.com"),
            ),
            member("3d8d413b1e3478", 2, "started", "broken", None),
        ],
        members_total: 3,
    };
    let env = EnvironmentOut {
        app: "devboxes".into(),
        pool: "dev".into(),
        machine_id: "148e1d4ae77d89".into(),
        name: "dev-0".into(),
        region: "iad".into(),
        user: "ana@example.com".into(),
        expires_at: "2026-11-21T15:00:00Z".into(),
        url: "https://devboxes.fly.dev".into(),
        private_address: "148e1d4ae77d89.vm.devboxes.internal".into(),
        started_from: "suspended".into(),
        renewed: false,
        refilling: true,
    };
    let fill = PoolFillOut {
        app: "devboxes".into(),
        pool: "dev".into(),
        size: 3,
        already_present: 1,
        created: 1,
        parked: 0,
        failed: 1,
        failures: vec!["slot 2: creating a machine in app devboxes: Fly API answered 503".into()],
        rate_limited_retries: 2,
        elapsed_ms: 5120,
    };
    let release = ReleaseOut {
        app: "devboxes".into(),
        pool: "dev".into(),
        machine_id: "148e1d4ae77d89".into(),
        user: Some("ana@example.com".into()),
        mode: ReleaseModeArg::Wipe,
        parked_as: ParkArg::Suspended,
        replacement: Some("5683d920b1e908".into()),
    };
    let text = [
        status.render_text(),
        env.render_text(),
        fill.render_text(),
        release.render_text(),
    ]
    .join("\n---\n");
    insta::assert_snapshot!("fleet_texts", text);
}
