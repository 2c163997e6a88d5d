//! The runnable examples in `examples/`, run offline: the MCP-client ones are compiled
//! into this binary (`#[path]`) and their `run` is called with the server binary Cargo
//! built for these tests; `ci_bot.sh` runs under bash against the simulator it starts.
//! Each is bounded in time and its transcript is checked line by line.
//! `live_readonly` reaches real Fly and is never run here (only built, by
//! `cargo test --all-targets`).

// Both examples include `examples/support/mcp.rs`, hence the duplicate module; their
// `main` is not called here.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../../examples/dev_env_agent.rs"]
mod dev_env_agent;

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../../examples/pool_claim.rs"]
mod pool_claim;

use std::{path::PathBuf, time::Duration};

/// Upper bound for one example; each normally takes a few seconds.
const DEADLINE: Duration = Duration::from_secs(90);

fn server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fly-machines-mcp"))
}

fn line<'a>(transcript: &'a str, prefix: &str) -> &'a str {
    transcript
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{transcript}"))
}

#[test]
fn dev_env_app_names_are_fly_app_names() {
    assert_eq!(dev_env_agent::app_name("alice"), "dev-alice");
    assert_eq!(
        dev_env_agent::app_name("Bob.Smith@example.com"),
        "dev-bob-smith-example-com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_env_agent_provisions_checks_and_tears_down() {
    let opts = dev_env_agent::Options {
        bin: server_bin(),
        user: "Test.User".to_owned(),
        region: "iad".to_owned(),
    };
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, dev_env_agent::run(&opts, &mut out))
        .await
        .expect("dev_env_agent took too long")
        .unwrap_or_else(|e| {
            panic!(
                "dev_env_agent failed: {e}\n{}",
                String::from_utf8_lossy(&out)
            )
        });
    let t = String::from_utf8(out).unwrap();
    eprintln!("{t}");

    assert!(line(&t, "initialize").contains("fly-machines-mcp"), "{t}");
    let tools = line(&t, "tools/list");
    for tool in ["provision_environment", "diagnose", "teardown_environment"] {
        assert!(tools.contains(tool), "{tools}");
    }
    assert!(
        !tools.contains("pool_fill"),
        "fleet is opt-in, yet listed: {tools}"
    );
    let dry = line(&t, "provision (dry)");
    assert!(
        dry.contains("planned") && dry.contains("nothing created"),
        "{dry}"
    );
    let made = line(&t, "provision  ");
    assert!(
        made.contains("provisioned")
            && made.contains("started")
            && made.contains("https://dev-test-user.fly.dev"),
        "{made}"
    );
    let status = line(&t, "app_status");
    assert!(
        status.contains("machines [main started]") && status.contains("1 volume(s)"),
        "{status}"
    );
    assert!(
        line(&t, "diagnose").contains("0 finding(s)"),
        "a fresh environment has findings:\n{t}"
    );
    let asked = line(&t, "teardown  ");
    assert!(
        asked.contains("confirmation required")
            && asked.contains("machine")
            && asked.contains("app dev-test-user"),
        "{asked}"
    );
    assert!(
        line(&t, "teardown confirmed").contains("app deleted: true"),
        "{t}"
    );
    assert!(line(&t, "done: dev-test-user").contains("torn down"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_claim_fills_claims_releases_and_reaps() {
    let opts = pool_claim::Options {
        bin: server_bin(),
        size: 2,
    };
    let mut out = Vec::new();
    tokio::time::timeout(DEADLINE, pool_claim::run(&opts, &mut out))
        .await
        .expect("pool_claim took too long")
        .unwrap_or_else(|e| panic!("pool_claim failed: {e}\n{}", String::from_utf8_lossy(&out)));
    let t = String::from_utf8(out).unwrap();
    eprintln!("{t}");

    assert!(line(&t, "app ").contains("provisioned"), "{t}");
    assert!(line(&t, "pool_fill").contains("2 created, 0 failed"), "{t}");
    let statuses: Vec<&str> = t.lines().filter(|l| l.starts_with("pool_status")).collect();
    assert_eq!(statuses.len(), 3, "{t}");
    assert!(statuses[0].contains("2 free, 0 claimed"), "{t}");
    assert!(statuses[1].contains("0 free, 2 claimed"), "{t}");
    assert!(statuses[2].contains("1 free, 1 claimed"), "{t}");
    assert!(line(&t, "claim alice  ").contains("from suspended"), "{t}");
    assert!(line(&t, "claim bob").contains("from suspended"), "{t}");
    assert!(line(&t, "claim alice again").contains("renewed"), "{t}");
    assert!(line(&t, "claim timings").contains(" ms"), "{t}");
    assert!(line(&t, "release bob").contains("back in pool"), "{t}");
    assert!(line(&t, "reap_expired").contains("nothing"), "{t}");
    assert!(line(&t, "reap confirmed").contains("0 destroyed"), "{t}");
}

async fn read_all(mut pipe: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_bot_script_provisions_checks_and_tears_down_a_preview() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci_bot.sh");
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(script)
        .arg("Feature/Login_Page")
        .env("FLY_MACHINES_MCP_BIN", server_bin())
        .env("SIM_TIME_SCALE", "0.02")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // its own process group: on a timeout the script and its simulator go together
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let status = tokio::time::timeout(DEADLINE, child.wait()).await;
    if status.is_err() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
    }
    let t = stdout.await.unwrap();
    let err = stderr.await.unwrap();
    eprintln!("{t}");
    let Ok(status) = status else {
        panic!("ci_bot.sh took longer than {DEADLINE:?}\n{t}\n{err}");
    };
    let status = status.unwrap();
    assert!(status.success(), "exit {status:?}\n{t}\n{err}");

    let app = "preview-feature-login-page";
    assert!(
        line(&t, "ci_bot: simulator listening on http://127.0.0.1:").len() > 40,
        "{t}"
    );
    assert!(line(&t, "ci_bot: plan for").contains(app), "{t}");
    assert!(
        line(&t, "ci_bot: provisioned").contains(&format!("started, https://{app}.fly.dev")),
        "{t}"
    );
    assert!(
        line(&t, "ci_bot: re-run of the job").contains("nothing new created"),
        "{t}"
    );
    assert!(
        line(&t, "ci_bot: status:").contains("1 machine(s) started"),
        "{t}"
    );
    assert!(
        line(&t, "ci_bot: outside its scope").contains("error kind refused"),
        "{t}"
    );
    assert!(
        line(&t, "ci_bot: teardown unconfirmed")
            .contains("exit 1, error kind confirmation_required"),
        "{t}"
    );
    assert!(line(&t, "ci_bot: torn down").contains("app deleted"), "{t}");
    assert!(
        line(&t, "ci_bot: status after teardown").contains("exit 1"),
        "{t}"
    );
    assert!(
        line(&t, "ci_bot: audit log").contains("write/destructive call(s) recorded"),
        "{t}"
    );
    assert_eq!(t.lines().last(), Some("ci_bot: done"), "{t}");
}
