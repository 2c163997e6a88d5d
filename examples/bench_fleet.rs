//! The fleet benchmark, on the in-process simulator with its latency model and Fly's
//! documented rate limits on. Prints:
//!
//! 1. Claim vs cold start on the simulator's own clock (stepped mode: API answers take
//!    no simulated time, only the platform's transitions do): the median claim from a
//!    pool of suspended environments against one resume of the model, and the median
//!    cold `provision_environment` (app, IPs, volume, machine, wait until started) for
//!    comparison.
//! 2. The same two in real time at a time scale, where every API answer also costs the
//!    model's `api_ms`: what a caller would see, round trips included.
//! 3. Filling a pool of 200 at a time scale: elapsed, the bound the create rate limit
//!    allows (printed with its formula), the ratio, failures and 429s.
//!
//! The simulator runs with realism off: these figures are held to the latency model and
//! the rate-limit bound, which the realistic profile's consistency windows are not part of.
//!
//! `cargo run --example bench_fleet -- [CLAIMS] [FILL]` (defaults 15 and 200).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::time::{Duration, Instant};

use fly_machines_mcp::{
    fly,
    sim::{self, LatencyModel, Realism, SimConfig, SimHandle},
    workflows::{
        pool::{self, ClaimOutcome, ClaimRequest, FillOptions, Park, PoolSpec},
        provision::{self, EnvSpec, GuestSpec, VolumeSpec},
        sched::Control,
    },
};
use jiff::Timestamp;

const TOKEN: &str = "bench-fleet";

fn client(sim: &SimHandle) -> fly::Client {
    let cfg = fly::ClientConfig::local(sim.base_url().parse().unwrap(), fly::Token::parse(TOKEN))
        .unwrap();
    fly::Client::new(cfg).unwrap()
}

fn spec(app: &str) -> PoolSpec {
    PoolSpec {
        app: app.to_owned(),
        pool: "bench".to_owned(),
        region: Some("iad".to_owned()),
        config: fly::MachineConfig {
            image: "nginx:1".to_owned(),
            ..fly::MachineConfig::default()
        },
        park: Park::Suspended,
    }
}

fn claim_req(app: &str, user: &str) -> ClaimRequest {
    ClaimRequest {
        app: app.to_owned(),
        pool: "bench".to_owned(),
        user: user.to_owned(),
        ttl: Duration::from_secs(3600),
        start_timeout: Duration::from_secs(120),
    }
}

async fn create_app(c: &fly::Client, name: &str) {
    c.create_app(&fly::CreateApp {
        name: name.to_owned(),
        org_slug: "personal".to_owned(),
        ..fly::CreateApp::default()
    })
    .await
    .unwrap();
}

/// A cold start of one environment: the `provision_environment` workflow as the tool
/// runs it — app, shared IPv4 + IPv6 and a 1 GB volume in parallel, the machine, and
/// the wait until it is started.
async fn cold_start(c: &fly::Client, app: &str) {
    let env = EnvSpec {
        app: app.to_owned(),
        org: "personal".to_owned(),
        region: "iad".to_owned(),
        image: "nginx:1".to_owned(),
        cmd: None,
        guest: GuestSpec::Default,
        volume: Some(VolumeSpec {
            name: "data".to_owned(),
            size_gb: 1,
            path: "/data".to_owned(),
            auto_extend: None,
        }),
        services: Vec::new(),
        checks: Default::default(),
        env: Default::default(),
        user: Some("bench".to_owned()),
        expires_at: None,
        machine_name: "main".to_owned(),
        public_ips: true,
        idempotency_key: None,
        wait_timeout: Duration::from_secs(120),
        secrets: Default::default(),
    };
    let done = provision::provision_environment(c, &env, true, &Control::detached())
        .await
        .unwrap_or_else(|e| panic!("provision_environment {app}: {e:?}"));
    assert_eq!(done.created.len(), 5, "{:?}", done.created);
}

