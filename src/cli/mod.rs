//! The command line (clap): `serve`, `sim`, `call`, `tools`, `install`, `auth`.
//!
//! Owns argument parsing, logging set-up (stderr only, through the redactor) and exit
//! codes. It wires configuration into [`crate::tools`] and [`crate::sim`]; it holds no
//! domain logic. Every flag also reads `FLY_MCP_<FLAG>` from the environment.

use std::{io::Write, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

// `install` and `auth` subcommands (their parsing structs and entry points).
pub mod auth;
pub mod install;

use crate::{
    config::FlySettings,
    fly, sim,
    tools::{
        Caller, Catalog, ConfirmMode, Confirmer, Gate, McpServer, Outcome, Policy, PolicyOptions,
        Redactor, Selection, Steering, audit::AuditLog,
    },
    workflows::secret_refs::RefPolicyOptions,
};

/// Exit code of a tool error (`call`).
const EXIT_TOOL_ERROR: u8 = 1;
/// Exit code of a usage error.
const EXIT_USAGE: u8 = 2;

/// fly-machines-mcp: an MCP server for Fly.io Machines, apps, volumes, IPs, secrets and certificates.
#[derive(Debug, Parser)]
#[command(name = "fly-machines-mcp", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (default) or Streamable HTTP (--http).
    Serve(ServeArgs),
    /// Run the Fly API simulator alone.
    Sim(sim::SimArgs),
    /// Run one tool without an MCP client; prints the structured result as JSON.
    Call(CallArgs),
    /// Print the tool catalog.
    Tools(ToolsArgs),
    /// Add this server to an MCP client's configuration.
    Install(install::InstallArgs),
    /// Store, show or remove the Fly token used by this server.
    Auth(auth::AuthArgs),
}

/// Where the Fly API is and which token to use.
#[derive(Debug, Clone, Args)]
pub struct FlyArgs {
    /// Fly API token (else FLY_API_TOKEN, FLY_ACCESS_TOKEN, `auth login`, ~/.fly/config.yml).
    #[arg(long, env = "FLY_MCP_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// Run against the built-in simulator (demo scenario) started in-process on loopback:
    /// no token, no network.
    #[arg(long, env = "FLY_MCP_SANDBOX")]
    pub sandbox: bool,
}

/// Which tools are offered and the safety rules around them.
#[derive(Debug, Clone, Args)]
pub struct SafetyArgs {
    /// Toolsets to enable (comma-separated; `all`). Default: observe,provision,storage,secrets.
    #[arg(long, env = "FLY_MCP_TOOLSETS", value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// Extra tools to enable by name (comma-separated).
    #[arg(long, env = "FLY_MCP_TOOLS", value_delimiter = ',')]
    pub tools: Vec<String>,
    /// Tools to remove by name (comma-separated).
    #[arg(long, env = "FLY_MCP_EXCLUDE_TOOLS", value_delimiter = ',')]
    pub exclude_tools: Vec<String>,
    /// Offer only read-only tools (others are hidden and refused).
    #[arg(long, env = "FLY_MCP_READ_ONLY")]
    pub read_only: bool,
    /// Offer no destructive tools.
    #[arg(long, env = "FLY_MCP_NO_DESTROY")]
    pub no_destroy: bool,
    /// How destructive calls are confirmed.
    #[arg(long, env = "FLY_MCP_CONFIRM", value_enum, default_value_t = ConfirmMode::Elicit)]
    pub confirm: ConfirmMode,
    /// Only touch orgs matching these globs (comma-separated).
    #[arg(long, env = "FLY_MCP_ALLOW_ORG", value_delimiter = ',')]
    pub allow_org: Vec<String>,
    /// Only touch apps matching these globs (comma-separated), e.g. `dev-*`.
    #[arg(long, env = "FLY_MCP_ALLOW_APP", value_delimiter = ',')]
    pub allow_app: Vec<String>,
    /// Mutate only machines this server created (ownership metadata).
    #[arg(long, env = "FLY_MCP_OWNED_ONLY")]
    pub owned_only: bool,
    /// Text cap per tool result, in bytes (default 16384).
    #[arg(long, env = "FLY_MCP_MAX_OUTPUT", value_parser = clap::value_parser!(u32).range(256..=16_777_216))]
    pub max_output: Option<u32>,
    /// Append one JSON line per write/destructive call to this file.
    #[arg(long, env = "FLY_MCP_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// Let set_secrets take `literal:VALUE` (the value passes through the model).
    /// Off: values only by reference, `env:VAR` or `file:PATH` read on this server.
    #[arg(long, env = "FLY_MCP_ALLOW_LITERAL_SECRETS")]
    pub allow_literal_secrets: bool,
    /// Environment variables `env:NAME` references may read (comma-separated globs,
    /// e.g. `APP_*`). Default none. Never the token's sources or `FLY_MCP_*`.
    #[arg(long, env = "FLY_MCP_SECRET_ENV", value_delimiter = ',')]
    pub secret_env: Vec<String>,
    /// The directory `file:PATH` references may read, and `deploy_mcp_server` may
    /// write key files to. Default none. Never the server's credential files.
    #[arg(long, env = "FLY_MCP_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
    /// Key that signs argument-confirmation tokens; replicas given the same key accept
    /// each other's tokens (default: a random key per process).
    #[arg(long, env = "FLY_MCP_CONFIRM_KEY", hide_env_values = true)]
    pub confirm_key: Option<String>,
    /// Send the Fly token as it is. By default a macaroon token is narrowed before
    /// every call (read-only, org, app, actions, a few minutes) so Fly refuses the rest.
    #[arg(long, env = "FLY_MCP_NO_ATTENUATE")]
    pub no_attenuate: bool,
}

