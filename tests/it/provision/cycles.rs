//! 50 provision/teardown cycles with 5% server errors and 2% connection resets:
//! zero leftovers, zero duplicate machines. Bounded by counts, not by the wall clock
//! (on a loaded machine a budget in seconds fails for the wrong reason): a tiny time
//! scale, a fixed seed, at most three provisions and five teardowns a cycle, and at
//! most [`REQUESTS_PER_CYCLE`] requests to the simulator a cycle — a cycle that
//! retried or waited without end would pass a time budget on a fast machine, but not
//! this one.

use std::time::Instant;

use fly_machines_mcp::tools::ConfirmMode;
use serde_json::json;

use super::{app_names, app_state, provision_env, text_of};

const CYCLES: usize = 50;

/// The requests one cycle may make: under this fault mix the busiest cycle makes
/// fewer than 50; three times that leaves room for the retries the faults cause,
/// while a retry loop without end (millisecond backoff in tests) goes far past it.
const REQUESTS_PER_CYCLE: usize = 150;

/// Requests the simulator served since the log was last cleared (and clears it).
async fn served(base: &str) -> usize {
    let http = reqwest::Client::new();
    let v: serde_json::Value = http
        .get(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.delete(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap();
    v["requests"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_cycles_under_faults_leave_nothing_and_never_duplicate() {
    let env = provision_env().confirm(ConfirmMode::Never).start().await;
    let sim = &env.sim;
    sim.set_faults("5xx=0.05,reset=0.02".parse().unwrap());
    let started = Instant::now();
    let mut provisioned = 0;
    let mut provision_errors = Vec::new();
    let mut most = 0;
    served(&sim.base_url()).await;
    for i in 0..CYCLES {
        let app = format!("cycle-{i}");
        let args = json!({
            "app": app,
            "region": "iad",
            "image": "nginx:latest",
            "volume": {"size_gb": 1},
            "internal_port": 8080,
            "wait_timeout_s": 30
        });
        // A failed provision rolls back; the same call again must converge either way.
        let mut ok = false;
        for _ in 0..3 {
            let r = env.call("provision_environment", args.clone()).await;
            if r.is_error != Some(true) {
                ok = true;
                break;
            }
            provision_errors.push(text_of(&r));
        }
        if ok {
            provisioned += 1;
            let state = app_state(sim, &app).unwrap();
            let machines = state["machines"].as_array().unwrap();
            assert_eq!(
                machines.len(),
                1,
                "cycle {i}: duplicate machines {machines:?}"
            );
            assert_eq!(state["volumes"].as_array().unwrap().len(), 1, "cycle {i}");
            assert_eq!(state["ips"].as_array().unwrap().len(), 1, "cycle {i}");
        }
        // Teardown, retried until the app is gone (a retry after a partial failure
        // must pick up where the last one stopped).
        for attempt in 0..5 {
            if app_state(sim, &app).is_none() {
                break;
            }
            let r = env.call("teardown_environment", json!({"app": app})).await;
            assert!(
                attempt < 4,
                "cycle {i}: teardown keeps failing: {}",
                text_of(&r)
            );
        }
        assert!(app_state(sim, &app).is_none(), "cycle {i}: leftovers");
        let n = served(&sim.base_url()).await;
        assert!(
            n <= REQUESTS_PER_CYCLE,
            "cycle {i}: {n} requests (at most {REQUESTS_PER_CYCLE})"
        );
        most = most.max(n);
    }
    let elapsed = started.elapsed();
    sim.set_faults(Default::default());
    assert!(app_names(sim).is_empty(), "leftovers: {:?}", app_names(sim));
    assert!(
        provisioned >= CYCLES - 2,
        "only {provisioned}/{CYCLES} provisioned: {provision_errors:?}"
    );
    eprintln!(
        "{CYCLES} cycles under faults: {provisioned} provisioned, {} provision retries, at most {most} requests a cycle, {elapsed:?}",
        provision_errors.len()
    );
    env.shutdown().await;
}
