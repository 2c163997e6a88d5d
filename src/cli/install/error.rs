//! Errors of `install`: each names the file or option involved and says what to do next.

use std::path::PathBuf;

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
    /// The client has no standard file (`other`).
    #[error("{client} has no standard file: pass --config-file FILE, or --print for the snippet")]
    NeedsConfigFile {
        /// The client.
        client: &'static str,
    },
    /// Several files could be the client's; the user picks one.
    #[error("{client} has more than one configuration folder ({}); pass --config-file with the one it uses", .candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    AmbiguousConfig {
        /// The client.
        client: &'static str,
        /// The files found.
        candidates: Vec<PathBuf>,
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
    /// `--url` is not an http(s) URL.
    #[error(
        "--url {url:?} is not an http:// or https:// URL (the server's Streamable HTTP endpoint, e.g. https://HOST/mcp)"
    )]
    InvalidUrl {
        /// The URL given.
        url: String,
    },
    /// `--url` with options that only mean something to a server the client starts.
    #[error(
        "{what} configures a server the client starts; with --url, set it on the running server instead"
    )]
    ServeOptionWithUrl {
        /// The option given.
        what: String,
    },
    /// The client's file has no remote servers.
    #[error("{client} cannot be given a remote server here: {hint}")]
    RemoteNotSupported {
        /// The client.
        client: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// The client can only hold the key itself, and `--allow-literal-key` was not given.
    #[error(
        "{client} cannot read the server key from an environment variable: it would have \
         to hold the key itself, in plain text in {path}. Nothing was written. Pass \
         --allow-literal-key to write the key from ${var} into that file, or --no-key if \
         the server needs none"
    )]
    LiteralKeyRefused {
        /// The client.
        client: &'static str,
        /// The file that would hold it.
        path: PathBuf,
        /// The variable the key would come from.
        var: String,
    },
    /// `--allow-literal-key`, but the variable is not set.
    #[error(
        "--allow-literal-key reads the server key from ${var}, which is not set; nothing was written"
    )]
    KeyVarUnset {
        /// The variable.
        var: String,
    },
    /// `--key-env` is not a variable name.
    #[error("--key-env {var:?} is not an environment variable name (letters, digits, _)")]
    InvalidKeyVar {
        /// The name given.
        var: String,
    },
    /// Reading the config file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The config file does not parse at all.
    #[error("{path} does not parse: {message}; fix it by hand, nothing was changed")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file has comments or trailing commas the client cannot read.
    #[error(
        "{path} is not {reads}, which is all {client} reads ({message}): {client} cannot \
         read this file either. Remove the comments or trailing commas by hand; nothing was \
         changed"
    )]
    WrongDialect {
        /// The file.
        path: PathBuf,
        /// The client.
        client: &'static str,
        /// What the client reads.
        reads: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that must be an object is something else.
    #[error(
        "{path}: `{key}` is not an object (table, mapping); fix it by hand, nothing was changed"
    )]
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

impl InstallError {
    /// Whether this is the user's usage error (exit 2) rather than a failure (exit 1).
    pub(crate) fn is_usage(&self) -> bool {
        match self {
            InstallError::ScopeNotSupported { .. }
            | InstallError::NeedsConfigFile { .. }
            | InstallError::AmbiguousConfig { .. }
            | InstallError::TokenRefused { .. }
            | InstallError::InvalidEnv { .. }
            | InstallError::EmptyName
            | InstallError::InvalidUrl { .. }
            | InstallError::ServeOptionWithUrl { .. }
            | InstallError::RemoteNotSupported { .. }
            | InstallError::LiteralKeyRefused { .. }
            | InstallError::KeyVarUnset { .. }
            | InstallError::InvalidKeyVar { .. } => true,
            InstallError::NoHomeDir
            | InstallError::CurrentDir { .. }
            | InstallError::CurrentExe { .. }
            | InstallError::Read { .. }
            | InstallError::Parse { .. }
            | InstallError::WrongDialect { .. }
            | InstallError::NotAnObject { .. }
            | InstallError::Backup { .. }
            | InstallError::Write { .. } => false,
        }
    }
}
