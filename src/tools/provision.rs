//! The `provision` toolset: creating, changing and destroying machines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, DestroyPlan, ToolDef, ToolInfo, ToolOutput, Toolset},
    context::ToolContext,
    error::ToolError,
    render::table,
};
use std::time::Duration;

use crate::workflows::{destroy as wf, observe::MachineSummary, scale, update as upd};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    let mut tools = vec![ToolDef::destructive(
        DESTROY_MACHINES,
        plan_destroy_machines,
        destroy_machines,
    )?];
    tools.extend(rollout_tools()?);
    Ok(tools)
}

const DESTROY_MACHINES: ToolInfo = ToolInfo {
    name: "destroy_machines",
    title: "Destroy machines",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Destroy named machines of one app (by machine id, as shown by app_status). \
Machines that are not stopped need `force: true` (otherwise stop them first with machine_action). \
Confirmed before anything is destroyed; reports the outcome per machine (an error result if any failed). Does not touch volumes, IPs or the \
app itself (teardown_environment removes everything).",
    narrow_hint: "destroy fewer machines per call",
};

/// Arguments of `destroy_machines`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyMachinesArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Machine ids (14 hex characters) to destroy.
    #[schemars(length(min = 1, max = 50), inner(pattern(r"^[0-9a-f]{14}$")))]
    pub machine_ids: Vec<String>,
    /// Destroy running machines too (kills them). Default false.
    #[serde(default)]
    pub force: bool,
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

    fn describe(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.name.clone(),
                    m.region.clone(),
                    m.state.clone(),
                ]
            })
            .collect();
        format!(
            "{} machine(s) of app {}{}:\n{}",
            self.machines.len(),
            self.app,
            if self.force {
                " (force: running machines are killed)"
            } else {
                ""
            },
            table(&["ID", "NAME", "REGION", "STATE"], &rows)
        )
    }
}

/// Outcome for one machine.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineDestroyed {
    pub id: String,
    pub name: String,
    pub region: String,
    /// `destroyed` or `failed`.
    pub outcome: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl ToolOutput for DestroyMachinesReport {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.name.clone(),
                    m.region.clone(),
                    m.outcome.clone(),
                    m.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        format!(
            "app {}: {} destroyed, {} failed\n{}",
            self.app,
            self.destroyed,
            self.failed,
            table(&["ID", "NAME", "REGION", "OUTCOME", "ERROR"], &rows)
        )
    }
}

async fn plan_destroy_machines(
    ctx: ToolContext,
    args: DestroyMachinesArgs,
) -> Result<DestroyMachinesPlan, ToolError> {
    let plan = wf::plan_machine_destroy(
        ctx.client(),
        &args.app,
        &args.machine_ids,
        args.force,
        ctx.owned_only(),
    )
    .await?;
    Ok(DestroyMachinesPlan {
        app: plan.app.clone(),
        force: plan.force,
        machines: plan
            .machines
            .iter()
            .cloned()
            .map(MachineRef::from)
            .collect(),
        plan,
    })
}

async fn destroy_machines(
    ctx: ToolContext,
    _args: DestroyMachinesArgs,
    plan: DestroyMachinesPlan,
) -> Result<DestroyMachinesReport, ToolError> {
    let app = plan.app.clone();
    let total = u32::try_from(plan.machines.len()).unwrap_or(u32::MAX);
    ctx.progress(0, Some(total), format!("destroying {total} machine(s)"))
        .await;
    let outcomes = wf::destroy_planned_machines(ctx.client(), plan.plan).await;
    let machines: Vec<MachineDestroyed> = outcomes
        .into_iter()
        .map(|o| MachineDestroyed {
            id: o.machine.id,
            name: o.machine.name,
            region: o.machine.region,
            outcome: if o.error.is_none() {
                "destroyed"
            } else {
                "failed"
            }
            .to_owned(),
            error: o.error,
        })
        .collect();
    let failed =
        u32::try_from(machines.iter().filter(|m| m.error.is_some()).count()).unwrap_or(u32::MAX);
    let report = DestroyMachinesReport {
        app,
        destroyed: total.saturating_sub(failed),
        failed,
        machines,
    };
    if failed > 0 {
        return Err(ToolError::Incomplete {
            summary: report.render_text(),
        });
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------
// update_machines and scale_machines (rolling config changes and scaling).

/// The rollout and scaling tools of this toolset.
fn rollout_tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::write(UPDATE_MACHINES, update_machines)?,
        ToolDef::destructive(SCALE_MACHINES, plan_scale_machines, scale_machines)?,
    ])
}

const UPDATE_MACHINES: ToolInfo = ToolInfo {
    name: "update_machines",
    title: "Update machines (rolling)",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Change image, env, guest size and/or cmd on some or all machines of one app. \
Rolling by default: `batch_size` machines at a time, each under a lease, updated with \
current_version, then waited on until started with every health check passing; at the first \
failure the rollout stops and that machine is put back on its previous config (reported as \
`reverted`). `strategy: immediate` changes all machines at once without health waits or revert. \
A machine leased by someone else is not touched (the error names the holder and expiry). Stopped \
machines stay stopped. env values are plain config (use set_secrets for secrets). Reports each \
machine's outcome and versions; an error result when any machine failed.",
    narrow_hint: "name fewer machine_ids",
};

