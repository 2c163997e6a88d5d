//! Changing the config of an app's machines (image, env, guest size, cmd): a rolling
//! update by default, N machines at a time, each under a lease — acquire → update with
//! `current_version` (and the lease nonce) → wait until started → wait until its health
//! checks pass → release. On the first failure the rollout stops and that machine is put
//! back on its previous config. The `immediate` strategy changes every machine at once
//! without waiting for health.
//!
//! Owns the plan, the per-machine steps and the report; knows nothing of MCP. Leases are
//! refreshed while a machine's step runs so a crashed server never blocks it for long.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use std::sync::Mutex;

use crate::fly::{self, MachineConfig, MachineState, UpdateMachine, WaitTarget};

use super::Error;
use super::outcome::{self, Outcome, outcome_field};
use super::provision::CpuKind;
use super::sched::{BulkOptions, Control, ItemOutcome, Poll, run_bulk};

/// The description our leases carry (shown to anyone who finds the machine leased).
pub const LEASE_DESCRIPTION: &str = "fly-machines-mcp update_machines";

/// CPU and memory changes; unset fields keep the machine's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestChange {
    pub cpu_kind: Option<CpuKind>,
    pub cpus: Option<u32>,
    pub memory_mb: Option<u32>,
}

/// What to change on each machine. Unset fields keep the machine's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// New image reference.
    pub image: Option<String>,
    /// Environment variables to set (`Some`) or remove (`None`).
    pub env: BTreeMap<String, Option<String>>,
    /// New guest size.
    pub guest: Option<GuestChange>,
    /// New command (replaces the image's CMD).
    pub cmd: Option<Vec<String>>,
}

impl ConfigChange {
    /// True when the change names nothing to change.
    pub fn is_empty(&self) -> bool {
        self.image.is_none() && self.env.is_empty() && self.guest.is_none() && self.cmd.is_none()
    }

    /// The config after the change; everything not named is kept verbatim.
    pub fn apply(&self, config: &MachineConfig) -> MachineConfig {
        let mut next = config.clone();
        if let Some(image) = &self.image {
            next.image.clone_from(image);
        }
        for (key, value) in &self.env {
            match value {
                Some(v) => {
                    next.env.insert(key.clone(), v.clone());
                }
                None => {
                    next.env.remove(key);
                }
            }
        }
        if let Some(g) = &self.guest {
            let guest = next.guest.get_or_insert_with(fly::GuestConfig::default);
            if let Some(kind) = g.cpu_kind {
                kind.as_str().clone_into(&mut guest.cpu_kind);
            }
            if let Some(cpus) = g.cpus {
                guest.cpus = cpus;
            }
            if let Some(mem) = g.memory_mb {
                guest.memory_mb = mem;
            }
        }
        if let Some(cmd) = &self.cmd {
            next.init.get_or_insert_with(fly::InitConfig::default).cmd = Some(cmd.clone());
        }
        next
    }

    /// A one-line summary of the change (no values of env vars: names only).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(image) = &self.image {
            parts.push(format!("image → {image}"));
        }
        let env = |set: bool| -> Vec<&str> {
            self.env
                .iter()
                .filter(|(_, v)| v.is_some() == set)
                .map(|(k, _)| k.as_str())
                .collect()
        };
        for (verb, names) in [("set", env(true)), ("unset", env(false))] {
            if !names.is_empty() {
                parts.push(format!("env {verb} {}", names.join(",")));
            }
        }
        if let Some(g) = &self.guest {
            let mut guest = Vec::new();
            if let Some(k) = g.cpu_kind {
                guest.push(k.as_str().to_owned());
            }
            if let Some(c) = g.cpus {
                guest.push(format!("{c} cpu"));
            }
            if let Some(m) = g.memory_mb {
                guest.push(format!("{m} MB"));
            }
            parts.push(format!("guest → {}", guest.join(" ")));
        }
        if let Some(cmd) = &self.cmd {
            parts.push(format!("cmd → {}", cmd.join(" ")));
        }
        parts.join("; ")
    }
}

/// How the machines are changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `batch` machines at a time, each waited on (started, checks passing) before the
    /// next batch; stop and revert at the first failure.
    Rolling { batch: usize },
    /// Every machine at once; no health wait, no revert.
    Immediate,
}

