//! The `storage` toolset: volume actions (create, extend, snapshot, fork, restore) and
//! destroying a volume, which refuses one attached to a live machine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::args::{AppName, Region, VolumeId};
use crate::tools::catalog::DeclarationError;
use crate::tools::render::{rows, table_row};
use crate::tools::{DestroyPlan, ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::volumes as wf;

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::write(VOLUME_ACTION, volume_action)?,
        ToolDef::destructive(DESTROY_VOLUME, plan_destroy_volume, destroy_volume)?,
    ])
}

const VOLUME_ACTION: ToolInfo = ToolInfo {
    name: "volume_action",
    title: "Create, extend, snapshot, fork or restore a volume",
    toolset: Toolset::Storage,
    idempotent: false,
    description: "One volume operation: `create` (name, region, size_gb), `extend` (volume_id, size_gb = new \
total), `snapshot` (volume_id), `fork` (volume_id, optional name/region), `restore` \
(snapshot_id, name, region). A machine mounts one volume, in its own region. Destroys \
nothing.",
    narrow_hint: "one volume per call",
};

/// The operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VolumeOp {
    Create,
    Extend,
    Snapshot,
    Fork,
    Restore,
}

/// Arguments of `volume_action`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeActionArgs {
    /// App name.
    pub app: AppName,
    /// What to do.
    pub action: VolumeOp,
    /// Volume id (extend, snapshot, fork).
    pub volume_id: Option<VolumeId>,
    /// Snapshot id (restore).
    #[schemars(length(min = 1, max = 64), pattern(r"^vs_[A-Za-z0-9]+$"))]
    pub snapshot_id: Option<String>,
    /// Volume name (create, restore; fork: default the source's).
    #[schemars(length(min = 1, max = 30), pattern(r"^[A-Za-z0-9_]+$"))]
    pub name: Option<String>,
    /// Region (create, restore; fork: default the source's).
    #[schemars(length(min = 3, max = 4), pattern(r"^[a-z]+$"))]
    pub region: Option<Region>,
    /// GB (create; the new total for extend; restore: optional).
    #[schemars(range(min = 1, max = 500))]
    pub size_gb: Option<u32>,
    /// Same-named volumes on different hosts (create; default true).
    pub require_unique_zone: Option<bool>,
}

/// A volume in a result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VolumeOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub size_gb: u64,
    pub state: String,
    pub attached_machine_id: Option<String>,
}

impl From<wf::VolumeFact> for VolumeOut {
    fn from(v: wf::VolumeFact) -> Self {
        VolumeOut {
            id: v.id,
            name: v.name,
            region: v.region,
            zone: v.zone,
            size_gb: v.size_gb,
            state: v.state,
            attached_machine_id: v.attached_machine_id,
        }
    }
}

/// A snapshot in a result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotOut {
    pub id: String,
    pub size_bytes: u64,
    pub created_at: String,
    pub status: String,
}

/// Result of `volume_action`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VolumeActionReport {
    pub app: String,
    pub action: String,
    pub volume: VolumeOut,
    pub snapshot: Option<SnapshotOut>,
    /// What to do next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

table_row!(VolumeOut, |v| {
    "ID": v.id.clone(),
    "NAME": v.name.clone(),
    "REGION": v.region.clone(),
    "ZONE": v.zone.clone(),
    "SIZE": format!("{} GB", v.size_gb),
    "STATE": v.state.clone(),
    "ATTACHED": v.attached_machine_id.clone().unwrap_or_default(),
});

impl ToolOutput for VolumeActionReport {
    fn render_text(&self) -> String {
        let mut out = format!(
            "app {}: {}\n{}",
            self.app,
            self.action,
            rows(std::slice::from_ref(&self.volume))
        );
        if let Some(s) = &self.snapshot {
            out.push_str(&format!(
                "\nsnapshot {} ({} bytes, {}, {})",
                s.id, s.size_bytes, s.status, s.created_at
            ));
        }
        for n in &self.notes {
            out.push_str("\nnote: ");
            out.push_str(n);
        }
        out
    }
}

fn required<T: Clone>(value: &Option<T>, field: &str, action: &str) -> Result<T, ToolError> {
    value.clone().ok_or_else(|| ToolError::InvalidArgument {
        field: field.to_owned(),
        message: format!("required for action '{action}'"),
    })
}

