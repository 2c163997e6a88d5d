//! What README.md says about the container image: the binary serves Streamable HTTP
//! with a server key when configured only through the environment variables the
//! Dockerfile sets (`FLY_MCP_HTTP`, `FLY_MCP_AUTH_KEYS`), and refuses a public bind
//! without keys.

use std::{process::Stdio, time::Duration};

use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fly-machines-mcp");

fn free_loopback_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"image-env-test","version":"0"}}}"#;

#[tokio::test]
async fn serves_http_with_a_key_from_the_image_environment() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("mcp-keys");
    std::fs::write(&keys, "# server keys\nci:image-env-test-key-0123456789\n").unwrap();
    let port = free_loopback_port();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLY_MCP_HTTP", format!("127.0.0.1:{port}"))
        .env("FLY_MCP_AUTH_KEYS", &keys)
        .env("FLY_MCP_SANDBOX", "true")
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // Wait for /healthz, bounded.
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
        }
    })
    .await;
    assert!(ready.is_ok(), "the server never answered /healthz");

    let post = |auth: Option<&str>| {
        let mut req = http
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INITIALIZE);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("Bearer wrong-key")).await.unwrap().status(), 401);
    let ok = post(Some("Bearer image-env-test-key-0123456789"))
        .await
        .unwrap();
    assert!(ok.status().is_success(), "status {}", ok.status());
    child.kill().await.unwrap();
}

#[tokio::test]
async fn refuses_a_public_bind_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_loopback_port();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FLY_MCP_HTTP", format!("0.0.0.0:{port}"))
            .env("FLY_MCP_SANDBOX", "true")
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the server should refuse at once, not serve")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth") || stderr.contains("key"),
        "the refusal should say what is missing: {stderr}"
    );
}
