//! The `fleet` toolset (opt-in): warm pools of per-user environments — `pool_status`,
//! `pool_fill`, `claim_environment`, `release_environment`, `reap_expired`.
//!
//! The pool logic (metadata, leases, pacing) lives in [`crate::workflows::pool`]; these
//! files only shape arguments and results and forward progress, one file per tool; the
//! argument and output types several tools share live here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, ToolDef},
    render::table_row,
};
use crate::workflows::pool as wf;

mod claim_environment;
mod pool_fill;
mod pool_status;
mod reap_expired;
mod release_environment;
#[cfg(test)]
mod tests;

pub use claim_environment::*;
pub use pool_fill::*;
pub use pool_status::*;
pub use reap_expired::*;
pub use release_environment::*;

use crate::tools::args::{AppName, NAME_PATTERN};

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

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolArgs {
    /// App holding the pool's machines.
    pub app: AppName,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub pool: String,
}

/// One member of a pool.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemberOut {
    pub machine_id: String,
    pub slot: Option<u32>,
    pub region: String,
    /// Machine state (`suspended`, `started`, …).
    pub machine_state: String,
    /// `free`, `claimed`, `filling` or `broken`.
    pub pool_state: String,
    pub user: Option<String>,
    pub expires_at: Option<String>,
    /// Why it counts as broken.
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

table_row!(MemberOut, |m| {
    "ID": m.machine_id.clone(),
    "SLOT": m.slot.map(|s| s.to_string()).unwrap_or_default(),
    "STATE": m.machine_state.clone(),
    "POOL": m.pool_state.clone(),
    "USER": m.user.clone().unwrap_or_default(),
    "EXPIRES": m.expires_at.clone().unwrap_or_default(),
    "PROBLEM": m.problem.clone().unwrap_or_default(),
});

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
