//! deploy_mcp_server: the public exposure is shown and must be confirmed before
//! anything exists; then exactly the recipe's resources appear in the simulator's own
//! state (app, shared v4 + one v6, one volume, one machine on the MCP image with the
//! `npx …` command and an HTTP service that stops when idle and starts on demand, and
//! the bearer key as an app secret whose digest matches the key delivered once);
//! the key never reaches the audit log; teardown removes it all.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Harness;

const APP: &str = "mcp-files-demo";

fn command() -> Value {
    json!([
        "npx",
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "/data"
    ])
}

fn sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn deploy_creates_exactly_the_recipe_behind_a_key_and_teardown_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::opt_in_writing_to(dir.path()).await;
    let key_file = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("mcp-files-demo.key");
    let args = json!({"app": APP, "region": "iad", "command": command(),
                      "key_file": key_file.display().to_string()});

    // First call: the exposure, nothing created, no key file.
    let err = h.err("deploy_mcp_server", args.clone()).await;
    assert!(err.contains("exposes publicly"), "{err}");
    assert!(err.contains("https://mcp-files-demo.fly.dev/"), "{err}");
    assert!(err.contains("IPv4") && err.contains("IPv6"), "{err}");
    assert!(
        err.contains("\"confirm_public\": \"mcp-files-demo\""),
        "{err}"
    );
    assert!(h.app_state(APP).is_none());
    assert!(!key_file.exists());

    let mut confirmed = args.clone();
    confirmed["confirm_public"] = json!(APP);
    let (text, out) = h.ok("deploy_mcp_server", confirmed.clone()).await;
    assert_eq!(out["url"], "https://mcp-files-demo.fly.dev/");
    assert!(out.get("bearer_key").is_none(), "{out}");
    assert_eq!(out["key_file"], key_file.display().to_string());
    let proxy_args = &out["client_config"]["mcpServers"]["mcp-files-demo-mcp"]["args"];
    assert_eq!(proxy_args[0], "mcp");
    assert_eq!(proxy_args[3], "https://mcp-files-demo.fly.dev/");

    // The key: in the file (owner-only), stored as the app secret, nowhere else.
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(key.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!text.contains(&key));
    assert!(!out.to_string().contains(&key));

    // Exactly the recipe's resources.
    let app = h.app_state(APP).expect("app created");
    assert!(app["shared_ip"].is_string(), "{app:#}");
    let ips = app["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 1, "{app:#}");
    assert_eq!(ips[0]["type"], "v6");
    let volumes = app["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{app:#}");
    assert_eq!(volumes[0]["name"], "data");
    assert_eq!(volumes[0]["size_gb"], 1);
    let machines = app["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 1, "{app:#}");
    let config = &machines[0]["config"];
    assert_eq!(config["image"], "flyio/mcp:latest");
    assert_eq!(config["init"]["cmd"], command());
    assert_eq!(config["mounts"][0]["path"], "/data");
    let svc = &config["services"][0];
    assert_eq!(svc["internal_port"], 8080);
    assert_eq!(svc["autostop"], "stop");
    assert_eq!(svc["autostart"], true);
    let ports: Vec<u64> = svc["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    let secrets = app["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{app:#}");
    assert_eq!(secrets[0]["name"], "FLY_MCP_BEARER_TOKEN");
    assert_eq!(secrets[0]["digest"], sha256(&key));
    // Issue 18 item 2: the machine was created with the secrets write's version as
    // `min_secrets_version` (flyctl does so on every launch), so it booted with the
    // key; without it, it would have booted before its host saw the write.
    assert_eq!(
        machines[0]["secrets_version"], app["secrets_version"],
        "{app:#}"
    );
    assert_eq!(
        config["metadata"]["fly_mcp_secrets_version"],
        app["secrets_version"].to_string()
    );

    // A second deployment of the same app is refused (its key would never reach the
    // running machine); the key file is not touched.
    let mut again = confirmed.clone();
    again["key_file"] = json!(dir.path().join("second.key").display().to_string());
    let err = h.err("deploy_mcp_server", again).await;
    assert!(err.contains("exists already"), "{err}");
    assert!(!dir.path().join("second.key").exists());

    // The audit log has both calls, never the key.
    let audit = std::fs::read_to_string(&h.audit).unwrap();
    assert!(audit.contains("deploy_mcp_server"));
    assert!(!audit.contains(&key));

    // teardown_environment (confirmed) removes every resource with the app.
    let args = json!({"app": APP, "timeout_s": 30});
    let err = h.err("teardown_environment", args.clone()).await;
    assert!(err.contains("confirmation required"), "{err}");
    assert!(h.app_state(APP).is_some());
    h.ok(
        "teardown_environment",
        crate::support::with_confirm(&args, &err),
    )
    .await;
    assert!(h.app_state(APP).is_none());
}

#[tokio::test]
async fn without_a_key_file_the_key_is_returned_once_and_matches_the_secret() {
    let h = Harness::opt_in().await;
    let args = json!({"app": "mcp-time-demo", "region": "ams", "volume_gb": 0,
                      "command": ["uvx", "mcp-server-time"], "when_idle": "suspend",
                      "confirm_public": "mcp-time-demo"});
    let (text, out) = h.ok("deploy_mcp_server", args).await;
    let key = out["bearer_key"].as_str().unwrap().to_owned();
    assert!(text.contains("shown once"), "{text}");
    let app = h.app_state("mcp-time-demo").unwrap();
    assert_eq!(app["secrets"][0]["digest"], sha256(&key));
    assert_eq!(app["volumes"].as_array().unwrap().len(), 0);
    assert_eq!(
        app["machines"][0]["config"]["services"][0]["autostop"],
        "suspend"
    );
    let audit = std::fs::read_to_string(&h.audit).unwrap();
    assert!(!audit.contains(&key));
}

#[tokio::test]
async fn the_key_file_must_be_a_new_key_file_under_the_secrets_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("keys");
    std::fs::create_dir(&dir).unwrap();
    let h = Harness::opt_in_writing_to(&dir).await;
    let existing = dir.join("old.key");
    std::fs::write(&existing, "x").unwrap();
    std::os::unix::fs::symlink(root.path(), dir.join("up")).unwrap();
    for (path, why) in [
        (dir.join("authorized_keys").display().to_string(), ".key"),
        (existing.display().to_string(), "exists already"),
        ("../escape.key".to_owned(), "outside the secrets directory"),
        ("up/escape.key".to_owned(), "outside the secrets directory"),
        (
            root.path().join("elsewhere.key").display().to_string(),
            "outside the secrets directory",
        ),
    ] {
        let err = h
            .err(
                "deploy_mcp_server",
                json!({"app": "mcp-key-demo", "region": "iad", "command": command(),
                       "key_file": path, "confirm_public": "mcp-key-demo"}),
            )
            .await;
        assert!(err.contains(why), "{why}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "x");
    assert!(!root.path().join("escape.key").exists());
    assert!(h.app_state("mcp-key-demo").is_none());
    // Without --secrets-dir the server writes no file at all.
    let closed = Harness::opt_in().await;
    let err = closed
        .err(
            "deploy_mcp_server",
            json!({"app": "mcp-key-demo", "region": "iad", "command": command(),
                   "key_file": dir.join("new.key").display().to_string(),
                   "confirm_public": "mcp-key-demo"}),
        )
        .await;
    assert!(err.contains("--secrets-dir"), "{err}");
}

#[tokio::test]
async fn commands_the_default_image_cannot_run_need_an_image() {
    let h = Harness::opt_in().await;
    let err = h
        .err(
            "deploy_mcp_server",
            json!({"app": "mcp-py-demo", "region": "iad", "command": ["python3", "server.py"],
                   "confirm_public": "mcp-py-demo"}),
        )
        .await;
    assert!(err.contains("pass an image"), "{err}");
    assert!(h.app_state("mcp-py-demo").is_none());
}
