//! Setting and unsetting app secrets with values given **by reference** (`env:NAME`
//! read from this server's environment, `file:PATH` read from its disk), or literally
//! (`literal:VALUE`) only when the operator allowed it. Values live in `SecretString`s
//! from the moment they are read; each is handed to the caller's `register` hook (the
//! redaction choke point) before anything else happens with it. Reports carry names,
//! digests and the new secrets version, never a value. Optionally rolls the new version
//! out to the app's machines (`min_secrets_version`) through the update workflow.
//!
//! Error texts name the secret and the reference, never the value.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::fly;

use super::{Error, secret_refs::RefPolicy};

/// Largest value read from a file (Fly's own limit is far below this).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Where a value came from (shown instead of the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of this server.
    Env(String),
    /// A file on this server's disk.
    File(String),
    /// Given in the call (only with the operator's permission).
    Literal,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "env:{name}"),
            SecretSource::File(path) => write!(f, "file:{path}"),
            SecretSource::Literal => f.write_str("literal"),
        }
    }
}

/// One secret to set, its value already read.
#[derive(Debug, Clone)]
pub struct ResolvedSecret {
    pub name: String,
    pub source: SecretSource,
    pub value: SecretString,
}

/// Checks a secret name: letters, digits and underscores, not starting with a digit.
fn check_name(name: &str) -> Result<(), Error> {
    if fly::is_secret_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: format!("secret name '{name}'"),
            rule: "letters, digits and underscores, not starting with a digit".to_owned(),
        })
    }
}

/// Reads every reference in `set` (name → `env:VAR`, `file:PATH` or `literal:VALUE`)
/// within what `policy` allows (see [`super::secret_refs`]). Each value is passed to
/// `register` as soon as it exists — before anything else is done with it, including
/// validating the next one. A literal value is registered even when literals are
/// refused, so the refusal can never echo it. A value that carries a server
/// credential (`is_credential`, e.g. the server's own Fly token found under another
/// variable's name) is refused. Also checks `unset` names and that no name is both
/// set and unset.
pub fn resolve(
    set: &BTreeMap<String, SecretString>,
    unset: &[String],
    policy: &RefPolicy,
    is_credential: &dyn Fn(&str) -> bool,
    register: &dyn Fn(&SecretString),
) -> Result<Vec<ResolvedSecret>, Error> {
    // Register first: nothing below may run with an unregistered value in hand.
    for reference in set.values() {
        if let Some(v) = reference.expose_secret().strip_prefix("literal:") {
            register(&SecretString::from(v.to_owned()));
        }
    }
    if set.is_empty() && unset.is_empty() {
        return Err(Error::Invalid {
            field: "set/unset".to_owned(),
            rule: "name at least one secret to set or unset".to_owned(),
        });
    }
    let mut out = Vec::with_capacity(set.len());
    for (name, reference) in set {
        check_name(name)?;
        let reference = reference.expose_secret();
        let field = format!("set.{name}");
        let (source, value) = if let Some(var) = reference.strip_prefix("env:") {
            policy.check_env(&field, var)?;
            let value = std::env::var(var).map_err(|_| Error::Invalid {
                field: field.clone(),
                rule: format!("environment variable {var} is not set (or not UTF-8) on the server"),
            })?;
            (SecretSource::Env(var.to_owned()), SecretString::from(value))
        } else if let Some(path) = reference.strip_prefix("file:") {
            let canonical = policy.check_read(&field, path)?;
            (
                SecretSource::File(path.to_owned()),
                read_file(name, path, &canonical)?,
            )
        } else if let Some(literal) = reference.strip_prefix("literal:") {
            if !policy.allow_literal() {
                return Err(Error::Refused {
                    rule: "secrets by reference".to_owned(),
                    message: format!(
                        "set.{name}: literal values are off on this server (the operator enables them with --allow-literal-secrets); give env:VAR or file:PATH read on the server"
                    ),
                });
            }
            (
                SecretSource::Literal,
                SecretString::from(literal.to_owned()),
            )
        } else {
            return Err(Error::Invalid {
                field: format!("set.{name}"),
                rule: "must be a reference: env:VAR or file:PATH (literal:VALUE only where the operator allows it)".to_owned(),
            });
        };
        register(&value);
        if is_credential(value.expose_secret()) {
            return Err(Error::Refused {
                rule: super::secret_refs::RULE.to_owned(),
                message: format!(
                    "{field}: {source} holds this server's own Fly token, which never leaves the server"
                ),
            });
        }
        if value.expose_secret().is_empty() {
            return Err(Error::Invalid {
                field: format!("set.{name}"),
                rule: format!("{source} is empty"),
            });
        }
        out.push(ResolvedSecret {
            name: name.clone(),
            source,
            value,
        });
    }
    for name in unset {
        check_name(name)?;
        if set.contains_key(name) {
            return Err(Error::Invalid {
                field: format!("unset.{name}"),
                rule: "a secret cannot be both set and unset in one call".to_owned(),
            });
        }
    }
    Ok(out)
}

