//! Fly's rules: leases, metadata preconditions, names, regions, guests, volumes,
//! capacity, rate limits and faults.

use super::{Sim, basic_machine};
use fly_machines_mcp::sim::{AppToken, FaultConfig, Realism, SimConfig};
use serde_json::{Value, json};

#[tokio::test]
async fn rate_limits_429_after_the_burst_and_recover() {
    let sim = Sim::start(SimConfig::stepped().with_rate_limits(true)).await;
    sim.create_app("rl").await;
    let m = sim.create_machine("rl", basic_machine()).await;
    let id = m["id"].as_str().unwrap();
    // Get Machine: burst 10
    for _ in 0..10 {
        let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
        assert_eq!(st, 200);
    }
    let (st, e) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
    assert_eq!(st, 429);
    assert!(e["error"].as_str().unwrap().contains("rate limit"));
    sim.advance_ms(200);
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}")).await;
    assert_eq!(st, 200, "5/s refills one token every 200 ms");
    // other actions: burst 3, then 1/s
    for _ in 0..3 {
        let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
        assert_eq!(st, 200);
    }
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
    assert_eq!(st, 429);
    sim.advance_ms(1000);
    let (st, _) = sim.get(&format!("/v1/apps/rl/machines/{id}/events")).await;
    assert_eq!(st, 200);
}

async fn started(sim: &Sim, app: &str) -> String {
    sim.create_app(app).await;
    let m = sim.create_machine(app, basic_machine()).await;
    sim.advance_ms(3500);
    m["id"].as_str().unwrap().to_owned()
}

