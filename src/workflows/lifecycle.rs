//! Machine lifecycle actions on one, several or all machines of an app: start, stop,
//! suspend, restart, cordon, uncordon. Each machine is acted on and then waited for
//! (the target state, under a deadline) through the bulk scheduler, with a report
//! per machine. A machine already in the target state is left alone.
//!
//! Knows the Fly client's domain types; never sees reqwest, rmcp or GraphQL types.

use std::time::{Duration, Instant};

use super::{
    Error,
    outcome::{Outcome, outcome_field},
    sched::{BulkOptions, Control, ItemOutcome, run_bulk},
};
use crate::fly;

/// What to do to each machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineAction {
    Start,
    Stop,
    Suspend,
    Restart,
    Cordon,
    Uncordon,
}

impl MachineAction {
    /// The action's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineAction::Start => "start",
            MachineAction::Stop => "stop",
            MachineAction::Suspend => "suspend",
            MachineAction::Restart => "restart",
            MachineAction::Cordon => "cordon",
            MachineAction::Uncordon => "uncordon",
        }
    }

    /// The state waited for afterwards (`None`: nothing to wait for).
    fn target(self) -> Option<fly::WaitTarget> {
        match self {
            MachineAction::Start | MachineAction::Restart => Some(fly::WaitTarget::Started),
            MachineAction::Stop => Some(fly::WaitTarget::Stopped),
            MachineAction::Suspend => Some(fly::WaitTarget::Suspended),
            MachineAction::Cordon | MachineAction::Uncordon => None,
        }
    }

    /// True when a machine in `state` is at the action's target or on its way there.
    fn under_way(self, state: &fly::MachineState) -> bool {
        use fly::MachineState as S;
        match self {
            MachineAction::Start => matches!(state, S::Starting | S::Started),
            MachineAction::Restart => matches!(state, S::Restarting | S::Starting | S::Started),
            MachineAction::Stop => matches!(state, S::Stopping | S::Stopped),
            MachineAction::Suspend => matches!(state, S::Suspending | S::Suspended),
            MachineAction::Cordon | MachineAction::Uncordon => false,
        }
    }

    /// True when `m` needs nothing done.
    fn already_done(self, m: &fly::Machine) -> bool {
        match self {
            MachineAction::Start => m.state == fly::MachineState::Started,
            MachineAction::Stop => m.state == fly::MachineState::Stopped,
            MachineAction::Suspend => m.state == fly::MachineState::Suspended,
            MachineAction::Restart => false,
            MachineAction::Cordon => m.cordoned,
            MachineAction::Uncordon => !m.cordoned,
        }
    }
}

/// Which machines and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    pub app: String,
    pub action: MachineAction,
    /// Named machines; empty means every machine of the app.
    pub machine_ids: Vec<String>,
    /// Wait for the target state.
    pub wait: bool,
    /// Deadline for each machine's wait.
    pub timeout: Duration,
    /// Machines acted on at once.
    pub concurrency: usize,
}

/// How one machine fared.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state_before: String,
    /// The state after the action (and wait), when known.
    pub state_after: Option<String>,
    /// `Done`, `Unchanged` (already there), `Failed`, `Skipped` (not ours, or an
    /// earlier failure), `Cancelled`.
    pub outcome: Outcome,
    pub error: Option<String>,
    pub elapsed: Duration,
}

outcome_field!(ActionOutcome);

/// Runs the action on the selected machines. With `owned_only`, machines this
/// server did not create are refused when named, and skipped when "all" is asked.
pub async fn run_machine_action(
    client: &fly::Client,
    spec: &ActionSpec,
    owned_only: bool,
    ctl: &Control,
) -> Result<Vec<ActionOutcome>, Error> {
    let app = spec.app.as_str();
    let machines = select(client, spec).await?;
    let owned = super::is_owned;
    if owned_only && !spec.machine_ids.is_empty() {
        super::refuse_foreign_machines(&machines, |ids| {
            format!("machines {ids} were not created by this server")
        })?;
    }
    let mut out: Vec<ActionOutcome> = Vec::new();
    let mut todo: Vec<MachineKey> = Vec::new();
    for m in machines {
        let base = ActionOutcome {
            id: m.id.clone(),
            name: m.name.clone(),
            region: m.region.clone(),
            state_before: m.state.to_string(),
            state_after: Some(m.state.to_string()),
            outcome: Outcome::Unchanged,
            error: None,
            elapsed: Duration::ZERO,
        };
        if owned_only && !owned(&m) {
            out.push(ActionOutcome {
                outcome: Outcome::Skipped,
                error: Some("not created by this server (--owned-only)".to_owned()),
                ..base
            });
        } else if spec.action.already_done(&m) {
            out.push(base);
        } else {
            todo.push(MachineKey {
                machine: m,
                base_index: out.len(),
            });
            out.push(base);
        }
    }
    let opts = BulkOptions::with_concurrency(spec.concurrency.max(1));
    let report = run_bulk(todo, &opts, ctl, |k| async move {
        act_and_wait(client, app, &k.machine, spec, ctl).await
    })
    .await;
    for item in report.items {
        let Some(slot) = out.get_mut(item.key.base_index) else {
            continue;
        };
        slot.elapsed = item.elapsed;
        match item.outcome {
            ItemOutcome::Done(state) => {
                slot.outcome = Outcome::Done;
                slot.state_after = state;
            }
            ItemOutcome::Failed(e) => {
                slot.outcome = Outcome::Failed;
                slot.state_after = None;
                slot.error = Some(e.source_text());
            }
            ItemOutcome::Skipped => slot.outcome = Outcome::Skipped,
            ItemOutcome::Cancelled => slot.outcome = Outcome::Cancelled,
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct MachineKey {
    machine: fly::Machine,
    base_index: usize,
}

impl std::fmt::Display for MachineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.machine.id)
    }
}

