//! The realistic profile's capacity and lease rules: a full region refuses machines
//! and volumes with Fly's answers (fly-go `flaps/flaps_error.go`), and a lease's nonce
//! is visible to any reader (off: only its holder knows it).

use fly_machines_mcp::sim::{FULL_REGION, Realism, SimConfig};
use serde_json::json;

use super::{Sim, basic_machine};

#[tokio::test]
async fn a_full_region_refuses_machines_with_422_insufficient_capacity_and_volumes_with_409() {
    let sim = Sim::stepped().await;
    sim.create_app("full").await;
    let mut body = basic_machine();
    body["region"] = json!(FULL_REGION);
    let (st, e) = sim.post("/v1/apps/full/machines", body).await;
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["status"], "insufficient_capacity", "{e}");
    let (st, e) = sim
        .post(
            "/v1/apps/full/volumes",
            json!({"name": "data", "region": FULL_REGION, "size_gb": 1}),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert!(e["error"].as_str().unwrap().ends_with("no capacity"), "{e}");
    // Nothing was made, and every other region has room.
    let (_, ms) = sim.get("/v1/apps/full/machines").await;
    assert_eq!(ms, json!([]));
    let (_, vs) = sim.get("/v1/apps/full/volumes").await;
    assert_eq!(vs, json!([]));
    sim.create_machine("full", basic_machine()).await;

    let ideal = Sim::start(SimConfig::stepped().with_realism(Realism::off())).await;
    ideal.create_app("roomy").await;
    let mut body = basic_machine();
    body["region"] = json!(FULL_REGION);
    ideal.create_machine("roomy", body).await;
}

#[tokio::test]
async fn without_realism_only_the_holder_knows_the_lease_nonce() {
    let ideal = Sim::start(SimConfig::stepped().with_realism(Realism::off())).await;
    ideal.create_app("leased").await;
    let m = ideal.create_machine("leased", basic_machine()).await;
    let lease = format!(
        "/v1/apps/leased/machines/{}/lease",
        m["id"].as_str().unwrap()
    );
    let (st, held) = ideal.post(&lease, json!({"ttl": 60})).await;
    assert_eq!(st, 201);
    assert!(held["data"]["nonce"].is_string(), "{held}");
    let (st, seen) = ideal.get(&lease).await;
    assert_eq!(st, 200);
    assert!(seen["data"].get("nonce").is_none(), "{seen}");
    assert!(seen["data"]["owner"].is_string(), "{seen}");
}
