//! Volume actions (create, extend, snapshot, fork, restore) with Fly's placement rules
//! stated up front, and the plan + execution of destroying a volume, which refuses a
//! volume attached to a live machine and names that machine.
//!
//! Composes `crate::fly` volume and machine calls; knows nothing of MCP.

use crate::fly::{self, CreateVolume, MachineState};
use crate::workflows::NextStep;

use super::Error;

/// A volume as workflows report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFact {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub size_gb: u64,
    pub state: String,
    pub attached_machine_id: Option<String>,
}

impl From<fly::Volume> for VolumeFact {
    fn from(v: fly::Volume) -> Self {
        let attached = v.is_attached();
        VolumeFact {
            id: v.id,
            name: v.name,
            region: v.region,
            zone: v.zone,
            size_gb: v.size_gb,
            state: v.state,
            attached_machine_id: v.attached_machine_id.filter(|_| attached),
        }
    }
}

/// A snapshot as workflows report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFact {
    pub id: String,
    pub size_bytes: u64,
    pub created_at: String,
    pub status: String,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeAction {
    /// A new empty volume.
    Create {
        name: String,
        region: String,
        size_gb: u64,
        /// Put same-named volumes on different hardware (Fly's default: true).
        require_unique_zone: Option<bool>,
    },
    /// Grow a volume to `size_gb` (the new total; volumes cannot shrink).
    Extend { volume_id: String, size_gb: u64 },
    /// Take a snapshot now.
    Snapshot { volume_id: String },
    /// A copy of a volume, in its region unless another is named.
    Fork {
        volume_id: String,
        name: Option<String>,
        region: Option<String>,
    },
    /// A new volume from a snapshot.
    Restore {
        snapshot_id: String,
        name: String,
        region: String,
        size_gb: Option<u64>,
    },
}

