//! The simulated world: orgs, apps, machines (versions, events, checks, leases),
//! volumes (snapshots), IPs, secrets, certificates and logs, plus the JSON each one is
//! rendered as on the wire. Plain data behind one mutex; handlers keep it short and
//! never hold it across an await. Knows nothing of HTTP routing.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use serde_json::{Value, json};
use sha2::Digest;

use super::clock::{rfc3339, rfc3339_millis};
use super::faults::FaultConfig;
use super::ids::SimRng;
use super::latency::{LatencyModel, scaled};
use super::ratelimit::RateLimiter;
use super::{Realism, SimConfig, SimError};

/// Machine states, as API-NOTES §2 lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MState {
    Creating,
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspending,
    Suspended,
    Restarting,
    Updating,
    Replacing,
    Destroying,
    Destroyed,
    Failed,
    LaunchFailed,
}

impl MState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MState::Creating => "creating",
            MState::Created => "created",
            MState::Starting => "starting",
            MState::Started => "started",
            MState::Stopping => "stopping",
            MState::Stopped => "stopped",
            MState::Suspending => "suspending",
            MState::Suspended => "suspended",
            MState::Restarting => "restarting",
            MState::Updating => "updating",
            MState::Replacing => "replacing",
            MState::Destroying => "destroying",
            MState::Destroyed => "destroyed",
            MState::Failed => "failed",
            MState::LaunchFailed => "launch_failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<MState> {
        Some(match s {
            "creating" => MState::Creating,
            "created" => MState::Created,
            "starting" => MState::Starting,
            "started" => MState::Started,
            "stopping" => MState::Stopping,
            "stopped" => MState::Stopped,
            "suspending" => MState::Suspending,
            "suspended" => MState::Suspended,
            "restarting" => MState::Restarting,
            "updating" => MState::Updating,
            "replacing" => MState::Replacing,
            "destroying" => MState::Destroying,
            "destroyed" => MState::Destroyed,
            "failed" => MState::Failed,
            "launch_failed" => MState::LaunchFailed,
            _ => return None,
        })
    }

    /// Not yet settled.
    pub(crate) fn is_transient(self) -> bool {
        match self {
            MState::Creating
            | MState::Starting
            | MState::Stopping
            | MState::Suspending
            | MState::Restarting
            | MState::Updating
            | MState::Replacing
            | MState::Destroying
            | MState::LaunchFailed => true,
            MState::Created
            | MState::Started
            | MState::Stopped
            | MState::Suspended
            | MState::Destroyed
            | MState::Failed => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `PERSONAL` or `SHARED`.
    pub kind: String,
    pub paid_plan: bool,
    /// Whether the viewer belongs to it (apps of other orgs answer 403).
    pub member: bool,
    pub internal_numeric_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub source: String,
    pub timestamp: u64,
    pub request: Option<Value>,
}

impl Event {
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": self.kind,
            "status": self.status,
            "source": self.source,
            "timestamp": self.timestamp,
        });
        if let (Some(r), Some(obj)) = (&self.request, v.as_object_mut()) {
            obj.insert("request".into(), r.clone());
        }
        v
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub name: String,
    pub status: String,
    pub output: String,
    pub updated_ms: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub nonce: String,
    pub owner: String,
    pub description: String,
    pub expires_ms: u64,
    pub version: String,
}

/// What a transition does besides changing state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    None,
    /// Health checks pass (the app is listening).
    ChecksPassing,
    /// Health checks go critical (the machine is not running).
    ChecksDown,
    /// Mounted volumes are released (destroy).
    DetachVolumes,
}

#[derive(Debug, Clone)]
pub(crate) struct EventTpl {
    pub kind: &'static str,
    pub source: &'static str,
    pub request: Option<Value>,
}

