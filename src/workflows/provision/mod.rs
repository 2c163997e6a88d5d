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

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::fly;

mod plan;
mod request;
mod run;
mod sizing;
#[cfg(test)]
mod tests;

pub use plan::plan_environment;
pub use request::{
    CheckRequest, CpuKind, GuestRequest, InvalidRequest, PortRequest, ProxyRequest, ServiceRequest,
    VolumeRequest, checks,
};
pub use run::{ProvisionFailure, provision_environment};
pub use sizing::{estimate_cost, machine_config, resolve_guest};

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
