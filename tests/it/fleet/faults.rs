//! Pool fills meeting what the fault campaign found (`hardening/campaign/`): a create
//! answered 5xx before Fly acted is sent again rather than reported, and a slot whose
//! name is held by another machine (one of the slot's being destroyed keeps its name for
//! a while) takes a fresh name. Neither may make a second machine for the slot.

use std::time::Duration;

use fly_machines_mcp::workflows::pool::{self, FillOptions, POOL_KEY, Park};
use fly_machines_mcp::workflows::sched::Control;
use serde_json::json;

use super::{Fleet, spec};

fn opts() -> FillOptions {
    FillOptions {
        create_interval: Duration::from_millis(2),
        park_timeout: Duration::from_secs(20),
        fast_backoff: true,
        ..FillOptions::default()
    }
}

fn members(f: &Fleet, app: &str) -> Vec<serde_json::Value> {
    f.machines(app)
        .into_iter()
        .filter(|m| m["config"]["metadata"][POOL_KEY] == "p")
        .filter(|m| m["state"] != "destroyed" && m["state"] != "destroying")
        .collect()
}

#[tokio::test]
async fn a_create_answered_5xx_before_fly_acted_is_sent_again() {
    let f = Fleet::scaled(0.002).await;
    f.app("fill-5xx").await;
    f.sim.set_faults(
        "5xx=1,on=POST /v1/apps/fill-5xx/machines,times=1"
            .parse()
            .unwrap(),
    );
    let r = pool::fill(
        &f.client,
        &spec("fill-5xx", "p", Park::Suspended),
        2,
        &opts(),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.created, 2);
    assert_eq!(members(&f, "fill-5xx").len(), 2);
}

#[tokio::test]
async fn a_slot_whose_name_is_taken_gets_a_fresh_name() {
    let f = Fleet::scaled(0.002).await;
    f.app("fill-name").await;
    // Another machine holds the name slot 0 would take.
    let (status, body) = crate::support::post_json(
        &f.sim.base_url(),
        &f.sim.viewer_token(),
        "/v1/apps/fill-name/machines",
        json!({"name": "p-0", "region": "iad", "config": {"image": "nginx:1"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = pool::fill(
        &f.client,
        &spec("fill-name", "p", Park::Suspended),
        1,
        &opts(),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let ms = members(&f, "fill-name");
    assert_eq!(ms.len(), 1, "{ms:?}");
    let name = ms[0]["name"].as_str().unwrap();
    assert!(name.starts_with("p-0-"), "{name}");
}
