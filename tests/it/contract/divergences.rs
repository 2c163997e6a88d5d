//! The strict list of known divergences (`openapi/divergences.yaml`) and the check that
//! holds a contract run to it: every violation must be listed, and every listed
//! divergence must still happen (one that starts passing fails, so the list shrinks as
//! bugs are fixed). Knows only [`Violation`]s, not where they came from.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::openapi::Violation;

/// Which side of the contract a divergence belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Sim,
    Client,
}

/// One accepted divergence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Divergence {
    pub side: Side,
    /// The operationId the violation is reported under.
    pub operation: String,
    /// For response violations: the status code.
    #[serde(default)]
    pub status: Option<u16>,
    /// A substring of the violation's `location: message` text.
    pub contains: String,
    /// Why it is accepted (or who fixes it).
    pub reason: String,
}

impl Divergence {
    pub fn matches(&self, side: Side, v: &Violation) -> bool {
        self.side == side
            && self.operation == v.operation
            && (self.status.is_none() || self.status == v.status)
            && format!("{}: {}", v.location, v.message).contains(&self.contains)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    divergences: Vec<Divergence>,
}

pub fn divergences_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/divergences.yaml")
}

/// Loads `openapi/divergences.yaml`; each entry must give a non-empty reason.
pub fn load(path: &Path) -> Result<Vec<Divergence>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let file: File =
        serde_yaml::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
    for d in &file.divergences {
        if d.reason.trim().is_empty() || d.contains.trim().is_empty() {
            return Err(format!(
                "divergence on {} needs both `contains` and `reason`",
                d.operation
            ));
        }
    }
    Ok(file.divergences)
}

/// The outcome of holding one run's violations to the list.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// Violations no divergence explains: bugs (or a list to extend, with a reason).
    pub unexpected: Vec<Violation>,
    /// Listed divergences of this side that did not happen: remove them from the list.
    pub stale: Vec<Divergence>,
}

impl Reconciled {
    pub fn is_clean(&self) -> bool {
        self.unexpected.is_empty() && self.stale.is_empty()
    }

    /// A report meant for a failing assertion.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if !self.unexpected.is_empty() {
            out.push_str("violations not listed in openapi/divergences.yaml:\n");
            for v in &self.unexpected {
                out.push_str(&format!("  - {v}\n"));
            }
        }
        if !self.stale.is_empty() {
            out.push_str("listed divergences that no longer happen (remove them):\n");
            for d in &self.stale {
                out.push_str(&format!(
                    "  - {:?} {} {:?}: {}\n",
                    d.side, d.operation, d.status, d.contains
                ));
            }
        }
        out
    }
}

/// Holds `violations` of one side to the divergences listed for that side.
pub fn reconcile(side: Side, list: &[Divergence], violations: &[Violation]) -> Reconciled {
    let mut used = vec![false; list.len()];
    let mut unexpected = Vec::new();
    for v in violations {
        let mut explained = false;
        for (d, hit) in list.iter().zip(used.iter_mut()) {
            if d.matches(side, v) {
                *hit = true;
                explained = true;
            }
        }
        if !explained && !unexpected.contains(v) {
            unexpected.push(v.clone());
        }
    }
    let stale = list
        .iter()
        .zip(&used)
        .filter(|(d, hit)| d.side == side && !**hit)
        .map(|(d, _)| d.clone())
        .collect();
    Reconciled { unexpected, stale }
}
