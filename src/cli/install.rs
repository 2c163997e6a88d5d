//! `install CLIENT`: add this server to an MCP client's configuration file.
//!
//! Owns where each supported client keeps its MCP configuration (Claude Desktop, Claude
//! Code, Cursor, VS Code, Windsurf, Zed; user and project scope where the client has
//! both), the shape of the entry each expects, and editing that file without losing
//! anything: other entries, key order, formatting and comments survive (the file is edited
//! as a concrete syntax tree, not re-serialised), a timestamped backup is written next to
//! it, and the new text replaces the old atomically. `--dry-run` prints a unified diff.
//! It never writes a Fly token: the server resolves its token at start-up (`auth login`,
//! `FLY_API_TOKEN`), so a token on this command is refused.
//!
//! Home and config directories come from [`ConfigBase`], so tests use a temporary
//! directory. This module knows nothing of MCP itself, of Fly, or of the server's wiring.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstNode, CstObject, CstRootNode};

/// The name the entry gets in the client's server map unless `--name` says otherwise.
pub const DEFAULT_ENTRY_NAME: &str = "fly-machines";

/// MCP clients `install` knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum McpClient {
    /// Claude Desktop (`claude_desktop_config.json`, `mcpServers`).
    ClaudeDesktop,
    /// Claude Code (`~/.claude.json` for the user, `.mcp.json` in a project).
    ClaudeCode,
    /// Cursor (`~/.cursor/mcp.json`, `.cursor/mcp.json` in a project).
    Cursor,
    /// VS Code (user profile `mcp.json`, `.vscode/mcp.json` in a project; `servers`).
    Vscode,
    /// Windsurf (`~/.codeium/windsurf/mcp_config.json`).
    Windsurf,
    /// Zed (`settings.json`, `context_servers`; `.zed/settings.json` in a project).
    Zed,
}

impl McpClient {
    /// Human name, for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            McpClient::ClaudeDesktop => "Claude Desktop",
            McpClient::ClaudeCode => "Claude Code",
            McpClient::Cursor => "Cursor",
            McpClient::Vscode => "VS Code",
            McpClient::Windsurf => "Windsurf",
            McpClient::Zed => "Zed",
        }
    }

    /// The top-level key holding the map of servers.
    fn servers_key(self) -> &'static str {
        match self {
            McpClient::ClaudeDesktop
            | McpClient::ClaudeCode
            | McpClient::Cursor
            | McpClient::Windsurf => "mcpServers",
            McpClient::Vscode => "servers",
            McpClient::Zed => "context_servers",
        }
    }

    /// Whether the client reads a project-level configuration file.
    fn has_project_scope(self) -> bool {
        match self {
            McpClient::ClaudeCode | McpClient::Cursor | McpClient::Vscode | McpClient::Zed => true,
            McpClient::ClaudeDesktop | McpClient::Windsurf => false,
        }
    }
}

/// Which configuration file of the client to edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// The user's own configuration, for every project.
    User,
    /// The project's configuration file (checked in, shared with the team).
    Project,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
        }
    }
}

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

    /// Refused: a token never goes into a client config (use `auth login`).
    #[arg(long, hide = true)]
    pub access_token: Option<String>,

    /// Further arguments for `serve`, after `--`.
    #[arg(last = true)]
    pub serve_args: Vec<String>,
}

/// Where home and config directories are; injectable so tests use a temporary directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBase {
    /// The user's home directory.
    pub home: PathBuf,
    /// The platform's per-user config directory (`~/.config`, `~/Library/Application
    /// Support`, `%APPDATA%`).
    pub config_dir: PathBuf,
    /// The project directory for project scope.
    pub project_dir: PathBuf,
}

impl ConfigBase {
    /// The directories of the running user; `project_dir` defaults to the current directory.
    pub fn from_system(project_dir: Option<PathBuf>) -> Result<Self, InstallError> {
        let home = dirs::home_dir().ok_or(InstallError::NoHomeDir)?;
        let config_dir = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
        let project_dir = match project_dir {
            Some(dir) => dir,
            None => {
                std::env::current_dir().map_err(|source| InstallError::CurrentDir { source })?
            }
        };
        Ok(Self {
            home,
            config_dir,
            project_dir,
        })
    }
}