async fn select(client: &fly::Client, spec: &ActionSpec) -> Result<Vec<fly::Machine>, Error> {
    let app = spec.app.as_str();
    if spec.machine_ids.is_empty() {
        let list = super::status::list_app_machines(client, app).await?;
        return Ok(list
            .into_iter()
            .filter(|m| {
                !matches!(
                    m.state,
                    fly::MachineState::Destroyed | fly::MachineState::Destroying
                )
            })
            .collect());
    }
    let mut out = Vec::with_capacity(spec.machine_ids.len());
    for id in &spec.machine_ids {
        if out.iter().any(|m: &fly::Machine| &m.id == id) {
            continue;
        }
        let m = super::observe::machine_by_id(client, app, id).await?;
        out.push(m);
    }
    Ok(out)
}

/// Acts on one machine, then waits for the target state. Returns the state reached.
async fn act_and_wait(
    client: &fly::Client,
    app: &str,
    m: &fly::Machine,
    spec: &ActionSpec,
    ctl: &Control,
) -> Result<Option<String>, Error> {
    let id = m.id.as_str();
    let step = format!("{} machine {id}", spec.action.as_str());
    let started = Instant::now();
    let last_event = m.events.first().and_then(|e| e.id.clone());
    let result = match spec.action {
        MachineAction::Start => client.start_machine(app, id, None).await.map(|_| ()),
        MachineAction::Stop => {
            client
                .stop_machine(app, id, &fly::StopOptions::default(), None)
                .await
        }
        MachineAction::Suspend => client.suspend_machine(app, id, None).await,
        MachineAction::Restart => {
            client
                .restart_machine(app, id, &fly::RestartOptions::default(), None)
                .await
        }
        MachineAction::Cordon => client.cordon_machine(app, id, None).await,
        MachineAction::Uncordon => client.uncordon_machine(app, id, None).await,
    };
    if let Err(e) = result {
        // A 412 (`failed_precondition: unable to start machine from current state:
        // 'starting'`) can answer a retry whose first attempt took effect but was answered
        // with a 5xx or a reset: the machine is on its way to the target. Re-read it
        // before calling that a failure (the same look as after an update's 409).
        let applied = e.status() == Some(412)
            && match client.get_machine(app, id).await {
                Ok(now) => spec.action.under_way(&now.state),
                Err(_) => false,
            };
        if !applied {
            return Err(Error::fly(step.clone())(e));
        }
        tracing::debug!(app, machine = id, error = %e, "action refused, but the machine is already on its way");
    }
    let Some(target) = spec.action.target() else {
        return Ok(Some(m.state.to_string()));
    };
    if !spec.wait {
        return Ok(None);
    }
    // A restart of a started machine is only over once a *new* start happened.
    let from_event = match spec.action {
        MachineAction::Restart => last_event,
        MachineAction::Start
        | MachineAction::Stop
        | MachineAction::Suspend
        | MachineAction::Cordon
        | MachineAction::Uncordon => None,
    };
    let remaining = spec.timeout.saturating_sub(started.elapsed());
    let outcome = ctl
        .guard(
            &format!("waiting for machine {id} to be {}", target.as_str()),
            async {
                client
                    .wait_for_state(
                        app,
                        id,
                        &[target, fly::WaitTarget::Failed],
                        None,
                        from_event.as_deref(),
                        remaining,
                    )
                    .await
                    .map_err(Error::fly(format!(
                        "waiting for machine {id} to be {}",
                        target.as_str()
                    )))
            },
        )
        .await?;
    match outcome.state {
        Some(fly::MachineState::Failed) => Err(Error::NotConverged {
            subject: format!("machine {id}"),
            outcome: "failed".to_owned(),
            next: "call machine_info for its events".to_owned(),
        }),
        Some(s) => Ok(Some(s.to_string())),
        None => Ok(Some(target.as_str().to_owned())),
    }
}
