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

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::fly::{self, LeaseNonce, Machine, MachineConfig, MachineFilter, MachineState};
use crate::workflows::NextStep;

use super::Error;

mod claim;
mod fill;
mod listing;
mod reap;
mod release;

pub use claim::{ClaimOutcome, ClaimRequest, Environment, claim};
pub use fill::{
    CREATE_BURST, CREATE_RATE_PER_SEC, FillOptions, FillReport, SlotAction, create_rate_bound,
    fill, refill_after_claim, slot_key,
};
pub use listing::PoolListings;
pub use reap::{ReapPlan, Reaped, plan_reap, reap};
pub use release::{ReleaseMode, ReleaseTarget, Released, release};

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
pub(super) const LEASE_TTL_SECS: u64 = 30;
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
pub(super) async fn list_pool(
    client: &fly::Client,
    app: &str,
    pool: &str,
) -> Result<Vec<Machine>, Error> {
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
pub(super) fn is_member(m: &Machine, pool: &str) -> bool {
    m.metadata(POOL_KEY) == Some(pool)
        && !m.state.is_terminal()
        && !matches!(m.state, MachineState::Destroying)
}

fn pool_list_error(app: &str, pool: &str, e: fly::Error) -> Error {
    Error::fly_or_not_found(format!("listing pool {pool} in app {app}"), || {
        Error::NotFound {
            what: "app",
            id: app.to_owned(),
            hint: NextStep::to("create the app first (provision_environment), then fill the pool"),
        }
    })(e)
}

/// Every live machine of `app`, with its config (one `GET …/machines`).
pub(super) async fn list_app(
    client: &fly::Client,
    app: &str,
    pool: &str,
) -> Result<Vec<Machine>, Error> {
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

/// The metadata change that makes a member free again (no user, no expiry).
pub(super) fn unclaimed() -> BTreeMap<String, Option<String>> {
    BTreeMap::from([
        (
            STATE_KEY.to_owned(),
            Some(SlotState::Free.as_str().to_owned()),
        ),
        (USER_KEY.to_owned(), None),
        (EXPIRES_KEY.to_owned(), None),
    ])
}

pub(super) async fn release_quietly(client: &fly::Client, app: &str, id: &str, nonce: &LeaseNonce) {
    if let Err(e) = client.release_lease(app, id, nonce).await {
        tracing::warn!(app, machine = id, error = %e, "lease release failed; it expires on its own");
    }
}

#[cfg(test)]
mod tests;