/// Errors of `install`; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// No home directory could be determined.
    #[error("cannot determine the home directory; pass --config-file")]
    NoHomeDir,
    /// The current directory is unreadable.
    #[error("cannot read the current directory; pass --project-dir")]
    CurrentDir {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The path of this executable is unknown.
    #[error("cannot determine the path of this binary; pass --server-command")]
    CurrentExe {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The client has no configuration of that scope.
    #[error("{client} has no {scope}-scope MCP configuration; use --scope user")]
    ScopeNotSupported {
        /// The client.
        client: &'static str,
        /// The scope asked for.
        scope: &'static str,
    },
    /// A token was offered; it is never written into a client config.
    #[error(
        "refusing to write a Fly token into a client config ({what}). Store it once with \
         `fly-machines-mcp auth login` (reads it from stdin), or set FLY_API_TOKEN in the \
         environment the client starts the server with"
    )]
    TokenRefused {
        /// Where the token was found (never the token itself).
        what: String,
    },
    /// A `--env` entry is not `KEY=VALUE`.
    #[error("--env {entry:?} is not KEY=VALUE")]
    InvalidEnv {
        /// The offending entry.
        entry: String,
    },
    /// The entry name is empty.
    #[error("--name must not be empty")]
    EmptyName,
    /// Reading the config file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid JSON (with comments).
    #[error("{path} is not valid JSON: {message}; fix it by hand, nothing was changed")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that must be an object is something else.
    #[error("{path}: `{key}` is not a JSON object; fix it by hand, nothing was changed")]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// The key (or `(root)`).
        key: String,
    },
    /// Writing the backup failed.
    #[error("cannot write the backup {path}; nothing was changed")]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the config file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What an install or removal does to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry is added.
    Added,
    /// An existing entry of that name is replaced.
    Updated,
    /// The entry is already exactly as it would be written.
    Unchanged,
    /// The entry is removed.
    Removed,
    /// `--remove`, but there is no such entry.
    Absent,
}

/// A computed edit of one configuration file, not yet written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file to edit.
    pub path: PathBuf,
    /// Its current text (`None` if it does not exist yet).
    pub before: Option<String>,
    /// Its text after the edit.
    pub after: String,
    /// What the edit does.
    pub change: Change,
    /// The entry written (`None` when removing).
    pub entry: Option<serde_json::Value>,
}

