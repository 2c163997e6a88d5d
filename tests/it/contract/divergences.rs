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

/// A rule of the simulator that is not (or not known to be) Fly's: a value Fly does not
/// document, a shape chosen where Fly's is unverified. Not checked against traffic; the
/// list says what the simulator assumes, so a reader of a passing test knows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorRule {
    /// A short name.
    pub rule: String,
    /// What Fly does, as far as it is known, with its source.
    pub fly: String,
    /// What the simulator does.
    pub simulator: String,
    /// Why the simulator does it so.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    divergences: Vec<Divergence>,
    #[serde(default)]
    simulator_rules: Vec<SimulatorRule>,
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

/// Loads the `simulator_rules` of `openapi/divergences.yaml`; every field must be
/// filled and every name unique.
pub fn load_simulator_rules(path: &Path) -> Result<Vec<SimulatorRule>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let file: File =
        serde_yaml::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let mut seen = std::collections::BTreeSet::new();
    for r in &file.simulator_rules {
        if [&r.rule, &r.fly, &r.simulator, &r.reason]
            .iter()
            .any(|f| f.trim().is_empty())
        {
            return Err(format!(
                "simulator rule {:?} needs rule, fly, simulator and reason",
                r.rule
            ));
        }
        if !seen.insert(r.rule.clone()) {
            return Err(format!("simulator rule {:?} is listed twice", r.rule));
        }
    }
    Ok(file.simulator_rules)
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
