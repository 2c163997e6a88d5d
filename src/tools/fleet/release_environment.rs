//! `release_environment`: give back a user's environment (keep, recycle or wipe).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ParkArg;
use crate::tools::args::{AppName, MachineId, NAME_PATTERN};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::pool as wf;

pub(super) const RELEASE_ENVIRONMENT: ToolInfo = ToolInfo {
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
    pub app: AppName,
    /// Pool name.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub pool: String,
    /// The user whose environment to release (or give machine_id).
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    pub user: Option<String>,
    /// The machine to release (or give user).
    #[serde(default)]
    pub machine_id: Option<MachineId>,
    /// `keep` (default), `recycle` or `wipe`.
    #[serde(default)]
    pub mode: ReleaseModeArg,
    /// Park as `suspended` (default) or `stopped`.
    #[serde(default)]
    pub park: ParkArg,
}

/// Result of `release_environment`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReleaseOut {
    pub app: String,
    pub pool: String,
    pub machine_id: String,
    pub user: Option<String>,
    pub mode: ReleaseModeArg,
    pub parked_as: ParkArg,
    /// For `wipe`: the fresh machine now in the slot.
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
            ReleaseModeArg::Wipe => match self.replacement.as_deref() {
                Some(fresh) => format!(
                    "machine {} ({who}'s) destroyed; fresh machine {fresh} {} in its slot of pool {}",
                    self.machine_id,
                    park_word(self.parked_as),
                    self.pool
                ),
                None => format!(
                    "machine {} ({who}'s) destroyed; its slot of pool {} is not refilled yet: call pool_fill",
                    self.machine_id, self.pool
                ),
            },
        }
    }
}

fn park_word(p: ParkArg) -> &'static str {
    match p {
        ParkArg::Suspended => "suspended",
        ParkArg::Stopped => "stopped",
    }
}

pub(super) async fn release_environment(
    ctx: ToolContext,
    args: ReleaseArgs,
) -> Result<ReleaseOut, ToolError> {
    let target = match (&args.user, &args.machine_id) {
        (Some(u), None) => wf::ReleaseTarget::User(u.clone()),
        (None, Some(id)) => wf::ReleaseTarget::Machine(id.to_string()),
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
        app: args.app.into(),
        pool: args.pool,
        machine_id: r.machine_id,
        user: r.user,
        mode: args.mode,
        parked_as: args.park,
        replacement: r.replacement,
    })
}