impl Strategy {
    /// `rolling` or `immediate`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Rolling { .. } => "rolling",
            Strategy::Immediate => "immediate",
        }
    }
}

/// Timings and options of an update.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOptions {
    pub strategy: Strategy,
    /// How long a machine may take to reach `started` after its update.
    pub start_timeout: Duration,
    /// How long its health checks may take to pass once started.
    pub health_timeout: Duration,
    /// Lease TTL; the lease is refreshed every third of it while the machine's step runs.
    pub lease_ttl: Duration,
    /// Machines must see at least this secrets version (a machine whose config does
    /// not change is still updated, to pick the secrets up).
    pub min_secrets_version: Option<u64>,
    /// `--owned-only`: refuse machines this server did not create.
    pub owned_only: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            strategy: Strategy::Rolling { batch: 1 },
            start_timeout: Duration::from_secs(300),
            health_timeout: Duration::from_secs(120),
            lease_ttl: Duration::from_secs(30),
            min_secrets_version: None,
            owned_only: false,
        }
    }
}

/// A machine the update will touch.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateTarget {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    pub version: String,
    pub image: String,
}

impl std::fmt::Display for UpdateTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "machine {}", self.id)
    }
}

/// Which machines an update covers, in rollout order.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub app: String,
    pub targets: Vec<UpdateTarget>,
}

/// Finds the machines to update: the named ones (each must exist) or every live machine
/// of the app. Under `owned_only` a machine this server did not create refuses the whole
/// call before anything changes.
pub async fn plan_update(
    client: &fly::Client,
    app: &str,
    ids: &[String],
    owned_only: bool,
) -> Result<UpdatePlan, Error> {
    let all = super::status::list_app_machines(client, app).await?;
    let live = |m: &fly::Machine| {
        !m.state.is_terminal()
            && !matches!(
                m.state,
                MachineState::Destroying | MachineState::LaunchFailed
            )
    };
    let mut picked: Vec<fly::Machine> = Vec::new();
    if ids.is_empty() {
        picked.extend(all.into_iter().filter(live));
    } else {
        for id in ids {
            if picked.iter().any(|m| &m.id == id) {
                continue;
            }
            let m = all
                .iter()
                .find(|m| &m.id == id && live(m))
                .ok_or_else(|| super::observe::machine_not_found(app, id))?;
            picked.push(m.clone());
        }
    }
    if owned_only {
        super::refuse_foreign_machines(&picked, |ids| {
            format!(
                "machines {ids} were not created by this server (no {} metadata)",
                super::OWNER_METADATA_KEY
            )
        })?;
    }
    Ok(UpdatePlan {
        app: app.to_owned(),
        targets: picked
            .into_iter()
            .map(|m| UpdateTarget {
                image: m
                    .config
                    .as_ref()
                    .map(|c| c.image.clone())
                    .unwrap_or_default(),
                id: m.id,
                name: m.name,
                region: m.region,
                state: m.state.as_str().to_owned(),
                version: m.version,
            })
            .collect(),
    })
}

/// The report line of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineReport {
    pub id: String,
    pub name: String,
    pub region: String,
    /// `Updated`, `Unchanged`, `Failed`, `Reverted`, `RevertFailed` or `Skipped`.
    pub outcome: Outcome,
    /// The version before the call.
    pub previous_version: String,
    /// The version the machine is on now (after the update, or after the revert).
    pub version: String,
    /// Why it failed (and how the revert went).
    pub error: Option<String>,
    /// The lease could not be released (it expires on its own after the TTL).
    pub lease_left: bool,
}

/// The whole update's report.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateReport {
    pub app: String,
    pub strategy: Strategy,
    pub change: String,
    pub machines: Vec<MachineReport>,
    /// The rollout stopped at a failure before reaching every machine.
    pub stopped_early: bool,
}

outcome_field!(MachineReport);

impl UpdateReport {
    /// How many machines ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        outcome::count(&self.machines, outcome)
    }
}

