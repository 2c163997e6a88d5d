//! The `provision` toolset: creating, changing and destroying machines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, DestroyPlan, ToolDef, ToolInfo, ToolOutput, Toolset},
    context::ToolContext,
    error::ToolError,
    render::table,
};
use std::{collections::BTreeMap, time::Duration};

use crate::fly;
use crate::workflows::{
    destroy as wf, lifecycle as life,
    observe::MachineSummary,
    provision::{self as prov, EnvSpec, Resource},
    scale,
    sched::{Control, Progress},
    teardown as down, update as upd,
};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    let mut tools = vec![
        ToolDef::write(PROVISION_ENVIRONMENT, provision_environment)?,
        ToolDef::write(MACHINE_ACTION, machine_action)?,
        ToolDef::destructive(DESTROY_MACHINES, plan_destroy_machines, destroy_machines)?,
        ToolDef::destructive(
            TEARDOWN_ENVIRONMENT,
            plan_teardown_environment,
            teardown_environment,
        )?,
    ];
    tools.extend(rollout_tools()?);
    Ok(tools)
}

const DESTROY_MACHINES: ToolInfo = ToolInfo {
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
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Machine ids (14 hex characters) to destroy.
    #[schemars(length(min = 1, max = 50), inner(pattern(r"^[0-9a-f]{14}$")))]
    pub machine_ids: Vec<String>,
    /// Destroy running machines too (kills them).
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
    /// Machine ids in rollout order (default: all).
    #[serde(default)]
    #[schemars(length(max = 100), inner(pattern(r"^[0-9a-f]{14}$")))]
    pub machine_ids: Vec<String>,
    /// New image, e.g. `registry.fly.io/app:v2`.
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
    description: "Set machine counts per region (e.g. {\"iad\": 3}); other regions are untouched. Scale-up \
clones a template machine (default: the oldest started), with a new empty volume per mount. \
Scale-down destroys the surplus (stopped and newest first, never the template). Confirmed \
first.",
    narrow_hint: "scale fewer regions per call",
};

/// Arguments of `scale_machines`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleMachinesArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Machine count per region, e.g. {"iad": 3, "ams": 0}.
    #[schemars(length(min = 1, max = 20))]
    pub regions: std::collections::BTreeMap<String, u8>,
    /// Machine to clone (default: oldest started).
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

// ---------------------------------------------------------------------------
// provision_environment, machine_action, teardown_environment
// ---------------------------------------------------------------------------

/// Runs `work` with a workflow [`Control`] whose progress reports become MCP progress
/// notifications (strictly increasing, as the protocol asks) and whose cancellation
/// is the call's.
pub(super) async fn steered<T, Fut>(ctx: &ToolContext, work: impl FnOnce(Control) -> Fut) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let (progress, mut updates) = Progress::channel();
    let ctl = Control::new(progress, ctx.cancellation());
    let forward = async {
        let mut last: u32 = 0;
        let mut first = true;
        while let Some(u) = updates.recv().await {
            let value = if first { u.done } else { u.done.max(last + 1) };
            first = false;
            last = value;
            let total = u.total.map(|t| t.max(value));
            ctx.progress(value, total, u.message).await;
        }
    };
    let (out, ()) = tokio::join!(work(ctl), forward);
    out
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

const PROVISION_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "provision_environment",
    title: "Provision an environment",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "A complete environment in one call: the app (created if missing; refused if another \
owner's), shared IPv4 + IPv6 and a volume in parallel, then one machine (image, size, mount, \
services, autostop, checks, env, owner/expiry), waited until started. Returns the URL and \
every id. `dry_run` only plans and prices. Repeating it converges. On failure removes only \
what it created (`rollback: false`: reports what is left).",
    narrow_hint: "the report is small; nothing to narrow",
};

/// What the proxy does with an idle machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Autostop {
    #[default]
    Off,
    Stop,
    Suspend,
}

