//! The `fleet` toolset (opt-in): warm pools of per-user environments — `pool_status`,
//! `pool_fill`, `claim_environment`, `release_environment`, `reap_expired`.
//!
//! The pool logic (metadata, leases, pacing) lives in [`crate::workflows::pool`]; this
//! file only shapes arguments and results and forwards progress.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, DestroyPlan, ToolDef, ToolInfo, ToolOutput, Toolset},
    context::ToolContext,
    error::ToolError,
    render::table,
};
use crate::workflows::pool::{self as wf, ClaimOutcome, ClaimRequest, FillOptions};
use crate::workflows::sched::{CancellationToken, Control, Progress};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::read(POOL_STATUS, pool_status)?,
        ToolDef::write(POOL_FILL, pool_fill)?,
        ToolDef::write(CLAIM_ENVIRONMENT, claim_environment)?,
        ToolDef::write(RELEASE_ENVIRONMENT, release_environment)?,
        ToolDef::destructive(REAP_EXPIRED, plan_reap_expired, reap_expired)?,
    ])
}

/// Most members listed by `pool_status` (the counts always cover all of them).
const MAX_MEMBER_ROWS: usize = 100;

const POOL_STATUS: ToolInfo = ToolInfo {
    name: "pool_status",
    title: "Warm pool status",
    toolset: Toolset::Fleet,
    idempotent: true,
    description: "Show a warm pool of per-user environments: counts of free, claimed, expiring \
(within 15 min), expired, filling and broken members, and the members (machine id, slot, machine \
state, user, expires_at). Use it before pool_fill to see how many are missing, or to find whose \
environment a machine is. Reads only.",
    narrow_hint: "the counts cover every member; only the first 100 members are listed",
};

const POOL_FILL: ToolInfo = ToolInfo {
    name: "pool_fill",
    title: "Fill a warm pool",
    toolset: Toolset::Fleet,
    idempotent: true,
    description: "Pre-create environments (machines of one existing app, built from a template) \
so that claim_environment can hand them out in well under a second: each is created, booted and \
parked suspended (fastest to claim) or stopped (cheapest to keep). Paced under Fly's rate limit \
(1 create per second per app), so 200 take a little over 3 minutes. Resumable: calling it again \
with the same pool and size creates only the missing slots. Does not create the app \
(provision_environment does).",
    narrow_hint: "fill in smaller steps (a smaller size)",
};

const CLAIM_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "claim_environment",
    title: "Claim an environment from a pool",
    toolset: Toolset::Fleet,
    idempotent: true,
    description: "Hand one environment of a warm pool to a user: resumes a suspended one (or \
starts a stopped one), tags it with the user and an expiry, and returns its machine id, URL and \
private address. A user who already holds one gets the same one back with a renewed expiry. Safe \
with several servers on one pool (leases). When nothing is free the call fails with 'pool empty': \
call pool_fill to grow the pool or reap_expired to reclaim expired claims.",
    narrow_hint: "",
};

const RELEASE_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "release_environment",
    title: "Release a claimed environment",
    toolset: Toolset::Fleet,
    idempotent: false,
    description: "Give back a user's environment (by user or machine id). mode `keep` (default) \
suspends it (or stops it) and keeps it for the same user until the claim expires: their next \
claim_environment resumes it. `recycle` parks it and returns it to the pool as it is (only for \
environments that hold no user data). `wipe` destroys it, erasing the user's data, and puts a \
fresh one from the same config in its slot.",
    narrow_hint: "",
};

const REAP_EXPIRED: ToolInfo = ToolInfo {
    name: "reap_expired",
    title: "Destroy expired environments",
    toolset: Toolset::Fleet,
    idempotent: true,
    description: "Destroy the environments of a pool whose claim is past expires_at (and only \
those: free ones and unexpired claims are untouched; a claim renewed meanwhile is spared). \
Confirmed first, unless the server runs with --confirm never. Call pool_fill afterwards to \
replace them.",
    narrow_hint: "",
};

/// The app and pool every fleet tool works on.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolArgs {
    /// App holding the pool's machines.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub pool: String,
}

