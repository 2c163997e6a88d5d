//! Secret references read only what the operator allows (`--secret-env`,
//! `--secrets-dir`), and never the server's own credentials, whatever the allowlists
//! say. Driven through the real binary (`call set_secrets`) against the simulator,
//! with canaries in every credential source: none may reach Fly, a result, an error,
//! the debug log or the audit log.

use std::path::Path;

use serde_json::{Value, json};

use super::tools::run_binary;
use super::{Env, TOKEN, app_of};

const CANARY_FLYCTL: &str = "fm2_canary-flyctl-config-4e1f";
const CANARY_STORED: &str = "fm2_canary-stored-token-9b2c";
const CANARY_KEYS: &str = "canary-server-key-71d0";
const CANARY_SETTING: &str = "canary-mcp-setting-c3a5";
const CANARY_OUTSIDE: &str = "canary-outside-file-08e6";
const ALLOWED_ENV: &str = "allowed-env-value-5d21";
const ALLOWED_FILE: &str = "allowed-file-value-a9f3";

const APP: &str = "refs-app";

/// One `set_secrets` call with `SECRET` = `reference`; its exit code and all it printed.
async fn set(env: &Env, home: &Path, reference: &str, audit: &Path) -> (Option<i32>, String) {
    let args = json!({"app": APP, "set": {"SECRET": reference}});
    let out = run_binary(
        vec![
            "call".to_owned(),
            "set_secrets".to_owned(),
            "--confirm".to_owned(),
            "never".to_owned(),
            "--audit-log".to_owned(),
            audit.display().to_string(),
            // As wide as an operator can make it: every name, the whole home directory.
            "--secret-env".to_owned(),
            "*".to_owned(),
            "--secrets-dir".to_owned(),
            home.display().to_string(),
            "--args".to_owned(),
            args.to_string(),
        ],
        vec![
            ("FLY_API_HOSTNAME", env.sim.base_url()),
            ("FLY_API_BASE_URL", env.sim.base_url()),
            ("FLY_API_TOKEN", TOKEN.to_owned()),
            ("FLY_ACCESS_TOKEN", TOKEN.to_owned()),
            ("FLY_MCP_SOME_SETTING", CANARY_SETTING.to_owned()),
            ("FLY_MCP_AUTH_KEYS", home.join("keys").display().to_string()),
            ("COPY_OF_TOKEN", format!("Bearer {TOKEN}")),
            ("APP_DB_URL", ALLOWED_ENV.to_owned()),
            ("HOME", home.display().to_string()),
            ("XDG_CONFIG_HOME", home.join("xdg").display().to_string()),
            ("RUST_LOG", "debug".to_owned()),
        ],
    )
    .await;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn references_reach_only_what_the_operator_allows_and_never_the_servers_credentials() {
    let env = Env::fast().await;
    env.create_app(APP).await;
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    for dir in [".fly", "xdg/fly-machines-mcp", "config"] {
        std::fs::create_dir_all(home.join(dir)).unwrap();
    }
    std::fs::write(
        home.join(".fly/config.yml"),
        format!("access_token: {CANARY_FLYCTL}\n"),
    )
    .unwrap();
    std::fs::write(home.join("xdg/fly-machines-mcp/token"), CANARY_STORED).unwrap();
    std::fs::write(home.join("keys"), format!("ci:{CANARY_KEYS}\n")).unwrap();
    std::fs::write(home.join("config/db-url"), format!("{ALLOWED_FILE}\n")).unwrap();
    std::fs::write(root.path().join("outside"), CANARY_OUTSIDE).unwrap();
    std::os::unix::fs::symlink(root.path().join("outside"), home.join("config/link")).unwrap();
    std::os::unix::fs::symlink(home.join(".fly"), home.join("config/fly")).unwrap();
    let audit = root.path().join("audit.jsonl");

    let refused = [
        ("env:FLY_API_TOKEN", "own settings or token sources"),
        ("env:FLY_ACCESS_TOKEN", "own settings or token sources"),
        ("env:FLY_MCP_SOME_SETTING", "own settings or token sources"),
        ("env:FLY_MCP_AUTH_KEYS", "own settings or token sources"),
        // Allowed by the glob, but the value is the server's token under another name.
        ("env:COPY_OF_TOKEN", "own Fly token"),
        ("file:.fly/config.yml", "credentials"),
        ("file:config/fly/config.yml", "credentials"),
        ("file:xdg/fly-machines-mcp/token", "credentials"),
        ("file:keys", "credentials"),
        ("file:/proc/self/environ", "kernel file"),
        ("file:config/link", "outside the secrets directory"),
        ("file:config/../../outside", "outside the secrets directory"),
        ("file:/etc/passwd", "outside the secrets directory"),
    ];
    let mut printed = Vec::new();
    for (reference, rule) in refused {
        let (code, text) = set(&env, &home, reference, &audit).await;
        assert_eq!(code, Some(1), "{reference} was not refused: {text}");
        assert!(
            text.contains("secret reference policy") && text.contains(rule),
            "{reference}: {text}"
        );
        printed.push(text);
    }
    // Nothing refused reached Fly.
    let secrets = |state: &Value| -> Vec<String> {
        app_of(state, APP)["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(secrets(&env.state()).is_empty());

    for reference in ["env:APP_DB_URL", "file:config/db-url"] {
        let (code, text) = set(&env, &home, reference, &audit).await;
        assert_eq!(code, Some(0), "{reference}: {text}");
        printed.push(text);
    }
    let state = env.state();
    assert_eq!(secrets(&state), ["SECRET"]);
    let digest = app_of(&state, APP)["secrets"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let sha = |v: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(v.as_bytes()));
    assert_eq!(
        digest,
        sha(ALLOWED_FILE),
        "the last allowed value reached Fly"
    );

    printed.push(std::fs::read_to_string(&audit).unwrap_or_default());
    assert!(
        printed.iter().any(|t| t.contains("DEBUG")),
        "debug logs were on"
    );
    for text in &printed {
        for canary in [
            TOKEN,
            CANARY_FLYCTL,
            CANARY_STORED,
            CANARY_KEYS,
            CANARY_SETTING,
            CANARY_OUTSIDE,
            ALLOWED_ENV,
            ALLOWED_FILE,
        ] {
            assert!(!text.contains(canary), "{canary} leaked: {text}");
        }
    }
}

#[tokio::test]
async fn by_default_no_reference_resolves_and_the_refusal_says_how_to_widen() {
    let env = Env::fast().await;
    env.create_app(APP).await;
    let args = |reference: &str| json!({"app": APP, "set": {"SECRET": reference}}).to_string();
    for (reference, flag) in [
        ("env:HOME", "--secret-env"),
        ("file:/etc/hostname", "--secrets-dir"),
    ] {
        let out = run_binary(
            vec![
                "call".to_owned(),
                "set_secrets".to_owned(),
                "--confirm".to_owned(),
                "never".to_owned(),
                "--args".to_owned(),
                args(reference),
            ],
            vec![
                ("FLY_API_HOSTNAME", env.sim.base_url()),
                ("FLY_API_BASE_URL", env.sim.base_url()),
                ("FLY_API_TOKEN", TOKEN.to_owned()),
            ],
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains(flag), "{reference}: {text}");
    }
}
