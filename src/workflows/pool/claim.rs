//! Claiming an environment: pick a free member (spread by user), then under its lease
//! re-read, verify it is still free, mark it claimed with `machine_version` and the
//! nonce, and start or resume it. A claim that meets contention moves on and passes
//! over the pool again on a newer listing.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::fly::{self, LeaseNonce, Machine, MachineState, WaitTarget};
use crate::workflows::Error;

use super::fill::{park, wait};
use super::{
    EXPIRES_KEY, LEASE_TTL_SECS, POOL_KEY, Park, PoolListings, STATE_KEY, SlotState, USER_KEY,
    release_quietly, unclaimed,
};

/// Passes over the free list before a claim answers "pool empty".
const CLAIM_PASSES: usize = 3;
/// While another claim holds a candidate's lease, it may still give it back: a claim
/// keeps passing over the pool (each pass on a new listing) for up to this long
/// before it answers "pool empty" (never beyond its own `start_timeout`).
const CLAIM_CONTENTION_BUDGET: Duration = Duration::from_secs(10);

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
    listings: &PoolListings,
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
        let (machines, fresh) = listings.listing(client, app, pool, newer_than).await?;
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
            if listings.known_unavailable(client, app, pool, &m.id) {
                // Another claim in this process took it meanwhile.
                continue;
            }
            match try_claim(client, req, m, expires_at, false).await? {
                Attempt::Claimed(env) => {
                    listings.note_claimed(client, app, pool, &env);
                    return Ok(ClaimOutcome::Claimed(*env));
                }
                Attempt::Contended => contended = true,
                Attempt::Taken => {
                    listings.note_taken(client, app, pool, &m.id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_stays_in_range() {
        for n in 1..20 {
            assert!(spread("alice", n) < n);
        }
        assert_eq!(spread("alice", 0), 0);
    }
}
