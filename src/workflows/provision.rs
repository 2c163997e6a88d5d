//! Provisioning one environment (the per-user dev environment of the Machines API
//! guide, in one call): the plan, the steps and the rollback.
//!
//! Steps: the app (created with an idempotency key if missing; adopted when it is
//! ours; refused when it is someone else's) → shared v4 + v6 IPs and the volume in
//! parallel → the machine (idempotency key in its metadata) → wait until started.
//! Every step first looks at what exists, so running the same spec again converges
//! without duplicates. What this call creates goes into a ledger; on a failed step
//! the ledger is undone in reverse (or, with `rollback: false`, reported with how to
//! resume). [`plan_environment`] reads only: it says what would be created or reused
//! and what it would cost.
//!
//! Knows the Fly client's domain types; never sees reqwest, rmcp or GraphQL types.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use super::{Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE, sched::Control};
use crate::fly;

/// Machine metadata: who the environment is for (the caller's user id or email).
pub const USER_METADATA_KEY: &str = "fly_mcp_user";
/// Machine metadata: when the environment may be reaped (RFC 3339).
pub const EXPIRES_AT_METADATA_KEY: &str = "fly_mcp_expires_at";
/// Fly's published price of memory above a preset's, USD per GB per month.
pub const EXTRA_MEMORY_USD_PER_GB_MONTH: f64 = 5.0;
/// Fly's published volume price, USD per provisioned GB per month.
pub const VOLUME_USD_PER_GB_MONTH: f64 = 0.15;

fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"fly-machines-mcp/provision");
    for p in parts {
        h.update(b"\0");
        h.update(p.as_bytes());
    }
    let digest = hex::encode(h.finalize());
    format!("prov-{}", digest.get(..24).unwrap_or(&digest))
}

/// CPU and memory of the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum GuestSpec {
    /// Fly's default: shared CPU, 1 CPU, 256 MB.
    Default,
    /// A VM size preset by name (`shared-cpu-1x`, `performance-2x`, ... as
    /// `platform_info` lists them), optionally with more memory.
    Preset {
        name: String,
        memory_mb: Option<u32>,
    },
    /// Explicit sizes.
    Custom {
        cpu_kind: String,
        cpus: u32,
        memory_mb: u32,
    },
}

/// The volume and where it is mounted.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSpec {
    pub name: String,
    pub size_gb: u64,
    pub path: String,
    /// Grow automatically: `(threshold_percent, add_size_gb, size_gb_limit)`.
    pub auto_extend: Option<(u32, u32, u32)>,
}

/// Everything an environment is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvSpec {
    pub app: String,
    pub org: String,
    pub region: String,
    pub image: String,
    /// Replaces the image's CMD.
    pub cmd: Option<Vec<String>>,
    pub guest: GuestSpec,
    pub volume: Option<VolumeSpec>,
    pub services: Vec<fly::MachineService>,
    pub checks: BTreeMap<String, fly::MachineCheck>,
    pub env: BTreeMap<String, String>,
    /// Who the environment is for (metadata `fly_mcp_user`).
    pub user: Option<String>,
    /// When it may be reaped (metadata `fly_mcp_expires_at`, RFC 3339).
    pub expires_at: Option<String>,
    pub machine_name: String,
    /// Allocate a shared IPv4 and an IPv6 address.
    pub public_ips: bool,
    /// Caller's idempotency key; derived from org, app and machine name when empty.
    pub idempotency_key: Option<String>,
    /// Longest wait for the machine to start.
    pub wait_timeout: Duration,
    /// App secrets set once the app exists, before the machine is created (so the
    /// machine boots with them).
    pub secrets: AppSecrets,
}

/// Secret values for an app. Debug shows names only; equality compares names.
#[derive(Debug, Clone, Default)]
pub struct AppSecrets(pub BTreeMap<String, secrecy::SecretString>);

impl PartialEq for AppSecrets {
    fn eq(&self, other: &Self) -> bool {
        self.0.keys().eq(other.0.keys())
    }
}

impl EnvSpec {
    /// The key the app create and the machine metadata carry. Stable for the same
    /// org, app and machine name (or the caller's key), so a re-run converges.
    pub fn idempotency_key(&self) -> String {
        key_of(&[
            "machine",
            &self.org,
            &self.app,
            &self.machine_name,
            self.idempotency_key.as_deref().unwrap_or(""),
        ])
    }

    /// The app create's key: the same for every machine of the app, so provisioning
    /// a second machine into an app adopts it.
    fn app_key(&self) -> String {
        key_of(&[
            "app",
            &self.org,
            &self.app,
            self.idempotency_key.as_deref().unwrap_or(""),
        ])
    }

    /// `https://APP.fly.dev`.
    pub fn url(&self) -> String {
        format!("https://{}.fly.dev", self.app)
    }
}

/// A resource a workflow found, created or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    App { name: String },
    Ip { address: String, kind: String },
    Volume { id: String, name: String },
    Machine { id: String, name: String },
}

