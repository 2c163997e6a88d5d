//! The provision toolset end to end: an rmcp client ↔ the server ↔ the simulator on
//! loopback, checking the simulator's own view (`/__sim/state`) after each call.

mod cycles;
mod environment;
mod lifecycle;
mod teardown;

use std::sync::Arc;

use fly_machines_mcp::{
    fly,
    sim::{self, SimConfig, SimHandle},
    tools::{Catalog, ConfirmMode, Gate, PolicyOptions, Redactor},
};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

use crate::support::{TestEnv, TestEnvBuilder};

pub const TOKEN: &str = "sim-token-provision-tests-42";

pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    TestEnv::sim_only().sim(cfg).token(TOKEN).start_sim().await
}

/// Stepped mode: a task that waits (bounded) for the first app still hidden after its
/// create (realistic profile) and moves the clock past that window, as time would pass
/// while the client waits for it. Through the control API, so it needs no handle.
pub fn reveal_new_app(sim: &SimHandle) -> tokio::task::JoinHandle<()> {
    let base = sim.base_url();
    let ms = sim::Realism::realistic().new_app_hidden_ms;
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let hidden = || async {
            let state: Value = http
                .get(format!("{base}/__sim/state"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            state["apps"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["visible"] == json!(false))
        };
        crate::support::eventually("a new app to be created", hidden).await;
        http.post(format!("{base}/__sim/clock/advance"))
            .json(&json!({ "ms": ms }))
            .send()
            .await
            .unwrap();
    })
}

/// The set-up of these tests: the simulator requiring [`TOKEN`], the default
/// toolsets, confirmation by argument, a client that declines elicitations.
pub fn provision_env() -> TestEnvBuilder<Confirming> {
    TestEnv::builder()
        .token(TOKEN)
        .policy(PolicyOptions {
            confirm: ConfirmMode::Argument,
            ..PolicyOptions::default()
        })
        .handler(Confirming::default())
}

pub fn client_for(sim: &SimHandle) -> fly::Client {
    crate::support::attenuating_client(sim)
}

pub fn gate(sim: &SimHandle, confirm: ConfirmMode) -> Arc<Gate> {
    let opts = PolicyOptions {
        confirm,
        ..PolicyOptions::default()
    };
    crate::server::gate_with(
        Catalog::all().unwrap(),
        &opts,
        client_for(sim),
        Redactor::new(),
        None,
    )
}

pub use crate::support::Confirming;

pub use crate::support::connect;

pub fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    crate::support::params(name, v)
}

pub use crate::support::text_of;

pub fn assert_output_schema(gate: &Gate, tool: &str, r: &CallToolResult) {
    crate::support::assert_matches_output_schemas(
        gate,
        tool,
        r.structured_content.as_ref().unwrap(),
    );
}

/// The app's entry in `/__sim/state`, if it exists.
pub fn app_state(sim: &SimHandle, app: &str) -> Option<Value> {
    crate::support::app_in(&sim.state_json(), app).cloned()
}

/// Every app name the simulator holds.
pub fn app_names(sim: &SimHandle) -> Vec<String> {
    sim.state_json()["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The standard environment of these tests: nginx with a 1 GB volume at /data, a
/// web service on 8080 and an HTTP check.
pub fn env_args(app: &str) -> Value {
    json!({
        "app": app,
        "region": "iad",
        "image": "nginx:latest",
        "volume": {"size_gb": 1, "auto_extend_limit_gb": 5},
        "internal_port": 8080,
        "autostop": "suspend",
        "checks": [{"name": "web", "type": "http", "port": 8080, "path": "/"}],
        "env": {"MODE": "dev"},
        "owner": "alice@example.com",
        "expires_at": "7d",
        "wait_timeout_s": 30
    })
}