impl SafetyArgs {
    /// The policy these flags describe; `credentials` are the server's own credential
    /// files beyond those every server has (e.g. the server keys file).
    fn policy_options(&self, credentials: &[PathBuf]) -> PolicyOptions {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut all = crate::config::credential_paths(&env, dirs::home_dir().as_deref());
        all.extend(credentials.iter().cloned());
        // A keys file named in the environment is closed to every command, `call`
        // included, not only to the `serve` that reads it.
        all.extend(env("FLY_MCP_AUTH_KEYS").map(PathBuf::from));
        PolicyOptions {
            selection: Selection {
                toolsets: self.toolsets.clone(),
                tools: self.tools.clone(),
                exclude_tools: self.exclude_tools.clone(),
            },
            read_only: self.read_only,
            no_destroy: self.no_destroy,
            confirm: self.confirm,
            allow_org: self.allow_org.clone(),
            allow_app: self.allow_app.clone(),
            owned_only: self.owned_only,
            max_output: self.max_output.map(|m| m as usize),
            secret_refs: RefPolicyOptions {
                env_globs: self.secret_env.clone(),
                dir: self.secrets_dir.clone(),
                allow_literal: self.allow_literal_secrets,
                credentials: all,
            },
            confirm_key: self.confirm_key.clone().map(SecretString::from),
            confirm_ttl: None,
            no_attenuate: self.no_attenuate,
        }
    }
}

/// `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub fly: FlyArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// `serve --http`: the Streamable HTTP transport.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Serve MCP over Streamable HTTP on this address (path /mcp, plus /healthz).
    #[arg(long, env = "FLY_MCP_HTTP")]
    pub http: Option<SocketAddr>,
    /// Server keys file: one key per line, `#` comments, optional `id:key`. Re-read on change.
    #[arg(long, env = "FLY_MCP_AUTH_KEYS", conflicts_with = "per_request_token")]
    pub auth_keys: Option<PathBuf>,
    /// Passthrough: each request's bearer is the caller's own Fly token.
    #[arg(long, env = "FLY_MCP_PER_REQUEST_TOKEN")]
    pub per_request_token: bool,
    /// OAuth 2.1 resource server: accept JWT access tokens from this issuer (its metadata names the JWKS).
    #[arg(long, env = "FLY_MCP_OAUTH_ISSUER", conflicts_with_all = ["auth_keys", "per_request_token"])]
    pub oauth_issuer: Option<String>,
    /// OAuth: this server's resource URL, the `aud` tokens must carry (default http://ADDR/mcp).
    #[arg(long, env = "FLY_MCP_OAUTH_AUDIENCE", requires = "oauth_issuer")]
    pub oauth_audience: Option<String>,
    /// OAuth: machines each token subject may create per rolling 24 hours (counted from Fly).
    #[arg(
        long,
        env = "FLY_MCP_OAUTH_MAX_MACHINES_PER_DAY",
        requires = "oauth_issuer"
    )]
    pub oauth_max_machines_per_day: Option<u32>,
    /// OAuth: estimated monthly USD of the running machines each token subject created.
    #[arg(long, env = "FLY_MCP_OAUTH_MAX_MONTHLY_USD", requires = "oauth_issuer")]
    pub oauth_max_monthly_usd: Option<f64>,
    /// Extra Host header values to accept (comma-separated), e.g. behind a proxy.
    #[arg(long, env = "FLY_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Extra browser Origins to accept (comma-separated); loopback origins are always accepted.
    #[arg(long, env = "FLY_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest HTTP request body, in bytes.
    #[arg(long, env = "FLY_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Close HTTP sessions idle this long (e.g. 10m).
    #[arg(long, env = "FLY_MCP_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// The Fly Machine this replica runs on (Fly sets FLY_MACHINE_ID): MCP task ids name it, and a task poll reaching another replica is answered with `fly-replay` to this one.
    #[arg(long, env = "FLY_MACHINE_ID")]
    pub instance_id: Option<String>,
}

