//! How one item of a bulk operation ended (a machine updated, cloned, destroyed,
//! started, reaped): one enum for every bulk workflow's report lines, with the name
//! each report shows, so a tool counts and judges outcomes without comparing strings.

/// How one item ended. Each workflow uses the variants that fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action is done (`machine_action`).
    Done,
    /// A new machine exists (`scale_machines`' clones).
    Created,
    /// On the new config, and for a rolling update started with checks passing.
    Updated,
    /// Destroyed (or already gone when its destruction was sent).
    Destroyed,
    /// Already as asked; nothing was sent.
    Unchanged,
    /// Failed after its change and was put back on its previous config.
    Reverted,
    /// Failed after its change, and putting it back failed too: needs attention.
    RevertFailed,
    /// Spared: its claim was renewed meanwhile (`reap_expired`).
    Renewed,
    /// Leased by someone else, so left alone (`reap_expired`).
    Busy,
    /// Gone before it was reached (`reap_expired`).
    AlreadyGone,
    /// Failed (after its retries).
    Failed,
    /// Not attempted: an earlier failure stopped the run, or a rule left it out.
    Skipped,
    /// Not started because the caller cancelled.
    Cancelled,
    /// Not started (`reap_expired`: an earlier item's failure or the caller's cancel).
    NotStarted,
}

impl Outcome {
    /// The name the reports show.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Destroyed => "destroyed",
            Outcome::Unchanged => "unchanged",
            Outcome::Reverted => "reverted",
            Outcome::RevertFailed => "revert_failed",
            Outcome::Renewed => "renewed",
            Outcome::Busy => "busy",
            Outcome::AlreadyGone => "already gone",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Cancelled => "cancelled",
            Outcome::NotStarted => "not started",
        }
    }

    /// True when the item failed, reverted or not (what stops a rolling update).
    pub fn is_failure(self) -> bool {
        match self {
            Outcome::Failed | Outcome::Reverted | Outcome::RevertFailed => true,
            Outcome::Done
            | Outcome::Created
            | Outcome::Updated
            | Outcome::Destroyed
            | Outcome::Unchanged
            | Outcome::Renewed
            | Outcome::Busy
            | Outcome::AlreadyGone
            | Outcome::Skipped
            | Outcome::Cancelled
            | Outcome::NotStarted => false,
        }
    }
}

/// A report line that carries an [`Outcome`].
pub trait HasOutcome {
    /// How this item ended.
    fn outcome(&self) -> Outcome;
}

/// Implements [`HasOutcome`] for report lines that keep their outcome in a field named
/// `outcome`.
macro_rules! outcome_field {
    ($($line:ty),+ $(,)?) => {
        $(impl $crate::workflows::outcome::HasOutcome for $line {
            fn outcome(&self) -> $crate::workflows::outcome::Outcome {
                self.outcome
            }
        })+
    };
}
pub(crate) use outcome_field;

/// How many of `lines` ended with `outcome`.
pub fn count<T: HasOutcome>(lines: &[T], outcome: Outcome) -> usize {
    lines.iter().filter(|l| l.outcome() == outcome).count()
}