/// An automatic-mode simulator with rate limits on and latencies times `scale`.
async fn scaled_sim(scale: f64) -> SimHandle {
    let cfg = SimConfig {
        time_scale: scale,
        ..SimConfig::for_tests()
            .with_rate_limits(true)
            .with_realism(Realism::off())
    };
    sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Stepped mode: runs `fut`, moving the clock by `step_ms` whenever it has been
/// pending for a few real milliseconds.
async fn drive<T>(sim: &SimHandle, step_ms: u64, fut: impl Future<Output = T>) -> T {
    tokio::pin!(fut);
    for _ in 0..200_000 {
        if let Ok(v) = tokio::time::timeout(Duration::from_millis(15), &mut fut).await {
            return v;
        }
        sim.advance(Duration::from_millis(step_ms));
    }
    panic!("did not finish while the clock advanced");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn claimed(o: ClaimOutcome) {
    match o {
        ClaimOutcome::Claimed(env) => assert_eq!(env.started_from, "suspended"),
        ClaimOutcome::Empty { .. } => panic!("pool empty"),
    }
}

async fn sim_clock_part(claims: u32, l: &LatencyModel) {
    let s = sim::start(
        SimConfig::stepped()
            .with_rate_limits(true)
            .with_realism(Realism::off()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let c = client(&s);
    let listings = pool::PoolListings::new();
    create_app(&c, "simclock").await;
    // Filling is measured in part 3; here it only sets the stage, so the limits are off
    // while the stepped clock crawls through it, and back on for the claims.
    s.set_rate_limits(false);
    let opts = FillOptions {
        concurrency: 8,
        create_interval: Duration::ZERO,
        park_timeout: Duration::from_secs(600),
        fast_backoff: true,
    };
    let r = drive(
        &s,
        100,
        pool::fill(&c, &spec("simclock"), claims, &opts, &Control::detached()),
    )
    .await
    .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    s.set_rate_limits(true);
    let mut claim_ms = Vec::new();
    for i in 0..claims {
        // Users arrive one simulated second apart (outside the measurement), so a
        // claim that lists the pool finds the app's list budget refilled.
        s.advance(Duration::from_secs(1));
        let t0 = s.now_ms();
        let o = drive(
            &s,
            5,
            pool::claim(
                &c,
                &listings,
                &claim_req("simclock", &format!("u{i}")),
                Timestamp::now(),
            ),
        )
        .await
        .unwrap();
        claimed(o);
        #[allow(clippy::cast_precision_loss)]
        claim_ms.push((s.now_ms() - t0) as f64);
    }
    let mut cold_ms = Vec::new();
    for i in 0..5 {
        let t0 = s.now_ms();
        drive(&s, 5, cold_start(&c, &format!("cold-sim-{i}"))).await;
        #[allow(clippy::cast_precision_loss)]
        cold_ms.push((s.now_ms() - t0) as f64);
    }
    #[allow(clippy::cast_precision_loss)]
    let resume = l.resume_ms as f64;
    let (claim, cold) = (median(claim_ms), median(cold_ms));
    println!("== 1. simulator clock (stepped; rate limits on)");
    println!("resume latency of the model : {resume:.0} ms");
    println!(
        "claim from suspended pool   : median {claim:.0} ms over {claims} claims = {:.2} x resume (target <= 1.20)",
        claim / resume
    );
    println!(
        "cold provision_environment  : median {cold:.0} ms over 5 = {:.1} x the claim",
        cold / claim
    );
    s.shutdown().await;
}

async fn real_time_part(claims: u32, l: &LatencyModel, scale: f64) {
    let s = scaled_sim(scale).await;
    let c = client(&s);
    let listings = pool::PoolListings::new();
    create_app(&c, "wall").await;
    let opts = FillOptions {
        concurrency: 8,
        create_interval: Duration::from_secs_f64(scale),
        park_timeout: Duration::from_secs(120),
        fast_backoff: true,
    };
    let r = pool::fill(&c, &spec("wall"), claims, &opts, &Control::detached())
        .await
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    let mut claim_ms = Vec::new();
    for i in 0..claims {
        let t0 = Instant::now();
        claimed(
            pool::claim(
                &c,
                &listings,
                &claim_req("wall", &format!("u{i}")),
                Timestamp::now(),
            )
            .await
            .unwrap(),
        );
        claim_ms.push(t0.elapsed().as_secs_f64() * 1000.0 / scale);
    }
    let mut cold_ms = Vec::new();
    for i in 0..5 {
        let t0 = Instant::now();
        cold_start(&c, &format!("cold-wall-{i}")).await;
        cold_ms.push(t0.elapsed().as_secs_f64() * 1000.0 / scale);
    }
    #[allow(clippy::cast_precision_loss)]
    let resume = l.resume_ms as f64;
    let (claim, cold) = (median(claim_ms), median(cold_ms));
    println!(
        "== 2. real time at time scale {scale} (every API answer costs api_ms = {} ms of model time; figures in model ms)",
        l.api_ms
    );
    println!(
        "claim from suspended pool   : median {claim:.0} ms = {:.2} x resume",
        claim / resume
    );
    println!(
        "cold provision_environment  : median {cold:.0} ms = {:.1} x the claim",
        cold / claim
    );
    s.shutdown().await;
}

async fn fill_part(size: u32, l: &LatencyModel, scale: f64) {
    let s = scaled_sim(scale).await;
    let c = client(&s);
    create_app(&c, "fill").await;
    let opts = FillOptions {
        concurrency: 16,
        create_interval: Duration::from_secs_f64(pool::CREATE_RATE_PER_SEC.recip() * scale),
        park_timeout: Duration::from_secs(120),
        fast_backoff: true,
    };
    let r = pool::fill(&c, &spec("fill"), size, &opts, &Control::detached())
        .await
        .unwrap();
    let tail = Duration::from_millis(l.create_ms + l.boot_ms + l.suspend_ms);
    let bound = (pool::create_rate_bound(size) + tail).mul_f64(scale);
    let requests: serde_json::Value = reqwest::get(format!("{}/__sim/requests", s.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = requests["requests"].as_array().cloned().unwrap_or_default();
    let limited = all.iter().filter(|r| r["status"] == 429).count();
    println!("== 3. fill a pool of {size} at time scale {scale} (rate limits on)");
    println!(
        "bound: ({size} - burst {}) / {} create/s + create {} + boot {} + suspend {} ms = {:.1} s of model time = {:.3} s at this scale",
        pool::CREATE_BURST,
        pool::CREATE_RATE_PER_SEC,
        l.create_ms,
        l.boot_ms,
        l.suspend_ms,
        bound.as_secs_f64() / scale,
        bound.as_secs_f64()
    );
    println!(
        "elapsed {:.3} s = {:.3} x bound (target <= 1.20); created {}, failed {}, 429s seen by the simulator {limited} of {} requests, item-level 429 retries {}",
        r.elapsed.as_secs_f64(),
        r.elapsed.as_secs_f64() / bound.as_secs_f64(),
        r.created,
        r.failed.len(),
        all.len(),
        r.rate_limited_retries
    );
    s.shutdown().await;
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let claims: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(15)
        .clamp(1, 100);
    let fill: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(200)
        .clamp(1, 2000);
    let l = LatencyModel::default();
    sim_clock_part(claims, &l).await;
    real_time_part(claims, &l, 0.1).await;
    fill_part(fill, &l, 0.05).await;
}
