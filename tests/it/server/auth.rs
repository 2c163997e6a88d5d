//! Scoped server keys and usage caps over Streamable HTTP, against the simulator: a
//! read-only key sees and calls only read tools; an `allow-app` key is refused on
//! another app before any Fly call; a key capped at 3 machines a day is refused at its
//! 4th, counted from Fly (machine metadata), also across two real server processes.

use std::{path::Path, sync::Arc};

use fly_machines_mcp::{
    sim::SimHandle,
    tools::{
        Catalog, ConfirmMode, Gate, PolicyOptions, Redactor, Selection, ToolKind,
        http::{HttpAuth, HttpOptions, start},
    },
};
use rmcp::{
    RoleClient, ServiceExt,
    model::CallToolRequestParams,
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use super::gate_with;
use super::tools::{demo_sim, sim_client};
use crate::support::text_of;

fn all_tools() -> PolicyOptions {
    PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        confirm: ConfirmMode::Never,
        ..PolicyOptions::default()
    }
}

fn sim_gate(sim: &SimHandle) -> Arc<Gate> {
    gate_with(
        Catalog::all().unwrap(),
        &all_tools(),
        sim_client(sim),
        Redactor::new(),
        None,
    )
}

async fn connect(url: String, key: &str) -> RunningService<RoleClient, ()> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(key.to_owned()),
    );
    ().serve(transport).await.unwrap()
}

fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(v.as_object().unwrap().clone())
}

fn keys_opts(path: &Path) -> HttpOptions {
    HttpOptions {
        auth: HttpAuth::Keys(path.to_owned()),
        ..HttpOptions::default()
    }
}

