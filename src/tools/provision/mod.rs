//! The `provision` toolset: creating, changing and destroying machines —
//! `provision_environment`, `machine_action`, `destroy_machines`,
//! `teardown_environment`, `update_machines`, `scale_machines`.
//!
//! One file per tool, named after it. The domain work (plans, steps, waits, rollback,
//! Fly's defaults for sizes, services and checks) lives in [`crate::workflows`]; these
//! files only convert arguments and shape results. The output types several tools
//! share live here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, ToolDef},
    render::table_row,
};
use crate::workflows::{
    observe::MachineSummary,
    outcome::{self, HasOutcome, Outcome},
    provision::{self as prov, Resource},
};

mod destroy_machines;
mod machine_action;
mod provision_environment;
mod scale_machines;
mod teardown_environment;
mod update_machines;

pub use destroy_machines::*;
pub use machine_action::*;
pub use provision_environment::*;
pub use scale_machines::*;
pub use teardown_environment::*;
pub use update_machines::*;

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::write(PROVISION_ENVIRONMENT, provision_environment)?,
        ToolDef::write(MACHINE_ACTION, machine_action)?,
        ToolDef::destructive(DESTROY_MACHINES, plan_destroy_machines, destroy_machines)?,
        ToolDef::destructive(
            TEARDOWN_ENVIRONMENT,
            plan_teardown_environment,
            teardown_environment,
        )?,
        ToolDef::write(UPDATE_MACHINES, update_machines)?,
        ToolDef::destructive(SCALE_MACHINES, plan_scale_machines, scale_machines)?,
    ])
}

/// A machine in a plan or a report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineRef {
    pub id: String,
    pub name: String,
    pub region: String,
    /// State when looked up.
    pub state: String,
}

table_row!(MachineRef, |m| {
    "ID": m.id.clone(),
    "NAME": m.name.clone(),
    "REGION": m.region.clone(),
    "STATE": m.state.clone(),
});

impl From<MachineSummary> for MachineRef {
    fn from(m: MachineSummary) -> Self {
        MachineRef {
            id: m.id,
            name: m.name,
            region: m.region,
            state: m.state,
        }
    }
}

/// CPU kind of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CpuKind {
    Shared,
    Performance,
}

impl From<CpuKind> for prov::CpuKind {
    fn from(k: CpuKind) -> Self {
        match k {
            CpuKind::Shared => prov::CpuKind::Shared,
            CpuKind::Performance => prov::CpuKind::Performance,
        }
    }
}

/// How many of `lines` ended with `outcome`, as the reports count.
fn count<T: HasOutcome>(lines: &[T], outcome: Outcome) -> u32 {
    u32::try_from(outcome::count(lines, outcome)).unwrap_or(u32::MAX)
}
fn resource_out(r: &Resource) -> ResourceOut {
    ResourceOut {
        kind: r.kind().to_owned(),
        id: r.id().to_owned(),
        detail: r.describe(),
    }
}

/// A resource in a report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResourceOut {
    /// `app`, `ip`, `volume` or `machine`.
    pub kind: String,
    /// App name, address, volume id or machine id.
    pub id: String,
    pub detail: String,
}
