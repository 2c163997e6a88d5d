//! `update_machines`: a rolling (or immediate) config change on machines of an app.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::{collections::BTreeMap, time::Duration};

use super::{CpuKind, count};
use crate::tools::args::{AppName, MachineId};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{rows, table_row, tally};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{Outcome, update as upd};

pub(super) const UPDATE_MACHINES: ToolInfo = ToolInfo {
    name: "update_machines",
    title: "Update machines (rolling)",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Change image, env, guest and/or cmd on some or all machines of an app. Rolling by default \
(see `strategy`): each machine leased, updated with current_version, waited until started \
and healthy; the first failure stops the rollout and reverts that machine. Machines leased \
by others are not touched (holder named); stopped ones stay stopped.",
    narrow_hint: "name fewer machine_ids",
};

/// How the machines are changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStrategy {
    // The field's description explains both (per-variant docs would make the schema a
    // `oneOf` twice as long).
    #[default]
    Rolling,
    Immediate,
}

/// A guest size change; unset fields keep the machine's value.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestArgs {
    pub cpu_kind: Option<CpuKind>,
    #[schemars(range(min = 1, max = 16))]
    pub cpus: Option<u32>,
    /// Memory in MB (a multiple of 256).
    #[schemars(range(min = 256, max = 131_072))]
    pub memory_mb: Option<u32>,
}

/// Arguments of `update_machines`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMachinesArgs {
    /// App name.
    pub app: AppName,
    /// Machine ids in rollout order (default: all).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub machine_ids: Vec<MachineId>,
    /// New image, e.g. `registry.fly.io/app:v2`.
    #[schemars(length(min = 1, max = 300))]
    pub image: Option<String>,
    /// Environment variables to set; `null` removes one.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub env: BTreeMap<String, Option<String>>,
    /// New guest size.
    pub guest: Option<GuestArgs>,
    /// New command (replaces the image's CMD), as argv.
    #[schemars(length(min = 1, max = 50))]
    pub cmd: Option<Vec<String>>,
    /// `rolling` (default): `batch_size` at a time, health-waited, stop and revert on
    /// failure; `immediate`: all at once, no waits, no revert.
    #[serde(default)]
    pub strategy: UpdateStrategy,
    /// Machines updated at a time (default 1).
    #[schemars(range(min = 1, max = 10))]
    pub batch_size: Option<u32>,
    /// Seconds to start after its update (default 300).
    #[schemars(range(min = 5, max = 1800))]
    pub start_timeout_secs: Option<u32>,
    /// Seconds for checks to pass once started (default 120).
    #[schemars(range(min = 1, max = 900))]
    pub health_timeout_secs: Option<u32>,
    /// Wait for this secrets version (from set_secrets).
    #[schemars(range(min = 1))]
    pub min_secrets_version: Option<u64>,
}

/// One machine in an update report.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineUpdated {
    pub id: String,
    pub name: String,
    pub region: String,
    /// `updated`, `unchanged`, `failed`, `reverted`, `revert_failed` or `skipped`.
    pub outcome: String,
    pub previous_version: String,
    /// The version the machine is on now.
    pub version: String,
    pub error: Option<String>,
    /// Our lease could not be released; it expires on its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lease_left: bool,
}

/// Result of `update_machines`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UpdateMachinesReport {
    pub app: String,
    pub strategy: String,
    /// What changed (env by name only).
    pub change: String,
    pub updated: u32,
    pub unchanged: u32,
    pub failed: u32,
    pub reverted: u32,
    pub skipped: u32,
    /// The rollout stopped at a failure before reaching every machine.
    pub stopped_early: bool,
    pub machines: Vec<MachineUpdated>,
}

table_row!(MachineUpdated, |m| {
    "ID": m.id.clone(),
    "REGION": m.region.clone(),
    "OUTCOME": m.outcome.clone(),
    "VERSION": m.version.clone(),
    "ERROR": m.error.clone().unwrap_or_default(),
});

impl ToolOutput for UpdateMachinesReport {
    fn render_text(&self) -> String {
        format!(
            "app {}: {} update ({}): {}{}\n{}",
            self.app,
            self.strategy,
            self.change,
            tally(&[
                (self.updated, "updated"),
                (self.unchanged, "unchanged"),
                (self.failed, "failed"),
                (self.reverted, "reverted"),
                (self.skipped, "skipped"),
            ]),
            if self.stopped_early {
                " (stopped at the first failure)"
            } else {
                ""
            },
            rows(&self.machines)
        )
    }
}

