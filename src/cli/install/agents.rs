//! Terminal coding agents: OpenAI's Codex, GitHub's Copilot CLI, Gemini CLI and opencode.
//!
//! Each was checked against the real client (the interop suite installs the pinned
//! versions and runs their own `mcp list` / `mcp get` on what `install` wrote).
//!
//! Sources:
//! - Codex: `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`), project
//!   `.codex/config.toml` (trusted projects); `[mcp_servers.NAME]` with `command`, `args`,
//!   `[mcp_servers.NAME.env]`, or `url` with `bearer_token_env_var` naming the variable
//!   that holds the bearer token (developers.openai.com/codex/mcp and
//!   /codex/config-reference; Codex 0.169.0 `codex mcp get`).
//! - Copilot CLI: `$COPILOT_HOME/mcp-config.json` (default `~/.copilot/mcp-config.json`),
//!   workspace `.mcp.json` (`copilot mcp --help`, 1.0.102); `mcpServers` with `{type:
//!   "stdio", command, args, env, tools}` or `{type: "http", url, headers}`
//!   (docs.github.com, "Adding MCP servers for GitHub Copilot CLI"). It reads comments and
//!   trailing commas. Nothing documents variable expansion in headers, so a key is literal.
//! - Gemini CLI: `~/.gemini/settings.json`, project `.gemini/settings.json`; `mcpServers`
//!   with `{command, args, env}` or `{httpUrl, headers}`; string values expand `$VAR` and
//!   `${VAR}` (google-gemini/gemini-cli `docs/tools/mcp-server.md`, `docs/get-started/
//!   configuration.md`). Gemini 0.61.0 strips comments but rejects trailing commas.
//! - opencode: `$XDG_CONFIG_HOME/opencode/opencode.json` (or `opencode.jsonc`; default
//!   `~/.config/opencode`), project `opencode.json`; key `mcp`, entries `{type: "local",
//!   command: [..], environment, enabled}` or `{type: "remote", url, headers, enabled}`,
//!   `{env:VAR}` substituted anywhere (opencode.ai/docs/mcp-servers, /docs/config). JSONC.

use std::path::PathBuf;

use super::entry::{Node, Server, auth_headers, stdio_node};
use super::{ConfigBase, McpClient, Scope};

/// The configuration file of an agent for `scope`.
pub(crate) fn location(client: McpClient, scope: Scope, base: &ConfigBase) -> PathBuf {
    let project = &base.project_dir;
    match (client, scope) {
        (McpClient::Codex, Scope::User) => match base.var("CODEX_HOME") {
            Some(dir) => PathBuf::from(dir).join("config.toml"),
            None => base.home.join(".codex").join("config.toml"),
        },
        (McpClient::Codex, Scope::Project) => project.join(".codex").join("config.toml"),
        (McpClient::Gemini, Scope::User) => base.home.join(".gemini").join("settings.json"),
        (McpClient::Gemini, Scope::Project) => project.join(".gemini").join("settings.json"),
        (McpClient::Opencode, Scope::User) => {
            prefer_jsonc(base.xdg_config_home().join("opencode"), "opencode")
        }
        (McpClient::Opencode, Scope::Project) => prefer_jsonc(project.clone(), "opencode"),
        (_, _) => copilot_location(scope, base),
    }
}

/// The portable Copilot file (shared by Copilot CLI and VS Code).
pub(crate) fn copilot_location(scope: Scope, base: &ConfigBase) -> PathBuf {
    match scope {
        Scope::User => match base.var("COPILOT_HOME") {
            Some(dir) => PathBuf::from(dir).join("mcp-config.json"),
            None => base.home.join(".copilot").join("mcp-config.json"),
        },
        Scope::Project => base.project_dir.join(".mcp.json"),
    }
}

/// `STEM.jsonc` in `dir` when only that one exists, else `STEM.json`.
fn prefer_jsonc(dir: PathBuf, stem: &str) -> PathBuf {
    let json = dir.join(format!("{stem}.json"));
    let jsonc = dir.join(format!("{stem}.jsonc"));
    if !json.exists() && jsonc.exists() {
        jsonc
    } else {
        json
    }
}

/// The portable Copilot entry (Copilot CLI, VS Code).
pub(crate) fn copilot_entry(server: &Server) -> Node {
    match server {
        Server::Stdio { command, args, env } => {
            let mut node = stdio_node(Some("stdio"), command, args, env);
            node.push("tools", Node::List(vec![Node::str("*")]));
            node
        }
        Server::Remote { url, key } => {
            let mut node = Node::map([("type", Node::str("http")), ("url", Node::str(url))]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "", ""));
            }
            node.push("tools", Node::List(vec![Node::str("*")]));
            node
        }
    }
}

/// The entry an agent expects.
pub(crate) fn entry(client: McpClient, server: &Server) -> Node {
    match (client, server) {
        (McpClient::Codex, Server::Stdio { command, args, env }) => {
            stdio_node(None, command, args, env)
        }
        (McpClient::Codex, Server::Remote { url, key }) => {
            let mut node = Node::map([("url", Node::str(url))]);
            match key {
                Some(super::entry::Key::Reference(var)) => {
                    node.push("bearer_token_env_var", Node::str(var));
                }
                Some(literal) => {
                    node.push("http_headers", auth_headers(literal, "", ""));
                }
                None => {}
            }
            node
        }
        (McpClient::Gemini, Server::Stdio { command, args, env }) => {
            stdio_node(None, command, args, env)
        }
        (McpClient::Gemini, Server::Remote { url, key }) => {
            let mut node = Node::map([("httpUrl", Node::str(url))]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "${", "}"));
            }
            node
        }
        (McpClient::Opencode, Server::Stdio { command, args, env }) => {
            let mut line = vec![Node::str(command)];
            line.extend(args.iter().map(|a| Node::str(a)));
            let mut node = Node::map([("type", Node::str("local")), ("command", Node::List(line))]);
            if !env.is_empty() {
                node.push("environment", Node::string_map(env));
            }
            node.push("enabled", Node::Bool(true));
            node
        }
        (McpClient::Opencode, Server::Remote { url, key }) => {
            let mut node = Node::map([("type", Node::str("remote")), ("url", Node::str(url))]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "{env:", "}"));
            }
            node.push("enabled", Node::Bool(true));
            node
        }
        (_, _) => copilot_entry(server),
    }
}
