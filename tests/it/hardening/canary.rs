//! Secret canaries: a canary token, canary secret values and a canary private key
//! (app secrets in the simulator) pass through every tool, with plausible and
//! malformed arguments, on healthy and failing (5xx) APIs, in a real `serve` process
//! at RUST_LOG=trace with an audit log. None of them may appear in any tool result,
//! the process's logs or the audit log.

use std::{process::Stdio, time::Duration};

use fly_machines_mcp::{
    sim::{self, FaultConfig, Scenario, SimConfig, SimHandle},
    tools::{Redactor, audit::AuditLog},
};
use rmcp::{
    RoleClient, ServiceExt, model::Tool, service::RunningService, transport::TokioChildProcess,
};
use serde_json::{Map, Value, json};

use super::{call, connect, sim_client, text_of};

const TOKEN: &str = "canary-token-HARDEN-5b1e9c0d7a";
const SECRET: &str = "canary-secret-HARDEN-c4f2a9e1";
/// Presented by a caller the simulator does not know (the 401 path).
const WRONG_TOKEN: &str = "canary-wrong-token-HARDEN-77e3";
const KEY_BODY: &str = "CANARYKEYHARDENMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";

fn scenario() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim/scenarios/demo.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for app in v["apps"].as_array_mut().unwrap() {
        app["secrets"] = json!({
            "DATABASE_URL": format!("postgres://u:{SECRET}@db/x"),
            "API_SECRET": SECRET,
            "TLS_KEY": format!("-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"),
        });
    }
    v
}

/// Plausible arguments for a tool, from its input schema (the demo app's names).
fn plausible(schema: &Value, machine: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(props) = schema["properties"].as_object() else {
        return out;
    };
    for (k, p) in props {
        let ty = p["type"].as_str().unwrap_or("string");
        let v = match (k.as_str(), ty) {
            ("app", _) => json!("cdn-demo"),
            ("machine_id", _) => json!(machine),
            ("machine_ids", _) => json!([machine]),
            ("confirm", _) => json!("cdn-demo"),
            ("command", "array") => json!(["env"]),
            ("command", _) => json!("env"),
            (_, "integer" | "number") => json!(1),
            (_, "boolean") => json!(true),
            (_, "array") => json!([]),
            (_, "object") => json!({}),
            _ => continue,
        };
        out.insert(k.clone(), v);
    }
    out
}

fn leaks(hay: &str) -> Vec<&'static str> {
    [TOKEN, WRONG_TOKEN, SECRET, KEY_BODY]
        .into_iter()
        .filter(|c| hay.contains(c))
        .collect()
}

async fn canary_sim(dir: &std::path::Path) -> (SimHandle, String) {
    let scenario_path = dir.join("scenario.json");
    std::fs::write(&scenario_path, serde_json::to_vec(&scenario()).unwrap()).unwrap();
    let sim = sim::start(
        SimConfig::for_tests()
            .with_scenario(Scenario::File(scenario_path))
            .with_required_token(TOKEN),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let st = sim.state_json();
    let machine = st["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "cdn-demo")
        .and_then(|a| a["machines"][0]["id"].as_str().map(str::to_owned))
        .unwrap();
    (sim, machine)
}

/// Calls every tool with plausible, malformed and empty arguments; returns every
/// text and structured result (and protocol error) it saw.
async fn sweep(client: &RunningService<RoleClient, ()>, tools: &[Tool], machine: &str) -> String {
    let mut seen = String::new();
    for tool in tools {
        let schema = Value::Object((*tool.input_schema).clone());
        let good = plausible(&schema, machine);
        let mut bad = good.clone();
        bad.insert("app".into(), json!(["not", "a", "name"]));
        bad.insert("zz_extra".into(), json!(-1));
        for args in [good, bad, Map::new()] {
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                client.call_tool(call(&tool.name, args)),
            )
            .await
            .expect("a tool call hung");
            match r {
                Ok(r) => {
                    seen.push_str(&text_of(&r));
                    seen.push_str(&serde_json::to_string(&r.structured_content).unwrap());
                }
                Err(e) => seen.push_str(&e.to_string()),
            }
        }
    }
    seen
}

#[tokio::test]
async fn canaries_never_reach_results_trace_logs_or_the_audit_log_of_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, machine) = canary_sim(dir.path()).await;
    let audit = dir.path().join("audit.jsonl");
    let stderr_path = dir.path().join("stderr.log");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fly-machines-mcp"));
    cmd.arg("serve")
        .env_remove("FLY_ACCESS_TOKEN")
        .env("HOME", dir.path())
        .env("FLY_API_TOKEN", TOKEN)
        .env("FLY_API_HOSTNAME", sim.base_url())
        .env("FLY_API_BASE_URL", sim.base_url())
        .env("FLY_MCP_TOOLSETS", "all")
        .env("FLY_MCP_CONFIRM", "never")
        .env("FLY_MCP_AUDIT_LOG", &audit)
        .env("RUST_LOG", "trace");
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.len() >= 10, "only {} tools served", tools.len());
    let seen = sweep(&client, &tools, &machine).await;
    client.cancel().await.unwrap();
    sim.shutdown().await;

    assert_eq!(
        leaks(&seen),
        Vec::<&str>::new(),
        "a canary reached a tool result"
    );
    let logs = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        logs.len() > 1000,
        "trace logs too short: {} bytes",
        logs.len()
    );
    assert_eq!(
        leaks(&logs),
        Vec::<&str>::new(),
        "a canary reached the trace logs"
    );
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(!audit_text.is_empty(), "no write call was audited");
    assert_eq!(
        leaks(&audit_text),
        Vec::<&str>::new(),
        "a canary reached the audit log"
    );
}

#[tokio::test]
async fn canaries_never_reach_error_paths_5xx_resets_and_401() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, machine) = canary_sim(dir.path()).await;
    let audit_path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&audit_path, Redactor::new()).unwrap();
    sim.set_faults(FaultConfig {
        server_error: 0.6,
        reset: 0.2,
        latency: None,
        ..FaultConfig::default()
    });
    let (_, client) = connect(sim_client(&sim, TOKEN), Some(audit)).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut seen = sweep(&client, &tools, &machine).await;
    client.cancel().await.unwrap();

    sim.set_faults(FaultConfig::default());
    let (_, client) = connect(sim_client(&sim, WRONG_TOKEN), None).await;
    seen.push_str(&sweep(&client, &tools, &machine).await);
    client.cancel().await.unwrap();
    sim.shutdown().await;

    assert_eq!(
        leaks(&seen),
        Vec::<&str>::new(),
        "a canary reached an error result"
    );
    let audit_text = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!(
        leaks(&audit_text),
        Vec::<&str>::new(),
        "a canary reached the audit log"
    );
}
