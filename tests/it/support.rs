//! Helpers every area of the integration tests shares: [`TestEnv`], the one set-up of
//! the simulator on 127.0.0.1:0 ↔ a Fly client ↔ the server ↔ an rmcp client (in
//! process, over a duplex pipe), and the check of results against their tool's output
//! schemas.

use std::{path::PathBuf, sync::Arc};

use fly_machines_mcp::{
    fly,
    sim::{self, Scenario, SimConfig, SimHandle},
    tools::{
        Catalog, ConfirmMode, Gate, McpServer, PolicyOptions, Redactor, Selection, audit::AuditLog,
    },
};
use rmcp::{
    ClientHandler, ErrorData, RoleClient, RoleServer, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ElicitRequestParams,
        ElicitResult, ElicitationAction, Implementation, InitializeRequestParams, InitializeResult,
        ProtocolVersion, ServerCapabilities,
    },
    service::{RequestContext, RunningService, serve_directly},
};
use serde_json::{Value, json};

use crate::contract::proxy::RecordingProxy;
use crate::server::gate_with;

const SIM_TOKEN: &str = "harness-sim-token-0451";

/// The default output cap, in bytes.
pub const CAP: usize = 16 * 1024;

/// What a test varies in its [`TestEnv`]: the simulator's config (mode, clock scale,
/// realism, rate limits, scenario, required token), the server's catalog and policy
/// (toolsets, confirmation mode, read-only, keys …), the MCP client's handler, the
/// apps to create first, whether there is a server at all ([`TestEnv::sim_only`]) and
/// whether the Fly clients go through a recording proxy ([`TestEnvBuilder::proxy`]).
pub struct TestEnvBuilder<H = ()> {
    cfg: SimConfig,
    token: Option<String>,
    serve: bool,
    proxy: bool,
    audit: bool,
    catalog: Option<Catalog>,
    opts: PolicyOptions,
    apps: Vec<String>,
    handler: H,
}

/// A simulator, the project's Fly client pointed at it, a gate over that client and
/// (unless [`TestEnv::sim_only`]) an MCP client connected to a server over the gate.
pub struct TestEnv<H: ClientHandler = ()> {
    pub sim: SimHandle,
    /// Between the Fly clients and `sim`, with [`TestEnvBuilder::proxy`].
    proxy: Option<RecordingProxy>,
    /// The project's Fly client for `sim` (attenuating, on the simulator's clock).
    pub fly: fly::Client,
    /// The viewer's tokens `fly` was given (each call of `viewer_token` mints others).
    pub fly_token: String,
    pub gate: Arc<Gate>,
    mcp: Option<RunningService<RoleClient, H>>,
    /// The server's policy (for [`TestEnv::another_gate`]).
    opts: PolicyOptions,
    /// Where the audit log is written, with [`TestEnvBuilder::audit`].
    pub audit: PathBuf,
    /// The folder of the audit log, living as long as the environment.
    _dir: tempfile::TempDir,
}

impl TestEnv {
    /// Simulator, Fly client, server (every tool, confirmation by argument) and client.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder {
            cfg: SimConfig::for_tests(),
            token: None,
            serve: true,
            proxy: false,
            audit: false,
            catalog: None,
            opts: PolicyOptions {
                selection: Selection {
                    toolsets: Some(vec!["all".into()]),
                    ..Selection::default()
                },
                confirm: ConfirmMode::Argument,
                ..PolicyOptions::default()
            },
            apps: Vec::new(),
            handler: (),
        }
    }

    /// Only the simulator and the Fly client (and a gate nobody calls): for tests of
    /// the simulator, the client or the workflow layer.
    pub fn sim_only() -> TestEnvBuilder {
        TestEnvBuilder {
            serve: false,
            ..TestEnv::builder()
        }
    }
}

