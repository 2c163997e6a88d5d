//! Filling a pool: create the missing slots from the template (paced at the create
//! rate, resumable by slot number and idempotency key), boot each and park it; and the
//! refill after a claim.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fly::{
    self, CreateMachine, IDEMPOTENCY_KEY_METADATA, LeaseNonce, Machine, MachineState, WaitTarget,
};
use crate::workflows::NextStep;
use crate::workflows::sched::{BulkOptions, Control, ItemOutcome, run_bulk};
use crate::workflows::{self, Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE};

use super::claim::Environment;
use super::{
    EXPIRES_KEY, POOL_KEY, Park, PoolSpec, SLOT_KEY, STATE_KEY, SlotState, TEMPLATE_KEY, USER_KEY,
    is_member, list_app, list_pool,
};

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
    let secrets_floor = workflows::secrets_floor(&app_machines)
        .into_iter()
        .chain(workflows::recorded_secrets_version(&spec.config))
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
pub(super) async fn create_member(
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
        workflows::record_secrets_version(&mut config, v);
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
    let mut body = CreateMachine {
        min_secrets_version: workflows::recorded_secrets_version(&config),
        config,
        name: Some(name.clone()),
        region: spec.region.clone(),
        skip_launch: (spec.park == Park::Stopped).then_some(true),
        ..CreateMachine::default()
    };
    let step = || format!("slot {slot}: creating a machine in app {}", spec.app);
    // The fill already listed the pool, so a plain create is safe; only an ambiguous
    // failure needs a look by the idempotency key before the create is sent again (it
    // had no effect when nothing carries the key; a second create of the same name
    // that did go through answers 409, looked up the same way).
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.create_machine(&spec.app, &body).await {
            Ok(m) => return Ok(m),
            Err(e) if e.is_ambiguous() || e.is_conflict() => {
                match client.find_machine_by_idempotency_key(&spec.app, key).await {
                    Ok(Some(m)) => return Ok(m),
                    Ok(None) if attempts < CREATE_ATTEMPTS => {
                        // Nothing carries the key: an ambiguous create made nothing, and a
                        // name conflict is with another machine holding the name, such as
                        // one of this slot being destroyed (a destroyed machine keeps its
                        // name for a while): the slot's machine takes a fresh name.
                        if e.is_conflict() {
                            let generation =
                                ulid::Ulid::generate().to_string().to_ascii_lowercase();
                            let suffix: String = generation.chars().rev().take(6).collect();
                            body.name = Some(format!("{name}-{suffix}"));
                        }
                    }
                    Ok(None) => return Err(Error::fly(step())(e)),
                    Err(look) => return Err(Error::fly(step())(look)),
                }
            }
            Err(e) => return Err(Error::fly(step())(e)),
        }
    }
}

/// Creates sent for one slot while each ambiguous failure turns out to have made
/// nothing.
const CREATE_ATTEMPTS: usize = 4;

/// Brings a `filling` member to the park state, then marks it free.
pub(super) async fn park_and_free(
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
pub(super) async fn park(
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

pub(super) async fn wait(
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
            hint: NextStep::none(),
        });
    };
    let mut config = workflows::full_config(claimed, "be copied to refill the pool")?;
    for k in [
        POOL_KEY,
        STATE_KEY,
        USER_KEY,
        EXPIRES_KEY,
        TEMPLATE_KEY,
        SLOT_KEY,
        IDEMPOTENCY_KEY_METADATA,
        OWNER_METADATA_KEY,
        workflows::SECRETS_VERSION_METADATA_KEY,
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
