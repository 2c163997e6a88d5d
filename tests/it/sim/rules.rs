//! Fly's rules: leases, metadata preconditions, names, regions, guests, volumes,
//! capacity, rate limits and faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{Sim, basic_machine};
use fly_machines_mcp::sim::SimConfig;

#[tokio::test]
async fn rate_limits_429_after_the_burst_and_recover() {
    let sim = Sim::start(SimConfig::stepped().with_rate_limits(true)).await;
    sim.create_app("rl").await;
    let m = sim.create_machine("rl", basic_machine()).await;
    let id = m["id"].as_str().unwrap();
    // Get Machine: burst 10
    for _ in 0..10 {
        let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
        assert_eq!(st, 200);
    }
    let (st, e) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
    assert_eq!(st, 429);
    assert!(e["error"].as_str().unwrap().contains("rate limit"));
    sim.advance_ms(200);
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
    assert_eq!(st, 200, "5/s refills one token every 200 ms");
    // other actions: burst 3, then 1/s
    for _ in 0..3 {
        let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
        assert_eq!(st, 200);
    }
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
    assert_eq!(st, 429);
    sim.advance_ms(1000);
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
    assert_eq!(st, 200);
}
