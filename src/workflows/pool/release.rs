//! Releasing a claimed environment back to the pool (wiped and parked) or destroying it.

use std::time::Duration;

use crate::fly::{self, LeaseNonce};
use crate::workflows::NextStep;
use crate::workflows::{self, Error};

use super::fill::slot_key;
use super::fill::{create_member, park, park_and_free};
use super::{
    EXPIRES_KEY, LEASE_TTL_SECS, POOL_KEY, Park, PoolSpec, SLOT_KEY, STATE_KEY, SlotState,
    TEMPLATE_KEY, USER_KEY, list_pool, release_quietly, unclaimed,
};

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
            hint: NextStep::to(format!(
                "call pool_status with pool {pool} to see the claims"
            )),
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
            let mut config = workflows::full_config(&m, "be rebuilt (wipe)")?;
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
            let floor = workflows::recorded_secrets_version(&spec.config);
            // The user's environment is gone whatever happens next: a refill that fails
            // does not undo the release, it leaves the slot for `pool_fill` (which also
            // parks a member left `filling`).
            let replacement = match create_member(client, &spec, slot, &template, &key, name, floor)
                .await
            {
                Ok(fresh) => match park_and_free(client, &spec, &fresh.id, timeout).await {
                    Ok(()) => Some(fresh.id),
                    Err(e) => {
                        tracing::warn!(app, machine = %fresh.id, error = %e, "the wiped slot's fresh machine was not parked; pool_fill will");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(app, slot, error = %e, "the wiped slot was not refilled; pool_fill will");
                    None
                }
            };
            Ok(Released {
                machine_id: id.to_owned(),
                replacement,
                user,
                mode,
                parked_as: park_as,
            })
        }
    }
}
