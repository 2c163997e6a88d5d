//! Fill, status, claim, release and reap through the workflow layer.

use std::time::Duration;

use fly_machines_mcp::workflows::pool::{
    self, ClaimOutcome, ClaimRequest, FillOptions, Park, ReleaseMode, ReleaseTarget,
};
use fly_machines_mcp::workflows::sched::{CancellationToken, Control, Progress};
use jiff::{SignedDuration, Timestamp};

use super::{Fleet, spec};
use crate::support::TestEnv;

fn fill_opts(time_scale: f64) -> FillOptions {
    FillOptions {
        concurrency: 16,
        create_interval: Duration::from_secs_f64(time_scale),
        park_timeout: Duration::from_secs(20),
        fast_backoff: true,
    }
}

fn claim(app: &str, pool: &str, user: &str, ttl_secs: u64) -> ClaimRequest {
    ClaimRequest {
        app: app.to_owned(),
        pool: pool.to_owned(),
        user: user.to_owned(),
        ttl: Duration::from_secs(ttl_secs),
        start_timeout: Duration::from_secs(20),
    }
}

fn claimed(o: ClaimOutcome) -> pool::Environment {
    match o {
        ClaimOutcome::Claimed(env) => env,
        ClaimOutcome::Empty { .. } => panic!("pool empty: {o:?}"),
    }
}