async fn volume_action(
    ctx: ToolContext,
    args: VolumeActionArgs,
) -> Result<VolumeActionReport, ToolError> {
    let size = args.size_gb.map(u64::from);
    let action = match args.action {
        VolumeOp::Create => wf::VolumeAction::Create {
            name: required(&args.name, "name", "create")?,
            region: required(&args.region, "region", "create")?.into(),
            size_gb: required(&size, "size_gb", "create")?,
            require_unique_zone: args.require_unique_zone,
        },
        VolumeOp::Extend => wf::VolumeAction::Extend {
            volume_id: required(&args.volume_id, "volume_id", "extend")?.into(),
            size_gb: required(&size, "size_gb", "extend")?,
        },
        VolumeOp::Snapshot => wf::VolumeAction::Snapshot {
            volume_id: required(&args.volume_id, "volume_id", "snapshot")?.into(),
        },
        VolumeOp::Fork => wf::VolumeAction::Fork {
            volume_id: required(&args.volume_id, "volume_id", "fork")?.into(),
            name: args.name.clone(),
            region: args.region.clone().map(String::from),
        },
        VolumeOp::Restore => wf::VolumeAction::Restore {
            snapshot_id: required(&args.snapshot_id, "snapshot_id", "restore")?,
            name: required(&args.name, "name", "restore")?,
            region: required(&args.region, "region", "restore")?.into(),
            size_gb: size,
        },
    };
    let r = wf::volume_action(ctx.client(), &args.app, &action).await?;
    Ok(VolumeActionReport {
        app: r.app,
        action: r.action.to_owned(),
        volume: r.volume.into(),
        snapshot: r.snapshot.map(|s| SnapshotOut {
            id: s.id,
            size_bytes: s.size_bytes,
            created_at: s.created_at,
            status: s.status,
        }),
        notes: r.notes,
    })
}

const DESTROY_VOLUME: ToolInfo = ToolInfo {
    name: "destroy_volume",
    title: "Destroy a volume",
    toolset: Toolset::Storage,
    idempotent: true,
    description: "Destroy a volume and its data (snapshots taken are kept). Refused while a machine it is \
attached to exists: destroy that machine first. Confirmed first.",
    narrow_hint: "one volume per call",
};

/// Arguments of `destroy_volume`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyVolumeArgs {
    /// App name.
    pub app: AppName,
    /// The volume (`vol_…`).
    pub volume_id: VolumeId,
}

/// What `destroy_volume` would destroy.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyVolumePlan {
    pub app: String,
    pub volume: VolumeOut,
    #[serde(skip)]
    plan: wf::VolumeDestroyPlan,
}

impl DestroyPlan for DestroyVolumePlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        let mut v = self.volume.clone();
        if let Some(stale) = &self.plan.stale_attachment {
            v.attached_machine_id = Some(format!("{stale} (destroyed)"));
        }
        format!(
            "volume {} of app {} and all its data:\n{}",
            self.volume.id,
            self.app,
            rows(&[v])
        )
    }
}

/// Result of `destroy_volume`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DestroyVolumeReport {
    pub app: String,
    pub volume: VolumeOut,
}

impl ToolOutput for DestroyVolumeReport {
    fn render_text(&self) -> String {
        format!(
            "app {}: volume {} ({}, {} GB, {}) destroyed",
            self.app, self.volume.id, self.volume.name, self.volume.size_gb, self.volume.region
        )
    }
}

async fn plan_destroy_volume(
    ctx: ToolContext,
    args: DestroyVolumeArgs,
) -> Result<DestroyVolumePlan, ToolError> {
    let plan = wf::plan_volume_destroy(ctx.client(), &args.app, &args.volume_id).await?;
    Ok(DestroyVolumePlan {
        app: plan.app.clone(),
        volume: plan.volume.clone().into(),
        plan,
    })
}

async fn destroy_volume(
    ctx: ToolContext,
    _args: DestroyVolumeArgs,
    plan: DestroyVolumePlan,
) -> Result<DestroyVolumeReport, ToolError> {
    let v = wf::destroy_planned_volume(ctx.client(), &plan.plan).await?;
    Ok(DestroyVolumeReport {
        app: plan.app,
        volume: v.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let fact = wf::VolumeFact {
            id: "vol_4o2ejqnyx7y8gkpv".into(),
            name: "data".into(),
            region: "iad".into(),
            zone: "b7a0".into(),
            size_gb: 3,
            state: "created".into(),
            attached_machine_id: None,
        };
        let extended = VolumeActionReport {
            app: "web".into(),
            action: "extend".into(),
            volume: VolumeOut {
                attached_machine_id: Some("148e1d4ae77d89".into()),
                ..VolumeOut::from(fact.clone())
            },
            snapshot: None,
            notes: vec!["machine 148e1d4ae77d89 must restart to see the new size".into()],
        };
        let snapshot = VolumeActionReport {
            app: "web".into(),
            action: "snapshot".into(),
            volume: VolumeOut::from(fact.clone()),
            snapshot: Some(SnapshotOut {
                id: "vs_Vq3ABC1n2".into(),
                size_bytes: 1_048_576,
                created_at: "2026-11-21T15:00:00Z".into(),
                status: "created".into(),
            }),
            notes: Vec::new(),
        };
        let plan = DestroyVolumePlan {
            app: "web".into(),
            volume: VolumeOut::from(fact.clone()),
            plan: wf::VolumeDestroyPlan {
                app: "web".into(),
                volume: fact.clone(),
                stale_attachment: None,
            },
        };
        let destroyed = DestroyVolumeReport {
            app: "web".into(),
            volume: VolumeOut {
                state: "destroyed".into(),
                ..VolumeOut::from(fact)
            },
        };
        insta::assert_snapshot!(
            [
                extended.render_text(),
                snapshot.render_text(),
                plan.describe(),
                destroyed.render_text(),
            ]
            .join("\n---\n")
        );
    }
}
