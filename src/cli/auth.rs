//! `auth login|status|logout`: the token the server uses when none is given explicitly.
//!
//! Owns the stored-token file's life cycle: `login` reads a token from stdin (never from
//! an argument, so it stays out of shell history and process lists), optionally checks it
//! with Fly (`GET /v1/tokens/current`), and writes it to [`config::stored_token_path_in`]
//! with mode 0600 in a 0700 directory; `status` resolves the token the way `serve` does
//! and reports its source and what it reaches (org slugs, app scope, user), never the
//! token or any part of it; `logout` removes the file. A token that is not a macaroon
//! is checked through GraphQL `viewer` when `tokens/current` will not describe it.
//!
//! Where the file lives and how tokens resolve belong to [`crate::config`]; the API calls
//! to [`crate::fly`]. `status` also decodes the token's macaroons locally and lists
//! their caveats in words (org, apps, actions, expiry). The environment and home directory are injected ([`AuthContext`])
//! so tests run against a temporary directory and the simulator.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use secrecy::SecretString;
use serde::Serialize;

use crate::config::{self, ConfigError, FlySettings, TokenSource};
use crate::fly;

/// `fly-machines-mcp auth …`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AuthCommand,
}

/// The `auth` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuthCommand {
    /// Store a Fly token read from stdin (e.g. `fly tokens create org | fly-machines-mcp auth login`).
    Login(LoginArgs),
    /// Show where the token comes from and which orgs and apps it reaches (never the token).
    Status(StatusArgs),
    /// Remove the stored token.
    Logout,
}

/// Options of `auth login`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoginArgs {
    /// Store the token without checking it with Fly first.
    #[arg(long, env = "FLY_MCP_NO_VERIFY")]
    pub no_verify: bool,
}

/// Options of `auth status`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long, env = "FLY_MCP_JSON")]
    pub json: bool,
}

/// An environment lookup (`std::env::var`, or a map in tests).
type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The process environment and home directory `auth` works against.
pub struct AuthContext {
    env: Box<EnvLookup>,
    home: Option<PathBuf>,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The environment may hold tokens: never print it.
        f.debug_struct("AuthContext")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// The real process environment and the user's home directory.
    pub fn from_system() -> Self {
        Self {
            env: Box::new(|key| std::env::var(key).ok()),
            home: dirs::home_dir(),
        }
    }

    /// An injected environment (tests).
    pub fn new(
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        home: Option<PathBuf>,
    ) -> Self {
        Self {
            env: Box::new(env),
            home,
        }
    }

    /// Where `auth login` stores the token.
    pub fn token_path(&self) -> Option<PathBuf> {
        config::stored_token_path_in(&*self.env, self.home.as_deref())
    }

    fn env_set(&self, key: &str) -> bool {
        (self.env)(key).is_some_and(|v| !v.trim().is_empty())
    }
}

/// Errors of `auth`; none carries the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No directory for the token file could be determined.
    #[error("cannot determine the config directory for the token file; set XDG_CONFIG_HOME")]
    NoConfigDir,
    /// Stdin could not be read.
    #[error("cannot read the token from stdin")]
    ReadStdin {
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stdin held no token.
    #[error(
        "no token on stdin; pipe one in, e.g. `fly tokens create org | fly-machines-mcp auth login`"
    )]
    EmptyToken,
    /// Settings could not be resolved.
    #[error("cannot resolve Fly settings")]
    Config {
        /// The underlying error.
        #[source]
        source: ConfigError,
    },
    /// No token anywhere.
    #[error(
        "no Fly token found (checked FLY_API_TOKEN, FLY_ACCESS_TOKEN, {stored}, ~/.fly/config.yml); \
         run `fly-machines-mcp auth login`"
    )]
    NoToken {
        /// The stored-token path that was checked.
        stored: String,
    },
    /// Fly rejected the token.
    #[error("Fly rejected the token ({status}); nothing was stored")]
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// Fly could not be asked.
    #[error("{op} failed")]
    Fly {
        /// The operation.
        op: &'static str,
        /// The underlying error (its text never contains the token).
        #[source]
        source: Box<fly::Error>,
    },
    /// Writing the token file failed.
    #[error("cannot write the token file {path}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Removing the token file failed.
    #[error("cannot remove the token file {path}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What `auth status` reports (also its `--json` shape).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Where the token came from (`FLY_API_TOKEN`, `stored token`, …).
    pub token_source: String,
    /// `FlyV1` (macaroon) or `Bearer`.
    pub scheme: String,
    /// The Machines API base the token was checked against.
    pub api_hostname: String,
    /// What `GET /v1/tokens/current` says each token in the header reaches.
    pub tokens: Vec<TokenScope>,
    /// Org slugs visible through GraphQL (`None` when the token may not list them).
    pub organizations: Option<Vec<String>>,
    /// Why the org list is missing, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations_error: Option<String>,
    /// The default org for calls that name none (`FLY_ORG`, else `personal`).
    pub default_org: String,
    /// The caveats of each macaroon of the token, in words (decoded here, from the
    /// token itself; empty for a token that is not a macaroon).
    pub caveats: Vec<MacaroonCaveats>,
}