impl<H: ClientHandler> TestEnvBuilder<H> {
    /// The simulator's config (default [`SimConfig::for_tests`]).
    pub fn sim(mut self, cfg: SimConfig) -> Self {
        self.cfg = cfg;
        self
    }
    /// Stepped mode: the simulator's clock moves only when the test moves it.
    pub fn stepped(self) -> Self {
        self.sim(SimConfig::stepped())
    }
    /// Latencies and windows multiplied by `scale`.
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.cfg.time_scale = scale;
        self
    }
    /// Fly's rate limits on.
    pub fn rate_limits(mut self) -> Self {
        self.cfg = self.cfg.with_rate_limits(true);
        self
    }
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.cfg = self.cfg.with_scenario(scenario);
        self
    }
    /// The token the simulator requires.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }
    /// The server's catalog (default every tool).
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }
    /// The server's whole policy (default: every toolset, confirmation by argument).
    pub fn policy(mut self, opts: PolicyOptions) -> Self {
        self.opts = opts;
        self
    }
    pub fn confirm(mut self, mode: ConfirmMode) -> Self {
        self.opts.confirm = mode;
        self
    }
    pub fn read_only(mut self) -> Self {
        self.opts.read_only = true;
        self
    }
    /// Secret references (`file:`) may read files under `dir`.
    pub fn secrets_dir(mut self, dir: &std::path::Path) -> Self {
        self.opts.secret_refs.dir = Some(dir.to_path_buf());
        self
    }
    /// The Fly clients reach the simulator through a [`RecordingProxy`], which keeps
    /// every request as it went over the wire ([`TestEnv::proxy`]).
    pub fn proxy(mut self) -> Self {
        self.proxy = true;
        self
    }
    /// The gate writes an audit log to [`TestEnv::audit`].
    pub fn audit(mut self) -> Self {
        self.audit = true;
        self
    }
    /// Creates `app` in the personal org before the test starts.
    pub fn app(mut self, app: &str) -> Self {
        self.apps.push(app.to_owned());
        self
    }
    /// The MCP client's handler (default `()`: no elicitation).
    pub fn handler<H2: ClientHandler>(self, handler: H2) -> TestEnvBuilder<H2> {
        TestEnvBuilder {
            cfg: self.cfg,
            token: self.token,
            serve: self.serve,
            proxy: self.proxy,
            audit: self.audit,
            catalog: self.catalog,
            opts: self.opts,
            apps: self.apps,
            handler,
        }
    }

    /// Only a gate, over a Fly client pointing at a closed port (no simulator, no
    /// client): for fixture tools, connected with [`connect`] as often as a test needs.
    pub fn offline_gate(self) -> Arc<Gate> {
        let catalog = self.catalog.unwrap_or_else(|| Catalog::all().unwrap());
        let redactor = Redactor::new();
        gate_with(
            catalog,
            &self.opts,
            crate::server::offline_client(),
            redactor,
            None,
        )
    }

    /// Only the simulator (for tests that speak to it over plain HTTP).
    pub async fn start_sim(self) -> SimHandle {
        sim_of(self.cfg, self.token.as_deref()).await
    }

    pub async fn start(self) -> TestEnv<H> {
        self.start_in(tempfile::tempdir().unwrap()).await
    }

    /// [`TestEnvBuilder::start`] keeping `dir` (and what the caller put there).
    pub async fn start_in(self, dir: tempfile::TempDir) -> TestEnv<H> {
        let sim = sim_of(self.cfg.clone(), self.token.as_deref()).await;
        let proxy = if self.proxy {
            Some(RecordingProxy::start(&sim.base_url()).await)
        } else {
            None
        };
        let fly_url = proxy
            .as_ref()
            .map_or_else(|| sim.base_url(), RecordingProxy::base_url);
        let fly_token = sim.viewer_token();
        let fly = fly::Client::new(attenuating_config_at(&sim, &fly_url, &fly_token)).unwrap();
        for app in &self.apps {
            let (status, body) = post_json(
                &sim.base_url(),
                &sim.viewer_token(),
                "/v1/apps",
                json!({"name": app, "org_slug": "personal"}),
            )
            .await;
            assert_eq!(status, 201, "create {app}: {body}");
            sim.advance(std::time::Duration::from_millis(
                sim::Realism::realistic().new_app_hidden_ms,
            ));
        }
        let audit = dir.path().join("audit.jsonl");
        let redactor = Redactor::new();
        let log = self
            .audit
            .then(|| AuditLog::open(&audit, redactor.clone()).unwrap());
        let catalog = self.catalog.unwrap_or_else(|| Catalog::all().unwrap());
        let gate = gate_with(catalog, &self.opts, fly.clone(), redactor, log);
        let opts = self.opts;
        let mcp = if self.serve {
            Some(connect(gate.clone(), self.handler).await)
        } else {
            None
        };
        TestEnv {
            sim,
            proxy,
            fly,
            fly_token,
            gate,
            mcp,
            opts,
            audit,
            _dir: dir,
        }
    }
}