/// One member of a pool.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemberOut {
    pub machine_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    pub region: String,
    /// Machine state (`suspended`, `started`, …).
    pub machine_state: String,
    /// `free`, `claimed`, `filling` or `broken`.
    pub pool_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Why it counts as broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl From<&wf::Member> for MemberOut {
    fn from(m: &wf::Member) -> Self {
        MemberOut {
            machine_id: m.machine_id.clone(),
            slot: m.slot,
            region: m.region.clone(),
            machine_state: m.machine_state.clone(),
            pool_state: match (&m.broken, m.slot_state) {
                (Some(_), _) | (None, None) => "broken",
                (None, Some(s)) => s.as_str(),
            }
            .to_owned(),
            user: m.user.clone(),
            expires_at: m.expires_at.map(|t| t.to_string()),
            problem: m.broken.clone(),
        }
    }
}

fn member_rows(members: &[MemberOut]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.machine_id.clone(),
                m.slot.map(|s| s.to_string()).unwrap_or_default(),
                m.machine_state.clone(),
                m.pool_state.clone(),
                m.user.clone().unwrap_or_default(),
                m.expires_at.clone().unwrap_or_default(),
                m.problem.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["ID", "SLOT", "STATE", "POOL", "USER", "EXPIRES", "PROBLEM"],
        &rows,
    )
}

/// Result of `pool_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PoolStatusOut {
    pub app: String,
    pub pool: String,
    pub free: usize,
    pub claimed: usize,
    pub expiring: usize,
    pub expired: usize,
    pub filling: usize,
    pub broken: usize,
    /// Members by slot (at most 100; see `members_total`).
    pub members: Vec<MemberOut>,
    pub members_total: usize,
}

impl ToolOutput for PoolStatusOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "pool {} in app {}: {} free, {} claimed ({} expiring, {} expired), {} filling, {} broken\n",
            self.pool,
            self.app,
            self.free,
            self.claimed,
            self.expiring,
            self.expired,
            self.filling,
            self.broken
        );
        out.push_str(&member_rows(&self.members));
        if self.members_total > self.members.len() {
            out.push_str(&format!(
                "\n({} more members not listed)",
                self.members_total - self.members.len()
            ));
        }
        out
    }
}

async fn pool_status(ctx: ToolContext, args: PoolArgs) -> Result<PoolStatusOut, ToolError> {
    let st = wf::status(ctx.client(), &args.app, &args.pool, Timestamp::now()).await?;
    let members_total = st.members.len();
    Ok(PoolStatusOut {
        app: st.app,
        pool: st.pool,
        free: st.free,
        claimed: st.claimed,
        expiring: st.expiring,
        expired: st.expired,
        filling: st.filling,
        broken: st.broken,
        members: st
            .members
            .iter()
            .take(MAX_MEMBER_ROWS)
            .map(MemberOut::from)
            .collect(),
        members_total,
    })
}

/// How free environments wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParkArg {
    /// Suspended: claims resume them (fastest).
    #[default]
    Suspended,
    /// Stopped: claims start them (cheaper while parked, slower to claim).
    Stopped,
}

impl From<ParkArg> for wf::Park {
    fn from(p: ParkArg) -> Self {
        match p {
            ParkArg::Suspended => wf::Park::Suspended,
            ParkArg::Stopped => wf::Park::Stopped,
        }
    }
}

/// Arguments of `pool_fill`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolFillArgs {
    /// App holding the pool's machines (must exist).
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Pool name.
    #[schemars(length(min = 1, max = 40), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub pool: String,
    /// Slots the pool should hold (existing members count).
    #[schemars(range(min = 1, max = 1000))]
    pub size: u32,
    /// Image of every environment, e.g. `registry.fly.io/devbox:latest`.
    #[schemars(length(min = 1, max = 256))]
    pub image: String,
    /// Region code (Fly picks one when left out).
    #[serde(default)]
    #[schemars(length(min = 3, max = 3))]
    pub region: Option<String>,
    /// `shared` (default) or `performance`.
    #[serde(default)]
    pub cpu_kind: Option<String>,
    /// Number of CPUs (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 16))]
    pub cpus: Option<u32>,
    /// Memory in MB (a multiple of 256).
    #[serde(default)]
    #[schemars(range(min = 256, max = 131072))]
    pub memory_mb: Option<u32>,
    /// Environment variables (not secrets: use app secrets for those).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Serve HTTPS on 443 (and HTTP on 80) to this port inside the machine.
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub internal_port: Option<u16>,
    /// How free environments wait: `suspended` (default) or `stopped`.
    #[serde(default)]
    pub park: ParkArg,
}

