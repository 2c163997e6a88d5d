//! Every lifecycle transition in stepped mode, with the latency model's durations.

use serde_json::json;

use super::{Sim, basic_machine};

#[tokio::test]
async fn create_boots_through_starting_to_started_with_events_and_checks() {
    let sim = Sim::stepped().await;
    sim.create_app("life").await;
    let m = sim.create_machine("life", basic_machine()).await;
    let id = m["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 14);
    assert_eq!(m["state"], "created");
    assert_eq!(m["version"].as_str().unwrap().len(), 26);
    assert_eq!(m["instance_id"], m["version"]);
    assert_eq!(m["events"][0]["type"], "launch");
    assert_eq!(m["image_ref"]["repository"], "library/nginx");

    sim.advance_ms(1999);
    assert_eq!(sim.state("life", &id).await, "created");
    sim.advance_ms(1);
    assert_eq!(sim.state("life", &id).await, "starting");
    sim.advance_ms(1500);
    let (_, m) = sim.get(&format!("/v1/apps/life/machines/{id}")).await;
    assert_eq!(m["state"], "started");
    assert_eq!(m["events"][0]["type"], "start");
    assert_eq!(m["events"][0]["status"], "started");
    assert_eq!(m["events"][0]["source"], "flyd");
    assert_eq!(m["checks"][0]["name"], "servicecheck-00-http-8080");
    assert_eq!(m["checks"][0]["status"], "passing");
}

#[tokio::test]
async fn skip_launch_stays_created_then_start() {
    let sim = Sim::stepped().await;
    sim.create_app("skip").await;
    let mut body = basic_machine();
    body["skip_launch"] = json!(true);
    let m = sim.create_machine("skip", body).await;
    let id = m["id"].as_str().unwrap();
    sim.advance_ms(60_000);
    assert_eq!(sim.state("skip", id).await, "created");
    let (st, r) = sim
        .post(&format!("/v1/apps/skip/machines/{id}/start"), json!({}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["previous_state"], "created");
    assert_eq!(sim.state("skip", id).await, "starting");
    sim.advance_ms(900);
    assert_eq!(sim.state("skip", id).await, "started");
}

async fn started(sim: &Sim, app: &str) -> String {
    sim.create_app(app).await;
    let m = sim.create_machine(app, basic_machine()).await;
    sim.advance_ms(3500);
    let id = m["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.state(app, &id).await, "started");
    id
}

#[tokio::test]
async fn stop_start_suspend_resume_restart() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "cycle").await;
    let base = format!("/v1/apps/cycle/machines/{id}");

    let (st, _) = sim
        .post(&format!("{base}/stop"), json!({"signal": "SIGINT"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("cycle", &id).await, "stopping");
    sim.advance_ms(1000);
    let (_, m) = sim.get(&base).await;
    assert_eq!(m["state"], "stopped");
    assert_eq!(m["events"][0]["type"], "exit");
    assert_eq!(
        m["events"][0]["request"]["exit_event"]["requested_stop"],
        true
    );
    assert_eq!(m["events"][0]["request"]["exit_event"]["signal"], 2);
    assert_eq!(m["checks"][0]["status"], "critical");

    // start from stopped: 900 ms
    sim.post(&format!("{base}/start"), json!({})).await;
    sim.advance_ms(899);
    assert_eq!(sim.state("cycle", &id).await, "starting");
    sim.advance_ms(1);
    assert_eq!(sim.state("cycle", &id).await, "started");

    // suspend, then resume (faster than a cold start)
    let (st, _) = sim.post(&format!("{base}/suspend"), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("cycle", &id).await, "suspending");
    sim.advance_ms(1200);
    assert_eq!(sim.state("cycle", &id).await, "suspended");
    let (_, r) = sim.post(&format!("{base}/start"), json!({})).await;
    assert_eq!(r["previous_state"], "suspended");
    sim.advance_ms(300);
    assert_eq!(sim.state("cycle", &id).await, "started");

    // restart: restarting → starting → started
    let (st, _) = sim.post(&format!("{base}/restart"), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("cycle", &id).await, "restarting");
    sim.advance_ms(1000);
    assert_eq!(sim.state("cycle", &id).await, "starting");
    sim.advance_ms(900);
    assert_eq!(sim.state("cycle", &id).await, "started");

    // invalid transitions are 412
    sim.post(&format!("{base}/stop"), json!({})).await;
    sim.advance_ms(1000);
    let (st, e) = sim.post(&format!("{base}/suspend"), json!({})).await;
    assert_eq!(st, 412, "{e}");
    assert!(e["error"].as_str().unwrap().contains("stopped"));
}

#[tokio::test]
async fn update_makes_a_new_version_and_replaces_the_old() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "upd").await;
    let base = format!("/v1/apps/upd/machines/{id}");
    let (_, before) = sim.get(&base).await;
    let v1 = before["version"].as_str().unwrap().to_owned();

    let mut body = basic_machine();
    body["config"]["env"] = json!({"A": "1"});
    body["current_version"] = json!("01AAAAAAAAAAAAAAAAAAAAAAAA");
    let (st, e) = sim.post(&base, body.clone()).await;
    assert_eq!(st, 409, "{e}");

    body["current_version"] = json!(v1);
    let (st, m) = sim.post(&base, body).await;
    assert_eq!(st, 200, "{m}");
    let v2 = m["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(m["state"], "replacing");
    assert_eq!(m["config"]["env"]["A"], "1");
    sim.advance_ms(1500);
    assert_eq!(sim.state("upd", &id).await, "starting");
    sim.advance_ms(900);
    assert_eq!(sim.state("upd", &id).await, "started");

    let (_, old) = sim.get(&format!("{base}?version={v1}")).await;
    assert_eq!(old["state"], "replaced");
    let (_, versions) = sim.get(&format!("{base}/versions")).await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[0]["version"], v2.as_str());
}

#[tokio::test]
async fn destroy_needs_force_while_running() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "gone").await;
    let base = format!("/v1/apps/gone/machines/{id}");
    let (st, e) = sim.delete(&base).await;
    assert_eq!(st, 412, "{e}");
    assert!(e["error"].as_str().unwrap().contains("force"));
    let (st, _) = sim.delete(&format!("{base}?force=true")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("gone", &id).await, "destroying");
    sim.advance_ms(700);
    assert_eq!(sim.state("gone", &id).await, "destroyed");
    let (_, list) = sim.get("/v1/apps/gone/machines").await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (_, list) = sim.get("/v1/apps/gone/machines?include_deleted=true").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn wait_returns_when_the_clock_passes_the_transition() {
    let sim = Sim::stepped().await;
    sim.create_app("w").await;
    let m = sim.create_machine("w", basic_machine()).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let version = m["version"].as_str().unwrap().to_owned();
    let path = format!("/v1/apps/w/machines/{id}/wait?state=started&timeout=30&version={version}");
    let (st, r) = sim.advance_until(500, sim.get(&path)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["state"], "started");
    assert_eq!(r["version"], version.as_str());
    assert_eq!(r["event_id"].as_str().unwrap().len(), 26);

    // settled returns at once for a started machine
    let (st, r) = sim
        .get(&format!("/v1/apps/w/machines/{id}/wait?state=settled"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["state"], "started");

    // from_event_id: the start already happened, so waiting for started after it times out (408)
    let after = r["event_id"].as_str().unwrap().to_owned();
    let path =
        format!("/v1/apps/w/machines/{id}/wait?state=started&timeout=2&from_event_id={after}");
    let (st, e) = sim.advance_until(500, sim.get(&path)).await;
    assert_eq!(st, 408, "{e}");

    // bad state → 400
    let (st, _) = sim
        .get(&format!("/v1/apps/w/machines/{id}/wait?state=running"))
        .await;
    assert_eq!(st, 400);
    // timeout is clamped to 60 s
    let (st, _) = sim
        .post(&format!("/v1/apps/w/machines/{id}/stop"), json!({}))
        .await;
    assert_eq!(st, 200);
    let path = format!("/v1/apps/w/machines/{id}/wait?state=stopped&timeout=600");
    let (st, r) = sim.advance_until(250, sim.get(&path)).await;
    assert_eq!(st, 200, "{r}");
}

#[tokio::test]
async fn automatic_mode_with_a_tiny_time_scale_reaches_started() {
    let sim = Sim::start(fly_machines_mcp::sim::SimConfig::for_tests()).await;
    sim.create_app("auto").await;
    let m = sim.create_machine("auto", basic_machine()).await;
    let id = m["id"].as_str().unwrap();
    let (st, r) = sim
        .get(&format!(
            "/v1/apps/auto/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(sim.state("auto", id).await, "started");
}

#[tokio::test]
async fn signals_cordon_and_a_wait_that_cannot_succeed() {
    let sim = Sim::stepped().await;
    sim.create_app("sig").await;
    let mut body = basic_machine();
    body["config"]["restart"] = json!({"policy": "no"});
    let m = sim.create_machine("sig", body).await;
    let id = m["id"].as_str().unwrap().to_owned();
    sim.advance_ms(3500);
    let base = format!("/v1/apps/sig/machines/{id}");

    let (st, _) = sim
        .post(&format!("{base}/signal"), json!({"signal": "SIGUSR1"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("sig", &id).await, "started");
    let (st, _) = sim
        .post(&format!("{base}/signal"), json!({"signal": "SIGNOPE"}))
        .await;
    assert_eq!(st, 400);

    let (st, _) = sim.post(&format!("{base}/cordon"), json!({})).await;
    assert_eq!(st, 200);
    let (_, m) = sim.get(&base).await;
    assert_eq!(m["cordoned"], true);
    sim.post(&format!("{base}/uncordon"), json!({})).await;
    let (_, m) = sim.get(&base).await;
    assert_eq!(m["cordoned"], false);

    // SIGKILL with restart policy "no": the machine stays stopped
    let (st, _) = sim
        .post(&format!("{base}/signal"), json!({"signal": "SIGKILL"}))
        .await;
    assert_eq!(st, 200);
    let (_, m) = sim.get(&base).await;
    assert_eq!(m["state"], "stopped");
    assert_eq!(m["events"][0]["request"]["exit_event"]["signal"], 9);
    assert_eq!(m["events"][0]["request"]["exit_event"]["restarting"], false);

    // waiting for started on a destroyed machine fails at once with 400
    sim.delete(&base).await;
    sim.advance_ms(700);
    let (st, e) = sim
        .get(&format!("{base}/wait?state=started&timeout=5"))
        .await;
    assert_eq!(st, 400, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("failed to reach desired state")
    );

    // framework rejections are Fly-shaped too
    let resp = sim
        .http
        .put(sim.url("/v1/platform/regions"))
        .header("Authorization", super::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers().contains_key("fly-request-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
}
