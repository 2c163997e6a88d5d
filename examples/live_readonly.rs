//! Read-only, against real Fly: an MCP client spawns `fly-machines-mcp serve
//! --read-only` over stdio with your `FLY_API_TOKEN`, checks that only read tools are
//! offered, then calls `list_apps` and, if you name an app, `app_status` for it.
//! Nothing is created, changed or destroyed: the server refuses every write tool.
//!
//! ```sh
//! cargo build
//! FLY_API_TOKEN="$(fly tokens create readonly --expiry 24h)" cargo run --example live_readonly -- [APP]
//! ```
//!
//! This is the one example that reaches the internet (`api.machines.dev`,
//! `api.fly.io`). Without `FLY_API_TOKEN` it prints how to run it and exits with
//! status 0, so building or running it by accident does nothing; it is never run by the
//! test suite or CI. The token is handed to the server through its environment only;
//! the example never prints it.
//!
//! The server binary is `$FLY_MACHINES_MCP_BIN` if set, else the `fly-machines-mcp`
//! built beside the example (`target/<profile>/`), else `fly-machines-mcp` on `PATH`.

#[path = "support/mcp.rs"]
mod mcp;

use std::{io::Write, path::Path};

use serde_json::json;

async fn run(bin: &Path, app: Option<&str>, out: &mut dyn Write) -> Result<(), mcp::Error> {
    let client = mcp::spawn(bin, &["serve", "--read-only"], true).await?;
    let (server, protocol) = mcp::server_identity(&client);
    let tools = client.list_all_tools().await?;
    let writers: Vec<&str> = tools
        .iter()
        .filter(|t| {
            t.annotations
                .as_ref()
                .and_then(|a| a.read_only_hint)
                .is_none_or(|read_only| !read_only)
        })
        .map(|t| t.name.as_ref())
        .collect();
    if !writers.is_empty() {
        return Err(format!("--read-only still offers {}", writers.join(", ")).into());
    }
    writeln!(
        out,
        "connected   ← {server}, protocol {protocol}; {} read-only tools",
        tools.len()
    )?;

    let apps = mcp::call_ok(&client, "list_apps", json!({})).await?;
    writeln!(out, "list_apps   ← ({} ms)", apps.ms())?;
    for line in apps.text.lines().take(40) {
        writeln!(out, "  {line}")?;
    }

    if let Some(app) = app {
        let status = mcp::call_ok(&client, "app_status", json!({ "app": app })).await?;
        writeln!(out, "app_status  ← ({} ms)", status.ms())?;
        for line in status.text.lines().take(60) {
            writeln!(out, "  {line}")?;
        }
    } else {
        writeln!(out, "(name an app to see its status: -- APP)")?;
    }
    client.cancel().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::var("FLY_API_TOKEN").map_or(true, |t| t.trim().is_empty()) {
        println!(
            "live_readonly: FLY_API_TOKEN is not set, so there is nothing to do (this example talks to real Fly, read-only).\n\
             Run it as: FLY_API_TOKEN=\"$(fly tokens create readonly --expiry 24h)\" cargo run --example live_readonly -- [APP]"
        );
        return std::process::ExitCode::SUCCESS;
    }
    let app = std::env::args().nth(1);
    let outcome = match mcp::server_binary() {
        Ok(bin) => run(&bin, app.as_deref(), &mut std::io::stdout()).await,
        Err(e) => Err(e),
    };
    mcp::exit_code("live_readonly", outcome)
}