#[tokio::test]
async fn fill_claim_release_and_reap_exactly_the_expired() {
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    f.app("envs").await;
    let s = spec("envs", "dev", Park::Suspended);
    let report = pool::fill(&f.client, &s, 6, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert_eq!(report.created, 6, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    let now = Timestamp::now();
    let st = pool::status(&f.client, "envs", "dev", now).await.unwrap();
    assert_eq!((st.free, st.claimed, st.broken), (6, 0, 0), "{st:?}");
    for m in f.machines("envs") {
        assert_eq!(m["state"], "suspended", "{m}");
    }

    // Claims: the fast path resumes a suspended environment.
    let alice = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "alice", 3600),
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(alice.started_from, "suspended");
    assert!(!alice.renewed);
    assert_eq!(alice.url, "https://envs.fly.dev");
    let again = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "alice", 3600),
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        again.machine_id, alice.machine_id,
        "a second claim renews the first"
    );
    assert!(again.renewed);
    let bob = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "bob", 3600),
            now,
        )
        .await
        .unwrap(),
    );
    let carol = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "carol", 3 * 3600),
            now,
        )
        .await
        .unwrap(),
    );
    let dave = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "dave", 1800),
            now,
        )
        .await
        .unwrap(),
    );
    let ids = [
        &alice.machine_id,
        &bob.machine_id,
        &carol.machine_id,
        &dave.machine_id,
    ];
    for (i, a) in ids.iter().enumerate() {
        for b in ids.iter().skip(i + 1) {
            assert_ne!(a, b);
        }
    }
    for m in f.machines("envs") {
        if ids.contains(&&m["id"].as_str().unwrap().to_owned()) {
            assert_eq!(m["state"], "started", "{m}");
            assert!(
                m.get("lease").is_none_or(|l| l.is_null()),
                "lease left: {m}"
            );
        }
    }
    let st = pool::status(&f.client, "envs", "dev", now).await.unwrap();
    assert_eq!((st.free, st.claimed), (2, 4), "{st:?}");

    // Release: bob's goes back to the pool, alice hibernates hers.
    let r = pool::release(
        &f.client,
        "envs",
        "dev",
        &ReleaseTarget::User("bob".into()),
        ReleaseMode::Recycle,
        Park::Suspended,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(r.machine_id, bob.machine_id);
    let r = pool::release(
        &f.client,
        "envs",
        "dev",
        &ReleaseTarget::Machine(alice.machine_id.clone()),
        ReleaseMode::Keep,
        Park::Suspended,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(r.user.as_deref(), Some("alice"));
    let st = pool::status(&f.client, "envs", "dev", now).await.unwrap();
    assert_eq!((st.free, st.claimed), (3, 3), "{st:?}");
    let hib = st
        .members
        .iter()
        .find(|m| m.machine_id == alice.machine_id)
        .unwrap();
    assert_eq!(hib.machine_state, "suspended");
    assert_eq!(hib.user.as_deref(), Some("alice"));
    // Her next claim resumes the same one.
    let back = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("envs", "dev", "alice", 3600),
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(back.machine_id, alice.machine_id);
    assert_eq!(back.started_from, "suspended");

    // Reap two hours later: alice (1 h) and dave (30 min) are expired, carol (3 h) is not.
    let later = now.checked_add(SignedDuration::from_hours(2)).unwrap();
    let plan = pool::plan_reap(&f.client, "envs", "dev", later)
        .await
        .unwrap();
    let mut planned: Vec<&str> = plan.expired.iter().map(|m| m.machine_id.as_str()).collect();
    planned.sort_unstable();
    let mut want = vec![alice.machine_id.as_str(), dave.machine_id.as_str()];
    want.sort_unstable();
    assert_eq!(planned, want);
    let reaped = pool::reap(&f.client, &plan, &Control::detached()).await;
    assert!(
        reaped
            .iter()
            .all(|r| r.outcome == fly_machines_mcp::workflows::Outcome::Destroyed),
        "{reaped:?}"
    );
    let live: Vec<String> = f
        .machines("envs")
        .into_iter()
        .filter(|m| m["state"] != "destroyed" && m["state"] != "destroying")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(live.len(), 4);
    assert!(!live.contains(&alice.machine_id) && !live.contains(&dave.machine_id));
    assert!(live.contains(&carol.machine_id) && live.contains(&bob.machine_id));
    let st = pool::status(&f.client, "envs", "dev", later).await.unwrap();
    assert_eq!((st.free, st.claimed, st.expired), (3, 1, 0), "{st:?}");
}

#[tokio::test]
async fn wipe_replaces_the_environment_in_its_slot() {
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    f.app("wipes").await;
    let s = spec("wipes", "w", Park::Stopped);
    let report = pool::fill(&f.client, &s, 2, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert_eq!(report.created, 2, "{report:?}");
    for m in f.machines("wipes") {
        assert_eq!(m["state"], "created", "parked stopped = never started: {m}");
    }
    let now = Timestamp::now();
    let env = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("wipes", "w", "erin", 600),
            now,
        )
        .await
        .unwrap(),
    );
    assert_eq!(env.started_from, "created");
    let r = pool::release(
        &f.client,
        "wipes",
        "w",
        &ReleaseTarget::User("erin".into()),
        ReleaseMode::Wipe,
        Park::Stopped,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let fresh = r.replacement.unwrap();
    assert_ne!(fresh, env.machine_id);
    let st = pool::status(&f.client, "wipes", "w", now).await.unwrap();
    assert_eq!((st.free, st.claimed), (2, 0), "{st:?}");
    let slots: Vec<Option<u32>> = st.members.iter().map(|m| m.slot).collect();
    assert_eq!(slots, [Some(0), Some(1)]);
    assert!(st.members.iter().all(|m| m.user.is_none()));
}

#[tokio::test]
async fn an_interrupted_fill_resumes_without_duplicates() {
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    f.app("resume").await;
    let s = spec("resume", "r", Park::Suspended);
    let (progress, mut rx) = Progress::channel();
    let cancel = CancellationToken::new();
    let ctl = Control::new(progress, cancel.clone());
    let stopper = tokio::spawn(async move {
        if rx.recv().await.is_some() {
            cancel.cancel();
        }
    });
    let mut opts = fill_opts(0.002);
    opts.concurrency = 2;
    opts.create_interval = Duration::from_millis(20);
    let first = pool::fill(&f.client, &s, 8, &opts, &ctl).await.unwrap();
    stopper.await.unwrap();
    assert!(first.cancelled > 0, "{first:?}");
    assert!(first.created < 8, "{first:?}");
    let second = pool::fill(&f.client, &s, 8, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert!(second.failed.is_empty(), "{second:?}");
    assert_eq!(
        second.already_present + second.created + second.parked,
        8,
        "{second:?}"
    );
    let st = pool::status(&f.client, "resume", "r", Timestamp::now())
        .await
        .unwrap();
    assert_eq!(st.free, 8, "{st:?}");
    let mut slots: Vec<u32> = st.members.iter().filter_map(|m| m.slot).collect();
    slots.dedup();
    assert_eq!(slots, (0..8).collect::<Vec<_>>());
    assert_eq!(f.machines("resume").len(), 8, "no duplicate machines");
}

/// Filling 200 under the documented create limit (1/s per app, bursts of 3), at a
/// time scale that makes it take about two seconds.
#[tokio::test]
async fn filling_200_has_no_failures_near_the_rate_limit_bound() {
    let scale = 0.01;
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(scale)).await;
    f.app("big").await;
    let s = spec("big", "b", Park::Suspended);
    let report = pool::fill(&f.client, &s, 200, &fill_opts(scale), &Control::detached())
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed.first());
    assert_eq!(report.created, 200);
    let l = fly_machines_mcp::sim::LatencyModel::default();
    let tail = Duration::from_millis(l.create_ms + l.boot_ms + l.suspend_ms);
    let bound = (pool::create_rate_bound(200) + tail).mul_f64(scale);
    let ratio = report.elapsed.as_secs_f64() / bound.as_secs_f64();
    eprintln!(
        "fill 200: {:?} (bound {bound:?}, ratio {ratio:.3}, 429s {})",
        report.elapsed,
        f.count_429().await
    );
    // Wall time at a 1/100 time scale on a shared 2-core machine running the whole suite
    // in parallel: scheduler jitter is magnified 100 times, so this only guards gross
    // regressions (it failed at 2.0 under full-suite load). The ratio itself is measured
    // by `examples/bench_fleet` (1.05-1.06 at time scale 0.05).
    assert!(ratio <= 4.0, "ratio {ratio}");
    assert_eq!(f.machines("big").len(), 200);
}