impl Resource {
    /// `app`, `ip`, `volume` or `machine`.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::App { .. } => "app",
            Resource::Ip { .. } => "ip",
            Resource::Volume { .. } => "volume",
            Resource::Machine { .. } => "machine",
        }
    }

    /// The id the next call needs (app name, address, volume or machine id).
    pub fn id(&self) -> &str {
        match self {
            Resource::App { name } => name,
            Resource::Ip { address, .. } => address,
            Resource::Volume { id, .. } => id,
            Resource::Machine { id, .. } => id,
        }
    }

    /// A short human description: `volume vol_123 (data)`.
    pub fn describe(&self) -> String {
        match self {
            Resource::App { name } => format!("app {name}"),
            Resource::Ip { address, kind } => format!("ip {address} ({kind})"),
            Resource::Volume { id, name } => format!("volume {id} ({name})"),
            Resource::Machine { id, name } => format!("machine {id} ({name})"),
        }
    }
}

/// What a step will do (plan) or did (result) with one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepAction {
    Create,
    Reuse,
}

impl StepAction {
    /// `create` or `reuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Create => "create",
            StepAction::Reuse => "reuse",
        }
    }
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// `app`, `ip`, `volume`, `machine`.
    pub kind: &'static str,
    pub action: StepAction,
    /// What, e.g. `shared_v4` or `vol_123 (data, 1 GB, iad)`.
    pub detail: String,
}

/// Estimated monthly cost of an environment running all month.
#[derive(Debug, Clone, PartialEq)]
pub struct CostEstimate {
    pub machine_usd: f64,
    pub volume_usd: f64,
    pub total_usd: f64,
    /// How the numbers were made.
    pub basis: String,
}

/// What [`plan_environment`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvPlan {
    pub app: String,
    pub url: String,
    pub steps: Vec<PlannedStep>,
    pub guest: fly::GuestConfig,
    pub cost: Option<CostEstimate>,
    pub idempotency_key: String,
}

/// What a successful provision answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Provisioned {
    pub app: String,
    pub org: String,
    pub url: String,
    pub region: String,
    pub machine_id: String,
    pub machine_name: String,
    pub machine_state: String,
    pub volume_id: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// Created by this call.
    pub created: Vec<Resource>,
    /// Already there and reused (a re-run of the same spec reuses everything).
    pub reused: Vec<Resource>,
    pub idempotency_key: String,
    pub elapsed: Duration,
}