/// Reads `canonical` (already judged by the policy; `shown` is the path as the
/// caller wrote it). The file opened must be the one judged: a path swapped for a
/// link between the check and the read is refused.
fn read_file(name: &str, shown: &str, canonical: &std::path::Path) -> Result<SecretString, Error> {
    use std::io::Read;
    let invalid = |rule: String| Error::Invalid {
        field: format!("set.{name}"),
        rule,
    };
    let cannot = |e: std::io::Error| {
        invalid(format!(
            "cannot read file {shown} on the server: {}",
            e.kind()
        ))
    };
    let judged = std::fs::symlink_metadata(canonical).map_err(cannot)?;
    if !judged.is_file() {
        return Err(invalid(format!("{shown} is not a regular file")));
    }
    let file = std::fs::File::open(canonical).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (meta.dev(), meta.ino()) != (judged.dev(), judged.ino()) {
            return Err(invalid(format!("{shown} changed while it was being read")));
        }
    }
    if !meta.is_file() {
        return Err(invalid(format!("{shown} is not a regular file")));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{shown} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| invalid(format!("{shown} is not UTF-8 text")))?;
    // One trailing newline is how files end, not part of the value.
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretString::from(text))
}

/// A secret in a report: name, digest, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretLine {
    pub name: String,
    /// Fly's digest of the value (empty for an unset secret).
    pub digest: String,
    /// `set`, `unset` or `kept`.
    pub change: &'static str,
    /// The reference the value came from (for `set`).
    pub source: Option<String>,
}

/// What a secrets call will do (shown for confirmation; no values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsPlan {
    pub app: String,
    /// Names set, with their reference and whether they replace an existing secret.
    pub set: Vec<(String, String, bool)>,
    /// Names removed (those that exist).
    pub unset: Vec<String>,
    /// Names asked to be removed that do not exist (nothing to do).
    pub unset_missing: Vec<String>,
    pub rollout: bool,
}

/// Builds the plan against the app's current secrets (names only).
pub async fn plan_secrets(
    client: &fly::Client,
    app: &str,
    resolved: &[ResolvedSecret],
    unset: &[String],
    rollout: bool,
) -> Result<SecretsPlan, Error> {
    let existing: Vec<String> = client
        .list_secrets(app)
        .await
        .map_err(super::status::app_not_found_while(
            app,
            "listing secrets of app",
        ))?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let (present, missing): (Vec<String>, Vec<String>) =
        unset.iter().cloned().partition(|n| existing.contains(n));
    Ok(SecretsPlan {
        app: app.to_owned(),
        set: resolved
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.source.to_string(),
                    existing.contains(&r.name),
                )
            })
            .collect(),
        unset: present,
        unset_missing: missing,
        rollout,
    })
}

/// The result of a secrets call.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsReport {
    pub app: String,
    /// The app's secrets version after the change.
    pub version: u64,
    /// Every secret the call named (set or unset), then the rest of the app's secrets.
    pub secrets: Vec<SecretLine>,
    /// Set when the new version was rolled out to the machines.
    pub rollout: Option<super::update::UpdateReport>,
}