impl Plan {
    /// A unified diff of the edit.
    pub fn diff(&self) -> String {
        let before = self.before.as_deref().unwrap_or("");
        let path = self.path.display().to_string();
        let old_header = if self.before.is_some() {
            path.clone()
        } else {
            "/dev/null".to_owned()
        };
        similar::TextDiff::from_lines(before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(&old_header, &path)
            .to_string()
    }

    /// Writes the new text (backup first when the file existed). Returns the backup's path.
    pub fn apply(&self) -> Result<Option<PathBuf>, InstallError> {
        if matches!(self.change, Change::Unchanged | Change::Absent) {
            return Ok(None);
        }
        if let Some(parent) = self.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| InstallError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let backup = match &self.before {
            Some(before) => {
                let backup = backup_path(&self.path);
                std::fs::write(&backup, before).map_err(|source| InstallError::Backup {
                    path: backup.clone(),
                    source,
                })?;
                copy_permissions(&self.path, &backup);
                Some(backup)
            }
            None => None,
        };
        let tmp = sibling(&self.path, ".fly-machines-mcp.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, &self.after)?;
            copy_permissions(&self.path, &tmp);
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(source) = write() {
            // Best effort: don't leave the temporary file behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(InstallError::Write {
                path: self.path.clone(),
                source,
            });
        }
        Ok(backup)
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// `FILE.bak-YYYYMMDDTHHMMSSZ` next to the file, with `-N` added if that name is taken, so
/// no earlier backup is ever overwritten.
fn backup_path(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let first = sibling(path, &format!(".bak-{stamp}"));
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|n| sibling(path, &format!(".bak-{stamp}-{n}")))
        .find(|candidate| !candidate.exists())
        .unwrap_or(first)
}

/// Gives `to` the permission bits of `from` (a 0600 `~/.claude.json` stays 0600).
fn copy_permissions(from: &Path, to: &Path) {
    if let Ok(meta) = std::fs::metadata(from) {
        // Best effort: the file is still correct with default permissions.
        let _ = std::fs::set_permissions(to, meta.permissions());
    }
}

/// The configuration file of `client` for `scope`.
pub fn config_path(
    client: McpClient,
    scope: Scope,
    base: &ConfigBase,
) -> Result<PathBuf, InstallError> {
    if scope == Scope::Project && !client.has_project_scope() {
        return Err(InstallError::ScopeNotSupported {
            client: client.display_name(),
            scope: scope.as_str(),
        });
    }
    let project = &base.project_dir;
    Ok(match (client, scope) {
        (McpClient::ClaudeDesktop, _) => base
            .config_dir
            .join("Claude")
            .join("claude_desktop_config.json"),
        (McpClient::ClaudeCode, Scope::User) => base.home.join(".claude.json"),
        (McpClient::ClaudeCode, Scope::Project) => project.join(".mcp.json"),
        (McpClient::Cursor, Scope::User) => base.home.join(".cursor").join("mcp.json"),
        (McpClient::Cursor, Scope::Project) => project.join(".cursor").join("mcp.json"),
        (McpClient::Vscode, Scope::User) => {
            base.config_dir.join("Code").join("User").join("mcp.json")
        }
        (McpClient::Vscode, Scope::Project) => project.join(".vscode").join("mcp.json"),
        (McpClient::Windsurf, _) => base
            .home
            .join(".codeium")
            .join("windsurf")
            .join("mcp_config.json"),
        // Zed reads ~/.config/zed on Linux and macOS alike; %APPDATA%\Zed on Windows.
        (McpClient::Zed, Scope::User) if cfg!(windows) => {
            base.config_dir.join("Zed").join("settings.json")
        }
        (McpClient::Zed, Scope::User) => {
            base.home.join(".config").join("zed").join("settings.json")
        }
        (McpClient::Zed, Scope::Project) => project.join(".zed").join("settings.json"),
    })
}

/// Prefixes of Fly macaroon tokens, and the scheme word a pasted token may carry.
const TOKEN_MARKERS: [&str; 4] = ["fm1r_", "fm1a_", "fm2_", "FlyV1 "];
/// Environment variables and flags that carry a token.
const TOKEN_ENV_KEYS: [&str; 3] = ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN", "FLY_MCP_ACCESS_TOKEN"];

fn looks_like_token(value: &str) -> bool {
    TOKEN_MARKERS.iter().any(|marker| value.contains(marker))
}

/// Refuses anything in the arguments that would put a token into the client's file.
fn refuse_tokens(args: &InstallArgs) -> Result<(), InstallError> {
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
fn entry_env(args: &InstallArgs) -> Result<Vec<(String, String)>, InstallError> {
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

/// The server entry in the shape `client` expects.
fn entry_for(
    client: McpClient,
    command: &str,
    serve_args: &[String],
    env: &[(String, String)],
) -> CstInputValue {
    let string = |s: &str| CstInputValue::String(s.to_owned());
    let args = CstInputValue::Array(serve_args.iter().map(|a| string(a)).collect());
    let env_value = CstInputValue::Object(
        env.iter()
            .map(|(key, value)| (key.clone(), string(value)))
            .collect(),
    );
    let mut fields: Vec<(String, CstInputValue)> = Vec::new();
    match client {
        McpClient::ClaudeCode | McpClient::Vscode => {
            fields.push(("type".to_owned(), string("stdio")));
        }
        McpClient::Zed => fields.push(("source".to_owned(), string("custom"))),
        McpClient::ClaudeDesktop | McpClient::Cursor | McpClient::Windsurf => {}
    }
    fields.push(("command".to_owned(), string(command)));
    fields.push(("args".to_owned(), args));
    // Zed's documented custom-server shape always carries `env`; the others only when set.
    if client == McpClient::Zed || !env.is_empty() {
        fields.push(("env".to_owned(), env_value));
    }
    CstInputValue::Object(fields)
}

/// The same value as serde JSON, to compare with what the file holds.
fn to_serde(value: &CstInputValue) -> serde_json::Value {
    match value {
        CstInputValue::Null => serde_json::Value::Null,
        CstInputValue::Bool(b) => serde_json::Value::Bool(*b),
        CstInputValue::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
        CstInputValue::String(s) => serde_json::Value::String(s.clone()),
        CstInputValue::Array(items) => {
            serde_json::Value::Array(items.iter().map(to_serde).collect())
        }
        CstInputValue::Object(fields) => serde_json::Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), to_serde(value)))
                .collect(),
        ),
    }
}