/// Resolves the guest: presets via `vm_sizes` (GraphQL), defaults without a call.
pub async fn resolve_guest(
    client: &fly::Client,
    guest: &GuestSpec,
) -> Result<(fly::GuestConfig, Option<Vec<fly::VmSize>>), Error> {
    match guest {
        GuestSpec::Default => Ok((guest_config("shared", 1, 256), None)),
        GuestSpec::Custom {
            cpu_kind,
            cpus,
            memory_mb,
        } => Ok((guest_config(cpu_kind, *cpus, *memory_mb), None)),
        GuestSpec::Preset { name, memory_mb } => {
            let sizes = client
                .vm_sizes()
                .await
                .map_err(Error::fly("listing VM sizes"))?;
            let size = sizes
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| Error::Invalid {
                    field: "guest.preset".to_owned(),
                    rule: format!(
                        "unknown VM size '{name}' (known: {}; platform_info lists them with prices)",
                        sizes
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            let kind = if size.name.starts_with("performance") {
                "performance"
            } else {
                "shared"
            };
            let cpus = size.cpu_cores.round().max(1.0) as u32;
            let base = u32::try_from(size.memory_mb).unwrap_or(256);
            let memory = memory_mb.unwrap_or(base).max(base);
            Ok((guest_config(kind, cpus, memory), Some(sizes)))
        }
    }
}

fn guest_config(kind: &str, cpus: u32, memory_mb: u32) -> fly::GuestConfig {
    fly::GuestConfig {
        cpu_kind: kind.to_owned(),
        cpus,
        memory_mb,
        ..fly::GuestConfig::default()
    }
}

/// Monthly cost of `guest` (running all month) plus `volume_gb`, from VM size prices:
/// the preset with the same CPU kind and count, plus memory above the preset's at
/// [`EXTRA_MEMORY_USD_PER_GB_MONTH`]; volumes at [`VOLUME_USD_PER_GB_MONTH`].
pub fn estimate_cost(
    guest: &fly::GuestConfig,
    volume_gb: u64,
    sizes: &[fly::VmSize],
) -> Option<CostEstimate> {
    let preset = sizes.iter().find(|s| {
        let kind_ok = if guest.cpu_kind == "performance" {
            s.name.starts_with("performance")
        } else {
            s.name.starts_with("shared")
        };
        kind_ok && (s.cpu_cores.round() as u32) == guest.cpus
    })?;
    let extra_mb = i64::from(guest.memory_mb)
        .saturating_sub(preset.memory_mb)
        .max(0);
    let extra = extra_mb as f64 / 1024.0 * EXTRA_MEMORY_USD_PER_GB_MONTH;
    let machine = preset.price_month + extra;
    let volume = volume_gb as f64 * VOLUME_USD_PER_GB_MONTH;
    Some(CostEstimate {
        machine_usd: round_cents(machine),
        volume_usd: round_cents(volume),
        total_usd: round_cents(machine + volume),
        basis: format!(
            "{} at ${:.2}/month{}{}; running all month (autostop lowers it); shared IPv4 and IPv6 are free",
            preset.name,
            preset.price_month,
            if extra_mb > 0 {
                format!(" + {extra_mb} MB extra memory at ${EXTRA_MEMORY_USD_PER_GB_MONTH:.2}/GB")
            } else {
                String::new()
            },
            if volume_gb > 0 {
                format!(" + {volume_gb} GB volume at ${VOLUME_USD_PER_GB_MONTH:.2}/GB")
            } else {
                String::new()
            }
        ),
    })
}

fn round_cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The machine config the spec describes (mount filled in by the caller).
pub fn machine_config(
    spec: &EnvSpec,
    guest: fly::GuestConfig,
    volume_id: Option<&str>,
) -> fly::MachineConfig {
    let mut metadata = BTreeMap::new();
    metadata.insert(
        OWNER_METADATA_KEY.to_owned(),
        OWNER_METADATA_VALUE.to_owned(),
    );
    if let Some(user) = &spec.user {
        metadata.insert(USER_METADATA_KEY.to_owned(), user.clone());
    }
    if let Some(at) = &spec.expires_at {
        metadata.insert(EXPIRES_AT_METADATA_KEY.to_owned(), at.clone());
    }
    let mounts = match (&spec.volume, volume_id) {
        (Some(v), Some(id)) => vec![fly::Mount {
            volume: id.to_owned(),
            path: v.path.clone(),
            name: Some(v.name.clone()),
            extend_threshold_percent: v.auto_extend.map(|a| a.0),
            add_size_gb: v.auto_extend.map(|a| a.1),
            size_gb_limit: v.auto_extend.map(|a| a.2),
            ..fly::Mount::default()
        }],
        _ => Vec::new(),
    };
    fly::MachineConfig {
        image: spec.image.clone(),
        guest: Some(guest),
        env: spec.env.clone(),
        metadata,
        services: spec.services.clone(),
        checks: spec.checks.clone(),
        mounts,
        init: spec.cmd.as_ref().map(|cmd| fly::InitConfig {
            cmd: Some(cmd.clone()),
            ..fly::InitConfig::default()
        }),
        ..fly::MachineConfig::default()
    }
}

/// What exists of an environment right now (read-only).
#[derive(Debug, Clone, Default)]
struct Existing {
    app: Option<fly::App>,
    shared_v4: Option<String>,
    v6: Option<String>,
    volume: Option<fly::Volume>,
    machine: Option<fly::Machine>,
}

async fn look(client: &fly::Client, spec: &EnvSpec) -> Result<Existing, Error> {
    let app = match client.get_app(&spec.app).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => return Ok(Existing::default()),
        Err(e) => return Err(Error::fly(format!("reading app {}", spec.app))(e)),
    };
    let key = spec.idempotency_key();
    let (ips, volume, machine) = futures::try_join!(
        existing_ips(client, &spec.app),
        existing_volume(client, spec),
        async {
            client
                .find_machine_by_idempotency_key(&spec.app, &key)
                .await
                .map_err(Error::fly(format!(
                    "looking up the machine of app {}",
                    spec.app
                )))
        }
    )?;
    Ok(Existing {
        app: Some(app),
        shared_v4: ips.0,
        v6: ips.1,
        volume,
        machine,
    })
}

async fn existing_ips(
    client: &fly::Client,
    app: &str,
) -> Result<(Option<String>, Option<String>), Error> {
    let ips = client
        .list_ip_assignments(app)
        .await
        .map_err(Error::fly(format!("listing IPs of app {app}")))?;
    let find = |kind: &str| {
        ips.iter()
            .find(|ip| ip.kind() == kind)
            .and_then(|ip| ip.ip.clone())
    };
    Ok((find("shared_v4"), find("v6")))
}

async fn existing_volume(
    client: &fly::Client,
    spec: &EnvSpec,
) -> Result<Option<fly::Volume>, Error> {
    let Some(v) = &spec.volume else {
        return Ok(None);
    };
    let vols = client
        .list_volumes(&spec.app)
        .await
        .map_err(Error::fly(format!("listing volumes of app {}", spec.app)))?;
    Ok(pick_volume(vols, v, &spec.region))
}

fn pick_volume(vols: Vec<fly::Volume>, v: &VolumeSpec, region: &str) -> Option<fly::Volume> {
    vols.into_iter()
        .find(|vol| vol.name == v.name && vol.region == region && !vol.is_going())
}

/// Says what [`provision_environment`] would create or reuse, and what it would cost.
/// Reads only.
pub async fn plan_environment(client: &fly::Client, spec: &EnvSpec) -> Result<EnvPlan, Error> {
    let (guest, sizes) = resolve_guest(client, &spec.guest).await?;
    let existing = look(client, spec).await?;
    let sizes = match sizes {
        Some(s) => s,
        None => client
            .vm_sizes()
            .await
            .map_err(Error::fly("listing VM sizes"))?,
    };
    let mut steps = Vec::new();
    let step = |kind, found: bool, detail: String| PlannedStep {
        kind,
        action: if found {
            StepAction::Reuse
        } else {
            StepAction::Create
        },
        detail,
    };
    steps.push(step(
        "app",
        existing.app.is_some(),
        format!("{} in org {}", spec.app, spec.org),
    ));
    if spec.public_ips {
        steps.push(step(
            "ip",
            existing.shared_v4.is_some(),
            existing
                .shared_v4
                .clone()
                .map_or("shared_v4".to_owned(), |a| format!("shared_v4 {a}")),
        ));
        steps.push(step(
            "ip",
            existing.v6.is_some(),
            existing
                .v6
                .clone()
                .map_or("v6".to_owned(), |a| format!("v6 {a}")),
        ));
    }
    if let Some(v) = &spec.volume {
        steps.push(step(
            "volume",
            existing.volume.is_some(),
            match &existing.volume {
                Some(vol) => format!(
                    "{} ({}, {} GB, {})",
                    vol.id, vol.name, vol.size_gb, vol.region
                ),
                None => format!(
                    "{} ({} GB, {}) mounted at {}",
                    v.name, v.size_gb, spec.region, v.path
                ),
            },
        ));
    }
    steps.push(step(
        "machine",
        existing.machine.is_some(),
        match &existing.machine {
            Some(m) => format!("{} ({}, {})", m.id, m.name, m.state),
            None => format!(
                "{} ({}, {} {}x{} MB, {})",
                spec.machine_name,
                spec.image,
                guest.cpu_kind,
                guest.cpus,
                guest.memory_mb,
                spec.region
            ),
        },
    ));
    let volume_gb = match (&existing.volume, &spec.volume) {
        (Some(vol), _) => vol.size_gb,
        (None, Some(v)) => v.size_gb,
        (None, None) => 0,
    };
    Ok(EnvPlan {
        app: spec.app.clone(),
        url: spec.url(),
        steps,
        cost: estimate_cost(&guest, volume_gb, &sizes),
        guest,
        idempotency_key: spec.idempotency_key(),
    })
}

/// The resources this call created, in creation order. Parallel steps push into it
/// as soon as something exists, so a failure in one branch still sees the other's.
#[derive(Debug, Default)]
struct Ledger(Mutex<Vec<Resource>>);

impl Ledger {
    fn push(&self, r: Resource) {
        match self.0.lock() {
            Ok(mut v) => v.push(r),
            Err(poisoned) => poisoned.into_inner().push(r),
        }
    }

    fn take(&self) -> Vec<Resource> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// A provision that failed part-way: what failed, what this call had created, what
/// was undone and what is left.
#[derive(Debug)]
pub struct ProvisionFailure {
    pub step: String,
    pub error: Error,
    pub created: Vec<Resource>,
    pub rolled_back: Vec<Resource>,
    /// Created by this call and still there (rollback off, or a rollback step failed).
    pub left: Vec<Resource>,
    pub rollback_errors: Vec<String>,
}

impl ProvisionFailure {
    /// The domain error the tool layer returns: the cause plus exactly what exists
    /// now and how to resume.
    pub fn into_error(self, app: &str, rollback: bool) -> Error {
        let list = |rs: &[Resource]| {
            if rs.is_empty() {
                "nothing".to_owned()
            } else {
                rs.iter()
                    .map(Resource::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut report = String::new();
        if rollback {
            report.push_str(&format!("rolled back {}", list(&self.rolled_back)));
            if !self.left.is_empty() {
                report.push_str(&format!(
                    "; could not remove {} ({}); call teardown_environment for app {app} to remove them",
                    list(&self.left),
                    self.rollback_errors.join("; ")
                ));
            } else {
                report.push_str(" (only what this call created; nothing it created is left)");
            }
        } else {
            report.push_str(&format!(
                "left in place as asked (rollback: false): {}; to resume, call provision_environment again with the same arguments (it reuses what exists); to remove everything, call teardown_environment for app {app}",
                list(&self.left)
            ));
        }
        Error::Partial {
            step: self.step,
            report,
            source: Box::new(self.error),
        }
    }
}

/// Provisions the environment; on a failed step undoes what this call created
/// (unless `rollback` is false) and says what is left.
pub async fn provision_environment(
    client: &fly::Client,
    spec: &EnvSpec,
    rollback: bool,
    ctl: &Control,
) -> Result<Provisioned, ProvisionFailure> {
    let started = Instant::now();
    let ledger = Ledger::default();
    let mut reused = Vec::new();
    let outcome = provision_steps(client, spec, ctl, &ledger, &mut reused).await;
    match outcome {
        Ok(mut done) => {
            done.created = ledger.take();
            done.reused = reused;
            done.elapsed = started.elapsed();
            Ok(done)
        }
        Err((step, error)) => {
            let created = ledger.take();
            let (rolled_back, left, rollback_errors) = if rollback {
                ctl.progress.report(
                    0,
                    None,
                    format!("{step} failed; rolling back what this call created"),
                );
                undo(client, &spec.app, &created, spec.wait_timeout).await
            } else {
                (Vec::new(), created.clone(), Vec::new())
            };
            Err(ProvisionFailure {
                step,
                error,
                created,
                rolled_back,
                left,
                rollback_errors,
            })
        }
    }
}

const TOTAL_STEPS: u32 = 4;

async fn provision_steps(
    client: &fly::Client,
    spec: &EnvSpec,
    ctl: &Control,
    ledger: &Ledger,
    reused: &mut Vec<Resource>,
) -> Result<Provisioned, (String, Error)> {
    let at = |step: &str| {
        let step = step.to_owned();
        move |e: Error| (step, e)
    };
    let progress = &ctl.progress;

    // 1. The app.
    progress.report(0, Some(TOTAL_STEPS), format!("app {}", spec.app));
    ctl.guard("ensuring the app", ensure_app(client, spec, ledger, reused))
        .await
        .map_err(at("app"))?;
    // The version the secrets write answers goes on the machine create as
    // `min_secrets_version`, as flyctl does on every launch after a secrets write
    // (`internal/appsecrets/minvers.go`, `deploy/machines_launchinput.go`): without it
    // the machine may boot before its host has seen the new secrets.
    let mut secrets_version = None;
    if !spec.secrets.0.is_empty() {
        let changes = spec
            .secrets
            .0
            .iter()
            .map(|(name, value)| (name.clone(), Some(value.clone())))
            .collect();
        let written = ctl
            .guard("setting app secrets", async {
                client
                    .update_secrets(&spec.app, &changes)
                    .await
                    .map_err(Error::fly(format!("setting secrets of app {}", spec.app)))
            })
            .await
            .map_err(at("secrets"))?;
        secrets_version = Some(written.version).filter(|v| *v > 0);
    }
    let (guest, _) = ctl
        .guard("resolving the VM size", resolve_guest(client, &spec.guest))
        .await
        .map_err(at("guest size"))?;

    // 2. IPs and the volume, in parallel.
    progress.report(1, Some(TOTAL_STEPS), "IPs and volume");
    let ips_fut = async {
        if spec.public_ips {
            ctl.guard("allocating IPs", ensure_ips(client, &spec.app, ledger))
                .await
        } else {
            Ok(IpsOutcome::default())
        }
    };
    let vol_fut = async {
        match &spec.volume {
            Some(v) => ctl
                .guard(
                    "creating the volume",
                    ensure_volume(client, spec, v, ledger),
                )
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (ips, vol) = futures::join!(ips_fut, vol_fut);
    let ips = ips.map_err(at("IPs"))?;
    let vol = vol.map_err(at("volume"))?;
    reused.extend(ips.reused.iter().cloned());
    let volume_id = match &vol {
        Some((v, created)) => {
            if !created {
                reused.push(Resource::Volume {
                    id: v.id.clone(),
                    name: v.name.clone(),
                });
            }
            Some(v.id.clone())
        }
        None => None,
    };

    // 3. The machine.
    progress.report(
        2,
        Some(TOTAL_STEPS),
        format!("machine {}", spec.machine_name),
    );
    let mut config = machine_config(spec, guest, volume_id.as_deref());
    if let Some(v) = secrets_version {
        super::record_secrets_version(&mut config, v);
    }
    let (machine, created) = ctl
        .guard(
            "creating the machine",
            ensure_machine(client, spec, config, secrets_version, ledger),
        )
        .await
        .map_err(at("machine"))?;
    if !created {
        reused.push(Resource::Machine {
            id: machine.id.clone(),
            name: machine.name.clone(),
        });
    }

    // 4. Wait until started.
    progress.report(
        3,
        Some(TOTAL_STEPS),
        format!("waiting for machine {} to start", machine.id),
    );
    let state = ctl
        .guard(
            "waiting for the machine to start",
            wait_started(client, &spec.app, &machine, spec.wait_timeout),
        )
        .await
        .map_err(at("start"))?;
    progress.report(
        TOTAL_STEPS,
        Some(TOTAL_STEPS),
        format!("machine {} {state}", machine.id),
    );

    Ok(Provisioned {
        app: spec.app.clone(),
        org: spec.org.clone(),
        url: spec.url(),
        region: machine.region.clone(),
        machine_id: machine.id.clone(),
        machine_name: machine.name.clone(),
        machine_state: state,
        volume_id,
        ipv4: ips.shared_v4,
        ipv6: ips.v6,
        created: Vec::new(),
        reused: Vec::new(),
        idempotency_key: spec.idempotency_key(),
        elapsed: Duration::ZERO,
    })
}

/// Creates the app if missing; adopts it if ours; refuses someone else's.
async fn ensure_app(
    client: &fly::Client,
    spec: &EnvSpec,
    ledger: &Ledger,
    reused: &mut Vec<Resource>,
) -> Result<(), Error> {
    let body = fly::CreateApp {
        name: spec.app.clone(),
        org_slug: spec.org.clone(),
        idempotency_key: Some(spec.app_key()),
        ..fly::CreateApp::default()
    };
    match client.get_app(&spec.app).await {
        Ok(existing) => {
            // `personal` is an alias of the caller's personal org, whatever its slug.
            if let Some(org) = &existing.organization
                && spec.org != "personal"
                && !org.slug.is_empty()
                && org.slug != spec.org
            {
                return Err(refuse_app(
                    &spec.app,
                    &format!("it belongs to org {}, not {}", org.slug, spec.org),
                ));
            }
            // Ours if our idempotent create answers with the same app, or if it
            // already carries a machine this server created.
            let ours = match client.create_app(&body).await {
                Ok(created) => created.id == existing.id || created.id.is_empty(),
                Err(e) if e.code() == Some("name_taken") || e.status() == Some(422) => {
                    owns_a_machine(client, &spec.app).await?
                }
                Err(e) => {
                    return Err(Error::fly(format!(
                        "checking ownership of app {}",
                        spec.app
                    ))(e));
                }
            };
            if !ours {
                return Err(refuse_app(
                    &spec.app,
                    "it was not created by this server (no provision key, no machine with its ownership metadata)",
                ));
            }
            reused.push(Resource::App {
                name: spec.app.clone(),
            });
            Ok(())
        }
        Err(e) if e.is_not_found() => match client.create_app(&body).await {
            Ok(_) => {
                ledger.push(Resource::App {
                    name: spec.app.clone(),
                });
                Ok(())
            }
            Err(e) if e.code() == Some("name_taken") => Err(refuse_app(
                &spec.app,
                "the name is taken (app names are global across Fly)",
            )),
            Err(e) => Err(Error::fly(format!("creating app {}", spec.app))(e)),
        },
        Err(e) if e.status() == Some(403) => Err(refuse_app(
            &spec.app,
            "the name is taken by an app this token cannot see",
        )),
        Err(e) => Err(Error::fly(format!("reading app {}", spec.app))(e)),
    }
}

fn refuse_app(app: &str, why: &str) -> Error {
    Error::Refused {
        rule: "app ownership".to_owned(),
        message: format!("app {app} exists and {why}; choose another app name"),
    }
}

/// Whether the app holds a live machine carrying this server's ownership metadata. The
/// list asks Fly to filter on that metadata (`metadata.{key}=value`) and for a summary,
/// which leaves `config` out (spec: `summary` "leaves out config, checks, events"), so
/// a machine the filter returned without a config counts: the filter is the proof. One
/// that does come with a config must carry the key itself (a server that ignored the
/// filter would otherwise make any app look ours).
async fn owns_a_machine(client: &fly::Client, app: &str) -> Result<bool, Error> {
    let filter = fly::MachineFilter {
        metadata: vec![(
            OWNER_METADATA_KEY.to_owned(),
            OWNER_METADATA_VALUE.to_owned(),
        )],
        summary: true,
        ..fly::MachineFilter::default()
    };
    let list = client
        .list_machines(app, &filter)
        .await
        .map_err(Error::fly(format!("listing machines of app {app}")))?;
    Ok(list.iter().any(|m| {
        !m.state.is_terminal()
            && match &m.config {
                None => true,
                Some(_) => m.metadata(OWNER_METADATA_KEY) == Some(OWNER_METADATA_VALUE),
            }
    }))
}

#[derive(Debug, Default)]
struct IpsOutcome {
    shared_v4: Option<String>,
    v6: Option<String>,
    reused: Vec<Resource>,
}

/// Allocates whichever of shared v4 and v6 the app lacks (both in parallel).
async fn ensure_ips(client: &fly::Client, app: &str, ledger: &Ledger) -> Result<IpsOutcome, Error> {
    let (shared, v6) = existing_ips(client, app).await?;
    let mut out = IpsOutcome::default();
    for (addr, kind) in [(&shared, "shared_v4"), (&v6, "v6")] {
        if let Some(a) = addr {
            out.reused.push(Resource::Ip {
                address: a.clone(),
                kind: kind.to_owned(),
            });
        }
    }
    let alloc = |kind: fly::IpType, have: Option<String>| async move {
        match have {
            Some(a) => Ok(a),
            None => allocate_ip(client, app, kind, ledger).await,
        }
    };
    let (shared, v6) = futures::try_join!(
        alloc(fly::IpType::SharedV4, shared),
        alloc(fly::IpType::V6, v6)
    )?;
    out.shared_v4 = Some(shared);
    out.v6 = Some(v6);
    Ok(out)
}

async fn allocate_ip(
    client: &fly::Client,
    app: &str,
    kind: fly::IpType,
    ledger: &Ledger,
) -> Result<String, Error> {
    let step = || format!("allocating a {} address for app {app}", kind.as_str());
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client
            .allocate_ip_assignment(app, &fly::AllocateIp::new(kind))
            .await
        {
            Ok(ip) => {
                let address = ip.ip.unwrap_or_default();
                ledger.push(Resource::Ip {
                    address: address.clone(),
                    kind: kind.as_str().to_owned(),
                });
                return Ok(address);
            }
            Err(e) if (e.is_ambiguous() || e.is_retryable()) && attempts < 4 => {
                // It may have been allocated: look before asking again.
                let (shared, v6) = existing_ips(client, app).await?;
                let found = match kind {
                    fly::IpType::SharedV4 => shared,
                    _ => v6,
                };
                if let Some(address) = found {
                    ledger.push(Resource::Ip {
                        address: address.clone(),
                        kind: kind.as_str().to_owned(),
                    });
                    return Ok(address);
                }
            }
            Err(e) => return Err(Error::fly(step())(e)),
        }
    }
}

/// Reuses the named volume in the region, or creates it (looking before a retry).
async fn ensure_volume(
    client: &fly::Client,
    spec: &EnvSpec,
    v: &VolumeSpec,
    ledger: &Ledger,
) -> Result<(fly::Volume, bool), Error> {
    if let Some(vol) = existing_volume(client, spec).await? {
        return Ok((vol, false));
    }
    let body = fly::CreateVolume {
        name: v.name.clone(),
        region: spec.region.clone(),
        size_gb: Some(v.size_gb),
        ..fly::CreateVolume::default()
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.create_volume(&spec.app, &body).await {
            Ok(vol) => {
                ledger.push(Resource::Volume {
                    id: vol.id.clone(),
                    name: vol.name.clone(),
                });
                return Ok((vol, true));
            }
            Err(e) if (e.is_ambiguous() || e.is_retryable()) && attempts < 4 => {
                if let Some(vol) = existing_volume(client, spec).await? {
                    ledger.push(Resource::Volume {
                        id: vol.id.clone(),
                        name: vol.name.clone(),
                    });
                    return Ok((vol, true));
                }
            }
            Err(e) => {
                return Err(Error::fly(format!(
                    "creating volume {} in {} for app {}",
                    v.name, spec.region, spec.app
                ))(e));
            }
        }
    }
}

/// Reuses the machine carrying this spec's idempotency key (starting it when it is
/// stopped or suspended), or creates it.
async fn ensure_machine(
    client: &fly::Client,
    spec: &EnvSpec,
    config: fly::MachineConfig,
    min_secrets_version: Option<u64>,
    ledger: &Ledger,
) -> Result<(fly::Machine, bool), Error> {
    let key = spec.idempotency_key();
    let step = || format!("creating machine {} in app {}", spec.machine_name, spec.app);
    if let Some(m) = client
        .find_machine_by_idempotency_key(&spec.app, &key)
        .await
        .map_err(Error::fly(step()))?
    {
        if matches!(
            m.state,
            fly::MachineState::Stopped | fly::MachineState::Suspended | fly::MachineState::Created
        ) {
            client
                .start_machine(&spec.app, &m.id, None)
                .await
                .map_err(Error::fly(format!("starting machine {}", m.id)))?;
        }
        return Ok((m, false));
    }
    let body = fly::CreateMachine {
        config,
        name: Some(spec.machine_name.clone()),
        region: Some(spec.region.clone()),
        min_secrets_version,
        ..fly::CreateMachine::default()
    };
    let m = client
        .create_machine_idempotent(&spec.app, &body, &key)
        .await
        .map_err(Error::fly(step()))?;
    ledger.push(Resource::Machine {
        id: m.id.clone(),
        name: m.name.clone(),
    });
    Ok((m, true))
}

/// Waits until `machine` is started (or failed, which is an error).
async fn wait_started(
    client: &fly::Client,
    app: &str,
    machine: &fly::Machine,
    deadline: Duration,
) -> Result<String, Error> {
    if machine.state == fly::MachineState::Started {
        return Ok(machine.state.to_string());
    }
    let outcome = client
        .wait_for_state(
            app,
            &machine.id,
            &[fly::WaitTarget::Started, fly::WaitTarget::Failed],
            None,
            None,
            deadline,
        )
        .await
        .map_err(Error::fly(format!(
            "waiting for machine {} to start",
            machine.id
        )))?;
    match outcome.state {
        Some(fly::MachineState::Failed) => Err(Error::Invalid {
            field: "machine".to_owned(),
            rule: format!(
                "machine {} failed to start; call machine_info for its events",
                machine.id
            ),
        }),
        Some(s) => Ok(s.to_string()),
        None => Ok(fly::MachineState::Started.to_string()),
    }
}

/// Removes `created` in reverse order. When this call created the app, deleting
/// the app removes everything in it. Returns (removed, left, errors).
async fn undo(
    client: &fly::Client,
    app: &str,
    created: &[Resource],
    wait: Duration,
) -> (Vec<Resource>, Vec<Resource>, Vec<String>) {
    // Undoing what this call created deletes it: a write call's token gets delete on
    // the app for the rollback (and only the rollback).
    let client = &client.for_rollback();
    let mut removed = Vec::new();
    let mut left = Vec::new();
    let mut errors = Vec::new();
    if created.iter().any(|r| matches!(r, Resource::App { .. })) {
        match delete_app_fully(client, app, wait).await {
            Ok(()) => removed.extend(created.iter().rev().cloned()),
            Err(e) => {
                errors.push(e.source_text());
                left.extend(created.iter().cloned());
            }
        }
        return (removed, left, errors);
    }
    for r in created.iter().rev() {
        let result = match r {
            Resource::Machine { id, .. } => destroy_machine_fully(client, app, id, wait).await,
            Resource::Volume { id, .. } => destroy_volume_retrying(client, app, id, wait).await,
            Resource::Ip { address, .. } => release_ip(client, app, address).await,
            Resource::App { .. } => Ok(()),
        };
        match result {
            Ok(()) => removed.push(r.clone()),
            Err(e) => {
                errors.push(e.source_text());
                left.push(r.clone());
            }
        }
    }
    (removed, left, errors)
}

/// Destroys a machine (force) and waits until it is gone. Gone already is fine.
pub(crate) async fn destroy_machine_fully(
    client: &fly::Client,
    app: &str,
    id: &str,
    wait: Duration,
) -> Result<(), Error> {
    match client.destroy_machine(app, id, true, None).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => {
            return Err(Error::fly(format!("destroying machine {id} of app {app}"))(
                e,
            ));
        }
    }
    match client
        .wait_for_state(app, id, &[fly::WaitTarget::Destroyed], None, None, wait)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!(
            "waiting for machine {id} to be destroyed"
        ))(e)),
    }
}

/// Destroys a volume, retrying while its machine is still being destroyed.
pub(crate) async fn destroy_volume_retrying(
    client: &fly::Client,
    app: &str,
    id: &str,
    wait: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match client.destroy_volume(app, id).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if started.elapsed() < wait && (e.status() == Some(412) || e.is_retryable()) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                return Err(Error::fly(format!("destroying volume {id} of app {app}"))(
                    e,
                ));
            }
        }
    }
}

