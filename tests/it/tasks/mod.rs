//! Long calls: one cancellation path and one progress bridge for every tool
//! (`notifications/cancelled` reaches every workflow; progress values only grow and
//! keep arriving while a call waits on Fly), and MCP Tasks (SEP-2663): a task per long
//! call for clients that declared the extension, polled, cancelled and confirmed
//! through `tasks/*`. Against the in-process simulator; `/__sim/state` is the judge.

mod cancel;
mod extension;
mod progress;

use std::{path::PathBuf, sync::Arc};

use fly_machines_mcp::tools::{
    Catalog, ConfirmMode, Gate, Outcome, PolicyOptions, Redactor, Selection, Steering,
    audit::AuditLog,
};
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::update::{Env, client_for};

/// A gate over every toolset on `env`'s simulator, confirming by `confirm`, with
/// literal secrets allowed and an audit log in `dir`.
pub fn gate(env: &Env, confirm: ConfirmMode, dir: &tempfile::TempDir) -> (Arc<Gate>, PathBuf) {
    let opts = PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        confirm,
        secret_refs: fly_machines_mcp::workflows::secret_refs::RefPolicyOptions {
            allow_literal: true,
            ..Default::default()
        },
        ..PolicyOptions::default()
    };
    let redactor = Redactor::new();
    let audit = dir.path().join("audit.jsonl");
    let gate = crate::server::gate_with(
        Catalog::all().unwrap(),
        &opts,
        client_for(&env.sim),
        redactor.clone(),
        Some(AuditLog::open(&audit, redactor).unwrap()),
    );
    (gate, audit)
}

/// Calls `tool` through the gate with `cancel` as the caller's cancellation.
pub async fn call_with(gate: &Gate, tool: &str, args: Value, cancel: CancellationToken) -> Outcome {
    gate.call(
        tool,
        args.as_object().cloned(),
        &Default::default(),
        fly_machines_mcp::tools::Confirmer::ArgumentOnly,
        Steering::new(Default::default(), cancel),
    )
    .await
}

/// The structured result of a call that must have succeeded.
pub fn ok(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Ok(r) => r.structured,
        Outcome::Failed { message, .. } => panic!("call failed: {message}"),
        Outcome::InputRequired(r) => panic!("call asked for input: {r:?}"),
    }
}

/// Whether the audit log at `path` has a record of `tool`.
pub fn audited(path: &PathBuf, tool: &str) -> Option<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["tool"] == tool)
}

pub use crate::support::connect;

pub use crate::support::params;

/// The simulator's clock, for stamping what a client receives.
pub type SimClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A client that records every progress notification (value, message, and the
/// simulator's clock when it arrived) and wakes whoever waits for one.
#[derive(Clone)]
pub struct Recorder {
    pub clock: Option<SimClock>,
    pub seen: Arc<std::sync::Mutex<Vec<(f64, String, u64)>>>,
    pub arrived: Arc<tokio::sync::Notify>,
}

impl Recorder {
    pub fn new(clock: Option<SimClock>) -> Recorder {
        Recorder {
            clock,
            seen: Arc::default(),
            arrived: Arc::default(),
        }
    }

    /// Waits until a progress message matches `pred`.
    pub async fn until(&self, pred: impl Fn(&str) -> bool) {
        loop {
            let next = self.arrived.notified();
            if self.seen.lock().unwrap().iter().any(|(_, m, _)| pred(m)) {
                return;
            }
            next.await;
        }
    }

    pub fn messages(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m, _)| m.clone())
            .collect()
    }
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        let at = self.clock.as_ref().map(|c| c()).unwrap_or_default();
        self.seen
            .lock()
            .unwrap()
            .push((params.progress, params.message.unwrap_or_default(), at));
        self.arrived.notify_waiters();
    }
}

/// The machines of `app` in the simulator's state.
pub fn machines(env: &Env, app: &str) -> Vec<Value> {
    crate::support::app_in(&env.state(), app)
        .and_then(|a| a["machines"].as_array().cloned())
        .unwrap_or_default()
}

/// The standard small environment of these tests.
pub fn env_args(app: &str) -> Value {
    json!({
        "app": app,
        "region": "iad",
        "image": "nginx:1",
        "internal_port": 8080,
        "wait_timeout_s": 120
    })
}