/// One macaroon of the token and what its caveats allow.
#[derive(Debug, Clone, Serialize)]
pub struct MacaroonCaveats {
    /// `permission` (a Fly permission token, at `https://api.fly.io/v1`) or `other`
    /// (a discharge of a third-party caveat, or a token for another location).
    pub kind: &'static str,
    /// Its location.
    pub location: String,
    /// Each caveat in words, oldest first.
    pub caveats: Vec<String>,
}

/// The token's macaroons and their caveats in words; org ids named by `orgs`.
pub fn describe_caveats(token: &fly::Token, orgs: &[fly::Organization]) -> Vec<MacaroonCaveats> {
    let org_name = |id: u64| {
        orgs.iter()
            .find(|o| o.internal_numeric_id.and_then(|i| u64::try_from(i).ok()) == Some(id))
            .map(|o| o.slug.clone())
    };
    token
        .macaroons()
        .into_iter()
        .map(|m| MacaroonCaveats {
            kind: if m.permission { "permission" } else { "other" },
            location: m.location,
            caveats: m.caveats.iter().map(|c| c.describe(&org_name)).collect(),
        })
        .collect()
}

/// One token's reach.
#[derive(Debug, Clone, Serialize)]
pub struct TokenScope {
    /// Org slug the token is scoped to.
    pub org: Option<String>,
    /// The user, for user tokens.
    pub user: Option<String>,
    /// Apps it is restricted to; empty means every app of the org.
    pub apps: Vec<String>,
    /// Machine it is restricted to.
    pub machine: Option<String>,
}

fn source_name(source: TokenSource) -> &'static str {
    match source {
        TokenSource::Explicit => "--access-token",
        TokenSource::FlyApiToken => "FLY_API_TOKEN",
        TokenSource::FlyAccessToken => "FLY_ACCESS_TOKEN",
        TokenSource::Stored => "stored token (auth login)",
        TokenSource::FlyctlConfig => "flyctl login (~/.fly/config.yml)",
    }
}

fn settings(
    ctx: &AuthContext,
    explicit: Option<SecretString>,
) -> Result<(FlySettings, Option<TokenSource>), AuthError> {
    FlySettings::resolve_with_source(explicit, &*ctx.env, ctx.home.as_deref())
        .map_err(|source| AuthError::Config { source })
}

fn client(settings: &FlySettings) -> Result<fly::Client, AuthError> {
    let cfg = settings.client_config().map_err(|source| AuthError::Fly {
        op: "configuring the Fly client",
        source: Box::new(source),
    })?;
    fly::Client::new(cfg).map_err(|source| AuthError::Fly {
        op: "configuring the Fly client",
        source: Box::new(source),
    })
}

/// Asks Fly what the token reaches: `GET /v1/tokens/current`, which describes the
/// macaroons of the header. A token that is not a macaroon (an OAuth or personal
/// token, sent as `Bearer`) is not described there, so a refusal of it falls back to
/// GraphQL `viewer`, which any user token may read.
async fn token_scopes(
    client: &fly::Client,
    scheme: fly::AuthScheme,
) -> Result<Vec<TokenScope>, AuthError> {
    let rejected = |op: &'static str| {
        move |source: fly::Error| match source.status() {
            Some(status @ (401 | 403)) => AuthError::Rejected { status },
            _ => AuthError::Fly {
                op,
                source: Box::new(source),
            },
        }
    };
    let info = match client.current_token().await {
        Ok(info) => info,
        Err(e)
            if scheme == fly::AuthScheme::Bearer
                && e.status().is_some_and(|s| (400..500).contains(&s)) =>
        {
            tracing::debug!(error = %e, "tokens/current does not describe this token; asking GraphQL viewer");
            let viewer = client
                .viewer()
                .await
                .map_err(rejected("checking the token (GraphQL viewer)"))?;
            return Ok(vec![TokenScope {
                org: None,
                user: Some(viewer.email).filter(|e| !e.is_empty()),
                apps: Vec::new(),
                machine: None,
            }]);
        }
        Err(e) => return Err(rejected("checking the token (GET /v1/tokens/current)")(e)),
    };
    Ok(info
        .tokens
        .into_iter()
        .map(|t| TokenScope {
            org: t.org_slug.filter(|s| !s.is_empty()),
            user: t.user.filter(|s| !s.is_empty()),
            apps: t.apps,
            machine: t.restricted_to_machine.filter(|s| !s.is_empty()),
        })
        .collect())
}