/// The volume to create (or reuse, by name) and mount.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeArgs {
    /// Volume name (default `data`).
    #[schemars(length(min = 1, max = 30), pattern(r"^[a-z0-9_]+$"))]
    pub name: Option<String>,
    /// Size in GB (default 1).
    #[schemars(range(min = 1, max = 500))]
    pub size_gb: Option<u64>,
    /// Mount path (default `/data`).
    #[schemars(length(min = 2, max = 200), pattern(r"^/"))]
    pub path: Option<String>,
    /// Grow by 1 GB at 80% full, up to this many GB.
    #[schemars(range(min = 1, max = 500))]
    pub auto_extend_limit_gb: Option<u32>,
}

/// A public port of a service.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortArgs {
    pub port: u16,
    /// e.g. `["http"]` or `["tls", "http"]`.
    #[serde(default)]
    pub handlers: Vec<String>,
    #[serde(default)]
    pub force_https: bool,
}

/// A service behind Fly's proxy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    pub internal_port: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
    #[schemars(length(max = 8))]
    pub ports: Vec<PortArgs>,
}

/// A health check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    #[schemars(length(min = 1, max = 30))]
    pub name: String,
    /// `http` or `tcp`.
    #[schemars(pattern(r"^(http|tcp)$"))]
    pub r#type: String,
    pub port: u16,
    /// HTTP path (http checks).
    pub path: Option<String>,
    /// Go duration, e.g. `15s`.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub grace_period: Option<String>,
}

/// Arguments of `provision_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionArgs {
    /// App name (created if missing).
    #[schemars(length(min = 2, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Org slug (default: the server's).
    #[schemars(length(min = 1, max = 63))]
    pub org: Option<String>,
    /// Region, e.g. `iad` (see platform_info).
    #[schemars(length(min = 3, max = 4), pattern(r"^[a-z]{3,4}$"))]
    pub region: String,
    /// Container image, e.g. `nginx:latest`.
    #[schemars(length(min = 1, max = 300))]
    pub image: String,
    /// Command replacing the image's CMD.
    #[schemars(length(max = 50))]
    pub cmd: Option<Vec<String>>,
    /// VM size, e.g. `shared-cpu-1x` (see platform_info).
    #[schemars(length(min = 3, max = 40))]
    pub vm_size: Option<String>,
    /// CPUs (instead of vm_size).
    #[schemars(range(min = 1, max = 16))]
    pub cpus: Option<u32>,
    /// Memory in MB, a multiple of 256 (with vm_size: above the preset's).
    #[schemars(range(min = 256, max = 131072))]
    pub memory_mb: Option<u32>,
    /// CPU kind with `cpus` (default shared).
    pub cpu_kind: Option<CpuKind>,
    /// A volume to create (or reuse by name) and mount.
    pub volume: Option<VolumeArgs>,
    /// Port the app listens on, served on 443 and 80 (to HTTPS); or give `services`.
    pub internal_port: Option<u16>,
    /// Services in full, instead of internal_port: [{internal_port, protocol (`tcp` or
    /// `udp`), ports: [{port, handlers (e.g. `["tls", "http"]`), force_https}]}].
    #[serde(default)]
    #[schemars(schema_with = "crate::tools::catalog::objects_schema", length(max = 8))]
    pub services: Option<Vec<ServiceArgs>>,
    /// When idle: `off` (default), `stop` or `suspend`.
    #[serde(default)]
    pub autostop: Autostop,
    /// Start on a request (default true).
    pub autostart: Option<bool>,
    /// Health checks: [{name, type (`http` or `tcp`), port, path, interval, timeout,
    /// grace_period}], durations in Go form (e.g. `15s`).
    #[serde(default)]
    #[schemars(
        schema_with = "crate::tools::catalog::objects_schema",
        length(max = 10)
    )]
    pub checks: Option<Vec<CheckArgs>>,
    /// Environment variables (secrets: set_secrets).
    pub env: Option<BTreeMap<String, String>>,
    /// Who it is for (user id or email; kept in metadata).
    #[schemars(length(max = 200))]
    pub owner: Option<String>,
    /// Reapable after: an RFC 3339 time or a duration from now (`24h`).
    #[schemars(length(max = 40))]
    pub expires_at: Option<String>,
    /// Machine name (default `main`).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub machine_name: Option<String>,
    /// Shared IPv4 and IPv6 addresses (default true).
    pub public_ips: Option<bool>,
    /// Idempotency key (default: from org, app and machine name).
    #[schemars(length(min = 1, max = 100))]
    pub idempotency_key: Option<String>,
    /// Seconds to wait for it to start (default 180).
    #[schemars(range(min = 1, max = 900))]
    pub wait_timeout_s: Option<u32>,
    /// On failure remove what this call made (default true).
    pub rollback: Option<bool>,
    /// Only plan and price; create nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// One planned step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanStepOut {
    pub kind: String,
    /// `create` or `reuse`.
    pub action: String,
    pub detail: String,
}

