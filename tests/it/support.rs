//! Helpers every area of the integration tests shares: an rmcp client ↔ the server
//! (in process, over a duplex pipe) ↔ the simulator on 127.0.0.1:0, and the check of
//! results against their tool's output schemas.

use std::{path::PathBuf, sync::Arc};

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{Catalog, Gate, McpServer, PolicyOptions, Redactor, audit::AuditLog},
};
use rmcp::{
    ClientHandler, ErrorData, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ElicitRequestParams,
        ElicitResult, ElicitationAction, Implementation, InitializeRequestParams,
    },
    service::{RequestContext, RunningService},
};
use serde_json::{Value, json};

use crate::server::gate_with;

const SIM_TOKEN: &str = "harness-sim-token-0451";

/// The default output cap, in bytes.
pub const CAP: usize = 16 * 1024;

/// A simulator with a scenario, a gate with `opts` and an audit log, and a connected
/// MCP client.
pub struct Harness {
    pub sim: SimHandle,
    pub gate: Arc<Gate>,
    pub client: RunningService<RoleClient, ()>,
    /// Where the audit log is written.
    pub audit: PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// `dir` holds the audit log (and whatever the caller put there, e.g. a
    /// scenario file); it lives as long as the harness.
    pub async fn start(scenario: Scenario, opts: &PolicyOptions, dir: tempfile::TempDir) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = sim::start(
            SimConfig::for_tests()
                .with_scenario(scenario)
                .with_required_token(SIM_TOKEN),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let cfg = attenuating_config(&sim);
        let audit = dir.path().join("audit.jsonl");
        let redactor = Redactor::new();
        let gate = gate_with(
            Catalog::all().unwrap(),
            opts,
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

    /// Calls a tool that must succeed and match its output schemas; returns its text
    /// and structured content.
    pub async fn ok(&self, tool: &'static str, args: Value) -> (String, Value) {
        let r = self.call(tool, args).await;
        let text = text_of(&r);
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        let structured = r.structured_content.clone().unwrap();
        assert_matches_output_schemas(&self.gate, tool, &structured);
        (text, structured)
    }

    /// Calls a destructive tool the way argument confirmation asks: once for the plan,
    /// then again with its token; the second call must succeed.
    pub async fn confirmed(&self, tool: &'static str, args: Value) -> (String, Value) {
        let plan = self.err(tool, args.clone()).await;
        self.ok(tool, with_confirm(&args, &plan)).await
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

    /// The audit log's records.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A client config for `sim` holding the viewer's macaroons minted by the simulator
/// (one org token per org), with a clock that agrees with the simulator's: every
/// request the client makes is attenuated (the default), and the simulator verifies
/// and enforces what it was sent.
pub fn attenuating_config(sim: &SimHandle) -> fly::ClientConfig {
    let mut cfg = fly::ClientConfig::local(
        sim.base_url().parse().unwrap(),
        fly::Token::parse(sim.viewer_token()),
    )
    .unwrap();
    cfg.clock = Some(fly::UnixClock::new(sim.unix_clock()));
    cfg
}

/// A Fly client of [`attenuating_config`].
pub fn attenuating_client(sim: &SimHandle) -> fly::Client {
    fly::Client::new(attenuating_config(sim)).unwrap()
}

/// The text blocks of a result, joined.
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a result against both schemas of its tool: the compact one `tools/list`
/// declares (what a client validates) and the detailed one (every nested field).
pub fn assert_matches_output_schemas(gate: &Gate, tool: &str, structured: &Value) {
    let declared = gate.get_tool(tool).unwrap().output_schema.unwrap();
    let detailed = gate
        .enabled()
        .find(|t| t.name() == tool)
        .unwrap()
        .detailed_output_schema()
        .clone();
    for (which, schema) in [("declared", (*declared).clone()), ("detailed", detailed)] {
        let validator = jsonschema::validator_for(&Value::Object(schema)).unwrap();
        if let Some(e) = validator.iter_errors(structured).next() {
            panic!("{tool}: structured content does not match its {which} outputSchema: {e}");
        }
    }
}

/// Waits until `done` says so, at most 20 s (then fails naming `what`). For effects
/// that happen in another task or process and send no event to await (a rollback after
/// a cancelled call, a request seen in the simulator's log): it re-checks every few
/// milliseconds, the one poll interval of the tests.
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A raw POST of `body` to a simulator, with its token: status and JSON answer.
pub async fn post_json(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", base.trim_end_matches('/')))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The confirmation token a plan's text asks to repeat the call with.
pub fn confirm_token_in(text: &str) -> String {
    regex::Regex::new(r#""confirm": "(cfm-[0-9]+-[0-9a-f]+)""#)
        .unwrap()
        .captures(text)
        .and_then(|c| c.get(1))
        .unwrap_or_else(|| panic!("no confirmation token in: {text}"))
        .as_str()
        .to_owned()
}

/// `args` with `confirm` set to the token that `plan_text` gave.
pub fn with_confirm(args: &Value, plan_text: &str) -> Value {
    let mut args = args.clone();
    args["confirm"] = Value::String(confirm_token_in(plan_text));
    args
}

/// A client that answers confirmations (elicitations): `Some(text)` accepts typing
/// `text`, `None` (the default) declines; it records what it was asked.
#[derive(Clone, Default)]
pub struct Confirming {
    pub answer: Option<String>,
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Confirming {
    pub fn new(answer: Option<&str>) -> Self {
        Confirming {
            answer: answer.map(str::to_owned),
            ..Confirming::default()
        }
    }
}

impl ClientHandler for Confirming {
    fn get_info(&self) -> InitializeRequestParams {
        InitializeRequestParams::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("confirming-test-client", "0.0.0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.asked.lock().unwrap().push(message.clone());
        }
        Ok(match &self.answer {
            Some(text) => ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({ "confirm": text })),
            None => ElicitResult::new(ElicitationAction::Decline),
        })
    }
}
