//! A per-user dev environment, driven the way an agent drives it: an MCP client spawns
//! `fly-machines-mcp serve --sandbox` over stdio (the built-in simulator with the demo
//! scenario; no token, no network), then calls, in order: `initialize`, `tools/list`,
//! `provision_environment` as a dry run (plan and price) and for real, `app_status`,
//! `app_logs`, `diagnose`, and `teardown_environment` — first without confirmation
//! (the server answers with what would be destroyed), then confirmed with the app
//! name. It prints one compact transcript line per step.
//!
//! ```sh
//! cargo build                                  # the server binary the example spawns
//! cargo run --example dev_env_agent -- [USER] [REGION]    # defaults: alice, iad
//! ```
//!
//! The server binary is `$FLY_MACHINES_MCP_BIN` if set, else the `fly-machines-mcp`
//! built beside the example (`target/<profile>/`), else `fly-machines-mcp` on `PATH`.
//! `tests/it/examples/` runs this flow in the test suite.

#[path = "support/mcp.rs"]
mod mcp;

use std::{io::Write, path::PathBuf, time::Instant};

use serde_json::json;

/// What the flow needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server binary.
    pub bin: PathBuf,
    /// Whose environment it is (also names the app, `dev-<user>`).
    pub user: String,
    /// Region code.
    pub region: String,
}

/// The app name of a user's environment: `dev-` and the user id, lowercased, with
/// anything but letters and digits turned into `-`.
pub fn app_name(user: &str) -> String {
    let slug: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("dev-{}", slug.trim_matches('-'))
}

/// Runs the whole flow, writing the transcript to `out`.
pub async fn run(opts: &Options, out: &mut dyn Write) -> Result<(), mcp::Error> {
    let t0 = Instant::now();
    let app = app_name(&opts.user);

    let client = mcp::spawn(
        &opts.bin,
        &["serve", "--sandbox", "--confirm", "argument"],
        false,
    )
    .await?;
    let (server, protocol) = mcp::server_identity(&client);
    writeln!(
        out,
        "initialize        ← {server}, protocol {protocol} ({} ms)",
        t0.elapsed().as_millis()
    )?;

    let tools = client.list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    writeln!(
        out,
        "tools/list        ← {} tools: {}",
        names.len(),
        names.join(", ")
    )?;
    for needed in [
        "provision_environment",
        "app_status",
        "app_logs",
        "diagnose",
        "teardown_environment",
    ] {
        if !names.contains(&needed) {
            return Err(format!("the server does not offer {needed}").into());
        }
    }

    let provision = json!({
        "app": app,
        "image": "nginx:1.27",
        "region": opts.region,
        "internal_port": 80,
        "volume": {"name": "home", "size_gb": 1, "path": "/home/dev"},
        "autostop": "suspend",
        "owner": opts.user,
        "expires_at": "8h",
    });
    let dry = mcp::with_arg(&provision, "dry_run", true);
    let plan = mcp::call_ok(&client, "provision_environment", dry).await?;
    writeln!(
        out,
        "provision (dry)   ← {}: {} steps, about ${}/month, nothing created ({} ms)",
        plan.str("status"),
        plan.count("plan"),
        plan.value("estimated_monthly_usd"),
        plan.ms()
    )?;

    let made = mcp::call_ok(&client, "provision_environment", provision).await?;
    writeln!(
        out,
        "provision         ← {}: {} created, machine {} {}, {} ({} ms)",
        made.str("status"),
        made.count("created"),
        made.str("machine_id"),
        made.str("machine_state"),
        made.str("url"),
        made.ms()
    )?;

    let status = mcp::call_ok(&client, "app_status", json!({ "app": app })).await?;
    let states: Vec<String> = status
        .structured
        .get("machines")
        .and_then(|m| m.as_array())
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "{} {}",
                        m.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                        m.get("state").and_then(|v| v.as_str()).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    writeln!(
        out,
        "app_status        ← {}: machines [{}], {} volume(s), {} IP(s) ({} ms)",
        status.str("status"),
        states.join(", "),
        status.count("volumes"),
        status.count("ips"),
        status.ms()
    )?;

    let logs = mcp::call_ok(&client, "app_logs", json!({ "app": app, "tail": 5 })).await?;
    writeln!(
        out,
        "app_logs          ← {} line(s) ({} ms)",
        logs.count("lines"),
        logs.ms()
    )?;

    let diag = mcp::call_ok(&client, "diagnose", json!({ "app": app })).await?;
    writeln!(
        out,
        "diagnose          ← {} finding(s), {} healthy machine(s) ({} ms)",
        diag.count("findings"),
        diag.value("healthy"),
        diag.ms()
    )?;

    // A destructive tool: the first call only shows what it would destroy.
    let asked = mcp::call(&client, "teardown_environment", json!({ "app": app })).await?;
    if !asked.is_error {
        return Err("teardown_environment went ahead without confirmation".into());
    }
    let would: Vec<&str> = asked
        .text
        .lines()
        .skip_while(|l| !l.starts_with("This call would destroy"))
        .skip(1)
        .take_while(|l| !l.starts_with("Nothing has been changed"))
        .collect();
    writeln!(
        out,
        "teardown          ← {}: would destroy {}",
        asked.first_line().trim_end_matches('.'),
        would.join("; ")
    )?;

    let gone = mcp::call_ok(
        &client,
        "teardown_environment",
        json!({ "app": app, "confirm": mcp::confirm_token(&asked.text).ok_or("the plan gave no confirmation token")? }),
    )
    .await?;
    writeln!(
        out,
        "teardown confirmed← removed {} resource(s), app deleted: {} ({} ms)",
        gone.count("removed"),
        gone.value("app_deleted"),
        gone.ms()
    )?;

    client.cancel().await?;
    writeln!(
        out,
        "done: {app} for {} provisioned and torn down in {} ms",
        opts.user,
        t0.elapsed().as_millis()
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let user = args.next().unwrap_or_else(|| "alice".to_owned());
    let region = args.next().unwrap_or_else(|| "iad".to_owned());
    let outcome = match mcp::server_binary() {
        Ok(bin) => run(&Options { bin, user, region }, &mut std::io::stdout()).await,
        Err(e) => Err(e),
    };
    mcp::exit_code("dev_env_agent", outcome)
}
