//! Reaping expired claims: plan what would be destroyed, then destroy each under its lease
//! after re-checking that its claim is still expired.

use jiff::Timestamp;

use crate::fly;
use crate::workflows::Error;
use crate::workflows::outcome::{Outcome, outcome_field};
use crate::workflows::sched::{BulkOptions, Control, ItemOutcome, run_bulk};

use super::{LEASE_TTL_SECS, Member, POOL_KEY, list_pool, release_quietly};

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
    /// `Destroyed`, `Renewed` (no longer expired under the lease), `Busy` (leased by
    /// someone else), `AlreadyGone`, `Failed` or `NotStarted`.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
}

outcome_field!(Reaped);

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
            let (outcome, error) = match item.outcome {
                ItemOutcome::Done(o) => (o, None),
                ItemOutcome::Failed(e) => (Outcome::Failed, Some(e.source_text())),
                ItemOutcome::Skipped | ItemOutcome::Cancelled => (Outcome::NotStarted, None),
            };
            Reaped {
                machine_id: item.key,
                user,
                outcome,
                error,
            }
        })
        .collect()
}

async fn reap_one(client: &fly::Client, plan: &ReapPlan, id: &str) -> Result<Outcome, Error> {
    let app = plan.app.as_str();
    let lease = match client
        .acquire_lease(app, id, LEASE_TTL_SECS, "fly-machines-mcp reap_expired")
        .await
    {
        Ok(l) => l,
        Err(e) if e.is_conflict() => return Ok(Outcome::Busy),
        Err(e) if e.is_not_found() => return Ok(Outcome::AlreadyGone),
        Err(e) => return Err(Error::fly(format!("leasing machine {id}"))(e)),
    };
    let Some(nonce) = lease.nonce else {
        return Ok(Outcome::Busy);
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
        return Ok(Outcome::Renewed);
    }
    client
        .destroy_machine(app, id, true, Some(&nonce))
        .await
        .map_err(Error::fly(format!("destroying machine {id}")))?;
    Ok(Outcome::Destroyed)
}