/// On the simulator's own clock, a claim from a pool of suspended environments costs
/// one resume (plus at most 20 %).
#[tokio::test]
async fn a_claim_costs_one_resume_on_the_simulator_clock() {
    let f = Fleet::new(TestEnv::sim_only().stepped().rate_limits()).await;
    f.app("fast").await;
    let s = spec("fast", "p", Park::Suspended);
    let mut opts = fill_opts(0.0);
    opts.concurrency = 3;
    let report = f
        .drive(
            50,
            pool::fill(&f.client, &s, 3, &opts, &Control::detached()),
        )
        .await;
    assert_eq!(report.unwrap().created, 3);
    let resume_ms = fly_machines_mcp::sim::LatencyModel::default().resume_ms;
    let before = f.sim.now_ms();
    let env = f
        .drive(
            5,
            pool::claim(
                &f.client,
                &f.listings,
                &claim("fast", "p", "zoe", 600),
                Timestamp::now(),
            ),
        )
        .await
        .unwrap();
    let took = f.sim.now_ms() - before;
    assert_eq!(claimed(env).started_from, "suspended");
    eprintln!("claim on the sim clock: {took} ms (resume {resume_ms} ms)");
    assert!(took >= resume_ms, "{took}");
    assert!(
        took * 10 <= resume_ms * 12,
        "claim took {took} ms of sim time"
    );
}

