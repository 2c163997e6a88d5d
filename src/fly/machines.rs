//! Machines: the `Machine` domain type and its config, states and events, plus
//! list (filters, `fly-next-cursor` paging), get and create. Lifecycle actions,
//! leases and metadata live in their own files. Wire structs stay private here.

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{EmptyPage, Req, all_pages};
use super::pacing::PaceClass;
use super::{Client, Error, null_as_default};

type Extra = serde_json::Map<String, serde_json::Value>;

/// A machine state (API-NOTES §2). Unknown strings are kept, not rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum MachineState {
    /// Being created.
    Creating,
    /// Created, not started (`skip_launch`).
    Created,
    /// Booting.
    Starting,
    /// Running.
    Started,
    /// Shutting down.
    Stopping,
    /// Stopped.
    Stopped,
    /// Snapshotting memory to disk.
    Suspending,
    /// Suspended (memory kept).
    Suspended,
    /// Restarting.
    Restarting,
    /// Config update in progress.
    Updating,
    /// Being replaced by a new version.
    Replacing,
    /// Being destroyed.
    Destroying,
    /// Gone.
    Destroyed,
    /// Failed; recoverable with start/stop/destroy.
    Failed,
    /// Failed to launch; ends destroyed.
    LaunchFailed,
    /// An old version, replaced by a newer one.
    Replaced,
    /// The machine moved host; this version is no longer active.
    Migrated,
    /// A state this client does not know (kept verbatim; empty when missing).
    Unknown(String),
    /// No state given.
    #[default]
    Missing,
}

impl MachineState {
    /// The API's string for the state.
    pub fn as_str(&self) -> &str {
        match self {
            MachineState::Creating => "creating",
            MachineState::Created => "created",
            MachineState::Starting => "starting",
            MachineState::Started => "started",
            MachineState::Stopping => "stopping",
            MachineState::Stopped => "stopped",
            MachineState::Suspending => "suspending",
            MachineState::Suspended => "suspended",
            MachineState::Restarting => "restarting",
            MachineState::Updating => "updating",
            MachineState::Replacing => "replacing",
            MachineState::Destroying => "destroying",
            MachineState::Destroyed => "destroyed",
            MachineState::Failed => "failed",
            MachineState::LaunchFailed => "launch_failed",
            MachineState::Replaced => "replaced",
            MachineState::Migrated => "migrated",
            MachineState::Unknown(s) => s,
            MachineState::Missing => "",
        }
    }

    /// Parses an API state string (never fails: unknown → `Unknown`).
    pub fn parse(s: &str) -> MachineState {
        match s {
            "creating" => MachineState::Creating,
            "created" => MachineState::Created,
            "starting" => MachineState::Starting,
            "started" => MachineState::Started,
            "stopping" => MachineState::Stopping,
            "stopped" => MachineState::Stopped,
            "suspending" => MachineState::Suspending,
            "suspended" => MachineState::Suspended,
            "restarting" => MachineState::Restarting,
            "updating" => MachineState::Updating,
            "replacing" => MachineState::Replacing,
            "destroying" => MachineState::Destroying,
            "destroyed" => MachineState::Destroyed,
            "failed" => MachineState::Failed,
            "launch_failed" => MachineState::LaunchFailed,
            "replaced" => MachineState::Replaced,
            "migrated" => MachineState::Migrated,
            "" => MachineState::Missing,
            other => MachineState::Unknown(other.to_owned()),
        }
    }

    /// A transient state: the machine is on its way somewhere else.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            MachineState::Creating
                | MachineState::Starting
                | MachineState::Stopping
                | MachineState::Restarting
                | MachineState::Suspending
                | MachineState::Destroying
                | MachineState::Updating
                | MachineState::Replacing
                | MachineState::LaunchFailed
        )
    }

    /// A terminal state: the machine (or this version) is gone.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            MachineState::Destroyed | MachineState::Replaced | MachineState::Migrated
        )
    }

    /// Neither gone nor on its way out: fly-go's `Machine.IsActive` (`machine_types.go`,
    /// used by `flaps/flaps_machines.go` `ListActive`) leaves out `destroyed` and
    /// `destroying`; the other terminal states (`replaced`, `migrated`) go too.
    pub fn is_active(&self) -> bool {
        !self.is_terminal() && !matches!(self, MachineState::Destroying)
    }
}

