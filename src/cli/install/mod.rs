//! `install CLIENT`: add this server to an MCP client's configuration file.
//!
//! Owns the flow: which client and scope, where its file is, the entry it expects, and
//! the messages around the edit. The facts about each client (file locations, entry
//! shapes, how a server key can be referenced, with the source of each fact) live in one
//! file per family: `claude`, `editors`, `agents`, `desktop`. The file formats
//! live in `json_doc` (strict JSON, JSON with comments, JSONC; edited as a concrete
//! syntax tree), `toml_doc` (`toml_edit`) and `yaml_doc` (`yaml-edit`): other entries,
//! key order, formatting and comments survive; a timestamped backup is written next to
//! the file and the new text replaces the old atomically ([`file`]). `--dry-run` prints a
//! unified diff, `--print` the snippet and where it goes.
//!
//! It never writes a Fly token: the server resolves its token at start-up (`auth login`,
//! `FLY_API_TOKEN`), so a token on this command is refused. A remote install (`--url`)
//! writes a reference to the variable holding the server key where the client supports
//! one, and the key itself only with `--allow-literal-key`.
//!
//! Home and config directories and the environment come from [`ConfigBase`], so tests use
//! a temporary directory and any platform. This module knows nothing of MCP itself, of
//! Fly, or of the server's wiring.

mod agents;
mod args;
mod claude;
mod desktop;
mod editors;
mod entry;
mod error;
mod file;
mod json_doc;
mod toml_doc;
mod yaml_doc;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use args::{InstallArgs, serve_arguments};
use args::{entry_env, looks_like_token, refuse_tokens};
use entry::{Key, Server};
pub use error::InstallError;
pub use file::Plan;
use json_doc::Dialect;

/// The name the entry gets in the client's server map unless `--name` says otherwise.
pub const DEFAULT_ENTRY_NAME: &str = "fly-machines";

/// The variable a remote install reads the server key from unless `--key-env` says otherwise.
pub const DEFAULT_KEY_ENV: &str = "FLY_MCP_SERVER_KEY";

/// MCP clients `install` knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum McpClient {
    /// Claude Desktop (`claude_desktop_config.json`; MSIX folder on Windows).
    ClaudeDesktop,
    /// Claude Code (`~/.claude.json` or `$CLAUDE_CONFIG_DIR`; project `.mcp.json`).
    ClaudeCode,
    /// Cursor (`~/.cursor/mcp.json`; project `.cursor/mcp.json`).
    Cursor,
    /// VS Code, Copilot harness (`~/.copilot/mcp-config.json`; project `.mcp.json`).
    Vscode,
    /// Windsurf (`~/.codeium/windsurf/mcp_config.json`).
    Windsurf,
    /// Zed (`settings.json` `context_servers`; project `.zed/settings.json`).
    Zed,
    /// OpenAI Codex (`~/.codex/config.toml` or `$CODEX_HOME`; project `.codex/config.toml`).
    Codex,
    /// GitHub Copilot CLI (`~/.copilot/mcp-config.json` or `$COPILOT_HOME`; project `.mcp.json`).
    Copilot,
    /// Gemini CLI (`~/.gemini/settings.json`; project `.gemini/settings.json`).
    Gemini,
    /// opencode (`~/.config/opencode/opencode.json[c]`; project `opencode.json`).
    Opencode,
    /// Kiro (`~/.kiro/settings/mcp.json`; workspace `.kiro/settings/mcp.json`).
    Kiro,
    /// Cline for VS Code (`cline_mcp_settings.json` in the extension's storage).
    Cline,
    /// LM Studio (`~/.lmstudio/mcp.json`).
    LmStudio,
    /// goose (`~/.config/goose/config.yaml`, `extensions`).
    Goose,
    /// Any other client: the common `mcpServers` entry (`--print`, or `--config-file`).
    Other,
}

/// The format of a client's configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json(Dialect),
    Toml,
    Yaml,
}

/// How a client can be given the server key of a remote server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySupport {
    /// It expands a reference to an environment variable when it connects.
    Reference,
    /// It can only hold the key itself.
    LiteralOnly,
    /// Its file has no remote servers; the text says what to do instead.
    NoRemote(&'static str),
}