async fn sim_log(sim: &SimHandle) -> Vec<Value> {
    let url = format!("{}/__sim/requests", sim.base_url());
    let v: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    match v {
        Value::Array(a) => a,
        Value::Object(o) => o
            .get("requests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

async fn clear_sim_log(sim: &SimHandle) {
    let url = format!("{}/__sim/requests", sim.base_url());
    reqwest::Client::new().delete(&url).send().await.unwrap();
}

#[tokio::test]
async fn a_read_only_key_sees_and_calls_only_read_tools() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "full:key-full-0123456789\nro:key-ro-0123456789 read-only\n",
    )
    .unwrap();
    let gate = sim_gate(&sim);
    let catalog = Catalog::all().unwrap();
    let server = start(gate, "127.0.0.1:0".parse().unwrap(), keys_opts(&keys))
        .await
        .unwrap();

    let full = connect(server.mcp_url(), "key-full-0123456789").await;
    let full_tools = full.list_all_tools().await.unwrap();
    let ro = connect(server.mcp_url(), "key-ro-0123456789").await;
    let ro_tools = ro.list_all_tools().await.unwrap();
    assert!(ro_tools.len() < full_tools.len());
    assert!(!ro_tools.is_empty());
    for t in &ro_tools {
        assert_eq!(
            catalog.get(&t.name).unwrap().kind,
            ToolKind::Read,
            "{} listed for a read-only key",
            t.name
        );
    }
    let r = ro
        .call_tool(call("app_status", json!({"app": "cdn-demo"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));

    clear_sim_log(&sim).await;
    let r = ro
        .call_tool(call(
            "machine_action",
            json!({"app": "cdn-demo", "action": "stop", "machine_ids": ["any"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("server key 'ro' is read-only"),
        "{}",
        text_of(&r)
    );
    let r = ro
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": ["any"], "force": true}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("read-only"), "{}", text_of(&r));
    assert!(sim_log(&sim).await.is_empty(), "a refused call reached Fly");
    ro.cancel().await.unwrap();
    full.cancel().await.unwrap();
    server.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn an_allow_app_key_is_refused_on_another_app_before_any_fly_call() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "ci:key-ci-0123456789 allow-app='preview-*'\nbroken:key-broken-0123 allow-ap=x\n",
    )
    .unwrap();
    let server = start(
        sim_gate(&sim),
        "127.0.0.1:0".parse().unwrap(),
        keys_opts(&keys),
    )
    .await
    .unwrap();
    let ci = connect(server.mcp_url(), "key-ci-0123456789").await;
    clear_sim_log(&sim).await;
    for (tool, args) in [
        ("app_status", json!({"app": "cdn-demo"})),
        (
            "provision_environment",
            json!({"app": "prod-web", "region": "iad", "image": "nginx:latest"}),
        ),
    ] {
        let r = ci.call_tool(call(tool, args)).await.unwrap();
        assert_eq!(r.is_error, Some(true));
        let t = text_of(&r);
        assert!(
            t.contains("allow-app preview-*") && t.contains("outside"),
            "{tool}: {t}"
        );
    }
    assert!(
        sim_log(&sim).await.is_empty(),
        "a refused call reached Fly: {:?}",
        sim_log(&sim).await
    );
    // Inside its glob the key works.
    let r = ci
        .call_tool(call(
            "provision_environment",
            json!({"app": "preview-1", "region": "iad", "image": "nginx:latest", "dry_run": true}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    ci.cancel().await.unwrap();
    // The malformed line disabled its key only.
    let r = reqwest::Client::new()
        .post(server.mcp_url())
        .bearer_auth("key-broken-0123")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    server.shutdown().await.unwrap();
    sim.shutdown().await;
}

fn provision(app: &str) -> CallToolRequestParams {
    call(
        "provision_environment",
        json!({"app": app, "region": "iad", "image": "nginx:latest", "wait_timeout_s": 30}),
    )
}

#[tokio::test]
async fn a_key_capped_at_three_machines_a_day_is_refused_at_its_fourth() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "bot:key-bot-0123456789 max-machines-per-day=3\nother:key-other-0123456789 max-machines-per-day=3\n",
    )
    .unwrap();
    // Two servers (replicas) on one Fly: the count lives in Fly.
    let a = start(
        sim_gate(&sim),
        "127.0.0.1:0".parse().unwrap(),
        keys_opts(&keys),
    )
    .await
    .unwrap();
    let b = start(
        sim_gate(&sim),
        "127.0.0.1:0".parse().unwrap(),
        keys_opts(&keys),
    )
    .await
    .unwrap();
    let ca = connect(a.mcp_url(), "key-bot-0123456789").await;
    let cb = connect(b.mcp_url(), "key-bot-0123456789").await;
    let instructions = ca.peer_info().unwrap().instructions.clone().unwrap();
    assert_eq!(
        instructions
            .matches("at most 3 machines created per rolling 24 hours")
            .count(),
        1,
        "{instructions}"
    );
    for (i, c) in [&ca, &cb, &ca].iter().enumerate() {
        let r = c.call_tool(provision(&format!("cap-{i}"))).await.unwrap();
        assert_ne!(r.is_error, Some(true), "call {i}: {}", text_of(&r));
    }
    let before = sim_log(&sim).await.len();
    let r = cb.call_tool(provision("cap-3")).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("cap of 3 machines per rolling 24 hours")
            && t.contains("3 created in the last 24 hours")
            && t.contains("room frees up in 2"),
        "{t}"
    );
    let after = sim_log(&sim).await;
    assert!(
        after.iter().skip(before).all(|r| r["method"] == "GET"),
        "the refused call wrote to Fly: {:?}",
        &after[before..]
    );
    // Another key's count is its own.
    let other = connect(a.mcp_url(), "key-other-0123456789").await;
    let r = other.call_tool(provision("cap-other")).await.unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    for c in [ca, cb, other] {
        c.cancel().await.unwrap();
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    sim.shutdown().await;
}

/// Spawns the binary with `args` and `env`; answers the child and the text after
/// `marker` on the first stderr line that has it (stderr is drained afterwards).
async fn spawn_until(
    args: &[&str],
    env: &[(&str, &str)],
    marker: &str,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fly-machines-mcp"));
    cmd.args(args);
    for k in [
        "FLY_ACCESS_TOKEN",
        "FLY_API_TOKEN",
        "RUST_LOG",
        "FLY_MCP_TOOLSETS",
        "FLY_MCP_AUTH_KEYS",
        "FLY_MCP_TOKEN",
        "FLY_MCP_ADDR",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("HOME", std::env::temp_dir().join("fly-mcp-test-no-home"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split(marker).nth(1) {
                return rest.trim().to_owned();
            }
        }
        panic!("{args:?} exited before saying '{marker}'")
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, found)
}

#[tokio::test]
async fn the_machine_cap_holds_across_two_server_processes() {
    // One `sim` process, two `serve --http` processes on loopback: the count lives in
    // the (simulated) Fly, so whichever process takes the 4th call refuses it.
    let token = super::tools::SIM_TOKEN;
    let (_sim, base) = spawn_until(
        &[
            "sim",
            "--addr",
            "127.0.0.1:0",
            "--scenario",
            "demo",
            "--time-scale",
            "0.001",
            "--rate-limits",
            "off",
            "--token",
            token,
        ],
        &[],
        "listening on ",
    )
    .await;
    let base = base.lines().next().unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "bot:key-bot-0123456789 max-machines-per-day=3\n").unwrap();
    let keys = keys.to_str().unwrap().to_owned();
    let serve = [
        "serve",
        "--http",
        "127.0.0.1:0",
        "--toolsets",
        "all",
        "--confirm",
        "never",
        "--auth-keys",
        &keys,
    ];
    let env = [
        ("FLY_API_HOSTNAME", base.as_str()),
        ("FLY_API_BASE_URL", base.as_str()),
        ("FLY_API_TOKEN", token),
    ];
    let (_p1, u1) = spawn_until(&serve, &env, "MCP over HTTP at ").await;
    let (_p2, u2) = spawn_until(&serve, &env, "MCP over HTTP at ").await;
    assert_ne!(u1, u2);
    let c1 = connect(u1, "key-bot-0123456789").await;
    let c2 = connect(u2, "key-bot-0123456789").await;
    for (i, c) in [&c1, &c2, &c1].iter().enumerate() {
        let r = c.call_tool(provision(&format!("proc-{i}"))).await.unwrap();
        assert_ne!(r.is_error, Some(true), "call {i}: {}", text_of(&r));
    }
    let r = c2.call_tool(provision("proc-3")).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("cap of 3 machines per rolling 24 hours") && t.contains("3 created"),
        "{t}"
    );
    c1.cancel().await.unwrap();
    c2.cancel().await.unwrap();
}
