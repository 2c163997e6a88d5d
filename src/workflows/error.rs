//! The domain layer's error: a failed Fly call with the step it belonged to, or a
//! domain rule (ownership, not found, invalid input) that stopped a workflow.

use crate::fly;

/// Why a workflow stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Fly API call failed.
    #[error("{step}")]
    Fly {
        /// What the workflow was doing, e.g. "listing machines of app cdn-demo".
        step: String,
        #[source]
        source: Box<fly::Error>,
    },
    /// Something the caller named does not exist.
    #[error("{what} '{id}' not found{hint}")]
    NotFound {
        what: &'static str,
        id: String,
        /// What to call next, if anything.
        hint: NextStep,
    },
    /// A domain rule forbids the operation (e.g. `--owned-only`).
    #[error("refused by {rule}: {message}")]
    Refused { rule: String, message: String },
    /// Input that passed the schema but not a domain rule.
    #[error("invalid {field}: {rule}")]
    Invalid { field: String, rule: String },
    /// Fly accepted the operation but its subject did not end where it should (a
    /// machine that failed to start, an app still there after its deletion). Not the
    /// caller's input: `next` says where to look before running the call again.
    #[error("{subject} {outcome}; {next}")]
    NotConverged {
        subject: String,
        outcome: String,
        next: String,
    },
    /// The caller cancelled the call while the workflow was at `step`.
    #[error("cancelled while {step}")]
    Cancelled { step: String },
    /// A multi-step workflow failed at `step`; `report` says what was undone, what
    /// is left and how to resume.
    #[error("step '{step}' failed; {report}. Cause")]
    Partial {
        step: String,
        report: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps a Fly error with the step it belonged to.
    pub fn fly(step: impl Into<String>) -> impl FnOnce(fly::Error) -> Error {
        let step = step.into();
        move |source| Error::Fly {
            step,
            source: Box::new(source),
        }
    }

    /// As [`Error::fly`], except that "not found" becomes `not_found()`: the domain's
    /// [`Error::NotFound`] naming what is missing and what to call next.
    pub(crate) fn fly_or_not_found(
        step: impl Into<String>,
        not_found: impl FnOnce() -> Error,
    ) -> impl FnOnce(fly::Error) -> Error {
        let step = step.into();
        move |e| {
            if e.is_not_found() {
                not_found()
            } else {
                Error::fly(step)(e)
            }
        }
    }

    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Fly { source, .. } => source.is_retryable(),
            Error::Partial { source, .. } => source.is_retryable(),
            Error::NotFound { .. }
            | Error::Refused { .. }
            | Error::Invalid { .. }
            | Error::NotConverged { .. }
            | Error::Cancelled { .. } => false,
        }
    }

    /// True when Fly answered 429 (even after the client's own retries).
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Error::Fly { source, .. } => source.status() == Some(429),
            Error::Partial { source, .. } => source.is_rate_limited(),
            Error::NotFound { .. }
            | Error::Refused { .. }
            | Error::Invalid { .. }
            | Error::NotConverged { .. }
            | Error::Cancelled { .. } => false,
        }
    }
}

/// The rest of a "not found" message: nothing, or what to call next (shown after ": ").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextStep(Option<String>);

impl NextStep {
    /// No next step to suggest.
    pub fn none() -> Self {
        NextStep(None)
    }

    /// Suggests `what` (e.g. "call app_status to see the app's machine ids").
    pub fn to(what: impl Into<String>) -> Self {
        NextStep(Some(what.into()))
    }
}

impl std::fmt::Display for NextStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(what) => write!(f, ": {what}"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// The error with its sources joined by ": " (what the model reads).
    pub fn source_text(&self) -> String {
        crate::chain::text(self)
    }
}
