//! Issue 18 item 17: twenty claims at once, each from its own `serve` process, on a
//! pool of twenty, under the simulator's rate limits. Each process has its own listing
//! cache, so twenty pool listings and twenty leases hit the same app within a moment:
//! the 429s that follow are waited out inside each call (the Fly client's patience),
//! never reported, so every claim gets an environment and none gets another's.

use std::collections::BTreeSet;
use std::time::Duration;

use fly_machines_mcp::workflows::pool::{self, FillOptions, Park};
use fly_machines_mcp::workflows::sched::Control;
use serde_json::json;

use super::processes::{call, server_process};
use super::{Fleet, spec};
use crate::support::text_of as text;

#[tokio::test]
async fn twenty_processes_claim_a_pool_of_twenty_without_a_failure() {
    // Latencies and rate-limit windows at a tenth of Fly's, so the bursts are as dense
    // as on Fly relative to the calls, and the test stays short.
    let f = Fleet::scaled(0.1).await;
    f.app("twenty").await;
    let opts = FillOptions {
        create_interval: Duration::from_millis(2),
        park_timeout: Duration::from_secs(60),
        fast_backoff: true,
        ..FillOptions::default()
    };
    let filled = pool::fill(
        &f.client,
        &spec("twenty", "p", Park::Suspended),
        20,
        &opts,
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(filled.created, 20);

    let base = f.sim.base_url();
    let mut servers = Vec::new();
    for _ in 0..20 {
        servers.push(server_process(&base).await);
    }
    let mut calls = Vec::new();
    for (u, s) in servers.iter().enumerate() {
        let peer = s.peer().clone();
        calls.push(tokio::spawn(async move {
            let args = json!({"app": "twenty", "pool": "p", "user": format!("user-{u}"), "ttl_minutes": 30});
            let r = tokio::time::timeout(
                Duration::from_secs(120),
                peer.call_tool(call("claim_environment", args)),
            )
            .await;
            (u, r)
        }));
    }
    let mut failures = Vec::new();
    let mut claimed = Vec::new();
    for c in calls {
        let (u, r) = c.await.unwrap();
        let r = r.expect("a claim outlived two minutes").unwrap();
        if r.is_error == Some(true) {
            failures.push(format!("user-{u}: {}", text(&r)));
        } else {
            let s = r.structured_content.clone().unwrap();
            assert_eq!(s["user"], format!("user-{u}"));
            claimed.push(s["machine_id"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 20 claims failed: {failures:#?}",
        failures.len()
    );
    let distinct: BTreeSet<&String> = claimed.iter().collect();
    assert_eq!(distinct.len(), 20, "an environment was handed out twice");
    let tagged = f
        .machines("twenty")
        .into_iter()
        .filter(|m| m["config"]["metadata"][pool::STATE_KEY] == "claimed")
        .count();
    assert_eq!(tagged, 20);
    for s in servers {
        let _ = s.cancel().await;
    }
}