/// What `install` needs to know about a client besides its paths and entry shape.
#[derive(Debug, Clone, Copy)]
struct Facts {
    name: &'static str,
    format: Format,
    /// The top-level key holding the map of servers.
    container: &'static str,
    project_scope: bool,
    key: KeySupport,
}

impl McpClient {
    /// Human name, for messages.
    pub fn display_name(self) -> &'static str {
        self.facts().name
    }

    fn facts(self) -> Facts {
        use Dialect::{Comments, Jsonc, Strict};
        use KeySupport::{LiteralOnly, NoRemote, Reference};
        let (name, format, container, project_scope, key) = match self {
            McpClient::ClaudeDesktop => (
                "Claude Desktop",
                Format::Json(Strict),
                "mcpServers",
                false,
                NoRemote(
                    "Claude Desktop adds remote servers as custom connectors (Settings → \
                     Connectors), not in its config file",
                ),
            ),
            McpClient::ClaudeCode => (
                "Claude Code",
                Format::Json(Strict),
                "mcpServers",
                true,
                Reference,
            ),
            McpClient::Cursor => (
                "Cursor",
                Format::Json(Strict),
                "mcpServers",
                true,
                Reference,
            ),
            McpClient::Vscode => (
                "VS Code",
                Format::Json(Jsonc),
                "mcpServers",
                true,
                LiteralOnly,
            ),
            McpClient::Windsurf => (
                "Windsurf",
                Format::Json(Strict),
                "mcpServers",
                false,
                Reference,
            ),
            McpClient::Zed => (
                "Zed",
                Format::Json(Jsonc),
                "context_servers",
                true,
                LiteralOnly,
            ),
            McpClient::Codex => ("Codex", Format::Toml, "mcp_servers", true, Reference),
            McpClient::Copilot => (
                "Copilot CLI",
                Format::Json(Jsonc),
                "mcpServers",
                true,
                LiteralOnly,
            ),
            McpClient::Gemini => (
                "Gemini CLI",
                Format::Json(Comments),
                "mcpServers",
                true,
                Reference,
            ),
            McpClient::Opencode => ("opencode", Format::Json(Jsonc), "mcp", true, Reference),
            McpClient::Kiro => ("Kiro", Format::Json(Strict), "mcpServers", true, Reference),
            McpClient::Cline => (
                "Cline",
                Format::Json(Strict),
                "mcpServers",
                false,
                LiteralOnly,
            ),
            McpClient::LmStudio => (
                "LM Studio",
                Format::Json(Strict),
                "mcpServers",
                false,
                LiteralOnly,
            ),
            McpClient::Goose => ("goose", Format::Yaml, "extensions", false, LiteralOnly),
            McpClient::Other => (
                "your MCP client",
                Format::Json(Strict),
                "mcpServers",
                false,
                LiteralOnly,
            ),
        };
        Facts {
            name,
            format,
            container,
            project_scope,
            key,
        }
    }

    /// The entry for `server`, in the shape this client expects.
    fn entry(self, name: &str, server: &Server) -> entry::Node {
        match self {
            McpClient::ClaudeDesktop | McpClient::ClaudeCode => claude::entry(self, server),
            McpClient::Cursor
            | McpClient::Vscode
            | McpClient::Windsurf
            | McpClient::Zed
            | McpClient::Kiro
            | McpClient::Cline => editors::entry(self, server),
            McpClient::Codex | McpClient::Copilot | McpClient::Gemini | McpClient::Opencode => {
                agents::entry(self, server)
            }
            McpClient::LmStudio | McpClient::Goose | McpClient::Other => {
                desktop::entry(self, name, server)
            }
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

/// The operating system whose conventions decide where files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux and other XDG systems.
    Linux,
    /// macOS.
    MacOs,
    /// Windows.
    Windows,
}

impl Platform {
    /// The platform this binary runs on.
    pub fn current() -> Self {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Linux
        }
    }
}

