//! Warm pools of per-user environments (DESIGN §8): machines of one app created ahead of
//! time from a template and parked (suspended or stopped), handed out on the fast path
//! (resume or start), released back, and reaped when their claim expires.
//!
//! Pool state lives in Fly, in each machine's metadata ([`POOL_KEY`], [`STATE_KEY`],
//! [`USER_KEY`], [`EXPIRES_KEY`], [`TEMPLATE_KEY`], [`SLOT_KEY`]), so several server
//! processes can share one pool. Every change of a machine's pool state is made under
//! its lease: acquire → re-read → verify → patch metadata with `machine_version` and the
//! nonce → act → release. Two processes therefore never hand one environment to two users.
//! Filling runs on [`super::sched::run_bulk`], paced at the documented create rate
//! (1 per second per app) and resumable: every slot has a number and an idempotency key,
//! and a second fill creates only the slots that are missing and parks half-made ones.
//!
//! Knows nothing of MCP; the tool layer renders what this returns.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::fly::{
    self, CreateMachine, IDEMPOTENCY_KEY_METADATA, LeaseNonce, Machine, MachineConfig,
    MachineFilter, MachineState, WaitTarget,
};

use super::sched::{BulkOptions, Control, ItemOutcome, run_bulk};
use super::{Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE};

/// Metadata key: the pool a machine belongs to.
pub const POOL_KEY: &str = "fly_mcp_pool";
/// Metadata key: [`SlotState`] of the machine in its pool.
pub const STATE_KEY: &str = "fly_mcp_pool_state";
/// Metadata key: the user holding the claim.
pub const USER_KEY: &str = "fly_mcp_pool_user";
/// Metadata key: when the claim expires (RFC 3339).
pub const EXPIRES_KEY: &str = "fly_mcp_pool_expires_at";
/// Metadata key: hash of the template the machine was made from.
pub const TEMPLATE_KEY: &str = "fly_mcp_pool_template";
/// Metadata key: the slot number (0-based) the machine fills.
pub const SLOT_KEY: &str = "fly_mcp_pool_slot";

/// Lease TTL for one claim, release or reap step (a crashed server blocks a machine
/// for at most this long).
const LEASE_TTL_SECS: u64 = 30;
/// Passes over the free list before a claim answers "pool empty".
const CLAIM_PASSES: usize = 3;
/// While another claim holds a candidate's lease, it may still give it back: a claim
/// keeps passing over the pool (each pass on a new listing) for up to this long
/// before it answers "pool empty" (never beyond its own `start_timeout`).
const CLAIM_CONTENTION_BUDGET: Duration = Duration::from_secs(10);
/// A claim this close to its expiry counts as expiring in [`PoolStatus`].
const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_mins(15);

/// A machine's state in its pool, as kept in [`STATE_KEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Created, not yet parked (a fill is under way or was interrupted).
    Filling,
    /// Parked and ready to be claimed.
    Free,
    /// Handed to a user.
    Claimed,
}

impl SlotState {
    /// The metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Filling => "filling",
            SlotState::Free => "free",
            SlotState::Claimed => "claimed",
        }
    }

    fn parse(s: &str) -> Option<SlotState> {
        match s {
            "filling" => Some(SlotState::Filling),
            "free" => Some(SlotState::Free),
            "claimed" => Some(SlotState::Claimed),
            _ => None,
        }
    }
}

/// The state a free environment waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Park {
    /// Suspended: a claim resumes it (the fastest start Fly has).
    #[default]
    Suspended,
    /// Stopped (or never started): a claim starts it; costs nothing while parked.
    Stopped,
}

impl Park {
    /// `suspended` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Park::Suspended => "suspended",
            Park::Stopped => "stopped",
        }
    }

    fn holds(self, state: &MachineState) -> bool {
        match self {
            Park::Suspended => matches!(state, MachineState::Suspended),
            Park::Stopped => matches!(state, MachineState::Stopped | MachineState::Created),
        }
    }
}

/// What a pool is made of: machines of `app` built from `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// The app the pool's machines live in (must exist).
    pub app: String,
    /// Pool name (several pools may share an app).
    pub pool: String,
    /// Region for new machines (Fly picks one when unset).
    pub region: Option<String>,
    /// The template every environment is created from.
    pub config: MachineConfig,
    /// How free environments wait.
    pub park: Park,
}

impl PoolSpec {
    /// A short hash of the template (config, region, park state), kept in [`TEMPLATE_KEY`].
    pub fn template_hash(&self) -> String {
        let config = serde_json::to_value(&self.config).unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(canonical_json(&config).as_bytes());
        hasher.update(self.region.as_deref().unwrap_or("").as_bytes());
        hasher.update(self.park.as_str().as_bytes());
        let digest = hasher.finalize();
        hex::encode(digest).chars().take(12).collect()
    }

    fn validate(&self) -> Result<(), Error> {
        if self.pool.is_empty() || self.pool.len() > 63 {
            return Err(Error::Invalid {
                field: "pool".into(),
                rule: "1 to 63 characters".into(),
            });
        }
        if self.config.image.is_empty() {
            return Err(Error::Invalid {
                field: "image".into(),
                rule: "the template needs an image".into(),
            });
        }
        Ok(())
    }
}

/// A template in plain terms (what the tool layer collects): image, size, env and an
/// optional HTTP service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    pub image: String,
    /// `shared` or `performance` (default `shared`).
    pub cpu_kind: Option<String>,
    pub cpus: Option<u32>,
    pub memory_mb: Option<u32>,
    pub env: BTreeMap<String, String>,
    /// When set, the proxy serves HTTPS on 443 (and HTTP on 80) to this port.
    pub internal_port: Option<u16>,
}

impl Template {
    /// The machine config this template describes.
    pub fn to_config(&self) -> MachineConfig {
        let guest = (self.cpu_kind.is_some() || self.cpus.is_some() || self.memory_mb.is_some())
            .then(|| fly::GuestConfig {
                cpu_kind: self.cpu_kind.clone().unwrap_or_else(|| "shared".into()),
                cpus: self.cpus.unwrap_or(1),
                memory_mb: self.memory_mb.unwrap_or(256),
                ..fly::GuestConfig::default()
            });
        let services = self
            .internal_port
            .map(|port| {
                let http = |p: u16, handlers: &[&str], force: Option<bool>| fly::MachinePort {
                    port: Some(p),
                    handlers: handlers.iter().map(|h| (*h).to_owned()).collect(),
                    force_https: force,
                    ..fly::MachinePort::default()
                };
                vec![fly::MachineService {
                    protocol: "tcp".into(),
                    internal_port: port,
                    ports: vec![
                        http(80, &["http"], Some(true)),
                        http(443, &["tls", "http"], None),
                    ],
                    ..fly::MachineService::default()
                }]
            })
            .unwrap_or_default();
        MachineConfig {
            image: self.image.clone(),
            guest,
            env: self.env.clone(),
            services,
            ..MachineConfig::default()
        }
    }
}

