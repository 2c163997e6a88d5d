//! The fault campaign: provision/teardown cycles through MCP against the simulator
//! with Fly's rate limits on (429 bursts: several workers hit the same per-action
//! buckets at once), 5% server errors, 2% connection resets and latency spikes.
//! Every cycle must converge (the same tool call may be repeated, as an agent would),
//! leave nothing behind after its teardown, and never create a second machine,
//! volume or IP for one environment.
//!
//! Small by default (fits CI); `FLY_MCP_CAMPAIGN_CYCLES=100` runs the full campaign and
//! `FLY_MCP_CAMPAIGN_FAULTS` replaces the fault mix (same syntax as `sim --faults`).
//! Bounded: a fixed seed, a small time scale, a capped number of attempts per call and
//! a wall-clock budget asserted at the end.

use std::time::{Duration, Instant};

use fly_machines_mcp::{
    sim::{SimConfig, SimHandle},
    tools::ConfirmMode,
};
use rmcp::{RoleClient, service::RunningService};
use serde_json::{Value, json};

use crate::provision::{
    Confirming, app_names, app_state, call, connect, env_args, gate, start_sim, text_of,
};

/// Cycles when `FLY_MCP_CAMPAIGN_CYCLES` is not set.
const DEFAULT_CYCLES: usize = 16;
/// Cycles run at the same time (each on its own app), so per-action buckets shared
/// across apps (app create) and bursts of polls draw real 429s.
const WORKERS: usize = 8;
/// Tool calls allowed per step before the cycle counts as not converging.
const ATTEMPTS: usize = 5;
/// Latency model and rate-limit windows are both scaled by this.
const TIME_SCALE: f64 = 0.01;
const FAULTS: &str = "5xx=0.05,reset=0.02,latency=40ms@0.03";

fn cycles() -> usize {
    std::env::var("FLY_MCP_CAMPAIGN_CYCLES")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_CYCLES)
        .clamp(1, 1000)
}

/// What one cycle went through.
#[derive(Debug, Default)]
struct CycleReport {
    provision_retries: usize,
    teardown_retries: usize,
    errors: Vec<String>,
}

/// Counts of the simulator's request log since the last call (then cleared).
#[derive(Debug, Default)]
struct Requests {
    total: usize,
    rate_limited: usize,
    server_errors: usize,
}

async fn drain_requests(http: &reqwest::Client, sim: &SimHandle) -> Requests {
    let url = format!("{}/__sim/requests", sim.base_url());
    let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    http.delete(&url).send().await.unwrap();
    let list = v["requests"].as_array().cloned().unwrap_or_default();
    let status = |r: &Value| r["status"].as_u64().unwrap_or(0);
    Requests {
        total: list.len(),
        rate_limited: list.iter().filter(|r| status(r) == 429).count(),
        server_errors: list.iter().filter(|r| status(r) >= 500).count(),
    }
}

