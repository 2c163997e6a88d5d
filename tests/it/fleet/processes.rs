//! Two real `fly-machines-mcp serve` processes (stdio) on one pool: 40 users claim
//! through `claim_environment` at once, 20 per process; then the other fleet tools.

use std::collections::BTreeSet;
use std::time::Duration;

use fly_machines_mcp::workflows::pool::{self, FillOptions, Park};
use fly_machines_mcp::workflows::sched::Control;
use rmcp::{
    RoleClient, ServiceExt, model::CallToolRequestParams, service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::{Value, json};

use super::{Fleet, TOKEN, spec};

pub(super) async fn server_process(base: &str) -> RunningService<RoleClient, ()> {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fly-machines-mcp"));
    cmd.args(["serve", "--toolsets", "fleet", "--confirm", "argument"]);
    for k in ["FLY_ACCESS_TOKEN", "RUST_LOG", "FLY_MCP_TOOLSETS"] {
        cmd.env_remove(k);
    }
    cmd.env("FLY_API_HOSTNAME", base)
        .env("FLY_API_BASE_URL", base)
        .env("FLY_API_TOKEN", TOKEN)
        .env("HOME", std::env::temp_dir().join("fly-mcp-test-no-home"))
        .stderr(std::process::Stdio::null());
    let transport = TokioChildProcess::new(cmd).unwrap();
    ().serve(transport).await.unwrap()
}

pub(super) fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(v.as_object().unwrap().clone())
}

use crate::support::text_of as text;

#[tokio::test]
async fn two_server_processes_forty_users_twenty_environments() {
    let f = Fleet::scaled(0.002).await;
    f.app("procs").await;
    let opts = FillOptions {
        create_interval: Duration::from_millis(2),
        park_timeout: Duration::from_secs(20),
        fast_backoff: true,
        ..FillOptions::default()
    };
    let filled = pool::fill(
        &f.client,
        &spec("procs", "p", Park::Suspended),
        20,
        &opts,
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(filled.created, 20);

    let t0 = std::time::Instant::now();
    let base = f.sim.base_url();
    let servers = [server_process(&base).await, server_process(&base).await];
    let mut calls = Vec::new();
    for u in 0..40 {
        let peer = servers[u % 2].peer().clone();
        calls.push(tokio::spawn(async move {
            let args = json!({"app": "procs", "pool": "p", "user": format!("user-{u}"), "ttl_minutes": 30});
            (u, peer.call_tool(call("claim_environment", args)).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    let mut empty = 0;
    for c in calls {
        let (u, r) = c.await.unwrap();
        if r.is_error == Some(true) {
            let t = text(&r);
            assert!(
                t.contains("pool empty") && t.contains("20 of 20 claimed"),
                "{t}"
            );
            empty += 1;
        } else {
            let s = r.structured_content.clone().unwrap();
            assert_eq!(s["user"], format!("user-{u}"));
            assert_eq!(s["started_from"], "suspended");
            winners.push((
                format!("user-{u}"),
                s["machine_id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    eprintln!("40 claims through two processes: {:?}", t0.elapsed());
    assert_eq!(winners.len(), 20, "{winners:?}");
    assert_eq!(empty, 20);
    let distinct: BTreeSet<&String> = winners.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), 20, "an environment was handed out twice");
    for m in f.machines("procs") {
        let id = m["id"].as_str().unwrap();
        let user = m["config"]["metadata"][pool::USER_KEY].as_str().unwrap();
        assert!(
            winners.iter().any(|(u, w)| u == user && w == id),
            "{id} tagged {user}"
        );
    }

    // The other tools, through the first process.
    let s = &servers[0];
    let st = s
        .call_tool(call("pool_status", json!({"app": "procs", "pool": "p"})))
        .await
        .unwrap();
    let v = st.structured_content.clone().unwrap();
    assert_eq!(
        (v["free"].as_u64(), v["claimed"].as_u64()),
        (Some(0), Some(20)),
        "{}",
        text(&st)
    );
    let (user, id) = &winners[0];
    let r = s
        .call_tool(call(
            "release_environment",
            json!({"app": "procs", "pool": "p", "user": user, "mode": "recycle"}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains(id.as_str()), "{}", text(&r));
    let again = s
        .call_tool(call(
            "claim_environment",
            json!({"app": "procs", "pool": "p", "user": "late", "refill": true}),
        ))
        .await
        .unwrap();
    let again = again.structured_content.unwrap();
    assert_eq!(again["machine_id"], id.as_str());
    // The refill runs in the server process after the answer; it is not awaited here.
    assert_eq!(again["refilling"], true);
    // Nothing is expired yet: the plan says so, and confirming destroys nothing.
    let plan = s
        .call_tool(call("reap_expired", json!({"app": "procs", "pool": "p"})))
        .await
        .unwrap();
    assert_eq!(plan.is_error, Some(true));
    assert!(text(&plan).contains("nothing: no claim"), "{}", text(&plan));
    let done = s
        .call_tool(call(
            "reap_expired",
            crate::support::with_confirm(&json!({"app": "procs", "pool": "p"}), &text(&plan)),
        ))
        .await
        .unwrap();
    assert_eq!(done.structured_content.unwrap()["destroyed"], 0);
    let claimed = f
        .machines("procs")
        .into_iter()
        .filter(|m| m["config"]["metadata"][pool::STATE_KEY] == "claimed")
        .count();
    assert_eq!(claimed, 20);
    // pool_fill through the tool: the template's size and service reach the machines.
    let fill = s
        .call_tool(call(
            "pool_fill",
            json!({"app": "procs", "pool": "q", "size": 2, "image": "nginx:2",
                "memory_mb": 512, "internal_port": 8080, "env": {"MODE": "dev"}}),
        ))
        .await
        .unwrap();
    assert_ne!(fill.is_error, Some(true), "{}", text(&fill));
    assert_eq!(fill.structured_content.unwrap()["created"], 2);
    let q: Vec<Value> = f
        .machines("procs")
        .into_iter()
        .filter(|m| m["config"]["metadata"][pool::POOL_KEY] == "q")
        .collect();
    assert_eq!(q.len(), 2);
    for m in &q {
        assert_eq!(m["state"], "suspended", "{m}");
        assert_eq!(m["config"]["guest"]["memory_mb"], 512, "{m}");
        assert_eq!(m["config"]["services"][0]["internal_port"], 8080, "{m}");
        assert_eq!(m["config"]["env"]["MODE"], "dev", "{m}");
    }
    eprintln!("and the other tools: {:?}", t0.elapsed());
    for s in servers {
        let _ = s.cancel().await;
    }
}
