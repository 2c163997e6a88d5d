//! The workflow layer against the simulator, without MCP.

use std::time::Duration;

use fly_machines_mcp::workflows::Outcome;
use fly_machines_mcp::workflows::sched::Control;
use fly_machines_mcp::workflows::update::{self, ConfigChange, Strategy, UpdateOptions};

use super::{Env, app_of};

fn image(image: &str) -> ConfigChange {
    ConfigChange {
        image: Some(image.to_owned()),
        ..ConfigChange::default()
    }
}

fn quick(strategy: Strategy) -> UpdateOptions {
    UpdateOptions {
        strategy,
        start_timeout: Duration::from_secs(10),
        health_timeout: Duration::from_secs(1),
        ..UpdateOptions::default()
    }
}

#[tokio::test]
async fn rolling_update_changes_every_machine_and_releases_leases() {
    let env = Env::fast().await;
    let ids = env.app_with_machines("roll-ok", "iad", "nginx:1", 3).await;
    let plan = update::plan_update(&env.client, "roll-ok", &[], false)
        .await
        .unwrap();
    assert_eq!(plan.targets.len(), 3);
    let report = update::run_update(
        &env.client,
        &plan,
        &image("nginx:2"),
        &quick(Strategy::Rolling { batch: 2 }),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(report.count(Outcome::Updated), 3, "{report:?}");
    assert!(!report.stopped_early);
    for id in &ids {
        let m = env.machine("roll-ok", id);
        assert_eq!(m["config"]["image"], "nginx:2");
        assert_eq!(m["state"], "started");
        assert!(m.get("lease").is_none(), "lease left on {id}: {m}");
        // Untouched parts of the config survive.
        assert_eq!(m["config"]["env"]["MODE"], "one");
    }
    // The same change again is a no-op.
    let plan = update::plan_update(&env.client, "roll-ok", &[], false)
        .await
        .unwrap();
    let again = update::run_update(
        &env.client,
        &plan,
        &image("nginx:2"),
        &quick(Strategy::Rolling { batch: 1 }),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(again.count(Outcome::Unchanged), 3, "{again:?}");
}

#[tokio::test]
async fn failing_health_check_stops_after_the_first_machine_and_reverts_it() {
    let env = Env::fast().await;
    let ids = env.app_with_machines("roll-bad", "iad", "nginx:1", 3).await;
    let before: Vec<String> = ids
        .iter()
        .map(|id| {
            env.machine("roll-bad", id)["version"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let plan = update::plan_update(&env.client, "roll-bad", &[], false)
        .await
        .unwrap();
    let first = plan.targets[0].id.clone();
    let report = update::run_update(
        &env.client,
        &plan,
        &image("nginx:unhealthy-2"),
        &quick(Strategy::Rolling { batch: 1 }),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert!(report.stopped_early, "{report:?}");
    let r0 = &report.machines[0];
    assert_eq!(r0.id, first);
    assert_eq!(r0.outcome, Outcome::Reverted, "{r0:?}");
    let why = r0.error.as_deref().unwrap();
    assert!(why.contains("health checks not passing"), "{why}");
    assert!(why.contains("connection refused"), "{why}");
    assert_eq!(report.count(Outcome::Skipped), 2, "{report:?}");

    // The first machine is back on its previous config, started, unleased.
    let m = env.machine("roll-bad", &first);
    assert_eq!(m["config"]["image"], "nginx:1");
    assert_eq!(m["state"], "started");
    assert!(m.get("lease").is_none(), "{m}");
    assert_eq!(env.version_count("roll-bad", &first).await, 3);
    // The others were never touched.
    for (id, v) in ids.iter().zip(&before) {
        let m = env.machine("roll-bad", id);
        assert!(m.get("lease").is_none(), "{m}");
        if *id != first {
            assert_eq!(m["version"].as_str().unwrap(), v);
            assert_eq!(m["config"]["image"], "nginx:1");
        }
    }
}

#[tokio::test]
async fn immediate_update_changes_all_without_waiting() {
    let env = Env::fast().await;
    let ids = env.app_with_machines("imm", "iad", "nginx:1", 3).await;
    let plan = update::plan_update(&env.client, "imm", &ids[..2], false)
        .await
        .unwrap();
    let change = ConfigChange {
        env: [("MODE".to_owned(), Some("two".to_owned()))].into(),
        ..ConfigChange::default()
    };
    let report = update::run_update(
        &env.client,
        &plan,
        &change,
        &quick(Strategy::Immediate),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(report.count(Outcome::Updated), 2, "{report:?}");
    assert_eq!(
        report
            .machines
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    let state = env.state();
    let machines = app_of(&state, "imm")["machines"].as_array().unwrap();
    for m in machines {
        let want = if ids[..2].contains(&m["id"].as_str().unwrap().to_owned()) {
            "two"
        } else {
            "one"
        };
        assert_eq!(m["config"]["env"]["MODE"], want, "{m}");
        assert!(m.get("lease").is_none(), "{m}");
    }
}

#[tokio::test]
async fn two_clients_on_one_machine_one_wins_the_other_sees_the_lease() {
    let env = Env::stepped().await;
    env.create_app("race").await;
    let id = env.create_machine("race", "iad", "nginx:1").await;
    env.advance_until(500, env.until_started("race", &id)).await;
    assert_eq!(env.version_count("race", &id).await, 1);

    // Client A: its update holds the lease while it waits for the machine to start,
    // which in stepped mode happens only when the test moves the clock.
    let client_a = env.client.clone();
    let plan = update::plan_update(&env.client, "race", std::slice::from_ref(&id), false)
        .await
        .unwrap();
    let plan_b = plan.clone();
    let change_a = ConfigChange {
        env: [("MODE".to_owned(), Some("from-a".to_owned()))].into(),
        ..ConfigChange::default()
    };
    let mut a = tokio::spawn(async move {
        update::run_update(
            &client_a,
            &plan,
            &change_a,
            &quick(Strategy::Rolling { batch: 1 }),
            &Control::detached(),
        )
        .await
    });
    let mut leased = false;
    for _ in 0..200 {
        if env.machine("race", &id).get("lease").is_some() {
            leased = true;
            break;
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut a)
                .await
                .is_err(),
            "A finished early"
        );
    }
    assert!(leased, "client A never took the lease");

    // Client B, at the same time, on the same machine.
    let client_b = super::client_for(&env.sim);
    let change_b = ConfigChange {
        env: [("MODE".to_owned(), Some("from-b".to_owned()))].into(),
        ..ConfigChange::default()
    };
    let report_b = update::run_update(
        &client_b,
        &plan_b,
        &change_b,
        &quick(Strategy::Rolling { batch: 1 }),
        &Control::detached(),
    )
    .await
    .unwrap();
    let rb = &report_b.machines[0];
    assert_eq!(rb.outcome, Outcome::Failed, "{rb:?}");
    let why = rb.error.as_deref().unwrap();
    assert!(
        why.contains("is leased by") && why.contains(" until "),
        "{why}"
    );
    assert!(why.contains(update::LEASE_DESCRIPTION), "{why}");

    // A finishes once the clock moves.
    let report_a = env.advance_until(500, &mut a).await.unwrap().unwrap();
    assert_eq!(
        report_a.machines[0].outcome,
        Outcome::Updated,
        "{report_a:?}"
    );
    let m = env.machine("race", &id);
    assert_eq!(m["config"]["env"]["MODE"], "from-a");
    assert!(m.get("lease").is_none(), "{m}");
    // Exactly one update happened: no lost update, no second version from B.
    assert_eq!(env.version_count("race", &id).await, 2);
}

/// What another party does to a machine just before our update reaches Fly.
#[derive(Clone, Copy)]
enum Meddle {
    /// Reads our lease's nonce (Fly shows it), releases the lease with it as
    /// `fly machine leases clear` does, and takes a lease of its own.
    TakeTheLease,
    /// Reads the nonce and uses it to update the machine itself: our lease stays, our
    /// `current_version` goes stale.
    UpdateUnderOurLease,
}

/// A loopback proxy in front of the simulator that lets `meddle` act once, on the
/// first machine update (`POST /v1/apps/{app}/machines/{id}`), before forwarding it.
async fn interposer(upstream: String, meddle: Meddle) -> (String, tokio::task::JoinHandle<()>) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone)]
    struct Up {
        base: String,
        http: reqwest::Client,
        done: Arc<AtomicBool>,
        meddle: Meddle,
    }
    async fn act(up: &Up, path: &str) {
        let auth = format!("Bearer {}", super::TOKEN);
        let lease = format!("{}{path}/lease", up.base);
        let seen: serde_json::Value = up
            .http
            .get(&lease)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let nonce = seen["data"]["nonce"]
            .as_str()
            .expect("Fly shows the nonce")
            .to_owned();
        match up.meddle {
            Meddle::TakeTheLease => {
                let r = up
                    .http
                    .delete(&lease)
                    .header("Authorization", &auth)
                    .header("fly-machine-lease-nonce", &nonce)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let r = up
                    .http
                    .post(&lease)
                    .header("Authorization", &auth)
                    .json(&serde_json::json!({"ttl": 120, "description": "someone else"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
            Meddle::UpdateUnderOurLease => {
                let m: serde_json::Value = up
                    .http
                    .get(format!("{}{path}", up.base))
                    .header("Authorization", &auth)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let mut config = m["config"].clone();
                config["env"]["MODE"] = serde_json::json!("meddled");
                let r = up
                    .http
                    .post(format!("{}{path}", up.base))
                    .header("Authorization", &auth)
                    .header("fly-machine-lease-nonce", &nonce)
                    .json(&serde_json::json!({"config": config}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }
    }
    async fn forward(State(up): State<Up>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let is_update = parts.method == http::Method::POST
            && path.starts_with("/v1/apps/")
            && path.split('/').count() == 6
            && path.split('/').nth(4) == Some("machines");
        if is_update && !up.done.swap(true, Ordering::SeqCst) {
            act(&up, &path).await;
        }
        let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
        let target = match parts.uri.query() {
            Some(q) => format!("{}{path}?{q}", up.base),
            None => format!("{}{path}", up.base),
        };
        let mut rb = up
            .http
            .request(parts.method.clone(), &target)
            .body(bytes.to_vec());
        for (k, v) in &parts.headers {
            if !matches!(k.as_str(), "host" | "content-length" | "connection") {
                rb = rb.header(k, v);
            }
        }
        let resp = rb.send().await.unwrap();
        let mut out = Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            if !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) {
                out = out.header(k, v);
            }
        }
        out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
    }
    let up = Up {
        base: upstream,
        http: reqwest::Client::new(),
        done: Arc::new(AtomicBool::new(false)),
        meddle,
    };
    let app = axum::Router::new().fallback(forward).with_state(up);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

/// Issue 18 item 5: a 409 on the update is told apart — our lease taken by someone
/// who read its nonce (Fly shows it) versus our `current_version` gone stale while
/// the lease is still ours. Today's client called both "changed since it was read".
#[tokio::test]
async fn a_lost_lease_is_told_apart_from_a_stale_version() {
    for (meddle, expect, not) in [
        (
            Meddle::TakeTheLease,
            "our lease on machine",
            "changed since it was read",
        ),
        (
            Meddle::UpdateUnderOurLease,
            "changed since it was read",
            "our lease on machine",
        ),
    ] {
        let env = Env::fast().await;
        let ids = env.app_with_machines("meddled", "iad", "nginx:1", 1).await;
        let (proxy, task) = interposer(env.sim.base_url(), meddle).await;
        let cfg = fly_machines_mcp::fly::ClientConfig::local(
            proxy.parse().unwrap(),
            fly_machines_mcp::fly::Token::parse(super::TOKEN),
        )
        .unwrap();
        let client = fly_machines_mcp::fly::Client::new(cfg).unwrap();
        let plan = update::plan_update(&client, "meddled", &[], false)
            .await
            .unwrap();
        let report = update::run_update(
            &client,
            &plan,
            &image("nginx:2"),
            &quick(Strategy::Rolling { batch: 1 }),
            &Control::detached(),
        )
        .await
        .unwrap();
        let m = &report.machines[0];
        assert_eq!(m.outcome, Outcome::Failed, "{m:?}");
        let why = m.error.as_deref().unwrap();
        assert!(why.contains(expect) && !why.contains(not), "{why}");
        if matches!(meddle, Meddle::TakeTheLease) {
            assert!(
                why.contains("someone else") || why.contains("held by"),
                "{why}"
            );
        }
        assert_eq!(
            env.machine("meddled", &ids[0])["config"]["image"],
            "nginx:1"
        );
        task.abort();
    }
}

/// The requests the simulator logged with `method` and `path`.
async fn logged(env: &Env, method: &str, path: &str) -> usize {
    let v: serde_json::Value = env
        .http
        .get(env.url("/__sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .count()
}

/// Issue 18 item 10: while a machine's host is unreachable Fly fills only
/// `incomplete_config` (API-NOTES §3; the spec's `fly.Machine`). It is never taken as
/// the config: an update of that machine is refused before anything is sent (posting
/// it back would drop env, services and checks), and it is not cloned as a template.
#[tokio::test]
async fn item10_machine_on_an_unreachable_host_is_neither_updated_nor_cloned() {
    let env = Env::fast().await;
    let ids = env.app_with_machines("unreach", "iad", "nginx:1", 1).await;
    let id = &ids[0];
    let (st, v) = env
        .post(
            &format!("/__sim/machines/{id}/host"),
            serde_json::json!({"status": "unreachable"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let plan = update::plan_update(&env.client, "unreach", &[], false)
        .await
        .unwrap();
    let report = update::run_update(
        &env.client,
        &plan,
        &image("nginx:2"),
        &quick(Strategy::Rolling { batch: 1 }),
        &Control::detached(),
    )
    .await
    .unwrap();
    assert_eq!(report.count(Outcome::Failed), 1, "{report:?}");
    let why = report.machines[0].error.clone().unwrap();
    assert!(
        why.contains("unreachable") && why.contains("nothing was changed"),
        "{why}"
    );
    let updates = logged(&env, "POST", &format!("/v1/apps/unreach/machines/{id}")).await;
    assert_eq!(updates, 0, "no update was sent");
    assert!(
        env.machine("unreach", id)["config"].is_null(),
        "hidden while unreachable"
    );

    let targets = std::collections::BTreeMap::from([("iad".to_owned(), 2)]);
    let err = fly_machines_mcp::workflows::scale::plan_scale(
        &env.client,
        "unreach",
        Some(id),
        &targets,
        false,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(
        logged(&env, "POST", "/v1/apps/unreach/machines").await,
        1,
        "only the first create"
    );
    // Back on a reachable host: the config is whole, and it was never changed.
    env.post(
        &format!("/__sim/machines/{id}/host"),
        serde_json::json!({"status": "ok"}),
    )
    .await;
    let m = env.machine("unreach", id);
    assert_eq!(m["config"]["env"]["MODE"], "one", "{m}");
    assert_eq!(m["config"]["image"], "nginx:1", "{m}");
}

/// Issue 18 item 11: the update reaches Fly, applies, and its answer is lost (the
/// simulator's `applied` and `applied_reset` faults: a 5xx or a reset after the handler ran). The client
/// repeats it with the same `current_version` and gets 409 — about its own first
/// attempt. It reads the machine back, sees the change there, and reports the machine
/// updated, not "nothing was changed".
#[tokio::test]
async fn item11_update_applied_then_answered_5xx_is_reported_updated() {
    for fault in ["applied", "applied_reset"] {
        let env = Env::fast().await;
        let app = format!("item11-{}", fault.replace('_', "-"));
        let ids = env.app_with_machines(&app, "iad", "nginx:1", 1).await;
        let id = &ids[0];
        let before = env.machine(&app, id)["version"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/v1/apps/{app}/machines/{id}");
        // One fault, aimed at the update: the effect happens, the answer is lost.
        let spec = format!("{fault}=1,on=POST {path},times=1");
        env.sim.set_faults(spec.parse().unwrap());
        let plan = update::plan_update(&env.client, &app, &[], false)
            .await
            .unwrap();
        let report = update::run_update(
            &env.client,
            &plan,
            &image("nginx:2"),
            &quick(Strategy::Rolling { batch: 1 }),
            &Control::detached(),
        )
        .await
        .unwrap();
        env.sim.set_faults(Default::default());
        let m = env.machine(&app, id);
        assert_eq!(m["config"]["image"], "nginx:2", "the first attempt applied");
        assert_ne!(m["version"].as_str().unwrap(), before);
        assert_eq!(
            logged(&env, "POST", &path).await,
            2,
            "the update was sent twice (the second answered 409)"
        );
        assert_eq!(report.count(Outcome::Updated), 1, "{report:?}");
        assert!(report.machines[0].error.is_none(), "{report:?}");
        assert_eq!(report.machines[0].version, m["version"].as_str().unwrap());
    }
}
