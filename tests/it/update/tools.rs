//! The tools over MCP (an in-process rmcp client and server on the simulator), and the
//! real binary for the secrets canary.

use std::{process::Output, time::Duration};

use fly_machines_mcp::fly;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::{Env, TOKEN, app_of};

use crate::support::{TestEnv, connect, params, text_of as text};

fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

#[tokio::test]
async fn rolling_update_over_mcp_stops_and_reverts_on_a_failing_health_check() {
    let env = Env::serving().await;
    let ids = env.app_with_machines("mcp-roll", "iad", "nginx:1", 3).await;
    let r = env.call("update_machines",
        json!({"app": "mcp-roll", "image": "nginx:unhealthy-2", "health_timeout_secs": 1, "start_timeout_secs": 10}),
    )
    .await;
    let t = text(&r);
    assert!(is_error(&r), "{t}");
    assert!(t.contains("1 reverted") && t.contains("2 skipped"), "{t}");
    assert!(t.contains("stopped at the first failure"), "{t}");
    assert!(t.contains("health checks not passing"), "{t}");
    let state = env.state();
    let machines = app_of(&state, "mcp-roll")["machines"].as_array().unwrap();
    for m in machines {
        assert_eq!(m["config"]["image"], "nginx:1", "{m}");
        assert_eq!(m["state"], "started", "{m}");
        assert!(m.get("lease").is_none(), "lease left: {m}");
    }
    // Exactly one machine went through update + revert; the others were never touched.
    let mut counts = Vec::new();
    for id in &ids {
        counts.push(env.version_count("mcp-roll", id).await);
    }
    counts.sort_unstable();
    assert_eq!(counts, vec![1, 1, 3]);

    // A healthy image rolls through every machine.
    let ok = env
        .call(
            "update_machines",
            json!({"app": "mcp-roll", "image": "nginx:2", "batch_size": 2}),
        )
        .await;
    assert!(!is_error(&ok), "{}", text(&ok));
    let report = ok.structured_content.clone().unwrap();
    assert_eq!(report["updated"], 3, "{report}");
}

#[tokio::test]
async fn two_mcp_clients_updating_one_machine_one_is_told_who_holds_the_lease() {
    let env = Env::stepped().await;
    env.create_app("mcp-race").await;
    let id = env.create_machine("mcp-race", "iad", "nginx:1").await;
    env.advance_until(500, env.until_started("mcp-race", &id))
        .await;
    // Two server processes, each with its own client.
    let a = connect(env.another_gate(), ()).await;
    let b = connect(env.another_gate(), ()).await;
    let args_a = json!({"app": "mcp-race", "env": {"MODE": "from-a"}});
    let mut first = tokio::spawn(async move {
        let r = a
            .call_tool(params("update_machines", args_a))
            .await
            .unwrap();
        (a, r)
    });
    let mut leased = false;
    for _ in 0..300 {
        if env.machine("mcp-race", &id).get("lease").is_some() {
            leased = true;
            break;
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut first)
                .await
                .is_err(),
            "the first call ended before the race"
        );
    }
    assert!(leased, "the first client never took the lease");
    let rb = b
        .call_tool(params(
            "update_machines",
            json!({"app": "mcp-race", "env": {"MODE": "from-b"}}),
        ))
        .await
        .unwrap();
    let tb = text(&rb);
    assert!(is_error(&rb), "{tb}");
    assert!(
        tb.contains("is leased by") && tb.contains(" until "),
        "{tb}"
    );
    let (a, ra) = env.advance_until(500, &mut first).await.unwrap();
    assert!(!is_error(&ra), "{}", text(&ra));
    let m = env.machine("mcp-race", &id);
    assert_eq!(m["config"]["env"]["MODE"], "from-a");
    assert!(m.get("lease").is_none(), "{m}");
    assert_eq!(
        env.version_count("mcp-race", &id).await,
        2,
        "no lost or extra update"
    );
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

