//! The listing cache claims share: a process's recent listings of each pool, and one
//! lister at a time per pool. Owned by whoever serves claims (one per server process)
//! and handed to [`super::claim`], so tests and replicas say which cache they share.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fly::{self, Machine, MachineState};

use super::{Environment, STATE_KEY, SlotState, USER_KEY, list_pool};
use crate::workflows::Error;

/// How long a listing of a pool is reused for the first pass of a claim.
const LISTING_TTL: Duration = Duration::from_secs(2);
/// Entries kept before old ones are dropped.
const MAX_ENTRIES: usize = 256;

/// Recent pool listings. Only a hint: every claim verifies its candidate under the
/// lease, so a stale entry costs a lease round trip, never a double claim.
#[derive(Debug, Default)]
pub struct PoolListings {
    listings: Mutex<BTreeMap<String, (Instant, Vec<Machine>)>>,
    turns: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn key(client: &fly::Client, app: &str, pool: &str) -> String {
    format!("{}|{app}|{pool}", client.api_hostname())
}

impl PoolListings {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The pool's members. Pass 0 (`newer_than` = `None`) takes the cached listing if
    /// it is recent; later passes need one made after `newer_than` (after this claim's
    /// previous attempts), which concurrent claimers share: one lists while the others
    /// wait for its answer. The flag says whether the listing is that new.
    pub(super) async fn listing(
        &self,
        client: &fly::Client,
        app: &str,
        pool: &str,
        newer_than: Option<Instant>,
    ) -> Result<(Vec<Machine>, bool), Error> {
        let key = key(client, app, pool);
        let usable = |key: &str| {
            self.listings
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
        let turn = self.turn(&key);
        let _one_at_a_time = turn.lock().await;
        if let Some(machines) = usable(&key) {
            // Someone listed while this call waited its turn.
            return Ok((machines, newer_than.is_some()));
        }
        let at = Instant::now();
        let machines = list_pool(client, app, pool).await?;
        if let Ok(mut map) = self.listings.lock() {
            if map.len() > MAX_ENTRIES {
                map.retain(|_, (t, _)| t.elapsed() < LISTING_TTL);
            }
            map.insert(key, (at, machines.clone()));
        }
        Ok((machines, true))
    }

    /// One lister at a time per pool (the others wait and reuse its answer).
    fn turn(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.turns.lock() {
            Ok(mut map) => {
                if map.len() > MAX_ENTRIES {
                    map.retain(|_, t| Arc::strong_count(t) > 1);
                }
                map.entry(key.to_owned()).or_default().clone()
            }
            // A poisoned map only loses the sharing, not correctness.
            Err(_) => Arc::default(),
        }
    }

    fn edit(&self, client: &fly::Client, app: &str, pool: &str, f: impl FnOnce(&mut Vec<Machine>)) {
        if let Ok(mut map) = self.listings.lock()
            && let Some((_, machines)) = map.get_mut(&key(client, app, pool))
        {
            f(machines);
        }
    }

    /// True when this cache has since seen machine `id` claimed or gone.
    pub(super) fn known_unavailable(
        &self,
        client: &fly::Client,
        app: &str,
        pool: &str,
        id: &str,
    ) -> bool {
        let Ok(map) = self.listings.lock() else {
            return false;
        };
        map.get(&key(client, app, pool)).is_some_and(|(_, ms)| {
            ms.iter()
                .find(|m| m.id == id)
                .is_none_or(|m| m.metadata(STATE_KEY) != Some(SlotState::Free.as_str()))
        })
    }

    /// Marks `id` as not free. It stays a member: dropping it would shrink the pool's
    /// size in every "N of M claimed" answer until the next listing.
    pub(super) fn note_taken(&self, client: &fly::Client, app: &str, pool: &str, id: &str) {
        self.edit(client, app, pool, |ms| {
            for m in ms.iter_mut().filter(|m| m.id == id) {
                if let Some(cfg) = m.config.as_mut() {
                    cfg.metadata
                        .insert(STATE_KEY.to_owned(), SlotState::Claimed.as_str().to_owned());
                }
            }
        });
    }

    pub(super) fn note_claimed(
        &self,
        client: &fly::Client,
        app: &str,
        pool: &str,
        env: &Environment,
    ) {
        self.edit(client, app, pool, |ms| {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fly::MachineConfig;

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
        let cache = PoolListings::new();
        let key = key(&client, "taken-app", "p");
        cache
            .listings
            .lock()
            .unwrap()
            .insert(key.clone(), (Instant::now(), vec![free("a"), free("b")]));
        assert!(!cache.known_unavailable(&client, "taken-app", "p", "a"));
        cache.note_taken(&client, "taken-app", "p", "a");
        let (_, ms) = cache.listings.lock().unwrap().get(&key).cloned().unwrap();
        assert_eq!(ms.len(), 2, "a taken member is still a member");
        assert!(cache.known_unavailable(&client, "taken-app", "p", "a"));
        assert!(!cache.known_unavailable(&client, "taken-app", "p", "b"));
        let other = PoolListings::new();
        assert!(
            !other.known_unavailable(&client, "taken-app", "p", "a"),
            "two caches share nothing"
        );
    }
}
