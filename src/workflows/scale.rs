//! Scaling an app to a target machine count per region: the plan (which template is
//! cloned, how many clones go where, which surplus machines are destroyed) and its
//! execution through the bulk scheduler. A clone gets a fresh volume of its own (same
//! name and size, in the clone's region) for every volume the template mounts, is
//! created idempotently (a retry never duplicates it) and is waited on until started.
//! Scale-down destroys stopped machines before running ones, newest first.
//!
//! Only the regions named are touched. Knows nothing of MCP.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fly::{self, CreateMachine, CreateVolume, MachineState, Mount, WaitTarget};
use crate::workflows::NextStep;

use super::Error;
use super::outcome::{self, Outcome, outcome_field};
use super::sched::{BulkOptions, Control, ItemOutcome, run_bulk};

/// Clones created (or machines destroyed) concurrently.
const SCALE_CONCURRENCY: usize = 4;

/// A machine in a scale plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleMachine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
}

impl std::fmt::Display for ScaleMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "machine {}", self.id)
    }
}

/// A volume the template mounts (a clone gets its own copy of the shape, not the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMount {
    pub volume_name: String,
    pub size_gb: u64,
    pub path: String,
}

/// Per region: machines now and wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionChange {
    pub region: String,
    pub current: usize,
    pub target: usize,
}

/// What `scale_machines` will do.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePlan {
    pub app: String,
    pub template: ScaleMachine,
    pub template_config: fly::MachineConfig,
    pub mounts: Vec<TemplateMount>,
    pub regions: Vec<RegionChange>,
    /// One entry per clone to create: its region.
    pub create: Vec<String>,
    pub destroy: Vec<ScaleMachine>,
}

/// Plans a scale. `targets` maps region → wanted count; regions not named are left
/// alone. The template is `template_id`, or else the app's oldest started machine
/// (oldest live machine when none is started). Under `owned_only` only machines this
/// server created may be destroyed, and the plan is refused otherwise.
pub async fn plan_scale(
    client: &fly::Client,
    app: &str,
    template_id: Option<&str>,
    targets: &BTreeMap<String, usize>,
    owned_only: bool,
) -> Result<ScalePlan, Error> {
    if targets.is_empty() {
        return Err(Error::Invalid {
            field: "regions".to_owned(),
            rule: "name at least one region with its wanted count".to_owned(),
        });
    }
    let mut machines = super::status::list_app_machines(client, app).await?;
    machines.retain(|m| {
        !m.state.is_terminal()
            && !matches!(
                m.state,
                MachineState::Destroying | MachineState::LaunchFailed
            )
    });
    machines.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let template = match template_id {
        Some(id) => machines
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "template machine",
                id: format!("{id} (app {app})"),
                hint: NextStep::to("call app_status to see the app's machine ids"),
            })?,
        None => machines
            .iter()
            .find(|m| m.state == MachineState::Started)
            .or(machines.first())
            .cloned()
            .ok_or_else(|| Error::Invalid {
                field: "template_machine_id".to_owned(),
                rule: format!(
                    "app {app} has no machine to clone; create one first (provision_environment)"
                ),
            })?,
    };
    let mut template_config = super::full_config(&template, "be cloned as a template")?;
    template_config
        .metadata
        .remove(fly::IDEMPOTENCY_KEY_METADATA);
    // A clone launches with at least the secrets any machine of the app was given
    // (flyctl `internal/command/machine/clone.go` and `scale/count_machines.go` pass
    // `min_secrets_version` on every clone).
    if let Some(v) = super::secrets_floor(&machines) {
        super::record_secrets_version(&mut template_config, v);
    }
    let mut mounts = Vec::new();
    for m in &template_config.mounts {
        let (size_gb, volume_name) = match client.get_volume(app, &m.volume).await {
            Ok(v) => (v.size_gb, v.name),
            Err(e) => {
                return Err(Error::fly(format!(
                    "reading volume {} mounted by template {}",
                    m.volume, template.id
                ))(e));
            }
        };
        mounts.push(TemplateMount {
            volume_name,
            size_gb,
            path: m.path.clone(),
        });
    }
    let mut regions = Vec::new();
    let mut create = Vec::new();
    let mut destroy = Vec::new();
    for (region, &target) in targets {
        let mut here: Vec<&fly::Machine> =
            machines.iter().filter(|m| &m.region == region).collect();
        let current = here.len();
        regions.push(RegionChange {
            region: region.clone(),
            current,
            target,
        });
        if target > current {
            create.extend(std::iter::repeat_n(region.clone(), target - current));
        } else if current > target {
            // Surplus: never the template; stopped before running; newest first.
            here.retain(|m| m.id != template.id);
            here.sort_by(|a, b| {
                let running = |m: &fly::Machine| m.state == MachineState::Started;
                running(a)
                    .cmp(&running(b))
                    .then(b.created_at.cmp(&a.created_at))
            });
            let surplus = current - target;
            if here.len() < surplus {
                return Err(Error::Invalid {
                    field: format!("regions.{region}"),
                    rule: format!(
                        "{target} would destroy the template machine {}; pass another template_machine_id",
                        template.id
                    ),
                });
            }
            destroy.extend(here.into_iter().take(surplus).map(summary));
        }
    }
    if owned_only {
        super::refuse_foreign(
            destroy
                .iter()
                .filter(|d| machines.iter().any(|m| m.id == d.id && !super::is_owned(m)))
                .map(|d| d.id.as_str()),
            |ids| {
                format!(
                    "scaling down would destroy machines {ids} which this server did not create"
                )
            },
        )?;
    }
    Ok(ScalePlan {
        app: app.to_owned(),
        template: summary(&template),
        template_config,
        mounts,
        regions,
        create,
        destroy,
    })
}