/// Runs the update over the planned machines through the bulk scheduler: `batch`
/// machines in flight, stopping at the first failure (rolling), or up to
/// [`IMMEDIATE_CONCURRENCY`] at once without health waits (immediate). Progress goes to
/// `ctl`; a cancellation stops before the next machine (a machine already being changed
/// is finished or reverted, never left half-way under our lease).
pub async fn run_update(
    client: &fly::Client,
    plan: &UpdatePlan,
    change: &ConfigChange,
    opts: &UpdateOptions,
    ctl: &Control,
) -> Result<UpdateReport, Error> {
    if change.is_empty() && opts.min_secrets_version.is_none() {
        return Err(Error::Invalid {
            field: "change".to_owned(),
            rule: "name at least one of image, env, guest or cmd".to_owned(),
        });
    }
    let (bulk, wait) = match opts.strategy {
        Strategy::Rolling { batch } => (
            BulkOptions {
                concurrency: batch.max(1),
                ..BulkOptions::rolling()
            },
            true,
        ),
        Strategy::Immediate => (BulkOptions::with_concurrency(IMMEDIATE_CONCURRENCY), false),
    };
    let total = u32::try_from(plan.targets.len()).unwrap_or(u32::MAX);
    ctl.progress.report(
        0,
        Some(total),
        format!(
            "{} update of {total} machine(s): {}",
            opts.strategy.name(),
            change.describe()
        ),
    );
    // A failed machine's full report (outcome, versions, revert) is kept here; the
    // scheduler only needs an error to stop the rollout.
    let failed: Mutex<BTreeMap<String, MachineReport>> = Mutex::default();
    let rollout = Rollout {
        client,
        app: plan.app.as_str(),
        change,
        opts,
        wait,
    };
    let bulk_report = run_bulk(plan.targets.clone(), &bulk, ctl, |t: UpdateTarget| {
        let failed = &failed;
        async move {
            let report = update_one(rollout, &t).await;
            if !report.outcome.is_failure() {
                return Ok(report);
            }
            let message = report.error.clone().unwrap_or_default();
            if let Ok(mut map) = failed.lock() {
                map.insert(t.id.clone(), report);
            }
            Err(Error::Refused {
                rule: format!("{} update", opts.strategy.name()),
                message,
            })
        }
    })
    .await;
    let mut failed = failed.into_inner().unwrap_or_default();
    let machines: Vec<MachineReport> = bulk_report
        .items
        .into_iter()
        .map(|item| match item.outcome {
            ItemOutcome::Done(report) => report,
            ItemOutcome::Failed(e) => failed.remove(&item.key.id).unwrap_or_else(|| {
                let mut r = skipped(&item.key);
                r.outcome = Outcome::Failed;
                r.error = Some(e.source_text());
                r
            }),
            ItemOutcome::Skipped => skipped(&item.key),
            ItemOutcome::Cancelled => {
                let mut r = skipped(&item.key);
                r.error = Some("not started: the call was cancelled".to_owned());
                r
            }
        })
        .collect();
    let stopped_early = machines.iter().any(|m| m.outcome == Outcome::Skipped);
    Ok(UpdateReport {
        app: plan.app.clone(),
        strategy: opts.strategy,
        change: change.describe(),
        machines,
        stopped_early,
    })
}

/// How many machines an immediate update changes concurrently.
pub const IMMEDIATE_CONCURRENCY: usize = 8;

fn skipped(t: &UpdateTarget) -> MachineReport {
    MachineReport {
        id: t.id.clone(),
        name: t.name.clone(),
        region: t.region.clone(),
        outcome: Outcome::Skipped,
        previous_version: t.version.clone(),
        version: t.version.clone(),
        error: None,
        lease_left: false,
    }
}

/// What every machine of one update shares: the client, the app, the change and how
/// it is rolled out (`wait`: through the health waits, as a rolling update is).
#[derive(Clone, Copy)]
struct Rollout<'a> {
    client: &'a fly::Client,
    app: &'a str,
    change: &'a ConfigChange,
    opts: &'a UpdateOptions,
    wait: bool,
}

