//! What the MCP-client examples share: finding the `fly-machines-mcp` binary, spawning
//! it as a stdio MCP server (an rmcp client, as an agent's host would), calling a tool
//! and reducing the result to what a transcript line needs.
//!
//! It knows nothing of any one flow; the examples include it with
//! `#[path = "support/mcp.rs"] mod mcp;` (Cargo does not build this directory as an
//! example of its own).

// Each example uses only some of these helpers.
#![allow(dead_code)]

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::Value;

/// The error every example returns: all of them end in a message for a human.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Environment variable naming the server binary to spawn.
pub const BIN_ENV: &str = "FLY_MACHINES_MCP_BIN";

/// A connected MCP client with the server as its child process.
pub type Client = RunningService<RoleClient, ()>;

/// The server binary: `$FLY_MACHINES_MCP_BIN` if set; else the `fly-machines-mcp`
/// built beside this example (`target/<profile>/`, where `cargo build` puts it); else
/// `fly-machines-mcp` on `PATH`.
pub fn server_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(BIN_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/<name> → target/<profile>/fly-machines-mcp
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("fly-machines-mcp{}", std::env::consts::EXE_SUFFIX)));
    match beside {
        Some(path) if path.is_file() => Ok(path),
        _ => Ok(PathBuf::from("fly-machines-mcp")),
    }
}

/// Spawns `bin` with `args` as a stdio MCP server and runs the MCP handshake
/// (`initialize`, then `notifications/initialized`).
///
/// Every `FLY_MCP_*` variable of this process is removed from the child's
/// environment, so the flags given here are the whole configuration; the Fly token
/// variables pass through unless `keep_fly_token` is false. The server's stderr (one
/// line in sandbox mode, warnings otherwise) goes to this process's stderr.
pub async fn spawn(bin: &Path, args: &[&str], keep_fly_token: bool) -> Result<Client, Error> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let token_var = matches!(name.as_ref(), "FLY_API_TOKEN" | "FLY_ACCESS_TOKEN");
        if name.starts_with("FLY_MCP_") || (token_var && !keep_fly_token) {
            cmd.env_remove(&key);
        }
    }
    cmd.stderr(std::process::Stdio::inherit());
    let transport = TokioChildProcess::new(cmd).map_err(|e| {
        format!(
            "cannot start {} ({e}); build it first with `cargo build`, or set {BIN_ENV}",
            bin.display()
        )
    })?;
    let client = ()
        .serve(transport)
        .await
        .map_err(|e| format!("MCP handshake with {} failed: {e}", bin.display()))?;
    Ok(client)
}

/// `name version` of the server and the protocol version it agreed to.
pub fn server_identity(client: &Client) -> (String, String) {
    let Some(info) = client.peer_info() else {
        return ("(unknown server)".to_owned(), "?".to_owned());
    };
    let name = info.server_info.as_ref().map_or_else(
        || "(unnamed server)".to_owned(),
        |s| format!("{} {}", s.name, s.version),
    );
    let protocol = serde_json::to_value(&info.protocol_version)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    (name, protocol)
}

/// One tool result, reduced.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `isError` of the result: the tool ran and failed (or asked for confirmation).
    pub is_error: bool,
    /// `structuredContent`, when the tool returned it.
    pub structured: Value,
    /// The text content, joined.
    pub text: String,
    /// Round trip as this client saw it.
    pub elapsed: Duration,
}

impl Reply {
    /// A string field of the structured result (`""` when absent).
    pub fn str(&self, key: &str) -> &str {
        self.structured
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Any top-level field of the structured result as text (`?` when absent).
    pub fn value(&self, key: &str) -> String {
        self.structured
            .get(key)
            .map_or_else(|| "?".to_owned(), ToString::to_string)
    }

    /// Length of an array field of the structured result (0 when absent).
    pub fn count(&self, key: &str) -> usize {
        self.structured
            .get(key)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    /// The first line of the text content.
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// Milliseconds of the round trip.
    pub fn ms(&self) -> u128 {
        self.elapsed.as_millis()
    }
}

/// `args` (a JSON object) with one more argument.
pub fn with_arg(args: &Value, key: &str, value: impl Into<Value>) -> Value {
    let mut args = args.clone();
    if let Some(obj) = args.as_object_mut() {
        obj.insert(key.to_owned(), value.into());
    }
    args
}

/// The confirmation token a destructive tool's plan asks to repeat the call with
/// (argument confirmation: `"confirm": "cfm-…"`).
pub fn confirm_token(plan_text: &str) -> Option<String> {
    let start = plan_text.find("\"confirm\": \"cfm-")? + "\"confirm\": \"".len();
    let rest = plan_text.get(start..)?;
    Some(rest.get(..rest.find('"')?)?.to_owned())
}

/// `tools/call` with a JSON object of arguments. A protocol failure is an `Err`; a
/// tool that ran and failed is an `Ok` with `is_error` set.
pub async fn call(client: &Client, tool: &str, args: Value) -> Result<Reply, Error> {
    let Value::Object(map) = args else {
        return Err(format!("{tool}: arguments must be a JSON object").into());
    };
    let params = CallToolRequestParams::new(Cow::Owned(tool.to_owned())).with_arguments(map);
    let started = Instant::now();
    let result: CallToolResult = client
        .call_tool(params)
        .await
        .map_err(|e| format!("tools/call {tool}: {e}"))?;
    let elapsed = started.elapsed();
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Reply {
        is_error: result.is_error == Some(true),
        structured: result.structured_content.unwrap_or(Value::Null),
        text,
        elapsed,
    })
}

/// Like [`call`], but a tool error is an `Err` carrying the tool's message.
pub async fn call_ok(client: &Client, tool: &str, args: Value) -> Result<Reply, Error> {
    let reply = call(client, tool, args).await?;
    if reply.is_error {
        return Err(format!("{tool} failed: {}", reply.text).into());
    }
    Ok(reply)
}

/// The process exit status for an example's outcome; an error is printed first.
pub fn exit_code(example: &str, outcome: Result<(), Error>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{example}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