/// JSON text with object keys sorted at every level (a stable hash input whatever
/// order maps serialize in).
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let inner: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_json::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// One machine of a pool, as its metadata and state say.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub machine_id: String,
    pub name: String,
    pub region: String,
    /// Machine state (`suspended`, `started`, …).
    pub machine_state: String,
    /// Pool state; `None` when the metadata value is unknown.
    pub slot_state: Option<SlotState>,
    pub slot: Option<u32>,
    pub user: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub template: Option<String>,
    /// Why the member counts as broken, if it does.
    pub broken: Option<String>,
}

impl Member {
    fn of(m: &Machine) -> Member {
        let slot_state = m.metadata(STATE_KEY).and_then(SlotState::parse);
        let broken = match (&m.state, slot_state) {
            (MachineState::Failed, _) => Some("machine failed".to_owned()),
            (_, None) => Some(format!(
                "unknown pool state {:?}",
                m.metadata(STATE_KEY).unwrap_or("")
            )),
            (
                MachineState::Started
                | MachineState::Starting
                | MachineState::Stopping
                | MachineState::Suspending,
                Some(SlotState::Free),
            ) => Some(format!("free but {}", m.state)),
            _ => None,
        };
        Member {
            machine_id: m.id.clone(),
            name: m.name.clone(),
            region: m.region.clone(),
            machine_state: m.state.to_string(),
            slot_state,
            slot: m.metadata(SLOT_KEY).and_then(|s| s.parse().ok()),
            user: m.metadata(USER_KEY).map(str::to_owned),
            expires_at: m.metadata(EXPIRES_KEY).and_then(|s| s.parse().ok()),
            template: m.metadata(TEMPLATE_KEY).map(str::to_owned),
            broken,
        }
    }

    fn is_expired(&self, now: Timestamp) -> bool {
        self.slot_state == Some(SlotState::Claimed) && self.expires_at.is_some_and(|e| e <= now)
    }
}

/// Counts and members of one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStatus {
    pub app: String,
    pub pool: String,
    /// Parked and claimable.
    pub free: usize,
    /// Handed out (including expiring and expired ones).
    pub claimed: usize,
    /// Claimed and expiring within 15 minutes.
    pub expiring: usize,
    /// Claimed and past `expires_at` (what `reap_expired` would destroy).
    pub expired: usize,
    /// Created but not yet parked.
    pub filling: usize,
    /// Failed, in an unknown pool state, or free but not parked.
    pub broken: usize,
    /// Every member, by slot.
    pub members: Vec<Member>,
}

/// Lists the machines of `pool` in `app` (one `GET …/machines?metadata.fly_mcp_pool=`),
/// live ones only.
async fn list_pool(client: &fly::Client, app: &str, pool: &str) -> Result<Vec<Machine>, Error> {
    // With leases: a member still marked free while someone holds its lease is being
    // claimed (or given back) right now, which a claim must not take for "empty".
    let filter = MachineFilter {
        metadata: vec![(POOL_KEY.to_owned(), pool.to_owned())],
        include_leases: true,
        ..MachineFilter::default()
    };
    match client.list_machines(app, &filter).await {
        Ok(list) => Ok(list.into_iter().filter(|m| is_member(m, pool)).collect()),
        Err(e) => Err(pool_list_error(app, pool, e)),
    }
}

/// A live machine of `pool`.
fn is_member(m: &Machine, pool: &str) -> bool {
    m.metadata(POOL_KEY) == Some(pool)
        && !m.state.is_terminal()
        && !matches!(m.state, MachineState::Destroying)
}

fn pool_list_error(app: &str, pool: &str, e: fly::Error) -> Error {
    if e.is_not_found() {
        Error::NotFound {
            what: "app",
            id: app.to_owned(),
            hint: ": create the app first (provision_environment), then fill the pool".into(),
        }
    } else {
        Error::fly(format!("listing pool {pool} in app {app}"))(e)
    }
}

/// Every live machine of `app`, with its config (one `GET …/machines`).
async fn list_app(client: &fly::Client, app: &str, pool: &str) -> Result<Vec<Machine>, Error> {
    match client.list_machines(app, &MachineFilter::default()).await {
        Ok(list) => Ok(list
            .into_iter()
            .filter(|m| !m.state.is_terminal() && !matches!(m.state, MachineState::Destroying))
            .collect()),
        Err(e) => Err(pool_list_error(app, pool, e)),
    }
}

/// `pool_status`: counts and members of `pool` at `now`.
pub async fn status(
    client: &fly::Client,
    app: &str,
    pool: &str,
    now: Timestamp,
) -> Result<PoolStatus, Error> {
    let machines = list_pool(client, app, pool).await?;
    let mut members: Vec<Member> = machines.iter().map(Member::of).collect();
    members.sort_by(|a, b| (a.slot, &a.machine_id).cmp(&(b.slot, &b.machine_id)));
    let mut st = PoolStatus {
        app: app.to_owned(),
        pool: pool.to_owned(),
        free: 0,
        claimed: 0,
        expiring: 0,
        expired: 0,
        filling: 0,
        broken: 0,
        members: Vec::new(),
    };
    let soon = now.checked_add(EXPIRING_WITHIN).unwrap_or(now);
    for m in &members {
        if m.broken.is_some() {
            st.broken += 1;
            continue;
        }
        match m.slot_state {
            Some(SlotState::Free) => st.free += 1,
            Some(SlotState::Filling) => st.filling += 1,
            Some(SlotState::Claimed) => {
                st.claimed += 1;
                match m.expires_at {
                    Some(e) if e <= now => st.expired += 1,
                    Some(e) if e <= soon => st.expiring += 1,
                    _ => {}
                }
            }
            None => st.broken += 1,
        }
    }
    st.members = members;
    Ok(st)
}

// ---------------------------------------------------------------------------------
// Fill
// ---------------------------------------------------------------------------------

/// How `pool_fill` schedules its creates.
#[derive(Debug, Clone, PartialEq)]
pub struct FillOptions {
    /// Slots worked on at once.
    pub concurrency: usize,
    /// Smallest gap between two creates: Fly documents 1 create per second per app
    /// (bursts of 3), so the default is 1 s. Scale it with the simulator's time scale.
    pub create_interval: Duration,
    /// How long one environment may take to boot and park.
    pub park_timeout: Duration,
    /// Millisecond item-level 429 backoffs (tests against a local simulator).
    pub fast_backoff: bool,
}

impl Default for FillOptions {
    fn default() -> Self {
        FillOptions {
            concurrency: 16,
            create_interval: Duration::from_secs(1),
            park_timeout: Duration::from_secs(120),
            fast_backoff: false,
        }
    }
}

/// Fly's documented limit for one action on one app: 1 request per second…
pub const CREATE_RATE_PER_SEC: f64 = 1.0;
/// …with bursts of up to 3.
pub const CREATE_BURST: u32 = 3;

