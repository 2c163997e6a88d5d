//! `destroy_machines`: destroy machines of an app by id, confirmed first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{MachineRef, count};
use crate::tools::args::{AppName, MachineId};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{rows, table_row, tallied};
use crate::tools::{DestroyPlan, ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{Outcome, destroy as wf, outcome::HasOutcome};

pub(super) const DESTROY_MACHINES: ToolInfo = ToolInfo {
    name: "destroy_machines",
    title: "Destroy machines",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Destroy machines of an app by id; running ones need `force: true`. Confirmed first; reports \
per machine. Leaves volumes, IPs and the app alone (teardown_environment removes \
everything).",
    narrow_hint: "destroy fewer machines per call",
};

/// Arguments of `destroy_machines`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyMachinesArgs {
    /// App name.
    pub app: AppName,
    /// Machine ids (14 hex characters) to destroy.
    #[schemars(length(min = 1, max = 50))]
    pub machine_ids: Vec<MachineId>,
    /// Destroy running machines too (kills them).
    #[serde(default)]
    pub force: bool,
}

/// What `destroy_machines` would destroy.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyMachinesPlan {
    pub app: String,
    pub force: bool,
    pub machines: Vec<MachineRef>,
    #[serde(skip)]
    plan: wf::MachineDestroyPlan,
}

impl DestroyPlan for DestroyMachinesPlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn binding(&self) -> serde_json::Value {
        // The exact targets: each machine's version, not only its id.
        let machines: Vec<serde_json::Value> = self
            .plan
            .machines
            .iter()
            .map(|m| serde_json::json!([m.id, m.version, m.state]))
            .collect();
        serde_json::json!({"app": self.app, "force": self.force, "machines": machines})
    }

    fn describe(&self) -> String {
        format!(
            "{} machine(s) of app {}{}:\n{}",
            self.machines.len(),
            self.app,
            if self.force {
                " (force: running machines are killed)"
            } else {
                ""
            },
            rows(&self.machines)
        )
    }
}

/// Outcome for one machine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineDestroyed {
    pub id: String,
    pub name: String,
    pub region: String,
    /// `destroyed` or `failed`.
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// Result of `destroy_machines`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DestroyMachinesReport {
    pub app: String,
    pub destroyed: u32,
    pub failed: u32,
    pub machines: Vec<MachineDestroyed>,
}

table_row!(MachineDestroyed, |m| {
    "ID": m.id.clone(),
    "NAME": m.name.clone(),
    "REGION": m.region.clone(),
    "OUTCOME": m.outcome.clone(),
    "ERROR": m.error.clone().unwrap_or_default(),
});

impl ToolOutput for DestroyMachinesReport {
    fn render_text(&self) -> String {
        tallied(
            &format!("app {}", self.app),
            &[(self.destroyed, "destroyed"), (self.failed, "failed")],
            &self.machines,
        )
    }
}

impl From<wf::MachineDestroyPlan> for DestroyMachinesPlan {
    fn from(plan: wf::MachineDestroyPlan) -> Self {
        DestroyMachinesPlan {
            app: plan.app.clone(),
            force: plan.force,
            machines: plan
                .machines
                .iter()
                .cloned()
                .map(MachineRef::from)
                .collect(),
            plan,
        }
    }
}

pub(super) async fn plan_destroy_machines(
    ctx: ToolContext,
    args: DestroyMachinesArgs,
) -> Result<DestroyMachinesPlan, ToolError> {
    let plan = wf::plan_machine_destroy(
        ctx.client(),
        &args.app,
        &MachineId::strings(&args.machine_ids),
        args.force,
        ctx.owned_only(),
    )
    .await?;
    Ok(plan.into())
}

pub(super) async fn destroy_machines(
    ctx: ToolContext,
    _args: DestroyMachinesArgs,
    plan: DestroyMachinesPlan,
) -> Result<DestroyMachinesReport, ToolError> {
    let app = plan.app.clone();
    let total = u32::try_from(plan.machines.len()).unwrap_or(u32::MAX);
    ctx.progress(0, Some(total), format!("destroying {total} machine(s)"));
    let outcomes = wf::destroy_planned_machines(ctx.client(), plan.plan).await;
    let failed = count(&outcomes, Outcome::Failed);
    let machines: Vec<MachineDestroyed> = outcomes
        .into_iter()
        .map(|o| MachineDestroyed {
            outcome: o.outcome().name().to_owned(),
            id: o.machine.id,
            name: o.machine.name,
            region: o.machine.region,
            error: o.error,
        })
        .collect();
    let report = DestroyMachinesReport {
        app,
        destroyed: total.saturating_sub(failed),
        failed,
        machines,
    };
    complete_or_incomplete(failed > 0, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflows::observe::MachineSummary;

    fn machine(id: &str, name: &str, state: &str) -> MachineSummary {
        MachineSummary {
            id: id.into(),
            name: name.into(),
            region: "iad".into(),
            state: state.into(),
            version: "01JB3V9S1QK0V7J8ZP3T6W2M4N".into(),
            owned: true,
        }
    }

    #[test]
    fn texts_the_model_reads() {
        let plan = wf::MachineDestroyPlan {
            app: "web".into(),
            machines: vec![
                machine("148e1d4ae77d89", "web-1", "started"),
                machine("2865d90c412e08", "web-2", "stopped"),
            ],
            force: true,
        };
        let plan = DestroyMachinesPlan::from(plan);
        let report = DestroyMachinesReport {
            app: "web".into(),
            destroyed: 1,
            failed: 1,
            machines: vec![
                MachineDestroyed {
                    id: "148e1d4ae77d89".into(),
                    name: "web-1".into(),
                    region: "iad".into(),
                    outcome: "destroyed".into(),
                    error: None,
                },
                MachineDestroyed {
                    id: "2865d90c412e08".into(),
                    name: "web-2".into(),
                    region: "iad".into(),
                    outcome: "failed".into(),
                    error: Some("Fly API answered 412: machine is leased".into()),
                },
            ],
        };
        insta::assert_snapshot!([plan.describe(), report.render_text()].join("\n---\n"));
    }
}
