//! Hardening campaign: property tests that throw malformed arguments at every tool
//! of the catalog through MCP, malformed JSON-RPC frames on a raw pipe, the
//! secret-canary sweep and the fault campaign (provision/teardown cycles under 429s,
//! 5xx, resets and latency spikes). Everything runs against
//! the simulator on 127.0.0.1:0 through an in-process rmcp client; cases are bounded
//! so the module stays well under a minute.

mod campaign;
mod canary;
mod frames;
mod fuzz;

use std::{collections::BTreeSet, sync::Arc};

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{
        Catalog, ConfirmMode, Gate, McpServer, PolicyOptions, Redactor, Selection, audit::AuditLog,
    },
};
use rmcp::{RoleClient, ServiceExt, model::CallToolRequestParams, service::RunningService};
use serde_json::Value;

use super::server::gate_with;

/// The demo simulator, requiring `token`.
pub async fn demo_sim(token: &str) -> SimHandle {
    sim::start(
        SimConfig::for_tests()
            .with_scenario(Scenario::Demo)
            .with_required_token(token),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// A Fly client for `sim` with `token`.
pub fn sim_client(sim: &SimHandle, token: &str) -> fly::Client {
    let cfg = fly::ClientConfig::local(sim.base_url().parse().unwrap(), fly::Token::parse(token))
        .unwrap();
    fly::Client::new(cfg).unwrap()
}

/// Every toolset enabled; destructive calls need a typed `confirm` argument.
pub fn every_tool() -> PolicyOptions {
    PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        confirm: ConfirmMode::Argument,
        ..PolicyOptions::default()
    }
}

/// A gate over the whole catalog and an rmcp client connected to it in-process.
pub async fn connect(
    client: fly::Client,
    audit: Option<AuditLog>,
) -> (Arc<Gate>, RunningService<RoleClient, ()>) {
    let gate = gate_with(
        Catalog::all().unwrap(),
        &every_tool(),
        client,
        Redactor::new(),
        audit,
    );
    let (server_io, client_io) = tokio::io::duplex(1 << 22);
    let server_gate = gate.clone();
    tokio::spawn(async move {
        if let Ok(running) = McpServer::new(server_gate).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    (gate, ().serve(client_io).await.unwrap())
}

pub fn call(name: &str, args: serde_json::Map<String, Value>) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned()).with_arguments(args)
}

pub use crate::support::text_of;

/// Every resource in the simulator's state, as `(id or name)` strings: what a call
/// could have created or destroyed. Volatile fields (states, timers) are left out.
pub fn resources(sim: &SimHandle) -> BTreeSet<String> {
    fn walk(path: &str, v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                for key in ["id", "name", "slug", "hostname", "address", "ip"] {
                    if let Some(s) = o.get(key).and_then(Value::as_str) {
                        out.insert(format!("{path}:{key}={s}"));
                    }
                }
                for (k, x) in o {
                    walk(&format!("{path}/{k}"), x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(path, x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk("", &sim.state_json(), &mut out);
    out
}