/// Where home and config directories are, and the environment variables clients read
/// (`CLAUDE_CONFIG_DIR`, `CODEX_HOME`, `COPILOT_HOME`, `XDG_CONFIG_HOME`, …); injectable so
/// tests use a temporary directory and any platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBase {
    /// Whose conventions apply.
    pub platform: Platform,
    /// The user's home directory.
    pub home: PathBuf,
    /// The platform's per-user config directory (`$XDG_CONFIG_HOME` or `~/.config`,
    /// `~/Library/Application Support`, `%APPDATA%`).
    pub config_dir: PathBuf,
    /// The per-user local data directory (`%LOCALAPPDATA%` on Windows).
    pub local_data_dir: PathBuf,
    /// The project directory for project scope.
    pub project_dir: PathBuf,
    /// The environment (only read, never changed).
    pub env: BTreeMap<String, String>,
}

impl ConfigBase {
    /// The conventional directories of `platform` under `home`, an empty environment.
    pub fn under_home(platform: Platform, home: &Path, project_dir: &Path) -> Self {
        let (config_dir, local_data_dir) = match platform {
            Platform::Linux => (home.join(".config"), home.join(".local").join("share")),
            Platform::MacOs => {
                let support = home.join("Library").join("Application Support");
                (support.clone(), support)
            }
            Platform::Windows => (
                home.join("AppData").join("Roaming"),
                home.join("AppData").join("Local"),
            ),
        };
        Self {
            platform,
            home: home.to_path_buf(),
            config_dir,
            local_data_dir,
            project_dir: project_dir.to_path_buf(),
            env: BTreeMap::new(),
        }
    }

    /// The same with `name=value` in the environment.
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The directories and environment of the running user; `project_dir` defaults to the
    /// current directory.
    pub fn from_system(project_dir: Option<PathBuf>) -> Result<Self, InstallError> {
        let home = dirs::home_dir().ok_or(InstallError::NoHomeDir)?;
        let config_dir = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
        let local_data_dir = dirs::data_local_dir().unwrap_or_else(|| config_dir.clone());
        let project_dir = match project_dir {
            Some(dir) => dir,
            None => {
                std::env::current_dir().map_err(|source| InstallError::CurrentDir { source })?
            }
        };
        Ok(Self {
            platform: Platform::current(),
            home,
            config_dir,
            local_data_dir,
            project_dir,
            env: std::env::vars().collect(),
        })
    }