#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub due: u64,
    pub state: MState,
    pub event: Option<EventTpl>,
    pub effect: Effect,
    /// A log line the guest would print at this point.
    pub log: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MachineVersion {
    pub id: String,
    pub config: Value,
    pub created_ms: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: MState,
    /// Oldest first; the last is current.
    pub versions: Vec<MachineVersion>,
    /// Oldest first.
    pub events: Vec<Event>,
    pub checks: Vec<Check>,
    pub lease: Option<Lease>,
    pub cordoned: bool,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub private_ip: String,
    pub plan: VecDeque<Step>,
    pub host_status: String,
    /// How many processes the guest runs (`ps`); 0 when not started.
    pub pid_base: u32,
    /// The app secrets version the current version booted with (see
    /// [`App::launch_secrets_version`]); shown in `/__sim/state` only.
    pub secrets_version: u64,
}

impl Machine {
    pub(crate) fn version(&self) -> &str {
        self.versions.last().map_or("", |v| v.id.as_str())
    }

    pub(crate) fn config(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.versions.last().map_or(&NULL, |v| &v.config)
    }

    pub(crate) fn config_mut(&mut self) -> Option<&mut Value> {
        self.versions.last_mut().map(|v| &mut v.config)
    }

    pub(crate) fn metadata(&self) -> serde_json::Map<String, Value> {
        self.config()
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.events.last().map(|e| e.id.as_str())
    }

    /// The lease if it has not expired.
    pub(crate) fn live_lease(&self, now: u64) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.expires_ms > now)
    }

    /// False while `host_status` is `unreachable` or `unknown`.
    pub(crate) fn host_reachable(&self) -> bool {
        self.host_status == "ok"
    }

    pub(crate) fn to_json(&self, summary: bool, include_lease: bool, now: u64) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("state".into(), json!(self.state.as_str()));
        m.insert("region".into(), json!(self.region));
        m.insert("instance_id".into(), json!(self.version()));
        m.insert("version".into(), json!(self.version()));
        m.insert("private_ip".into(), json!(self.private_ip));
        m.insert("created_at".into(), json!(rfc3339(self.created_ms)));
        m.insert("updated_at".into(), json!(rfc3339(self.updated_ms)));
        m.insert("host_status".into(), json!(self.host_status));
        m.insert("cordoned".into(), json!(self.cordoned));
        if !summary && !self.host_reachable() {
            // The host is not reachable: Fly fills only `incomplete_config` (API-NOTES
            // §3, the spec's `fly.Machine`). Here it keeps the image, guest and
            // metadata and drops the rest, so a client that posts it back as the
            // config loses env, services, mounts and checks.
            m.insert("incomplete_config".into(), incomplete(self.config()));
        } else if !summary {
            m.insert("config".into(), self.config().clone());
        }
        if !summary {
            m.insert("image_ref".into(), image_ref(self.config()));
            let events: Vec<Value> = self
                .events
                .iter()
                .rev()
                .take(10)
                .map(Event::to_json)
                .collect();
            m.insert("events".into(), Value::Array(events));
            if !self.checks.is_empty() {
                let checks: Vec<Value> = self
                    .checks
                    .iter()
                    .map(|c| {
                        json!({"name": c.name, "status": c.status, "output": c.output,
                               "updated_at": rfc3339(c.updated_ms)})
                    })
                    .collect();
                m.insert("checks".into(), Value::Array(checks));
            }
            m.insert("host_features".into(), json!([]));
        }
        if include_lease && let Some(l) = self.live_lease(now) {
            m.insert(
                "lease".into(),
                json!({"owner": l.owner, "description": l.description,
                       "expires_at": l.expires_ms / 1000}),
            );
        }
        Value::Object(m)
    }
}

/// What an unreachable host's machine shows of its config: image, guest, metadata.
fn incomplete(config: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["image", "guest", "metadata"] {
        if let Some(v) = config.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// `image_ref` derived from `config.image`, as Fly resolves it.
pub(crate) fn image_ref(config: &Value) -> Value {
    let image = config.get("image").and_then(Value::as_str).unwrap_or("");
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, t),
        _ => (image, "latest"),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') => {
            (host.to_owned(), rest.to_owned())
        }
        Some(_) => ("registry-1.docker.io".to_owned(), name.to_owned()),
        None => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
    };
    let digest = hex::encode(sha2::Sha256::digest(image.as_bytes()));
    json!({"registry": registry, "repository": repository, "tag": tag,
           "digest": format!("sha256:{digest}"), "labels": {}})
}

