//! `pool_status`: the counts and members of a warm pool.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::{MemberOut, PoolArgs};
use crate::tools::render::rows;
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::pool as wf;

/// Most members listed by `pool_status` (the counts always cover all of them).
const MAX_MEMBER_ROWS: usize = 100;

pub(super) const POOL_STATUS: ToolInfo = ToolInfo {
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
        out.push_str(&rows(&self.members));
        if self.members_total > self.members.len() {
            out.push_str(&format!(
                "\n({} more members not listed)",
                self.members_total - self.members.len()
            ));
        }
        out
    }
}

pub(super) async fn pool_status(
    ctx: ToolContext,
    args: PoolArgs,
) -> Result<PoolStatusOut, ToolError> {
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
