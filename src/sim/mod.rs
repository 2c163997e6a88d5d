//! A faithful, stateful, in-memory simulator of Fly's platform (axum, loopback only):
//! the Machines REST API (`/v1/…`), GraphQL (`POST /graphql`), the logs API
//! (`GET /api/v1/apps/{app}/logs`) and a control API under `/__sim/`, all on one port.
//!
//! Has its own wire types and JSON builders written from the spec; it must never
//! import anything from `crate::fly` or `crate::config` (a shared serde mistake would
//! pass every test). The client is pointed at it with `FLY_API_HOSTNAME=<base_url>`
//! and `FLY_API_BASE_URL=<base_url>`.
//!
//! # Time
//! The simulator keeps its own clock (`clock`). In *automatic* mode it follows real
//! time and a background task runs machine transitions when they fall due. In *stepped*
//! mode (tests) it only moves when [`SimHandle::advance`] or
//! `POST /__sim/clock/advance` is called; ids come from a seeded generator, so a run is
//! deterministic.
//!
//! # Latency model
//! See [`LatencyModel`]: every transition's default duration, scaled by
//! [`SimConfig::time_scale`] (`0` = instant).
//!
//! # Realism
//! See [`Realism`]: Fly's eventual consistency (a new app answering 404 for a moment,
//! secrets reaching hosts late, destroyed volumes lingering in transitional states,
//! idempotency keys that expire), lease nonces visible to any reader and a full region
//! ([`FULL_REGION`]: capacity errors), on by default; `sim --realism off` (or
//! `POST /__sim/realism {"enabled": false}`) gives the ideal platform.
//!
//! # Test conventions
//! An image whose tag starts with `unhealthy` (e.g. `app:unhealthy-2`) boots, but its
//! health checks stay `critical` (a release that never listens): rolling updates use it.
//!
//! # Control API
//! | Method | Path | Effect |
//! |---|---|---|
//! | GET | `/__sim/state` | every resource as JSON |
//! | GET | `/__sim/requests` | request log: method, path, status, sim start/end (ms), real µs, the injected `fault` if any |
//! | POST | `/__sim/faults` | `{"spec":"5xx=0.05,reset=0.02,latency=200ms@0.5"}` or a bare string |
//! | POST | `/__sim/reset` | reload the scenario, clear the request log |
//! | POST | `/__sim/clock/advance` | `{"ms": N}` or `{"seconds": N}`; runs due transitions |
//! | POST | `/__sim/rate-limits` | `{"enabled": bool}` |
//! | POST | `/__sim/realism` | `{"enabled": bool}`: the realistic profile, or the ideal platform |
//! | POST | `/__sim/capacity` | `{"region": "iad", "failures": N, "volume_failures": M}`: the next N machine / M volume creates there fail (503 `insufficient_capacity` / `volume_placement_capacity`) |
//! | POST | `/__sim/machines/{id}/crash` | `{"oom": true}` kill the machine's process (exit event) |
//! | POST | `/__sim/machines/{id}/host` | `{"status": "unreachable"}`: only `incomplete_config` shown; updates and actions answer 503 |
//! | POST | `/__sim/volumes/{id}/usage` | `{"bytes_used": N}` |
//! | POST | `/__sim/tokens` | `{"org": "slug"}`: an org token; `{}`: the viewer's tokens (`{"token": "FlyV1 …"}`) |
//!
//! # Tokens
//! The simulator is a macaroon verifier (`authz`): it mints its tokens with its own
//! root key ([`SimHandle::org_token`], [`SimHandle::viewer_token`], `/__sim/tokens`),
//! checks the signature chain of every macaroon it is sent and enforces the
//! Organization, Apps, Action, ValidityWindow and IfPresent caveats, answering
//! `403 {"error":"unauthorized"}` as Fly does. A token it cannot decode as macaroons is
//! accepted as before (`required_token`, app tokens).

mod app_call;
mod authz;
mod clock;
mod config;
mod config_rules;
mod control;
mod faults;
mod graphql;
mod http;
mod ids;
mod latency;
mod lifecycle;
mod logs;
mod macaroon;
mod machines;
mod model;
mod orgs;
mod platform;
mod ratelimit;
mod realism;
mod rest;
mod scenario;
mod volumes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use faults::FaultConfig;
pub use latency::LatencyModel;
pub use realism::{FULL_REGION, Realism};

use clock::Clock;
use model::World;