/// Reads the token `auth login` stores: the first non-empty line of `stdin`.
pub fn read_token(stdin: &mut dyn BufRead) -> Result<SecretString, AuthError> {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdin
            .read_line(&mut line)
            .map_err(|source| AuthError::ReadStdin { source })?;
        if read == 0 {
            return Err(AuthError::EmptyToken);
        }
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            let token = SecretString::from(trimmed.to_owned());
            line.clear();
            return Ok(token);
        }
    }
}

/// Writes `token` to `path`: directory 0700, file 0600, replaced atomically.
fn write_token_file(path: &Path, token: &SecretString) -> Result<(), AuthError> {
    use secrecy::ExposeSecret;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AuthError::Write { path, source }
    };
    let dir = path.parent().ok_or(AuthError::NoConfigDir)?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(write_err(dir))?;

    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            // An old temporary file may have had wider permissions.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(token.expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: don't leave a partial token file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_err(path))
}

/// `auth login`.
async fn login(
    args: &LoginArgs,
    ctx: &AuthContext,
    token: Option<SecretString>,
    out: &mut (dyn Write + Send),
) -> Result<(), AuthError> {
    let path = ctx.token_path().ok_or(AuthError::NoConfigDir)?;
    let token = token.ok_or(AuthError::EmptyToken)?;
    if fly::Token::from_secret(&token).is_none() {
        return Err(AuthError::EmptyToken);
    }
    let mut verified = None;
    if !args.no_verify {
        let (settings, _) = settings(ctx, Some(token.clone()))?;
        let scheme = settings
            .token
            .as_ref()
            .map_or(fly::AuthScheme::Bearer, fly::Token::scheme);
        verified = Some(token_scopes(&client(&settings)?, scheme).await?);
    }
    write_token_file(&path, &token)?;
    let mut text = format!("Token stored in {} (mode 0600).\n", path.display());
    match &verified {
        Some(scopes) => {
            for scope in scopes {
                text.push_str(&format!("Verified: {}\n", describe(scope)));
            }
            if scopes.is_empty() {
                text.push_str("Verified with Fly.\n");
            }
        }
        None => text.push_str("Not verified (--no-verify); check it with `auth status`.\n"),
    }
    for var in ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN"] {
        if ctx.env_set(var) {
            text.push_str(&format!(
                "Note: {var} is set in this environment and takes precedence over the stored token.\n"
            ));
        }
    }
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

fn describe(scope: &TokenScope) -> String {
    let mut parts = Vec::new();
    if let Some(org) = &scope.org {
        parts.push(format!("org {org}"));
    }
    if let Some(user) = &scope.user {
        parts.push(format!("user {user}"));
    }
    if scope.apps.is_empty() {
        parts.push("all apps".to_owned());
    } else {
        parts.push(format!("apps {}", scope.apps.join(", ")));
    }
    if let Some(machine) = &scope.machine {
        parts.push(format!("machine {machine}"));
    }
    parts.join(", ")
}

/// Resolves the token as `serve` would and asks Fly what it reaches.
pub async fn status_report(ctx: &AuthContext) -> Result<StatusReport, AuthError> {
    let (settings, source) = settings(ctx, None)?;
    let (Some(token), Some(source)) = (&settings.token, source) else {
        return Err(AuthError::NoToken {
            stored: ctx.token_path().map_or_else(
                || "the stored token".to_owned(),
                |p| p.display().to_string(),
            ),
        });
    };
    let scheme = token.scheme().as_str().to_owned();
    let client = client(&settings)?;
    let tokens = token_scopes(&client, token.scheme()).await?;
    let (organizations, organizations_error, caveats) = match client.organizations().await {
        Ok(orgs) => (
            Some(orgs.iter().map(|o| o.slug.clone()).collect()),
            None,
            describe_caveats(token, &orgs),
        ),
        Err(err) => (None, Some(err.to_string()), describe_caveats(token, &[])),
    };
    Ok(StatusReport {
        token_source: source_name(source).to_owned(),
        scheme,
        api_hostname: settings.api_hostname.to_string(),
        tokens,
        organizations,
        organizations_error,
        default_org: settings.default_org,
        caveats,
    })
}