/// Result of `pool_fill`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PoolFillOut {
    pub app: String,
    pub pool: String,
    pub size: usize,
    pub already_present: usize,
    pub created: usize,
    /// Half-made members from an interrupted fill, now parked.
    pub parked: usize,
    pub failed: usize,
    /// `slot: error` for each failed slot.
    pub failures: Vec<String>,
    /// Retries after Fly answered 429.
    pub rate_limited_retries: usize,
    pub elapsed_ms: u64,
}

impl ToolOutput for PoolFillOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "pool {} in app {}: {} slots; {} already there, {} created, {} parked, {} failed ({} rate-limit retries, {} ms)",
            self.pool,
            self.app,
            self.size,
            self.already_present,
            self.created,
            self.parked,
            self.failed,
            self.rate_limited_retries,
            self.elapsed_ms
        );
        for f in &self.failures {
            out.push_str("\n  ");
            out.push_str(f);
        }
        if self.failed > 0 {
            out.push_str(
                "\ncall pool_fill again with the same arguments to retry the failed slots",
            );
        }
        out
    }
}

/// Runs `work` with a [`Control`] whose progress reports are forwarded to the caller.
async fn with_progress<T, F, Fut>(ctx: &ToolContext, work: F) -> T
where
    F: FnOnce(Control) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (progress, mut rx) = Progress::channel();
    let ctl = Control::new(progress, CancellationToken::new());
    let run = work(ctl);
    let drain = async {
        while let Some(u) = rx.recv().await {
            ctx.progress(u.done, u.total, u.message).await;
        }
    };
    let (out, ()) = tokio::join!(run, drain);
    out
}

async fn pool_fill(ctx: ToolContext, args: PoolFillArgs) -> Result<PoolFillOut, ToolError> {
    let spec = wf::PoolSpec {
        app: args.app.clone(),
        pool: args.pool.clone(),
        region: args.region.clone(),
        config: wf::Template {
            image: args.image.clone(),
            cpu_kind: args.cpu_kind.clone(),
            cpus: args.cpus,
            memory_mb: args.memory_mb,
            env: args.env.clone(),
            internal_port: args.internal_port,
        }
        .to_config(),
        park: args.park.into(),
    };
    let opts = FillOptions::default();
    let client = ctx.client().clone();
    let report = with_progress(&ctx, |ctl| async move {
        wf::fill(&client, &spec, args.size, &opts, &ctl).await
    })
    .await?;
    let out = PoolFillOut {
        app: report.app,
        pool: report.pool,
        size: report.size,
        already_present: report.already_present,
        created: report.created,
        parked: report.parked,
        failed: report.failed.len(),
        failures: report
            .failed
            .iter()
            .map(|(slot, e)| format!("slot {slot}: {e}"))
            .collect(),
        rate_limited_retries: report.rate_limited_retries,
        elapsed_ms: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    if out.failed > 0 {
        return Err(ToolError::Incomplete {
            summary: out.render_text(),
        });
    }
    Ok(out)
}

/// Arguments of `claim_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimArgs {
    /// App holding the pool's machines.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub pool: String,
    /// Who the environment is for (an id or e-mail; kept in machine metadata).
    #[schemars(length(min = 1, max = 128))]
    pub user: String,
    /// Minutes until the claim expires and reap_expired may destroy it (default 60).
    #[serde(default = "default_ttl_minutes")]
    #[schemars(range(min = 1, max = 43200))]
    pub ttl_minutes: u32,
    /// After answering, add one free environment to the pool in the background (from
    /// the claimed one's config), so the pool does not run dry. Default false.
    #[serde(default)]
    pub refill: bool,
}

fn default_ttl_minutes() -> u32 {
    60
}

