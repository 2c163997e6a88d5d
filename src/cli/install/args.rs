//! The `install` command line: its options, the `serve …` arguments they become, and
//! refusing any Fly token offered through them.
//!
//! Knows no client and no file.

use std::path::PathBuf;

use super::{DEFAULT_ENTRY_NAME, DEFAULT_KEY_ENV, InstallError, McpClient, Scope};

/// `fly-machines-mcp install CLIENT [options] [-- extra serve args]`.
///
/// The serve options given here become arguments of the `serve` command written into the
/// client's entry. A Fly token is never written: log in once with `auth login` (or give
/// the client's environment `FLY_API_TOKEN`).
#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// The MCP client to configure.
    #[arg(value_enum)]
    pub client: McpClient,

    /// Which of the client's configuration files to edit (project scope where the client has one).
    #[arg(long, value_enum, default_value = "user", env = "FLY_MCP_SCOPE")]
    pub scope: Scope,

    /// Name of the server entry in the client's configuration.
    #[arg(long, default_value = DEFAULT_ENTRY_NAME, env = "FLY_MCP_NAME")]
    pub name: String,

    /// Print the change as a diff and write nothing.
    #[arg(long, env = "FLY_MCP_DRY_RUN")]
    pub dry_run: bool,

    /// Remove the entry instead of adding it.
    #[arg(long, env = "FLY_MCP_REMOVE")]
    pub remove: bool,

    /// Project directory for `--scope project` (default: the current directory).
    #[arg(long, env = "FLY_MCP_PROJECT_DIR")]
    pub project_dir: Option<PathBuf>,

    /// Edit this file instead of the client's standard location (same format).
    #[arg(long, env = "FLY_MCP_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,

    /// Command the client runs (default: the absolute path of this binary).
    #[arg(long = "server-command", env = "FLY_MCP_SERVER_COMMAND")]
    pub server_command: Option<PathBuf>,

    /// Serve the built-in sandbox simulator instead of Fly (no token needed).
    #[arg(long, env = "FLY_MCP_SANDBOX")]
    pub sandbox: bool,

    /// Toolsets to enable (comma-separated, or `all`).
    #[arg(long, value_delimiter = ',', env = "FLY_MCP_TOOLSETS")]
    pub toolsets: Vec<String>,

    /// Only these tools (comma-separated).
    #[arg(long, value_delimiter = ',', env = "FLY_MCP_TOOLS")]
    pub tools: Vec<String>,

    /// Hide these tools (comma-separated).
    #[arg(long, value_delimiter = ',', env = "FLY_MCP_EXCLUDE_TOOLS")]
    pub exclude_tools: Vec<String>,

    /// Only read-only tools are listed and callable.
    #[arg(long, env = "FLY_MCP_READ_ONLY")]
    pub read_only: bool,

    /// No destructive tools.
    #[arg(long, env = "FLY_MCP_NO_DESTROY")]
    pub no_destroy: bool,

    /// Confirmation mode for destructive tools.
    #[arg(long, value_parser = ["elicit", "argument", "never"], env = "FLY_MCP_CONFIRM")]
    pub confirm: Option<String>,

    /// Only these orgs (glob; repeatable).
    #[arg(long, env = "FLY_MCP_ALLOW_ORG")]
    pub allow_org: Vec<String>,

    /// Only these apps (glob, e.g. `dev-*`; repeatable).
    #[arg(long, env = "FLY_MCP_ALLOW_APP")]
    pub allow_app: Vec<String>,

    /// Mutate only machines this server created.
    #[arg(long, env = "FLY_MCP_OWNED_ONLY")]
    pub owned_only: bool,

    /// Audit log file (one JSON line per mutating call).
    #[arg(long, env = "FLY_MCP_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// Default Fly org slug, written as `FLY_ORG` into the entry's environment.
    #[arg(long, env = "FLY_ORG")]
    pub org: Option<String>,

    /// Extra environment for the server, `KEY=VALUE` (repeatable; never a token).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Print the snippet and where it goes instead of editing a file (any client).
    #[arg(long, env = "FLY_MCP_PRINT")]
    pub print: bool,

    /// Configure a running server's Streamable HTTP endpoint (`https://HOST/mcp`) instead
    /// of a command the client starts.
    #[arg(long, value_name = "URL", env = "FLY_MCP_URL")]
    pub url: Option<String>,

    /// With --url: the environment variable that holds the server key. Clients that can
    /// reference a variable get the reference, never the key.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_KEY_ENV, env = "FLY_MCP_KEY_ENV")]
    pub key_env: String,

    /// With --url: the server needs no key (a loopback server without --auth-keys).
    #[arg(long, env = "FLY_MCP_NO_KEY", conflicts_with = "allow_literal_key")]
    pub no_key: bool,

    /// With --url, for clients that can only hold the key itself: read it from --key-env
    /// now and write it into the client's file.
    #[arg(long, env = "FLY_MCP_ALLOW_LITERAL_KEY")]
    pub allow_literal_key: bool,

    /// Refused: a token never goes into a client config (use `auth login`).
    #[arg(long, hide = true)]
    pub access_token: Option<String>,

    /// Further arguments for `serve`, after `--`.
    #[arg(last = true)]
    pub serve_args: Vec<String>,
}

