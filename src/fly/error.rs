//! The wire layer's one error type, [`Error`], with the context a caller needs
//! (operation, HTTP status, Fly's error code, `fly-request-id`) and classifiers.
//!
//! Display text is short and actionable; it never contains the token (the token
//! is never part of any value stored here). Knows nothing of MCP.

use std::time::Duration;

/// One entry of a GraphQL `errors[]` array, kept in full.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GraphQlError {
    /// Human-readable message.
    pub message: String,
    /// Path into the response, as strings and indices.
    #[serde(default)]
    pub path: Vec<serde_json::Value>,
    /// `extensions.code` when the server gave one.
    #[serde(default)]
    pub code: Option<String>,
}

/// What kind of transport failure happened (decides retry safety).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection was never made: the request was certainly not sent.
    Connect,
    /// The request timed out: it may or may not have taken effect.
    Timeout,
    /// Anything else (reset, broken body): it may or may not have taken effect.
    Other,
}

/// Errors of the Fly API client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fly answered with a non-success HTTP status.
    #[error("{op}: Fly API answered {status}{}: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), request_id.as_deref().map(|r| format!(" [fly-request-id {r}]")).unwrap_or_default())]
    Api {
        /// The operation, e.g. `get_machine`.
        op: &'static str,
        /// HTTP status code.
        status: u16,
        /// Fly's classified error (`status` in the body), e.g. `name_taken`.
        code: Option<String>,
        /// Fly's message (`error` or `message` in the body), or the raw body text.
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The GraphQL API answered with `errors[]`.
    #[error("{op}: GraphQL error: {}", errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "))]
    GraphQl {
        /// The operation, e.g. `organizations`.
        op: &'static str,
        /// Every error the server sent.
        errors: Vec<GraphQlError>,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
    },
    /// The request could not be completed (connect, reset, timeout).
    #[error("{op}: could not reach the Fly API ({kind:?})")]
    Transport {
        /// The operation.
        op: &'static str,
        /// What kind of failure.
        kind: TransportKind,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A response body did not have the shape we expect.
    #[error("{op}: unexpected response shape at `{path}`")]
    Decode {
        /// The operation.
        op: &'static str,
        /// JSON path of the offending value.
        path: String,
        /// The underlying serde error.
        #[source]
        source: serde_json::Error,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
    },
    /// A wait did not reach the wanted state before the caller's deadline.
    #[error("{op}: machine {machine_id} did not reach {wanted} within {waited:?}{}", last_state.as_deref().map(|s| format!(" (last state: {s})")).unwrap_or_default())]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The machine waited on.
        machine_id: String,
        /// The wanted state(s), comma-joined.
        wanted: String,
        /// How long we waited.
        waited: Duration,
        /// The last state seen, if any.
        last_state: Option<String>,
    },
    /// Input rejected before any call was made.
    #[error("invalid {field}: {rule}")]
    Invalid {
        /// The field, e.g. `guest.memory_mb`.
        field: String,
        /// The rule it broke.
        rule: String,
    },
    /// No token is configured.
    #[error("{op}: no Fly API token; set FLY_API_TOKEN or run `fly-machines-mcp auth login`")]
    NoToken {
        /// The operation.
        op: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client")]
    Build {
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Fly's error codes (`status` in the body) that are a definitive answer whatever the
/// HTTP status: the request was refused and repeating it will not help. fly-go's
/// classifiers read the code, not the status (`flaps/flaps_error.go`: `StatusCode`,
/// `IsNameTakenError` — "a status code, whatever it says, means the API classified
/// this failure"), and its tests model `insufficient_capacity` as a 503
/// (`flaps/flaps_error_test.go`). The spec's `ErrorResponse.status` enum lists them.
pub const DEFINITIVE_CODES: [&str; 3] = [
    "insufficient_capacity",
    "volume_placement_capacity",
    "name_taken",
];

/// What the classifiers read of an [`Error`], with every variant named once in
/// [`Error::answer`]: Fly's HTTP answer, its GraphQL errors, a transport failure, or a
/// failure that carries no answer to classify (decode, timeout, invalid input, no
/// token, client build).
enum Answer<'a> {
    Api { status: u16, code: Option<&'a str> },
    GraphQl(&'a [GraphQlError]),
    Transport(TransportKind),
    None,
}

impl Error {
    fn answer(&self) -> Answer<'_> {
        match self {
            Error::Api { status, code, .. } => Answer::Api {
                status: *status,
                code: code.as_deref(),
            },
            Error::GraphQl { errors, .. } => Answer::GraphQl(errors),
            Error::Transport { kind, .. } => Answer::Transport(*kind),
            Error::Decode { .. }
            | Error::Timeout { .. }
            | Error::Invalid { .. }
            | Error::NoToken { .. }
            | Error::Build { .. } => Answer::None,
        }
    }

    /// True when Fly classified the failure with one of `DEFINITIVE_CODES`: the
    /// request had no effect and repeating it will not help, even under a 5xx.
    pub fn is_definitive(&self) -> bool {
        match self.answer() {
            Answer::Api { code, .. } => code.is_some_and(|c| DEFINITIVE_CODES.contains(&c)),
            Answer::GraphQl(_) | Answer::Transport(_) | Answer::None => false,
        }
    }

    /// True when repeating the same request may succeed: 408, 429, 5xx and
    /// transport errors. Never other 4xx, and never a definitive code
    /// (`DEFINITIVE_CODES`) whatever the status.
    pub fn is_retryable(&self) -> bool {
        if self.is_definitive() {
            return false;
        }
        match self.answer() {
            Answer::Api { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Answer::Transport(_) => true,
            Answer::GraphQl(_) | Answer::None => false,
        }
    }

    /// True when the request may have taken effect although it failed
    /// (timeouts, 408, 5xx, resets): a non-idempotent call must look before retrying.
    /// A definitive code (`DEFINITIVE_CODES`) is never ambiguous: Fly refused.
    pub fn is_ambiguous(&self) -> bool {
        if self.is_definitive() {
            return false;
        }
        match self.answer() {
            Answer::Api { status, .. } => matches!(status, 408 | 500..=599),
            Answer::Transport(kind) => match kind {
                TransportKind::Connect => false,
                TransportKind::Timeout | TransportKind::Other => true,
            },
            Answer::GraphQl(_) | Answer::None => false,
        }
    }

    /// True for a 404 (app, machine, volume, key not found).
    pub fn is_not_found(&self) -> bool {
        match self.answer() {
            Answer::Api { status, .. } => status == 404,
            Answer::GraphQl(errors) => errors.iter().any(|e| {
                e.code.as_deref() == Some("NOT_FOUND")
                    || e.message.to_ascii_lowercase().contains("could not find")
                    || e.message.to_ascii_lowercase().contains("not found")
            }),
            Answer::Transport(_) | Answer::None => false,
        }
    }

    /// True when Fly ran out of room for the request: the codes `insufficient_capacity`
    /// (no host in the region) and `volume_placement_capacity` (the volume's host is
    /// full), whatever the status, or a 409 whose message is flaps' "aborted: no
    /// capacity" (every host refused a volume create or fork) or one of flyd's
    /// "insufficient … available to fulfill request" (the machine's host is full). As
    /// fly-go classifies them (`flaps/flaps_error.go` `CapacityScopeOf`); none is worth
    /// repeating as it was sent: another region (or host) is the way on.
    pub fn is_capacity(&self) -> bool {
        match self {
            Error::Api {
                status,
                code,
                message,
                ..
            } => match code.as_deref() {
                Some("insufficient_capacity" | "volume_placement_capacity") => true,
                Some(c) if !c.is_empty() => false,
                _ => {
                    *status == 409
                        && (message.trim_end().ends_with("no capacity")
                            || (message.contains("insufficient ")
                                && message.contains("available to fulfill request")))
                }
            },
            Error::GraphQl { .. }
            | Error::Transport { .. }
            | Error::Decode { .. }
            | Error::Timeout { .. }
            | Error::Invalid { .. }
            | Error::NoToken { .. }
            | Error::Build { .. } => false,
        }
    }

    /// True for a conflict: 409 (lease held, stale `current_version`, duplicate
    /// name), 412 (stale `machine_version`), or 422 `name_taken`.
    pub fn is_conflict(&self) -> bool {
        match self.answer() {
            Answer::Api { status, code } => {
                matches!(status, 409 | 412) || code == Some("name_taken")
            }
            Answer::GraphQl(_) | Answer::Transport(_) | Answer::None => false,
        }
    }

    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self.answer() {
            Answer::Api { status, .. } => Some(status),
            Answer::GraphQl(_) | Answer::Transport(_) | Answer::None => None,
        }
    }

    /// The `fly-request-id` of the failed response, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api { request_id, .. }
            | Error::GraphQl { request_id, .. }
            | Error::Decode { request_id, .. } => request_id.as_deref(),
            Error::Transport { .. }
            | Error::Timeout { .. }
            | Error::Invalid { .. }
            | Error::NoToken { .. }
            | Error::Build { .. } => None,
        }
    }

    /// Fly's error code (`insufficient_capacity`, `name_taken`, …) or the first
    /// GraphQL `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        match self.answer() {
            Answer::Api { code, .. } => code,
            Answer::GraphQl(errors) => errors.iter().find_map(|e| e.code.as_deref()),
            Answer::Transport(_) | Answer::None => None,
        }
    }

    /// The operation that failed, when known.
    pub fn op(&self) -> Option<&'static str> {
        match self {
            Error::Api { op, .. }
            | Error::GraphQl { op, .. }
            | Error::Transport { op, .. }
            | Error::Decode { op, .. }
            | Error::Timeout { op, .. }
            | Error::NoToken { op } => Some(op),
            Error::Invalid { .. } | Error::Build { .. } => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>, message: &str) -> Error {
        Error::Api {
            op: "create_volume",
            status,
            code: code.map(str::to_owned),
            message: message.to_owned(),
            request_id: None,
            retry_after: None,
        }
    }

    #[test]
    fn capacity_errors_are_told_by_code_or_by_flaps_409_text() {
        assert!(api(422, Some("insufficient_capacity"), "no room").is_capacity());
        assert!(api(503, Some("volume_placement_capacity"), "host full").is_capacity());
        assert!(api(409, None, "aborted: no capacity").is_capacity());
        assert!(
            api(
                409,
                None,
                "could not reserve resource for machine: insufficient memory available to fulfill request on the current host"
            )
            .is_capacity()
        );
        // A classified error is taken at its code; other 409s are conflicts.
        assert!(!api(409, Some("name_taken"), "aborted: no capacity").is_capacity());
        assert!(!api(409, None, "lease currently held by someone").is_capacity());
        assert!(!api(503, None, "no capacity").is_capacity());
    }
}