fn summary(m: &fly::Machine) -> ScaleMachine {
    ScaleMachine {
        id: m.id.clone(),
        name: m.name.clone(),
        region: m.region.clone(),
        state: m.state.as_str().to_owned(),
    }
}

/// One line of a scale report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleLine {
    /// `Created`, `Destroyed`, `Failed` or `Skipped`.
    pub outcome: Outcome,
    pub id: String,
    pub region: String,
    /// Volumes created for a clone.
    pub volumes: Vec<String>,
    pub error: Option<String>,
}

/// The result of a scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleReport {
    pub app: String,
    pub template: String,
    pub regions: Vec<RegionChange>,
    pub lines: Vec<ScaleLine>,
}

outcome_field!(ScaleLine);

impl ScaleReport {
    /// Lines with this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        outcome::count(&self.lines, outcome)
    }
}

/// A clone to make: its region and a key that makes its create idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CloneJob {
    region: String,
    key: String,
}

impl std::fmt::Display for CloneJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "clone in {}", self.region)
    }
}

/// Runs the plan: clones first (waited on until started), then the surplus destroyed.
pub async fn run_scale(
    client: &fly::Client,
    plan: &ScalePlan,
    start_timeout: Duration,
    ctl: &Control,
) -> ScaleReport {
    let app = plan.app.as_str();
    let call = ulid::Ulid::generate().to_string().to_lowercase();
    let jobs: Vec<CloneJob> = plan
        .create
        .iter()
        .enumerate()
        .map(|(i, region)| CloneJob {
            region: region.clone(),
            key: format!("scale-{call}-{i}"),
        })
        .collect();
    let opts = BulkOptions::with_concurrency(SCALE_CONCURRENCY);
    let volume_creates = tokio::sync::Mutex::new(());
    let volume_creates = &volume_creates;
    let created = run_bulk(jobs, &opts, ctl, |job: CloneJob| async move {
        make_clone(client, plan, &job, start_timeout, volume_creates).await
    })
    .await;
    let mut lines: Vec<ScaleLine> = created
        .items
        .into_iter()
        .map(|item| match item.outcome {
            ItemOutcome::Done((id, volumes)) => ScaleLine {
                outcome: Outcome::Created,
                id,
                region: item.key.region,
                volumes,
                error: None,
            },
            ItemOutcome::Failed(e) => ScaleLine {
                outcome: Outcome::Failed,
                id: String::new(),
                region: item.key.region,
                volumes: Vec::new(),
                error: Some(e.source_text()),
            },
            ItemOutcome::Skipped | ItemOutcome::Cancelled => ScaleLine {
                outcome: Outcome::Skipped,
                id: String::new(),
                region: item.key.region,
                volumes: Vec::new(),
                error: None,
            },
        })
        .collect();
    let destroyed = run_bulk(
        plan.destroy.clone(),
        &opts,
        ctl,
        |m: ScaleMachine| async move {
            match client.destroy_machine(app, &m.id, true, None).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(Error::fly(format!("destroying machine {}", m.id))(e)),
            }
        },
    )
    .await;
    lines.extend(destroyed.items.into_iter().map(|item| {
        let (outcome, error) = match item.outcome {
            ItemOutcome::Done(()) => (Outcome::Destroyed, None),
            ItemOutcome::Failed(e) => (Outcome::Failed, Some(e.source_text())),
            ItemOutcome::Skipped | ItemOutcome::Cancelled => (Outcome::Skipped, None),
        };
        ScaleLine {
            outcome,
            id: item.key.id,
            region: item.key.region,
            volumes: Vec::new(),
            error,
        }
    }));
    ScaleReport {
        app: app.to_owned(),
        template: plan.template.id.clone(),
        regions: plan.regions.clone(),
        lines,
    }
}