/// Prefixes of Fly macaroon tokens, and the scheme word a pasted token may carry.
const TOKEN_MARKERS: [&str; 4] = ["fm1r_", "fm1a_", "fm2_", "FlyV1 "];
/// Environment variables and flags that carry a token.
const TOKEN_ENV_KEYS: [&str; 3] = ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "FLY_MCP_ACCESS_TOKEN"];

pub(crate) fn looks_like_token(value: &str) -> bool {
    TOKEN_MARKERS.iter().any(|marker| value.contains(marker))
}

/// Refuses anything in the arguments that would put a token into the client's file.
pub(crate) fn refuse_tokens(args: &InstallArgs) -> Result<(), InstallError> {
    let refuse = |what: &str| {
        Err(InstallError::TokenRefused {
            what: what.to_owned(),
        })
    };
    if args.access_token.is_some() {
        return refuse("--access-token");
    }
    for arg in &args.serve_args {
        if arg == "--access-token" || arg.starts_with("--access-token=") {
            return refuse("--access-token after --");
        }
        if looks_like_token(arg) {
            return refuse("an argument after -- looks like a Fly token");
        }
    }
    for entry in &args.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(key, _)| key);
        if TOKEN_ENV_KEYS.contains(&key) {
            return refuse(&format!("--env {key}"));
        }
        if looks_like_token(entry) {
            return refuse(&format!("--env {key}: the value looks like a Fly token"));
        }
    }
    Ok(())
}

/// The `serve …` arguments the entry runs.
pub fn serve_arguments(args: &InstallArgs) -> Vec<String> {
    let mut out = vec!["serve".to_owned()];
    if args.sandbox {
        out.push("--sandbox".to_owned());
    }
    let lists = [
        ("--toolsets", &args.toolsets),
        ("--tools", &args.tools),
        ("--exclude-tools", &args.exclude_tools),
    ];
    for (flag, values) in lists {
        if !values.is_empty() {
            out.push(flag.to_owned());
            out.push(values.join(","));
        }
    }
    let switches = [
        ("--read-only", args.read_only),
        ("--no-destroy", args.no_destroy),
        ("--owned-only", args.owned_only),
    ];
    for (flag, on) in switches {
        if on {
            out.push(flag.to_owned());
        }
    }
    if let Some(confirm) = &args.confirm {
        out.push("--confirm".to_owned());
        out.push(confirm.clone());
    }
    for glob in &args.allow_org {
        out.push("--allow-org".to_owned());
        out.push(glob.clone());
    }
    for glob in &args.allow_app {
        out.push("--allow-app".to_owned());
        out.push(glob.clone());
    }
    if let Some(path) = &args.audit_log {
        out.push("--audit-log".to_owned());
        out.push(path.display().to_string());
    }
    out.extend(args.serve_args.iter().cloned());
    out
}

/// The entry's environment: `FLY_ORG` from `--org` plus `--env` pairs, in order given.
pub(crate) fn entry_env(args: &InstallArgs) -> Result<Vec<(String, String)>, InstallError> {
    let mut env = Vec::new();
    if let Some(org) = &args.org {
        env.push(("FLY_ORG".to_owned(), org.clone()));
    }
    for entry in &args.env {
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => env.push((key.to_owned(), value.to_owned())),
            _ => {
                return Err(InstallError::InvalidEnv {
                    entry: entry.clone(),
                });
            }
        }
    }
    Ok(env)
}