    /// A non-empty environment variable.
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `$XDG_CONFIG_HOME` when set to an absolute path, else `~/.config` (what
    /// XDG-following tools such as opencode and goose use on Linux and macOS alike).
    fn xdg_config_home(&self) -> PathBuf {
        match self.var("XDG_CONFIG_HOME") {
            Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
            _ => self.home.join(".config"),
        }
    }

    /// Whether `program` is on `PATH`.
    fn on_path(&self, program: &str) -> bool {
        self.var("PATH")
            .is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
    }
}

/// One edit of a client file, whatever its format: the file, its text before (`None`
/// when it does not exist), the container key, the entry's name and the entry (`None`
/// removes `name`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit<'a> {
    pub(crate) path: &'a Path,
    pub(crate) before: Option<&'a str>,
    pub(crate) container: &'a str,
    pub(crate) name: &'a str,
    pub(crate) entry: Option<&'a entry::Node>,
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

impl Change {
    /// What writing an entry did to a file whose text went from `before` to `after`;
    /// `existed`: an entry of that name was there before.
    fn of_write(before: &str, after: &str, existed: bool) -> Change {
        if after == before {
            Change::Unchanged
        } else if existed {
            Change::Updated
        } else {
            Change::Added
        }
    }
}

/// The configuration file of `client` for `scope` (`None`: the client has no standard file).
pub fn config_path(
    client: McpClient,
    scope: Scope,
    base: &ConfigBase,
) -> Result<Option<PathBuf>, InstallError> {
    let facts = client.facts();
    if scope == Scope::Project && !facts.project_scope {
        return Err(InstallError::ScopeNotSupported {
            client: facts.name,
            scope: scope.as_str(),
        });
    }
    Ok(Some(match client {
        McpClient::ClaudeDesktop | McpClient::ClaudeCode => claude::location(client, scope, base)?,
        McpClient::Cursor
        | McpClient::Vscode
        | McpClient::Windsurf
        | McpClient::Zed
        | McpClient::Kiro
        | McpClient::Cline => editors::location(client, scope, base),
        McpClient::Codex | McpClient::Copilot | McpClient::Gemini | McpClient::Opencode => {
            agents::location(client, scope, base)
        }
        McpClient::LmStudio | McpClient::Goose | McpClient::Other => {
            match desktop::location(client, base) {
                Some(path) => path,
                None => return Ok(None),
            }
        }
    }))
}

/// Whether `name` is usable as an environment variable name.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What the entry describes: the command to start, or the remote endpoint and its key.
fn server_for(
    args: &InstallArgs,
    base: &ConfigBase,
    command: &str,
    path: Option<&Path>,
) -> Result<Server, InstallError> {
    let Some(url) = &args.url else {
        return Ok(Server::Stdio {
            command: command.to_owned(),
            args: serve_arguments(args),
            env: entry_env(args)?,
        });
    };
    let parsed = url::Url::parse(url).map_err(|_| InstallError::InvalidUrl { url: url.clone() })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(InstallError::InvalidUrl { url: url.clone() });
    }
    if serve_arguments(args).len() > 1 {
        return Err(InstallError::ServeOptionWithUrl {
            what: "a serve option".to_owned(),
        });
    }
    if !args.env.is_empty() || args.org.is_some() || args.server_command.is_some() {
        return Err(InstallError::ServeOptionWithUrl {
            what: "--env, --org or --server-command".to_owned(),
        });
    }
    let facts = args.client.facts();
    if let KeySupport::NoRemote(hint) = facts.key {
        return Err(InstallError::RemoteNotSupported {
            client: facts.name,
            hint,
        });
    }
    if args.no_key {
        return Ok(Server::Remote {
            url: url.clone(),
            key: None,
        });
    }
    let var = &args.key_env;
    if !is_var_name(var) {
        return Err(InstallError::InvalidKeyVar { var: var.clone() });
    }
    let key = match facts.key {
        KeySupport::Reference => Key::Reference(var.clone()),
        KeySupport::LiteralOnly | KeySupport::NoRemote(_) if !args.allow_literal_key => {
            return Err(InstallError::LiteralKeyRefused {
                client: facts.name,
                path: path.map_or_else(|| PathBuf::from("its config file"), Path::to_path_buf),
                var: var.clone(),
            });
        }
        KeySupport::LiteralOnly | KeySupport::NoRemote(_) => {
            let value = base
                .var(var)
                .ok_or_else(|| InstallError::KeyVarUnset { var: var.clone() })?;
            if looks_like_token(value) {
                return Err(InstallError::TokenRefused {
                    what: format!("${var} holds a Fly token, not a server key"),
                });
            }
            Key::Literal(value.to_owned())
        }
    };
    Ok(Server::Remote {
        url: url.clone(),
        key: Some(key),
    })
}

/// Computes the edit `args` asks for, reading but not writing the client's file.
pub fn plan(args: &InstallArgs, base: &ConfigBase, command: &str) -> Result<Plan, InstallError> {
    refuse_tokens(args)?;
    if args.name.trim().is_empty() {
        return Err(InstallError::EmptyName);
    }
    let facts = args.client.facts();
    let standard = match &args.config_file {
        Some(path) => Some(path.clone()),
        None => config_path(args.client, args.scope, base)?,
    };
    let path = match (&standard, args.print) {
        (Some(path), _) => path.clone(),
        (None, true) => PathBuf::from("(your client's MCP configuration file)"),
        (None, false) => return Err(InstallError::NeedsConfigFile { client: facts.name }),
    };
    let server = server_for(args, base, command, standard.as_deref())?;
    let secret = match &server {
        Server::Remote {
            key: Some(Key::Literal(value)),
            ..
        } => Some(value.clone()),
        _ => None,
    };
    // `--print` shows the snippet on its own: the edit of an empty file.
    let before = if args.print {
        None
    } else {
        file::read_existing(&path)?
    };
    let entry = (!args.remove).then(|| args.client.entry(&args.name, &server));
    let edit = Edit {
        path: &path,
        before: before.as_deref(),
        container: facts.container,
        name: &args.name,
        entry: entry.as_ref(),
    };
    let (after, change) = match facts.format {
        Format::Json(dialect) => json_doc::edit(dialect, facts.name, edit)?,
        Format::Toml => toml_doc::edit(edit)?,
        Format::Yaml => yaml_doc::edit(edit)?,
    };
    Ok(Plan {
        path,
        before,
        after,
        change,
        entry: entry.as_ref().map(entry::Node::to_json),
        secret,
    })
}

