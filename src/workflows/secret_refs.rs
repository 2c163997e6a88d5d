//! What a secret reference may read on this server: the operator's allowlists and the
//! credentials no allowlist can open.
//!
//! A reference is resolved by this server, with this server's environment and disk, on
//! behalf of a model whose context may hold text an attacker wrote (app logs, check
//! output). So nothing is readable by default: `env:NAME` resolves only for names
//! matching an operator glob (`--secret-env`), `file:PATH` only for regular files
//! under the operator's directory (`--secrets-dir`), judged after symlinks and `..`
//! are resolved. Whatever those say, the server's own credentials stay out of reach:
//! the variables its token comes from, `FLY_MCP_*`, the stored token, flyctl's
//! directory, the server keys file, and the kernel's pseudo-filesystems.
//!
//! Refusals name the rule and the flag that widens it; they never show a value (and
//! no value has been read when a rule refuses).

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::Error;

/// Environment variables this server takes its token from (config.rs, in flyctl's
/// order), never readable as a secret reference.
const TOKEN_VARIABLES: [&str; 2] = ["FLY_API_TOKEN", "FLY_ACCESS_TOKEN"];
/// Prefix of every variable this server reads for its own settings (keys, tokens).
const SERVER_VARIABLE_PREFIX: &str = "FLY_MCP_";
/// Kernel pseudo-filesystems: process environments, memory, devices.
const PSEUDO_FILESYSTEMS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// The rule a refusal names.
pub const RULE: &str = "secret reference policy";

/// What `env:` and `file:` references may read. Built once at start-up.
#[derive(Debug, Clone, Default)]
pub struct RefPolicy {
    env: Option<(Vec<String>, GlobSet)>,
    /// The allowed directory, canonical.
    dir: Option<PathBuf>,
    /// Credential files and directories, never readable or writable (canonical when
    /// they exist, as given otherwise).
    forbidden: Vec<PathBuf>,
    allow_literal: bool,
}

/// The inputs of [`RefPolicy::new`].
#[derive(Debug, Clone, Default)]
pub struct RefPolicyOptions {
    /// `--secret-env`: globs of variable names `env:` may read.
    pub env_globs: Vec<String>,
    /// `--secrets-dir`: the directory `file:` may read (and key files are written to).
    pub dir: Option<PathBuf>,
    /// `--allow-literal-secrets`.
    pub allow_literal: bool,
    /// The server's credential files and directories (token store, flyctl's config
    /// directory, server keys file, …), refused whatever the directory holds.
    pub credentials: Vec<PathBuf>,
}

