//! The framework's proof tools against the simulator (demo scenario), through a real
//! rmcp client: platform_info and the destroy_machines confirmation round trip.

use std::sync::Arc;

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{Catalog, ConfirmMode, Gate, McpServer, PolicyOptions, Redactor},
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
};
use serde_json::{Value, json};

use super::gate_with;

pub const SIM_TOKEN: &str = "sim-token-for-tests-1234567";

pub async fn demo_sim() -> SimHandle {
    sim::start(
        SimConfig::for_tests()
            .with_scenario(Scenario::Demo)
            .with_required_token(SIM_TOKEN),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

pub fn sim_client(sim: &SimHandle) -> fly::Client {
    crate::support::attenuating_client(sim)
}

async fn connect(gate: Arc<Gate>) -> RunningService<RoleClient, ()> {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = McpServer::new(gate).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.unwrap()
}

fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(v.as_object().unwrap().clone())
}

use crate::support::text_of;

fn assert_matches_output_schema(gate: &Gate, tool: &str, r: &CallToolResult) {
    crate::support::assert_matches_output_schemas(
        gate,
        tool,
        r.structured_content.as_ref().unwrap(),
    );
}

fn opts(confirm: ConfirmMode) -> PolicyOptions {
    PolicyOptions {
        confirm,
        ..PolicyOptions::default()
    }
}

/// The first machine of the demo app in `state`.
fn demo_machine(sim: &SimHandle, state: &str) -> String {
    let st = sim.state_json();
    let text = st.to_string();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut found = None;
    visit(&v, &mut |obj| {
        if found.is_none()
            && obj.get("state").and_then(Value::as_str) == Some(state)
            && obj
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.len() == 14)
            && obj
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("cdn-demo-"))
        {
            found = obj.get("id").and_then(Value::as_str).map(str::to_owned);
        }
    });
    found.unwrap_or_else(|| panic!("no demo machine in state {state}"))
}

fn visit(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            o.values().for_each(|x| visit(x, f));
        }
        Value::Array(a) => a.iter().for_each(|x| visit(x, f)),
        _ => {}
    }
}