/// Which world the simulator starts with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// One personal org, no apps.
    Empty,
    /// The incident of the blog post: a CDN app on 11 machines, two critical checks,
    /// OOM kills and the logs that tell the story.
    Demo,
    /// A JSON or TOML scenario file (the structure is documented in `scenario.rs`).
    File(PathBuf),
}

impl std::str::FromStr for Scenario {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "empty" => Ok(Scenario::Empty),
            "demo" => Ok(Scenario::Demo),
            "" => Err(SimError::Config("empty scenario name".into())),
            path => Ok(Scenario::File(PathBuf::from(path))),
        }
    }
}

/// A token that may only see some apps (Fly's app-scoped deploy tokens).
#[derive(Clone, PartialEq)]
pub struct AppToken {
    /// The token value, without scheme.
    pub token: String,
    /// The app names it may see.
    pub apps: Vec<String>,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken")
            .field("token", &"[redacted]")
            .field("apps", &self.apps)
            .finish()
    }
}

/// Everything the simulator is started with.
#[derive(Clone)]
pub struct SimConfig {
    pub scenario: Scenario,
    pub latency: LatencyModel,
    /// Multiplies every latency; `0.0` makes transitions instant.
    pub time_scale: f64,
    /// Fly's documented per-action token buckets (429 when exhausted).
    pub rate_limits: bool,
    pub faults: FaultConfig,
    /// Fly's eventual consistency and lingering states ([`Realism`]); on by default.
    pub realism: Realism,
    /// The clock only moves through [`SimHandle::advance`].
    pub stepped: bool,
    /// Seeds ids and fault draws.
    pub seed: u64,
    /// When set, any other token (except the app tokens) gets 401.
    pub required_token: Option<String>,
    /// Tokens that see only some apps.
    pub app_tokens: Vec<AppToken>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("scenario", &self.scenario)
            .field("latency", &self.latency)
            .field("time_scale", &self.time_scale)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .field("realism", &self.realism)
            .field("stepped", &self.stepped)
            .field("seed", &self.seed)
            .field(
                "required_token",
                &self.required_token.as_ref().map(|_| "[redacted]"),
            )
            .field("app_tokens", &self.app_tokens)
            .finish()
    }
}

impl SimConfig {
    /// The demo scenario with Fly-like latencies, in real time, for a human to explore
    /// (`serve --sandbox`). No rate limits, no faults; the realistic profile.
    pub fn sandbox() -> Self {
        SimConfig {
            scenario: Scenario::Demo,
            latency: LatencyModel::default(),
            time_scale: 1.0,
            rate_limits: false,
            faults: FaultConfig::default(),
            realism: Realism::realistic(),
            stepped: false,
            seed: 0x5eed_f1f0,
            required_token: None,
            app_tokens: Vec::new(),
        }
    }

    /// An empty world in automatic mode with a tiny time scale (a machine create
    /// reaches `started` in a few milliseconds), a fixed seed, no rate limits and no
    /// faults, under the realistic profile ([`Realism::realistic`], whose windows are
    /// not scaled): convenient for tests of code that calls the API and waits.
    /// For deterministic lifecycle tests use [`SimConfig::stepped`].
    pub fn for_tests() -> Self {
        SimConfig {
            scenario: Scenario::Empty,
            latency: LatencyModel::default(),
            time_scale: 0.001,
            rate_limits: false,
            faults: FaultConfig::default(),
            realism: Realism::realistic(),
            stepped: false,
            seed: 42,
            required_token: None,
            app_tokens: Vec::new(),
        }
    }

    /// Like [`SimConfig::for_tests`] but the clock moves only by
    /// [`SimHandle::advance`], with unscaled latencies: fully deterministic.
    pub fn stepped() -> Self {
        SimConfig {
            stepped: true,
            time_scale: 1.0,
            ..SimConfig::for_tests()
        }
    }

    /// Builder: another scenario.
    pub fn with_scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }

    /// Builder: turn Fly's rate limits on or off.
    pub fn with_rate_limits(mut self, on: bool) -> Self {
        self.rate_limits = on;
        self
    }

    /// Builder: another realism profile ([`Realism::off`] for the ideal platform).
    pub fn with_realism(mut self, realism: Realism) -> Self {
        self.realism = realism;
        self
    }

    /// Builder: require this token.
    pub fn with_required_token(mut self, token: impl Into<String>) -> Self {
        self.required_token = Some(token.into());
        self
    }
}

