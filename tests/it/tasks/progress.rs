//! Progress that keeps a client waiting: a synchronous call (no tasks) that waits on
//! Fly for a long time sends a progress notification at least every 10 s of the wait,
//! measured on the simulator's clock, with values that only grow.

use std::time::{Duration, Instant};

use fly_machines_mcp::{sim::SimConfig, tools::ConfirmMode};

use super::{Recorder, connect, env_args, gate, params};
use crate::update::Env;

/// Wait calls the simulator answered "not yet" (408).
async fn not_yet_answers(env: &Env) -> usize {
    let (_, log) = env
        .send(reqwest::Method::GET, "/__sim/requests", None)
        .await;
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 408 && r["path"].as_str().unwrap_or("").ends_with("/wait"))
        .count()
}

/// Whether the call has created its machine yet.
async fn machine_created(env: &Env) -> bool {
    let (_, log) = env
        .send(reqwest::Method::GET, "/__sim/requests", None)
        .await;
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["method"] == "POST" && r["path"].as_str().unwrap_or("").ends_with("/machines"))
}

#[tokio::test]
async fn a_long_wait_sends_progress_at_least_every_ten_simulated_seconds() {
    // A 90-second image pull on a stepped clock.
    let mut cfg = SimConfig::stepped();
    cfg.latency.create_ms = 90_000;
    let env = std::sync::Arc::new(Env::start(cfg).await);
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Argument, &dir);
    let clock_env = env.clone();
    let recorder = Recorder::new(Some(std::sync::Arc::new(move || clock_env.sim.now_ms())));
    let client = connect(gate, recorder.clone()).await;
    let started_ms = env.sim.now_ms();
    let call = tokio::spawn(async move {
        let r = client
            .call_tool(params("provision_environment", env_args("slow-pull")))
            .await
            .unwrap();
        let _ = client.cancel().await;
        r
    });

    // Move the clock a second at a time, only while the server is parked in a wait
    // call and every "not yet" it got has reached the client as progress: each
    // notification is then stamped with the simulated time it was sent at.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !call.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the provision never finished: {:?} in flight {} not-yet {}",
            recorder.messages(),
            env.sim.waits_in_flight(),
            not_yet_answers(&env).await,
        );
        let ticks = recorder
            .messages()
            .iter()
            .filter(|m| m.contains("so far"))
            .count();
        if env.sim.waits_in_flight() == 0 && !machine_created(&env).await {
            // Before the machine exists the call polls for the new app to become
            // visible (the simulator's eventual consistency): move the clock past it.
            env.sim.advance(Duration::from_millis(100));
            tokio::task::yield_now().await;
        } else if env.sim.waits_in_flight() > 0 && ticks >= not_yet_answers(&env).await {
            env.sim.advance(Duration::from_secs(1));
        } else {
            let _ =
                tokio::time::timeout(Duration::from_millis(5), recorder.arrived.notified()).await;
        }
    }
    let result = call.await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let waited_ms = env.sim.now_ms() - started_ms;
    assert!(
        waited_ms >= 90_000,
        "the wait took {waited_ms} ms of simulated time"
    );

    let seen = recorder.seen.lock().unwrap().clone();
    let stamps: Vec<u64> = seen.iter().map(|(_, _, at)| *at).collect();
    let mut gaps: Vec<u64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    // And from the last notification to the answer.
    gaps.push(env.sim.now_ms() - stamps.last().copied().unwrap_or(started_ms));
    let longest = gaps.iter().copied().max().unwrap();
    assert!(
        longest <= 10_000,
        "a silence of {longest} ms of simulated wait; notifications: {seen:?}"
    );
    assert!(seen.len() >= 10, "{seen:?}");
    for w in seen.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "progress went from {} to {}",
            w[0].0,
            w[1].0
        );
    }
    assert!(
        seen.iter()
            .any(|(_, m, _)| m.starts_with("waiting for machine") && m.contains("so far")),
        "{seen:?}"
    );
}