impl<H: ClientHandler> TestEnv<H> {
    /// The connected MCP client.
    pub fn mcp(&self) -> &RunningService<RoleClient, H> {
        self.mcp
            .as_ref()
            .expect("a sim-only TestEnv has no MCP client")
    }

    /// A gate of another server process: every tool, the same policy, a Fly client
    /// of its own.
    pub fn another_gate(&self) -> Arc<Gate> {
        self.gate_of(&self.opts)
    }

    /// A gate of another server process with the policy `opts`: every tool, an
    /// attenuating Fly client of its own.
    pub fn gate_of(&self, opts: &PolicyOptions) -> Arc<Gate> {
        gate_with(
            Catalog::all().unwrap(),
            opts,
            fly::Client::new(attenuating_config_at(
                &self.sim,
                &self.fly_url(),
                &self.sim.viewer_token(),
            ))
            .unwrap(),
            Redactor::new(),
            None,
        )
    }

    /// The recording proxy between the Fly clients and the simulator.
    pub fn proxy(&self) -> &RecordingProxy {
        self.proxy
            .as_ref()
            .expect("a TestEnv built without .proxy() has no proxy")
    }

    /// Where the Fly clients send their requests: the proxy if there is one, else the
    /// simulator.
    pub fn fly_url(&self) -> String {
        self.proxy
            .as_ref()
            .map_or_else(|| self.sim.base_url(), RecordingProxy::base_url)
    }

    /// A bare client config for [`TestEnv::fly_url`]: `token` sent as it is (no
    /// macaroons minted by the simulator), the real clock, the defaults of
    /// `ClientConfig::local` (for the client's own tests, which vary pacing and
    /// retries).
    pub fn bare_config(&self, token: Option<&str>) -> fly::ClientConfig {
        fly::ClientConfig::local(
            self.fly_url().parse().unwrap(),
            token.and_then(fly::Token::parse),
        )
        .unwrap()
    }

    /// A Fly client of [`TestEnv::bare_config`].
    pub fn bare_client(&self, token: Option<&str>) -> fly::Client {
        fly::Client::new(self.bare_config(token)).unwrap()
    }