/// What can go wrong starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("simulator: cannot bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("simulator: cannot read scenario file {path}")]
    ScenarioRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("simulator: invalid scenario {name}: {message}")]
    ScenarioInvalid { name: String, message: String },
    #[error("simulator: invalid configuration: {0}")]
    Config(String),
    #[error("simulator: server failed")]
    Serve(#[source] std::io::Error),
}

/// Shared between handlers, the ticker and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) clock: Clock,
    /// Bumped after every state change; waiters subscribe to it.
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
    /// Wakes the automatic-mode ticker when a transition is scheduled.
    pub(crate) wake: tokio::sync::Notify,
    /// `GET …/wait` calls blocked right now (stepped tests move the clock only while a
    /// call is parked on it).
    pub(crate) waits_in_flight: std::sync::atomic::AtomicUsize,
    pub(crate) cfg: SimConfig,
    /// The root key the simulator mints and verifies macaroons with.
    pub(crate) keys: authz::Keys,
}

impl Shared {
    pub(crate) fn org_token(&self, org: &str) -> Option<String> {
        let id =
            self.with_world(|w, _| rest::resolve_org(w, org).map(|o| o.internal_numeric_id))?;
        Some(format!("FlyV1 {}", self.mint_org(id)))
    }

    pub(crate) fn viewer_token(&self) -> String {
        let ids: Vec<u64> = self.with_world(|w, _| {
            w.orgs
                .values()
                .filter(|o| o.member)
                .map(|o| o.internal_numeric_id)
                .collect()
        });
        let tokens: Vec<String> = ids.into_iter().map(|id| self.mint_org(id)).collect();
        format!("FlyV1 {}", tokens.join(","))
    }

    fn mint_org(&self, id: u64) -> String {
        self.keys.mint(&[macaroon::SimCaveat::Organization {
            id,
            mask: authz::ALL,
        }])
    }

    /// Runs `f` on the world after running every transition that is due.
    /// Never held across an await.
    pub(crate) fn with_world<R>(&self, f: impl FnOnce(&mut World, u64) -> R) -> R {
        let now = self.clock.now_ms();
        let (out, changed, scheduled) = {
            let mut w = self.world.lock().unwrap_or_else(PoisonError::into_inner);
            let before = w.generation;
            let sched_before = w.scheduled_count;
            w.now_ms = now;
            w.run_due(now);
            let out = f(&mut w, now);
            w.run_due(now);
            (
                out,
                w.generation != before,
                w.scheduled_count != sched_before,
            )
        };
        if changed {
            self.changed.send_modify(|g| *g = g.wrapping_add(1));
        }
        if scheduled {
            self.wake.notify_one();
        }
        out
    }