impl std::fmt::Display for MachineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MachineState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MachineState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        Ok(s.map_or(MachineState::Missing, |s| MachineState::parse(&s)))
    }
}

/// CPU and memory of a machine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestConfig {
    /// `shared` or `performance`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu_kind: String,
    /// Number of CPUs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpus: u32,
    /// Memory in MB (a multiple of 256).
    #[serde(default, deserialize_with = "null_as_default")]
    pub memory_mb: u32,
    /// GPU model, if any.
    pub gpu_kind: Option<String>,
    /// Number of GPUs.
    pub gpus: Option<u32>,
    /// Fields this client does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `services[].autostop`: `off`, `stop` or `suspend` (older clients sent a bool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutostopMode {
    /// Never stop idle machines.
    Off,
    /// Stop idle machines.
    Stop,
    /// Suspend idle machines.
    Suspend,
}

impl Serialize for AutostopMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            AutostopMode::Off => "off",
            AutostopMode::Stop => "stop",
            AutostopMode::Suspend => "suspend",
        })
    }
}

impl<'de> Deserialize<'de> for AutostopMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(AutostopMode::Stop),
            serde_json::Value::Bool(false) => Ok(AutostopMode::Off),
            serde_json::Value::String(s) => match s.as_str() {
                "off" | "" => Ok(AutostopMode::Off),
                "stop" => Ok(AutostopMode::Stop),
                "suspend" => Ok(AutostopMode::Suspend),
                other => Err(serde::de::Error::custom(format!(
                    "unknown autostop mode `{other}` (expected off, stop or suspend)"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "autostop must be a string or bool, got {other}"
            ))),
        }
    }
}

/// One public port of a service.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachinePort {
    /// Public port.
    pub port: Option<u16>,
    /// Handlers such as `http`, `tls`.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
    /// Redirect HTTP to HTTPS.
    pub force_https: Option<bool>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A service exposed through Fly's proxy.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineService {
    /// `tcp` or `udp`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol: String,
    /// Port inside the machine.
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal_port: u16,
    /// Public ports.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<MachinePort>,
    /// What the proxy does with idle machines.
    pub autostop: Option<AutostopMode>,
    /// Whether the proxy starts machines on demand.
    pub autostart: Option<bool>,
    /// Machines kept running in the primary region.
    pub min_machines_running: Option<u32>,
    /// Fields this client does not model (concurrency, service checks, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A top-level health check (`config.checks.<name>`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCheck {
    /// `http` or `tcp`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Port checked.
    pub port: Option<u16>,
    /// HTTP path.
    pub path: Option<String>,
    /// Interval (Go duration, e.g. `15s`).
    pub interval: Option<String>,
    /// Timeout (Go duration).
    pub timeout: Option<String>,
    /// Grace period after start (Go duration).
    pub grace_period: Option<String>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A volume mount.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    /// Volume id (`vol_…`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub volume: String,
    /// Mount path.
    #[serde(default, deserialize_with = "null_as_default")]
    pub path: String,
    /// Volume name.
    pub name: Option<String>,
    /// Auto-extend when usage passes this percentage.
    pub extend_threshold_percent: Option<u32>,
    /// Auto-extend step in GB.
    pub add_size_gb: Option<u32>,
    /// Auto-extend ceiling in GB.
    pub size_gb_limit: Option<u32>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Restart policy.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// `no`, `always` or `on-failure` (empty when unset).
    #[serde(default, deserialize_with = "null_as_default")]
    pub policy: String,
    /// Retries for `on-failure`.
    pub max_retries: Option<u32>,
    /// Fields this client does not model.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Process start-up overrides.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InitConfig {
    /// Replace the image's CMD.
    pub cmd: Option<Vec<String>>,
    /// Replace the image's ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// Replace both with one command.
    pub exec: Option<Vec<String>>,
    /// Swap size.
    pub swap_size_mb: Option<u32>,
    /// Fields this client does not model (`tty`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// How the machine is stopped.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopConfig {
    /// Signal, e.g. `SIGINT`.
    pub signal: Option<String>,
    /// Kill timeout (a Go duration string or a number, as the API gave it).
    pub timeout: Option<serde_json::Value>,
}

