//! The pacing row: how long the client's own pacing holds a burst of one action, on
//! the real clock (the pacer's), against an in-process simulator applying Fly's limits
//! at time scale 1. The integration test of pacing (`tests/it/fly/resilience.rs`) only
//! counts which calls were queued; the time is measured here.

use std::time::{Duration, Instant};

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig},
};

use super::{Row, TOKEN, median};

/// Calls of one action made at once: the burst of 3 goes at once, the rest are paced.
const CALLS: u32 = 5;
/// The client's paced period for an action: Fly's 1 s stretched by its 10% margin.
const PERIOD: Duration = Duration::from_millis(1100);

/// [`CALLS`] `machine_events` calls at once on one demo machine through a paced client
/// with no retries (a 429 would fail the run), against the bound of the pacing itself:
/// (calls − burst) periods. Median of `runs`, each on a fresh simulator and client.
pub(super) async fn pacing_row(runs: usize) -> Row {
    let bound = PERIOD * (CALLS - 3);
    let mut ratios = Vec::new();
    for _ in 0..runs {
        let sim = sim::start(
            SimConfig {
                time_scale: 1.0,
                ..SimConfig::for_tests()
                    .with_scenario(Scenario::Demo)
                    .with_rate_limits(true)
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let mut cfg =
            fly::ClientConfig::local(sim.base_url().parse().unwrap(), fly::Token::parse(TOKEN))
                .unwrap();
        cfg.pacing = true;
        cfg.retry = fly::RetryPolicy::none();
        let client = fly::Client::new(cfg).unwrap();
        let id = client
            .list_machines("cdn-demo", &fly::MachineFilter::default())
            .await
            .unwrap()[0]
            .id
            .clone();
        let t0 = Instant::now();
        let calls = (0..CALLS).map(|_| client.machine_events("cdn-demo", &id, 5));
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        ratios.push(t0.elapsed().as_secs_f64() / bound.as_secs_f64());
        sim.shutdown().await;
    }
    Row {
        name: format!(
            "pacing: {CALLS} calls of one action at once through a paced client (1 req/s, burst 3), simulator at time scale 1 with Fly's limits, no retries, median of {runs}"
        ),
        value: format!(
            "{:.2} × bound {:.1} s ({} paced periods of {} ms); 429s 0",
            median(&mut ratios),
            bound.as_secs_f64(),
            CALLS - 3,
            PERIOD.as_millis()
        ),
        target: "≤ 1.2 × bound".into(),
    }
}