fn render_status(report: &StatusReport) -> String {
    let mut text = format!(
        "Token source:  {}\nScheme:        {}\nAPI:           {}\nDefault org:   {}\n",
        report.token_source, report.scheme, report.api_hostname, report.default_org
    );
    for scope in &report.tokens {
        text.push_str(&format!("Reaches:       {}\n", describe(scope)));
    }
    match (&report.organizations, &report.organizations_error) {
        (Some(orgs), _) if orgs.is_empty() => text.push_str("Organizations: (none)\n"),
        (Some(orgs), _) => text.push_str(&format!("Organizations: {}\n", orgs.join(", "))),
        (None, Some(err)) => text.push_str(&format!("Organizations: not listed ({err})\n")),
        (None, None) => text.push_str("Organizations: not listed\n"),
    }
    for mac in &report.caveats {
        if mac.caveats.is_empty() {
            text.push_str(&format!("Caveats:       {} token: none\n", mac.kind));
            continue;
        }
        text.push_str(&format!("Caveats:       {} token:\n", mac.kind));
        for caveat in &mac.caveats {
            text.push_str(&format!("                 - {caveat}\n"));
        }
    }
    text
}

/// `auth logout`.
fn logout(ctx: &AuthContext, out: &mut (dyn Write + Send)) -> Result<(), AuthError> {
    let path = ctx.token_path().ok_or(AuthError::NoConfigDir)?;
    let mut text = match std::fs::remove_file(&path) {
        Ok(()) => format!("Removed the stored token {}.\n", path.display()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            format!(
                "No stored token at {}; nothing to remove.\n",
                path.display()
            )
        }
        Err(source) => return Err(AuthError::Remove { path, source }),
    };
    for var in ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN"] {
        if ctx.env_set(var) {
            text.push_str(&format!("Note: {var} is still set in this environment.\n"));
        }
    }
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// Runs `auth` against `ctx`, writing messages to `out`. `login_token` is what `login`
/// read from stdin ([`read_token`]); the other subcommands ignore it.
pub async fn auth(
    args: &AuthArgs,
    ctx: &AuthContext,
    login_token: Option<SecretString>,
    out: &mut (dyn Write + Send),
) -> Result<(), AuthError> {
    match &args.command {
        AuthCommand::Login(login_args) => login(login_args, ctx, login_token, out).await,
        AuthCommand::Status(status_args) => {
            let report = status_report(ctx).await?;
            let text = if status_args.json {
                serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
            } else {
                render_status(&report)
            };
            let _ = out.write_all(text.as_bytes());
            Ok(())
        }
        AuthCommand::Logout => logout(ctx, out),
    }
}

/// `fly-machines-mcp auth`: exit 0 on success, 1 on failure, 2 when input is missing.
pub async fn run_auth(args: AuthArgs) -> ExitCode {
    let ctx = AuthContext::from_system();
    // Read stdin before anything async: the token never comes from an argument.
    let login_token = match &args.command {
        AuthCommand::Login(_) => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!(
                    "Paste a Fly API token (e.g. from `fly tokens create org`) and press Enter: "
                );
            }
            match read_token(&mut stdin.lock()) {
                Ok(token) => Some(token),
                Err(err) => {
                    eprintln!("error: {err}");
                    return ExitCode::from(2);
                }
            }
        }
        AuthCommand::Status(_) | AuthCommand::Logout => None,
    };
    let mut out = Vec::new();
    let result = auth(&args, &ctx, login_token, &mut out).await;
    let _ = std::io::stdout().write_all(&out);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut text = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{text}");
            match err {
                AuthError::EmptyToken | AuthError::NoToken { .. } => ExitCode::from(2),
                AuthError::NoConfigDir
                | AuthError::ReadStdin { .. }
                | AuthError::Config { .. }
                | AuthError::Rejected { .. }
                | AuthError::Fly { .. }
                | AuthError::Write { .. }
                | AuthError::Remove { .. } => ExitCode::FAILURE,
            }
        }
    }
}