/// Result of `provision_environment`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProvisionReport {
    pub app: String,
    pub url: String,
    /// `provisioned` or `planned` (dry run).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    pub region: String,
    /// Created by this call.
    pub created: Vec<ResourceOut>,
    /// Already there and reused.
    pub reused: Vec<ResourceOut>,
    /// Dry run: what would be created or reused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanStepOut>,
    /// Estimated cost per month running all month, USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_monthly_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_basis: Option<String>,
    pub idempotency_key: String,
    pub elapsed_ms: u64,
}

impl ToolOutput for ProvisionReport {
    fn render_text(&self) -> String {
        let mut out = format!("app {} ({}): {}\n", self.app, self.url, self.status);
        if !self.plan.is_empty() {
            let rows: Vec<Vec<String>> = self
                .plan
                .iter()
                .map(|s| vec![s.kind.clone(), s.action.clone(), s.detail.clone()])
                .collect();
            out.push_str(&table(&["RESOURCE", "ACTION", "DETAIL"], &rows));
            out.push('\n');
        }
        if let Some(id) = &self.machine_id {
            out.push_str(&format!(
                "machine {id} {} in {}\n",
                self.machine_state.as_deref().unwrap_or("?"),
                self.region
            ));
        }
        if let Some(v) = &self.volume_id {
            out.push_str(&format!("volume {v}\n"));
        }
        for (label, ip) in [("ipv4", &self.ipv4), ("ipv6", &self.ipv6)] {
            if let Some(ip) = ip {
                out.push_str(&format!("{label} {ip}\n"));
            }
        }
        let list = |rs: &[ResourceOut]| {
            rs.iter()
                .map(|r| format!("{} {}", r.kind, r.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.created.is_empty() {
            out.push_str(&format!("created: {}\n", list(&self.created)));
        }
        if !self.reused.is_empty() {
            out.push_str(&format!("reused: {}\n", list(&self.reused)));
        }
        if let Some(usd) = self.estimated_monthly_usd {
            out.push_str(&format!(
                "estimated ${usd:.2}/month ({})\n",
                self.cost_basis.as_deref().unwrap_or("")
            ));
        }
        out.push_str(&format!("idempotency key {}", self.idempotency_key));
        out
    }
}

fn env_spec(ctx: &ToolContext, a: &ProvisionArgs) -> Result<EnvSpec, ToolError> {
    let org = a
        .org
        .clone()
        .unwrap_or_else(|| ctx.default_org().to_owned());
    ctx.check_org(&org)?;
    if let Some(mb) = a.memory_mb
        && mb % 256 != 0
    {
        return Err(ToolError::InvalidArgument {
            field: "memory_mb".to_owned(),
            message: format!("{mb} is not a multiple of 256"),
        });
    }
    let guest = match (&a.vm_size, a.cpus) {
        (Some(_), Some(_)) => {
            return Err(ToolError::InvalidArgument {
                field: "cpus".to_owned(),
                message: "give either vm_size or cpus, not both".to_owned(),
            });
        }
        (Some(name), None) => prov::GuestSpec::Preset {
            name: name.clone(),
            memory_mb: a.memory_mb,
        },
        (None, Some(cpus)) => {
            let kind = a.cpu_kind.unwrap_or(CpuKind::Shared);
            prov::GuestSpec::Custom {
                cpu_kind: match kind {
                    CpuKind::Shared => "shared",
                    CpuKind::Performance => "performance",
                }
                .to_owned(),
                cpus,
                memory_mb: a.memory_mb.unwrap_or(match kind {
                    CpuKind::Shared => 256,
                    CpuKind::Performance => 2048,
                }),
            }
        }
        (None, None) => match a.memory_mb {
            Some(memory_mb) => prov::GuestSpec::Custom {
                cpu_kind: "shared".to_owned(),
                cpus: 1,
                memory_mb,
            },
            None => prov::GuestSpec::Default,
        },
    };
    let autostop = match a.autostop {
        Autostop::Off => fly::AutostopMode::Off,
        Autostop::Stop => fly::AutostopMode::Stop,
        Autostop::Suspend => fly::AutostopMode::Suspend,
    };
    let service = |internal_port: u16, protocol: Option<&str>, ports: Vec<fly::MachinePort>| {
        fly::MachineService {
            protocol: protocol.unwrap_or("tcp").to_owned(),
            internal_port,
            ports,
            autostop: Some(autostop),
            autostart: Some(a.autostart.unwrap_or(true)),
            min_machines_running: Some(0),
            ..fly::MachineService::default()
        }
    };
    let port = |port: u16, handlers: &[&str], force_https: bool| fly::MachinePort {
        port: Some(port),
        handlers: handlers.iter().map(|h| (*h).to_owned()).collect(),
        force_https: force_https.then_some(true),
        ..fly::MachinePort::default()
    };
    let services = match (&a.services, a.internal_port) {
        (Some(list), _) => list
            .iter()
            .map(|s| {
                let ports = s
                    .ports
                    .iter()
                    .map(|p| {
                        let handlers: Vec<&str> = p.handlers.iter().map(String::as_str).collect();
                        port(p.port, &handlers, p.force_https)
                    })
                    .collect();
                service(s.internal_port, s.protocol.as_deref(), ports)
            })
            .collect(),
        (None, Some(internal)) => vec![service(
            internal,
            None,
            vec![
                port(80, &["http"], true),
                port(443, &["tls", "http"], false),
            ],
        )],
        (None, None) => Vec::new(),
    };
    let checks = a
        .checks
        .iter()
        .flatten()
        .map(|c| {
            (
                c.name.clone(),
                fly::MachineCheck {
                    kind: Some(c.r#type.clone()),
                    port: Some(c.port),
                    path: c.path.clone(),
                    interval: c.interval.clone(),
                    timeout: c.timeout.clone(),
                    grace_period: c.grace_period.clone(),
                    ..fly::MachineCheck::default()
                },
            )
        })
        .collect();
    let expires_at = a.expires_at.as_deref().map(expiry).transpose()?;
    Ok(EnvSpec {
        app: a.app.clone(),
        org,
        region: a.region.clone(),
        image: a.image.clone(),
        cmd: a.cmd.clone().filter(|c| !c.is_empty()),
        guest,
        volume: a.volume.as_ref().map(|v| prov::VolumeSpec {
            name: v.name.clone().unwrap_or_else(|| "data".to_owned()),
            size_gb: v.size_gb.unwrap_or(1),
            path: v.path.clone().unwrap_or_else(|| "/data".to_owned()),
            auto_extend: v.auto_extend_limit_gb.map(|limit| (80, 1, limit)),
        }),
        services,
        checks,
        env: a.env.clone().unwrap_or_default(),
        user: a.owner.clone(),
        expires_at,
        machine_name: a.machine_name.clone().unwrap_or_else(|| "main".to_owned()),
        public_ips: a.public_ips.unwrap_or(true),
        idempotency_key: a.idempotency_key.clone(),
        wait_timeout: Duration::from_secs(u64::from(a.wait_timeout_s.unwrap_or(180))),
        secrets: prov::AppSecrets::default(),
    })
}

/// An RFC 3339 time, or a duration from now (`24h`, `7d`), as RFC 3339.
fn expiry(text: &str) -> Result<String, ToolError> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.to_string());
    }
    let invalid = |message: String| ToolError::InvalidArgument {
        field: "expires_at".to_owned(),
        message,
    };
    let d = humantime::parse_duration(text).map_err(|e| {
        invalid(format!(
            "'{text}' is neither an RFC 3339 time nor a duration like 24h or 7d ({e})"
        ))
    })?;
    let d = jiff::SignedDuration::try_from(d).map_err(|e| invalid(e.to_string()))?;
    jiff::Timestamp::now()
        .checked_add(d)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .map_err(|e| invalid(e.to_string()))
}

async fn provision_environment(
    ctx: ToolContext,
    args: ProvisionArgs,
) -> Result<ProvisionReport, ToolError> {
    let spec = env_spec(&ctx, &args)?;
    if args.dry_run {
        let plan = prov::plan_environment(ctx.client(), &spec).await?;
        return Ok(ProvisionReport {
            app: plan.app,
            url: plan.url,
            status: "planned".to_owned(),
            machine_id: None,
            machine_state: None,
            volume_id: None,
            ipv4: None,
            ipv6: None,
            region: spec.region.clone(),
            created: Vec::new(),
            reused: Vec::new(),
            plan: plan
                .steps
                .into_iter()
                .map(|s| PlanStepOut {
                    kind: s.kind.to_owned(),
                    action: s.action.as_str().to_owned(),
                    detail: s.detail,
                })
                .collect(),
            estimated_monthly_usd: plan.cost.as_ref().map(|c| c.total_usd),
            cost_basis: plan.cost.map(|c| c.basis),
            idempotency_key: plan.idempotency_key,
            elapsed_ms: 0,
        });
    }
    let rollback = args.rollback.unwrap_or(true);
    let client = ctx.client().clone();
    let result = steered(&ctx, |ctl| async move {
        prov::provision_environment(&client, &spec, rollback, &ctl).await
    })
    .await;
    match result {
        Ok(p) => Ok(ProvisionReport {
            app: p.app,
            url: p.url,
            status: "provisioned".to_owned(),
            machine_id: Some(p.machine_id),
            machine_state: Some(p.machine_state),
            volume_id: p.volume_id,
            ipv4: p.ipv4,
            ipv6: p.ipv6,
            region: p.region,
            created: p.created.iter().map(resource_out).collect(),
            reused: p.reused.iter().map(resource_out).collect(),
            plan: Vec::new(),
            estimated_monthly_usd: None,
            cost_basis: None,
            idempotency_key: p.idempotency_key,
            elapsed_ms: u64::try_from(p.elapsed.as_millis()).unwrap_or(u64::MAX),
        }),
        Err(failure) => Err(failure.into_error(&args.app, rollback).into()),
    }
}

const MACHINE_ACTION: ToolInfo = ToolInfo {
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
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    pub action: ActionArg,
    /// Machine ids (default: all).
    #[schemars(length(min = 1, max = 100), inner(pattern(r"^[0-9a-f]{14}$")))]
    pub machine_ids: Option<Vec<String>>,
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
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineActionOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub before: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// `done`, `unchanged`, `failed`, `skipped` or `cancelled`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl ToolOutput for MachineActionReport {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.name.clone(),
                    m.region.clone(),
                    m.before.clone(),
                    m.after.clone().unwrap_or_else(|| "?".to_owned()),
                    m.outcome.clone(),
                    m.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        format!(
            "{} on app {}: {} done, {} unchanged, {} failed\n{}",
            self.action,
            self.app,
            self.done,
            self.unchanged,
            self.failed,
            table(
                &[
                    "ID", "NAME", "REGION", "BEFORE", "AFTER", "OUTCOME", "ERROR"
                ],
                &rows
            )
        )
    }
}