impl HttpArgs {
    /// The transport options these flags describe.
    pub fn options(&self) -> crate::tools::http::HttpOptions {
        crate::tools::http::HttpOptions {
            auth: match (&self.auth_keys, self.per_request_token, &self.oauth_issuer) {
                (_, _, Some(issuer)) => {
                    crate::tools::http::HttpAuth::OAuth(crate::tools::auth::oauth::OAuthSettings {
                        issuer: issuer.clone(),
                        audience: self.oauth_audience.clone(),
                        caps: crate::tools::auth::Caps {
                            machines_per_day: self.oauth_max_machines_per_day,
                            monthly_usd: self.oauth_max_monthly_usd,
                        },
                    })
                }
                (Some(path), _, None) => crate::tools::http::HttpAuth::Keys(path.clone()),
                (None, true, None) => crate::tools::http::HttpAuth::Passthrough,
                (None, false, None) => crate::tools::http::HttpAuth::None,
            },
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            max_body_bytes: self.max_body_bytes,
            idle_timeout: self.idle_timeout,
        }
    }

    /// Rejects flag combinations that cannot work, before anything starts.
    pub fn check(&self, _sandbox: bool) -> Result<(), String> {
        match self.http {
            Some(addr) => crate::tools::http::check_bind(addr, &self.options().auth)
                .map_err(|e| e.to_string()),
            None if self.auth_keys.is_some()
                || self.per_request_token
                || self.oauth_issuer.is_some() =>
            {
                Err(
                    "--auth-keys, --per-request-token and --oauth-issuer need --http ADDR"
                        .to_owned(),
                )
            }
            None => Ok(()),
        }
    }
}

/// `call TOOL --args JSON`.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// The tool name.
    pub tool: String,
    /// The arguments as a JSON object.
    #[arg(long, default_value = "{}")]
    pub args: String,
    #[command(flatten)]
    pub fly: FlyArgs,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

/// `tools`.
#[derive(Debug, Clone, Args)]
pub struct ToolsArgs {
    /// Full JSON (schemas and annotations) instead of a table.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// The Markdown tool reference README.md carries (every tool, whatever the filters).
    #[arg(long)]
    pub markdown: bool,
    #[command(flatten)]
    pub safety: SafetyArgs,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let redactor = Redactor::new();
    init_logging(&redactor);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fly-machines-mcp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli, redactor))
}

fn init_logging(redactor: &Redactor) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(redactor.stderr_writer())
        .with_ansi(false)
        .try_init();
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, redactor: Redactor) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve(args, redactor).await,
        Command::Sim(args) => match sim::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&redactor, &e, ExitCode::FAILURE),
        },
        Command::Call(args) => call(args, redactor).await,
        Command::Tools(args) => tools(&args),
        Command::Install(args) => install::run_install(args),
        Command::Auth(args) => auth::run_auth(args).await,
    }
}

