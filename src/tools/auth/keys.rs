//! The server keys file (`--auth-keys FILE`): one key per line, `#` comments. A line
//! is `KEY`, `ID:KEY`, or `ID:KEY OPTION...` where each option narrows what that key
//! may do below the server's own policy:
//!
//! - `read-only`, `no-destroy`
//! - `toolsets=observe,provision`
//! - `allow-app=preview-*,staging-*`, `allow-org=acme` (shell globs; quotes allowed)
//! - `max-machines-per-day=N`, `max-monthly-usd=X` (usage caps, counted from Fly)
//!
//! The file is re-read when its modification time or size changes. A line with an
//! option this build does not understand disables that key only, and says why on
//! stderr (line number and id, never the key).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use sha2::{Digest, Sha256};

use super::CallerPolicy;
use crate::tools::{catalog::Toolset, http::HttpError, safety::GlobRule};

/// One key of the file.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The key id (`ID:` prefix, else derived from the key's hash).
    pub id: String,
    /// The key's narrowing, when the line gives options.
    pub policy: Option<Arc<CallerPolicy>>,
}

/// The server keys file, re-read when its modification time or size changes.
#[derive(Clone)]
pub struct KeyFile {
    path: PathBuf,
    cache: Arc<Mutex<Option<CachedKeys>>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct CachedKeys {
    stamp: (Option<SystemTime>, u64),
    /// sha256(key) → entry.
    keys: Arc<BTreeMap<[u8; 32], KeyEntry>>,
}

impl KeyFile {
    /// A key file at `path` (read lazily).
    pub fn new(path: PathBuf) -> Self {
        KeyFile {
            path,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// The keys as the file holds them now.
    pub(crate) fn current(&self) -> Result<Arc<BTreeMap<[u8; 32], KeyEntry>>, HttpError> {
        let meta = std::fs::metadata(&self.path).map_err(|source| HttpError::KeysFile {
            path: self.path.clone(),
            source,
        })?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cache = self.cache.lock().map_err(|_| HttpError::KeysFile {
            path: self.path.clone(),
            source: std::io::Error::other("key cache lock poisoned"),
        })?;
        if let Some(c) = cache.as_ref()
            && c.stamp == stamp
        {
            return Ok(c.keys.clone());
        }
        let text = std::fs::read_to_string(&self.path).map_err(|source| HttpError::KeysFile {
            path: self.path.clone(),
            source,
        })?;
        let (keys, problems) = parse_keys(&text);
        for p in problems {
            // stderr, as the operator reads it; the key itself is never named.
            eprintln!(
                "fly-machines-mcp: auth keys file {}: {p}",
                self.path.display()
            );
        }
        let keys = Arc::new(keys);
        *cache = Some(CachedKeys {
            stamp,
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// The entry of the key `presented`, if it is a current key.
    pub fn lookup(&self, presented: &str) -> Result<Option<KeyEntry>, HttpError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        Ok(self.current()?.get(&digest).cloned())
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Parses the file: the keys, and one message per disabled line.
pub fn parse_keys(text: &str) -> (BTreeMap<[u8; 32], KeyEntry>, Vec<String>) {
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, key, policy) = match line.split_once(':') {
            Some((id, rest)) if valid_id(id) && !rest.trim().is_empty() => {
                let mut words = rest.split_whitespace();
                let key = words.next().unwrap_or_default();
                let options: Vec<&str> = words.collect();
                if options.is_empty() {
                    (id.to_owned(), rest.trim(), None)
                } else {
                    match parse_options(id, &options) {
                        Ok(p) => (id.to_owned(), key, Some(Arc::new(p))),
                        Err(why) => {
                            problems.push(format!(
                                "line {}: key '{id}' disabled: {why}",
                                n.saturating_add(1)
                            ));
                            continue;
                        }
                    }
                }
            }
            Some(_) | None => {
                let d = Sha256::digest(line.as_bytes());
                (
                    format!("key-{}", hex::encode(d.get(..4).unwrap_or_default())),
                    line,
                    None,
                )
            }
        };
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        keys.insert(digest, KeyEntry { id, policy });
    }
    (keys, problems)
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .unwrap_or(v)
}

fn list(v: &str) -> Vec<String> {
    unquote(v)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_options(id: &str, options: &[&str]) -> Result<CallerPolicy, String> {
    let mut p = CallerPolicy {
        source: format!("server key '{id}'"),
        ..CallerPolicy::default()
    };
    for opt in options {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (*opt, None),
        };
        match (name, value) {
            ("read-only", None) => p.read_only = true,
            ("no-destroy", None) => p.no_destroy = true,
            ("toolsets", Some(v)) => {
                let mut sets = BTreeSet::new();
                for name in list(v) {
                    if name == "all" {
                        sets.extend(Toolset::ALL);
                    } else {
                        sets.insert(name.parse::<Toolset>()?);
                    }
                }
                p.toolsets = Some(sets);
            }
            ("allow-app", Some(v)) => p.apps = GlobRule::new("allow-app", &list(v))?,
            ("allow-org", Some(v)) => p.orgs = GlobRule::new("allow-org", &list(v))?,
            ("max-machines-per-day", Some(v)) => {
                p.caps.machines_per_day =
                    Some(unquote(v).parse().map_err(|_| {
                        format!("max-machines-per-day '{v}' is not a whole number")
                    })?);
            }
            ("max-monthly-usd", Some(v)) => {
                let usd: f64 = unquote(v)
                    .parse()
                    .map_err(|_| format!("max-monthly-usd '{v}' is not a number"))?;
                if !usd.is_finite() || usd < 0.0 {
                    return Err(format!("max-monthly-usd '{v}' must be 0 or more"));
                }
                p.caps.monthly_usd = Some(usd);
            }
            (other, _) => {
                return Err(format!(
                    "unknown option '{other}' (known: read-only, no-destroy, toolsets=, allow-app=, allow-org=, max-machines-per-day=, max-monthly-usd=)"
                ));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(keys: &'a BTreeMap<[u8; 32], KeyEntry>, key: &str) -> Option<&'a KeyEntry> {
        let d: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        keys.get(&d)
    }

    #[test]
    fn keys_file_lines() {
        let (keys, problems) = parse_keys("# comment\n\nalice:secret-one\nsecret-two\n  \n");
        assert!(problems.is_empty());
        assert_eq!(keys.len(), 2);
        assert_eq!(entry(&keys, "secret-one").unwrap().id, "alice");
        assert!(entry(&keys, "secret-two").unwrap().id.starts_with("key-"));
        assert!(entry(&keys, "secret-one").unwrap().policy.is_none());
    }

    #[test]
    fn options_narrow_and_a_bad_line_disables_only_its_key() {
        let text = "ro:k-ro read-only\n\
                    ci:k-ci no-destroy toolsets=observe,provision allow-app='preview-*' max-machines-per-day=3 max-monthly-usd=25.5\n\
                    bad:k-bad read-only frobnicate\n\
                    bad2:k-bad2 toolsets=nonesuch\n\
                    ok:k-ok\n";
        let (keys, problems) = parse_keys(text);
        assert_eq!(keys.len(), 3);
        assert!(entry(&keys, "k-bad").is_none());
        assert!(entry(&keys, "k-bad2").is_none());
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("line 3") && problems[0].contains("'bad'"));
        assert!(problems[0].contains("frobnicate"));
        assert!(problems.iter().all(|p| !p.contains("k-bad")));
        let ro = entry(&keys, "k-ro").unwrap().policy.clone().unwrap();
        assert!(ro.read_only);
        let ci = entry(&keys, "k-ci").unwrap().policy.clone().unwrap();
        assert!(ci.no_destroy && !ci.read_only);
        assert!(ci.apps.as_ref().unwrap().allows("preview-42"));
        assert!(!ci.apps.as_ref().unwrap().allows("prod"));
        assert_eq!(ci.caps.machines_per_day, Some(3));
        assert_eq!(ci.caps.monthly_usd, Some(25.5));
        assert_eq!(ci.toolsets.as_ref().unwrap().len(), 2);
        assert!(entry(&keys, "k-ok").is_some());
    }
}
