//! The warm-pool flow through MCP (the opt-in `fleet` toolset): an MCP client spawns
//! `fly-machines-mcp serve --sandbox --toolsets provision,fleet` over stdio, creates the
//! app that holds the pool (`provision_environment`: `pool_fill` never creates apps),
//! fills a pool of suspended environments (`pool_fill`), reads it (`pool_status`),
//! claims one for each of two users (`claim_environment`; the first user claims twice
//! and gets the same machine back, renewed), releases one (`release_environment`) and
//! asks `reap_expired` what is past its expiry (nothing yet: every claim is fresh), then
//! confirms it. Each claim's round trip is printed: a claim resumes a suspended machine
//! instead of creating one, which is the point of a pool.
//!
//! ```sh
//! cargo build                                   # the server binary the example spawns
//! cargo run --example pool_claim -- [POOL_SIZE]   # default 3 (at least 2)
//! ```
//!
//! The server binary is `$FLY_MACHINES_MCP_BIN` if set, else the `fly-machines-mcp`
//! built beside the example (`target/<profile>/`), else `fly-machines-mcp` on `PATH`.
//! The sandbox runs in real time with Fly-like latencies, and creates are paced at
//! Fly's rate (one per second per app), so a pool of 3 fills in a few seconds.
//! `tests/it/examples/` runs this flow in the test suite.

#[path = "support/mcp.rs"]
mod mcp;

use std::{io::Write, path::PathBuf, time::Instant};

use serde_json::json;

/// The app holding the pool.
pub const APP: &str = "devboxes";
/// The pool's name.
pub const POOL: &str = "dev";

/// What the flow needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server binary.
    pub bin: PathBuf,
    /// Slots to fill (at least 2: two users claim).
    pub size: u32,
}

fn pool_line(reply: &mcp::Reply) -> String {
    format!(
        "{} free, {} claimed, {} expired, {} broken",
        reply.value("free"),
        reply.value("claimed"),
        reply.value("expired"),
        reply.value("broken")
    )
}

/// Runs the whole flow, writing the transcript to `out`.
pub async fn run(opts: &Options, out: &mut dyn Write) -> Result<(), mcp::Error> {
    if opts.size < 2 {
        return Err("the pool needs at least 2 slots (two users claim)".into());
    }
    let t0 = Instant::now();
    let client = mcp::spawn(
        &opts.bin,
        &[
            "serve",
            "--sandbox",
            "--toolsets",
            "provision,fleet",
            "--confirm",
            "argument",
        ],
        false,
    )
    .await?;
    let (server, protocol) = mcp::server_identity(&client);
    let tools = client.list_all_tools().await?;
    writeln!(
        out,
        "connected         ← {server}, protocol {protocol}, {} tools",
        tools.len()
    )?;

    let app = mcp::call_ok(
        &client,
        "provision_environment",
        json!({
            "app": APP, "image": "nginx:1.27", "region": "iad",
            "machine_name": "router", "internal_port": 80,
        }),
    )
    .await?;
    writeln!(
        out,
        "app               ← {} {} (machine router {}) ({} ms)",
        APP,
        app.str("status"),
        app.str("machine_state"),
        app.ms()
    )?;

    let fill = mcp::call_ok(
        &client,
        "pool_fill",
        json!({
            "app": APP, "pool": POOL, "size": opts.size, "image": "nginx:1.27",
            "region": "iad", "internal_port": 8080, "park": "suspended",
        }),
    )
    .await?;
    writeln!(
        out,
        "pool_fill         ← {} created, {} failed ({} ms)",
        fill.value("created"),
        fill.value("failed"),
        fill.ms()
    )?;

    let pool = json!({ "app": APP, "pool": POOL });
    let status = mcp::call_ok(&client, "pool_status", pool.clone()).await?;
    writeln!(out, "pool_status       ← {}", pool_line(&status))?;

    let mut claim_ms = Vec::new();
    let mut alice_machine = String::new();
    for (user, label) in [
        ("alice", "claim alice       "),
        ("bob", "claim bob         "),
        ("alice", "claim alice again "),
    ] {
        let claim = mcp::call_ok(
            &client,
            "claim_environment",
            json!({ "app": APP, "pool": POOL, "user": user, "ttl_minutes": 120 }),
        )
        .await?;
        let renewed = claim.structured.get("renewed") == Some(&json!(true));
        writeln!(
            out,
            "{label}← machine {} from {}{} in {} ms",
            claim.str("machine_id"),
            claim.str("started_from"),
            if renewed { ", renewed" } else { "" },
            claim.ms()
        )?;
        if user == "alice" {
            if alice_machine.is_empty() {
                alice_machine = claim.str("machine_id").to_owned();
            } else if alice_machine != claim.str("machine_id") {
                return Err("alice's second claim returned another machine".into());
            }
        }
        claim_ms.push(claim.ms());
    }
    let first_two = claim_ms.iter().take(2).copied();
    writeln!(
        out,
        "claim timings     ← first claims {} ms, repeat {} ms",
        first_two
            .map(|ms| ms.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        claim_ms.get(2).copied().unwrap_or_default()
    )?;

    let status = mcp::call_ok(&client, "pool_status", pool.clone()).await?;
    writeln!(out, "pool_status       ← {}", pool_line(&status))?;

    let release = mcp::call_ok(
        &client,
        "release_environment",
        json!({ "app": APP, "pool": POOL, "user": "bob", "mode": "recycle" }),
    )
    .await?;
    writeln!(
        out,
        "release bob       ← {} ({} ms)",
        release.first_line(),
        release.ms()
    )?;

    let asked = mcp::call(&client, "reap_expired", pool.clone()).await?;
    writeln!(
        out,
        "reap_expired      ← {}",
        asked.text.lines().nth(2).unwrap_or(asked.first_line())
    )?;
    let token = mcp::confirm_token(&asked.text).ok_or("the plan gave no confirmation token")?;
    let confirmed = mcp::with_arg(&pool, "confirm", token);
    let reaped = mcp::call_ok(&client, "reap_expired", confirmed).await?;
    writeln!(
        out,
        "reap confirmed    ← {} destroyed",
        reaped.value("destroyed")
    )?;

    let status = mcp::call_ok(&client, "pool_status", pool).await?;
    writeln!(out, "pool_status       ← {}", pool_line(&status))?;

    client.cancel().await?;
    writeln!(out, "done in {} ms", t0.elapsed().as_millis())?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let size = match std::env::args().nth(1).map(|s| s.parse::<u32>()) {
        None => Ok(3),
        Some(Ok(n)) => Ok(n),
        Some(Err(e)) => Err(format!("POOL_SIZE: {e}")),
    };
    let outcome = match (size, mcp::server_binary()) {
        (Ok(size), Ok(bin)) => run(&Options { bin, size }, &mut std::io::stdout()).await,
        (Err(e), _) => Err(e.into()),
        (_, Err(e)) => Err(e),
    };
    mcp::exit_code("pool_claim", outcome)
}
