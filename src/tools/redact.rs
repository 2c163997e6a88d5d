//! The one redaction choke point. Every byte this process shows anyone (tool result
//! text and structured content, errors, log lines, audit records) passes through a
//! [`Redactor`], which removes:
//! - the Fly token and every secret value the process has seen (a shared registry that
//!   the server fills at start-up and `set_secrets` feeds at run time);
//! - anything shaped like a Fly token (`fm1r_…`, `fm1a_…`, `fm2_…`, `FlyV1 …`);
//! - PEM private keys.
//!
//! Registered values are kept as `SecretString` and exposed only to match them here.

use std::{
    borrow::Cow,
    io::{self, Write},
    sync::{Arc, LazyLock, Mutex, RwLock},
};

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not registered: redacting "a" or "on" everywhere
/// would garble every output without protecting anything.
const MIN_SECRET_LEN: usize = 6;

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // PEM private keys (complete, or cut off before the END line).
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        // A scheme prefix followed by a token.
        r"(?i:FlyV1)\s+[A-Za-z0-9_+/=,\-.]+",
        // Fly macaroon tokens, possibly comma-joined.
        r"\b(?:fm1[ra]|fm2)_[A-Za-z0-9_+/=\-.]+",
    ]
    .iter()
    .filter_map(|p| Regex::new(p).ok())
    .collect()
});

/// Removes tokens, secret values and private keys from text. Cheap to clone; all
/// clones share the registry.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<RwLock<Vec<SecretString>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.known.read().map(|k| k.len()).unwrap_or_default();
        write!(f, "Redactor({n} registered values)")
    }
}

impl Redactor {
    /// An empty registry (patterns still apply).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value (a token, a secret the process has read) so it never
    /// appears in any output from now on.
    pub fn register(&self, secret: &SecretString) {
        let value = secret.expose_secret();
        // Also the parts of a comma-joined token and a value without its scheme prefix.
        let mut parts: Vec<&str> = vec![value];
        parts.extend(value.split(',').map(str::trim));
        for prefix in ["FlyV1 ", "Bearer "] {
            if let Some(rest) = value.strip_prefix(prefix) {
                parts.push(rest.trim());
            }
        }
        if let Ok(mut known) = self.known.write() {
            for part in parts {
                if part.len() >= MIN_SECRET_LEN && !known.iter().any(|k| k.expose_secret() == part)
                {
                    known.push(SecretString::from(part.to_owned()));
                }
            }
            // Longest first, so a value containing another is removed whole.
            known.sort_by_key(|k| std::cmp::Reverse(k.expose_secret().len()));
        }
    }

    /// Redacts a string.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if let Ok(known) = self.known.read() {
            for secret in known.iter() {
                let s = secret.expose_secret();
                if out.contains(s) {
                    out = Cow::Owned(out.replace(s, REDACTED));
                }
            }
        }
        for re in PATTERNS.iter() {
            if re.is_match(&out) {
                out = Cow::Owned(re.replace_all(&out, REDACTED).into_owned());
            }
        }
        out
    }

    /// Redacts a string in place.
    pub fn redact_string(&self, text: &mut String) {
        if let Cow::Owned(s) = self.redact(text) {
            *text = s;
        }
    }

    /// Redacts every string (and object key) inside a JSON value.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => self.redact_string(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    let redacted = self.redact(&key).into_owned();
                    if let Some(mut v) = map.remove(&key) {
                        self.redact_json(&mut v);
                        map.insert(redacted, v);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A `tracing_subscriber` writer factory whose output goes through this redactor
    /// to stderr.
    pub fn stderr_writer(&self) -> RedactingMakeWriter {
        RedactingMakeWriter {
            redactor: self.clone(),
            sink: LogSink::Stderr,
        }
    }

    /// Like [`Redactor::stderr_writer`], into a shared buffer (tests read it).
    pub fn buffer_writer(&self, buffer: Arc<Mutex<Vec<u8>>>) -> RedactingMakeWriter {
        RedactingMakeWriter {
            redactor: self.clone(),
            sink: LogSink::Buffer(buffer),
        }
    }
}

#[derive(Debug, Clone)]
enum LogSink {
    Stderr,
    Buffer(Arc<Mutex<Vec<u8>>>),
}

/// Makes [`RedactingWriter`]s for the tracing subscriber (logs go to stderr only).
#[derive(Debug, Clone)]
pub struct RedactingMakeWriter {
    redactor: Redactor,
    sink: LogSink,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingMakeWriter {
    type Writer = RedactingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            redactor: self.redactor.clone(),
            sink: self.sink.clone(),
            buf: Vec::new(),
        }
    }
}

/// Buffers one log event and writes it redacted when dropped or flushed.
#[derive(Debug)]
pub struct RedactingWriter {
    redactor: Redactor,
    sink: LogSink,
    buf: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let redacted = self.redactor.redact(&text).into_owned();
        self.buf.clear();
        match &self.sink {
            LogSink::Stderr => {
                let mut err = io::stderr().lock();
                err.write_all(redacted.as_bytes())?;
                err.flush()
            }
            LogSink::Buffer(buffer) => {
                let mut b = buffer
                    .lock()
                    .map_err(|_| io::Error::other("log buffer lock poisoned"))?;
                b.extend_from_slice(redacted.as_bytes());
                Ok(())
            }
        }
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_registered_values_are_removed() {
        let r = Redactor::new();
        r.register(&SecretString::from("canary-secret-value-123".to_owned()));
        let text =
            "token fm2_abcDEF123==,fm1r_xyz and FlyV1 fm2_qqq; secret canary-secret-value-123 end";
        let out = r.redact(text);
        assert!(!out.contains("fm2_"), "{out}");
        assert!(!out.contains("fm1r_"), "{out}");
        assert!(!out.contains("canary-secret"), "{out}");
        assert!(out.ends_with(" end"), "{out}");
    }

    #[test]
    fn private_keys_are_removed_even_when_cut_off() {
        let r = Redactor::new();
        let full = "a -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- b";
        assert_eq!(r.redact(full), format!("a {REDACTED} b"));
        let cut = "x -----BEGIN PRIVATE KEY-----\nMIIE";
        assert_eq!(r.redact(cut), format!("x {REDACTED}"));
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::new();
        r.register(&SecretString::from("hunter2hunter2".to_owned()));
        let mut v =
            serde_json::json!({"a": ["hunter2hunter2", 3], "hunter2hunter2": {"b": "fm2_x"}});
        r.redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("fm2_"), "{s}");
    }

    #[test]
    fn short_values_are_not_registered() {
        let r = Redactor::new();
        r.register(&SecretString::from("on".to_owned()));
        assert_eq!(r.redact("on and on"), "on and on");
    }
}