/// A machine's configuration. Typed where it matters; every other field is kept
/// in `extra` so an update round-trips what this client does not model.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// Image reference.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: String,
    /// CPU and memory.
    pub guest: Option<GuestConfig>,
    /// Environment variables.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Metadata (string map; also reachable through the metadata endpoints).
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Services exposed through the proxy.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<MachineService>,
    /// Top-level health checks by name.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, MachineCheck>,
    /// Volume mounts.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// Restart policy.
    pub restart: Option<RestartPolicy>,
    /// Start-up overrides.
    pub init: Option<InitConfig>,
    /// Destroy the machine when it exits.
    pub auto_destroy: Option<bool>,
    /// Stop signal and timeout.
    pub stop_config: Option<StopConfig>,
    /// Every field this client does not model, kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Image details resolved by Fly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Registry host.
    #[serde(default, deserialize_with = "null_as_default")]
    pub registry: String,
    /// Repository.
    #[serde(default, deserialize_with = "null_as_default")]
    pub repository: String,
    /// Tag.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tag: String,
    /// Digest.
    #[serde(default, deserialize_with = "null_as_default")]
    pub digest: String,
}

/// How a machine's process exited (from an `exit` event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitEvent {
    /// Exit code of the main process.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exit_code: i64,
    /// Exit code seen by the guest init.
    #[serde(default, deserialize_with = "null_as_default")]
    pub guest_exit_code: i64,
    /// Signal that ended it (-1 for none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub signal: i64,
    /// Signal seen by the guest init.
    #[serde(default, deserialize_with = "null_as_default")]
    pub guest_signal: i64,
    /// Killed by the OOM killer.
    #[serde(default, deserialize_with = "null_as_default")]
    pub oom_killed: bool,
    /// The stop was requested (not a crash).
    #[serde(default, deserialize_with = "null_as_default")]
    pub requested_stop: bool,
    /// The machine is restarting after this exit.
    #[serde(default, deserialize_with = "null_as_default")]
    pub restarting: bool,
    /// When it exited, epoch milliseconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exited_at: i64,
}

/// One machine event (newest first in lists).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireEvent")]
pub struct MachineEvent {
    /// Event id (a ULID), when given.
    pub id: Option<String>,
    /// `launch`, `start`, `exit`, `update`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The state after the event.
    pub status: String,
    /// `user` or `flyd`.
    pub source: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// Exit details, for `exit` events.
    pub exit_event: Option<ExitEvent>,
    /// Restart count reported with the event.
    pub restart_count: Option<u64>,
}

#[derive(Deserialize)]
struct WireEventRequest {
    #[serde(default)]
    exit_event: Option<ExitEvent>,
    #[serde(default)]
    restart_count: Option<u64>,
}

#[derive(Deserialize)]
struct WireEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    source: String,
    #[serde(default, deserialize_with = "null_as_default")]
    timestamp: i64,
    #[serde(default)]
    request: Option<WireEventRequest>,
    #[serde(default)]
    exit_event: Option<ExitEvent>,
    #[serde(default)]
    restart_count: Option<u64>,
}

impl From<WireEvent> for MachineEvent {
    fn from(w: WireEvent) -> Self {
        let (req_exit, req_restarts) = match w.request {
            Some(r) => (r.exit_event, r.restart_count),
            None => (None, None),
        };
        MachineEvent {
            id: w.id,
            kind: w.kind,
            status: w.status,
            source: w.source,
            timestamp: w.timestamp,
            exit_event: w.exit_event.or(req_exit),
            restart_count: w.restart_count.or(req_restarts),
        }
    }
}

/// The status of one health check.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// Check name (service checks look like `servicecheck-00-http-8080`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `passing`, `warning` or `critical`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// The check's output.
    #[serde(default, deserialize_with = "null_as_default")]
    pub output: String,
    /// Last update time.
    pub updated_at: Option<String>,
}

/// Who holds a machine's lease (as shown by `include_leases`, without the nonce).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// Holder.
    #[serde(default, deserialize_with = "null_as_default")]
    pub owner: String,
    /// Reason given.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Expiry, unix seconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub expires_at: i64,
}