async fn machine_action(
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
        app: args.app.clone(),
        action,
        machine_ids: args.machine_ids.clone().unwrap_or_default(),
        wait: args.wait.unwrap_or(true),
        timeout: Duration::from_secs(u64::from(args.timeout_s.unwrap_or(120))),
        concurrency: usize::try_from(args.concurrency.unwrap_or(4)).unwrap_or(4),
    };
    let client = ctx.client().clone();
    let owned_only = ctx.owned_only();
    let outcomes = steered(&ctx, |ctl| async move {
        life::run_machine_action(&client, &spec, owned_only, &ctl).await
    })
    .await?;
    let count = |label: &str| {
        u32::try_from(outcomes.iter().filter(|o| o.outcome == label).count()).unwrap_or(u32::MAX)
    };
    let report = MachineActionReport {
        app: args.app,
        action: action.as_str().to_owned(),
        done: count("done"),
        unchanged: count("unchanged"),
        failed: count("failed"),
        machines: outcomes
            .iter()
            .map(|o| MachineActionOut {
                id: o.id.clone(),
                name: o.name.clone(),
                region: o.region.clone(),
                before: o.state_before.clone(),
                after: o.state_after.clone(),
                outcome: o.outcome.to_owned(),
                error: o.error.clone(),
                elapsed_ms: u64::try_from(o.elapsed.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
    };
    if report.failed > 0 || outcomes.iter().any(|o| o.outcome == "cancelled") {
        return Err(ToolError::Incomplete {
            summary: report.render_text(),
        });
    }
    Ok(report)
}

const TEARDOWN_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "teardown_environment",
    title: "Tear down an environment",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Remove an app and everything in it: machines, volumes (data lost), IPs, certificates, then \
the app. Confirmed first with the full list; retries until nothing is left.",
    narrow_hint: "the report lists every removed resource; nothing to narrow",
};

/// Arguments of `teardown_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeardownArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Seconds per machine's destruction (default 120).
    #[schemars(range(min = 1, max = 900))]
    pub timeout_s: Option<u32>,
}