/// One machine: lease → update → (waits) → release, with a revert on failure.
async fn update_one(rollout: Rollout<'_>, target: &UpdateTarget) -> MachineReport {
    let Rollout {
        client, app, opts, ..
    } = rollout;
    let mut report = skipped(target);
    let ttl = opts.lease_ttl.max(Duration::from_secs(3));
    let lease = match client
        .acquire_lease(app, &target.id, ttl.as_secs(), LEASE_DESCRIPTION)
        .await
    {
        Ok(lease) => lease,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(lease_error(client, app, &target.id, e).await);
            return report;
        }
    };
    let Some(nonce) = lease.nonce.clone() else {
        report.outcome = Outcome::Failed;
        report.error = Some("the lease answer carried no nonce".to_owned());
        return report;
    };
    let work = change_machine(rollout, target, &nonce, &mut report);
    with_lease_refresh(client, app, &target.id, &nonce, ttl, work).await;
    if let Err(e) = client.release_lease(app, &target.id, &nonce).await {
        tracing::warn!(app, machine = %target.id, error = %e, "lease release failed; it expires on its own");
        report.lease_left = true;
    }
    report
}

/// Runs `work` while refreshing the lease every third of its TTL.
async fn with_lease_refresh<F: Future<Output = ()>>(
    client: &fly::Client,
    app: &str,
    machine_id: &str,
    nonce: &fly::LeaseNonce,
    ttl: Duration,
    work: F,
) {
    let refresh = async {
        let every = (ttl / 3).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = client
                .refresh_lease(app, machine_id, nonce, ttl.as_secs())
                .await
            {
                tracing::warn!(app, machine = machine_id, error = %e, "lease refresh failed");
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = refresh => {}
    }
}

/// The update itself, under the lease. Fills `report`.
async fn change_machine(
    rollout: Rollout<'_>,
    target: &UpdateTarget,
    nonce: &fly::LeaseNonce,
    report: &mut MachineReport,
) {
    let Rollout {
        client,
        app,
        change,
        opts,
        wait,
    } = rollout;
    let id = target.id.as_str();
    // Read under the lease: what we change is what nobody else can change now.
    let machine = match client.get_machine(app, id).await {
        Ok(m) => m,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(Error::fly(format!("reading machine {id}"))(e).source_text());
            return;
        }
    };
    report.previous_version.clone_from(&machine.version);
    report.version.clone_from(&machine.version);
    let old = match super::full_config(&machine, "be updated") {
        Ok(c) => c,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(e.source_text());
            return;
        }
    };
    let mut new = change.apply(&old);
    // The version goes into the config's metadata too, so a later clone of this
    // machine launches with it (see `SECRETS_VERSION_METADATA_KEY`).
    if let Some(v) = opts.min_secrets_version {
        super::record_secrets_version(&mut new, v);
    }
    // With `min_secrets_version` an unchanged config is still re-sent: that is how a
    // machine picks up new secrets.
    if new == old && opts.min_secrets_version.is_none() {
        report.outcome = Outcome::Unchanged;
        return;
    }
    // A machine that was not running stays that way: update without launching it.
    let running = matches!(
        machine.state,
        MachineState::Started | MachineState::Starting | MachineState::Restarting
    );
    let body = UpdateMachine {
        config: new,
        current_version: Some(machine.version.clone()),
        skip_launch: (!running).then_some(true),
        min_secrets_version: opts.min_secrets_version,
        ..UpdateMachine::default()
    };
    let updated = match client.update_machine(app, id, &body, Some(nonce)).await {
        Ok(m) => m,
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(if e.is_conflict() {
                match lease_state(client, app, id, nonce).await {
                    LeaseState::Ours => format!(
                        "machine {id} changed since it was read (version {} is no longer current); nothing was changed: {e}",
                        machine.version
                    ),
                    lost => format!("{}; nothing was changed on it: {e}", lost.describe(id)),
                }
            } else {
                Error::fly(format!("updating machine {id}"))(e).source_text()
            });
            return;
        }
    };
    report.version.clone_from(&updated.version);
    if !wait {
        report.outcome = Outcome::Updated;
        return;
    }
    let verdict = if running {
        settle(client, app, id, &updated.version, opts).await
    } else {
        client
            .wait_for_state(
                app,
                id,
                &[WaitTarget::Settled],
                Some(&updated.version),
                None,
                opts.start_timeout,
            )
            .await
            .map(|_| ())
            .map_err(|e| Error::fly(format!("waiting for machine {id} to settle"))(e).source_text())
    };
    let Err(why) = verdict else {
        report.outcome = Outcome::Updated;
        return;
    };
    // Put it back on the config it had.
    let back = UpdateMachine {
        config: old,
        current_version: Some(updated.version.clone()),
        skip_launch: (!running).then_some(true),
        ..UpdateMachine::default()
    };
    let reverted = match client.update_machine(app, id, &back, Some(nonce)).await {
        Ok(m) => m,
        Err(e) => {
            let lost = if e.is_conflict() {
                match lease_state(client, app, id, nonce).await {
                    LeaseState::Ours => String::new(),
                    lost => format!(" ({})", lost.describe(id)),
                }
            } else {
                String::new()
            };
            report.outcome = Outcome::RevertFailed;
            report.error = Some(format!(
                "{why}; reverting to version {} failed{lost}: {}",
                machine.version,
                Error::fly(format!("reverting machine {id}"))(e).source_text()
            ));
            return;
        }
    };
    report.version.clone_from(&reverted.version);
    let target_state = if running {
        WaitTarget::Started
    } else {
        WaitTarget::Settled
    };
    match client
        .wait_for_state(
            app,
            id,
            &[target_state],
            Some(&reverted.version),
            None,
            opts.start_timeout,
        )
        .await
    {
        Ok(_) => {
            report.outcome = Outcome::Reverted;
            report.error = Some(format!(
                "{why}; reverted to the config of version {} (now version {})",
                machine.version, reverted.version
            ));
        }
        Err(e) => {
            report.outcome = Outcome::RevertFailed;
            report.error = Some(format!(
                "{why}; the previous config was restored (version {}) but the machine did not start again: {e}",
                reverted.version
            ));
        }
    }
}

