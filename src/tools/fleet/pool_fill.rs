//! `pool_fill`: pre-create a warm pool's environments, paced and resumable.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ParkArg;
use crate::tools::args::{AppName, NAME_PATTERN, Region};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{millis, tally};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::pool::{self as wf, FillOptions};

pub(super) const POOL_FILL: ToolInfo = ToolInfo {
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

/// Arguments of `pool_fill`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolFillArgs {
    /// App holding the pool's machines (must exist).
    pub app: AppName,
    /// Pool name.
    #[schemars(length(min = 1, max = 40), regex(pattern = NAME_PATTERN))]
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
    pub region: Option<Region>,
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
            "pool {} in app {}: {} slots; {} ({} rate-limit retries, {} ms)",
            self.pool,
            self.app,
            self.size,
            tally(&[
                (self.already_present, "already there"),
                (self.created, "created"),
                (self.parked, "parked"),
                (self.failed, "failed"),
            ]),
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

pub(super) async fn pool_fill(
    ctx: ToolContext,
    args: PoolFillArgs,
) -> Result<PoolFillOut, ToolError> {
    let spec = wf::PoolSpec {
        app: args.app.to_string(),
        pool: args.pool.clone(),
        region: args.region.clone().map(String::from),
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
    let report = ctx
        .steer(|ctl| async move { wf::fill(&client, &spec, args.size, &opts, &ctl).await })
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
        elapsed_ms: millis(report.elapsed),
    };
    complete_or_incomplete(out.failed > 0, out)
}