/// A Fly Machine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "WireMachine")]
pub struct Machine {
    /// 14-hex-character id.
    pub id: String,
    /// Machine name.
    pub name: String,
    /// Current state.
    pub state: MachineState,
    /// Region code.
    pub region: String,
    /// Current version (ULID); read from `version` or the deprecated `instance_id`.
    pub version: String,
    /// 6PN private address.
    pub private_ip: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last update time (RFC 3339).
    pub updated_at: String,
    /// The config (absent in `summary` listings, and while the host is not reachable).
    pub config: Option<MachineConfig>,
    /// What Fly could tell of the config while the machine's host is not reachable
    /// (`host_status` not `ok`): API-NOTES and the spec's `fly.Machine.incomplete_config`
    /// say it is filled only then. For display only — never a base for an update or a
    /// clone (posting it back would drop whatever it lacks).
    pub incomplete_config: Option<MachineConfig>,
    /// Resolved image.
    pub image_ref: Option<ImageRef>,
    /// Recent events, newest first.
    pub events: Vec<MachineEvent>,
    /// Health check statuses.
    pub checks: Vec<CheckStatus>,
    /// Lease nonce (only on a create with `lease_ttl`).
    pub nonce: Option<String>,
    /// Lease holder (only with `include_leases`).
    pub lease: Option<LeaseInfo>,
    /// `ok`, `unknown` or `unreachable`.
    pub host_status: Option<String>,
    /// Taken out of the proxy.
    pub cordoned: bool,
}

impl Machine {
    /// The config's metadata value for `key`, if any (read from `incomplete_config`
    /// while the host is unreachable: reading it is harmless).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.shown_config()
            .and_then(|c| c.metadata.get(key))
            .map(String::as_str)
    }

    /// The config to show: the full one, else what Fly could tell while the host is
    /// unreachable. Never post this back: use `config`.
    pub fn shown_config(&self) -> Option<&MachineConfig> {
        self.config.as_ref().or(self.incomplete_config.as_ref())
    }

    /// False when Fly says the machine's host is not reachable (`host_status`
    /// `unreachable` or `unknown`); true for `ok` or when not given.
    pub fn host_reachable(&self) -> bool {
        self.host_status
            .as_deref()
            .is_none_or(|h| h.is_empty() || h == "ok")
    }
}

#[derive(Deserialize)]
struct WireMachine {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default)]
    state: MachineState,
    #[serde(default, deserialize_with = "null_as_default")]
    region: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    private_ip: String,
    #[serde(default, deserialize_with = "null_as_default")]
    created_at: String,
    #[serde(default, deserialize_with = "null_as_default")]
    updated_at: String,
    #[serde(default)]
    config: Option<MachineConfig>,
    #[serde(default)]
    incomplete_config: Option<MachineConfig>,
    #[serde(default)]
    image_ref: Option<ImageRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    events: Vec<MachineEvent>,
    #[serde(default, deserialize_with = "null_as_default")]
    checks: Vec<CheckStatus>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    lease: Option<LeaseInfo>,
    #[serde(default)]
    host_status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    cordoned: bool,
}

impl From<WireMachine> for Machine {
    fn from(w: WireMachine) -> Self {
        let version = w
            .version
            .filter(|v| !v.is_empty())
            .or(w.instance_id)
            .unwrap_or_default();
        Machine {
            id: w.id,
            name: w.name,
            state: w.state,
            region: w.region,
            version,
            private_ip: w.private_ip,
            created_at: w.created_at,
            updated_at: w.updated_at,
            // Never folded together: the incomplete config lacks parts of the real one.
            config: w.config,
            incomplete_config: w.incomplete_config,
            image_ref: w.image_ref,
            events: w.events,
            checks: w.checks,
            nonce: w.nonce.filter(|n| !n.is_empty()),
            lease: w.lease,
            host_status: w.host_status,
            cordoned: w.cordoned,
        }
    }
}

/// Filters for listing machines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineFilter {
    /// Only these states (`created`, `started`, `stopped`, `suspended`).
    pub state: Vec<MachineState>,
    /// Only this region.
    pub region: Option<String>,
    /// Leave out config, checks and events.
    pub summary: bool,
    /// `metadata.KEY=VALUE` filters; all must match.
    pub metadata: Vec<(String, String)>,
    /// Include lease holders.
    pub include_leases: bool,
}