/// How the machines are changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStrategy {
    /// `batch_size` at a time, waiting for health; stop and revert on failure.
    #[default]
    Rolling,
    /// All at once; no health wait, no revert.
    Immediate,
}

/// CPU kind of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CpuKind {
    Shared,
    Performance,
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
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Machine ids to update, in rollout order; leave out for every machine of the app.
    #[serde(default)]
    #[schemars(length(max = 100), inner(pattern(r"^[0-9a-f]{14}$")))]
    pub machine_ids: Vec<String>,
    /// New image reference, e.g. `registry.fly.io/app:v2`.
    #[schemars(length(min = 1, max = 300))]
    pub image: Option<String>,
    /// Environment variables to set; `null` removes one.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub env: std::collections::BTreeMap<String, Option<String>>,
    /// New guest size.
    pub guest: Option<GuestArgs>,
    /// New command (replaces the image's CMD), as argv.
    #[schemars(length(min = 1, max = 50))]
    pub cmd: Option<Vec<String>>,
    /// `rolling` (default) or `immediate`.
    #[serde(default)]
    pub strategy: UpdateStrategy,
    /// Machines updated at a time in a rolling update (default 1).
    #[schemars(range(min = 1, max = 10))]
    pub batch_size: Option<u32>,
    /// Seconds a machine may take to start after its update (default 300).
    #[schemars(range(min = 5, max = 1800))]
    pub start_timeout_secs: Option<u32>,
    /// Seconds its health checks may take to pass once started (default 120).
    #[schemars(range(min = 1, max = 900))]
    pub health_timeout_secs: Option<u32>,
    /// Require at least this secrets version (from set_secrets).
    #[schemars(range(min = 1))]
    pub min_secrets_version: Option<u64>,
}

