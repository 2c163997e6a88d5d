//! The framework's proof tools against the simulator (demo scenario), through a real
//! rmcp client: platform_info and the destroy_machines confirmation round trip.

use fly_machines_mcp::{
    fly,
    sim::{Scenario, SimHandle},
    tools::{ConfirmMode, PolicyOptions, Redactor},
};
use rmcp::{ServiceExt, model::CallToolRequestParams};
use serde_json::{Value, json};

use super::gate_with;
use crate::support::{TestEnv, TestEnvBuilder, connect, text_of};

pub const SIM_TOKEN: &str = "sim-token-for-tests-1234567";

/// The demo scenario, requiring [`SIM_TOKEN`], with the server's `opts`.
fn demo(opts: PolicyOptions) -> TestEnvBuilder {
    TestEnv::builder()
        .scenario(Scenario::Demo)
        .token(SIM_TOKEN)
        .policy(opts)
}

/// Only the simulator of [`demo`].
pub async fn demo_sim() -> SimHandle {
    demo(PolicyOptions::default()).start_sim().await
}

pub fn sim_client(sim: &SimHandle) -> fly::Client {
    crate::support::attenuating_client(sim)
}

fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    crate::support::params(name, v)
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
    let env = demo(opts(ConfirmMode::Elicit)).start().await;
    let (t, s) = env.ok("platform_info", json!({})).await;
    assert!(s["regions"].as_array().unwrap().len() > 10);
    let sizes = s["vm_sizes"].as_array().unwrap();
    assert!(
        sizes
            .iter()
            .any(|z| z["name"] == "shared-cpu-1x" && z["price_month"].as_f64().unwrap() > 0.0)
    );
    assert!(t.contains("CODE") && t.contains("PER_MONTH"), "{t}");

    let r = env
        .call("platform_info", json!({"include": "regions"}))
        .await;
    assert!(
        r.structured_content.unwrap()["vm_sizes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    env.shutdown().await;
}

#[tokio::test]
async fn destroy_machines_plans_confirms_and_reports() {
    let env = demo(opts(ConfirmMode::Argument)).start().await;
    let sim = &env.sim;
    let id = demo_machine(sim, "started");

    // Running without force: refused before any confirmation, naming the field.
    let r = env
        .call(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id]}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("invalid force"), "{}", text_of(&r));

    // With force: the plan names the machine, its region and state; nothing destroyed yet.
    let plan = env
        .err(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        )
        .await;
    assert!(
        plan.contains(&id) && plan.contains("cdn-demo-") && plan.contains("started"),
        "{plan}"
    );
    let token = crate::support::confirm_token_in(&plan);
    assert_eq!(demo_state_of(sim, &id), "started");

    // Confirmed: destroyed, per-machine report.
    let s = env
        .call_json(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true, "confirm": token}),
        )
        .await;
    assert_eq!(s["destroyed"], 1);
    assert_eq!(s["machines"][0]["id"], json!(id));
    assert_ne!(demo_state_of(sim, &id), "started");

    // Unknown machine id: a clear error with the next step.
    let t = env
        .err(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": ["00000000000000"], "confirm": "cdn-demo"}),
        )
        .await;
    assert!(t.contains("app_status"), "{t}");
    env.shutdown().await;
}

#[tokio::test]
async fn owned_only_refuses_machines_this_server_did_not_create() {
    let env = demo(PolicyOptions {
        owned_only: true,
        ..opts(ConfirmMode::Never)
    })
    .start()
    .await;
    let id = demo_machine(&env.sim, "started");
    let t = env
        .err(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        )
        .await;
    assert!(t.contains("--owned-only"), "{t}");
    assert_eq!(demo_state_of(&env.sim, &id), "started");
    env.shutdown().await;
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
    let env = demo(PolicyOptions {
        allow_org: vec!["demo-*".into()],
        ..opts(ConfirmMode::Argument)
    })
    .start()
    .await;
    let id = demo_machine(&env.sim, "started");
    let t = env
        .err(
            "destroy_machines",
            json!({"app": "cdn-demo", "machine_ids": [id], "force": true}),
        )
        .await;
    assert!(
        t.contains("--allow-org demo-*") && t.contains("cdn-org"),
        "{t}"
    );

    // Another server over the same simulator, allowing the app's org.
    let client = connect(
        env.gate_of(&PolicyOptions {
            allow_org: vec!["cdn-*".into()],
            ..opts(ConfirmMode::Argument)
        }),
        (),
    )
    .await;
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
    env.shutdown().await;
}

#[tokio::test]
async fn passthrough_uses_the_callers_fly_token_and_audit_names_the_key() {
    use fly_machines_mcp::tools::{
        Catalog,
        http::{HttpAuth, HttpOptions, start},
    };
    use rmcp::transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    };

    // The gate of `env` (the second server below) writes the audit log.
    let env = demo(opts(ConfirmMode::Never)).audit().start().await;
    // The server holds no token: only the caller's bearer reaches Fly.
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts(ConfirmMode::Never),
        env.bare_client(None),
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
    let http_opts = HttpOptions {
        auth: HttpAuth::Keys(keys),
        ..HttpOptions::default()
    };
    let server = start(env.gate.clone(), "127.0.0.1:0".parse().unwrap(), http_opts)
        .await
        .unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url())
            .auth_header("key-for-ci-0123456"),
    );
    let client = ().serve(transport).await.unwrap();
    let id = demo_machine(&env.sim, "started");
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
    let line = env.audit_records().remove(0);
    assert_eq!(line["caller"], "ci-bot");
    assert_eq!(line["outcome"], "ok");
    env.shutdown().await;
}