/// Body of a machine create.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateMachine {
    /// The config.
    pub config: MachineConfig,
    /// Machine name (unique within the app).
    pub name: Option<String>,
    /// Region code.
    pub region: Option<String>,
    /// Create without starting (state stays `created`).
    pub skip_launch: Option<bool>,
    /// Don't register services with the proxy yet.
    pub skip_service_registration: Option<bool>,
    /// Take a lease of this many seconds at once (the answer carries `nonce`).
    pub lease_ttl: Option<u64>,
    /// Require at least this secrets version.
    pub min_secrets_version: Option<u64>,
}

/// The `config.metadata` key that carries a create's idempotency key.
pub const IDEMPOTENCY_KEY_METADATA: &str = "fly_mcp_idempotency_key";

/// Guard against a server that keeps handing out cursors.
const MAX_PAGES: usize = super::apps::MAX_PAGES;

/// The request of Get Machine, paced under Fly's own limit for machine reads (5 req/s,
/// where an action gets 1).
fn get_machine_req(app: &str, machine_id: &str) -> Req {
    Req::machines(
        "get_machine",
        Method::GET,
        &["apps", app, "machines", machine_id],
    )
    .pace(PaceClass::GetMachine, machine_id)
}

impl Client {
    /// List Machines: `GET /v1/apps/{app_name}/machines` with `state`, `region`,
    /// `summary`, `include_leases` and `metadata.KEY=` filters; follows the
    /// `fly-next-cursor` header to the last page.
    pub async fn list_machines(
        &self,
        app: &str,
        filter: &MachineFilter,
    ) -> Result<Vec<Machine>, Error> {
        let states = filter
            .state
            .iter()
            .map(MachineState::as_str)
            .collect::<Vec<_>>()
            .join(",");
        all_pages(MAX_PAGES, EmptyPage::Ends, |cursor| {
            let mut req = Req::app("list_machines", Method::GET, app, &["machines"]);
            if !states.is_empty() {
                req = req.query("state", &states);
            }
            req = req.query_opt("region", filter.region.as_deref());
            if filter.summary {
                req = req.query("summary", "true");
            }
            if filter.include_leases {
                req = req.query("include_leases", "true");
            }
            for (k, v) in &filter.metadata {
                req = req.query(&format!("metadata.{k}"), v);
            }
            req = req.query_opt("cursor", cursor);
            async move {
                let resp = self.send(req).await?;
                let next = resp.header("fly-next-cursor").filter(|c| !c.is_empty());
                Ok((resp.json()?, next.map(str::to_owned)))
            }
        })
        .await
    }

    /// Get Machine: `GET /v1/apps/{app_name}/machines/{machine_id}`.
    pub async fn get_machine(&self, app: &str, machine_id: &str) -> Result<Machine, Error> {
        self.send(get_machine_req(app, machine_id)).await?.json()
    }

    /// Get Machine with its lease holder: `GET /v1/apps/{app_name}/machines/{machine_id}?include_leases=true`.
    pub async fn get_machine_with_lease(
        &self,
        app: &str,
        machine_id: &str,
    ) -> Result<Machine, Error> {
        let req = get_machine_req(app, machine_id).query("include_leases", "true");
        self.send(req).await?.json()
    }

    /// Create Machine: `POST /v1/apps/{app_name}/machines`. Not retried after an
    /// ambiguous failure (use [`Client::create_machine_idempotent`] for that);
    /// retried only when the request certainly had no effect (429, no connection).
    pub async fn create_machine(&self, app: &str, body: &CreateMachine) -> Result<Machine, Error> {
        let stamped;
        let body = match &self.creator {
            Some(creator) => {
                let mut b = body.clone();
                b.config.metadata.insert(
                    super::org_machines::CREATOR_METADATA_KEY.to_owned(),
                    creator.to_string(),
                );
                stamped = b;
                &stamped
            }
            None => body,
        };
        let req = Req::app("create_machine", Method::POST, app, &["machines"]).json(body)?;
        self.send(req).await?.json()
    }

