//! Malformed JSON-RPC frames over a raw pipe (no rmcp client to tidy them up):
//! arguments of the wrong JSON type, missing or mistyped tool names, missing params.
//! Every request with an id gets an answer and the server keeps serving.

use std::time::Duration;

use fly_machines_mcp::tools::{Catalog, McpServer, Redactor};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{demo_sim, every_tool, sim_client};
use crate::server::gate_with;

const TOKEN: &str = "frames-sim-token-3c3c";

#[tokio::test]
async fn malformed_tool_calls_are_answered_and_the_server_survives() {
    let sim = demo_sim(TOKEN).await;
    let gate = gate_with(
        Catalog::all().unwrap(),
        &every_tool(),
        sim_client(&sim, TOKEN),
        Redactor::new(),
        None,
    );
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = McpServer::new(gate).serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (read, mut write) = tokio::io::split(client_io);
    let mut lines = BufReader::new(read).lines();
    let mut send = async |v: Value| {
        let mut s = match v {
            Value::String(raw) => raw,
            v => v.to_string(),
        };
        s.push('\n');
        write.write_all(s.as_bytes()).await.unwrap();
    };
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}}),
    )
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;

    let bad_params = [
        json!({"name": "app_status", "arguments": "cdn-demo"}),
        json!({"name": "app_status", "arguments": ["cdn-demo"]}),
        json!({"name": "app_status", "arguments": 42}),
        json!({"name": "app_status", "arguments": null}),
        json!({"name": 17, "arguments": {}}),
        json!({"arguments": {"app": "cdn-demo"}}),
        json!({"name": "no_such_tool_ü", "arguments": {}}),
        json!({"name": "x".repeat(100_000), "arguments": {}}),
        Value::Null,
    ];
    for (i, p) in bad_params.iter().enumerate() {
        send(json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call", "params": p})).await;
    }
    // params that are not an object at all do not decode as a request in rmcp 3.9 and
    // go unanswered (JSON-RPC would want -32602); the server must still survive them,
    // and a line that is not JSON.
    send(json!({"jsonrpc": "2.0", "id": 98, "method": "tools/call", "params": "not an object"}))
        .await;
    send(Value::String(
        r#"{"jsonrpc": "2.0", "id": 97, "meth"#.to_owned(),
    ))
    .await;
    send(json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})).await;

    let mut answered = std::collections::BTreeSet::new();
    let mut listed = false;
    while !listed {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the server stopped answering")
            .unwrap()
            .expect("the server closed the pipe");
        let v: Value = serde_json::from_str(&line).unwrap();
        if let Some(id) = v["id"].as_u64() {
            assert!(
                v.get("result").is_some() || v.get("error").is_some(),
                "{line}"
            );
            if id == 99 {
                listed = v["result"]["tools"]
                    .as_array()
                    .is_some_and(|t| t.len() >= 10);
                assert!(listed, "{line}");
            } else if id > 0 && id < 90 {
                answered.insert(id);
            }
        }
    }
    assert_eq!(answered.len(), bad_params.len(), "answered {answered:?}");
    sim.shutdown().await;
}