impl From<upd::UpdateReport> for UpdateMachinesReport {
    fn from(r: upd::UpdateReport) -> Self {
        UpdateMachinesReport {
            updated: count(&r.machines, Outcome::Updated),
            unchanged: count(&r.machines, Outcome::Unchanged),
            failed: count(&r.machines, Outcome::Failed)
                .saturating_add(count(&r.machines, Outcome::RevertFailed)),
            reverted: count(&r.machines, Outcome::Reverted),
            skipped: count(&r.machines, Outcome::Skipped),
            app: r.app,
            strategy: r.strategy.name().to_owned(),
            change: r.change,
            stopped_early: r.stopped_early,
            machines: r
                .machines
                .into_iter()
                .map(|m| MachineUpdated {
                    id: m.id,
                    name: m.name,
                    region: m.region,
                    outcome: m.outcome.name().to_owned(),
                    previous_version: m.previous_version,
                    version: m.version,
                    error: m.error,
                    lease_left: m.lease_left,
                })
                .collect(),
        }
    }
}

pub(super) async fn update_machines(
    ctx: ToolContext,
    args: UpdateMachinesArgs,
) -> Result<UpdateMachinesReport, ToolError> {
    let change = upd::ConfigChange {
        image: args.image,
        env: args.env,
        guest: args.guest.map(|g| upd::GuestChange {
            cpu_kind: g.cpu_kind.map(Into::into),
            cpus: g.cpus,
            memory_mb: g.memory_mb,
        }),
        cmd: args.cmd,
    };
    if change.is_empty() {
        return Err(ToolError::InvalidArgument {
            field: "arguments".to_owned(),
            message: "name at least one of image, env, guest or cmd to change".to_owned(),
        });
    }
    let opts = upd::UpdateOptions {
        strategy: match args.strategy {
            UpdateStrategy::Rolling => upd::Strategy::Rolling {
                batch: usize::try_from(args.batch_size.unwrap_or(1)).unwrap_or(1),
            },
            UpdateStrategy::Immediate => upd::Strategy::Immediate,
        },
        start_timeout: Duration::from_secs(u64::from(args.start_timeout_secs.unwrap_or(300))),
        health_timeout: Duration::from_secs(u64::from(args.health_timeout_secs.unwrap_or(120))),
        min_secrets_version: args.min_secrets_version,
        owned_only: ctx.owned_only(),
        ..upd::UpdateOptions::default()
    };
    let plan = upd::plan_update(
        ctx.client(),
        &args.app,
        &MachineId::strings(&args.machine_ids),
        opts.owned_only,
    )
    .await?;
    let client = ctx.client();
    let report: UpdateMachinesReport = ctx
        .steer(|ctl| async move { upd::run_update(client, &plan, &change, &opts, &ctl).await })
        .await?
        .into();
    complete_or_incomplete(report.failed > 0 || report.reverted > 0, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let line = |id: &str, outcome: &str, error: Option<&str>| MachineUpdated {
            id: id.into(),
            name: format!("web-{}", &id[..2]),
            region: "iad".into(),
            outcome: outcome.into(),
            previous_version: "01JB3V9S1QK0V7J8ZP3T6W2M4N".into(),
            version: if outcome == "updated" {
                "01JB4A2C7HX9Y0Z3W5V8T1R6PQ".into()
            } else {
                "01JB3V9S1QK0V7J8ZP3T6W2M4N".into()
            },
            error: error.map(str::to_owned),
            lease_left: false,
        };
        let report = UpdateMachinesReport {
            app: "web".into(),
            strategy: "rolling".into(),
            change: "image → nginx:1.27, env set LOG_LEVEL".into(),
            updated: 1,
            unchanged: 0,
            failed: 0,
            reverted: 1,
            skipped: 1,
            stopped_early: true,
            machines: vec![
                line("148e1d4ae77d89", "updated", None),
                line(
                    "2865d90c412e08",
                    "reverted",
                    Some("health checks failing after 60s; reverted to the previous version"),
                ),
                line("3d8d413b1e3478", "skipped", None),
            ],
        };
        insta::assert_snapshot!(report.render_text());
    }
}