    /// Create Machine made idempotent: `POST /v1/apps/{app_name}/machines` with
    /// `key` in `config.metadata.fly_mcp_idempotency_key`. After an ambiguous
    /// failure (timeout, 408, 5xx, reset) it looks the key up
    /// (`GET …/machines?metadata.fly_mcp_idempotency_key=KEY`) before retrying,
    /// so a retry never makes a duplicate. A machine already carrying the key is
    /// returned without a create.
    pub async fn create_machine_idempotent(
        &self,
        app: &str,
        body: &CreateMachine,
        key: &str,
    ) -> Result<Machine, Error> {
        if key.is_empty() {
            return Err(Error::invalid("idempotency key", "must not be empty"));
        }
        let mut body = body.clone();
        body.config
            .metadata
            .insert(IDEMPOTENCY_KEY_METADATA.to_owned(), key.to_owned());
        if let Some(existing) = self.find_machine_by_idempotency_key(app, key).await? {
            return Ok(existing);
        }
        let mut retrier = self.retrier();
        loop {
            let err = match self.create_machine(app, &body).await {
                Ok(m) => return Ok(m),
                Err(e) if e.is_ambiguous() => e,
                Err(e) => return Err(e),
            };
            tracing::debug!(app, error = %err, "ambiguous machine create; looking before retrying");
            let Some(delay) = retrier.next_delay(&err) else {
                return Err(err);
            };
            self.wait_out("create_machine", &err, delay).await;
            match self.find_machine_by_idempotency_key(app, key).await {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                // The look itself failed: retrying the create could duplicate.
                Err(_) => return Err(err),
            }
        }
    }

    /// The machine whose `config.metadata` carries idempotency `key`, if any
    /// (`GET /v1/apps/{app_name}/machines?metadata.fly_mcp_idempotency_key=KEY`).
    pub async fn find_machine_by_idempotency_key(
        &self,
        app: &str,
        key: &str,
    ) -> Result<Option<Machine>, Error> {
        let filter = MachineFilter {
            metadata: vec![(IDEMPOTENCY_KEY_METADATA.to_owned(), key.to_owned())],
            ..MachineFilter::default()
        };
        let found = match self.list_machines(app, &filter).await {
            Ok(list) => list,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(found
            .into_iter()
            .find(|m| m.metadata(IDEMPOTENCY_KEY_METADATA) == Some(key) && m.state.is_active()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A config's collections: `null`, missing and empty all decode as empty, and an
    /// empty one is left out of what is sent; a filled one goes out as it came.
    #[test]
    fn config_collections_null_missing_and_empty() {
        let bare = MachineConfig {
            image: "nginx".into(),
            ..MachineConfig::default()
        };
        for (field, empty) in [
            ("env", json!({})),
            ("metadata", json!({})),
            ("services", json!([])),
            ("checks", json!({})),
            ("mounts", json!([])),
        ] {
            for given in [json!(null), empty] {
                let mut wire = json!({"image": "nginx"});
                wire[field] = given;
                let config: MachineConfig = serde_json::from_value(wire).unwrap();
                assert_eq!(config, bare, "{field}");
            }
        }
        let missing: MachineConfig = serde_json::from_value(json!({"image": "nginx"})).unwrap();
        assert_eq!(missing, bare);
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"image": "nginx"})
        );

        let full = json!({
            "image": "nginx",
            "env": {"A": "1"},
            "metadata": {"k": "v"},
            "services": [{"protocol": "tcp", "internal_port": 80,
                "ports": [{"port": 443, "handlers": ["tls", "http"]}]}],
            "checks": {"h": {"type": "http", "port": 80}},
            "mounts": [{"volume": "vol_1", "path": "/data"}],
        });
        let config: MachineConfig = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), full);
    }

    /// The same for a service's ports and a port's handlers.
    #[test]
    fn service_ports_and_handlers_null_missing_and_empty() {
        for wire in [
            json!({"protocol": "tcp", "internal_port": 80}),
            json!({"protocol": "tcp", "internal_port": 80, "ports": null}),
            json!({"protocol": "tcp", "internal_port": 80, "ports": []}),
        ] {
            let service: MachineService = serde_json::from_value(wire).unwrap();
            assert!(service.ports.is_empty());
            assert_eq!(
                serde_json::to_value(&service).unwrap(),
                json!({"protocol": "tcp", "internal_port": 80})
            );
        }
        for wire in [
            json!({"port": 443}),
            json!({"port": 443, "handlers": null}),
            json!({"port": 443, "handlers": []}),
        ] {
            let port: MachinePort = serde_json::from_value(wire).unwrap();
            assert!(port.handlers.is_empty());
            assert_eq!(serde_json::to_value(&port).unwrap(), json!({"port": 443}));
        }
    }
}