#[tokio::test]
async fn platform_info_lists_regions_and_priced_vm_sizes() {
    let sim = demo_sim().await;
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts(ConfirmMode::Elicit),
        sim_client(&sim),
        Redactor::new(),
        None,
    );
    let client = connect(gate.clone()).await;
    let r = client
        .call_tool(call("platform_info", json!({})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_matches_output_schema(&gate, "platform_info", &r);
    let s = r.structured_content.clone().unwrap();
    assert!(s["regions"].as_array().unwrap().len() > 10);
    let sizes = s["vm_sizes"].as_array().unwrap();
    assert!(
        sizes
            .iter()
            .any(|z| z["name"] == "shared-cpu-1x" && z["price_month"].as_f64().unwrap() > 0.0)
    );
    let t = text_of(&r);
    assert!(t.contains("CODE") && t.contains("PER_MONTH"), "{t}");

    let r = client
        .call_tool(call("platform_info", json!({"include": "regions"})))
        .await
        .unwrap();
    assert!(
        r.structured_content.unwrap()["vm_sizes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn destroy_machines_plans_confirms_and_reports() {
    let sim = demo_sim().await;
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts(ConfirmMode::Argument),
        sim_client(&sim),
        Redactor::new(),
        None,
    );
    let client = connect(gate.clone()).await;
    let id = demo_machine(&sim, "started");

    // Running without force: refused before any confirmation, naming the field.
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("invalid force"), "{}", text_of(&r));

    // With force: the plan names the machine, its region and state; nothing destroyed yet.
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let plan = text_of(&r);
    assert!(
        plan.contains(&id) && plan.contains("cdn-demo-") && plan.contains("started"),
        "{plan}"
    );
    let token = crate::support::confirm_token_in(&plan);
    assert_eq!(demo_state_of(&sim, &id), "started");

    // Confirmed: destroyed, per-machine report.
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true, "confirm": token}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_matches_output_schema(&gate, "destroy_machines", &r);
    let s = r.structured_content.unwrap();
    assert_eq!(s["destroyed"], 1);
    assert_eq!(s["machines"][0]["id"], json!(id));
    assert_ne!(demo_state_of(&sim, &id), "started");

    // Unknown machine id: a clear error with the next step.
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": ["00000000000000"], "confirm": "cdn-demo"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("app_status"), "{}", text_of(&r));
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn owned_only_refuses_machines_this_server_did_not_create() {
    let sim = demo_sim().await;
    let o = PolicyOptions {
        owned_only: true,
        ..opts(ConfirmMode::Never)
    };
    let gate = gate_with(
        Catalog::all().unwrap(),
        &o,
        sim_client(&sim),
        Redactor::new(),
        None,
    );
    let client = connect(gate).await;
    let id = demo_machine(&sim, "started");
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("--owned-only"), "{}", text_of(&r));
    assert_eq!(demo_state_of(&sim, &id), "started");
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

fn demo_state_of(sim: &SimHandle, id: &str) -> String {
    let v = sim.state_json();
    let mut state = String::from("gone");
    visit(&v, &mut |obj| {
        if obj.get("id").and_then(Value::as_str) == Some(id)
            && let Some(s) = obj.get("state").and_then(Value::as_str)
        {
            state = s.to_owned();
        }
    });
    state
}

#[tokio::test]
async fn allow_org_is_checked_against_the_apps_own_org() {
    let sim = demo_sim().await;
    let o = PolicyOptions {
        allow_org: vec!["demo-*".into()],
        ..opts(ConfirmMode::Argument)
    };
    let gate = gate_with(
        Catalog::all().unwrap(),
        &o,
        sim_client(&sim),
        Redactor::new(),
        None,
    );
    let client = connect(gate).await;
    let id = demo_machine(&sim, "started");
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("--allow-org demo-*") && t.contains("cdn-org"),
        "{t}"
    );
    client.cancel().await.unwrap();

    let o = PolicyOptions {
        allow_org: vec!["cdn-*".into()],
        ..opts(ConfirmMode::Argument)
    };
    let gate = gate_with(
        Catalog::all().unwrap(),
        &o,
        sim_client(&sim),
        Redactor::new(),
        None,
    );
    let client = connect(gate).await;
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        ))
        .await
        .unwrap();
    assert!(
        text_of(&r).starts_with("confirmation required"),
        "{}",
        text_of(&r)
    );
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn passthrough_uses_the_callers_fly_token_and_audit_names_the_key() {
    use fly_machines_mcp::tools::{
        audit::AuditLog,
        http::{HttpAuth, HttpOptions, start},
    };
    use rmcp::transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    };

    let sim = demo_sim().await;
    // The server holds no token: only the caller's bearer reaches Fly.
    let no_token =
        fly::Client::new(fly::ClientConfig::local(sim.base_url().parse().unwrap(), None).unwrap())
            .unwrap();
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts(ConfirmMode::Never),
        no_token.clone(),
        Redactor::new(),
        None,
    );
    let http_opts = HttpOptions {
        auth: HttpAuth::Passthrough,
        ..HttpOptions::default()
    };
    let server = start(gate, "127.0.0.1:0".parse().unwrap(), http_opts)
        .await
        .unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url()).auth_header(SIM_TOKEN),
    );
    let client = ().serve(transport).await.unwrap();
    let r = client
        .call_tool(call("platform_info", json!({"include": "regions"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    server.shutdown().await.unwrap();

    // Server keys: the audit line names the key id.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "ci-bot:key-for-ci-0123456\n").unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&audit_path, Redactor::new()).unwrap();
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts(ConfirmMode::Never),
        sim_client(&sim),
        Redactor::new(),
        Some(audit),
    );
    let http_opts = HttpOptions {
        auth: HttpAuth::Keys(keys),
        ..HttpOptions::default()
    };
    let server = start(gate, "127.0.0.1:0".parse().unwrap(), http_opts)
        .await
        .unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url())
            .auth_header("key-for-ci-0123456"),
    );
    let client = ().serve(transport).await.unwrap();
    let id = demo_machine(&sim, "started");
    let r = client
        .call_tool(call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    server.shutdown().await.unwrap();
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&audit_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["caller"], "ci-bot");
    assert_eq!(line["outcome"], "ok");
    sim.shutdown().await;
}
