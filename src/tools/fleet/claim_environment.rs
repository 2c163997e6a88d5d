//! `claim_environment`: hand one environment of a warm pool to a user.

use std::time::Duration;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::args::{AppName, NAME_PATTERN};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::pool::{self as wf, ClaimOutcome, ClaimRequest, FillOptions};
use crate::workflows::sched::Control;

pub(super) const CLAIM_ENVIRONMENT: ToolInfo = ToolInfo {
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

/// Arguments of `claim_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimArgs {
    /// App holding the pool's machines.
    pub app: AppName,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
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

pub(super) async fn claim_environment(
    ctx: ToolContext,
    args: ClaimArgs,
) -> Result<EnvironmentOut, ToolError> {
    let req = ClaimRequest {
        app: args.app.to_string(),
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