impl RefPolicy {
    /// Compiles the globs and resolves the directory; an unusable directory or a bad
    /// glob is an error naming the flag.
    pub fn new(opts: &RefPolicyOptions) -> Result<Self, String> {
        let env = if opts.env_globs.iter().all(|g| g.trim().is_empty()) {
            None
        } else {
            let mut builder = GlobSetBuilder::new();
            let mut patterns = Vec::new();
            for p in opts
                .env_globs
                .iter()
                .map(|g| g.trim())
                .filter(|g| !g.is_empty())
            {
                builder.add(Glob::new(p).map_err(|e| format!("--secret-env '{p}': {e}"))?);
                patterns.push(p.to_owned());
            }
            let set = builder.build().map_err(|e| format!("--secret-env: {e}"))?;
            Some((patterns, set))
        };
        let dir = match &opts.dir {
            None => None,
            Some(d) => {
                let canonical = std::fs::canonicalize(d)
                    .map_err(|e| format!("--secrets-dir {}: {}", d.display(), e.kind()))?;
                if !canonical.is_dir() {
                    return Err(format!("--secrets-dir {}: not a directory", d.display()));
                }
                if canonical.parent().is_none() {
                    return Err("--secrets-dir cannot be the root directory".to_owned());
                }
                Some(canonical)
            }
        };
        let forbidden = opts
            .credentials
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| lexical(p)))
            .collect();
        Ok(RefPolicy {
            env,
            dir,
            forbidden,
            allow_literal: opts.allow_literal,
        })
    }

    /// Whether `literal:VALUE` is accepted.
    pub fn allow_literal(&self) -> bool {
        self.allow_literal
    }

    /// The allowed directory, if the operator gave one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Checks that `env:NAME` may be read. `field` names the argument in a refusal.
    pub fn check_env(&self, field: &str, name: &str) -> Result<(), Error> {
        if TOKEN_VARIABLES.contains(&name) || name.starts_with(SERVER_VARIABLE_PREFIX) {
            return Err(refused(format!(
                "{field}: env:{name} is one of this server's own settings or token sources \
                 (FLY_API_TOKEN, FLY_ACCESS_TOKEN, FLY_MCP_*), which no reference may read"
            )));
        }
        match &self.env {
            Some((_, set)) if set.is_match(name) => Ok(()),
            Some((patterns, _)) => Err(refused(format!(
                "{field}: env:{name} matches none of the names the operator allows ({}); \
                 the operator widens this with --secret-env GLOB",
                patterns.join(", ")
            ))),
            None => Err(refused(format!(
                "{field}: env: references are off on this server; the operator allows \
                 names with --secret-env GLOB (e.g. --secret-env 'APP_*')"
            ))),
        }
    }

    /// Resolves `file:PATH` to the canonical path of a file that may be read: under
    /// the allowed directory after symlinks and `..` are resolved, and not a
    /// credential. A relative path is taken under the allowed directory.
    pub fn check_read(&self, field: &str, raw: &str) -> Result<PathBuf, Error> {
        let dir = self.dir.as_deref().ok_or_else(|| {
            refused(format!(
                "{field}: file: references are off on this server; the operator allows a \
                 directory with --secrets-dir DIR"
            ))
        })?;
        let joined = dir.join(raw);
        self.check_never(field, raw, &lexical(&joined))?;
        let canonical = std::fs::canonicalize(&joined).map_err(|e| {
            // Say nothing of what exists outside the directory.
            if lexical(&joined).starts_with(dir) {
                Error::Invalid {
                    field: field.to_owned(),
                    rule: format!(
                        "cannot read {raw} under the secrets directory: {}",
                        e.kind()
                    ),
                }
            } else {
                outside(field, raw)
            }
        })?;
        self.check_resolved(field, raw, &canonical, dir)?;
        Ok(canonical)
    }

    /// Checks where a new file may be written (a key file): its parent resolved, under
    /// the allowed directory, not a credential. Returns the path to create.
    pub fn check_write(&self, field: &str, raw: &str) -> Result<PathBuf, Error> {
        let dir = self.dir.as_deref().ok_or_else(|| {
            refused(format!(
                "{field}: this server writes no files; the operator allows a directory \
                 with --secrets-dir DIR"
            ))
        })?;
        let joined = dir.join(raw);
        self.check_never(field, raw, &lexical(&joined))?;
        let (Some(parent), Some(name)) = (joined.parent(), joined.file_name()) else {
            return Err(Error::Invalid {
                field: field.to_owned(),
                rule: format!("{raw} names no file"),
            });
        };
        let parent = std::fs::canonicalize(parent).map_err(|e| {
            if lexical(parent).starts_with(dir) {
                Error::Invalid {
                    field: field.to_owned(),
                    rule: format!(
                        "the folder of {raw} under the secrets directory: {}",
                        e.kind()
                    ),
                }
            } else {
                outside(field, raw)
            }
        })?;
        let target = parent.join(name);
        self.check_resolved(field, raw, &target, dir)?;
        Ok(target)
    }

    /// The credential and kernel-file rule, on a path as written (before the disk is
    /// asked anything) and again once resolved.
    fn check_never(&self, field: &str, raw: &str, path: &Path) -> Result<(), Error> {
        if is_pseudo(path) || self.is_credential(path) {
            return Err(never(field, raw));
        }
        Ok(())
    }

    fn check_resolved(&self, field: &str, raw: &str, path: &Path, dir: &Path) -> Result<(), Error> {
        self.check_never(field, raw, path)?;
        if !path.starts_with(dir) {
            return Err(outside(field, raw));
        }
        Ok(())
    }

    fn is_credential(&self, path: &Path) -> bool {
        self.forbidden.iter().any(|f| path.starts_with(f))
    }
}

fn refused(message: String) -> Error {
    Error::Refused {
        rule: RULE.to_owned(),
        message,
    }
}

fn never(field: &str, raw: &str) -> Error {
    refused(format!(
        "{field}: {raw} is one of this server's credentials (token store, flyctl config, \
         server keys) or a kernel file (/proc, /sys, /dev), which no reference may touch"
    ))
}

fn outside(field: &str, raw: &str) -> Error {
    refused(format!(
        "{field}: {raw} is outside the secrets directory once symlinks and '..' are \
         resolved; the operator chooses that directory with --secrets-dir DIR"
    ))
}

fn is_pseudo(path: &Path) -> bool {
    PSEUDO_FILESYSTEMS.iter().any(|p| path.starts_with(p))
}