fn fail(redactor: &Redactor, err: &(dyn std::error::Error + 'static), code: ExitCode) -> ExitCode {
    let text = crate::chain::text(err);
    eprintln!("fly-machines-mcp: {}", redactor.redact(&text));
    code
}

/// A started backend: the Fly client, default org, and the simulator if sandboxed
/// (kept alive while it is held).
pub struct Backend {
    pub client: fly::Client,
    pub default_org: String,
    pub sandbox: Option<sim::SimHandle>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("default_org", &self.default_org)
            .field("sandbox", &self.sandbox.is_some())
            .finish_non_exhaustive()
    }
}

/// The token the sandbox client presents to the simulator.
const SANDBOX_TOKEN: &str = "sandbox-token";

/// Resolves settings (or starts the sandbox) and builds the Fly client. Every raw token
/// value seen is registered with the redactor first.
pub async fn backend(fly_args: &FlyArgs, redactor: &Redactor) -> Result<Backend, String> {
    if fly_args.sandbox {
        let handle = sim::start(
            sim::SimConfig::sandbox(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .map_err(|e| format!("cannot start the sandbox simulator: {e}"))?;
        let base = url::Url::parse(&handle.base_url()).map_err(|e| format!("sandbox URL: {e}"))?;
        eprintln!(
            "fly-machines-mcp: SANDBOX mode: simulated Fly platform (demo scenario) at {base}; nothing touches real Fly."
        );
        let cfg = fly::ClientConfig::local(base, fly::Token::parse(SANDBOX_TOKEN))
            .map_err(|e| e.to_string())?;
        let client = fly::Client::new(cfg).map_err(|e| e.to_string())?;
        return Ok(Backend {
            client,
            default_org: "personal".to_owned(),
            sandbox: Some(handle),
        });
    }
    let explicit = fly_args.access_token.clone().map(SecretString::from);
    for raw in [
        fly_args.access_token.clone(),
        std::env::var("FLY_API_TOKEN").ok(),
        std::env::var("FLY_ACCESS_TOKEN").ok(),
    ]
    .into_iter()
    .flatten()
    {
        redactor.register(&SecretString::from(raw));
    }
    let env = |k: &str| std::env::var(k).ok();
    let home = dirs::home_dir();
    let settings =
        FlySettings::resolve(explicit, &env, home.as_deref()).map_err(|e| e.to_string())?;
    let cfg = settings.client_config().map_err(|e| e.to_string())?;
    let client = fly::Client::new(cfg).map_err(|e| e.to_string())?;
    Ok(Backend {
        client,
        default_org: settings.default_org,
        sandbox: None,
    })
}

/// Builds the gate from the safety flags.
/// `credentials` are credential files of this server beyond the token's own sources
/// (the server keys file), which no secret reference may read.
pub fn build_gate(
    safety: &SafetyArgs,
    backend: &Backend,
    redactor: &Redactor,
    credentials: &[PathBuf],
) -> Result<Gate, String> {
    let catalog = Catalog::all().map_err(|e| e.to_string())?;
    let policy = Policy::new(&catalog, &safety.policy_options(credentials))?;
    if policy.attenuation.enabled
        && let Some(problem) = backend.client.attenuation_problem()
    {
        tracing::warn!(
            "{problem}: it is sent as it is, so only this server's own checks narrow what it may do (see `auth status`)"
        );
    }
    let audit = match &safety.audit_log {
        Some(path) => Some(
            AuditLog::open(path, redactor.clone())
                .map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(Gate::new(
        catalog,
        policy,
        backend.client.clone(),
        backend.default_org.clone(),
        redactor.clone(),
        audit,
    ))
}

async fn serve(args: ServeArgs, redactor: Redactor) -> ExitCode {
    if let Err(e) = args.http.check(args.fly.sandbox) {
        eprintln!("fly-machines-mcp: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let backend = match backend(&args.fly, &redactor).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fly-machines-mcp: {}", redactor.redact(&e));
            return ExitCode::FAILURE;
        }
    };
    if backend.sandbox.is_none() && !backend.client.has_token() && !args.http.per_request_token {
        tracing::warn!(
            "no Fly token found (--access-token, FLY_API_TOKEN, `auth login`, ~/.fly/config.yml): tool calls will fail"
        );
    }
    let keys_file: Vec<PathBuf> = args.http.auth_keys.iter().cloned().collect();
    let gate = match build_gate(&args.safety, &backend, &redactor, &keys_file) {
        Ok(g) => Arc::new(g.with_tasks(crate::tools::tasks::Tasks::new(
            args.http.instance_id.clone(),
        ))),
        Err(e) => {
            eprintln!("fly-machines-mcp: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match &args.http.http {
        Some(addr) => crate::tools::http::serve(gate, *addr, args.http.options())
            .await
            .map_err(|e| e.to_string()),
        None => serve_stdio(gate).await,
    };
    if let Some(sim) = backend.sandbox {
        sim.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fly-machines-mcp: {}", redactor.redact(&e));
            ExitCode::FAILURE
        }
    }
}

async fn serve_stdio(gate: Arc<Gate>) -> Result<(), String> {
    use rmcp::ServiceExt;
    let service = McpServer::new(gate)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP over stdio failed to start: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| format!("MCP over stdio stopped: {e}"))?;
    Ok(())
}

async fn call(args: CallArgs, redactor: Redactor) -> ExitCode {
    let arguments = match serde_json::from_str::<serde_json::Value>(&args.args) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            eprintln!("fly-machines-mcp: --args must be a JSON object");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("fly-machines-mcp: --args is not valid JSON: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let backend = match backend(&args.fly, &redactor).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fly-machines-mcp: {}", redactor.redact(&e));
            return ExitCode::FAILURE;
        }
    };
    let gate = match build_gate(&args.safety, &backend, &redactor, &[]) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("fly-machines-mcp: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outcome = gate
        .call(
            &args.tool,
            Some(arguments),
            &Caller::default(),
            Confirmer::ArgumentOnly,
            Steering::default(),
        )
        .await;
    if let Some(sim) = backend.sandbox {
        sim.shutdown().await;
    }
    let (json, code) = match outcome {
        Outcome::Ok(rendered) => (rendered.structured, ExitCode::SUCCESS),
        Outcome::Failed {
            kind,
            usage,
            message,
            plan,
        } => {
            eprintln!("fly-machines-mcp: {message}");
            if kind == "confirmation_required" && args.safety.confirm_key.is_none() {
                eprintln!(
                    "fly-machines-mcp: each `call` signs confirmation tokens with a key of its own; \
                     give both calls the same --confirm-key (FLY_MCP_CONFIRM_KEY) to confirm with a second call"
                );
            }
            let mut err = serde_json::json!({ "kind": kind, "message": message });
            if let (Some(plan), Some(obj)) = (plan, err.as_object_mut()) {
                obj.insert("plan".to_owned(), plan);
            }
            let code = if usage { EXIT_USAGE } else { EXIT_TOOL_ERROR };
            (serde_json::json!({ "error": err }), ExitCode::from(code))
        }
        Outcome::InputRequired(_) => (
            serde_json::json!({ "error": { "kind": "input_required", "message": "the tool asked for input the command line cannot give" } }),
            ExitCode::from(EXIT_TOOL_ERROR),
        ),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&json).unwrap_or_default()
    );
    code
}

fn tools(args: &ToolsArgs) -> ExitCode {
    let catalog = match Catalog::all() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fly-machines-mcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match Policy::new(&catalog, &args.safety.policy_options(&[])) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fly-machines-mcp: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut out = std::io::stdout().lock();
    if args.markdown {
        let _ = out.write_all(crate::tools::reference::markdown(&catalog).as_bytes());
        return ExitCode::SUCCESS;
    }
    if args.json {
        let tools: Vec<serde_json::Value> = catalog
            .tools()
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t.to_mcp()).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("toolset".to_owned(), t.info.toolset.name().into());
                    obj.insert("kind".to_owned(), t.kind.name().into());
                    obj.insert("enabled".to_owned(), policy.is_enabled(t.info.name).into());
                }
                v
            })
            .collect();
        let doc = serde_json::json!({ "tools": tools });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
    } else {
        let rows: Vec<Vec<String>> = catalog
            .tools()
            .iter()
            .map(|t| {
                vec![
                    t.info.name.to_owned(),
                    t.info.toolset.name().to_owned(),
                    t.kind.name().to_owned(),
                    if policy.is_enabled(t.info.name) {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_owned(),
                    t.info.title.to_owned(),
                ]
            })
            .collect();
        let _ = write!(
            out,
            "{}",
            crate::tools::render::table(&["TOOL", "TOOLSET", "KIND", "ENABLED", "TITLE"], &rows)
        );
    }
    ExitCode::SUCCESS
}
