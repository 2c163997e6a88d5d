//! `machine_action`: start, stop, suspend, restart, cordon or uncordon machines, then wait.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::count;
use crate::tools::args::{AppName, MachineId};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{millis, table_row, tallied};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{Outcome, lifecycle as life};

pub(super) const MACHINE_ACTION: ToolInfo = ToolInfo {
    name: "machine_action",
    title: "Start, stop, suspend, restart or cordon machines",
    toolset: Toolset::Provision,
    idempotent: false,
    description: "Start, stop, suspend, restart, cordon or uncordon machines of an app, then wait for the \
target state under a deadline, with progress. Reports per machine; an error result if any \
failed.",
    narrow_hint: "name fewer machine_ids",
};

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionArg {
    Start,
    Stop,
    Suspend,
    Restart,
    Cordon,
    Uncordon,
}

/// Arguments of `machine_action`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineActionArgs {
    /// App name.
    pub app: AppName,
    pub action: ActionArg,
    /// Machine ids (default: all).
    #[schemars(length(min = 1, max = 100))]
    pub machine_ids: Option<Vec<MachineId>>,
    /// Wait for the target state (default true).
    pub wait: Option<bool>,
    /// Deadline per machine, seconds (default 120).
    #[schemars(range(min = 1, max = 900))]
    pub timeout_s: Option<u32>,
    /// Machines acted on at once (default 4).
    #[schemars(range(min = 1, max = 16))]
    pub concurrency: Option<u32>,
}

/// One machine's outcome.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineActionOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub before: String,
    pub after: Option<String>,
    /// `done`, `unchanged`, `failed`, `skipped` or `cancelled`.
    pub outcome: String,
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

/// Result of `machine_action`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineActionReport {
    pub app: String,
    pub action: String,
    pub done: u32,
    pub unchanged: u32,
    pub failed: u32,
    pub machines: Vec<MachineActionOut>,
}

table_row!(MachineActionOut, |m| {
    "ID": m.id.clone(),
    "NAME": m.name.clone(),
    "REGION": m.region.clone(),
    "BEFORE": m.before.clone(),
    "AFTER": m.after.clone().unwrap_or_else(|| "?".to_owned()),
    "OUTCOME": m.outcome.clone(),
    "ERROR": m.error.clone().unwrap_or_default(),
});

impl ToolOutput for MachineActionReport {
    fn render_text(&self) -> String {
        tallied(
            &format!("{} on app {}", self.action, self.app),
            &[
                (self.done, "done"),
                (self.unchanged, "unchanged"),
                (self.failed, "failed"),
            ],
            &self.machines,
        )
    }
}

pub(super) async fn machine_action(
    ctx: ToolContext,
    args: MachineActionArgs,
) -> Result<MachineActionReport, ToolError> {
    let action = match args.action {
        ActionArg::Start => life::MachineAction::Start,
        ActionArg::Stop => life::MachineAction::Stop,
        ActionArg::Suspend => life::MachineAction::Suspend,
        ActionArg::Restart => life::MachineAction::Restart,
        ActionArg::Cordon => life::MachineAction::Cordon,
        ActionArg::Uncordon => life::MachineAction::Uncordon,
    };
    let spec = life::ActionSpec {
        app: args.app.to_string(),
        action,
        machine_ids: MachineId::strings(args.machine_ids.as_deref().unwrap_or_default()),
        wait: args.wait.unwrap_or(true),
        timeout: Duration::from_secs(u64::from(args.timeout_s.unwrap_or(120))),
        concurrency: usize::try_from(args.concurrency.unwrap_or(4)).unwrap_or(4),
    };
    let client = ctx.client().clone();
    let owned_only = ctx.owned_only();
    let outcomes = ctx
        .steer(
            |ctl| async move { life::run_machine_action(&client, &spec, owned_only, &ctl).await },
        )
        .await?;
    let report = MachineActionReport {
        app: args.app.into(),
        action: action.as_str().to_owned(),
        done: count(&outcomes, Outcome::Done),
        unchanged: count(&outcomes, Outcome::Unchanged),
        failed: count(&outcomes, Outcome::Failed),
        machines: outcomes
            .iter()
            .map(|o| MachineActionOut {
                id: o.id.clone(),
                name: o.name.clone(),
                region: o.region.clone(),
                before: o.state_before.clone(),
                after: o.state_after.clone(),
                outcome: o.outcome.name().to_owned(),
                error: o.error.clone(),
                elapsed_ms: millis(o.elapsed),
            })
            .collect(),
    };
    complete_or_incomplete(
        report.failed > 0 || count(&outcomes, Outcome::Cancelled) > 0,
        report,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let line = |id: &str, before: &str, after: Option<&str>, outcome: &str| MachineActionOut {
            id: id.into(),
            name: format!("web-{}", &id[..2]),
            region: "iad".into(),
            before: before.into(),
            after: after.map(str::to_owned),
            outcome: outcome.into(),
            error: (outcome == "failed").then(|| "did not reach started within 60s".to_owned()),
            elapsed_ms: 1200,
        };
        let report = MachineActionReport {
            app: "web".into(),
            action: "start".into(),
            done: 1,
            unchanged: 1,
            failed: 1,
            machines: vec![
                line("148e1d4ae77d89", "stopped", Some("started"), "done"),
                line("2865d90c412e08", "started", Some("started"), "unchanged"),
                line("3d8d413b1e3478", "stopped", None, "failed"),
            ],
        };
        insta::assert_snapshot!(report.render_text());
    }
}
