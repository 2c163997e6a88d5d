//! The opt-in toolsets (network, exec, hosting) end to end: an rmcp client ↔ the
//! server (every toolset enabled, confirmation by argument, an audit log) ↔ the
//! simulator's demo world on 127.0.0.1:0. Effects are checked in the simulator's own
//! state, never through the client under test.

mod exec;
mod hosting;
mod network;
mod toolsets;

use std::{path::PathBuf, sync::Arc};

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{
        Catalog, ConfirmMode, Gate, McpServer, PolicyOptions, Redactor, Selection, audit::AuditLog,
    },
};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
};
use serde_json::Value;

use super::{observe::text_of, server::gate_with};

const SIM_TOKEN: &str = "optin-sim-token-7d1c";

/// The default output cap, in bytes.
pub const CAP: usize = 16 * 1024;

pub struct Harness {
    pub sim: SimHandle,
    pub gate: Arc<Gate>,
    pub client: RunningService<RoleClient, ()>,
    pub audit: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The demo world, `--toolsets all`, `--confirm argument`, an audit log.
    pub async fn start() -> Harness {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = sim::start(
            SimConfig::for_tests()
                .with_scenario(Scenario::Demo)
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
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let redactor = Redactor::new();
        let opts = PolicyOptions {
            selection: Selection {
                toolsets: Some(vec!["all".into()]),
                ..Selection::default()
            },
            confirm: ConfirmMode::Argument,
            ..PolicyOptions::default()
        };
        let gate = gate_with(
            Catalog::all().unwrap(),
            &opts,
            fly::Client::new(cfg).unwrap(),
            redactor.clone(),
            Some(AuditLog::open(&audit, redactor).unwrap()),
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
            audit,
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

    /// The app's entry in the simulator's own state.
    pub fn app_state(&self, app: &str) -> Option<Value> {
        let state = self.sim.state_json();
        state["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == app)
            .cloned()
    }

    /// A started machine of `app`, read from the simulator's state.
    pub fn started_machine(&self, app: &str) -> String {
        let a = self.app_state(app).unwrap();
        a["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["state"] == "started")
            .and_then(|m| m["id"].as_str())
            .unwrap_or_else(|| panic!("no started machine in {app}: {a:#}"))
            .to_owned()
    }

    /// The audit log's records.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The demo scenario's app.
pub const DEMO_APP: &str = "cdn-demo";