/// What `teardown_environment` would remove.
#[derive(Debug, Clone, Serialize)]
pub struct TeardownPlanOut {
    pub app: String,
    pub machines: Vec<String>,
    pub volumes: Vec<String>,
    pub ips: Vec<String>,
    pub certificates: Vec<String>,
}

impl DestroyPlan for TeardownPlanOut {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (kind, items) in [
            ("machine", &self.machines),
            ("volume", &self.volumes),
            ("ip", &self.ips),
            ("certificate", &self.certificates),
        ] {
            for item in items {
                lines.push(format!("{kind} {item}"));
            }
        }
        lines.push(format!("app {} (and anything left in it)", self.app));
        lines.join("\n")
    }
}

/// Result of `teardown_environment`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TeardownReportOut {
    pub app: String,
    pub app_deleted: bool,
    pub removed: Vec<ResourceOut>,
    pub certificates: Vec<String>,
    /// Errors met and retried past (empty on a clean run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retried_errors: Vec<String>,
}

impl ToolOutput for TeardownReportOut {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .removed
            .iter()
            .map(|r| vec![r.kind.clone(), r.id.clone(), r.detail.clone()])
            .chain(
                self.certificates
                    .iter()
                    .map(|c| vec!["certificate".to_owned(), c.clone(), String::new()]),
            )
            .collect();
        format!(
            "app {}: {} ({} resources removed)\n{}",
            self.app,
            if self.app_deleted {
                "torn down"
            } else {
                "NOT fully removed"
            },
            rows.len(),
            table(&["KIND", "ID", "DETAIL"], &rows)
        )
    }
}