#[tokio::test]
async fn scale_up_clones_with_a_volume_each_and_scale_down_destroys_after_confirmation() {
    let env = Env::serving().await;
    env.create_app("mcp-scale").await;
    let (st, vol) = env
        .post(
            "/v1/apps/mcp-scale/volumes",
            json!({"name": "data", "region": "iad", "size_gb": 3}),
        )
        .await;
    assert_eq!(st, 200, "{vol}");
    let (st, m) = env
        .post(
            "/v1/apps/mcp-scale/machines",
            json!({"region": "iad", "config": {"image": "nginx:1",
                "mounts": [{"volume": vol["id"], "path": "/data"}]}}),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    let template = m["id"].as_str().unwrap().to_owned();
    env.until_started("mcp-scale", &template).await;

    // Without confirmation nothing happens; the plan names what would be created.
    let plan = env
        .call(
            "scale_machines",
            json!({"app": "mcp-scale", "regions": {"iad": 2, "ams": 1}}),
        )
        .await;
    let pt = text(&plan);
    assert!(
        is_error(&plan) && pt.contains("confirmation required"),
        "{pt}"
    );
    assert!(
        pt.contains("create 2 machine(s)") && pt.contains("data 3 GB"),
        "{pt}"
    );
    assert_eq!(
        app_of(&env.state(), "mcp-scale")["machines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let up = env
        .confirmed_call(
            "scale_machines",
            json!({"app": "mcp-scale", "regions": {"iad": 2, "ams": 1}}),
        )
        .await;
    assert!(!is_error(&up), "{}", text(&up));
    assert_eq!(up.structured_content.as_ref().unwrap()["created"], 2);
    let state = env.state();
    let app = app_of(&state, "mcp-scale");
    let machines = app["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 3);
    let volumes = app["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 3, "one volume per clone: {volumes:?}");
    for m in machines {
        assert_eq!(m["state"], "started", "{m}");
        let mount = &m["config"]["mounts"][0];
        let v = volumes.iter().find(|v| v["id"] == mount["volume"]).unwrap();
        assert_eq!(v["region"], m["region"], "volume in the machine's region");
        assert_eq!(v["attached_machine_id"], m["id"]);
    }
    assert_eq!(machines.iter().filter(|m| m["region"] == "ams").count(), 1);

    // Scale down: the surplus goes (never the template), after confirmation.
    let down = env.confirmed_call("scale_machines",
        json!({"app": "mcp-scale", "regions": {"iad": 1, "ams": 0}, "template_machine_id": template}),
    )
    .await;
    assert!(!is_error(&down), "{}", text(&down));
    assert_eq!(down.structured_content.as_ref().unwrap()["destroyed"], 2);
    let state = env.state();
    let live: Vec<&Value> = app_of(&state, "mcp-scale")["machines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] != "destroyed" && m["state"] != "destroying")
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["id"], template.as_str());
}

/// Issue 18 item 2: a clone made right after a secrets write launches with that
/// secrets version (`min_secrets_version`, as flyctl's `machine clone` and
/// `scale count` pass it), taken from what the rollout recorded on the template; it
/// does not boot on the secrets its host had before the write.
#[tokio::test]
async fn a_clone_right_after_a_secrets_rollout_boots_with_the_new_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::with(TestEnv::builder().secrets_dir(dir.path())).await;
    env.create_app("mcp-clone-secrets").await;
    let template = env
        .create_machine("mcp-clone-secrets", "iad", "nginx:1")
        .await;
    env.until_started("mcp-clone-secrets", &template).await;
    let file = dir.path().join("token");
    std::fs::write(&file, "clone-secret-value\n").unwrap();
    let set = env
        .confirmed_call(
            "set_secrets",
            json!({"app": "mcp-clone-secrets", "rollout": true,
            "set": {"TOKEN": format!("file:{}", file.display())}}),
        )
        .await;
    assert!(!is_error(&set), "{}", text(&set));
    let up = env
        .confirmed_call(
            "scale_machines",
            json!({"app": "mcp-clone-secrets", "regions": {"iad": 3}}),
        )
        .await;
    assert!(!is_error(&up), "{}", text(&up));
    let state = env.state();
    let app = app_of(&state, "mcp-clone-secrets");
    let machines = app["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 3);
    for m in machines {
        assert_eq!(m["secrets_version"], app["secrets_version"], "{m}");
    }
}

#[tokio::test]
async fn volume_actions_and_destroy_volume_refusing_an_attached_volume() {
    let env = Env::serving().await;
    env.create_app("mcp-vol").await;
    let created = env.call("volume_action",
        json!({"app": "mcp-vol", "action": "create", "name": "data", "region": "iad", "size_gb": 1}),
    )
    .await;
    assert!(!is_error(&created), "{}", text(&created));
    let vol = created.structured_content.as_ref().unwrap()["volume"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let extended = env
        .call(
            "volume_action",
            json!({"app": "mcp-vol", "action": "extend", "volume_id": vol, "size_gb": 2}),
        )
        .await;
    assert!(!is_error(&extended), "{}", text(&extended));
    let shrink = env
        .call(
            "volume_action",
            json!({"app": "mcp-vol", "action": "extend", "volume_id": vol, "size_gb": 1}),
        )
        .await;
    assert!(
        is_error(&shrink) && text(&shrink).contains("cannot shrink"),
        "{}",
        text(&shrink)
    );

    let snap = env
        .call(
            "volume_action",
            json!({"app": "mcp-vol", "action": "snapshot", "volume_id": vol}),
        )
        .await;
    assert!(!is_error(&snap), "{}", text(&snap));
    let snapshot = snap.structured_content.as_ref().unwrap()["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let fork = env
        .call(
            "volume_action",
            json!({"app": "mcp-vol", "action": "fork", "volume_id": vol, "region": "ams"}),
        )
        .await;
    assert!(!is_error(&fork), "{}", text(&fork));
    let restore = env.call("volume_action",
        json!({"app": "mcp-vol", "action": "restore", "snapshot_id": snapshot, "name": "restored", "region": "iad"}),
    )
    .await;
    assert!(!is_error(&restore), "{}", text(&restore));
    let missing = env
        .call(
            "volume_action",
            json!({"app": "mcp-vol", "action": "restore", "name": "x", "region": "iad"}),
        )
        .await;
    assert!(
        is_error(&missing) && text(&missing).contains("snapshot_id"),
        "{}",
        text(&missing)
    );

    let state = env.state();
    let volumes = app_of(&state, "mcp-vol")["volumes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    let original = volumes.iter().find(|v| v["id"] == vol.as_str()).unwrap();
    assert_eq!(original["size_gb"], 2);
    assert!(
        volumes
            .iter()
            .any(|v| v["region"] == "ams" && v["name"] == "data")
    );
    assert!(volumes.iter().any(|v| v["name"] == "restored"));

    // Attach the volume to a machine: destroy_volume refuses and names the machine.
    let (st, m) = env
        .post(
            "/v1/apps/mcp-vol/machines",
            json!({"region": "iad", "config": {"image": "nginx:1", "mounts": [{"volume": vol, "path": "/data"}]}}),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    let machine = m["id"].as_str().unwrap().to_owned();
    let refused = env
        .call(
            "destroy_volume",
            json!({"app": "mcp-vol", "volume_id": vol, "confirm": "mcp-vol"}),
        )
        .await;
    let rt = text(&refused);
    assert!(is_error(&refused), "{rt}");
    assert!(
        rt.contains(&format!("attached to machine {machine}")),
        "{rt}"
    );
    assert!(
        app_of(&env.state(), "mcp-vol")["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == vol.as_str())
    );

    // A free volume goes after confirmation (and not before).
    let fork_id = volumes.iter().find(|v| v["region"] == "ams").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unconfirmed = env
        .call(
            "destroy_volume",
            json!({"app": "mcp-vol", "volume_id": fork_id}),
        )
        .await;
    assert!(is_error(&unconfirmed) && text(&unconfirmed).contains("confirmation required"));
    let gone = env
        .call(
            "destroy_volume",
            crate::support::with_confirm(
                &json!({"app": "mcp-vol", "volume_id": fork_id}),
                &text(&unconfirmed),
            ),
        )
        .await;
    assert!(!is_error(&gone), "{}", text(&gone));
    // Gone, or on its way out (realistic profile: listed in fly-go's destroy states).
    assert!(
        app_of(&env.state(), "mcp-vol")["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["id"] == fork_id.as_str())
            .all(|v| fly::VOLUME_GOING_STATES.contains(&v["state"].as_str().unwrap()))
    );
    // app_status no longer shows it.
    let status = env.call("app_status", json!({"app": "mcp-vol"})).await;
    assert!(
        !text(&status).contains(fork_id.as_str()),
        "{}",
        text(&status)
    );
}

pub(super) async fn run_binary(args: Vec<String>, envs: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("fly-machines-mcp").unwrap();
        cmd.args(&args).timeout(Duration::from_secs(30));
        for k in ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "RUST_LOG"] {
            cmd.env_remove(k);
        }
        cmd.env("HOME", std::env::temp_dir().join("fly-mcp-test-no-home"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

const CANARY_ENV: &str = "canary-env-secret-5f1d2c9a";
const CANARY_FILE: &str = "canary-file-secret-77ab31e0";
const CANARY_LITERAL: &str = "canary-literal-secret-0c4e88";

#[tokio::test]
async fn secret_values_by_reference_never_reach_output_logs_or_audit() {
    let env = Env::fast().await;
    env.create_app("mcp-secrets").await;
    let id = env.create_machine("mcp-secrets", "iad", "nginx:1").await;
    env.until_started("mcp-secrets", &id).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db-password");
    std::fs::write(&file, format!("{CANARY_FILE}\n")).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let envs = vec![
        ("FLY_API_HOSTNAME", env.sim.base_url()),
        ("FLY_API_BASE_URL", env.sim.base_url()),
        ("FLY_API_TOKEN", TOKEN.to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("CANARY_FROM_ENV", CANARY_ENV.to_owned()),
    ];
    let set = json!({"app": "mcp-secrets", "rollout": true,
        "set": {"API_KEY": "env:CANARY_FROM_ENV", "DB_PASSWORD": format!("file:{}", file.display())}});
    let literal = json!({"app": "mcp-secrets",
        "set": {"LITERAL": format!("literal:{CANARY_LITERAL}")}});
    let audit_arg = audit.display().to_string();
    let mut outputs = Vec::new();
    let mut results = Vec::new();
    for (args, extra) in [
        (set.to_string(), None),
        // Literal values are refused by default ...
        (literal.to_string(), None),
        // ... and accepted with --allow-literal-secrets.
        (literal.to_string(), Some("--allow-literal-secrets")),
    ] {
        let mut a = vec![
            "call".to_owned(),
            "set_secrets".to_owned(),
            "--audit-log".to_owned(),
            audit_arg.clone(),
            "--confirm".to_owned(),
            "never".to_owned(),
            "--secret-env".to_owned(),
            "CANARY_*".to_owned(),
            "--secrets-dir".to_owned(),
            dir.path().display().to_string(),
        ];
        a.extend(extra.map(str::to_owned));
        a.extend(["--args".to_owned(), args]);
        let out = run_binary(a, envs.clone()).await;
        results.push(out.status.code());
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert_eq!(results, vec![Some(0), Some(1), Some(0)], "{outputs:#?}");
    let result: Value = serde_json::from_str(&outputs[0]).unwrap();
    assert!(result["version"].as_u64().unwrap() >= 1, "{result}");
    let names: Vec<&str> = result["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_KEY", "DB_PASSWORD"]);
    assert!(
        result["secrets"][0]["digest"].as_str().unwrap().len() >= 16,
        "{result}"
    );
    assert_eq!(result["rollout"]["updated"], 1, "{result}");
    let refusal = outputs[2..4].join("\n");
    assert!(refusal.contains("--allow-literal-secrets"), "{refusal}");
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audit_text.lines().count(), 3, "{audit_text}");
    outputs.push(audit_text);
    assert!(
        outputs.iter().any(|o| o.contains("DEBUG")),
        "debug logs were on"
    );
    for o in &outputs {
        for canary in [CANARY_ENV, CANARY_FILE, CANARY_LITERAL, TOKEN] {
            assert!(!o.contains(canary), "{canary} leaked: {o}");
        }
    }
    // Fly got the values: the simulator's digests are sha256 of exactly them.
    let state = env.state();
    let secrets = app_of(&state, "mcp-secrets")["secrets"]
        .as_array()
        .unwrap()
        .clone();
    let digest = |name: &str| {
        secrets.iter().find(|s| s["name"] == name).unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sha = |v: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(v.as_bytes()));
    assert_eq!(digest("API_KEY"), sha(CANARY_ENV));
    assert_eq!(digest("DB_PASSWORD"), sha(CANARY_FILE));
    assert_eq!(digest("LITERAL"), sha(CANARY_LITERAL));
    // The rollout put the machine on the new secrets version.
    assert_eq!(env.version_count("mcp-secrets", &id).await, 2);
}

/// A clone's volume created but answered 5xx (found by the fault campaign): the scale
/// looks again, adopts that volume and makes no second one; the clone starts on it.
#[tokio::test]
async fn a_clone_volume_created_but_answered_5xx_is_adopted_not_made_twice() {
    let env = Env::serving().await;
    env.create_app("vol-5xx").await;
    let (st, vol) = env
        .post(
            "/v1/apps/vol-5xx/volumes",
            json!({"name": "data", "region": "iad", "size_gb": 1}),
        )
        .await;
    assert_eq!(st, 200, "{vol}");
    let (st, m) = env
        .post(
            "/v1/apps/vol-5xx/machines",
            json!({"region": "iad", "config": {"image": "nginx:1",
                "mounts": [{"volume": vol["id"], "path": "/data"}]}}),
        )
        .await;
    assert_eq!(st, 200, "{m}");
    env.until_started("vol-5xx", m["id"].as_str().unwrap())
        .await;
    env.sim.set_faults(
        "applied=1,on=POST /v1/apps/vol-5xx/volumes,times=1"
            .parse()
            .unwrap(),
    );
    let up = env
        .confirmed_call(
            "scale_machines",
            json!({"app": "vol-5xx", "regions": {"iad": 2}}),
        )
        .await;
    assert!(!is_error(&up), "{}", text(&up));
    assert_eq!(up.structured_content.as_ref().unwrap()["created"], 1);
    let state = env.state();
    let app = app_of(&state, "vol-5xx");
    assert_eq!(app["volumes"].as_array().unwrap().len(), 2, "{app}");
    assert_eq!(app["machines"].as_array().unwrap().len(), 2, "{app}");
    for v in app["volumes"].as_array().unwrap() {
        assert!(v["attached_machine_id"].is_string(), "{v}");
    }
}
