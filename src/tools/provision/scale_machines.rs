//! `scale_machines`: machine counts per region, by cloning a template or destroying the surplus.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::{collections::BTreeMap, time::Duration};

use super::{MachineRef, count};
use crate::tools::args::{AppName, MachineId};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{rows, table_row, tallied};
use crate::tools::{DestroyPlan, ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{Outcome, scale};

pub(super) const SCALE_MACHINES: ToolInfo = ToolInfo {
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
    pub app: AppName,
    /// Machine count per region, e.g. {"iad": 3, "ams": 0}.
    #[schemars(length(min = 1, max = 20))]
    pub regions: BTreeMap<String, u8>,
    /// Machine to clone (default: oldest started).
    pub template_machine_id: Option<MachineId>,
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
    pub regions: BTreeMap<String, [usize; 2]>,
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
            out.push_str(&format!(
                "\ndestroy {} machine(s) (running ones are killed):\n{}",
                self.destroy.len(),
                rows(&self.destroy)
            ));
        }
        out
    }
}

/// One line of a scale report.
#[serde_with::skip_serializing_none]
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

table_row!(ScaleLine, |l| {
    "ID": l.id.clone(),
    "REGION": l.region.clone(),
    "OUTCOME": l.outcome.clone(),
    "VOLUMES": l.volumes.join(","),
    "ERROR": l.error.clone().unwrap_or_default(),
});

impl ToolOutput for ScaleMachinesReport {
    fn render_text(&self) -> String {
        tallied(
            &format!("app {} (template {})", self.app, self.template),
            &[
                (self.created, "created"),
                (self.destroyed, "destroyed"),
                (self.failed, "failed"),
            ],
            &self.machines,
        )
    }
}

pub(super) async fn plan_scale_machines(
    ctx: ToolContext,
    args: ScaleMachinesArgs,
) -> Result<ScaleMachinesPlan, ToolError> {
    let targets: BTreeMap<String, usize> = args
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

pub(super) async fn scale_machines(
    ctx: ToolContext,
    args: ScaleMachinesArgs,
    plan: ScaleMachinesPlan,
) -> Result<ScaleMachinesReport, ToolError> {
    let timeout = Duration::from_secs(u64::from(args.start_timeout_secs.unwrap_or(300)));
    let client = ctx.client();
    let r = ctx
        .steer(|ctl| async move { scale::run_scale(client, &plan.plan, timeout, &ctl).await })
        .await;
    let report = ScaleMachinesReport {
        created: count(&r.lines, Outcome::Created),
        destroyed: count(&r.lines, Outcome::Destroyed),
        failed: count(&r.lines, Outcome::Failed),
        app: r.app,
        template: r.template,
        machines: r
            .lines
            .into_iter()
            .map(|l| ScaleLine {
                outcome: l.outcome.name().to_owned(),
                id: l.id,
                region: l.region,
                volumes: l.volumes,
                error: l.error,
            })
            .collect(),
    };
    complete_or_incomplete(report.failed > 0, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let machine = |id: &str, region: &str, state: &str| scale::ScaleMachine {
            id: id.into(),
            name: format!("web-{}", &id[..2]),
            region: region.into(),
            state: state.into(),
        };
        let wf_plan = scale::ScalePlan {
            app: "web".into(),
            template: machine("148e1d4ae77d89", "iad", "started"),
            template_config: crate::fly::MachineConfig::default(),
            mounts: Vec::new(),
            regions: Vec::new(),
            create: vec!["ams".into(), "ams".into()],
            destroy: vec![machine("3d8d413b1e3478", "ord", "stopped")],
        };
        let plan = ScaleMachinesPlan {
            app: "web".into(),
            template: "148e1d4ae77d89".into(),
            regions: BTreeMap::from([("ams".to_owned(), [0, 2]), ("ord".to_owned(), [1, 0])]),
            create: wf_plan.create.clone(),
            clone_volumes: vec!["data 1 GB at /data".into()],
            destroy: vec![MachineRef {
                id: "3d8d413b1e3478".into(),
                name: "web-3d".into(),
                region: "ord".into(),
                state: "stopped".into(),
            }],
            plan: wf_plan,
        };
        let report = ScaleMachinesReport {
            app: "web".into(),
            template: "148e1d4ae77d89".into(),
            created: 1,
            destroyed: 1,
            failed: 1,
            machines: vec![
                ScaleLine {
                    outcome: "created".into(),
                    id: "5683d920b1e908".into(),
                    region: "ams".into(),
                    volumes: vec!["vol_4o2ejqnyx7y8gkpv".into()],
                    error: None,
                },
                ScaleLine {
                    outcome: "failed".into(),
                    id: String::new(),
                    region: "ams".into(),
                    volumes: Vec::new(),
                    error: Some("no capacity in region ams".into()),
                },
                ScaleLine {
                    outcome: "destroyed".into(),
                    id: "3d8d413b1e3478".into(),
                    region: "ord".into(),
                    volumes: Vec::new(),
                    error: None,
                },
            ],
        };
        insta::assert_snapshot!([plan.describe(), report.render_text()].join("\n---\n"));
    }
}
