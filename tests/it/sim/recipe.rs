//! The per-user dev environment recipe from Fly's Machines API guide, request for
//! request (same bodies, only the host changed): the machine reaches `started`.

use fly_machines_mcp::sim::SimConfig;
use serde_json::{Value, json};

use super::Sim;

async fn call(sim: &Sim, method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
    let resp = sim
        .http
        .request(method, url)
        .header("Authorization", "Bearer FlyV1 fm2_IJPECAAA")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let st = resp.status().as_u16();
    (st, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn curl_recipe_reaches_started() {
    let sim = Sim::start(SimConfig::for_tests()).await;
    let host = sim.handle.base_url();
    let app = "mcp-demo-4f2a9c1e7b3d";
    let post = reqwest::Method::POST;

    let (st, _) = call(
        &sim,
        post.clone(),
        format!("{host}/v1/apps"),
        json!({"app_name": app, "org_slug": "personal"}),
    )
    .await;
    assert_eq!(st, 201);
    // A new app answers 404 for a moment (realistic profile); the guide's reader is
    // slower than that, and a client waits for it (fly-go `WaitForApp`).
    sim.pass_new_app_window();

    let (st, r) = call(&sim, post.clone(), format!("{host}/graphql"), json!({
        "query": "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { app { sharedIpAddress } } }",
        "variables": {"input": {"appId": app, "type": "shared_v4", "region": ""}}})).await;
    assert_eq!(st, 200);
    assert!(
        r["data"]["allocateIpAddress"]["app"]["sharedIpAddress"].is_string(),
        "{r}"
    );

    let (st, r) = call(&sim, post.clone(), format!("{host}/graphql"), json!({
        "query": "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id address type region createdAt } } }",
        "variables": {"input": {"appId": app, "type": "v6", "region": ""}}})).await;
    assert_eq!(st, 200);
    assert_eq!(
        r["data"]["allocateIpAddress"]["ipAddress"]["type"], "v6",
        "{r}"
    );

    let (st, vol) = call(
        &sim,
        post.clone(),
        format!("{host}/v1/apps/{app}/volumes"),
        json!({"name": "data", "region": "iad", "size_gb": 1}),
    )
    .await;
    assert_eq!(st, 200, "{vol}");

    let (st, m) = call(&sim, post, format!("{host}/v1/apps/{app}/machines"), json!({
        "region": "iad",
        "config": {
            "image": "flyio/mcp:latest",
            "init": {"cmd": ["npx", "-f", "@modelcontextprotocol/server-filesystem", "/data/"]},
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
            "mounts": [{"volume": "data", "path": "/data", "extend_threshold_percent": 80, "add_size_gb": 1, "size_gb_limit": 100}],
            "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": "stop", "autostart": true,
                "ports": [{"port": 80, "handlers": ["http"], "force_https": true},
                          {"port": 443, "handlers": ["http", "tls"]}]}]
        }})).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["config"]["mounts"][0]["volume"], vol["id"]);
    let id = m["id"].as_str().unwrap();

    let (st, w) = sim
        .get(&format!(
            "/v1/apps/{app}/machines/{id}/wait?state=started&timeout=30"
        ))
        .await;
    assert_eq!(st, 200, "{w}");
    let (_, v) = sim
        .get(&format!(
            "/v1/apps/{app}/volumes/{}",
            vol["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v["attached_machine_id"], id);
}

/// `examples/curl_recipe.sh` itself, with curl, against the simulator (skipped when
/// bash or curl is missing).
#[tokio::test]
async fn curl_recipe_script_runs_against_the_simulator() {
    let has = |bin: &str| {
        std::process::Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("bash") || !has("curl") {
        eprintln!("skipped: bash or curl not installed");
        return;
    }
    let sim = Sim::start(SimConfig::for_tests()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/curl_recipe.sh");
    let run = tokio::process::Command::new("bash")
        .arg(script)
        .env("FLY_API_HOSTNAME", sim.handle.base_url())
        .env("APP_NAME", "mcp-demo-script")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("HTTP/1.1 201"), "{stdout}");
    assert!(stdout.contains("is started"), "{stdout}");
    let (_, list) = sim.get("/v1/apps/mcp-demo-script/machines").await;
    assert_eq!(list[0]["state"], "started");
}
