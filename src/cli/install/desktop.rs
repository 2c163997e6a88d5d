//! Desktop agents: LM Studio and goose; and `other`, the generic `mcpServers` entry.
//!
//! Sources:
//! - LM Studio: `~/.lmstudio/mcp.json` (`%USERPROFILE%\.lmstudio\mcp.json` on Windows),
//!   "Cursor's `mcp.json` notation": `mcpServers` with `{command, args, env}` or `{url,
//!   headers}`; headers are literal (lmstudio.ai/docs/app/mcp). Strict JSON.
//! - goose: `config.yaml` in `$XDG_CONFIG_HOME/goose` (default `~/.config/goose`; Windows
//!   `%APPDATA%\Block\goose\config`), key `extensions`, entries `{name, type: stdio, cmd,
//!   args, envs, enabled, timeout, description}` or `{type: streamable_http, uri, headers,
//!   …}`; headers are literal (block.github.io/goose/docs/guides/config-files and the
//!   `ExtensionConfig` schema in block/goose).
//! - other: the `mcpServers` entry most clients share (`{command, args, env}`), for
//!   `--print`, or written into `--config-file`.

use std::path::PathBuf;

use super::entry::{Node, Server, auth_headers, stdio_node};
use super::{ConfigBase, McpClient, Platform};

/// How long goose waits for a tool call, in seconds (its documented default).
const GOOSE_TIMEOUT_S: i64 = 300;

/// The configuration file of a desktop agent (`None` for `other`: it has no standard file).
pub(crate) fn location(client: McpClient, base: &ConfigBase) -> Option<PathBuf> {
    match client {
        McpClient::LmStudio => Some(base.home.join(".lmstudio").join("mcp.json")),
        McpClient::Goose => Some(match base.platform {
            Platform::Windows => base
                .config_dir
                .join("Block")
                .join("goose")
                .join("config")
                .join("config.yaml"),
            Platform::Linux | Platform::MacOs => {
                base.xdg_config_home().join("goose").join("config.yaml")
            }
        }),
        _ => None,
    }
}

/// The entry a desktop agent expects; `name` is the entry's own name (goose repeats it).
pub(crate) fn entry(client: McpClient, name: &str, server: &Server) -> Node {
    match (client, server) {
        (McpClient::Goose, Server::Stdio { command, args, env }) => Node::map([
            ("name", Node::str(name)),
            ("type", Node::str("stdio")),
            ("cmd", Node::str(command)),
            ("args", Node::strs(args)),
            ("envs", Node::string_map(env)),
            ("enabled", Node::Bool(true)),
            ("timeout", Node::Int(GOOSE_TIMEOUT_S)),
            ("description", Node::str(DESCRIPTION)),
        ]),
        (McpClient::Goose, Server::Remote { url, key }) => {
            let mut node = Node::map([
                ("name", Node::str(name)),
                ("type", Node::str("streamable_http")),
                ("uri", Node::str(url)),
            ]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "", ""));
            }
            node.push("enabled", Node::Bool(true));
            node.push("timeout", Node::Int(GOOSE_TIMEOUT_S));
            node.push("description", Node::str(DESCRIPTION));
            node
        }
        (_, Server::Stdio { command, args, env }) => stdio_node(None, command, args, env),
        (_, Server::Remote { url, key }) => {
            let mut node = Node::map([("url", Node::str(url))]);
            if let Some(key) = key {
                node.push("headers", auth_headers(key, "", ""));
            }
            node
        }
    }
}

/// What goose shows for the extension.
const DESCRIPTION: &str = "Fly.io apps, Machines, volumes, IPs, secrets and certificates";