    /// Calls a tool; returns the result (error results included).
    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        self.mcp().call_tool(params(tool, args)).await.unwrap()
    }

    /// Calls a tool; returns the text of its result, error or not.
    pub async fn call_text(&self, tool: &str, args: Value) -> String {
        text_of(&self.call(tool, args).await)
    }

    /// Calls a tool that must succeed and match its output schemas; returns its
    /// structured content.
    pub async fn call_json(&self, tool: &str, args: Value) -> Value {
        self.ok(tool, args).await.1
    }

    /// Calls a tool that must succeed and match its output schemas; returns its text
    /// and structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> (String, Value) {
        let r = self.call(tool, args).await;
        let text = text_of(&r);
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        let structured = r.structured_content.clone().unwrap();
        assert_matches_output_schemas(&self.gate, tool, &structured);
        (text, structured)
    }

    /// Calls a tool that must fail; returns the error text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool} should fail: {}",
            text_of(&r)
        );
        text_of(&r)
    }

    /// Calls a destructive tool the way argument confirmation asks: once for the plan
    /// (which must not go ahead), then again with its token; returns the second result.
    pub async fn confirmed_call(&self, tool: &str, args: Value) -> CallToolResult {
        let plan = self.err(tool, args.clone()).await;
        self.call(tool, with_confirm(&args, &plan)).await
    }

    /// [`TestEnv::confirmed_call`] whose second call must succeed.
    pub async fn confirmed(&self, tool: &str, args: Value) -> (String, Value) {
        let plan = self.err(tool, args.clone()).await;
        self.ok(tool, with_confirm(&args, &plan)).await
    }

    /// The audit log's records.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The app's entry in the simulator's own state, if it exists.
    pub fn app_state(&self, app: &str) -> Option<Value> {
        app_in(&self.sim.state_json(), app).cloned()
    }

    /// The machines of `app` in the simulator's own state.
    pub fn machines(&self, app: &str) -> Vec<Value> {
        self.app_state(app)
            .and_then(|a| a["machines"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Responses with status 429 in the simulator's request log.
    pub async fn count_429(&self) -> usize {
        let url = format!("{}/__sim/requests", self.sim.base_url());
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == json!(429))
            .count()
    }

    /// Stepped mode: runs `fut`, moving the simulator's clock by `step_ms` each time
    /// it has been pending for a few real milliseconds (bounded: 20 000 steps).
    pub async fn drive<T>(&self, step_ms: u64, fut: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(fut);
        for _ in 0..20_000 {
            let wait = std::time::Duration::from_millis(15);
            if let Ok(v) = tokio::time::timeout(wait, &mut fut).await {
                return v;
            }
            self.sim.advance(std::time::Duration::from_millis(step_ms));
        }
        panic!("operation did not finish while the clock advanced");
    }

    /// Closes the MCP client and stops the simulator.
    pub async fn shutdown(self) {
        if let Some(mcp) = self.mcp {
            mcp.cancel().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

/// A simulator of `cfg` on 127.0.0.1:0, requiring `token` if given.
async fn sim_of(cfg: SimConfig, token: Option<&str>) -> SimHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = match token {
        Some(t) => cfg.with_required_token(t),
        None => cfg,
    };
    sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The arguments of a `tools/call` of `tool`.
pub fn params(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone())
}

/// An rmcp client with `handler`, connected to a server over `gate` through an
/// in-process pipe: the one duplex set-up of the tests.
pub async fn connect<H: ClientHandler>(
    gate: Arc<Gate>,
    handler: H,
) -> RunningService<RoleClient, H> {
    let (server_io, client_io) = tokio::io::duplex(1 << 22);
    tokio::spawn(async move {
        if let Ok(running) = McpServer::new(gate).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    handler.serve(client_io).await.unwrap()
}

/// A stateless-era (2026-07-28) pair: no initialize, requests carry their own metadata.
pub fn connect_stateless<H: ClientHandler>(
    gate: Arc<Gate>,
    handler: H,
) -> RunningService<RoleClient, H> {
    let (server_io, client_io) = tokio::io::duplex(1 << 22);
    let client_info = InitializeRequestParams::new(
        ClientCapabilities::builder().enable_elicitation().build(),
        Implementation::new("stateless-test-client", "0.0.0"),
    )
    .with_protocol_version(ProtocolVersion::V_2026_07_28);
    let mut server_info =
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build());
    server_info.protocol_version = ProtocolVersion::V_2026_07_28;
    tokio::spawn(async move {
        let running = serve_directly::<RoleServer, _, _, _, _>(
            McpServer::new(gate),
            server_io,
            Some(client_info),
        );
        let _ = running.waiting().await;
    });
    serve_directly::<RoleClient, _, _, _, _>(handler, client_io, Some(server_info.into()))
}

/// The harness of the observe and opt-in tests: a [`TestEnv`] with a scenario, a gate
/// with given options and an audit log.
pub type Harness = TestEnv;

impl TestEnv {
    /// `dir` holds the audit log (and whatever the caller put there, e.g. a
    /// scenario file); it lives as long as the harness.
    pub async fn start(scenario: Scenario, opts: &PolicyOptions, dir: tempfile::TempDir) -> Self {
        TestEnv::builder()
            .scenario(scenario)
            .token(SIM_TOKEN)
            .policy(opts.clone())
            .audit()
            .start_in(dir)
            .await
    }
}

/// A client config for `sim` holding the viewer's macaroons minted by the simulator
/// (one org token per org), with a clock that agrees with the simulator's: every
/// request the client makes is attenuated (the default), and the simulator verifies
/// and enforces what it was sent.
pub fn attenuating_config(sim: &SimHandle) -> fly::ClientConfig {
    attenuating_config_at(sim, &sim.base_url(), &sim.viewer_token())
}

/// [`attenuating_config`] holding `token` (the viewer's, from `sim`) and sending its
/// requests to `base` (`sim` or a proxy in front of it).
fn attenuating_config_at(sim: &SimHandle, base: &str, token: &str) -> fly::ClientConfig {
    let mut cfg =
        fly::ClientConfig::local(base.parse().unwrap(), fly::Token::parse(token)).unwrap();
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
pub async fn eventually<F, Fut>(what: &str, done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, std::time::Duration::from_secs(20), done).await;
}

/// [`eventually`] with a deadline of `within`.
pub async fn eventually_within<F, Fut>(what: &str, within: std::time::Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// App `app`'s entry in a `/__sim/state` document, if it holds one.
pub fn app_in<'a>(state: &'a Value, app: &str) -> Option<&'a Value> {
    state["apps"]
        .as_array()
        .expect("the state lists apps")
        .iter()
        .find(|a| a["name"] == app)
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