async fn plan_teardown_environment(
    ctx: ToolContext,
    args: TeardownArgs,
) -> Result<TeardownPlanOut, ToolError> {
    let plan = down::plan_teardown(ctx.client(), &args.app, ctx.owned_only()).await?;
    Ok(TeardownPlanOut {
        app: plan.app,
        machines: plan
            .machines
            .into_iter()
            .map(|(id, name, region, state)| format!("{id} ({name}, {region}, {state})"))
            .collect(),
        volumes: plan
            .volumes
            .into_iter()
            .map(|(id, name, region, gb)| format!("{id} ({name}, {region}, {gb} GB)"))
            .collect(),
        ips: plan
            .ips
            .into_iter()
            .map(|(addr, kind)| format!("{addr} ({kind})"))
            .collect(),
        certificates: plan.certificates,
    })
}

async fn teardown_environment(
    ctx: ToolContext,
    args: TeardownArgs,
    plan: TeardownPlanOut,
) -> Result<TeardownReportOut, ToolError> {
    let wait = Duration::from_secs(u64::from(args.timeout_s.unwrap_or(120)));
    let client = ctx.client().clone();
    let app = plan.app.clone();
    let report = steered(&ctx, |ctl| async move {
        down::teardown(&client, &app, wait, &ctl).await
    })
    .await?;
    Ok(TeardownReportOut {
        app: plan.app,
        app_deleted: report.app_deleted,
        removed: report.removed.iter().map(resource_out).collect(),
        certificates: report.certificates,
        retried_errors: report.errors,
    })
}
