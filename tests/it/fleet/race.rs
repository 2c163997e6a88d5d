//! Two independent client stacks (separate connection pools, no shared state but the
//! simulator) claiming from one pool of 20 for 40 users at once; and a claim that meets
//! another one in flight.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fly_machines_mcp::workflows::pool::{
    self, ClaimOutcome, ClaimRequest, FillOptions, Park, PoolListings,
};
use fly_machines_mcp::workflows::sched::Control;
use jiff::Timestamp;

use super::{Fleet, client, spec};

#[tokio::test]
async fn two_stacks_forty_users_twenty_environments_no_double_claim() {
    // 1/50 of real time: leases (30 s of model time) last 600 ms of wall time, so a
    // claim slowed down by a loaded machine does not outlive its own lease.
    let f = Fleet::scaled(0.02).await;
    f.app("race").await;
    let opts = FillOptions {
        create_interval: Duration::from_millis(2),
        park_timeout: Duration::from_secs(20),
        fast_backoff: true,
        ..FillOptions::default()
    };
    let report = pool::fill(
        &f.client,
        &spec("race", "r", Park::Suspended),
        20,
        &opts,
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(report.created, 20, "{report:?}");

    // Two client stacks of one server process, sharing its pool listings (separate
    // processes are the multi-process claim tests').
    let listings = Arc::new(PoolListings::new());
    let stacks = [
        (client(&f.sim), listings.clone()),
        (client(&f.sim), listings),
    ];
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for u in 0..40 {
        let (c, listings) = stacks[u % 2].clone();
        tasks.push(tokio::spawn(async move {
            let req = ClaimRequest {
                app: "race".into(),
                pool: "r".into(),
                user: format!("user-{u}"),
                ttl: Duration::from_secs(600),
                start_timeout: Duration::from_secs(20),
            };
            (
                req.user.clone(),
                pool::claim(&c, &listings, &req, now).await,
            )
        }));
    }
    let mut winners = Vec::new();
    let mut empty = 0;
    for t in tasks {
        let (user, outcome) = t.await.unwrap();
        match outcome.unwrap() {
            ClaimOutcome::Claimed(env) => winners.push((user, env.machine_id)),
            ClaimOutcome::Empty {
                members, claimed, ..
            } => {
                assert_eq!((members, claimed), (20, 20));
                empty += 1;
            }
        }
    }
    assert_eq!(winners.len(), 20, "{winners:?}");
    assert_eq!(empty, 20);
    let distinct: BTreeSet<&String> = winners.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), 20, "an environment was handed out twice");
    // Fly's own view agrees: each machine carries its winner's name, and is started.
    for m in f.machines("race") {
        let id = m["id"].as_str().unwrap();
        let user = m["config"]["metadata"][pool::USER_KEY].as_str().unwrap();
        assert!(
            winners.iter().any(|(u, w)| u == user && w == id),
            "{id} tagged {user}"
        );
        assert_eq!(m["state"], "started");
    }
}

/// Lists of `app`'s machines in the simulator's request log.
async fn listings_of(f: &Fleet, app: &str) -> usize {
    let url = format!("{}/__sim/requests", f.sim.base_url());
    let v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let path = format!("/v1/apps/{app}/machines");
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap_or_default();
            r["method"] == "GET" && p.split('?').next() == Some(path.as_str())
        })
        .count()
}

/// A member another claim is starting under its lease (still marked free) is no proof
/// of an empty pool: the claim waits for that one to settle, then answers with the
/// true count.
#[tokio::test]
async fn a_claim_in_flight_is_not_taken_for_an_empty_pool() {
    let f = Fleet::scaled(0.02).await;
    f.app("flight").await;
    let opts = FillOptions {
        create_interval: Duration::from_millis(2),
        park_timeout: Duration::from_secs(20),
        fast_backoff: true,
        ..FillOptions::default()
    };
    let spec = spec("flight", "f", Park::Suspended);
    let report = pool::fill(&f.client, &spec, 1, &opts, &Control::detached())
        .await
        .unwrap();
    assert_eq!(report.created, 1, "{report:?}");
    let id = f.machines("flight")[0]["id"].as_str().unwrap().to_owned();

    // Another process's claim, halfway: it holds the lease and started the machine,
    // but has not tagged it yet.
    let other = client(&f.sim);
    let lease = other
        .acquire_lease("flight", &id, 30, "another claim")
        .await
        .unwrap();
    let nonce = lease.nonce.unwrap();
    other
        .start_machine("flight", &id, Some(&nonce))
        .await
        .unwrap();

    let before = listings_of(&f, "flight").await;
    let c = client(&f.sim);
    let late = tokio::spawn(async move {
        let req = ClaimRequest {
            app: "flight".into(),
            pool: "f".into(),
            user: "late".into(),
            ttl: Duration::from_secs(600),
            start_timeout: Duration::from_secs(20),
        };
        pool::claim(&c, &PoolListings::new(), &req, Timestamp::now()).await
    });
    // Once the late claim has listed the pool (and seen the member in flight), the
    // other claim finishes: tagged, lease released.
    crate::support::eventually("the late claim listed the pool", || async {
        listings_of(&f, "flight").await > before
    })
    .await;
    let tag = std::collections::BTreeMap::from([
        (pool::STATE_KEY.to_owned(), Some("claimed".to_owned())),
        (pool::USER_KEY.to_owned(), Some("other".to_owned())),
    ]);
    other
        .patch_metadata("flight", &id, &tag, None, Some(&nonce))
        .await
        .unwrap();
    other.release_lease("flight", &id, &nonce).await.unwrap();

    match late.await.unwrap().unwrap() {
        ClaimOutcome::Empty {
            members, claimed, ..
        } => assert_eq!((members, claimed), (1, 1)),
        ClaimOutcome::Claimed(env) => panic!("handed out a claimed environment: {env:?}"),
    }
}