/// Releases an IP; already released is fine.
pub(crate) async fn release_ip(
    client: &fly::Client,
    app: &str,
    address: &str,
) -> Result<(), Error> {
    match client.release_ip_assignment(app, address).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!("releasing IP {address} of app {app}"))(
            e,
        )),
    }
}

/// Deletes an app (force) and confirms it is gone.
pub(crate) async fn delete_app_fully(
    client: &fly::Client,
    app: &str,
    wait: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match client.delete_app(app, true).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if started.elapsed() < wait && e.is_retryable() => {}
            Err(e) => return Err(Error::fly(format!("deleting app {app}"))(e)),
        }
        match client.get_app(app).await {
            Err(e) if e.is_not_found() => return Ok(()),
            Ok(_) | Err(_) if started.elapsed() < wait => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Ok(_) => {
                return Err(Error::Invalid {
                    field: "app".to_owned(),
                    rule: format!("app {app} still exists after deletion"),
                });
            }
            Err(e) => return Err(Error::fly(format!("confirming app {app} is gone"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(name: &str, cpus: f64, mem: i64, month: f64) -> fly::VmSize {
        fly::VmSize {
            name: name.into(),
            cpu_cores: cpus,
            memory_mb: mem,
            memory_gb: mem as f64 / 1024.0,
            max_memory_mb: mem * 8,
            memory_increments_mb: vec![256],
            price_month: month,
            price_second: month / 2_592_000.0,
        }
    }

    fn spec() -> EnvSpec {
        EnvSpec {
            app: "dev-alice".into(),
            org: "personal".into(),
            region: "iad".into(),
            image: "nginx:latest".into(),
            cmd: None,
            guest: GuestSpec::Default,
            volume: Some(VolumeSpec {
                name: "data".into(),
                size_gb: 1,
                path: "/data".into(),
                auto_extend: Some((80, 1, 10)),
            }),
            services: Vec::new(),
            checks: BTreeMap::new(),
            env: BTreeMap::new(),
            user: Some("alice".into()),
            expires_at: Some("2030-01-01T00:00:00Z".into()),
            machine_name: "env".into(),
            public_ips: true,
            idempotency_key: None,
            wait_timeout: Duration::from_secs(5),
            secrets: AppSecrets::default(),
        }
    }

    #[test]
    fn cost_uses_the_matching_preset_plus_extra_memory_and_volume() {
        let sizes = [
            size("shared-cpu-1x", 1.0, 256, 1.94),
            size("performance-1x", 1.0, 2048, 32.19),
        ];
        let c = estimate_cost(&guest_config("shared", 1, 1024), 10, &sizes).unwrap();
        assert_eq!(c.machine_usd, 5.69);
        assert_eq!(c.volume_usd, 1.5);
        assert_eq!(c.total_usd, 7.19);
        assert!(c.basis.contains("shared-cpu-1x"));
        let p = estimate_cost(&guest_config("performance", 1, 2048), 0, &sizes).unwrap();
        assert_eq!(p.total_usd, 32.19);
        assert!(estimate_cost(&guest_config("shared", 3, 256), 0, &sizes).is_none());
    }

    #[test]
    fn idempotency_key_is_stable_and_depends_on_identity_only() {
        let a = spec();
        let mut b = spec();
        b.image = "caddy:2".into();
        assert_eq!(a.idempotency_key(), b.idempotency_key());
        let mut c = spec();
        c.machine_name = "other".into();
        assert_ne!(a.idempotency_key(), c.idempotency_key());
        assert!(a.idempotency_key().starts_with("prov-"));
        assert_ne!(a.app_key(), a.idempotency_key());
    }

    #[test]
    fn machine_config_carries_ownership_mount_and_metadata() {
        let s = spec();
        let cfg = machine_config(&s, guest_config("shared", 1, 256), Some("vol_1"));
        assert_eq!(
            cfg.metadata.get(OWNER_METADATA_KEY).unwrap(),
            OWNER_METADATA_VALUE
        );
        assert_eq!(cfg.metadata.get(USER_METADATA_KEY).unwrap(), "alice");
        assert_eq!(
            cfg.metadata.get(EXPIRES_AT_METADATA_KEY).unwrap(),
            "2030-01-01T00:00:00Z"
        );
        assert_eq!(cfg.mounts.len(), 1);
        assert_eq!(cfg.mounts[0].volume, "vol_1");
        assert_eq!(cfg.mounts[0].extend_threshold_percent, Some(80));
        assert!(cfg.init.is_none());
    }

    #[test]
    fn failure_report_names_what_is_left_and_how_to_resume() {
        let f = ProvisionFailure {
            step: "machine".into(),
            error: Error::Invalid {
                field: "x".into(),
                rule: "y".into(),
            },
            created: vec![Resource::App { name: "a".into() }],
            rolled_back: Vec::new(),
            left: vec![
                Resource::App { name: "a".into() },
                Resource::Volume {
                    id: "vol_1".into(),
                    name: "data".into(),
                },
            ],
            rollback_errors: Vec::new(),
        };
        let text = f.into_error("a", false).source_text();
        assert!(text.contains("app a, volume vol_1 (data)"), "{text}");
        assert!(text.contains("call provision_environment again"), "{text}");
        assert!(text.contains("invalid x: y"), "{text}");
    }
}