/// An environment handed to a user.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EnvironmentOut {
    pub app: String,
    pub pool: String,
    pub machine_id: String,
    pub name: String,
    pub region: String,
    pub user: String,
    pub expires_at: String,
    /// Public URL of the app; send `fly-force-instance-id: <machine_id>` to reach this machine.
    pub url: String,
    /// Private address on the app's 6PN network.
    pub private_address: String,
    /// Machine state it was started from (`suspended` is the fast path).
    pub started_from: String,
    /// The user already held it; the expiry was renewed.
    pub renewed: bool,
    /// A background refill was started (see pool_status for its progress).
    pub refilling: bool,
}

impl ToolOutput for EnvironmentOut {
    fn render_text(&self) -> String {
        format!(
            "{} environment for {}: machine {} ({}, {}) in app {}, from {}; expires {}\nurl {} (header fly-force-instance-id: {})\nprivate {}",
            if self.renewed { "renewed" } else { "claimed" },
            self.user,
            self.machine_id,
            self.name,
            self.region,
            self.app,
            self.started_from,
            self.expires_at,
            self.url,
            self.machine_id,
            self.private_address
        ) + if self.refilling {
            "\nrefilling the pool with one more environment in the background (pool_status shows it as filling, then free)"
        } else {
            ""
        }
    }
}

async fn claim_environment(ctx: ToolContext, args: ClaimArgs) -> Result<EnvironmentOut, ToolError> {
    let req = ClaimRequest {
        app: args.app.clone(),
        pool: args.pool.clone(),
        user: args.user.clone(),
        ttl: Duration::from_secs(u64::from(args.ttl_minutes) * 60),
        start_timeout: Duration::from_secs(60),
    };
    match wf::claim(ctx.client(), ctx.pool_listings(), &req, Timestamp::now()).await? {
        ClaimOutcome::Claimed(env) => {
            let refilling = args.refill && !env.renewed;
            if refilling {
                let client = ctx.client().clone();
                let env = env.clone();
                // Outlives the call on purpose; a lost refill is redone by pool_fill.
                tokio::spawn(async move {
                    let opts = FillOptions::default();
                    match wf::refill_after_claim(&client, &env, &opts, &Control::detached()).await {
                        Ok(r) if r.failed.is_empty() => {
                            tracing::info!(app = %env.app, pool = %env.pool, created = r.created, "pool refilled");
                        }
                        Ok(r) => {
                            tracing::warn!(app = %env.app, pool = %env.pool, failed = r.failed.len(), "pool refill incomplete");
                        }
                        Err(e) => {
                            tracing::warn!(app = %env.app, pool = %env.pool, error = %e.source_text(), "pool refill failed");
                        }
                    }
                });
            }
            Ok(claimed_out(env, refilling))
        }
        ClaimOutcome::Empty {
            pool,
            members,
            claimed,
        } => Err(ToolError::Refused {
            rule: "pool empty".into(),
            message: format!(
                "pool {pool} in app {} has no free environment ({claimed} of {members} claimed); call pool_fill to grow it or reap_expired to reclaim expired claims",
                args.app
            ),
        }),
    }
}

fn claimed_out(env: wf::Environment, refilling: bool) -> EnvironmentOut {
    EnvironmentOut {
        app: env.app,
        pool: env.pool,
        machine_id: env.machine_id,
        name: env.name,
        region: env.region,
        user: env.user,
        expires_at: env.expires_at.to_string(),
        url: env.url,
        private_address: env.private_address,
        started_from: env.started_from,
        renewed: env.renewed,
        refilling,
    }
}

/// What happens to a released environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseModeArg {
    /// Park it and keep it for the same user until the claim expires.
    #[default]
    Keep,
    /// Park it and return it to the pool as it is.
    Recycle,
    /// Destroy it (erasing the user's data) and put a fresh one in its slot.
    Wipe,
}

