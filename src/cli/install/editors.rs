//! Editors: Cursor, VS Code, Windsurf, Zed, Kiro and the Cline extension.
//!
//! Sources:
//! - Cursor: `~/.cursor/mcp.json`, project `.cursor/mcp.json`, `mcpServers` with
//!   `{command, args, env}` or `{url, headers}`; `${env:NAME}` is interpolated in those
//!   fields (cursor.com/docs/context/mcp, "Config interpolation"). Strict JSON.
//! - VS Code: its MCP reference now documents the portable Copilot format as the one to
//!   use: `mcpServers` in `$COPILOT_HOME/mcp-config.json` (fallback
//!   `~/.copilot/mcp-config.json`) for the user and `.mcp.json` at the workspace root, read
//!   by the Copilot harness directly; the editor's own `mcp.json` (`servers`) is the
//!   deprecated "Local" format (code.visualstudio.com/docs/agents/reference/mcp-configuration).
//!   So `vscode` writes the portable files, the same ones as `copilot`.
//! - Windsurf: `~/.codeium/windsurf/mcp_config.json`, `mcpServers` with `{command, args,
//!   env}` or `{serverUrl, headers}`, `${env:VAR}` interpolated
//!   (docs.windsurf.com/windsurf/cascade/mcp). Strict JSON.
//! - Zed: `settings.json` in Zed's config dir (Linux: `$FLATPAK_XDG_CONFIG_HOME/zed`, else
//!   `$XDG_CONFIG_HOME/zed` or `~/.config/zed`; macOS `~/.config/zed`; Windows
//!   `%APPDATA%\Zed`: zed-industries/zed `crates/paths/src/paths.rs`, `config_dir`), project
//!   `.zed/settings.json`; `context_servers` entries are `{command, args, env}` or `{url,
//!   headers}` (`ContextServerSettingsContent`, untagged) and the settings migration
//!   `m_2025_11_25` removes the old `source` key, so we never write it. Headers are taken
//!   literally. JSONC.
//! - Kiro: `~/.kiro/settings/mcp.json`, workspace `.kiro/settings/mcp.json`, `mcpServers`
//!   with `{command, args, env}` or `{url, headers}`, `${VAR}` expanded
//!   (kiro.dev/docs/mcp/configuration). Read as strict JSON here: nothing documents
//!   comments.
//! - Cline (VS Code extension): `cline_mcp_settings.json` in the extension's global storage
//!   (`<VS Code user dir>/globalStorage/saoudrizwan.claude-dev/settings/`), `mcpServers`
//!   with `{type: "stdio", command, args, env}` or `{type: "streamableHttp", url, headers}`;
//!   headers are literal (docs.cline.bot/mcp/configuring-mcp-servers). Strict JSON.

use std::path::PathBuf;

use super::entry::{Node, Server, auth_headers};
use super::{ConfigBase, McpClient, Platform, Scope, agents};

/// The configuration file of an editor for `scope` (scope support is checked before).
pub(crate) fn location(client: McpClient, scope: Scope, base: &ConfigBase) -> PathBuf {
    let project = &base.project_dir;
    match (client, scope) {
        (McpClient::Cursor, Scope::User) => base.home.join(".cursor").join("mcp.json"),
        (McpClient::Cursor, Scope::Project) => project.join(".cursor").join("mcp.json"),
        (McpClient::Vscode, _) => agents::copilot_location(scope, base),
        (McpClient::Zed, Scope::User) => zed_config_dir(base).join("settings.json"),
        (McpClient::Zed, Scope::Project) => project.join(".zed").join("settings.json"),
        (McpClient::Kiro, Scope::User) => base.home.join(".kiro").join("settings").join("mcp.json"),
        (McpClient::Kiro, Scope::Project) => {
            project.join(".kiro").join("settings").join("mcp.json")
        }
        (McpClient::Cline, _) => base
            .config_dir
            .join("Code")
            .join("User")
            .join("globalStorage")
            .join("saoudrizwan.claude-dev")
            .join("settings")
            .join("cline_mcp_settings.json"),
        // Windsurf (user scope only) and anything routed here by mistake.
        (_, _) => base
            .home
            .join(".codeium")
            .join("windsurf")
            .join("mcp_config.json"),
    }
}

/// Zed's config directory, the way Zed itself finds it.
fn zed_config_dir(base: &ConfigBase) -> PathBuf {
    match base.platform {
        Platform::Windows => base.config_dir.join("Zed"),
        Platform::Linux => match base.var("FLATPAK_XDG_CONFIG_HOME") {
            Some(dir) => PathBuf::from(dir).join("zed"),
            None => base.xdg_config_home().join("zed"),
        },
        Platform::MacOs => base.home.join(".config").join("zed"),
    }
}

/// The entry an editor expects.
pub(crate) fn entry(client: McpClient, server: &Server) -> Node {
    match server {
        Server::Stdio { command, args, env } => {
            let mut node = match client {
                McpClient::Vscode => return agents::copilot_entry(server),
                McpClient::Cline => Node::map([("type", Node::str("stdio"))]),
                _ => Node::Map(Vec::new()),
            };
            node.push("command", Node::str(command));
            node.push("args", Node::strs(args));
            // Zed's documented shape always carries `env`; the others only when set.
            if client == McpClient::Zed || !env.is_empty() {
                node.push("env", Node::string_map(env));
            }
            node
        }
        Server::Remote { url, key } => {
            let (mut node, syntax) = match client {
                McpClient::Vscode => return agents::copilot_entry(server),
                McpClient::Cursor => (Node::map([("url", Node::str(url))]), ("${env:", "}")),
                McpClient::Windsurf => {
                    (Node::map([("serverUrl", Node::str(url))]), ("${env:", "}"))
                }
                McpClient::Kiro => (Node::map([("url", Node::str(url))]), ("${", "}")),
                McpClient::Cline => (
                    Node::map([
                        ("type", Node::str("streamableHttp")),
                        ("url", Node::str(url)),
                    ]),
                    ("", ""),
                ),
                _ => (Node::map([("url", Node::str(url))]), ("", "")),
            };
            if let Some(key) = key {
                node.push("headers", auth_headers(key, syntax.0, syntax.1));
            }
            node
        }
    }
}
