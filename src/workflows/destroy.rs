//! Destroying named machines: the plan (which machines, refusing ones this server
//! does not own under `--owned-only`) and the execution, one machine at a time with a
//! per-machine report (a failure does not stop the others).

use crate::fly;

use super::{
    Error,
    observe::{MachineSummary, machines_by_id},
    outcome::{HasOutcome, Outcome},
};

/// States Fly destroys without `force` (others answer 412).
const DESTROYABLE_WITHOUT_FORCE: [&str; 5] =
    ["stopped", "suspended", "created", "failed", "destroyed"];

/// What `destroy_machines` will destroy.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDestroyPlan {
    pub app: String,
    pub machines: Vec<MachineSummary>,
    pub force: bool,
}

/// Builds the plan. With `owned_only`, a machine without this server's ownership
/// metadata is refused (the whole call, before anything is destroyed).
pub async fn plan_machine_destroy(
    client: &fly::Client,
    app: &str,
    ids: &[String],
    force: bool,
    owned_only: bool,
) -> Result<MachineDestroyPlan, Error> {
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    let machines = machines_by_id(client, app, &unique).await?;
    if owned_only {
        super::refuse_foreign(
            machines.iter().filter(|m| !m.owned).map(|m| m.id.as_str()),
            |ids| {
                format!(
                    "machines {ids} were not created by this server (no {} metadata)",
                    super::OWNER_METADATA_KEY
                )
            },
        )?;
    }
    if !force {
        let running: Vec<String> = machines
            .iter()
            .filter(|m| !DESTROYABLE_WITHOUT_FORCE.contains(&m.state.as_str()))
            .map(|m| format!("{} ({})", m.id, m.state))
            .collect();
        if !running.is_empty() {
            return Err(Error::Invalid {
                field: "force".to_owned(),
                rule: format!(
                    "machines {} are not stopped; stop them first (machine_action) or pass force: true to kill them",
                    running.join(", ")
                ),
            });
        }
    }
    Ok(MachineDestroyPlan {
        app: app.to_owned(),
        machines,
        force,
    })
}

/// What happened to one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineDestroyOutcome {
    pub machine: MachineSummary,
    /// `None` when destroyed; the error text otherwise.
    pub error: Option<String>,
}

impl HasOutcome for MachineDestroyOutcome {
    /// `Destroyed` or `Failed`.
    fn outcome(&self) -> Outcome {
        match self.error {
            None => Outcome::Destroyed,
            Some(_) => Outcome::Failed,
        }
    }
}

/// Destroys the planned machines one by one.
pub async fn destroy_planned_machines(
    client: &fly::Client,
    plan: MachineDestroyPlan,
) -> Vec<MachineDestroyOutcome> {
    let mut out = Vec::with_capacity(plan.machines.len());
    for machine in plan.machines {
        let result = client
            .destroy_machine(&plan.app, &machine.id, plan.force, None)
            .await;
        let error = match result {
            Ok(_) => None,
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                Some(Error::fly(format!("destroying machine {}", machine.id))(e).source_text())
            }
        };
        out.push(MachineDestroyOutcome { machine, error });
    }
    out
}