/// A fill that died between create and park left a `filling` member: the next fill
/// parks it instead of creating another machine for its slot.
#[tokio::test]
async fn a_half_made_member_is_parked_not_duplicated() {
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    f.app("half").await;
    let s = spec("half", "h", Park::Suspended);
    let mut config = s.config.clone();
    for (k, v) in [
        (pool::POOL_KEY, "h"),
        (pool::STATE_KEY, "filling"),
        (pool::SLOT_KEY, "0"),
    ] {
        config.metadata.insert(k.to_owned(), v.to_owned());
    }
    let orphan = f
        .client
        .create_machine(
            "half",
            &fly_machines_mcp::fly::CreateMachine {
                config,
                region: Some("iad".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let st = pool::status(&f.client, "half", "h", Timestamp::now())
        .await
        .unwrap();
    assert_eq!((st.filling, st.free), (1, 0), "{st:?}");
    let report = pool::fill(&f.client, &s, 3, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert_eq!((report.parked, report.created), (1, 2), "{report:?}");
    let st = pool::status(&f.client, "half", "h", Timestamp::now())
        .await
        .unwrap();
    assert_eq!(st.free, 3, "{st:?}");
    let slot0 = st.members.iter().find(|m| m.slot == Some(0)).unwrap();
    assert_eq!(slot0.machine_id, orphan.id);
    assert_eq!(slot0.machine_state, "suspended");
    assert_eq!(f.machines("half").len(), 3);
}

/// `refill` after a claim: one more free environment, from the claimed one's config.
#[tokio::test]
async fn refill_after_a_claim_keeps_the_free_count() {
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    f.app("refill").await;
    let s = spec("refill", "f", Park::Suspended);
    pool::fill(&f.client, &s, 2, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    let now = Timestamp::now();
    let env = claimed(
        pool::claim(
            &f.client,
            &f.listings,
            &claim("refill", "f", "uma", 600),
            now,
        )
        .await
        .unwrap(),
    );
    let report = pool::refill_after_claim(&f.client, &env, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert_eq!(
        (report.created, report.already_present),
        (1, 2),
        "{report:?}"
    );
    let st = pool::status(&f.client, "refill", "f", now).await.unwrap();
    assert_eq!((st.free, st.claimed), (2, 1), "{st:?}");
    let fresh = st.members.iter().find(|m| m.slot == Some(2)).unwrap();
    assert_eq!(fresh.machine_state, "suspended");
    assert!(fresh.user.is_none());
    let m = f
        .machines("refill")
        .into_iter()
        .find(|m| m["id"] == fresh.machine_id.as_str())
        .unwrap();
    assert_eq!(m["config"]["image"], "nginx:1");
}

/// Issue 18 item 2: pool members made after the app's secrets were set launch with
/// that secrets version (`min_secrets_version`, flyctl passes it on every launch,
/// `internal/appsecrets/minvers.go`), taken from the environment provisioned with the
/// secrets; so do the fresh members a refill makes.
#[tokio::test]
async fn pool_members_launch_with_the_secrets_the_app_was_given() {
    use fly_machines_mcp::workflows::provision::{
        AppSecrets, EnvSpec, GuestSpec, provision_environment,
    };
    let f = Fleet::new(TestEnv::sim_only().rate_limits().time_scale(0.002)).await;
    let mut secrets = std::collections::BTreeMap::new();
    secrets.insert(
        "API_TOKEN".to_owned(),
        secrecy::SecretString::from("pool-secret-value".to_owned()),
    );
    let env = EnvSpec {
        app: "pool-secrets".into(),
        org: "personal".into(),
        region: "iad".into(),
        image: "nginx:1".into(),
        cmd: None,
        guest: GuestSpec::Default,
        volume: None,
        services: Vec::new(),
        checks: Default::default(),
        env: Default::default(),
        user: None,
        expires_at: None,
        machine_name: "seed".into(),
        public_ips: false,
        idempotency_key: None,
        wait_timeout: Duration::from_secs(20),
        secrets: AppSecrets(secrets),
    };
    provision_environment(&f.client, &env, true, &Control::detached())
        .await
        .unwrap();
    let s = spec("pool-secrets", "p", Park::Stopped);
    let report = pool::fill(&f.client, &s, 3, &fill_opts(0.002), &Control::detached())
        .await
        .unwrap();
    assert_eq!(report.created, 3, "{report:?}");
    let want = f.sim.state_json()["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "pool-secrets")
        .unwrap()["secrets_version"]
        .clone();
    assert_eq!(want, 1);
    let machines = f.machines("pool-secrets");
    assert_eq!(machines.len(), 4);
    for m in &machines {
        assert_eq!(m["secrets_version"], want, "{m}");
    }
}
