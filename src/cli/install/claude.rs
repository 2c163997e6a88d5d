//! Anthropic's clients: Claude Desktop and Claude Code.
//!
//! Sources:
//! - Claude Desktop: `claude_desktop_config.json` under `~/Library/Application Support/Claude`
//!   (macOS) and `%APPDATA%\Claude` (Windows), `mcpServers` with `{command, args, env}`
//!   (modelcontextprotocol.io, "Connect to local MCP servers"). The Windows MSIX build
//!   (since 2026-02) is virtualised: it reads
//!   `%LOCALAPPDATA%\Packages\Claude_<publisher>\LocalCache\Roaming\Claude\` and ignores
//!   `%APPDATA%`. It reads the file with `JSON.parse` (strict JSON). Remote servers are
//!   added as custom connectors in its settings, not in this file.
//! - Claude Code: user servers in `~/.claude.json` (`$CLAUDE_CONFIG_DIR/.claude.json` when
//!   set), project servers in `.mcp.json`; `{type: "stdio", command, args, env}` or
//!   `{type: "http", url, headers}`, with `${VAR}` expanded in both files
//!   (code.claude.com/docs/en/mcp, "Environment variable expansion"). Checked with Claude
//!   Code 2.1.328: `claude mcp add-json` writes `$CLAUDE_CONFIG_DIR/.claude.json`, `claude
//!   mcp list` connects to a user-scope HTTP entry whose header is `Bearer ${VAR}`, and the
//!   running client rewrites `~/.claude.json` (so an outside edit can be overwritten).

use std::path::PathBuf;

use super::entry::{Node, Server, auth_headers, stdio_node};
use super::{ConfigBase, InstallError, McpClient, Platform, Scope};

/// The configuration file of a Claude client for `scope`.
pub(crate) fn location(
    client: McpClient,
    scope: Scope,
    base: &ConfigBase,
) -> Result<PathBuf, InstallError> {
    Ok(match (client, scope) {
        (McpClient::ClaudeCode, Scope::User) => match base.var("CLAUDE_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir).join(".claude.json"),
            None => base.home.join(".claude.json"),
        },
        (McpClient::ClaudeCode, Scope::Project) => base.project_dir.join(".mcp.json"),
        (_, _) => desktop_config(base)?,
    })
}

/// `claude_desktop_config.json`: the MSIX package's folder on Windows when that build is
/// installed, else the platform's config folder.
fn desktop_config(base: &ConfigBase) -> Result<PathBuf, InstallError> {
    const FILE: &str = "claude_desktop_config.json";
    if base.platform == Platform::Windows {
        let packages = base.local_data_dir.join("Packages");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&packages)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("Claude_"))
                    .map(|e| e.path().join("LocalCache").join("Roaming").join("Claude"))
                    .filter(|dir| dir.is_dir())
                    .map(|dir| dir.join(FILE))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        match found.as_slice() {
            [] => {}
            [only] => return Ok(only.clone()),
            _ => {
                return Err(InstallError::AmbiguousConfig {
                    client: "Claude Desktop",
                    candidates: found,
                });
            }
        }
    }
    Ok(base.config_dir.join("Claude").join(FILE))
}

/// The entry a Claude client expects.
pub(crate) fn entry(client: McpClient, server: &Server) -> Node {
    match (client, server) {
        (McpClient::ClaudeCode, Server::Stdio { command, args, env }) => {
            stdio_node(Some("stdio"), command, args, env)
        }
        (McpClient::ClaudeCode, Server::Remote { url, key }) => {
            let mut node = Node::map([("type", Node::str("http")), ("url", Node::str(url))]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "${", "}"));
            }
            node
        }
        (_, Server::Stdio { command, args, env }) => stdio_node(None, command, args, env),
        // Refused before an entry is built (`KeySupport::None` for Claude Desktop).
        (_, Server::Remote { url, .. }) => Node::map([("url", Node::str(url))]),
    }
}