/// One provision/teardown cycle of `app`, with the checks that only this cycle can
/// make while other workers run (its own app: one machine, one volume, then gone).
async fn cycle(
    client: &RunningService<RoleClient, Confirming>,
    sim: &SimHandle,
    app: &str,
) -> CycleReport {
    let mut report = CycleReport::default();
    let mut provisioned = false;
    for _ in 0..ATTEMPTS {
        let r = client
            .call_tool(call("provision_environment", env_args(app)))
            .await
            .unwrap();
        if r.is_error != Some(true) {
            provisioned = true;
            break;
        }
        report.provision_retries += 1;
        report
            .errors
            .push(format!("provision {app}: {}", text_of(&r)));
    }
    assert!(
        provisioned,
        "{app}: provision did not converge in {ATTEMPTS} calls: {:?}",
        report.errors
    );
    let state = app_state(sim, app).unwrap();
    let count = |kind: &str| state[kind].as_array().map_or(0, Vec::len);
    assert_eq!(count("machines"), 1, "{app}: duplicate machines: {state}");
    assert_eq!(count("volumes"), 1, "{app}: duplicate volumes: {state}");
    assert_eq!(count("ips"), 1, "{app}: duplicate IPs: {state}");

    for attempt in 0..=ATTEMPTS {
        if app_state(sim, app).is_none() {
            break;
        }
        assert!(
            attempt < ATTEMPTS,
            "{app}: teardown did not converge in {ATTEMPTS} calls: {:?}",
            report.errors
        );
        let r = client
            .call_tool(call("teardown_environment", json!({"app": app})))
            .await
            .unwrap();
        if attempt > 0 {
            report.teardown_retries += 1;
        }
        if r.is_error == Some(true) {
            report
                .errors
                .push(format!("teardown {app}: {}", text_of(&r)));
        }
    }
    assert!(
        app_state(sim, app).is_none(),
        "{app}: leftovers after teardown"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_teardown_cycles_survive_429s_5xx_resets_and_spikes() {
    let total = cycles();
    #[allow(clippy::cast_possible_truncation)]
    let budget = Duration::from_secs(40 + 2 * total as u64);
    let sim = start_sim(SimConfig {
        time_scale: TIME_SCALE,
        ..SimConfig::for_tests().with_rate_limits(true)
    })
    .await;
    let before = super::resources(&sim);
    let faults = std::env::var("FLY_MCP_CAMPAIGN_FAULTS").unwrap_or_else(|_| FAULTS.to_owned());
    sim.set_faults(faults.parse().unwrap());
    let client = connect(gate(&sim, ConfirmMode::Never), Confirming::default()).await;
    let http = reqwest::Client::new();
    let started = Instant::now();

    let mut seen = Requests::default();
    let (mut provision_retries, mut teardown_retries, mut errors) = (0, 0, Vec::new());
    let mut done = 0;
    while done < total {
        let round: Vec<String> = (done..total.min(done + WORKERS))
            .map(|i| format!("campaign-{i}"))
            .collect();
        let reports =
            futures::future::join_all(round.iter().map(|app| cycle(&client, &sim, app))).await;
        for r in reports {
            provision_retries += r.provision_retries;
            teardown_retries += r.teardown_retries;
            errors.extend(r.errors);
        }
        // Every cycle of the round is torn down: nothing may be left anywhere.
        assert!(
            app_names(&sim).is_empty(),
            "orphans after cycles {done}..{}: {:?}",
            done + round.len(),
            app_names(&sim)
        );
        let r = drain_requests(&http, &sim).await;
        seen.total += r.total;
        seen.rate_limited += r.rate_limited;
        seen.server_errors += r.server_errors;
        done += round.len();
    }
    let elapsed = started.elapsed();
    sim.set_faults(Default::default());

    // Nothing created by the campaign survives: apps, machines, volumes, IPs,
    // certificates, secrets (the org and platform entries are unchanged).
    assert_eq!(
        super::resources(&sim),
        before,
        "the campaign left resources behind"
    );
    assert!(
        seen.rate_limited > 0,
        "no 429 seen: the campaign did not exercise rate limits"
    );
    assert!(seen.server_errors > 0, "no injected 5xx seen");
    assert!(
        elapsed < budget,
        "{total} cycles took {elapsed:?} (budget {budget:?})"
    );
    eprintln!(
        "campaign: {total} cycles ({WORKERS} at a time, faults {faults}) in {:.1} s; {} API requests, {} answered 429, {} answered 5xx; \
         {provision_retries} provision and {teardown_retries} teardown calls repeated; {} tool errors absorbed",
        elapsed.as_secs_f64(),
        seen.total,
        seen.rate_limited,
        seen.server_errors,
        errors.len()
    );
    for e in &errors {
        eprintln!("  absorbed: {e}");
    }
    client.cancel().await.unwrap();
    sim.shutdown().await;
}