/// What to tell the user about this client after a write (or instead of one).
fn client_notes(args: &InstallArgs, base: &ConfigBase, plan: &Plan) -> Vec<String> {
    let mut notes = Vec::new();
    match (args.client, args.scope) {
        (McpClient::ClaudeCode, Scope::User) if args.config_file.is_none() => {
            let mut note = "A running Claude Code rewrites this file and may overwrite the \
                            edit: quit it first"
                .to_owned();
            if base.on_path("claude")
                && let Some(entry) = &plan.entry
            {
                let _ = write!(
                    note,
                    ", or add it through Claude Code instead: claude mcp add-json --scope user {} '{}'",
                    args.name,
                    plan.mask(&entry.to_string())
                );
            }
            note.push('.');
            notes.push(note);
        }
        (McpClient::ClaudeCode, Scope::Project) => notes.push(
            "Claude Code asks once to approve a project's .mcp.json servers (run `claude` in \
             the project)."
                .to_owned(),
        ),
        (McpClient::Vscode, _) => notes.push(
            "VS Code's Copilot harness reads this portable file (`mcpServers`); the older \
             Local-format mcp.json (`servers`) is not touched."
                .to_owned(),
        ),
        (McpClient::Gemini, _) => notes.push(
            "Gemini CLI starts user servers only in folders it trusts (`/permissions`, or \
             ~/.gemini/trustedFolders.json)."
                .to_owned(),
        ),
        (McpClient::Codex, Scope::Project) => {
            notes.push("Codex reads .codex/config.toml only in projects it trusts.".to_owned())
        }
        _ => {}
    }
    if plan.secret.is_some() {
        notes.push(format!(
            "The server key from ${} is written into {} in plain text (--allow-literal-key); \
             keep the file private.",
            args.key_env,
            plan.path.display()
        ));
    }
    notes
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
    if args.print {
        let _ = writeln!(message, "Add this to {path}:\n");
        message.push_str(&plan.mask(&plan.after));
        for note in client_notes(args, base, &plan) {
            let _ = writeln!(message, "\n{note}");
        }
        let _ = out.write_all(message.as_bytes());
        return Ok(plan);
    }
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
    let target = plan.target();
    let written = if target == plan.path {
        path.to_string()
    } else {
        format!("{path} (a link; written to {})", target.display())
    };
    let scope = args.scope.as_str();
    match plan.change {
        Change::Added => {
            let _ = writeln!(message, "Added {name} to {client} ({scope}): {written}");
        }
        Change::Updated => {
            let _ = writeln!(message, "Updated {name} in {client} ({scope}): {written}");
        }
        Change::Unchanged => {
            let _ = writeln!(
                message,
                "{name} is already up to date in {path}; nothing written"
            );
        }
        Change::Removed => {
            let _ = writeln!(message, "Removed {name} from {written}");
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
        for note in client_notes(args, base, &plan) {
            let _ = writeln!(message, "{note}");
        }
        if args.url.is_some() {
            if !args.no_key && args.client.facts().key == KeySupport::Reference {
                let var = &args.key_env;
                let _ = writeln!(
                    message,
                    "{client} reads the server key from ${var} when it connects: set it in the \
                     environment {client} starts in."
                );
            }
        } else if !args.sandbox {
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
            eprintln!("error: {}", crate::chain::text(&err));
            if err.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