/// Volumes for the clone, then the clone itself, then the wait until it started.
async fn make_clone(
    client: &fly::Client,
    plan: &ScalePlan,
    job: &CloneJob,
    start_timeout: Duration,
    volume_creates: &tokio::sync::Mutex<()>,
) -> Result<(String, Vec<String>), Error> {
    let app = plan.app.as_str();
    let mut config = plan.template_config.clone();
    config.metadata.insert(
        super::OWNER_METADATA_KEY.to_owned(),
        super::OWNER_METADATA_VALUE.to_owned(),
    );
    // A retried job finds its machine by key and must not make volumes again.
    if let Some(m) = client
        .find_machine_by_idempotency_key(app, &job.key)
        .await
        .map_err(Error::fly(format!("looking for clone {}", job.key)))?
    {
        let volumes = m
            .config
            .map(|c| c.mounts.into_iter().map(|m| m.volume).collect())
            .unwrap_or_default();
        return Ok((m.id, volumes));
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (template_mount, mount) in plan.mounts.iter().zip(&plan.template_config.mounts) {
        let body = CreateVolume {
            name: template_mount.volume_name.clone(),
            region: job.region.clone(),
            size_gb: Some(template_mount.size_gb),
            ..CreateVolume::default()
        };
        let v = match create_clone_volume(client, app, &body, volume_creates).await {
            Ok(v) => v,
            Err(e) => {
                remove_clone_volumes(client, app, &volumes).await;
                return Err(Error::fly(format!(
                    "creating volume {} in {} for a clone of {}",
                    template_mount.volume_name, job.region, plan.template.id
                ))(e));
            }
        };
        volumes.push(v.id.clone());
        mounts.push(Mount {
            volume: v.id,
            path: template_mount.path.clone(),
            name: Some(v.name),
            ..mount.clone()
        });
    }
    config.mounts = mounts;
    let body = CreateMachine {
        min_secrets_version: super::recorded_secrets_version(&config),
        config,
        region: Some(job.region.clone()),
        ..CreateMachine::default()
    };
    let m = match client.create_machine_idempotent(app, &body, &job.key).await {
        Ok(m) => m,
        Err(e) => {
            // Leave nothing behind: the volumes were made for this clone only.
            remove_clone_volumes(client, app, &volumes).await;
            return Err(Error::fly(format!(
                "creating a clone of {} in {}",
                plan.template.id, job.region
            ))(e));
        }
    };
    client
        .wait_for_state(
            app,
            &m.id,
            &[WaitTarget::Started],
            Some(&m.version),
            None,
            start_timeout,
        )
        .await
        .map_err(Error::fly(format!("waiting for clone {} to start", m.id)))?;
    Ok((m.id, volumes))
}

/// Creates one volume of a clone. A volume create is not idempotent and every clone's
/// volume has the template's name (Fly spreads same-named volumes over hosts), so the
/// clones of one call create theirs one at a time: after an ambiguous failure (a 5xx or
/// a reset, the volume may exist) the volumes are listed again, and a live, unattached
/// volume of that name that was not there before the create is this one; when there is
/// none the create had no effect and is sent again. (A clone of another call creating
/// a same-named volume at the same moment could be taken for ours; scaling one app from
/// two places at once is not guarded against.)
async fn create_clone_volume(
    client: &fly::Client,
    app: &str,
    body: &CreateVolume,
    one_at_a_time: &tokio::sync::Mutex<()>,
) -> Result<fly::Volume, fly::Error> {
    let _turn = one_at_a_time.lock().await;
    let named = |vs: Vec<fly::Volume>| -> Vec<fly::Volume> {
        vs.into_iter()
            .filter(|v| v.name == body.name && v.region == body.region && !v.is_going())
            .collect()
    };
    let before: Vec<String> = named(client.list_volumes(app).await?)
        .into_iter()
        .map(|v| v.id)
        .collect();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.create_volume(app, body).await {
            Ok(v) => return Ok(v),
            Err(e)
                if (e.is_ambiguous() || e.is_retryable()) && attempts < CLONE_VOLUME_ATTEMPTS =>
            {
                let made = named(client.list_volumes(app).await?)
                    .into_iter()
                    .find(|v| !before.contains(&v.id) && !v.is_attached());
                if let Some(v) = made {
                    tracing::debug!(app, volume = %v.id, error = %e, "a volume create answered with an error had made the volume: adopted");
                    return Ok(v);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Volume creates sent for one clone volume while each failure turns out to have made
/// nothing.
const CLONE_VOLUME_ATTEMPTS: usize = 4;

/// Removes the volumes made for a clone that failed (logged when that fails too).
async fn remove_clone_volumes(client: &fly::Client, app: &str, volumes: &[String]) {
    for v in volumes {
        if let Err(err) = client.destroy_volume(app, v).await {
            tracing::warn!(app, volume = %v, error = %err, "could not remove the volume of a failed clone");
        }
    }
}