async fn with_nonce(
    sim: &Sim,
    method: reqwest::Method,
    path: &str,
    nonce: &str,
    body: Value,
) -> (u16, Value) {
    let resp = sim
        .http
        .request(method, sim.url(path))
        .header("Authorization", super::TOKEN)
        .header("fly-machine-lease-nonce", nonce)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn leases_guard_mutations_and_name_the_holder() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "lease").await;
    let base = format!("/v1/apps/lease/machines/{id}");
    let (st, l) = sim
        .post(
            &format!("{base}/lease"),
            json!({"ttl": 30, "description": "deploy"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(l["status"], "success");
    let nonce = l["data"]["nonce"].as_str().unwrap().to_owned();
    assert_eq!(l["data"]["owner"], "sim-user@example.com");
    assert_eq!(l["data"]["version"].as_str().unwrap().len(), 26);

    let (st, e) = sim.post(&format!("{base}/stop"), json!({})).await;
    assert_eq!(st, 409);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("lease currently held by sim-user@example.com"),
        "{e}"
    );
    let (st, _) = sim.post(&format!("{base}/lease"), json!({"ttl": 30})).await;
    assert_eq!(st, 409, "someone else cannot take it");

    let (_, shown) = sim.get(&format!("{base}?include_leases=true")).await;
    assert_eq!(shown["lease"]["description"], "deploy");
    assert!(shown["lease"].get("nonce").is_none());

    let (st, _) = with_nonce(
        &sim,
        reqwest::Method::POST,
        &format!("{base}/stop"),
        &nonce,
        json!({}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, r) = with_nonce(
        &sim,
        reqwest::Method::POST,
        &format!("{base}/lease"),
        &nonce,
        json!({"ttl": 60}),
    )
    .await;
    assert_eq!(st, 201, "refresh with the nonce");
    assert_eq!(r["data"]["nonce"], nonce.as_str());

    let (st, _) = sim.delete(&format!("{base}/lease")).await;
    assert_eq!(st, 400, "release needs the nonce");
    let (st, r) = with_nonce(
        &sim,
        reqwest::Method::DELETE,
        &format!("{base}/lease"),
        &nonce,
        Value::Null,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(r, json!({"status": "success", "data": {"ok": true}}));
    let (st, e) = sim.get(&format!("{base}/lease")).await;
    assert_eq!(st, 404);
    assert_eq!(e["error"], "lease not found");

    // a lease expires on the sim clock; lease_ttl on create returns a nonce
    let mut body = basic_machine();
    body["lease_ttl"] = json!(5);
    let m = sim.create_machine("lease", body).await;
    assert_eq!(m["nonce"].as_str().unwrap().len(), 12);
    let other = m["id"].as_str().unwrap();
    let (st, _) = sim
        .post(
            &format!("/v1/apps/lease/machines/{other}/cordon"),
            json!({}),
        )
        .await;
    assert_eq!(st, 409);
    sim.advance_ms(5000);
    let (st, _) = sim
        .post(
            &format!("/v1/apps/lease/machines/{other}/cordon"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn metadata_patch_key_ops_and_stale_version() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "meta").await;
    let base = format!("/v1/apps/meta/machines/{id}");
    let (_, m) = sim.get(&base).await;
    let version = m["version"].as_str().unwrap().to_owned();
    let resp = sim
        .http
        .patch(sim.url(&format!("{base}/metadata")))
        .header("Authorization", super::TOKEN)
        .json(&json!({"metadata": {"role": "worker", "tier": "gold"}, "machine_version": version}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = sim
        .http
        .patch(sim.url(&format!("{base}/metadata")))
        .header("Authorization", super::TOKEN)
        .json(
            &json!({"metadata": {"role": "web"}, "machine_version": "01AAAAAAAAAAAAAAAAAAAAAAAA"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 412);
    let (st, _) = sim
        .post(&format!("{base}/metadata/zone"), json!({"value": "a"}))
        .await;
    assert_eq!(st, 204);
    let (_, md) = sim.get(&format!("{base}/metadata")).await;
    assert_eq!(md, json!({"role": "worker", "tier": "gold", "zone": "a"}));
    let (_, v) = sim.get(&format!("{base}/metadata/role")).await;
    assert_eq!(v, json!({"value": "worker"}));
    let (st, _) = sim.delete(&format!("{base}/metadata/tier")).await;
    assert_eq!(st, 204);
    let (st, _) = sim.get(&format!("{base}/metadata/tier")).await;
    assert_eq!(st, 404);
    // list filter by metadata and state, summary leaves out config
    let (_, list) = sim
        .get("/v1/apps/meta/machines?metadata.role=worker&state=started&summary=true")
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("config").is_none());
    let (_, list) = sim.get("/v1/apps/meta/machines?metadata.role=web").await;
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn create_validates_names_regions_guests_and_capacity() {
    let sim = Sim::stepped().await;
    sim.create_app("val").await;
    let mut body = basic_machine();
    body["name"] = json!("web-1");
    let first = sim.create_machine("val", body.clone()).await;
    let (st, e) = sim.post("/v1/apps/val/machines", body).await;
    assert_eq!(st, 409);
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.starts_with("already_exists: unique machine name violation"),
        "{msg}"
    );
    assert!(msg.contains(first["id"].as_str().unwrap()));

    let mut body = basic_machine();
    body["region"] = json!("xyz");
    let (st, e) = sim.post("/v1/apps/val/machines", body).await;
    assert_eq!(st, 400);
    assert!(e["error"].as_str().unwrap().contains("xyz"));

    let mut body = basic_machine();
    body["config"]["guest"] = json!({"cpu_kind": "shared", "cpus": 1, "memory_mb": 4096});
    let (st, e) = sim.post("/v1/apps/val/machines", body).await;
    assert_eq!(st, 422);
    assert!(e["error"].as_str().unwrap().contains("256..=2048"), "{e}");

    let mut body = basic_machine();
    body["config"]["image"] = json!("");
    let (st, _) = sim.post("/v1/apps/val/machines", body).await;
    assert_eq!(st, 400);

    let (st, _) = sim
        .post("/__sim/capacity", json!({"region": "iad", "failures": 1}))
        .await;
    assert_eq!(st, 200);
    let (st, e) = sim.post("/v1/apps/val/machines", basic_machine()).await;
    assert_eq!(st, 503, "a 503, as fly-go's tests model it");
    assert_eq!(e["status"], "insufficient_capacity");
    let (st, _) = sim.post("/v1/apps/val/machines", basic_machine()).await;
    assert_eq!(st, 200, "only the next N fail");

    let mut body = basic_machine();
    body["min_secrets_version"] = json!(3);
    let (st, _) = sim.post("/v1/apps/val/machines", body).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn volumes_attach_by_name_region_rule_and_refuse_destroy_while_attached() {
    let sim = Sim::stepped().await;
    sim.create_app("vols").await;
    let (st, v) = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "data", "region": "iad", "size_gb": 1}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let vol = v["id"].as_str().unwrap().to_owned();
    assert!(vol.starts_with("vol_"));
    assert_eq!(v["state"], "created");
    assert_eq!(v["attached_machine_id"], Value::Null);

    let mut body = basic_machine();
    body["region"] = json!("ord");
    body["config"]["mounts"] = json!([{"volume": vol, "path": "/data"}]);
    let (st, e) = sim.post("/v1/apps/vols/machines", body).await;
    assert_eq!(st, 400, "region must match");
    assert!(e["error"].as_str().unwrap().contains("region"));

    let mut body = basic_machine();
    body["config"]["mounts"] = json!([{"volume": "data", "path": "/data"}]);
    let m = sim.create_machine("vols", body.clone()).await;
    let id = m["id"].as_str().unwrap().to_owned();
    assert_eq!(m["config"]["mounts"][0]["volume"], vol.as_str());
    let (st, e) = sim.post("/v1/apps/vols/machines", body).await;
    assert_eq!(st, 400, "no unattached volume left");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("no unattached volume")
    );

    let (st, e) = sim.delete(&format!("/v1/apps/vols/volumes/{vol}")).await;
    assert_eq!(st, 412);
    assert!(e["error"].as_str().unwrap().contains(&id));

    // extend while running → needs_restart
    sim.advance_ms(3500);
    let resp = sim
        .http
        .put(sim.url(&format!("/v1/apps/vols/volumes/{vol}/extend")))
        .header("Authorization", super::TOKEN)
        .json(&json!({"size_gb": 3}))
        .send()
        .await
        .unwrap();
    let ext: Value = resp.json().await.unwrap();
    assert_eq!(ext["needs_restart"], true);
    assert_eq!(ext["volume"]["size_gb"], 3);

    // snapshot, restore (restoring → created), fork
    let (st, _) = sim
        .post(&format!("/v1/apps/vols/volumes/{vol}/snapshots"), json!({}))
        .await;
    assert_eq!(st, 200);
    let (_, snaps) = sim
        .get(&format!("/v1/apps/vols/volumes/{vol}/snapshots"))
        .await;
    let snap = snaps[0]["id"].as_str().unwrap().to_owned();
    assert!(snap.starts_with("vs_"));
    let (_, restored) = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "data", "region": "iad", "snapshot_id": snap}),
        )
        .await;
    assert_eq!(restored["state"], "restoring");
    assert_eq!(restored["size_gb"], 3);
    sim.advance_ms(5000);
    let (_, r) = sim
        .get(&format!(
            "/v1/apps/vols/volumes/{}",
            restored["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r["state"], "created");
    let (_, fork) = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"source_volume_id": vol, "region": "lhr"}),
        )
        .await;
    assert_eq!(fork["name"], "data");
    assert_eq!(fork["region"], "lhr");

    // destroying the machine detaches the volume; then it can go
    sim.delete(&format!("/v1/apps/vols/machines/{id}?force=true"))
        .await;
    sim.advance_ms(700);
    let (st, gone) = sim.delete(&format!("/v1/apps/vols/volumes/{vol}")).await;
    assert_eq!(st, 200);
    assert_eq!(gone["state"], "scheduling_destroy");
}

/// Issue 18 item 4 (simulator side): a destroyed volume stays listed in fly-go's
/// destroy states (`flaps/flaps_volumes.go` `destroyedVolumeStates`) for a moment, can
/// be neither mounted nor picked by name meanwhile, and is gone after; with realism off
/// it is gone at once.
#[tokio::test]
async fn a_destroyed_volume_lingers_in_its_destroy_states_then_is_gone() {
    let sim = Sim::stepped().await;
    sim.create_app("linger").await;
    let (_, v) = sim
        .post(
            "/v1/apps/linger/volumes",
            json!({"name": "data", "region": "iad", "size_gb": 1}),
        )
        .await;
    let vol = v["id"].as_str().unwrap().to_owned();
    let (st, d) = sim.delete(&format!("/v1/apps/linger/volumes/{vol}")).await;
    assert_eq!((st, d["state"].as_str()), (200, Some("scheduling_destroy")));
    let (st, again) = sim.delete(&format!("/v1/apps/linger/volumes/{vol}")).await;
    assert_eq!(
        (st, again["state"].as_str()),
        (200, Some("scheduling_destroy"))
    );

    let mut by_id = basic_machine();
    by_id["config"]["mounts"] = json!([{"volume": vol, "path": "/data"}]);
    let (st, e) = sim.post("/v1/apps/linger/machines", by_id).await;
    assert_eq!(st, 412, "{e}");
    let mut by_name = basic_machine();
    by_name["config"]["mounts"] = json!([{"volume": "data", "path": "/data"}]);
    let (st, e) = sim.post("/v1/apps/linger/machines", by_name).await;
    assert_eq!(st, 400, "{e}");

    let step = Realism::realistic().volume_destroy_step_ms;
    for state in ["scheduling_destroy", "pending_destroy", "destroying"] {
        let (_, list) = sim.get("/v1/apps/linger/volumes").await;
        assert_eq!(list[0]["state"], state, "{list}");
        assert_eq!(
            sim.get(&format!("/v1/apps/linger/volumes/{vol}")).await.1["state"],
            state
        );
        sim.advance_ms(step);
    }
    let (_, list) = sim.get("/v1/apps/linger/volumes").await;
    assert_eq!(list, json!([]));
    assert_eq!(
        sim.get(&format!("/v1/apps/linger/volumes/{vol}")).await.0,
        404
    );

    let ideal = Sim::start(SimConfig::stepped().with_realism(Realism::off())).await;
    ideal.create_app("gone").await;
    let (_, v) = ideal
        .post(
            "/v1/apps/gone/volumes",
            json!({"name": "data", "region": "iad", "size_gb": 1}),
        )
        .await;
    let (_, d) = ideal
        .delete(&format!(
            "/v1/apps/gone/volumes/{}",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(d["state"], "destroyed");
    assert_eq!(ideal.get("/v1/apps/gone/volumes").await.1, json!([]));
}

/// Issue 18 item 16 (simulator side): GPU Machines are no longer offered; a GPU guest
/// is refused with a 400 (flyctl `internal/flag/machines.go`).
#[tokio::test]
async fn a_gpu_guest_is_refused() {
    let sim = Sim::stepped().await;
    sim.create_app("gpu").await;
    let mut body = basic_machine();
    body["config"]["guest"] = json!({"cpu_kind": "performance", "cpus": 8, "memory_mb": 32768,
        "gpu_kind": "a100-pcie-40gb", "gpus": 1});
    let (st, e) = sim.post("/v1/apps/gpu/machines", body).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("GPU"), "{e}");
}

/// Issue 18 item 5 (simulator side): `GET …/lease` shows the nonce, as Fly does (fly-go
/// `MachineLeaseData`); anyone who may read the app can release the lease with it, as
/// `fly machine leases clear` does (flyctl `internal/command/machine/leases.go`).
#[tokio::test]
async fn the_lease_nonce_is_visible_and_anyone_can_clear_the_lease() {
    let sim = Sim::stepped().await;
    sim.create_app("leased").await;
    let m = sim.create_machine("leased", basic_machine()).await;
    let id = m["id"].as_str().unwrap();
    let lease = format!("/v1/apps/leased/machines/{id}/lease");
    let (st, held) = sim.post(&lease, json!({"ttl": 60})).await;
    assert_eq!(st, 201);
    let nonce = held["data"]["nonce"].as_str().unwrap().to_owned();
    let (st, seen) = sim.get(&lease).await;
    assert_eq!(st, 200);
    assert_eq!(seen["data"]["nonce"], nonce.as_str());
    let resp = sim
        .http
        .delete(sim.url(&lease))
        .header("Authorization", super::TOKEN)
        .header("fly-machine-lease-nonce", &nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.get(&lease).await.0, 404);
}

#[tokio::test]
async fn app_scoped_tokens_see_only_their_apps() {
    let mut cfg = SimConfig::stepped();
    cfg.app_tokens = vec![AppToken {
        token: "fm2_apponly".into(),
        apps: vec!["mine".into()],
    }];
    let sim = Sim::start(cfg).await;
    sim.create_app("mine").await;
    sim.create_app("theirs").await;
    let get = |path: &str| {
        sim.http
            .get(sim.url(path))
            .header("Authorization", "FlyV1 fm2_apponly")
            .send()
    };
    assert_eq!(get("/v1/apps/mine").await.unwrap().status(), 200);
    assert_eq!(get("/v1/apps/theirs").await.unwrap().status(), 403);
    let list: Value = get("/v1/apps?org_slug=personal")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total_apps"], 1);
    let tokens: Value = get("/v1/tokens/current")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["tokens"][0]["apps"], json!(["mine"]));
}

/// Issue 18 item 15: GraphQL `organizations` shows an app-scoped token only the org
/// of its apps, and their apps only, not every org of the user who minted it.
#[tokio::test]
async fn graphql_organizations_for_an_app_scoped_token_show_only_its_org() {
    let mut cfg = SimConfig::stepped().with_scenario(fly_machines_mcp::sim::Scenario::Demo);
    cfg.app_tokens = vec![AppToken {
        token: "fm2_cdnonly".into(),
        apps: vec!["cdn-demo".into()],
    }];
    let sim = Sim::start(cfg).await;
    let q = json!({"query": "query { organizations { nodes { slug apps { nodes { name } } } } personalOrganization { slug } }"});
    let orgs = |r: &Value| -> Vec<String> {
        r["data"]["organizations"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = sim.post("/graphql", q.clone()).await;
    assert!(orgs(&all).len() >= 2, "{all}");
    let scoped: Value = sim
        .http
        .post(sim.url("/graphql"))
        .header("Authorization", "FlyV1 fm2_cdnonly")
        .json(&q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs(&scoped), ["cdn-org"], "{scoped}");
    assert_eq!(
        scoped["data"]["organizations"]["nodes"][0]["apps"]["nodes"],
        json!([{"name": "cdn-demo"}])
    );
    assert_eq!(
        scoped["data"]["personalOrganization"],
        Value::Null,
        "{scoped}"
    );
}

/// Issue 18 item 2 (simulator side): a machine launched right after a secrets write
/// without `min_secrets_version` boots with the secrets hosts had seen (realistic
/// profile); with it, with at least that version (flyctl passes it on every launch,
/// `internal/appsecrets/minvers.go`). Updates follow the same rule.
#[tokio::test]
async fn a_launch_right_after_a_secrets_write_needs_min_secrets_version() {
    let sim = Sim::stepped().await;
    sim.create_app("late").await;
    let (_, w) = sim
        .post("/v1/apps/late/secrets", json!({"values": {"TOKEN": "t1"}}))
        .await;
    let version = w["version"].as_u64().unwrap();
    let booted = |id: &str| {
        let state = sim.handle.state_json();
        let app = state["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "late")
            .unwrap()
            .clone();
        app["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()["secrets_version"]
            .as_u64()
            .unwrap()
    };
    let plain = sim.create_machine("late", basic_machine()).await;
    assert_eq!(
        booted(plain["id"].as_str().unwrap()),
        0,
        "booted before its host saw the write"
    );
    let mut body = basic_machine();
    body["min_secrets_version"] = json!(version);
    let pinned = sim.create_machine("late", body).await;
    assert_eq!(booted(pinned["id"].as_str().unwrap()), version);

    sim.advance_ms(Realism::realistic().secrets_propagation_ms);
    let later = sim.create_machine("late", basic_machine()).await;
    assert_eq!(booted(later["id"].as_str().unwrap()), version);
    let id = plain["id"].as_str().unwrap();
    let (st, _) = sim
        .post(&format!("/v1/apps/late/machines/{id}"), basic_machine())
        .await;
    assert_eq!(st, 200);
    assert_eq!(booted(id), version, "an update picks the secrets up");
}

#[tokio::test]
async fn secrets_list_digests_not_values() {
    let sim = Sim::stepped().await;
    sim.create_app("sec").await;
    let (st, r) = sim
        .post(
            "/v1/apps/sec/secrets",
            json!({"values": {"A": "alpha", "B": "beta"}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(r["version"], 1);
    assert!(!r.to_string().contains("alpha"));
    let (_, list) = sim.get("/v1/apps/sec/secrets").await;
    assert_eq!(list["secrets"][0]["name"], "A");
    assert_eq!(list["secrets"][0]["digest"].as_str().unwrap().len(), 64);
    assert!(!list.to_string().contains("alpha"));
    let (_, shown) = sim.get("/v1/apps/sec/secrets?show_secrets=true").await;
    assert_eq!(shown["secrets"][0]["value"], "alpha");
    let (_, r) = sim
        .post("/v1/apps/sec/secrets", json!({"values": {"A": null}}))
        .await;
    assert_eq!(r["version"], 2);
    assert_eq!(r["secrets"].as_array().unwrap().len(), 1);
    let state = sim.handle.state_json().to_string();
    assert!(!state.contains("beta"), "state never shows secret values");
    // min_secrets_version is now satisfiable
    let mut body = basic_machine();
    body["min_secrets_version"] = json!(2);
    sim.create_machine("sec", body).await;
}

#[tokio::test]
async fn certificates_acme_check_delete() {
    let sim = Sim::stepped().await;
    sim.create_app("certs").await;
    let (st, c) = sim
        .post(
            "/v1/apps/certs/certificates/acme",
            json!({"hostname": "www.example.com"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(c["status"], "pending_validation");
    assert_eq!(c["dns_requirements"]["cname"], "certs.fly.dev");
    let (st, c) = sim
        .post(
            "/v1/apps/certs/certificates/www.example.com/check",
            json!({}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(c["status"], "active");
    let (_, list) = sim.get("/v1/apps/certs/certificates").await;
    assert_eq!(list["total_count"], 1);
    let (st, _) = sim
        .delete("/v1/apps/certs/certificates/www.example.com")
        .await;
    assert_eq!(st, 204);
    let (st, _) = sim.get("/v1/apps/certs/certificates/www.example.com").await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn injected_oom_kill_restarts_per_policy_and_logs() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "oom").await;
    let (st, _) = sim
        .post(&format!("/__sim/machines/{id}/crash"), json!({"oom": true}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(sim.state("oom", &id).await, "starting");
    let (_, ev) = sim
        .get(&format!("/v1/apps/oom/machines/{id}/events?limit=2"))
        .await;
    assert_eq!(ev.as_array().unwrap().len(), 2);
    assert_eq!(ev[0]["type"], "exit");
    assert_eq!(ev[0]["request"]["exit_event"]["oom_killed"], true);
    assert_eq!(ev[0]["request"]["exit_event"]["restarting"], true);
    sim.advance_ms(900);
    assert_eq!(sim.state("oom", &id).await, "started");
    let (_, logs) = sim
        .get(&format!("/api/v1/apps/oom/logs?instance={id}"))
        .await;
    assert!(logs.to_string().contains("Out of memory"));
    // ps and exec on a running machine
    let (_, ps) = sim.get(&format!("/v1/apps/oom/machines/{id}/ps")).await;
    assert_eq!(ps[1]["listen_sockets"][0]["address"], "0.0.0.0:8080");
    let (_, out) = sim
        .post(
            &format!("/v1/apps/oom/machines/{id}/exec"),
            json!({"command": ["echo", "hi"]}),
        )
        .await;
    assert_eq!(out["stdout"], "hi\n");
    let (_, out) = sim
        .post(
            &format!("/v1/apps/oom/machines/{id}/exec"),
            json!({"cmd": "nosuch"}),
        )
        .await;
    assert_eq!(out["exit_code"], 127);
}

#[tokio::test]
async fn faults_5xx_and_reset_never_touch_the_control_api() {
    let sim = Sim::stepped().await;
    sim.handle.set_faults("5xx=1".parse().unwrap());
    let (st, _) = sim.get("/v1/platform/regions").await;
    assert!((500..600).contains(&st));
    let (st, _) = sim.get("/__sim/state").await;
    assert_eq!(st, 200);
    let (st, _) = sim.post("/__sim/faults", json!({"spec": "reset=1"})).await;
    assert_eq!(st, 200);
    let err = sim
        .http
        .get(sim.url("/v1/platform/regions"))
        .header("Authorization", super::TOKEN)
        .send()
        .await;
    assert!(err.is_err(), "the connection is dropped without a response");
    sim.handle.set_faults(FaultConfig::default());
    let (st, _) = sim.get("/v1/platform/regions").await;
    assert_eq!(st, 200);
    let (_, log) = sim.get("/__sim/requests").await;
    let reqs = log["requests"].as_array().unwrap();
    assert!(reqs.iter().any(|r| r["status"].as_u64().unwrap() >= 500));
    assert!(
        reqs.iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/__sim"))
    );
    assert!(reqs[0]["id"].as_str().unwrap().ends_with("-sim"));
}
