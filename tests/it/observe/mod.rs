//! The observe toolset end to end: an rmcp client ↔ the server ↔ the simulator on
//! 127.0.0.1:0 (the demo scenario, or generated scenario files for large apps and
//! long logs). Output sizes are measured against the default 16 KiB cap.

mod diagnose;
mod logs;
mod status;

use std::sync::Arc;

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{Catalog, Gate, McpServer, PolicyOptions, Redactor},
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
};
use serde_json::Value;

use super::server::gate_with;

const SIM_TOKEN: &str = "observe-sim-token-0451";

/// The default output cap, in bytes.
pub const CAP: usize = 16 * 1024;

pub struct Harness {
    pub sim: SimHandle,
    pub gate: Arc<Gate>,
    pub client: RunningService<RoleClient, ()>,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// The demo scenario (real-time clock: the tools read the wall clock).
    pub async fn demo() -> Harness {
        Harness::start(Scenario::Demo, None).await
    }

    /// A scenario built from `scenario` (JSON, written to a temporary file).
    pub async fn scenario(scenario: &Value) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenario.json");
        std::fs::write(&path, serde_json::to_vec(scenario).unwrap()).unwrap();
        Harness::start(Scenario::File(path), Some(dir)).await
    }

    async fn start(scenario: Scenario, dir: Option<tempfile::TempDir>) -> Harness {
        let sim = sim::start(
            SimConfig::for_tests()
                .with_scenario(scenario)
                .with_required_token(SIM_TOKEN),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let cfg = fly::ClientConfig::local(
            sim.base_url().parse().unwrap(),
            fly::Token::parse(SIM_TOKEN),
        )
        .unwrap();
        let gate = gate_with(
            Catalog::all().unwrap(),
            &PolicyOptions::default(),
            fly::Client::new(cfg).unwrap(),
            Redactor::new(),
            None,
        );
        let (server_io, client_io) = tokio::io::duplex(1 << 22);
        let server_gate = gate.clone();
        tokio::spawn(async move {
            if let Ok(running) = McpServer::new(server_gate).serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let client = ().serve(client_io).await.unwrap();
        Harness {
            sim,
            gate,
            client,
            _dir: dir,
        }
    }

    /// Calls a tool; returns the result (error results included).
    pub async fn call(&self, tool: &'static str, args: Value) -> CallToolResult {
        let params =
            CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone());
        self.client.call_tool(params).await.unwrap()
    }

    /// Calls a tool that must succeed and match its output schema; returns its text
    /// and structured content.
    pub async fn ok(&self, tool: &'static str, args: Value) -> (String, Value) {
        let r = self.call(tool, args).await;
        let text = text_of(&r);
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        let structured = r.structured_content.clone().unwrap();
        crate::support::assert_matches_output_schemas(&self.gate, tool, &structured);
        (text, structured)
    }

    /// Calls a tool that must fail; returns the error text.
    pub async fn err(&self, tool: &'static str, args: Value) -> String {
        let r = self.call(tool, args).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool} should fail: {}",
            text_of(&r)
        );
        text_of(&r)
    }
}

pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces wall-clock times (the simulator runs on real time) so snapshots are stable.
pub fn stable(text: &str) -> String {
    let rules = [
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\b\d{2}:\d{2}:\d{2}\b", "[HH:MM:SS]"),
        (r"\b\d+[smhd] ago\b", "[AGE] ago"),
        // Machine versions are ULIDs, whose first characters are the clock.
        (r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[ULID]"),
    ];
    let mut out = text.to_owned();
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The demo machine in `region` (ids are looked up, never hard-coded).
pub fn demo_machine_in(sim: &SimHandle, region: &str) -> String {
    let state = sim.state_json();
    let mut found = None;
    visit(&state, &mut |o| {
        if found.is_none()
            && o.get("region").and_then(Value::as_str) == Some(region)
            && o.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("cdn-demo-"))
        {
            found = o.get("id").and_then(Value::as_str).map(str::to_owned);
        }
    });
    found.unwrap_or_else(|| panic!("no demo machine in {region}"))
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
