//! What an HTTP caller may do below the server's own policy: the narrowing a server
//! key carries (keys file, [`keys`]). A [`CallerPolicy`] only ever takes away from the server's [`Policy`]:
//! `read-only` / `no-destroy`, fewer toolsets, `allow-app` / `allow-org` globs, and
//! usage caps ([`caps`]). Pure data and checks; the gate applies them. Knows nothing of
//! HTTP.
//!
//! [`Policy`]: super::safety::Policy

pub mod caps;
pub mod keys;
pub mod oauth;
pub mod resource;

use std::collections::BTreeSet;

use super::{
    catalog::{ToolDef, ToolKind, Toolset},
    error::ToolError,
    safety::GlobRule,
};

/// Usage caps of one caller (counted from Fly, see [`caps`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caps {
    /// Machines this caller may create per rolling 24 hours.
    pub machines_per_day: Option<u32>,
    /// Estimated monthly cost (USD, the `dry_run` pricing) of the machines this caller
    /// created that are running.
    pub monthly_usd: Option<f64>,
}

impl Caps {
    /// True when no cap is set.
    pub fn is_empty(&self) -> bool {
        self.machines_per_day.is_none() && self.monthly_usd.is_none()
    }

    /// The caps in one sentence, for the server instructions.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.machines_per_day {
            parts.push(format!("at most {n} machines created per rolling 24 hours"));
        }
        if let Some(usd) = self.monthly_usd {
            parts.push(format!(
                "at most ${usd:.2}/month estimated for the machines you created that are running"
            ));
        }
        parts.join(" and ")
    }
}

/// What a caller may do, narrower than (or equal to) the server's policy.
#[derive(Debug, Clone, Default)]
pub struct CallerPolicy {
    /// Where the narrowing came from, for refusals: `server key 'ci'`, `OAuth scopes`.
    pub source: String,
    pub read_only: bool,
    pub no_destroy: bool,
    /// `None`: every toolset the server offers.
    pub toolsets: Option<BTreeSet<Toolset>>,
    pub apps: Option<GlobRule>,
    pub orgs: Option<GlobRule>,
    pub caps: Caps,
}

impl CallerPolicy {
    /// Why this caller may not use `tool`, if it may not.
    pub fn blocks(&self, tool: &ToolDef) -> Option<String> {
        let by = &self.source;
        match tool.kind {
            ToolKind::Write | ToolKind::Destructive if self.read_only => {
                return Some(format!("{by} is read-only"));
            }
            ToolKind::Destructive if self.no_destroy => {
                return Some(format!("{by} may not destroy (no-destroy)"));
            }
            ToolKind::Read | ToolKind::Write | ToolKind::Destructive => {}
        }
        match &self.toolsets {
            Some(sets) if !sets.contains(&tool.info.toolset) => Some(format!(
                "{by} is limited to the toolsets {}",
                sets.iter().map(|t| t.name()).collect::<Vec<_>>().join(",")
            )),
            Some(_) | None => None,
        }
    }

    /// True when this caller may see and call `tool`.
    pub fn allows(&self, tool: &ToolDef) -> bool {
        self.blocks(tool).is_none()
    }

    /// Refuses a tool this caller may not use.
    pub fn check_tool(&self, tool: &ToolDef) -> Result<(), ToolError> {
        match self.blocks(tool) {
            Some(reason) => Err(ToolError::Disabled {
                name: tool.info.name.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The sentence appended to the server instructions for this caller, if any.
    pub fn instructions(&self) -> Option<String> {
        (!self.caps.is_empty()).then(|| {
            format!(
                "\nYour caps ({}): {}. A call that would pass a cap is refused before anything is created, saying when room frees up.",
                self.source,
                self.caps.describe()
            )
        })
    }
}