/// Arguments of `release_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseArgs {
    /// App holding the pool's machines.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub app: String,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub pool: String,
    /// The user whose environment to release (or give machine_id).
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub user: Option<String>,
    /// The machine to release (or give user).
    #[serde(default)]
    #[schemars(pattern(r"^[0-9a-f]{14}$"))]
    pub machine_id: Option<String>,
    /// `keep` (default), `recycle` or `wipe`.
    #[serde(default)]
    pub mode: ReleaseModeArg,
    /// Park as `suspended` (default) or `stopped`.
    #[serde(default)]
    pub park: ParkArg,
}

/// Result of `release_environment`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReleaseOut {
    pub app: String,
    pub pool: String,
    pub machine_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub mode: ReleaseModeArg,
    pub parked_as: ParkArg,
    /// For `wipe`: the fresh machine now in the slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

impl ToolOutput for ReleaseOut {
    fn render_text(&self) -> String {
        let who = self.user.as_deref().unwrap_or("nobody");
        match self.mode {
            ReleaseModeArg::Keep => format!(
                "machine {} {} and kept for {who} (their next claim resumes it)",
                self.machine_id,
                park_word(self.parked_as)
            ),
            ReleaseModeArg::Recycle => format!(
                "machine {} {} and back in pool {} (was {who}'s)",
                self.machine_id,
                park_word(self.parked_as),
                self.pool
            ),
            ReleaseModeArg::Wipe => format!(
                "machine {} ({who}'s) destroyed; fresh machine {} {} in its slot of pool {}",
                self.machine_id,
                self.replacement.as_deref().unwrap_or("?"),
                park_word(self.parked_as),
                self.pool
            ),
        }
    }
}

fn park_word(p: ParkArg) -> &'static str {
    match p {
        ParkArg::Suspended => "suspended",
        ParkArg::Stopped => "stopped",
    }
}

async fn release_environment(ctx: ToolContext, args: ReleaseArgs) -> Result<ReleaseOut, ToolError> {
    let target = match (&args.user, &args.machine_id) {
        (Some(u), None) => wf::ReleaseTarget::User(u.clone()),
        (None, Some(id)) => wf::ReleaseTarget::Machine(id.clone()),
        _ => {
            return Err(ToolError::InvalidArgument {
                field: "user".into(),
                message: "give exactly one of user or machine_id".into(),
            });
        }
    };
    let mode = match args.mode {
        ReleaseModeArg::Keep => wf::ReleaseMode::Keep,
        ReleaseModeArg::Recycle => wf::ReleaseMode::Recycle,
        ReleaseModeArg::Wipe => wf::ReleaseMode::Wipe,
    };
    let r = wf::release(
        ctx.client(),
        &args.app,
        &args.pool,
        &target,
        mode,
        args.park.into(),
        Duration::from_secs(120),
    )
    .await?;
    Ok(ReleaseOut {
        app: args.app,
        pool: args.pool,
        machine_id: r.machine_id,
        user: r.user,
        mode: args.mode,
        parked_as: args.park,
        replacement: r.replacement,
    })
}

/// What `reap_expired` would destroy.
#[derive(Debug, Clone, Serialize)]
pub struct ReapPlanOut {
    pub app: String,
    pub pool: String,
    pub now: String,
    pub expired: Vec<MemberOut>,
    #[serde(skip)]
    plan: wf::ReapPlan,
}

impl DestroyPlan for ReapPlanOut {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn binding(&self) -> serde_json::Value {
        // `now` moves by itself; what is expired is the plan.
        serde_json::json!({"app": self.app, "pool": self.pool, "expired": self.expired})
    }

    fn describe(&self) -> String {
        if self.expired.is_empty() {
            return format!(
                "nothing: no claim in pool {} of app {} is past its expiry",
                self.pool, self.app
            );
        }
        format!(
            "{} expired environment(s) of pool {} in app {} (machines destroyed, running ones killed):\n{}",
            self.expired.len(),
            self.pool,
            self.app,
            member_rows(&self.expired)
        )
    }
}

/// One reaped member.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReapedOut {
    pub machine_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `destroyed`, `renewed` (spared), `busy` (leased by someone else) or `failed: …`.
    pub outcome: String,
}

/// Result of `reap_expired`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReapOut {
    pub app: String,
    pub pool: String,
    pub destroyed: usize,
    pub machines: Vec<ReapedOut>,
}

