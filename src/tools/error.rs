//! The MCP layer's error: what a tool call can fail with, and how the model reads it.
//!
//! Display texts are short and actionable (the model reads them as `isError`
//! results); the full chain goes to the log. Nothing here may contain a token or a
//! secret value: every message still passes the redaction choke point.

use crate::workflows;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No tool of that name exists in this build.
    #[error("unknown tool '{name}'; call tools/list to see the tools this server offers")]
    UnknownTool { name: String },
    /// The tool exists but this server instance does not offer it.
    #[error("tool '{name}' is not available on this server: {reason}")]
    Disabled { name: String, reason: String },
    /// An argument is missing, mistyped or out of range.
    #[error("invalid argument '{field}': {message}")]
    InvalidArgument { field: String, message: String },
    /// A safety rule forbids the call.
    #[error("refused by {rule}: {message}")]
    Refused { rule: String, message: String },
    /// A destructive call needs confirmation; the plan says what would be destroyed.
    #[error(
        "confirmation required{note}\nThis call would destroy:\n{description}\nNothing has been changed. To go ahead, repeat the same call with \"confirm\": \"{token}\" (valid {valid_for_s} s, for exactly this plan)."
    )]
    ConfirmationRequired {
        token: String,
        description: String,
        /// Why an earlier `confirm` did not go ahead, and warnings.
        note: String,
        valid_for_s: u64,
    },
    /// The user declined (or cancelled) the confirmation.
    #[error("not confirmed ({reason}); nothing was destroyed")]
    NotConfirmed { reason: String },
    /// Part of the work failed; the report says what was and was not done.
    #[error("{summary}")]
    Incomplete { summary: String },
    /// The domain layer failed.
    #[error(transparent)]
    Workflow(Box<workflows::Error>),
    /// A bug or an impossible state in this server.
    #[error("internal error: {context}")]
    Internal { context: String },
}

impl From<workflows::Error> for ToolError {
    fn from(e: workflows::Error) -> Self {
        ToolError::Workflow(Box::new(e))
    }
}

/// A bulk tool's result: `report` itself, or, when part of the work `failed`, an
/// [`ToolError::Incomplete`] carrying the report's text (what was and was not done).
pub fn complete_or_incomplete<R: super::ToolOutput>(
    failed: bool,
    report: R,
) -> Result<R, ToolError> {
    if failed {
        return Err(ToolError::Incomplete {
            summary: report.render_text(),
        });
    }
    Ok(report)
}

impl ToolError {
    /// A short machine-readable kind, used by `call` and the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::Disabled { .. } => "disabled",
            ToolError::InvalidArgument { .. } => "invalid_argument",
            ToolError::Refused { .. } => "refused",
            ToolError::ConfirmationRequired { .. } => "confirmation_required",
            ToolError::NotConfirmed { .. } => "not_confirmed",
            ToolError::Incomplete { .. } => "incomplete",
            ToolError::Workflow(_) => "failed",
            ToolError::Internal { .. } => "internal",
        }
    }

    /// True when the caller got the call wrong (the `call` command exits 2).
    pub fn is_usage(&self) -> bool {
        match self {
            ToolError::UnknownTool { .. } | ToolError::InvalidArgument { .. } => true,
            ToolError::Disabled { .. }
            | ToolError::Refused { .. }
            | ToolError::ConfirmationRequired { .. }
            | ToolError::NotConfirmed { .. }
            | ToolError::Incomplete { .. }
            | ToolError::Workflow(_)
            | ToolError::Internal { .. } => false,
        }
    }
}
