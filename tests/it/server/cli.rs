//! The real binary: `call` exit codes (0 ok, 1 tool error, 2 usage error), `tools`,
//! and canary values kept out of stdout, stderr (logs at trace level) and the audit log.

use std::{process::Output, time::Duration};

use serde_json::Value;

use super::tools::{SIM_TOKEN, demo_sim};

async fn run(args: Vec<String>, envs: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::cargo_bin("fly-machines-mcp").unwrap();
        cmd.args(&args).timeout(Duration::from_secs(30));
        for k in [
            "FLY_API_TOKEN",
            "FLY_ACCESS_TOKEN",
            "FLY_API_HOSTNAME",
            "FLY_API_BASE_URL",
            "RUST_LOG",
        ] {
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

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn call_exit_codes_and_json() {
    let sim = demo_sim().await;
    let env = vec![
        ("FLY_API_HOSTNAME", sim.base_url()),
        ("FLY_API_BASE_URL", sim.base_url()),
        ("FLY_API_TOKEN", SIM_TOKEN.to_owned()),
    ];
    let ok = run(
        args(&[
            "call",
            "platform_info",
            "--args",
            r#"{"include":"vm_sizes"}"#,
        ]),
        env.clone(),
    )
    .await;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(!v["vm_sizes"].as_array().unwrap().is_empty());

    for (a, code) in [
        (args(&["call", "no_such_tool"]), 2),
        (args(&["call", "platform_info", "--args", "not json"]), 2),
        (
            args(&[
                "call",
                "platform_info",
                "--args",
                r#"{"include":"everything"}"#,
            ]),
            2,
        ),
        (args(&["call", "platform_info", "--toolsets", "nope"]), 2),
        (
            args(&[
                "call",
                "destroy_machines",
                "--args",
                r#"{"app":"cdn-demo","machine_ids":["00000000000000"]}"#,
            ]),
            1,
        ),
        (
            args(&[
                "call",
                "destroy_machines",
                "--read-only",
                "--args",
                r#"{"app":"cdn-demo","machine_ids":["00000000000000"]}"#,
            ]),
            1,
        ),
    ] {
        let out = run(a.clone(), env.clone()).await;
        assert_eq!(
            out.status.code(),
            Some(code),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tools = run(args(&["tools", "--json"]), vec![]).await;
    assert_eq!(tools.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&tools.stdout).unwrap();
    assert!(
        v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "destroy_machines")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_token_never_reaches_stdout_stderr_or_the_audit_log() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let env = vec![
        ("FLY_API_HOSTNAME", sim.base_url()),
        ("FLY_API_BASE_URL", sim.base_url()),
        ("FLY_API_TOKEN", SIM_TOKEN.to_owned()),
        ("RUST_LOG", "trace".to_owned()),
    ];
    let ids: Vec<String> = {
        let st = sim.state_json().to_string();
        let mut ids = Vec::new();
        for part in st.split("\"id\":\"").skip(1) {
            let id: String = part.chars().take_while(|c| *c != '"').collect();
            if id.len() == 14 && id.chars().all(|c| c.is_ascii_hexdigit()) && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    };
    let id = ids.first().expect("a demo machine");
    let call_args = format!(r#"{{"app":"cdn-demo","machine_ids":["{id}"],"force":true}}"#);
    let audit_arg = audit.display().to_string();
    let mut outputs = Vec::new();
    for a in [
        args(&["call", "platform_info"]),
        vec![
            "call".into(),
            "destroy_machines".into(),
            "--confirm".into(),
            "never".into(),
            "--audit-log".into(),
            audit_arg.clone(),
            "--args".into(),
            call_args.clone(),
        ],
        // The token passed on the command line as well, and echoed in arguments.
        vec![
            "call".into(),
            "destroy_machines".into(),
            "--access-token".into(),
            SIM_TOKEN.into(),
            "--audit-log".into(),
            audit_arg.clone(),
            "--args".into(),
            format!(r#"{{"app":"{SIM_TOKEN}","machine_ids":["{id}"]}}"#),
        ],
    ] {
        let out = run(a, env.clone()).await;
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audit_text.lines().count(), 2, "{audit_text}");
    let first: Value = serde_json::from_str(audit_text.lines().next().unwrap()).unwrap();
    assert_eq!(first["tool"], "destroy_machines");
    assert_eq!(first["outcome"], "ok");
    assert!(
        !first["fly_request_ids"].as_array().unwrap().is_empty(),
        "{first}"
    );
    outputs.push(audit_text);
    assert!(
        outputs
            .iter()
            .any(|o| o.contains("TRACE") || o.contains("DEBUG")),
        "logs were on"
    );
    for o in &outputs {
        assert!(!o.contains(SIM_TOKEN), "token leaked: {o}");
    }
    sim.shutdown().await;
}