/// Sets and unsets in one API call, then optionally rolls the version out.
pub async fn apply_secrets(
    client: &fly::Client,
    plan: &SecretsPlan,
    resolved: Vec<ResolvedSecret>,
    rollout_opts: &super::update::UpdateOptions,
    ctl: &super::sched::Control,
) -> Result<SecretsReport, Error> {
    let app = plan.app.as_str();
    let mut changes: BTreeMap<String, Option<SecretString>> = BTreeMap::new();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for r in resolved {
        sources.insert(r.name.clone(), r.source.to_string());
        changes.insert(r.name, Some(r.value));
    }
    for name in &plan.unset {
        changes.insert(name.clone(), None);
    }
    ctl.check(&format!("setting secrets of app {app}"))?;
    let version = if changes.is_empty() {
        None
    } else {
        Some(
            client
                .update_secrets(app, &changes)
                .await
                .map_err(Error::fly(format!("updating secrets of app {app}")))?,
        )
    };
    let (number, after) = match version {
        Some(v) => (v.version, v.secrets),
        None => {
            let list = client
                .list_secrets(app)
                .await
                .map_err(Error::fly(format!("listing secrets of app {app}")))?;
            (0, list)
        }
    };
    let mut lines: Vec<SecretLine> = Vec::new();
    for (name, value) in &changes {
        let digest = after
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.digest.clone())
            .unwrap_or_default();
        lines.push(SecretLine {
            name: name.clone(),
            digest,
            change: if value.is_some() { "set" } else { "unset" },
            source: sources.get(name).cloned(),
        });
    }
    for s in after {
        if !changes.contains_key(&s.name) {
            lines.push(SecretLine {
                name: s.name,
                digest: s.digest,
                change: "kept",
                source: None,
            });
        }
    }
    let rollout = if plan.rollout && number > 0 {
        let targets = super::update::plan_update(client, app, &[], rollout_opts.owned_only).await?;
        let opts = super::update::UpdateOptions {
            min_secrets_version: Some(number),
            ..rollout_opts.clone()
        };
        Some(
            super::update::run_update(
                client,
                &targets,
                &super::update::ConfigChange::default(),
                &opts,
                ctl,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(SecretsReport {
        app: app.to_owned(),
        version: number,
        secrets: lines,
        rollout,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn refs(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
            .collect()
    }

    fn open_policy(dir: Option<&std::path::Path>, literal: bool) -> RefPolicy {
        RefPolicy::new(&super::super::secret_refs::RefPolicyOptions {
            env_globs: vec!["*".to_owned()],
            dir: dir.map(std::path::Path::to_path_buf),
            allow_literal: literal,
            credentials: vec![],
        })
        .unwrap()
    }

    const NO_CREDENTIAL: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn file_references_are_read_and_registered_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let policy = open_policy(Some(dir.path()), false);
        let path = dir.path().join("token");
        std::fs::write(&path, "file-secret-value-123\n").unwrap();
        let seen = Mutex::new(Vec::new());
        let register = |s: &SecretString| seen.lock().unwrap().push(s.expose_secret().to_owned());
        let set = refs(&[("API_TOKEN", &format!("file:{}", path.display()))]);
        let out = resolve(&set, &["OLD".to_owned()], &policy, NO_CREDENTIAL, &register).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].value.expose_secret(), "file-secret-value-123");
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            ["file-secret-value-123".to_owned()]
        );
        assert!(out[0].source.to_string().starts_with("file:"));
    }

    #[test]
    fn literals_are_refused_unless_allowed_but_registered_either_way() {
        let seen = Mutex::new(Vec::new());
        let register = |s: &SecretString| seen.lock().unwrap().push(s.expose_secret().to_owned());
        let set = refs(&[("K", "literal:lit-value-987")]);
        let resolve_allowing = |literals: bool| {
            resolve(
                &set,
                &[],
                &open_policy(None, literals),
                NO_CREDENTIAL,
                &register,
            )
        };
        let err = resolve_allowing(false).unwrap_err();
        let text = err.source_text();
        assert!(text.contains("--allow-literal-secrets"), "{text}");
        assert!(!text.contains("lit-value-987"), "{text}");
        assert!(seen.lock().unwrap().contains(&"lit-value-987".to_owned()));
        let ok = resolve_allowing(true).unwrap();
        assert_eq!(ok[0].source, SecretSource::Literal);
    }

    #[test]
    fn bare_values_bad_names_and_conflicts_are_rejected_without_echo() {
        let register = |_: &SecretString| {};
        let (open, literal) = (open_policy(None, false), open_policy(None, true));
        let resolve_refs = |pairs: &[(&str, &str)], unset: &[String], policy: &RefPolicy| {
            resolve(&refs(pairs), unset, policy, NO_CREDENTIAL, &register)
        };
        let err = resolve_refs(&[("K", "bare-value-555")], &[], &literal).unwrap_err();
        assert!(!err.source_text().contains("bare-value-555"));
        assert!(resolve_refs(&[("1BAD", "env:HOME")], &[], &open).is_err());
        let both = resolve_refs(&[("HOME_X", "env:PATH")], &["HOME_X".to_owned()], &open);
        assert!(both.is_err());
        assert!(resolve_refs(&[], &[], &open).is_err());
        let missing = resolve_refs(
            &[("K", "env:SECRET_REFS_TEST_SURELY_UNSET_VAR")],
            &[],
            &open,
        )
        .unwrap_err();
        assert!(missing.source_text().contains("not set"));
    }

    #[test]
    fn a_value_carrying_the_server_token_is_refused_without_echo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("copy"), "prefix fm2_canary_token_7781").unwrap();
        let register = |_: &SecretString| {};
        let holds = |v: &str| v.contains("fm2_canary_token_7781");
        let err = resolve(
            &refs(&[("K", "file:copy")]),
            &[],
            &open_policy(Some(dir.path()), false),
            &holds,
            &register,
        )
        .unwrap_err();
        let text = err.source_text();
        assert!(text.contains("own Fly token"), "{text}");
        assert!(!text.contains("canary"), "{text}");
    }
}
