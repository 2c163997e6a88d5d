//! The audit log (`--audit-log PATH`): one JSON line per call of a write or
//! destructive tool, whatever its outcome. Lines pass the redactor before they are
//! written.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
};

use serde::Serialize;
use serde_json::Value;

use super::redact::Redactor;

/// One audit record.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC time the call finished.
    pub time: String,
    pub tool: String,
    /// The arguments as received (redacted on write).
    pub args: Value,
    /// The HTTP server key id that made the call, if any.
    #[serialize_always]
    pub caller: Option<String>,
    /// The OAuth access token's subject (`sub`), if the caller used one.
    pub subject: Option<String>,
    /// The OAuth client id (`client_id` / `azp`), if the caller used a token.
    pub client_id: Option<String>,
    /// `fly-request-id`s of every Fly response the call got.
    pub fly_request_ids: Vec<String>,
    /// `ok`, or the error kind (`refused`, `confirmation_required`, `failed`, ...).
    pub outcome: String,
    /// The error text, if the call failed.
    pub error: Option<String>,
}

/// An append-only JSON-lines file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    file: Arc<Mutex<File>>,
    redactor: Redactor,
}

impl AuditLog {
    /// Opens (creates, appends to) the audit file.
    pub fn open(path: &Path, redactor: Redactor) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            file: Arc::new(Mutex::new(file)),
            redactor,
        })
    }

    /// Appends one record. Failures are logged, never fatal to the call.
    pub fn record(&self, record: &AuditRecord) {
        let mut value = match serde_json::to_value(record) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be serialised");
                return;
            }
        };
        self.redactor.redact_json(&mut value);
        let mut line = value.to_string();
        line.push('\n');
        let written = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit log lock poisoned"))
            .and_then(|mut f| {
                f.write_all(line.as_bytes())?;
                f.flush()
            });
        if let Err(e) = written {
            tracing::error!(error = %e, "audit record could not be written");
        }
    }
}
