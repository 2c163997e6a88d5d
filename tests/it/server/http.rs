//! The HTTP transport: auth, Host/Origin validation, body limit, revocation without
//! restart, the refusal to expose an unauthenticated server, and a real rmcp client.

use std::{path::Path, sync::Arc, time::Duration};

use fly_machines_mcp::tools::{
    Gate, PolicyOptions, Redactor, Selection,
    http::{HttpAuth, HttpOptions, start},
};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

use super::fixtures::{Runs, catalog};
use super::{gate_with, offline_client};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn gate() -> Arc<Gate> {
    let opts = PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        ..PolicyOptions::default()
    };
    gate_with(
        catalog(Runs::default()),
        &opts,
        offline_client(),
        Redactor::new(),
        None,
    )
}

fn keys_opts(path: &Path) -> HttpOptions {
    HttpOptions {
        auth: HttpAuth::Keys(path.to_owned()),
        max_body_bytes: 64 * 1024,
        ..HttpOptions::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(
    url: &str,
    key: Option<&str>,
    body: String,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn auth_host_origin_body_limit_and_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "# server keys\nci:key-one-0123456789\nkey-two-0123456789\n",
    )
    .unwrap();
    let server = start(gate(), "127.0.0.1:0".parse().unwrap(), keys_opts(&keys))
        .await
        .unwrap();
    let url = server.mcp_url();

    // Health needs no auth.
    let health = http()
        .get(format!("http://{}/healthz", server.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // No key, wrong key → 401.
    assert_eq!(post(&url, None, INIT.into(), &[]).await.status(), 401);
    assert_eq!(
        post(&url, Some("nope"), INIT.into(), &[]).await.status(),
        401
    );
    // A good key → 200.
    assert_eq!(
        post(&url, Some("key-one-0123456789"), INIT.into(), &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&url, Some("key-two-0123456789"), INIT.into(), &[])
            .await
            .status(),
        200
    );

    // Wrong Host and wrong Origin are rejected even with a good key.
    let r = post(
        &url,
        Some("key-one-0123456789"),
        INIT.into(),
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post(
        &url,
        Some("key-one-0123456789"),
        INIT.into(),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post(
        &url,
        Some("key-one-0123456789"),
        INIT.into(),
        &[("origin", "http://localhost:6274")],
    )
    .await;
    assert_eq!(r.status(), 200);

    // Oversized request → 413, and the server keeps serving.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    assert_eq!(
        post(&url, Some("key-one-0123456789"), big, &[])
            .await
            .status(),
        413
    );

    // Revoke key two by editing the file: 401 without a restart; key one still works.
    std::fs::write(&keys, "ci:key-one-0123456789\n").unwrap();
    assert_eq!(
        post(&url, Some("key-two-0123456789"), INIT.into(), &[])
            .await
            .status(),
        401
    );
    assert_eq!(
        post(&url, Some("key-one-0123456789"), INIT.into(), &[])
            .await
            .status(),
        200
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_real_client_lists_and_calls_tools_over_http_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "k:secret-key-abcdef\n").unwrap();
    let server = start(gate(), "127.0.0.1:0".parse().unwrap(), keys_opts(&keys))
        .await
        .unwrap();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url())
            .auth_header("secret-key-abcdef"),
    );
    let client = ().serve(transport).await.unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "fly-machines-mcp");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "echo"));
    let r = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(
                json!({"app": "a", "text": "ok", "count": 1})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        r.structured_content,
        Some(json!({"app": "a", "text": "ok"}))
    );
    client.cancel().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_public_bind_without_auth_refuses_to_start() {
    let err = start(gate(), "0.0.0.0:0".parse().unwrap(), HttpOptions::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("without authentication") && msg.contains("--auth-keys"),
        "{msg}"
    );
}

#[test]
fn the_binary_refuses_a_public_bind_without_auth() {
    let out = assert_cmd::Command::cargo_bin("fly-machines-mcp")
        .unwrap()
        .args(["serve", "--sandbox", "--http", "0.0.0.0:0"])
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{err}"
    );
}