/// Waits until the new version is started and every health check passes.
async fn settle(
    client: &fly::Client,
    app: &str,
    id: &str,
    version: &str,
    opts: &UpdateOptions,
) -> Result<(), String> {
    client
        .wait_for_state(
            app,
            id,
            &[WaitTarget::Started],
            Some(version),
            None,
            opts.start_timeout,
        )
        .await
        .map_err(|e| Error::fly(format!("waiting for machine {id} to start"))(e).source_text())?;
    wait_healthy(client, app, id, opts.health_timeout).await
}

/// Polls the machine until every check passes (a machine without checks passes at
/// once), it stops running, or `deadline` passes. The error names the failing checks
/// with their output.
pub async fn wait_healthy(
    client: &fly::Client,
    app: &str,
    id: &str,
    deadline: Duration,
) -> Result<(), String> {
    let mut poll = Poll::starting_at(Duration::from_millis(100));
    loop {
        let m = client
            .get_machine(app, id)
            .await
            .map_err(|e| Error::fly(format!("reading machine {id}"))(e).source_text())?;
        if m.state != MachineState::Started {
            return Err(format!(
                "machine {id} left the started state (now {}) while its checks were awaited",
                m.state
            ));
        }
        let failing: Vec<&fly::CheckStatus> =
            m.checks.iter().filter(|c| c.status != "passing").collect();
        if failing.is_empty() {
            return Ok(());
        }
        let elapsed = poll.elapsed();
        if elapsed >= deadline {
            let detail: Vec<String> = failing
                .iter()
                .map(|c| format!("{} {} ({})", c.name, c.status, c.output.trim()))
                .collect();
            return Err(format!(
                "machine {id}: health checks not passing after {}s: {}",
                deadline.as_secs(),
                detail.join("; ")
            ));
        }
        poll.sleep_at_most(deadline.saturating_sub(elapsed)).await;
    }
}

/// Whose lease a machine is under, after a 409: ours (so the conflict was a stale
/// `current_version`), someone else's, or none (ours expired or was released). Fly
/// shows a lease's nonce to anyone who may read the app (fly-go `MachineLeaseData`,
/// `machine_types.go`), and `fly machine leases clear` releases any lease with it
/// (flyctl `internal/command/machine/leases.go`), so a lease can be taken from us.
enum LeaseState {
    Ours,
    Taken { owner: String, until: String },
    Gone,
    Unknown(String),
}

impl LeaseState {
    fn describe(&self, id: &str) -> String {
        match self {
            LeaseState::Ours => format!("machine {id} is still under our lease"),
            LeaseState::Taken { owner, until } => format!(
                "our lease on machine {id} was taken: it is now held by {owner} until {until}, and another operation may be changing the machine"
            ),
            LeaseState::Gone => format!(
                "our lease on machine {id} is gone (it expired or someone released it), so the update was refused"
            ),
            LeaseState::Unknown(why) => {
                format!("machine {id} refused the update and its lease could not be read ({why})")
            }
        }
    }
}