/// The least time `creates` machine creates in one app can take under the documented
/// rate limit (the burst goes at once, the rest at the refill rate), before the last
/// one boots and parks. Multiply by a simulator's time scale to compare with a run.
pub fn create_rate_bound(creates: u32) -> Duration {
    let paced = creates.saturating_sub(CREATE_BURST);
    Duration::from_secs_f64(f64::from(paced) / CREATE_RATE_PER_SEC)
}

/// One slot of a fill: what was done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAction {
    /// A machine was created and parked.
    Created,
    /// A half-made machine (from an interrupted fill) was parked.
    Parked,
}

/// What `pool_fill` did.
#[derive(Debug, Clone, PartialEq)]
pub struct FillReport {
    pub app: String,
    pub pool: String,
    /// Slots asked for.
    pub size: usize,
    /// Slots that already held a parked, claimed or other live member.
    pub already_present: usize,
    /// Machines created and parked by this call.
    pub created: usize,
    /// Half-made machines this call parked.
    pub parked: usize,
    /// Slots that failed: (slot, error text).
    pub failed: Vec<(u32, String)>,
    /// Slots that were not started (the caller cancelled).
    pub cancelled: usize,
    /// Item-level retries after a 429 (the client's own 429 retries are not counted here).
    pub rate_limited_retries: usize,
    /// Wall time of the fill.
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
enum FillItem {
    Create(u32),
    Park(u32, String),
}

impl FillItem {
    fn slot(&self) -> u32 {
        match self {
            FillItem::Create(s) | FillItem::Park(s, _) => *s,
        }
    }
}

impl std::fmt::Display for FillItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillItem::Create(s) => write!(f, "slot {s}: create"),
            FillItem::Park(s, id) => write!(f, "slot {s}: park {id}"),
        }
    }
}

/// The idempotency key of a slot's first machine (a re-run of the fill finds it).
pub fn slot_key(pool: &str, slot: u32) -> String {
    format!("pool-{pool}-{slot}")
}

/// `pool_fill`: makes slots `0..size` of the pool hold a member, creating missing ones
/// from the template, paced at `opts.create_interval`, and parking them. Resumable:
/// present slots are left alone, half-made ones are parked, and a create interrupted
/// at an ambiguous moment is found again by its idempotency key.
pub async fn fill(
    client: &fly::Client,
    spec: &PoolSpec,
    size: u32,
    opts: &FillOptions,
    ctl: &Control,
) -> Result<FillReport, Error> {
    spec.validate()?;
    let started = std::time::Instant::now();
    // One listing of the whole app: the pool's members, and the secrets version every
    // new member must launch with at least (the highest any machine of the app was
    // given, see `SECRETS_VERSION_METADATA_KEY`; flyctl passes `min_secrets_version`
    // on every launch, `internal/appsecrets/minvers.go`).
    let app_machines = list_app(client, &spec.app, &spec.pool).await?;
    let secrets_floor = super::secrets_floor(&app_machines)
        .into_iter()
        .chain(super::recorded_secrets_version(&spec.config))
        .max();
    let existing: Vec<Machine> = app_machines
        .into_iter()
        .filter(|m| is_member(m, &spec.pool))
        .collect();
    let mut by_slot: BTreeMap<u32, &Machine> = BTreeMap::new();
    for m in &existing {
        if let Some(slot) = m.metadata(SLOT_KEY).and_then(|s| s.parse::<u32>().ok()) {
            by_slot.entry(slot).or_insert(m);
        }
    }
    let mut items = Vec::new();
    let mut already_present = 0;
    for slot in 0..size {
        match by_slot.get(&slot) {
            None => items.push(FillItem::Create(slot)),
            Some(m) if m.metadata(STATE_KEY) == Some(SlotState::Filling.as_str()) => {
                items.push(FillItem::Park(slot, m.id.clone()));
            }
            Some(_) => already_present += 1,
        }
    }
    let mut bulk = BulkOptions {
        concurrency: opts.concurrency.max(1),
        min_interval: opts.create_interval,
        rate_limit_retries: 8,
        ..BulkOptions::default()
    };
    if opts.fast_backoff {
        bulk = bulk.fast_backoff();
    }
    let template = spec.template_hash();
    let report = run_bulk(items, &bulk, ctl, |item| {
        let template = template.clone();
        async move {
            match item {
                FillItem::Create(slot) => {
                    let key = slot_key(&spec.pool, slot);
                    let name = format!("{}-{slot}", spec.pool);
                    let m = create_member(client, spec, slot, &template, &key, name, secrets_floor)
                        .await?;
                    park_and_free(client, spec, &m.id, opts.park_timeout).await?;
                    Ok(SlotAction::Created)
                }
                FillItem::Park(slot, id) => {
                    park_and_free(client, spec, &id, opts.park_timeout)
                        .await
                        .map_err(|e| tag(e, slot))?;
                    Ok(SlotAction::Parked)
                }
            }
        }
    })
    .await;
    let mut out = FillReport {
        app: spec.app.clone(),
        pool: spec.pool.clone(),
        size: size as usize,
        already_present,
        created: 0,
        parked: 0,
        failed: Vec::new(),
        cancelled: 0,
        rate_limited_retries: 0,
        elapsed: Duration::ZERO,
    };
    for item in report.items {
        out.rate_limited_retries += item.attempts.saturating_sub(1);
        match item.outcome {
            ItemOutcome::Done(SlotAction::Created) => out.created += 1,
            ItemOutcome::Done(SlotAction::Parked) => out.parked += 1,
            ItemOutcome::Failed(e) => out.failed.push((item.key.slot(), e.source_text())),
            ItemOutcome::Skipped | ItemOutcome::Cancelled => out.cancelled += 1,
        }
    }
    out.elapsed = started.elapsed();
    Ok(out)
}

fn tag(e: Error, slot: u32) -> Error {
    match e {
        Error::Fly { step, source } => Error::Fly {
            step: format!("slot {slot}: {step}"),
            source,
        },
        other => other,
    }
}