impl VolumeAction {
    /// `create`, `extend`, `snapshot`, `fork` or `restore`.
    pub fn name(&self) -> &'static str {
        match self {
            VolumeAction::Create { .. } => "create",
            VolumeAction::Extend { .. } => "extend",
            VolumeAction::Snapshot { .. } => "snapshot",
            VolumeAction::Fork { .. } => "fork",
            VolumeAction::Restore { .. } => "restore",
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeActionResult {
    pub action: &'static str,
    pub app: String,
    pub volume: VolumeFact,
    /// Set by `snapshot`: the snapshot just taken.
    pub snapshot: Option<SnapshotFact>,
    /// What to do next (restart after extend, wait for a restore, mount rules).
    pub notes: Vec<String>,
}

const MOUNT_RULE: &str =
    "a machine can mount it only in the same region, and one volume serves one machine";

/// Runs one volume action.
pub async fn volume_action(
    client: &fly::Client,
    app: &str,
    action: &VolumeAction,
) -> Result<VolumeActionResult, Error> {
    let mut notes = Vec::new();
    let mut snapshot = None;
    let volume: fly::Volume = match action {
        VolumeAction::Create {
            name,
            region,
            size_gb,
            require_unique_zone,
        } => {
            let body = CreateVolume {
                name: name.clone(),
                region: region.clone(),
                size_gb: Some(*size_gb),
                require_unique_zone: *require_unique_zone,
                ..CreateVolume::default()
            };
            let v = client
                .create_volume(app, &body)
                .await
                .map_err(placement_error(app, region, "creating volume"))?;
            notes.push(format!("volume {} is in {}: {MOUNT_RULE}", v.id, v.region));
            v
        }
        VolumeAction::Extend { volume_id, size_gb } => {
            let current = get(client, app, volume_id).await?;
            if *size_gb <= current.size_gb {
                return Err(Error::Invalid {
                    field: "size_gb".to_owned(),
                    rule: format!(
                        "must be larger than the volume's current {} GB (volumes cannot shrink)",
                        current.size_gb
                    ),
                });
            }
            let out = client
                .extend_volume(app, volume_id, *size_gb)
                .await
                .map_err(Error::fly(format!("extending volume {volume_id}")))?;
            if out.needs_restart {
                let machine = out
                    .volume
                    .attached_machine_id
                    .clone()
                    .or(current.attached_machine_id.clone())
                    .unwrap_or_default();
                notes.push(format!(
                    "machine {machine} must restart to use the new space: machine_action restart"
                ));
            }
            let mut v = out.volume;
            if v.id.is_empty() {
                v = current;
                v.size_gb = *size_gb;
            }
            v
        }
        VolumeAction::Snapshot { volume_id } => {
            let v = get(client, app, volume_id).await?;
            let before: Vec<String> = client
                .list_snapshots(app, volume_id)
                .await
                .map_err(Error::fly(format!("listing snapshots of {volume_id}")))?
                .into_iter()
                .map(|s| s.id)
                .collect();
            client
                .create_snapshot(app, volume_id)
                .await
                .map_err(Error::fly(format!("snapshotting volume {volume_id}")))?;
            let after = client
                .list_snapshots(app, volume_id)
                .await
                .map_err(Error::fly(format!("listing snapshots of {volume_id}")))?;
            snapshot = after
                .into_iter()
                .filter(|s| !before.contains(&s.id))
                .max_by(|a, b| a.created_at.cmp(&b.created_at))
                .map(|s| SnapshotFact {
                    id: s.id,
                    size_bytes: s.size,
                    created_at: s.created_at,
                    status: s.status.unwrap_or_default(),
                });
            match &snapshot {
                Some(s) => notes.push(format!(
                    "restore it with volume_action restore snapshot_id={}",
                    s.id
                )),
                None => notes.push(
                    "the snapshot was requested; it is not listed yet (snapshots are taken in the background)"
                        .to_owned(),
                ),
            }
            v
        }
        VolumeAction::Fork {
            volume_id,
            name,
            region,
        } => {
            let source = get(client, app, volume_id).await?;
            let region = region.clone().unwrap_or_else(|| source.region.clone());
            let body = CreateVolume {
                name: name.clone().unwrap_or_else(|| source.name.clone()),
                region: region.clone(),
                source_volume_id: Some(volume_id.clone()),
                ..CreateVolume::default()
            };
            let v = client
                .create_volume(app, &body)
                .await
                .map_err(placement_error(app, &region, "forking volume"))?;
            notes.push(format!(
                "the fork is {} until its data is copied; {MOUNT_RULE}",
                v.state
            ));
            v
        }
        VolumeAction::Restore {
            snapshot_id,
            name,
            region,
            size_gb,
        } => {
            let body = CreateVolume {
                name: name.clone(),
                region: region.clone(),
                size_gb: *size_gb,
                snapshot_id: Some(snapshot_id.clone()),
                ..CreateVolume::default()
            };
            let v = client
                .create_volume(app, &body)
                .await
                .map_err(placement_error(app, region, "restoring snapshot"))?;
            notes.push(format!(
                "the volume is {} until the snapshot is restored; {MOUNT_RULE}",
                v.state
            ));
            v
        }
    };
    Ok(VolumeActionResult {
        action: action.name(),
        app: app.to_owned(),
        volume: volume.into(),
        snapshot,
        notes,
    })
}

async fn get(client: &fly::Client, app: &str, volume_id: &str) -> Result<fly::Volume, Error> {
    client
        .get_volume(app, volume_id)
        .await
        .map_err(Error::fly_or_not_found(
            format!("reading volume {volume_id}"),
            || Error::NotFound {
                what: "volume",
                id: format!("{volume_id} (app {app})"),
                hint: NextStep::to("call app_status to see the app's volumes"),
            },
        ))
}

/// Maps a create failure, naming Fly's placement rule when it is one.
fn placement_error(
    app: &str,
    region: &str,
    what: &'static str,
) -> impl FnOnce(fly::Error) -> Error {
    let step = format!("{what} in {region} for app {app}");
    move |e| {
        let hint = e.is_capacity().then_some(
            "no host in that region has room for it (require_unique_zone spreads same-named volumes over different hosts: set it false, or pick another region)",
        );
        match hint {
            Some(h) => Error::fly(format!("{step}: {h}"))(e),
            None => Error::fly(step)(e),
        }
    }
}

/// What `destroy_volume` will destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDestroyPlan {
    pub app: String,
    pub volume: VolumeFact,
    /// A machine the volume is still recorded against, when that machine is gone.
    pub stale_attachment: Option<String>,
}

/// Plans destroying a volume. Refuses (before anything changes) a volume attached to a
/// machine that still exists, naming the machine and its state.
pub async fn plan_volume_destroy(
    client: &fly::Client,
    app: &str,
    volume_id: &str,
) -> Result<VolumeDestroyPlan, Error> {
    let v = get(client, app, volume_id).await?;
    let volume = VolumeFact::from(v);
    let mut stale = None;
    if let Some(mid) = volume.attached_machine_id.clone() {
        match client.get_machine(app, &mid).await {
            Ok(m) if !m.state.is_terminal() && m.state != MachineState::Destroying => {
                return Err(attached(volume_id, &mid, &m.name, m.state.as_str()));
            }
            Ok(_) => stale = Some(mid),
            Err(e) if e.is_not_found() => stale = Some(mid),
            Err(e) => {
                return Err(Error::fly(format!(
                    "reading machine {mid}, which volume {volume_id} is attached to"
                ))(e));
            }
        }
    }
    Ok(VolumeDestroyPlan {
        app: app.to_owned(),
        volume,
        stale_attachment: stale,
    })
}

fn attached(volume_id: &str, machine_id: &str, name: &str, state: &str) -> Error {
    Error::Refused {
        rule: "attached volume".to_owned(),
        message: format!(
            "volume {volume_id} is attached to machine {machine_id} ({name}, {state}); destroy that machine first (destroy_machines), or update it to drop the mount; nothing was destroyed"
        ),
    }
}

/// Destroys the planned volume. Fly's own guardrail (the volume got attached since the
/// plan) comes back as the same refusal naming the machine.
pub async fn destroy_planned_volume(
    client: &fly::Client,
    plan: &VolumeDestroyPlan,
) -> Result<VolumeFact, Error> {
    let id = plan.volume.id.as_str();
    match client.destroy_volume(&plan.app, id).await {
        Ok(v) => {
            let mut fact = VolumeFact::from(v);
            if fact.id.is_empty() {
                fact = plan.volume.clone();
            }
            fact.state = "destroyed".to_owned();
            Ok(fact)
        }
        Err(e) if e.is_not_found() => {
            let mut fact = plan.volume.clone();
            fact.state = "destroyed".to_owned();
            Ok(fact)
        }
        Err(e) if matches!(e.status(), Some(409 | 412)) => {
            let machine = client
                .get_volume(&plan.app, id)
                .await
                .ok()
                .and_then(|v| v.attached_machine_id)
                .unwrap_or_else(|| "(unknown)".to_owned());
            Err(attached(id, &machine, "", "attached"))
        }
        Err(e) => Err(Error::fly(format!("destroying volume {id}"))(e)),
    }
}