/// One machine in an update report.
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
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl ToolOutput for UpdateMachinesReport {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.region.clone(),
                    m.outcome.clone(),
                    m.version.clone(),
                    m.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        format!(
            "app {}: {} update ({}): {} updated, {} unchanged, {} failed, {} reverted, {} skipped{}\n{}",
            self.app,
            self.strategy,
            self.change,
            self.updated,
            self.unchanged,
            self.failed,
            self.reverted,
            self.skipped,
            if self.stopped_early {
                " (stopped at the first failure)"
            } else {
                ""
            },
            table(&["ID", "REGION", "OUTCOME", "VERSION", "ERROR"], &rows)
        )
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<upd::UpdateReport> for UpdateMachinesReport {
    fn from(r: upd::UpdateReport) -> Self {
        UpdateMachinesReport {
            updated: count(r.count(upd::Outcome::Updated)),
            unchanged: count(r.count(upd::Outcome::Unchanged)),
            failed: count(r.count(upd::Outcome::Failed) + r.count(upd::Outcome::RevertFailed)),
            reverted: count(r.count(upd::Outcome::Reverted)),
            skipped: count(r.count(upd::Outcome::Skipped)),
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

async fn update_machines(
    ctx: ToolContext,
    args: UpdateMachinesArgs,
) -> Result<UpdateMachinesReport, ToolError> {
    let change = upd::ConfigChange {
        image: args.image,
        env: args.env,
        guest: args.guest.map(|g| upd::GuestChange {
            cpu_kind: g.cpu_kind.map(|k| {
                match k {
                    CpuKind::Shared => "shared",
                    CpuKind::Performance => "performance",
                }
                .to_owned()
            }),
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
    let plan =
        upd::plan_update(ctx.client(), &args.app, &args.machine_ids, opts.owned_only).await?;
    let report: UpdateMachinesReport =
        upd::run_update(ctx.client(), &plan, &change, &opts, &ctx.control())
            .await?
            .into();
    if report.failed > 0 || report.reverted > 0 {
        return Err(ToolError::Incomplete {
            summary: report.render_text(),
        });
    }
    Ok(report)
}

const SCALE_MACHINES: ToolInfo = ToolInfo {
    name: "scale_machines",
    title: "Scale machines per region",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Set the number of machines of one app per region (e.g. {\"iad\": 3, \"ams\": 1}). \
Scale-up clones a template machine (template_machine_id, else the oldest started machine): same \
config, and for each volume the template mounts a new empty volume of the same name and size in \
the clone's region. Scale-down destroys the surplus (stopped machines first, newest first, never \
the template). Regions not named are left alone. Confirmed before anything is created or \
destroyed; the plan lists both. Reports each machine created or destroyed.",
    narrow_hint: "scale fewer regions per call",
};

/// Arguments of `scale_machines`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleMachinesArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Wanted machine count per region code, e.g. {"iad": 3, "ams": 0}.
    #[schemars(length(min = 1, max = 20))]
    pub regions: std::collections::BTreeMap<String, u8>,
    /// Machine to clone (default: the app's oldest started machine).
    #[schemars(pattern(r"^[0-9a-f]{14}$"))]
    pub template_machine_id: Option<String>,
    /// Seconds a clone may take to start (default 300).
    #[schemars(range(min = 5, max = 1800))]
    pub start_timeout_secs: Option<u32>,
}

/// What `scale_machines` would do.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleMachinesPlan {
    pub app: String,
    pub template: String,
    /// Region → [current, target].
    pub regions: std::collections::BTreeMap<String, [usize; 2]>,
    /// Regions of the clones to create.
    pub create: Vec<String>,
    /// Volumes each clone gets (name, GB).
    pub clone_volumes: Vec<String>,
    pub destroy: Vec<MachineRef>,
    #[serde(skip)]
    plan: scale::ScalePlan,
}

impl DestroyPlan for ScaleMachinesPlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        let regions: Vec<String> = self
            .regions
            .iter()
            .map(|(r, [now, want])| format!("{r}: {now} → {want}"))
            .collect();
        let mut out = format!(
            "scale app {} ({}), cloning machine {}",
            self.app,
            regions.join(", "),
            self.template
        );
        if !self.create.is_empty() {
            out.push_str(&format!(
                "\ncreate {} machine(s) in {}",
                self.create.len(),
                self.create.join(", ")
            ));
            if !self.clone_volumes.is_empty() {
                out.push_str(&format!(
                    ", each with a new volume: {}",
                    self.clone_volumes.join(", ")
                ));
            }
        }
        if self.destroy.is_empty() {
            out.push_str("\ndestroy nothing");
        } else {
            let rows: Vec<Vec<String>> = self
                .destroy
                .iter()
                .map(|m| {
                    vec![
                        m.id.clone(),
                        m.name.clone(),
                        m.region.clone(),
                        m.state.clone(),
                    ]
                })
                .collect();
            out.push_str(&format!(
                "\ndestroy {} machine(s) (running ones are killed):\n{}",
                self.destroy.len(),
                table(&["ID", "NAME", "REGION", "STATE"], &rows)
            ));
        }
        out
    }
}

/// One line of a scale report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScaleLine {
    /// `created`, `destroyed`, `failed` or `skipped`.
    pub outcome: String,
    /// Machine id (empty when a create failed before one existed).
    pub id: String,
    pub region: String,
    /// Volumes created for a clone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Result of `scale_machines`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScaleMachinesReport {
    pub app: String,
    pub template: String,
    pub created: u32,
    pub destroyed: u32,
    pub failed: u32,
    pub machines: Vec<ScaleLine>,
}

impl ToolOutput for ScaleMachinesReport {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|l| {
                vec![
                    l.id.clone(),
                    l.region.clone(),
                    l.outcome.clone(),
                    l.volumes.join(","),
                    l.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        format!(
            "app {} (template {}): {} created, {} destroyed, {} failed\n{}",
            self.app,
            self.template,
            self.created,
            self.destroyed,
            self.failed,
            table(&["ID", "REGION", "OUTCOME", "VOLUMES", "ERROR"], &rows)
        )
    }
}

async fn plan_scale_machines(
    ctx: ToolContext,
    args: ScaleMachinesArgs,
) -> Result<ScaleMachinesPlan, ToolError> {
    let targets: std::collections::BTreeMap<String, usize> = args
        .regions
        .iter()
        .map(|(r, n)| (r.clone(), usize::from(*n)))
        .collect();
    let plan = scale::plan_scale(
        ctx.client(),
        &args.app,
        args.template_machine_id.as_deref(),
        &targets,
        ctx.owned_only(),
    )
    .await?;
    Ok(ScaleMachinesPlan {
        app: plan.app.clone(),
        template: plan.template.id.clone(),
        regions: plan
            .regions
            .iter()
            .map(|r| (r.region.clone(), [r.current, r.target]))
            .collect(),
        create: plan.create.clone(),
        clone_volumes: plan
            .mounts
            .iter()
            .map(|m| format!("{} {} GB at {}", m.volume_name, m.size_gb, m.path))
            .collect(),
        destroy: plan
            .destroy
            .iter()
            .map(|m| MachineRef {
                id: m.id.clone(),
                name: m.name.clone(),
                region: m.region.clone(),
                state: m.state.clone(),
            })
            .collect(),
        plan,
    })
}

async fn scale_machines(
    ctx: ToolContext,
    args: ScaleMachinesArgs,
    plan: ScaleMachinesPlan,
) -> Result<ScaleMachinesReport, ToolError> {
    let timeout = Duration::from_secs(u64::from(args.start_timeout_secs.unwrap_or(300)));
    let r = scale::run_scale(ctx.client(), &plan.plan, timeout, &ctx.control()).await;
    let report = ScaleMachinesReport {
        created: count(r.count("created")),
        destroyed: count(r.count("destroyed")),
        failed: count(r.count("failed")),
        app: r.app,
        template: r.template,
        machines: r
            .lines
            .into_iter()
            .map(|l| ScaleLine {
                outcome: l.outcome.to_owned(),
                id: l.id,
                region: l.region,
                volumes: l.volumes,
                error: l.error,
            })
            .collect(),
    };
    if report.failed > 0 {
        return Err(ToolError::Incomplete {
            summary: report.render_text(),
        });
    }
    Ok(report)
}
