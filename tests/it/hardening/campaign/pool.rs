//! The campaign's pool cycles: one pool in one app, shared by every server process.
//! Each cycle fills it, claims every slot at once from all processes, releases the
//! claims (recycle, wipe or keep, in turn), expires the kept ones and reaps them; the
//! next cycle's fill replaces what was reaped. Each result is checked against the
//! simulator's state.

use std::collections::{BTreeMap, BTreeSet};

use fly_machines_mcp::workflows::pool::{EXPIRES_KEY, POOL_KEY, STATE_KEY, USER_KEY};
use serde_json::{Value, json};

use super::{ATTEMPTS, Campaign, PROCESSES, first_line, live_machines};
use crate::support::text_of;

const APP: &str = "camp-pool";
const POOL: &str = "p";
/// Slots of the pool: a claim per process each cycle, and one process with two at once.
const SIZE: usize = PROCESSES + 1;

fn meta<'a>(m: &'a Value, key: &str) -> Option<&'a str> {
    m["config"]["metadata"][key].as_str()
}

impl Campaign {
    /// The pool's live members in the simulator's state.
    fn members(&self) -> Vec<Value> {
        self.app(APP)
            .map(|a| live_machines(&a))
            .unwrap_or_default()
            .into_iter()
            .filter(|m| meta(m, POOL_KEY) == Some(POOL))
            .collect()
    }
}

/// Creates the pool's app (before faults are on), runs `total` cycles, then tears the
/// app down through a server process.
pub(super) async fn cycles(c: &Campaign, total: usize) {
    full_region_fill(c).await;
    for r in 0..total {
        cycle(c, r).await;
        c.tally.lock().unwrap().pool_cycles += 1;
    }
    for attempt in 0..ATTEMPTS {
        if c.app(APP).is_none() {
            return;
        }
        if let Some(r) = c
            .confirmed(attempt, "teardown_environment", json!({"app": APP}))
            .await
            && r.is_error == Some(true)
        {
            c.note_error("teardown_environment", &text_of(&r));
        }
    }
    assert!(c.app(APP).is_none(), "the pool's app outlived its teardown");
}