/// Creates slot `slot`'s machine (state `filling`), launched when it will be suspended,
/// with at least `secrets_floor` as its `min_secrets_version`.
#[allow(
    clippy::too_many_arguments,
    reason = "one private step taking the fill's pieces; a struct would only rename them"
)]
async fn create_member(
    client: &fly::Client,
    spec: &PoolSpec,
    slot: u32,
    template: &str,
    key: &str,
    name: String,
    secrets_floor: Option<u64>,
) -> Result<Machine, Error> {
    let mut config = spec.config.clone();
    if let Some(v) = secrets_floor {
        super::record_secrets_version(&mut config, v);
    }
    for (k, v) in [
        (POOL_KEY, spec.pool.as_str()),
        (STATE_KEY, SlotState::Filling.as_str()),
        (TEMPLATE_KEY, template),
        (OWNER_METADATA_KEY, OWNER_METADATA_VALUE),
        (IDEMPOTENCY_KEY_METADATA, key),
    ] {
        config.metadata.insert(k.to_owned(), v.to_owned());
    }
    config
        .metadata
        .insert(SLOT_KEY.to_owned(), slot.to_string());
    let body = CreateMachine {
        min_secrets_version: super::recorded_secrets_version(&config),
        config,
        name: Some(name),
        region: spec.region.clone(),
        skip_launch: (spec.park == Park::Stopped).then_some(true),
        ..CreateMachine::default()
    };
    let step = || format!("slot {slot}: creating a machine in app {}", spec.app);
    // The fill already listed the pool, so a plain create is safe; only an ambiguous
    // failure needs a look by the idempotency key before anyone retries.
    match client.create_machine(&spec.app, &body).await {
        Ok(m) => Ok(m),
        Err(e) if e.is_ambiguous() => {
            match client.find_machine_by_idempotency_key(&spec.app, key).await {
                Ok(Some(m)) => Ok(m),
                Ok(None) | Err(_) => Err(Error::fly(step())(e)),
            }
        }
        Err(e) if e.is_conflict() => {
            // Same name: an earlier attempt made it.
            match client.find_machine_by_idempotency_key(&spec.app, key).await {
                Ok(Some(m)) => Ok(m),
                Ok(None) | Err(_) => Err(Error::fly(step())(e)),
            }
        }
        Err(e) => Err(Error::fly(step())(e)),
    }
}

/// Brings a `filling` member to the park state, then marks it free.
async fn park_and_free(
    client: &fly::Client,
    spec: &PoolSpec,
    id: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let app = spec.app.as_str();
    park(client, app, id, spec.park, None, timeout).await?;
    let changes = BTreeMap::from([(STATE_KEY.to_owned(), Some(SlotState::Free.as_str().into()))]);
    client
        .patch_metadata(app, id, &changes, None, None)
        .await
        .map_err(Error::fly(format!("marking machine {id} free")))
}

/// Moves a machine to `target` (start first when suspending one that is not running).
async fn park(
    client: &fly::Client,
    app: &str,
    id: &str,
    target: Park,
    nonce: Option<&LeaseNonce>,
    timeout: Duration,
) -> Result<(), Error> {
    let mut state = client
        .get_machine(app, id)
        .await
        .map_err(Error::fly(format!("reading machine {id}")))?
        .state;
    if target.holds(&state) {
        return Ok(());
    }
    if matches!(state, MachineState::Created | MachineState::Starting) && target == Park::Suspended
    {
        wait(client, app, id, WaitTarget::Started, timeout).await?;
        state = MachineState::Started;
    }
    match target {
        Park::Suspended => {
            if !matches!(state, MachineState::Started) {
                client
                    .start_machine(app, id, nonce)
                    .await
                    .map_err(Error::fly(format!("starting machine {id} to suspend it")))?;
                wait(client, app, id, WaitTarget::Started, timeout).await?;
            }
            client
                .suspend_machine(app, id, nonce)
                .await
                .map_err(Error::fly(format!("suspending machine {id}")))?;
            wait(client, app, id, WaitTarget::Suspended, timeout).await
        }
        Park::Stopped => {
            client
                .stop_machine(app, id, &fly::StopOptions::default(), nonce)
                .await
                .map_err(Error::fly(format!("stopping machine {id}")))?;
            wait(client, app, id, WaitTarget::Stopped, timeout).await
        }
    }
}

async fn wait(
    client: &fly::Client,
    app: &str,
    id: &str,
    target: WaitTarget,
    timeout: Duration,
) -> Result<(), Error> {
    client
        .wait_for_state(app, id, &[target], None, None, timeout)
        .await
        .map(|_| ())
        .map_err(Error::fly(format!(
            "waiting for machine {id} to be {}",
            target.as_str()
        )))
}

// ---------------------------------------------------------------------------------
// Claim
// ---------------------------------------------------------------------------------

/// What `claim_environment` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub app: String,
    pub pool: String,
    /// Who the environment is for (kept in metadata).
    pub user: String,
    /// How long the claim lasts before `reap_expired` may destroy it.
    pub ttl: Duration,
    /// How long the machine may take to start.
    pub start_timeout: Duration,
}

/// An environment handed to a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub app: String,
    pub pool: String,
    pub machine_id: String,
    pub name: String,
    pub region: String,
    pub user: String,
    pub expires_at: Timestamp,
    /// Public URL of the app; route to this machine with the `fly-force-instance-id` header.
    pub url: String,
    /// Private 6PN address: `<machine_id>.vm.<app>.internal`.
    pub private_address: String,
    /// The machine state the claim started it from (`suspended`, `stopped`, `started`).
    pub started_from: String,
    /// True when the user already held this environment (the claim was renewed).
    pub renewed: bool,
}

/// How a claim ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// An environment, started and tagged.
    Claimed(Environment),
    /// No free environment: every member is claimed (or being filled / broken).
    Empty {
        pool: String,
        members: usize,
        claimed: usize,
    },
}

enum Attempt {
    Claimed(Box<Environment>),
    /// Someone else holds the lease, or the rate limit said no: may be free later.
    Contended,
    /// Verified under the lease: not free any more.
    Taken,
}