/// Reads the file, or `None` if it does not exist.
fn read_existing(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The root object of the document, created if the document is empty.
fn root_object(root: &CstRootNode, path: &Path) -> Result<CstObject, InstallError> {
    root.object_value_or_create()
        .ok_or_else(|| InstallError::NotAnObject {
            path: path.to_path_buf(),
            key: "(root)".to_owned(),
        })
}

/// The object under `key` in `parent`, created when absent (unless `create` is false).
fn child_object(
    parent: &CstObject,
    key: &str,
    create: bool,
    path: &Path,
) -> Result<Option<CstObject>, InstallError> {
    match parent.get(key) {
        Some(prop) => match prop.value() {
            Some(CstNode::Container(container)) => match container.as_object() {
                Some(object) => Ok(Some(object)),
                None => Err(InstallError::NotAnObject {
                    path: path.to_path_buf(),
                    key: key.to_owned(),
                }),
            },
            _ => Err(InstallError::NotAnObject {
                path: path.to_path_buf(),
                key: key.to_owned(),
            }),
        },
        None if create => Ok(parent.object_value_or_create(key)),
        None => Ok(None),
    }
}

/// Computes the edit `args` asks for, reading but not writing the client's file.
pub fn plan(args: &InstallArgs, base: &ConfigBase, command: &str) -> Result<Plan, InstallError> {
    refuse_tokens(args)?;
    if args.name.trim().is_empty() {
        return Err(InstallError::EmptyName);
    }
    let path = match &args.config_file {
        Some(path) => path.clone(),
        None => config_path(args.client, args.scope, base)?,
    };
    let before = read_existing(&path)?;
    let text = before.as_deref().unwrap_or("");
    let root =
        CstRootNode::parse(text, &ParseOptions::default()).map_err(|err| InstallError::Parse {
            path: path.clone(),
            message: err.to_string(),
        })?;
    let object = root_object(&root, &path)?;
    let key = args.client.servers_key();

    if args.remove {
        let servers = child_object(&object, key, false, &path)?;
        let existing = servers.as_ref().and_then(|servers| servers.get(&args.name));
        let change = match existing {
            Some(prop) => {
                prop.remove();
                Change::Removed
            }
            None => Change::Absent,
        };
        return Ok(Plan {
            after: finish(&root, &before),
            path,
            before,
            change,
            entry: None,
        });
    }

    let env = entry_env(args)?;
    let entry = entry_for(args.client, command, &serve_arguments(args), &env);
    let entry_json = to_serde(&entry);
    let servers =
        child_object(&object, key, true, &path)?.ok_or_else(|| InstallError::NotAnObject {
            path: path.clone(),
            key: key.to_owned(),
        })?;
    let change = match servers.get(&args.name) {
        Some(prop) if prop.value().and_then(|v| v.to_serde_value()) == Some(entry_json.clone()) => {
            Change::Unchanged
        }
        Some(prop) => {
            prop.set_value(entry);
            Change::Updated
        }
        None => {
            servers.append(&args.name, entry);
            Change::Added
        }
    };
    Ok(Plan {
        after: finish(&root, &before),
        path,
        before,
        change,
        entry: Some(entry_json),
    })
}

/// The edited document as text, ending with a newline like the original (or always, for
/// a new file).
fn finish(root: &CstRootNode, before: &Option<String>) -> String {
    let mut text = root.to_string();
    let wants_newline = before
        .as_deref()
        .is_none_or(|b| b.ends_with('\n') || b.trim().is_empty());
    if wants_newline && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Runs `install` against `base`, writing messages to `out`.
pub fn install(
    args: &InstallArgs,
    base: &ConfigBase,
    command: &str,
    out: &mut dyn Write,
) -> Result<Plan, InstallError> {
    let plan = plan(args, base, command)?;
    let client = args.client.display_name();
    let name = &args.name;
    let path = plan.path.display();
    let mut message = String::new();
    if args.dry_run {
        match plan.change {
            Change::Unchanged => {
                let _ = writeln!(
                    message,
                    "{name} is already up to date in {path}; nothing to change"
                );
            }
            Change::Absent => {
                let _ = writeln!(message, "{name} is not in {path}; nothing to remove");
            }
            Change::Added | Change::Updated | Change::Removed => {
                message.push_str(&plan.diff());
                let _ = writeln!(message, "(dry run: nothing written)");
            }
        }
        let _ = out.write_all(message.as_bytes());
        return Ok(plan);
    }
    let backup = plan.apply()?;
    match plan.change {
        Change::Added => {
            let _ = writeln!(
                message,
                "Added {name} to {client} ({}): {path}",
                args.scope.as_str()
            );
        }
        Change::Updated => {
            let _ = writeln!(
                message,
                "Updated {name} in {client} ({}): {path}",
                args.scope.as_str()
            );
        }
        Change::Unchanged => {
            let _ = writeln!(
                message,
                "{name} is already up to date in {path}; nothing written"
            );
        }
        Change::Removed => {
            let _ = writeln!(message, "Removed {name} from {path}");
        }
        Change::Absent => {
            let _ = writeln!(message, "{name} is not in {path}; nothing to remove");
        }
    }
    if let Some(backup) = backup {
        let _ = writeln!(message, "Backup of the previous file: {}", backup.display());
    }
    if matches!(plan.change, Change::Added | Change::Updated) {
        let _ = writeln!(
            message,
            "Restart {client} (or reload its MCP servers) to pick it up."
        );
        if !args.sandbox {
            let _ = writeln!(
                message,
                "The server finds its Fly token at start-up: run `fly-machines-mcp auth login` once \
                 (token from stdin), or give the client's environment FLY_API_TOKEN."
            );
        }
    }
    let _ = out.write_all(message.as_bytes());
    Ok(plan)
}

/// `fly-machines-mcp install`: exit 0 on success, 1 on failure, 2 on a usage error.
pub fn run_install(args: InstallArgs) -> ExitCode {
    let result = ConfigBase::from_system(args.project_dir.clone()).and_then(|base| {
        let command = match &args.server_command {
            Some(command) => command.display().to_string(),
            None => std::env::current_exe()
                .map_err(|source| InstallError::CurrentExe { source })?
                .display()
                .to_string(),
        };
        install(&args, &base, &command, &mut std::io::stdout().lock())
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            let mut text = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{text}");
            match err {
                InstallError::ScopeNotSupported { .. }
                | InstallError::TokenRefused { .. }
                | InstallError::InvalidEnv { .. }
                | InstallError::EmptyName => ExitCode::from(2),
                InstallError::NoHomeDir
                | InstallError::CurrentDir { .. }
                | InstallError::CurrentExe { .. }
                | InstallError::Read { .. }
                | InstallError::Parse { .. }
                | InstallError::NotAnObject { .. }
                | InstallError::Backup { .. }
                | InstallError::Write { .. } => ExitCode::FAILURE,
            }
        }
    }
}