/// Creates the pool's app directly on the simulator (no faults yet) and waits until
/// it is visible (realistic profile: a new app is hidden for a moment).
pub(super) async fn create_app(c: &Campaign) {
    let (status, body) = crate::support::post_json(
        &c.sim.base_url(),
        &c.sim.viewer_token(),
        "/v1/apps",
        json!({"name": APP, "org_slug": "personal"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    crate::support::eventually("the pool's app to be visible", || async {
        c.app(APP).is_some_and(|a| a["visible"] == json!(true))
    })
    .await;
}

async fn cycle(c: &Campaign, r: usize) {
    let t = std::time::Instant::now();
    fill(c, r).await;
    let filled = t.elapsed();
    let claims = claim_all(c, r).await;
    let claimed = t.elapsed();
    let kept = release_all(c, r, &claims).await;
    let released = t.elapsed();
    reap(c, r, &kept).await;
    eprintln!(
        "pool cycle {r}: filled {filled:.1?}, claimed {claimed:.1?}, released {released:.1?}, reaped {:.1?}",
        t.elapsed()
    );
}

async fn fill(c: &Campaign, r: usize) {
    let args = json!({"app": APP, "pool": POOL, "size": SIZE, "image": "nginx:1", "region": "iad"});
    for _ in 0..ATTEMPTS {
        let res = c.call(r, "pool_fill", args.clone()).await;
        let text = text_of(&res);
        let members = c.members();
        if members.len() > SIZE {
            c.duplicate(format!(
                "pool_fill (cycle {r}): {} members for {SIZE} slots",
                members.len()
            ));
        }
        let failed = res
            .structured_content
            .as_ref()
            .and_then(|s| s["failed"].as_u64())
            .unwrap_or(0);
        let ready = members.len() == SIZE
            && members
                .iter()
                .all(|m| meta(m, STATE_KEY) == Some("free") && m["state"] == "suspended");
        if res.is_error != Some(true) && failed == 0 {
            if !ready {
                c.false_outcome(format!(
                    "pool_fill (cycle {r}) reported success: {}",
                    slots(&members)
                ));
            }
            return;
        }
        c.note_error("pool_fill", &text);
    }
    panic!("pool_fill (cycle {r}) did not converge in {ATTEMPTS} calls");
}

/// Claims every slot at once, user `u{r}-{j}` through process `j`; returns user →
/// machine id.
async fn claim_all(c: &Campaign, r: usize) -> BTreeMap<String, String> {
    let results = futures::future::join_all((0..SIZE).map(|j| async move {
        let user = format!("u{r}-{j}");
        let args = json!({"app": APP, "pool": POOL, "user": user, "ttl_minutes": 30});
        for _ in 0..ATTEMPTS {
            let res = c.call(j, "claim_environment", args.clone()).await;
            let text = text_of(&res);
            let tagged: Vec<Value> = c
                .members()
                .into_iter()
                .filter(|m| meta(m, USER_KEY) == Some(user.as_str()))
                .collect();
            if res.is_error != Some(true) {
                let id = res.structured_content.as_ref().unwrap()["machine_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let ok = tagged.len() == 1
                    && tagged[0]["id"] == id.as_str()
                    && meta(&tagged[0], STATE_KEY) == Some("claimed")
                    && matches!(tagged[0]["state"].as_str(), Some("started" | "starting"));
                if !ok {
                    c.false_outcome(format!(
                        "claim for {user} reported {id}: the pool shows {}",
                        slots(&tagged)
                    ));
                }
                return (user, id);
            }
            c.note_error("claim_environment", &text);
            if !tagged.is_empty() {
                c.false_outcome(format!(
                    "claim for {user} reported failure ({}) but {} is tagged for them",
                    first_line(&text),
                    tagged[0]["id"]
                ));
                return (user, String::new());
            }
        }
        panic!("claim for {user} did not converge in {ATTEMPTS} calls");
    }))
    .await;
    let distinct: BTreeSet<&String> = results.iter().map(|(_, id)| id).collect();
    if distinct.len() != results.len() {
        c.duplicate(format!(
            "cycle {r}: one environment handed out twice: {results:?}"
        ));
    }
    results.into_iter().collect()
}

/// Releases every claim, in turn recycle, wipe and keep; returns the kept ones'
/// machine ids.
async fn release_all(c: &Campaign, r: usize, claims: &BTreeMap<String, String>) -> Vec<String> {
    let modes = ["recycle", "wipe", "keep"];
    let kept = futures::future::join_all(claims.iter().enumerate().map(|(j, (user, id))| {
        let mode = modes[j % modes.len()];
        async move {
            let args = json!({"app": APP, "pool": POOL, "user": user, "mode": mode});
            for _ in 0..ATTEMPTS {
                let res = c.call(j, "release_environment", args.clone()).await;
                let text = text_of(&res);
                let now = c.members().into_iter().find(|m| m["id"] == id.as_str());
                let done = match (mode, &now) {
                    ("wipe", None) => true,
                    ("wipe", Some(_)) => false,
                    ("recycle", Some(m)) => {
                        meta(m, STATE_KEY) == Some("free") && meta(m, USER_KEY).is_none()
                    }
                    ("keep", Some(m)) => {
                        meta(m, USER_KEY) == Some(user.as_str()) && m["state"] == "suspended"
                    }
                    _ => false,
                };
                if res.is_error != Some(true) {
                    if !done {
                        c.false_outcome(format!(
                            "release {mode} of {user} ({id}, cycle {r}) reported success: {:?}",
                            now.map(|m| (meta(&m, STATE_KEY).map(str::to_owned), m["state"].clone()))
                        ));
                    }
                    return (mode == "keep").then(|| id.clone());
                }
                c.note_error("release_environment", &text);
                if done {
                    c.false_outcome(format!(
                        "release {mode} of {user} ({id}, cycle {r}) reported failure ({}) but it was released",
                        first_line(&text)
                    ));
                    return (mode == "keep").then(|| id.clone());
                }
            }
            panic!("release {mode} of {user} did not converge in {ATTEMPTS} calls");
        }
    }))
    .await;
    kept.into_iter().flatten().collect()
}

/// Moves the kept claims' expiry into the past (as time passing would), then reaps
/// them through a server process.
async fn reap(c: &Campaign, r: usize, kept: &[String]) {
    let fly = crate::support::attenuating_client(&c.sim);
    let past = BTreeMap::from([(
        EXPIRES_KEY.to_owned(),
        Some("2020-01-01T00:00:00Z".to_owned()),
    )]);
    for id in kept {
        // The test's own client meets the faults too: repeat until the state shows it.
        crate::support::eventually(&format!("{id}'s expiry moved into the past"), || async {
            let _ = fly.patch_metadata(APP, id, &past, None, None).await;
            c.members().iter().any(|m| {
                m["id"] == id.as_str() && meta(m, EXPIRES_KEY) == Some("2020-01-01T00:00:00Z")
            })
        })
        .await;
    }
    let others: Vec<String> = c
        .members()
        .iter()
        .filter(|m| !kept.iter().any(|k| m["id"] == k.as_str()))
        .map(|m| m["id"].as_str().unwrap_or("").to_owned())
        .collect();
    for attempt in 0..ATTEMPTS {
        let left: Vec<String> = kept
            .iter()
            .filter(|k| c.members().iter().any(|m| m["id"] == k.as_str()))
            .cloned()
            .collect();
        if attempt > 0 && left.is_empty() {
            break;
        }
        let Some(res) = c
            .confirmed(r, "reap_expired", json!({"app": APP, "pool": POOL}))
            .await
        else {
            continue;
        };
        let text = text_of(&res);
        let members = c.members();
        let still: Vec<&String> = kept
            .iter()
            .filter(|k| members.iter().any(|m| m["id"] == k.as_str()))
            .collect();
        let failed = res
            .structured_content
            .as_ref()
            .and_then(|s| s["failed"].as_u64())
            .unwrap_or(0);
        if res.is_error != Some(true) && failed == 0 {
            if !still.is_empty() {
                c.false_outcome(format!(
                    "reap (cycle {r}) reported success; still there: {still:?}"
                ));
            }
            break;
        }
        c.note_error("reap_expired", &text);
    }
    // Nothing but the expired claims was touched.
    let members = c.members();
    for o in &others {
        if !members.iter().any(|m| m["id"] == o.as_str()) {
            c.false_outcome(format!(
                "reap (cycle {r}) destroyed {o}, which had not expired"
            ));
        }
    }
    for k in kept {
        if members.iter().any(|m| m["id"] == k.as_str()) {
            c.orphan(format!("cycle {r}: expired claim {k} survived the reap"));
        }
    }
}

/// A fill in the region the realistic profile keeps full: every slot fails with
/// `insufficient_capacity`, said once per slot (definitive, never retried), and no
/// machine is left.
async fn full_region_fill(c: &Campaign) {
    let args = json!({"app": APP, "pool": "full", "size": 2, "image": "nginx:1",
        "region": fly_machines_mcp::sim::FULL_REGION});
    let res = c.call(0, "pool_fill", args).await;
    let text = text_of(&res);
    let failed = res
        .structured_content
        .as_ref()
        .and_then(|s| s["failed"].as_u64())
        .unwrap_or(0);
    if res.is_error != Some(true) && failed == 0 {
        c.false_outcome(format!(
            "pool_fill in the full region reported success: {text}"
        ));
    } else if !text.contains("insufficient_capacity") {
        c.false_outcome(format!(
            "pool_fill in the full region failed without naming capacity: {}",
            first_line(&text)
        ));
    } else {
        c.tally.lock().unwrap().capacity_refusals += 1;
    }
    let left = c
        .app(APP)
        .map(|a| live_machines(&a))
        .unwrap_or_default()
        .into_iter()
        .filter(|m| meta(m, POOL_KEY) == Some("full"))
        .count();
    if left > 0 {
        c.orphan(format!("pool_fill in the full region left {left} machines"));
    }
}

/// Each member's id, pool state and machine state, for a failure message.
fn slots(members: &[Value]) -> String {
    let brief: Vec<_> = members
        .iter()
        .map(|m| (&m["id"], meta(m, STATE_KEY), &m["state"]))
        .collect();
    format!("{brief:?}")
}