/// `claim_environment`: hands out a free environment of the pool on the fast path
/// (resume a suspended one, else start a stopped one), tagged with the user and
/// `expires_at`. A user who already holds one gets it back, started, with a renewed
/// expiry. Answers [`ClaimOutcome::Empty`] when nothing is free.
pub async fn claim(
    client: &fly::Client,
    req: &ClaimRequest,
    now: Timestamp,
) -> Result<ClaimOutcome, Error> {
    if req.user.is_empty() || req.user.len() > 128 {
        return Err(Error::Invalid {
            field: "user".into(),
            rule: "1 to 128 characters".into(),
        });
    }
    let ttl = SignedDuration::try_from(req.ttl).map_err(|_| Error::Invalid {
        field: "ttl".into(),
        rule: "too long".into(),
    })?;
    let expires_at = now.checked_add(ttl).map_err(|_| Error::Invalid {
        field: "ttl".into(),
        rule: "too long".into(),
    })?;
    let (app, pool) = (req.app.as_str(), req.pool.as_str());
    // Verified under a lease during this call: not free, whatever a listing says.
    let mut taken: Vec<String> = Vec::new();
    let mut last: Option<(usize, Vec<String>)> = None;
    let mut newer_than = None;
    let contention_deadline =
        std::time::Instant::now() + req.start_timeout.min(CLAIM_CONTENTION_BUDGET);
    let mut passes = 0;
    // Every pass on a fresh listing that meets no contention and no claim in flight
    // breaks out; only contended passes outlast the first few, until the deadline.
    while passes < CLAIM_PASSES || std::time::Instant::now() < contention_deadline {
        passes += 1;
        // The first pass may use this process's recent listing (listing an app is
        // limited to 1/s, a claim should not be); every later pass needs one made
        // after the previous pass's attempts.
        let (machines, fresh) = listing(client, app, pool, newer_than).await?;
        let claimed_ids: Vec<String> = machines
            .iter()
            .filter(|m| m.metadata(STATE_KEY) == Some(SlotState::Claimed.as_str()))
            .map(|m| m.id.clone())
            .collect();
        last = Some((machines.len(), claimed_ids));
        if let Some(own) = machines.iter().find(|m| {
            m.metadata(STATE_KEY) == Some(SlotState::Claimed.as_str())
                && m.metadata(USER_KEY) == Some(req.user.as_str())
                && !taken.contains(&m.id)
        }) {
            match try_claim(client, req, own, expires_at, true).await? {
                Attempt::Claimed(env) => return Ok(ClaimOutcome::Claimed(*env)),
                Attempt::Contended => {}
                Attempt::Taken => taken.push(own.id.clone()),
            }
        }
        let mut free: Vec<&Machine> = machines
            .iter()
            .filter(|m| {
                m.metadata(STATE_KEY) == Some(SlotState::Free.as_str())
                    && (Park::Suspended.holds(&m.state) || Park::Stopped.holds(&m.state))
                    && !taken.contains(&m.id)
            })
            .collect();
        // Marked free but already out of its parked state under someone's lease: a
        // claim in flight, which may still give it back.
        let in_flight = machines.iter().any(|m| {
            m.metadata(STATE_KEY) == Some(SlotState::Free.as_str())
                && m.lease.is_some()
                && !(Park::Suspended.holds(&m.state) || Park::Stopped.holds(&m.state))
                && !taken.contains(&m.id)
        });
        if free.is_empty() {
            if fresh && !in_flight {
                break;
            }
            newer_than = Some(std::time::Instant::now());
            continue;
        }
        // Suspended first (the fast path); each user starts at its own offset so
        // concurrent claimers spread over the pool instead of queueing on one lease.
        free.sort_by_key(|m| (!matches!(m.state, MachineState::Suspended), m.id.clone()));
        let offset = spread(&req.user, free.len());
        free.rotate_left(offset);
        let mut contended = false;
        for m in free {
            if known_unavailable(client, app, pool, &m.id) {
                // Another claim in this process took it meanwhile.
                continue;
            }
            match try_claim(client, req, m, expires_at, false).await? {
                Attempt::Claimed(env) => {
                    note_claimed(client, app, pool, &env);
                    return Ok(ClaimOutcome::Claimed(*env));
                }
                Attempt::Contended => contended = true,
                Attempt::Taken => {
                    note_taken(client, app, pool, &m.id);
                    taken.push(m.id.clone());
                }
            }
        }
        if fresh && !contended && !in_flight {
            break;
        }
        newer_than = Some(std::time::Instant::now());
    }
    // What this call verified under leases is newer than the listing it started from.
    let (members, mut claimed_ids) = last.unwrap_or_default();
    claimed_ids.extend(taken);
    claimed_ids.sort_unstable();
    claimed_ids.dedup();
    let claimed = claimed_ids.len().min(members);
    Ok(ClaimOutcome::Empty {
        pool: req.pool.clone(),
        members,
        claimed,
    })
}

/// How long a process reuses its listing of a pool for the first pass of a claim.
const LISTING_TTL: Duration = Duration::from_secs(2);

type Listings = std::sync::Mutex<BTreeMap<String, (std::time::Instant, Vec<Machine>)>>;

/// This process's recent pool listings. Only a hint: every claim verifies its
/// candidate under the lease, so a stale entry costs a lease round trip, never a
/// double claim.
fn listings() -> &'static Listings {
    static LISTINGS: std::sync::OnceLock<Listings> = std::sync::OnceLock::new();
    LISTINGS.get_or_init(Listings::default)
}

fn listing_key(client: &fly::Client, app: &str, pool: &str) -> String {
    format!("{}|{app}|{pool}", client.api_hostname())
}

/// The pool's members. Pass 0 (`newer_than` = `None`) takes this process's listing
/// if it is recent; later passes need one made after `newer_than` (after this claim's
/// previous attempts), which concurrent claimers in the process share: one lists while
/// the others wait for its answer. The flag says whether the listing is that new.
async fn listing(
    client: &fly::Client,
    app: &str,
    pool: &str,
    newer_than: Option<std::time::Instant>,
) -> Result<(Vec<Machine>, bool), Error> {
    let key = listing_key(client, app, pool);
    let usable = |key: &str| {
        listings()
            .lock()
            .ok()
            .and_then(|map| map.get(key).cloned())
            .filter(|(at, _)| match newer_than {
                None => at.elapsed() < LISTING_TTL,
                Some(t) => *at >= t,
            })
            .map(|(_, machines)| machines)
    };
    if newer_than.is_none()
        && let Some(machines) = usable(&key)
    {
        return Ok((machines, false));
    }
    let turn = fetch_turn(&key);
    let _one_at_a_time = turn.lock().await;
    if let Some(machines) = usable(&key) {
        // Someone listed while this call waited its turn.
        return Ok((machines, newer_than.is_some()));
    }
    let at = std::time::Instant::now();
    let machines = list_pool(client, app, pool).await?;
    if let Ok(mut map) = listings().lock() {
        if map.len() > 256 {
            map.retain(|_, (t, _)| t.elapsed() < LISTING_TTL);
        }
        map.insert(key, (at, machines.clone()));
    }
    Ok((machines, true))
}

/// One lister at a time per pool in this process (the others wait and reuse its answer).
fn fetch_turn(key: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    type Turns = std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>;
    static TURNS: std::sync::OnceLock<Turns> = std::sync::OnceLock::new();
    let turns = TURNS.get_or_init(Turns::default);
    match turns.lock() {
        Ok(mut map) => {
            if map.len() > 256 {
                map.retain(|_, t| std::sync::Arc::strong_count(t) > 1);
            }
            map.entry(key.to_owned()).or_default().clone()
        }
        // A poisoned map only loses the sharing, not correctness.
        Err(_) => std::sync::Arc::default(),
    }
}

fn edit_listing(client: &fly::Client, app: &str, pool: &str, f: impl FnOnce(&mut Vec<Machine>)) {
    let key = listing_key(client, app, pool);
    if let Ok(mut map) = listings().lock()
        && let Some((_, machines)) = map.get_mut(&key)
    {
        f(machines);
    }
}

/// True when this process has since seen machine `id` claimed or gone.
fn known_unavailable(client: &fly::Client, app: &str, pool: &str, id: &str) -> bool {
    let key = listing_key(client, app, pool);
    let Ok(map) = listings().lock() else {
        return false;
    };
    map.get(&key).is_some_and(|(_, ms)| {
        ms.iter()
            .find(|m| m.id == id)
            .is_none_or(|m| m.metadata(STATE_KEY) != Some(SlotState::Free.as_str()))
    })
}