/// `path` with `.` and `..` folded without touching the disk (a `..` above the root
/// stays at the root).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dir: Option<&Path>, env: &[&str], credentials: &[PathBuf]) -> RefPolicy {
        RefPolicy::new(&RefPolicyOptions {
            env_globs: env.iter().map(|s| (*s).to_owned()).collect(),
            dir: dir.map(Path::to_path_buf),
            allow_literal: false,
            credentials: credentials.to_vec(),
        })
        .unwrap()
    }

    fn refusal(e: Error) -> String {
        match e {
            Error::Refused { rule, message } => {
                assert_eq!(rule, RULE);
                message
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn nothing_is_readable_by_default() {
        let p = RefPolicy::default();
        assert!(refusal(p.check_env("set.A", "HOME").unwrap_err()).contains("--secret-env"));
        assert!(
            refusal(p.check_read("set.A", "/etc/hostname").unwrap_err()).contains("--secrets-dir")
        );
        assert!(
            refusal(p.check_write("key_file", "/tmp/x.key").unwrap_err()).contains("--secrets-dir")
        );
    }

    #[test]
    fn env_names_follow_the_globs_but_never_reach_the_token_sources() {
        let p = policy(None, &["APP_*", "FLY_*", "*"], &[]);
        p.check_env("set.A", "APP_DB_URL").unwrap();
        for name in [
            "FLY_API_TOKEN",
            "FLY_ACCESS_TOKEN",
            "FLY_MCP_ACCESS_TOKEN",
            "FLY_MCP_AUTH_KEYS",
        ] {
            let m = refusal(p.check_env("set.A", name).unwrap_err());
            assert!(m.contains("own settings or token sources"), "{m}");
        }
        let narrow = policy(None, &["APP_*"], &[]);
        let m = refusal(narrow.check_env("set.A", "HOME").unwrap_err());
        assert!(m.contains("APP_*") && m.contains("--secret-env"), "{m}");
    }

    #[test]
    fn files_resolve_under_the_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("secrets");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("db"), "x").unwrap();
        std::fs::write(root.path().join("outside"), "y").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("outside"), dir.join("link")).unwrap();
        let p = policy(Some(&dir), &[], &[]);
        let canonical_dir = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(
            p.check_read("set.A", "db").unwrap(),
            canonical_dir.join("db")
        );
        let abs = dir.join("db");
        p.check_read("set.A", abs.to_str().unwrap()).unwrap();
        assert!(refusal(p.check_read("set.A", "../outside").unwrap_err()).contains("outside"));
        let sneaky = format!("{}/../outside", dir.display());
        assert!(refusal(p.check_read("set.A", &sneaky).unwrap_err()).contains("outside"));
        #[cfg(unix)]
        assert!(refusal(p.check_read("set.A", "link").unwrap_err()).contains("symlinks"));
        assert!(refusal(p.check_read("set.A", "/etc/passwd").unwrap_err()).contains("outside"));
        assert!(
            refusal(p.check_read("set.A", "/proc/self/environ").unwrap_err()).contains("kernel")
        );
    }

    #[test]
    fn credentials_stay_closed_even_inside_the_directory() {
        let home = tempfile::tempdir().unwrap();
        let fly_dir = home.path().join(".fly");
        std::fs::create_dir(&fly_dir).unwrap();
        std::fs::write(fly_dir.join("config.yml"), "access_token: x").unwrap();
        std::fs::write(home.path().join("keys"), "k").unwrap();
        std::fs::write(home.path().join("ok"), "v").unwrap();
        let p = policy(
            Some(home.path()),
            &[],
            &[
                fly_dir.clone(),
                home.path().join("keys"),
                home.path().join("not-yet"),
            ],
        );
        p.check_read("set.A", "ok").unwrap();
        for raw in [".fly/config.yml", "keys", "./.fly/../keys"] {
            let m = refusal(p.check_read("set.A", raw).unwrap_err());
            assert!(m.contains("credentials"), "{raw}: {m}");
        }
        assert!(refusal(p.check_write("key_file", "keys").unwrap_err()).contains("credentials"));
        assert!(
            refusal(p.check_write("key_file", ".fly/new.key").unwrap_err()).contains("credentials")
        );
        assert!(
            p.check_write("key_file", "new.key")
                .unwrap()
                .ends_with("new.key")
        );
        assert!(
            refusal(p.check_write("key_file", "/tmp/new.key").unwrap_err()).contains("outside")
        );
    }

    #[test]
    fn a_bad_directory_or_glob_names_its_flag() {
        let e = RefPolicy::new(&RefPolicyOptions {
            dir: Some(PathBuf::from("/surely/not/here")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("--secrets-dir"), "{e}");
        let e = RefPolicy::new(&RefPolicyOptions {
            env_globs: vec!["[".to_owned()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("--secret-env"), "{e}");
    }
}