#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub id: String,
    pub size: u64,
    pub digest: String,
    pub created_ms: u64,
    pub status: String,
    pub retention_days: u64,
    pub volume_size: u64,
}

impl Snapshot {
    pub(crate) fn to_json(&self) -> Value {
        json!({"id": self.id, "size": self.size, "digest": self.digest,
               "created_at": rfc3339_millis(self.created_ms), "status": self.status,
               "retention_days": self.retention_days, "volume_size": self.volume_size})
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Volume {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub size_gb: u64,
    pub state: String,
    pub encrypted: bool,
    pub fstype: String,
    pub created_ms: u64,
    pub attached_machine_id: Option<String>,
    pub attached_alloc_id: Option<String>,
    pub snapshot_retention: u64,
    pub auto_backup_enabled: bool,
    pub bytes_used: u64,
    pub snapshots: Vec<Snapshot>,
    /// `restoring` → `created` at this time.
    pub ready_at: Option<u64>,
    /// After a destroy under the realistic profile: the states still to come, each with
    /// when it begins; the last is `destroyed` (the volume is then gone).
    pub destroy_plan: VecDeque<(u64, &'static str)>,
}

/// Volume states of a volume on its way out: fly-go `flaps/flaps_volumes.go`
/// (`destroyedVolumeStates`), plus `destroyed` itself.
pub(crate) const VOLUME_DESTROY_STATES: [&str; 6] = [
    "scheduling_destroy",
    "fork_cleanup",
    "waiting_for_detach",
    "pending_destroy",
    "destroying",
    "destroyed",
];

/// Whether a volume in `state` is being (or has been) destroyed.
pub(crate) fn volume_is_going(state: &str) -> bool {
    VOLUME_DESTROY_STATES.contains(&state)
}

impl Volume {
    pub(crate) fn to_json(&self) -> Value {
        let bytes_total = self.size_gb.saturating_mul(1 << 30);
        let block_size = 4096u64;
        let blocks = bytes_total / block_size;
        let blocks_free = bytes_total.saturating_sub(self.bytes_used) / block_size;
        json!({
            "id": self.id, "name": self.name, "state": self.state, "size_gb": self.size_gb,
            "region": self.region, "zone": self.zone, "encrypted": self.encrypted,
            "attached_machine_id": self.attached_machine_id,
            "attached_alloc_id": self.attached_alloc_id,
            "created_at": rfc3339_millis(self.created_ms),
            "blocks": blocks, "block_size": block_size, "blocks_free": blocks_free,
            "blocks_avail": blocks_free, "bytes_used": self.bytes_used,
            "bytes_total": bytes_total, "fstype": self.fstype,
            "snapshot_retention": self.snapshot_retention,
            "auto_backup_enabled": self.auto_backup_enabled,
            "host_status": "ok", "host_dedication_key": "", "type": "local",
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Ip {
    pub id: String,
    pub address: String,
    /// `v4`, `v6`, `private_v6`, `egress_v4`…
    pub kind: String,
    pub region: String,
    pub created_ms: u64,
    pub service_name: String,
    pub network: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub value: String,
    pub digest: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Certificate {
    pub hostname: String,
    pub created_ms: u64,
    /// How many times `check` ran; issuance completes on the second check.
    pub checks_run: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    /// Unique per line, below the millisecond the line's timestamp shows (see
    /// [`LogLine::unique_ns`]).
    pub ts_ns: u64,
    pub instance: String,
    pub region: String,
    pub level: String,
    pub message: String,
    pub id: String,
}

impl LogLine {
    /// The nanosecond time of the `n`-th line of an app logged at `ts_ms`: inside that
    /// millisecond, above its first nanosecond, distinct for lines of the same
    /// millisecond and in logging order. The logs API shows timestamps to the
    /// millisecond while `next_token` carries nanoseconds, so a cursor made from a
    /// timestamp repeats lines: clients must page with `meta.next_token`, as flyctl
    /// does (`logs/polling.go`).
    pub(crate) fn unique_ns(ts_ms: u64, n: usize) -> u64 {
        let within = u64::try_from(n % 999_983).unwrap_or(0) + 1;
        ts_ms.saturating_mul(1_000_000).saturating_add(within)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub id: String,
    pub name: String,
    pub org: String,
    pub created_ms: u64,
    pub internal_numeric_id: u64,
    pub network: String,
    pub machines: BTreeMap<String, Machine>,
    pub volumes: BTreeMap<String, Volume>,
    pub ips: Vec<Ip>,
    pub shared_ip: Option<String>,
    pub secrets: BTreeMap<String, Secret>,
    pub secrets_version: u64,
    /// Every secrets version with when it was written, oldest first.
    pub secrets_history: Vec<(u64, u64)>,
    pub certificates: BTreeMap<String, Certificate>,
    pub logs: Vec<LogLine>,
    /// Realism: the app answers 404 until this time (see `Realism::new_app_hidden_ms`).
    pub hidden_until_ms: u64,
}

impl App {
    /// An app with nothing in it, created at `now`.
    pub(crate) fn new(id: String, name: String, org: String, now: u64, numeric: u64) -> App {
        App {
            id,
            name,
            org,
            created_ms: now,
            internal_numeric_id: numeric,
            network: "default".into(),
            machines: BTreeMap::new(),
            volumes: BTreeMap::new(),
            ips: Vec::new(),
            shared_ip: None,
            secrets: BTreeMap::new(),
            secrets_version: 0,
            secrets_history: Vec::new(),
            certificates: BTreeMap::new(),
            logs: Vec::new(),
            hidden_until_ms: 0,
        }
    }

    /// Whether the app answers yet (a new app is hidden for a moment under realism).
    pub(crate) fn is_visible(&self, now: u64) -> bool {
        self.hidden_until_ms <= now
    }

    /// Bumps the secrets version after a write at `now`; returns the new version.
    pub(crate) fn bump_secrets(&mut self, now: u64) -> u64 {
        self.secrets_version += 1;
        self.secrets_history.push((self.secrets_version, now));
        self.secrets_version
    }

    /// The secrets version a machine launched at `now` boots with: at least `min`
    /// (`min_secrets_version`), otherwise the newest version written at least
    /// `propagation_ms` ago (a host has not yet seen a newer write).
    pub(crate) fn launch_secrets_version(
        &self,
        min: Option<u64>,
        now: u64,
        propagation_ms: u64,
    ) -> u64 {
        let seen = self
            .secrets_history
            .iter()
            .rev()
            .find(|(_, at)| at.saturating_add(propagation_ms) <= now)
            .map_or(0, |(v, _)| *v);
        seen.max(min.unwrap_or(0)).min(self.secrets_version)
    }

    pub(crate) fn status(&self) -> &'static str {
        let live: Vec<&Machine> = self
            .machines
            .values()
            .filter(|m| m.state != MState::Destroyed)
            .collect();
        if live.is_empty() {
            "pending"
        } else if live.iter().any(|m| m.state == MState::Started) {
            "deployed"
        } else {
            "suspended"
        }
    }

    pub(crate) fn machine_count(&self) -> usize {
        self.machines
            .values()
            .filter(|m| m.state != MState::Destroyed)
            .count()
    }
}

/// One line of `GET /__sim/requests`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RequestRecord {
    pub id: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub start_ms: u64,
    pub end_ms: u64,
    pub real_us: u64,
    /// The fault injected into this request, if any: `5xx` or `reset` (before the
    /// handler), `applied` or `applied_reset` (after it). A reset is logged with the
    /// status the handler would have given (200 for one before the handler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
}

/// The viewer behind every accepted token.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub email: String,
    pub name: String,
    pub user_id: String,
}

/// Something the due-queue points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    Machine { app: String, id: String },
    Volume { app: String, id: String },
}

pub(crate) const MAX_REQUEST_LOG: usize = 10_000;

#[derive(Debug)]
pub(crate) struct World {
    /// Bumped whenever something visible changes.
    pub generation: u64,
    /// Bumped whenever a transition is scheduled.
    pub scheduled_count: u64,
    pub rng: SimRng,
    pub fault_rng: SimRng,
    pub latency: LatencyModel,
    pub time_scale: f64,
    pub faults: FaultConfig,
    pub realism: Realism,
    /// The time of the call being handled (set by `Shared::with_world`).
    pub now_ms: u64,
    pub rate_limits_on: bool,
    pub limiter: RateLimiter,
    pub viewer: Viewer,
    pub nearest_region: String,
    pub orgs: BTreeMap<String, Org>,
    pub apps: BTreeMap<String, App>,
    /// Region → how many upcoming creates fail with `insufficient_capacity`.
    pub capacity_failures: HashMap<String, u32>,
    /// Region → how many upcoming volume creates fail with `volume_placement_capacity`.
    pub volume_capacity_failures: HashMap<String, u32>,
    pub requests: VecDeque<RequestRecord>,
    pub due: BinaryHeap<Reverse<(u64, u64, Target)>>,
    pub due_seq: u64,
    /// `idempotency_key` → (app name, when the key was first used).
    pub idempotency: HashMap<String, (String, u64)>,
    pub next_numeric_id: u64,
    pub next_ip: u32,
    /// Deploy tokens minted through the API (token without scheme → app).
    pub deploy_tokens: HashMap<String, String>,
}

impl World {
    /// Builds the world a configuration starts with.
    pub(crate) fn load(cfg: &SimConfig, now: u64) -> Result<World, SimError> {
        let mut w = World {
            generation: 0,
            scheduled_count: 0,
            rng: SimRng::new(cfg.seed),
            fault_rng: SimRng::new(cfg.seed.wrapping_add(1)),
            latency: cfg.latency.clone(),
            time_scale: cfg.time_scale,
            faults: cfg.faults.clone(),
            realism: cfg.realism.clone(),
            now_ms: now,
            rate_limits_on: cfg.rate_limits,
            limiter: RateLimiter::default(),
            viewer: Viewer {
                email: "sim-user@example.com".into(),
                name: "Sim User".into(),
                user_id: "u_sim0001".into(),
            },
            nearest_region: "iad".into(),
            orgs: BTreeMap::new(),
            apps: BTreeMap::new(),
            capacity_failures: HashMap::new(),
            volume_capacity_failures: HashMap::new(),
            requests: VecDeque::new(),
            due: BinaryHeap::new(),
            due_seq: 0,
            idempotency: HashMap::new(),
            next_numeric_id: 1000,
            next_ip: 1,
            deploy_tokens: HashMap::new(),
        };
        let file = super::scenario::resolve(&cfg.scenario)?;
        file.apply(&mut w, now)?;
        Ok(w)
    }

    /// A latency in sim milliseconds.
    pub(crate) fn delay(&self, base_ms: u64) -> u64 {
        scaled(base_ms, self.time_scale)
    }

    pub(crate) fn numeric_id(&mut self) -> u64 {
        self.next_numeric_id += 1;
        self.next_numeric_id
    }

    pub(crate) fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn org_of_app(&self, app: &App) -> Option<&Org> {
        self.orgs.get(&app.org)
    }

    pub(crate) fn app_json(&self, app: &App) -> Value {
        let org = self.org_of_app(app);
        json!({
            "id": app.id, "name": app.name, "status": app.status(),
            "organization": {
                "name": org.map_or("", |o| o.name.as_str()),
                "slug": org.map_or("", |o| o.slug.as_str()),
                "internal_numeric_id": org.map_or(0, |o| o.internal_numeric_id),
            },
            "network": app.network, "network_cidr": "fdaa:0:3ec2::/48",
            "machine_count": app.machine_count(), "volume_count": app.volumes.len(),
            "internal_numeric_id": app.internal_numeric_id,
        })
    }

    /// A fresh public address of the given family.
    pub(crate) fn next_address(&mut self, v6: bool) -> String {
        self.next_ip = self.next_ip.wrapping_add(1);
        let n = self.next_ip;
        if v6 {
            format!("2a09:8280:1::{:x}:{:x}", (n >> 16) & 0xffff, n & 0xffff)
        } else {
            format!("66.241.{}.{}", 124 + ((n >> 8) & 0x7f), n & 0xff)
        }
    }

    pub(crate) fn log(&mut self, app: &str, instance: &str, ts_ms: u64, message: &str) {
        let id = self.rng.ulid(ts_ms);
        if let Some(a) = self.apps.get_mut(app) {
            let region = a
                .machines
                .get(instance)
                .map(|m| m.region.clone())
                .unwrap_or_default();
            let ts_ns = LogLine::unique_ns(ts_ms, a.logs.len());
            a.logs.push(LogLine {
                ts_ns,
                instance: instance.to_owned(),
                region,
                level: "info".into(),
                message: message.to_owned(),
                id,
            });
        }
    }

    /// Every resource, for `GET /__sim/state`. Secret values are never included.
    pub(crate) fn state_json(&self, now: u64) -> Value {
        let orgs: Vec<Value> = self
            .orgs
            .values()
            .map(|o| {
                json!({"id": o.id, "slug": o.slug, "name": o.name, "type": o.kind,
                       "paid_plan": o.paid_plan, "member": o.member})
            })
            .collect();
        let apps: Vec<Value> = self
            .apps
            .values()
            .map(|a| {
                let mut v = self.app_json(a);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("org_slug".into(), json!(a.org));
                    obj.insert(
                        "machines".into(),
                        a.machines
                            .values()
                            .map(|m| {
                                let mut mj = m.to_json(false, true, now);
                                if let Some(o) = mj.as_object_mut() {
                                    o.insert(
                                        "versions".into(),
                                        json!(m.versions.iter().map(|v| json!({"version": v.id, "created_at": rfc3339(v.created_ms)})).collect::<Vec<_>>()),
                                    );
                                    o.insert("secrets_version".into(), json!(m.secrets_version));
                                    o.insert(
                                        "pending_transitions".into(),
                                        json!(m.plan.iter().map(|s| json!({"due_ms": s.due, "state": s.state.as_str()})).collect::<Vec<_>>()),
                                    );
                                }
                                mj
                            })
                            .collect(),
                    );
                    obj.insert(
                        "volumes".into(),
                        a.volumes.values().map(Volume::to_json).collect(),
                    );
                    obj.insert(
                        "ips".into(),
                        a.ips
                            .iter()
                            .map(|i| json!({"id": i.id, "address": i.address, "type": i.kind, "region": i.region}))
                            .collect(),
                    );
                    obj.insert("shared_ip".into(), json!(a.shared_ip));
                    obj.insert(
                        "secrets".into(),
                        a.secrets
                            .iter()
                            .map(|(k, s)| json!({"name": k, "digest": s.digest}))
                            .collect(),
                    );
                    obj.insert("secrets_version".into(), json!(a.secrets_version));
                    obj.insert("visible".into(), json!(a.is_visible(now)));
                    obj.insert(
                        "certificates".into(),
                        a.certificates.keys().cloned().collect(),
                    );
                    obj.insert("log_lines".into(), json!(a.logs.len()));
                }
                v
            })
            .collect();
        json!({
            "now_ms": now,
            "now": rfc3339_millis(now),
            "orgs": orgs,
            "apps": apps,
            "capacity_failures": self.capacity_failures,
            "volume_capacity_failures": self.volume_capacity_failures,
            "rate_limits": self.rate_limits_on,
            "realism": {
                "new_app_hidden_ms": self.realism.new_app_hidden_ms,
                "secrets_propagation_ms": self.realism.secrets_propagation_ms,
                "volume_destroy_step_ms": self.realism.volume_destroy_step_ms,
                "idempotency_key_ttl_ms": self.realism.idempotency_key_ttl_ms,
                "lease_nonce_visible": self.realism.lease_nonce_visible,
                "full_region": self.realism.full_region,
            },
            "faults": {
                "5xx": self.faults.server_error, "reset": self.faults.reset,
                "latency_ms": self.faults.latency.map(|(d, _)| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                "latency_p": self.faults.latency.map(|(_, p)| p),
            },
            "request_count": self.requests.len(),
        })
    }
}

/// sha256 hex digest of a secret value, as Fly lists them.
pub(crate) fn secret_digest(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}