/// Marks `id` as not free in the shared listing. It stays a member: dropping it would
/// shrink the pool's size in every "N of M claimed" answer until the next listing.
fn note_taken(client: &fly::Client, app: &str, pool: &str, id: &str) {
    edit_listing(client, app, pool, |ms| {
        for m in ms.iter_mut().filter(|m| m.id == id) {
            if let Some(cfg) = m.config.as_mut() {
                cfg.metadata
                    .insert(STATE_KEY.to_owned(), SlotState::Claimed.as_str().to_owned());
            }
        }
    });
}

fn note_claimed(client: &fly::Client, app: &str, pool: &str, env: &Environment) {
    edit_listing(client, app, pool, |ms| {
        for m in ms.iter_mut().filter(|m| m.id == env.machine_id) {
            if let Some(cfg) = m.config.as_mut() {
                cfg.metadata
                    .insert(STATE_KEY.to_owned(), SlotState::Claimed.as_str().to_owned());
                cfg.metadata.insert(USER_KEY.to_owned(), env.user.clone());
            }
            m.state = MachineState::Started;
        }
    });
}

fn spread(user: &str, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut h);
    usize::try_from(h.finish() % (len as u64)).unwrap_or(0)
}

/// One candidate under its lease: re-read, verify, tag, start, release.
async fn try_claim(
    client: &fly::Client,
    req: &ClaimRequest,
    candidate: &Machine,
    expires_at: Timestamp,
    renew: bool,
) -> Result<Attempt, Error> {
    let app = req.app.as_str();
    let id = candidate.id.as_str();
    let lease = match client
        .acquire_lease(
            app,
            id,
            LEASE_TTL_SECS,
            "fly-machines-mcp claim_environment",
        )
        .await
    {
        Ok(l) => l,
        Err(e) if e.is_conflict() || e.status() == Some(429) => return Ok(Attempt::Contended),
        Err(e) if e.is_not_found() => return Ok(Attempt::Taken),
        Err(e) => return Err(Error::fly(format!("leasing machine {id}"))(e)),
    };
    let Some(nonce) = lease.nonce else {
        return Ok(Attempt::Contended);
    };
    let result = claim_under_lease(client, req, id, &nonce, expires_at, renew).await;
    match &result {
        // On success the lease is released while the machine boots (see below).
        Ok(Attempt::Claimed(_)) => {}
        Ok(Attempt::Contended | Attempt::Taken) | Err(_) => {
            release_quietly(client, app, id, &nonce).await;
        }
    }
    result
}

async fn claim_under_lease(
    client: &fly::Client,
    req: &ClaimRequest,
    id: &str,
    nonce: &LeaseNonce,
    expires_at: Timestamp,
    renew: bool,
) -> Result<Attempt, Error> {
    let app = req.app.as_str();
    let m = match client.get_machine(app, id).await {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return Ok(Attempt::Taken),
        Err(e) => return Err(Error::fly(format!("re-reading machine {id}"))(e)),
    };
    let pool_ok = m.metadata(POOL_KEY) == Some(req.pool.as_str());
    let still_ok = if renew {
        m.metadata(STATE_KEY) == Some(SlotState::Claimed.as_str())
            && m.metadata(USER_KEY) == Some(req.user.as_str())
    } else {
        m.metadata(STATE_KEY) == Some(SlotState::Free.as_str())
            && (Park::Suspended.holds(&m.state) || Park::Stopped.holds(&m.state))
    };
    if !pool_ok || !still_ok {
        return Ok(Attempt::Taken);
    }
    let changes = BTreeMap::from([
        (
            STATE_KEY.to_owned(),
            Some(SlotState::Claimed.as_str().to_owned()),
        ),
        (USER_KEY.to_owned(), Some(req.user.clone())),
        (EXPIRES_KEY.to_owned(), Some(expires_at.to_string())),
    ]);
    // Under the lease nobody else can tag or start it, so tagging and starting go
    // together (one round trip less on the claim's critical path). A machine that is
    // starting is no candidate for anyone, even while its metadata still says free.
    let needs_start = !matches!(m.state, MachineState::Started);
    let (tagged, started) = tokio::join!(
        client.patch_metadata(app, id, &changes, Some(&m.version), Some(nonce)),
        async {
            if needs_start {
                client.start_machine(app, id, Some(nonce)).await.map(|_| ())
            } else {
                Ok(())
            }
        }
    );
    let started_from = m.state.to_string();
    match (tagged, started) {
        (Ok(()), Ok(())) => {}
        (Ok(()), Err(e)) => {
            if !renew {
                // Give it back untouched so the next claim can try it.
                let _ = client
                    .patch_metadata(app, id, &unclaimed(), None, Some(nonce))
                    .await;
            }
            return Err(Error::fly(format!("starting machine {id}"))(e));
        }
        (Err(e), started) => {
            if needs_start && started.is_ok() {
                // Started but not tagged: park it again before letting go of it.
                let back = if matches!(m.state, MachineState::Suspended) {
                    Park::Suspended
                } else {
                    Park::Stopped
                };
                if let Err(undo) = park(client, app, id, back, Some(nonce), req.start_timeout).await
                {
                    tracing::warn!(app, machine = id, error = %undo, "could not park an untagged machine again");
                }
            }
            if e.is_conflict() {
                return Ok(Attempt::Contended);
            }
            return Err(Error::fly(format!("tagging machine {id} as claimed"))(e));
        }
    }
    // The metadata already says "claimed", so nobody else will take it: release the
    // lease while the machine boots instead of after.
    let (waited, ()) = tokio::join!(
        wait(client, app, id, WaitTarget::Started, req.start_timeout),
        release_quietly(client, app, id, nonce)
    );
    waited?;
    Ok(Attempt::Claimed(Box::new(Environment {
        app: app.to_owned(),
        pool: req.pool.clone(),
        machine_id: id.to_owned(),
        name: m.name.clone(),
        region: m.region.clone(),
        user: req.user.clone(),
        expires_at,
        url: format!("https://{app}.fly.dev"),
        private_address: format!("{id}.vm.{app}.internal"),
        started_from,
        renewed: renew,
    })))
}

/// The metadata change that makes a member free again (no user, no expiry).
fn unclaimed() -> BTreeMap<String, Option<String>> {
    BTreeMap::from([
        (
            STATE_KEY.to_owned(),
            Some(SlotState::Free.as_str().to_owned()),
        ),
        (USER_KEY.to_owned(), None),
        (EXPIRES_KEY.to_owned(), None),
    ])
}

async fn release_quietly(client: &fly::Client, app: &str, id: &str, nonce: &LeaseNonce) {
    if let Err(e) = client.release_lease(app, id, nonce).await {
        tracing::warn!(app, machine = id, error = %e, "lease release failed; it expires on its own");
    }
}

