//! Simulator contract test: a scripted tour of every documented endpoint (and the error
//! answers Fly gives: 401, 404, 409, 412, 422) against the in-process simulator, with
//! plain reqwest + serde_json. Every response is validated against `openapi/machines.yaml`
//! and the violations are held to `openapi/divergences.yaml` exactly.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use fly_machines_mcp::sim::{self, SimConfig};

use super::divergences::{self, Side};
use super::openapi::Spec;
use super::recorder::{Reply, Tour};
use crate::support::TestEnv;

const APP: &str = "contract-tour";

/// Checks a step's status; mismatches are gathered and reported together at the end.
#[derive(Debug, Default)]
struct Expectations(Vec<String>);

impl Expectations {
    fn status(&mut self, step: &str, reply: &Reply, want: &[u16]) {
        if !want.contains(&reply.status) {
            self.0.push(format!(
                "{step}: got {} (want {want:?}) body {}",
                reply.status, reply.body
            ));
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn wait_for(t: &Tour, m: &str, state: &str, exp: &mut Expectations) {
    let r = t.get(&format!("{m}/wait?state={state}&timeout=30")).await;
    exp.status(&format!("wait {state}"), &r, &[200]);
}

#[tokio::test]
async fn every_simulator_response_matches_the_spec() {
    let spec = Spec::load().unwrap();
    // A long new-app window, moved past with the clock: the 404 is certain however
    // slow the machine running the tour.
    let hidden = sim::Realism {
        new_app_hidden_ms: 600_000,
        ..sim::Realism::realistic()
    };
    let handle = TestEnv::sim_only()
        .sim(SimConfig::for_tests().with_realism(hidden.clone()))
        .start_sim()
        .await;
    let t = Tour::new(&handle.base_url(), Some("contract-token"));
    let mut exp = Expectations::default();

    // --- auth and platform
    let r = t.with_token(None).get(&format!("/v1/apps/{APP}")).await;
    exp.status("no token", &r, &[401]);
    let r = t.get("/v1/tokens/current").await;
    exp.status("token identity", &r, &[200]);
    let r = t.get("/v1/platform/regions").await;
    exp.status("regions", &r, &[200]);

    // --- apps
    let r = t
        .post("/v1/apps", json!({"name": APP, "org_slug": "personal"}))
        .await;
    exp.status("create app", &r, &[201]);
    let r = t
        .post("/v1/apps", json!({"name": APP, "org_slug": "personal"}))
        .await;
    exp.status("create app again", &r, &[422]);
    // Realistic profile: a new app answers 404 for a moment (fly-go WaitForApp).
    let r = t.get(&format!("/v1/apps/{APP}")).await;
    exp.status("get app just created", &r, &[404]);
    handle.advance(std::time::Duration::from_millis(hidden.new_app_hidden_ms));
    let r = t.get("/v1/apps?org_slug=personal").await;
    exp.status("list apps", &r, &[200]);
    let r = t.get("/v1/apps?org_slug=personal&limit=1").await;
    exp.status("list apps paged", &r, &[200]);
    let r = t.get(&format!("/v1/apps/{APP}")).await;
    exp.status("get app", &r, &[200]);
    let r = t.get("/v1/apps/no-such-app-here").await;
    exp.status("get missing app", &r, &[404]);

    // --- IP assignments
    let base = format!("/v1/apps/{APP}");
    let r = t
        .post(&format!("{base}/ip_assignments"), json!({"type": "v6"}))
        .await;
    exp.status("allocate v6", &r, &[200]);
    let v6 = str_of(&r.body, "ip");
    let r = t
        .post(
            &format!("{base}/ip_assignments"),
            json!({"type": "shared_v4"}),
        )
        .await;
    exp.status("allocate shared v4", &r, &[200]);
    let r = t.get(&format!("{base}/ip_assignments")).await;
    exp.status("list ips", &r, &[200]);

    // --- volumes
    let r = t
        .post(
            &format!("{base}/volumes"),
            json!({"name": "data", "region": "ams", "size_gb": 1}),
        )
        .await;
    exp.status("create volume", &r, &[200]);
    let vol = str_of(&r.body, "id");
    let v = format!("{base}/volumes/{vol}");
    let r = t.get(&format!("{base}/volumes")).await;
    exp.status("list volumes", &r, &[200]);
    let r = t.get(&v).await;
    exp.status("get volume", &r, &[200]);
    let r = t
        .send(
            "PUT",
            &v,
            Some(json!({"snapshot_retention": 7, "auto_backup_enabled": true})),
            &[],
        )
        .await;
    exp.status("update volume", &r, &[200]);
    let r = t
        .send(
            "PUT",
            &format!("{v}/extend"),
            Some(json!({"size_gb": 2})),
            &[],
        )
        .await;
    exp.status("extend volume", &r, &[200]);
    let r = t.send("POST", &format!("{v}/snapshots"), None, &[]).await;
    exp.status("snapshot volume", &r, &[200]);
    let r = t.get(&format!("{v}/snapshots")).await;
    exp.status("list snapshots", &r, &[200]);
    let snapshot = r
        .body
        .as_array()
        .and_then(|a| a.first())
        .map(|s| str_of(s, "id"))
        .unwrap_or_default();
    let r = t
        .post(
            &format!("{base}/volumes"),
            json!({"name": "restored", "region": "ams", "size_gb": 2, "snapshot_id": snapshot}),
        )
        .await;
    exp.status("restore volume", &r, &[200]);
    let restored = str_of(&r.body, "id");
    let r = t
        .post(
            &format!("{base}/volumes"),
            json!({"name": "forked", "region": "ams", "source_volume_id": vol}),
        )
        .await;
    exp.status("fork volume", &r, &[200]);
    let forked = str_of(&r.body, "id");

    // --- machines
    let config = json!({
        "image": "docker.io/library/nginx:1.27",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
        "env": {"MODE": "contract"},
        "metadata": {"owner": "contract"},
        "init": {"cmd": ["nginx", "-g", "daemon off;"]},
        "restart": {"policy": "on-failure", "max_retries": 3},
        "mounts": [{"volume": vol, "path": "/data", "extend_threshold_percent": 80, "add_size_gb": 1, "size_gb_limit": 5}],
        "services": [{
            "protocol": "tcp", "internal_port": 8080, "autostop": "stop", "autostart": true,
            "min_machines_running": 0,
            "ports": [{"port": 443, "handlers": ["tls", "http"]}, {"port": 80, "handlers": ["http"], "force_https": true}]
        }],
        "checks": {"alive": {"type": "http", "port": 8080, "path": "/", "interval": "15s", "timeout": "2s"}}
    });
    let r = t
        .post(
            &format!("{base}/machines"),
            json!({"name": "web-1", "region": "ams", "config": config}),
        )
        .await;
    exp.status("create machine", &r, &[200]);
    let id = str_of(&r.body, "id");
    let m = format!("{base}/machines/{id}");
    wait_for(&t, &m, "started", &mut exp).await;
    let r = t
        .post(
            &format!("{base}/machines"),
            json!({"name": "web-1", "region": "ams", "config": {"image": "nginx"}}),
        )
        .await;
    exp.status("duplicate machine name", &r, &[409]);
    let r = t
        .post(
            &format!("{base}/machines"),
            json!({"region": "ams", "config": {"image": "nginx", "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 300}}}),
        )
        .await;
    exp.status("bad guest memory", &r, &[400, 422]);
    let r = t
        .post(
            &format!("{base}/machines"),
            json!({"region": "xx9", "config": {"image": "nginx"}}),
        )
        .await;
    exp.status("unknown region", &r, &[400, 422]);
    let r = t
        .post(
            &format!("{base}/machines"),
            json!({"region": "ams", "skip_launch": true, "lease_ttl": 600, "config": {"image": "busybox", "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}}),
        )
        .await;
    exp.status("create with skip_launch + lease_ttl", &r, &[200]);

    let r = t.get(&m).await;
    exp.status("get machine", &r, &[200]);
    let version = str_of(&r.body, "version");
    let r = t
        .get(&format!("{m}?version={version}&include_leases=true"))
        .await;
    exp.status("get machine version", &r, &[200]);
    for q in [
        "",
        "?summary=true",
        "?state=started,stopped&region=ams",
        "?metadata.owner=contract&include_leases=true",
        "?limit=1",
    ] {
        let r = t.get(&format!("{base}/machines{q}")).await;
        exp.status(&format!("list machines {q}"), &r, &[200]);
    }
    let r = t.get(&format!("{base}/machines/0000000000dead")).await;
    exp.status("get missing machine", &r, &[404]);

    // actions
    let r = t
        .send(
            "POST",
            &format!("{m}/stop"),
            Some(json!({"signal": "SIGTERM", "timeout": "5s"})),
            &[],
        )
        .await;
    exp.status("stop", &r, &[200]);
    wait_for(&t, &m, "stopped", &mut exp).await;
    let r = t.send("POST", &format!("{m}/start"), None, &[]).await;
    exp.status("start", &r, &[200]);
    wait_for(&t, &m, "started", &mut exp).await;
    let r = t.send("POST", &format!("{m}/suspend"), None, &[]).await;
    exp.status("suspend", &r, &[200]);
    wait_for(&t, &m, "suspended", &mut exp).await;
    let r = t.send("POST", &format!("{m}/start"), None, &[]).await;
    exp.status("resume", &r, &[200]);
    wait_for(&t, &m, "started", &mut exp).await;
    let r = t
        .send(
            "POST",
            &format!("{m}/restart?signal=SIGTERM&timeout=5s"),
            None,
            &[],
        )
        .await;
    exp.status("restart", &r, &[200]);
    wait_for(&t, &m, "started", &mut exp).await;
    let r = t
        .post(&format!("{m}/signal"), json!({"signal": "SIGUSR1"}))
        .await;
    exp.status("signal", &r, &[200]);
    let r = t.send("POST", &format!("{m}/cordon"), None, &[]).await;
    exp.status("cordon", &r, &[200]);
    let r = t.send("POST", &format!("{m}/uncordon"), None, &[]).await;
    exp.status("uncordon", &r, &[200]);
    let r = t.get(&format!("{m}/events?limit=5")).await;
    exp.status("events", &r, &[200]);
    let r = t.get(&format!("{m}/versions")).await;
    exp.status("versions", &r, &[200]);
    let r = t.get(&format!("{m}/ps")).await;
    exp.status("ps", &r, &[200]);
    let r = t
        .post(
            &format!("{m}/exec"),
            json!({"command": ["echo", "hi"], "timeout": 5}),
        )
        .await;
    exp.status("exec", &r, &[200]);
    let r = t.get(&format!("{m}/wait?state=settled&timeout=5")).await;
    exp.status("wait settled", &r, &[200]);

    // update, with optimistic concurrency
    let r = t.get(&m).await;
    let version = str_of(&r.body, "version");
    let mut new_config = config.clone();
    new_config["env"]["MODE"] = json!("updated");
    let r = t
        .post(
            &m,
            json!({"config": new_config, "current_version": version}),
        )
        .await;
    exp.status("update", &r, &[200]);
    wait_for(&t, &m, "started", &mut exp).await;
    let r = t
        .post(
            &m,
            json!({"config": new_config, "current_version": version}),
        )
        .await;
    exp.status("update with stale current_version", &r, &[409]);

    // leases
    let r = t
        .post(
            &format!("{m}/lease"),
            json!({"ttl": 600, "description": "contract tour"}),
        )
        .await;
    exp.status("acquire lease", &r, &[201]);
    let nonce = r
        .body
        .get("data")
        .map(|d| str_of(d, "nonce"))
        .unwrap_or_else(|| str_of(&r.body, "nonce"));
    let r = t.get(&format!("{m}/lease")).await;
    exp.status("get lease", &r, &[200]);
    let r = t.post(&format!("{m}/lease"), json!({"ttl": 600})).await;
    exp.status("acquire held lease", &r, &[409]);
    let r = t.send("POST", &format!("{m}/cordon"), None, &[]).await;
    exp.status("mutate without nonce", &r, &[409]);
    let with_nonce = [("fly-machine-lease-nonce", nonce.as_str())];
    let r = t
        .send(
            "POST",
            &format!("{m}/lease"),
            Some(json!({"ttl": 600})),
            &with_nonce,
        )
        .await;
    exp.status("refresh lease", &r, &[201]);
    let r = t
        .send("POST", &format!("{m}/uncordon"), None, &with_nonce)
        .await;
    exp.status("mutate with nonce", &r, &[200]);
    let r = t
        .send("DELETE", &format!("{m}/lease"), None, &with_nonce)
        .await;
    exp.status("release lease", &r, &[200]);

    // metadata
    let r = t
        .post(&format!("{m}/metadata/role"), json!({"value": "web"}))
        .await;
    exp.status("set metadata key", &r, &[204]);
    let r = t.get(&format!("{m}/metadata/role")).await;
    exp.status("get metadata key", &r, &[200]);
    let r = t.get(&format!("{m}/metadata")).await;
    exp.status("get metadata", &r, &[200]);
    let r = t.get(&m).await;
    let version = str_of(&r.body, "version");
    let r = t
        .send(
            "PATCH",
            &format!("{m}/metadata"),
            Some(json!({"metadata": {"tier": "free", "role": null}, "machine_version": version})),
            &[],
        )
        .await;
    exp.status("patch metadata", &r, &[204]);
    let r = t
        .send(
            "PATCH",
            &format!("{m}/metadata"),
            Some(json!({"metadata": {"tier": "paid"}, "machine_version": "01AAAAAAAAAAAAAAAAAAAAAAAA"})),
            &[],
        )
        .await;
    exp.status("patch metadata with stale version", &r, &[412]);
    let r = t
        .send("DELETE", &format!("{m}/metadata/tier"), None, &[])
        .await;
    exp.status("delete metadata key", &r, &[204]);
    let r = t.get(&format!("{m}/metadata/tier")).await;
    exp.status("get deleted metadata key", &r, &[404]);

    // --- secrets
    let r = t
        .post(
            &format!("{base}/secrets"),
            json!({"values": {"API_KEY": "s3cr3t", "OTHER": "x"}}),
        )
        .await;
    exp.status("set secrets", &r, &[200]);
    let r = t
        .post(
            &format!("{base}/secrets"),
            json!({"values": {"OTHER": null}}),
        )
        .await;
    exp.status("unset secret", &r, &[200]);
    let r = t.get(&format!("{base}/secrets")).await;
    exp.status("list secrets", &r, &[200]);

    // --- certificates
    let host = "tour.example.org";
    let r = t
        .post(
            &format!("{base}/certificates/acme"),
            json!({"hostname": host}),
        )
        .await;
    exp.status("add certificate", &r, &[201]);
    let r = t.get(&format!("{base}/certificates")).await;
    exp.status("list certificates", &r, &[200]);
    let r = t.get(&format!("{base}/certificates/{host}")).await;
    exp.status("get certificate", &r, &[200]);
    let r = t
        .send(
            "POST",
            &format!("{base}/certificates/{host}/check"),
            None,
            &[],
        )
        .await;
    exp.status("check certificate", &r, &[200]);
    let r = t
        .send("DELETE", &format!("{base}/certificates/{host}"), None, &[])
        .await;
    exp.status("remove certificate", &r, &[204]);

    // --- logs and GraphQL (not Machines API)
    let r = t.get(&format!("/api/v1/apps/{APP}/logs")).await;
    exp.status("logs", &r, &[200]);
    let r = t
        .get(&format!(
            "/api/v1/apps/{APP}/logs?instance={id}&region=ams&next_token=0"
        ))
        .await;
    exp.status("logs filtered", &r, &[200]);
    let r = t
        .post(
            "/graphql",
            json!({"query": "query { organizations(admin: false) { nodes { id slug name } } }", "variables": {}}),
        )
        .await;
    exp.status("graphql organizations", &r, &[200]);

    // --- teardown
    let r = t.send("DELETE", &v, None, &[]).await;
    exp.status("destroy attached volume", &r, &[400, 409, 412, 422]);
    let r = t
        .send("DELETE", &format!("{base}/ip_assignments/{v6}"), None, &[])
        .await;
    exp.status("release ip", &r, &[204]);
    let r = t
        .send("DELETE", &format!("{m}?force=true"), None, &[])
        .await;
    exp.status("destroy machine", &r, &[200]);
    wait_for(&t, &m, "destroyed", &mut exp).await;
    for vol in [&restored, &forked, &vol] {
        let r = t
            .send("DELETE", &format!("{base}/volumes/{vol}"), None, &[])
            .await;
        exp.status("destroy volume", &r, &[200]);
    }
    let r = t
        .send("DELETE", &format!("{base}?force=true"), None, &[])
        .await;
    exp.status("delete app", &r, &[202]);

    handle.shutdown().await;

    // The tour's own requests must be valid, or it would not test what it claims.
    let own = t.log.request_violations(&spec);
    assert!(own.is_empty(), "the tour sent invalid requests: {own:#?}");

    // Every documented operation was exercised, and the error answers were seen.
    let exercised = t.log.exercised(&spec);
    let ops: BTreeSet<&str> = exercised.iter().map(|(o, _)| o.as_str()).collect();
    let missing: Vec<String> = spec
        .operation_ids()
        .into_iter()
        .filter(|o| !ops.contains(o.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations the tour never reached: {missing:?}"
    );
    let statuses: BTreeSet<u16> = exercised.iter().map(|(_, s)| *s).collect();
    for s in [401, 404, 409, 412, 422] {
        assert!(statuses.contains(&s), "no {s} answer was seen");
    }

    let violations = t.log.response_violations(&spec);
    let list = divergences::load(&divergences::divergences_path()).unwrap();
    let reconciled = divergences::reconcile(Side::Sim, &list, &violations);
    let mismatches = exp.0.join("\n  ");
    assert!(
        reconciled.is_clean() && exp.0.is_empty(),
        "{}\nstatus mismatches:\n  {mismatches}",
        reconciled.report()
    );
}
