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
        /// Either empty or ": " followed by what to call next.
        hint: String,
    },
    /// A domain rule forbids the operation (e.g. `--owned-only`).
    #[error("refused by {rule}: {message}")]
    Refused { rule: String, message: String },
    /// Input that passed the schema but not a domain rule.
    #[error("invalid {field}: {rule}")]
    Invalid { field: String, rule: String },
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

    /// True when retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Fly { source, .. } => source.is_retryable(),
            Error::Partial { source, .. } => source.is_retryable(),
            Error::NotFound { .. }
            | Error::Refused { .. }
            | Error::Invalid { .. }
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
            | Error::Cancelled { .. } => false,
        }
    }
}

impl Error {
    /// The error with its sources joined by ": " (what the model reads).
    pub fn source_text(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}