/// Refill after a claim: puts one more free environment in the pool, built from the
/// claimed one's config (and refills slots reaped meanwhile), on the fill path
/// (paced, resumable). The tool layer runs it after answering, when asked.
pub async fn refill_after_claim(
    client: &fly::Client,
    env: &Environment,
    opts: &FillOptions,
    ctl: &Control,
) -> Result<FillReport, Error> {
    let machines = list_pool(client, &env.app, &env.pool).await?;
    let Some(claimed) = machines.iter().find(|m| m.id == env.machine_id) else {
        return Err(Error::NotFound {
            what: "pool machine",
            id: env.machine_id.clone(),
            hint: String::new(),
        });
    };
    let mut config = super::full_config(claimed, "be copied to refill the pool")?;
    for k in [
        POOL_KEY,
        STATE_KEY,
        USER_KEY,
        EXPIRES_KEY,
        TEMPLATE_KEY,
        SLOT_KEY,
        IDEMPOTENCY_KEY_METADATA,
        OWNER_METADATA_KEY,
        super::SECRETS_VERSION_METADATA_KEY,
    ] {
        config.metadata.remove(k);
    }
    let slots = machines
        .iter()
        .filter_map(|m| m.metadata(SLOT_KEY).and_then(|s| s.parse::<u32>().ok()))
        .max()
        .map_or(0, |s| s.saturating_add(1));
    let spec = PoolSpec {
        app: env.app.clone(),
        pool: env.pool.clone(),
        region: Some(claimed.region.clone()).filter(|r| !r.is_empty()),
        config,
        park: if env.started_from == MachineState::Suspended.as_str() {
            Park::Suspended
        } else {
            Park::Stopped
        },
    };
    fill(client, &spec, slots.saturating_add(1), opts, ctl).await
}

// ---------------------------------------------------------------------------------
// Release
// ---------------------------------------------------------------------------------

/// Whose environment to release.
#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseTarget {
    /// The environment claimed by this user.
    User(String),
    /// This machine.
    Machine(String),
}

/// What happens to a released environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseMode {
    /// Hibernate: park it but keep it for the same user (their next claim resumes it)
    /// until the claim expires.
    Keep,
    /// Back to the pool as it is (for environments that hold no user data).
    Recycle,
    /// Destroy it and put a fresh one from the same config in its slot.
    Wipe,
}

/// What `release_environment` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    pub machine_id: String,
    /// For `Wipe`: the fresh machine in the slot.
    pub replacement: Option<String>,
    pub user: Option<String>,
    pub mode: ReleaseMode,
    pub parked_as: Park,
}

/// `release_environment`: parks a claimed environment (suspend, or stop) and keeps,
/// recycles or wipes it, all under its lease.
pub async fn release(
    client: &fly::Client,
    app: &str,
    pool: &str,
    target: &ReleaseTarget,
    mode: ReleaseMode,
    park_as: Park,
    timeout: Duration,
) -> Result<Released, Error> {
    let machines = list_pool(client, app, pool).await?;
    let found = machines.iter().find(|m| match target {
        ReleaseTarget::User(u) => {
            m.metadata(STATE_KEY) == Some(SlotState::Claimed.as_str())
                && m.metadata(USER_KEY) == Some(u.as_str())
        }
        ReleaseTarget::Machine(id) => m.id == *id,
    });
    let Some(m) = found else {
        let (what, id) = match target {
            ReleaseTarget::User(u) => ("claim of user", u.clone()),
            ReleaseTarget::Machine(id) => ("pool machine", id.clone()),
        };
        return Err(Error::NotFound {
            what,
            id,
            hint: format!(": call pool_status with pool {pool} to see the claims"),
        });
    };
    let id = m.id.clone();
    let lease = client
        .acquire_lease(
            app,
            &id,
            LEASE_TTL_SECS,
            "fly-machines-mcp release_environment",
        )
        .await
        .map_err(Error::fly(format!("leasing machine {id}")))?;
    let Some(nonce) = lease.nonce else {
        return Err(Error::Refused {
            rule: "lease".into(),
            message: format!("the lease on machine {id} came without a nonce"),
        });
    };
    let result = release_under_lease(client, app, pool, &id, &nonce, mode, park_as, timeout).await;
    if !matches!(
        result,
        Ok(Released {
            mode: ReleaseMode::Wipe,
            ..
        })
    ) {
        release_quietly(client, app, &id, &nonce).await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn release_under_lease(
    client: &fly::Client,
    app: &str,
    pool: &str,
    id: &str,
    nonce: &LeaseNonce,
    mode: ReleaseMode,
    park_as: Park,
    timeout: Duration,
) -> Result<Released, Error> {
    let m = client
        .get_machine(app, id)
        .await
        .map_err(Error::fly(format!("re-reading machine {id}")))?;
    if m.metadata(POOL_KEY) != Some(pool) {
        return Err(Error::Refused {
            rule: "pool".into(),
            message: format!("machine {id} is not in pool {pool}"),
        });
    }
    let user = m.metadata(USER_KEY).map(str::to_owned);
    match mode {
        ReleaseMode::Keep | ReleaseMode::Recycle => {
            park(client, app, id, park_as, Some(nonce), timeout).await?;
            if mode == ReleaseMode::Recycle {
                client
                    .patch_metadata(app, id, &unclaimed(), Some(&m.version), Some(nonce))
                    .await
                    .map_err(Error::fly(format!("marking machine {id} free")))?;
            }
            Ok(Released {
                machine_id: id.to_owned(),
                replacement: None,
                user,
                mode,
                parked_as: park_as,
            })
        }
        ReleaseMode::Wipe => {
            let mut config = super::full_config(&m, "be rebuilt (wipe)")?;
            client
                .destroy_machine(app, id, true, Some(nonce))
                .await
                .map_err(Error::fly(format!("destroying machine {id}")))?;
            let slot = m
                .metadata(SLOT_KEY)
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0);
            for k in [USER_KEY, EXPIRES_KEY] {
                config.metadata.remove(k);
            }
            let spec = PoolSpec {
                app: app.to_owned(),
                pool: pool.to_owned(),
                region: Some(m.region.clone()).filter(|r| !r.is_empty()),
                config,
                park: park_as,
            };
            let template = m.metadata(TEMPLATE_KEY).unwrap_or("").to_owned();
            // A destroyed machine keeps its name for a while: the fresh one gets a new one.
            let generation = ulid::Ulid::generate().to_string().to_ascii_lowercase();
            let suffix: String = generation.chars().rev().take(6).collect();
            let key = format!("{}-{generation}", slot_key(pool, slot));
            let name = format!("{pool}-{slot}-{suffix}");
            // The wiped machine's config carries the secrets version it was given.
            let floor = super::recorded_secrets_version(&spec.config);
            let fresh = create_member(client, &spec, slot, &template, &key, name, floor).await?;
            park_and_free(client, &spec, &fresh.id, timeout).await?;
            Ok(Released {
                machine_id: id.to_owned(),
                replacement: Some(fresh.id),
                user,
                mode,
                parked_as: park_as,
            })
        }
    }
}

// ---------------------------------------------------------------------------------
// Reap
// ---------------------------------------------------------------------------------

/// What `reap_expired` would destroy.
#[derive(Debug, Clone, PartialEq)]
pub struct ReapPlan {
    pub app: String,
    pub pool: String,
    pub now: Timestamp,
    /// Claimed members past `expires_at`.
    pub expired: Vec<Member>,
}

/// One reaped (or spared) member.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaped {
    pub machine_id: String,
    pub user: Option<String>,
    /// `destroyed`, `renewed` (no longer expired under the lease), `busy` (leased by
    /// someone else) or `failed: …`.
    pub outcome: String,
}