async fn lease_state(
    client: &fly::Client,
    app: &str,
    id: &str,
    nonce: &fly::LeaseNonce,
) -> LeaseState {
    match client.get_lease(app, id).await {
        Ok(Some(l)) if l.nonce.as_ref() == Some(nonce) => LeaseState::Ours,
        Ok(Some(l)) => LeaseState::Taken {
            until: jiff::Timestamp::from_second(l.expires_at)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| l.expires_at.to_string()),
            owner: l.owner,
        },
        Ok(None) => LeaseState::Gone,
        Err(e) => LeaseState::Unknown(e.to_string()),
    }
}

/// The message for a lease we could not take: who holds it and until when.
async fn lease_error(client: &fly::Client, app: &str, id: &str, err: fly::Error) -> String {
    if !err.is_conflict() {
        return Error::fly(format!("leasing machine {id}"))(err).source_text();
    }
    match client.get_lease(app, id).await {
        Ok(Some(holder)) => {
            let until = jiff::Timestamp::from_second(holder.expires_at)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| holder.expires_at.to_string());
            let what = if holder.description.is_empty() {
                String::new()
            } else {
                format!(" ({})", holder.description)
            };
            format!(
                "machine {id} is leased by {} until {until}{what}: another operation is changing it; nothing was changed on it. Retry after the lease ends.",
                holder.owner
            )
        }
        Ok(None) | Err(_) => {
            format!("machine {id} is leased by someone else; nothing was changed on it ({err})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MachineConfig {
        serde_json::from_value(serde_json::json!({
            "image": "nginx:1",
            "env": {"A": "1", "B": "2"},
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "services": [{"protocol": "tcp", "internal_port": 8080, "concurrency": {"type": "connections"}}],
            "dns": {"skip_registration": true}
        }))
        .unwrap()
    }

    #[test]
    fn apply_changes_only_what_is_named() {
        let change = ConfigChange {
            image: Some("nginx:2".into()),
            env: [
                ("A".to_owned(), None),
                ("C".to_owned(), Some("3".to_owned())),
            ]
            .into(),
            guest: Some(GuestChange {
                memory_mb: Some(512),
                ..GuestChange::default()
            }),
            cmd: Some(vec!["serve".into(), "--fast".into()]),
        };
        let old = config();
        let new = change.apply(&old);
        assert_eq!(new.image, "nginx:2");
        assert_eq!(new.env.get("A"), None);
        assert_eq!(new.env.get("B").map(String::as_str), Some("2"));
        assert_eq!(new.env.get("C").map(String::as_str), Some("3"));
        let g = new.guest.as_ref().unwrap();
        assert_eq!(
            (g.cpu_kind.as_str(), g.cpus, g.memory_mb),
            ("shared", 1, 512)
        );
        assert_eq!(
            new.init.as_ref().unwrap().cmd.as_deref(),
            Some(&["serve".to_owned(), "--fast".to_owned()][..])
        );
        // Fields the client does not model survive.
        assert_eq!(new.extra, old.extra);
        assert_eq!(new.services, old.services);
    }

    #[test]
    fn a_change_already_in_place_is_a_no_op() {
        let change = ConfigChange {
            image: Some("nginx:1".into()),
            env: [("A".to_owned(), Some("1".to_owned()))].into(),
            ..ConfigChange::default()
        };
        assert_eq!(change.apply(&config()), config());
        assert!(ConfigChange::default().is_empty());
    }

    #[test]
    fn describe_names_env_keys_not_values() {
        let change = ConfigChange {
            env: [
                ("TOKEN".to_owned(), Some("value-never-shown".to_owned())),
                ("OLD".to_owned(), None),
            ]
            .into(),
            ..ConfigChange::default()
        };
        let text = change.describe();
        assert!(text.contains("TOKEN") && text.contains("OLD"), "{text}");
        assert!(!text.contains("value-never-shown"), "{text}");
    }

    #[test]
    fn failures_stop_a_rollout() {
        for o in [Outcome::Failed, Outcome::Reverted, Outcome::RevertFailed] {
            assert!(o.is_failure());
        }
        for o in [Outcome::Updated, Outcome::Unchanged, Outcome::Skipped] {
            assert!(!o.is_failure());
        }
    }
}