impl ToolOutput for ReapOut {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .machines
            .iter()
            .map(|m| {
                vec![
                    m.machine_id.clone(),
                    m.user.clone().unwrap_or_default(),
                    m.outcome.clone(),
                ]
            })
            .collect();
        format!(
            "pool {} in app {}: {} destroyed\n{}",
            self.pool,
            self.app,
            self.destroyed,
            table(&["ID", "USER", "OUTCOME"], &rows)
        )
    }
}

async fn plan_reap_expired(ctx: ToolContext, args: PoolArgs) -> Result<ReapPlanOut, ToolError> {
    let plan = wf::plan_reap(ctx.client(), &args.app, &args.pool, Timestamp::now()).await?;
    Ok(ReapPlanOut {
        app: plan.app.clone(),
        pool: plan.pool.clone(),
        now: plan.now.to_string(),
        expired: plan.expired.iter().map(MemberOut::from).collect(),
        plan,
    })
}

async fn reap_expired(
    ctx: ToolContext,
    _args: PoolArgs,
    plan: ReapPlanOut,
) -> Result<ReapOut, ToolError> {
    let client = ctx.client().clone();
    let wf_plan = plan.plan.clone();
    let reaped = with_progress(&ctx, |ctl| async move {
        wf::reap(&client, &wf_plan, &ctl).await
    })
    .await;
    let machines: Vec<ReapedOut> = reaped
        .into_iter()
        .map(|r| ReapedOut {
            machine_id: r.machine_id,
            user: r.user,
            outcome: r.outcome,
        })
        .collect();
    let out = ReapOut {
        app: plan.app,
        pool: plan.pool,
        destroyed: machines.iter().filter(|m| m.outcome == "destroyed").count(),
        machines,
    };
    if out.machines.iter().any(|m| m.outcome.starts_with("failed")) {
        return Err(ToolError::Incomplete {
            summary: out.render_text(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, slot: u32, state: &str, pool: &str, user: Option<&str>) -> MemberOut {
        MemberOut {
            machine_id: id.into(),
            slot: Some(slot),
            region: "iad".into(),
            machine_state: state.into(),
            pool_state: pool.into(),
            user: user.map(str::to_owned),
            expires_at: user.map(|_| "2026-11-21T15:00:00Z".to_owned()),
            problem: (pool == "broken").then(|| "free but started".to_owned()),
        }
    }

    #[test]
    fn texts_the_model_reads() {
        let status = PoolStatusOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            free: 1,
            claimed: 1,
            expiring: 0,
            expired: 0,
            filling: 0,
            broken: 1,
            members: vec![
                member("148e1d4ae77d89", 0, "suspended", "free", None),
                member(
                    "2865d90c412e08",
                    1,
                    "started",
                    "claimed",
                    Some("ana@example.com"),
                ),
                member("3d8d413b1e3478", 2, "started", "broken", None),
            ],
            members_total: 3,
        };
        let env = EnvironmentOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            machine_id: "148e1d4ae77d89".into(),
            name: "dev-0".into(),
            region: "iad".into(),
            user: "ana@example.com".into(),
            expires_at: "2026-11-21T15:00:00Z".into(),
            url: "https://devboxes.fly.dev".into(),
            private_address: "148e1d4ae77d89.vm.devboxes.internal".into(),
            started_from: "suspended".into(),
            renewed: false,
            refilling: true,
        };
        let fill = PoolFillOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            size: 3,
            already_present: 1,
            created: 1,
            parked: 0,
            failed: 1,
            failures: vec![
                "slot 2: creating a machine in app devboxes: Fly API answered 503".into(),
            ],
            rate_limited_retries: 2,
            elapsed_ms: 5120,
        };
        let release = ReleaseOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            machine_id: "148e1d4ae77d89".into(),
            user: Some("ana@example.com".into()),
            mode: ReleaseModeArg::Wipe,
            parked_as: ParkArg::Suspended,
            replacement: Some("5683d920b1e908".into()),
        };
        let text = [
            status.render_text(),
            env.render_text(),
            fill.render_text(),
            release.render_text(),
        ]
        .join("\n---\n");
        insta::assert_snapshot!("fleet_texts", text);
    }
}