    /// Moves the clock, runs what fell due and wakes every waiter (a `wait` may have
    /// reached its deadline even if nothing changed).
    pub(crate) fn advance_ms(&self, ms: u64) -> u64 {
        self.clock.advance_ms(ms);
        let now = self.with_world(|_, now| now);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
        self.wake.notify_one();
        now
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the simulator on `addr` (use `127.0.0.1:0` in tests).
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> Result<SimHandle, SimError> {
    if !(cfg.time_scale.is_finite() && cfg.time_scale >= 0.0) {
        return Err(SimError::Config(format!(
            "time scale must be a finite number >= 0, got {}",
            cfg.time_scale
        )));
    }
    let clock = Clock::new(cfg.stepped);
    let world = World::load(&cfg, clock.now_ms())?;
    let (changed, _) = tokio::sync::watch::channel(0u64);
    let shared = Arc::new(Shared {
        world: Mutex::new(world),
        clock,
        changed,
        wake: tokio::sync::Notify::new(),
        waits_in_flight: std::sync::atomic::AtomicUsize::new(0),
        keys: authz::Keys::new(cfg.seed),
        cfg,
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let router = http::router(shared.clone());
    tasks.push(tokio::spawn(http::serve(listener, router, stop_rx.clone())));
    if !shared.cfg.stepped {
        tasks.push(tokio::spawn(lifecycle::ticker(shared.clone(), stop_rx)));
    }
    tracing::info!(addr = %local, "simulator listening");
    Ok(SimHandle {
        addr: local,
        shared,
        stop,
        tasks,
    })
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: both the Machines API host and the GraphQL/logs base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stepped mode: moves the clock forward by `d` and runs every transition that
    /// falls due, in order. In automatic mode it only runs what is already due.
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.shared.advance_ms(ms);
    }

    /// How many `GET …/wait` calls are blocked in the simulator right now, waiting for
    /// a state or their timeout. Stepped tests that measure what a client does per
    /// second of simulated wait move the clock only while a call is parked.
    pub fn waits_in_flight(&self) -> usize {
        self.shared
            .waits_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The simulator's current time in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// The simulator's clock, in Unix seconds, for a client that must agree with it
    /// (the validity windows of attenuated tokens).
    pub fn unix_clock(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || i64::try_from(shared.clock.now_ms() / 1000).unwrap_or(i64::MAX)
    }

    /// An org token minted with the simulator's root key (`FlyV1 fm2_…`): one
    /// permission macaroon with an `Organization {org id, rwcdC}` caveat, as Fly's org
    /// tokens carry. `None` when the viewer is not a member of `org` (`personal` works).
    pub fn org_token(&self, org: &str) -> Option<String> {
        self.shared.org_token(org)
    }

    /// The viewer's macaroons: one org token per org the viewer belongs to, comma-joined
    /// as a user's login holds them (`FlyV1 fm2_…,fm2_…`).
    pub fn viewer_token(&self) -> String {
        self.shared.viewer_token()
    }

    /// Every resource, as `GET /__sim/state` shows it.
    pub fn state_json(&self) -> serde_json::Value {
        self.shared.with_world(|w, now| w.state_json(now))
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.with_world(|w, _| w.faults = faults);
    }

    /// Replaces the realism profile (new rules apply to what happens from now on).
    pub fn set_realism(&self, realism: Realism) {
        self.shared.with_world(|w, _| w.realism = realism);
    }

    /// Turns rate limits on or off.
    pub fn set_rate_limits(&self, on: bool) {
        self.shared.with_world(|w, _| w.rate_limits_on = on);
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// `fly-machines-mcp sim`: every flag can also come from the environment
/// (`FLY_MCP_<FLAG>`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "FLY_MCP_ADDR", default_value = "127.0.0.1:4280")]
    pub addr: SocketAddr,
    /// `empty`, `demo`, or the path of a JSON/TOML scenario file.
    #[arg(long, env = "FLY_MCP_SCENARIO", default_value = "demo")]
    pub scenario: String,
    /// Multiplies every latency (0 = instant).
    #[arg(long, env = "FLY_MCP_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Fly's documented rate limits.
    #[arg(long, env = "FLY_MCP_RATE_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub rate_limits: String,
    /// Faults, e.g. `5xx=0.05,reset=0.02,latency=200ms@0.5`.
    #[arg(long, env = "FLY_MCP_FAULTS", default_value = "")]
    pub faults: String,
    /// Fly's eventual consistency (a new app hidden for a moment, secrets that reach
    /// hosts late, volumes lingering after destroy, idempotency keys that expire),
    /// visible lease nonces and a full region (`mad`); `off` gives an ideal platform.
    #[arg(long, env = "FLY_MCP_REALISM", default_value = "on", value_parser = ["on", "off"])]
    pub realism: String,
    /// Require this token (otherwise any token is accepted).
    #[arg(long, env = "FLY_MCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seed for ids and fault draws.
    #[arg(long, env = "FLY_MCP_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Only move the clock through `POST /__sim/clock/advance`.
    #[arg(long, env = "FLY_MCP_STEPPED")]
    pub stepped: bool,
}

impl SimArgs {
    /// The configuration these flags describe.
    pub fn to_config(&self) -> Result<SimConfig, SimError> {
        Ok(SimConfig {
            scenario: self.scenario.parse()?,
            latency: LatencyModel::default(),
            time_scale: self.time_scale,
            rate_limits: self.rate_limits == "on",
            faults: self.faults.parse()?,
            realism: self.realism.parse()?,
            stepped: self.stepped,
            seed: self.seed,
            required_token: self.token.clone(),
            app_tokens: Vec::new(),
        })
    }
}

/// Serves the simulator until Ctrl-C.
pub async fn run(args: SimArgs) -> Result<(), SimError> {
    let cfg = args.to_config()?;
    let handle = start(cfg, args.addr).await?;
    eprintln!(
        "fly simulator listening on {0}\n  export FLY_API_HOSTNAME={0}\n  export FLY_API_BASE_URL={0}\n  control API: {0}/__sim/state",
        handle.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
    Ok(())
}