/// Plans `reap_expired`: the claimed members of `pool` past `expires_at` at `now`.
pub async fn plan_reap(
    client: &fly::Client,
    app: &str,
    pool: &str,
    now: Timestamp,
) -> Result<ReapPlan, Error> {
    let machines = list_pool(client, app, pool).await?;
    let expired = machines
        .iter()
        .map(Member::of)
        .filter(|m| m.is_expired(now))
        .collect();
    Ok(ReapPlan {
        app: app.to_owned(),
        pool: pool.to_owned(),
        now,
        expired,
    })
}

/// `reap_expired`: destroys each planned member after re-checking its expiry under
/// its lease (a claim renewed meanwhile is spared).
pub async fn reap(client: &fly::Client, plan: &ReapPlan, ctl: &Control) -> Vec<Reaped> {
    let ids: Vec<String> = plan.expired.iter().map(|m| m.machine_id.clone()).collect();
    let report = run_bulk(
        ids,
        &BulkOptions::with_concurrency(8),
        ctl,
        |id| async move { reap_one(client, plan, &id).await },
    )
    .await;
    report
        .items
        .into_iter()
        .map(|item| {
            let user = plan
                .expired
                .iter()
                .find(|m| m.machine_id == item.key)
                .and_then(|m| m.user.clone());
            let outcome = match item.outcome {
                ItemOutcome::Done(o) => o.to_owned(),
                ItemOutcome::Failed(e) => format!("failed: {}", e.source_text()),
                ItemOutcome::Skipped | ItemOutcome::Cancelled => "not started".to_owned(),
            };
            Reaped {
                machine_id: item.key,
                user,
                outcome,
            }
        })
        .collect()
}

async fn reap_one(client: &fly::Client, plan: &ReapPlan, id: &str) -> Result<&'static str, Error> {
    let app = plan.app.as_str();
    let lease = match client
        .acquire_lease(app, id, LEASE_TTL_SECS, "fly-machines-mcp reap_expired")
        .await
    {
        Ok(l) => l,
        Err(e) if e.is_conflict() => return Ok("busy"),
        Err(e) if e.is_not_found() => return Ok("already gone"),
        Err(e) => return Err(Error::fly(format!("leasing machine {id}"))(e)),
    };
    let Some(nonce) = lease.nonce else {
        return Ok("busy");
    };
    let m = match client.get_machine(app, id).await {
        Ok(m) => m,
        Err(e) => {
            release_quietly(client, app, id, &nonce).await;
            return Err(Error::fly(format!("re-reading machine {id}"))(e));
        }
    };
    if !Member::of(&m).is_expired(plan.now) || m.metadata(POOL_KEY) != Some(plan.pool.as_str()) {
        release_quietly(client, app, id, &nonce).await;
        return Ok("renewed");
    }
    client
        .destroy_machine(app, id, true, Some(&nonce))
        .await
        .map_err(Error::fly(format!("destroying machine {id}")))?;
    Ok("destroyed")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PoolSpec {
        PoolSpec {
            app: "envs".into(),
            pool: "dev".into(),
            region: Some("iad".into()),
            config: MachineConfig {
                image: "nginx:1".into(),
                ..MachineConfig::default()
            },
            park: Park::Suspended,
        }
    }

    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let a = spec();
        assert_eq!(a.template_hash(), spec().template_hash());
        assert_eq!(a.template_hash().len(), 12);
        let mut b = spec();
        b.config.image = "nginx:2".into();
        assert_ne!(a.template_hash(), b.template_hash());
        let mut c = spec();
        c.park = Park::Stopped;
        assert_ne!(a.template_hash(), c.template_hash());
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [2, {"z": 1, "y": 2}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn member_classification() {
        let mut m = Machine {
            id: "m1".into(),
            state: MachineState::Suspended,
            config: Some(MachineConfig::default()),
            ..Machine::default()
        };
        let md = &mut m.config.as_mut().unwrap().metadata;
        md.insert(STATE_KEY.into(), "free".into());
        assert!(Member::of(&m).broken.is_none());
        m.state = MachineState::Started;
        assert!(Member::of(&m).broken.is_some());
        let md = &mut m.config.as_mut().unwrap().metadata;
        md.insert(STATE_KEY.into(), "claimed".into());
        md.insert(EXPIRES_KEY.into(), "2026-01-01T00:00:00Z".into());
        let member = Member::of(&m);
        assert!(member.broken.is_none());
        assert!(member.is_expired("2026-01-01T00:00:01Z".parse().unwrap()));
        assert!(!member.is_expired("2025-12-31T23:59:59Z".parse().unwrap()));
    }

    #[test]
    fn a_taken_member_stays_counted_but_is_no_longer_free() {
        let base = url::Url::parse("http://127.0.0.1:9/").unwrap();
        let client = fly::Client::new(fly::ClientConfig::local(base, None).unwrap()).unwrap();
        let free = |id: &str| {
            let mut m = Machine {
                id: id.into(),
                state: MachineState::Suspended,
                config: Some(MachineConfig::default()),
                ..Machine::default()
            };
            let md = &mut m.config.as_mut().unwrap().metadata;
            md.insert(STATE_KEY.into(), "free".into());
            m
        };
        let key = listing_key(&client, "taken-app", "p");
        let now = std::time::Instant::now();
        listings()
            .lock()
            .unwrap()
            .insert(key.clone(), (now, vec![free("a"), free("b")]));
        assert!(!known_unavailable(&client, "taken-app", "p", "a"));
        note_taken(&client, "taken-app", "p", "a");
        let (_, ms) = listings().lock().unwrap().get(&key).cloned().unwrap();
        assert_eq!(ms.len(), 2, "a taken member is still a member");
        assert!(known_unavailable(&client, "taken-app", "p", "a"));
        assert!(!known_unavailable(&client, "taken-app", "p", "b"));
    }

    #[test]
    fn spread_stays_in_range() {
        for n in 1..20 {
            assert!(spread("alice", n) < n);
        }
        assert_eq!(spread("alice", 0), 0);
    }
}
