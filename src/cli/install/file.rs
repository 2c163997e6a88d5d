//! A computed edit of one file, and writing it safely.
//!
//! Owns the [`Plan`] (before, after, what changes), its unified diff, and `apply`: a
//! timestamped backup next to the file first, then the new text written to a sibling and
//! renamed over the old one (atomic), with the old file's permissions. A symlinked config
//! (dotfile managers) is edited at its target, so the link stays a link. Knows no client
//! and no format.

use std::path::{Path, PathBuf};

use super::{Change, InstallError};

/// How many symlinks are followed before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// A computed edit of one configuration file, not yet written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file to edit (as named; a symlink is written through to its target).
    pub path: PathBuf,
    /// Its current text (`None` if it does not exist yet).
    pub before: Option<String>,
    /// Its text after the edit.
    pub after: String,
    /// What the edit does.
    pub change: Change,
    /// The entry written (`None` when removing).
    pub entry: Option<serde_json::Value>,
    /// A literal server key in `after`, masked in everything printed.
    pub(crate) secret: Option<String>,
}

impl Plan {
    /// A unified diff of the edit (a literal server key shown as `<server key>`).
    pub fn diff(&self) -> String {
        let before = self.before.as_deref().unwrap_or("");
        let path = self.path.display().to_string();
        let old_header = if self.before.is_some() {
            path.clone()
        } else {
            "/dev/null".to_owned()
        };
        let diff = similar::TextDiff::from_lines(before, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(&old_header, &path)
            .to_string();
        self.mask(&diff)
    }

    /// `text` with a literal server key replaced by a placeholder.
    pub(crate) fn mask(&self, text: &str) -> String {
        match &self.secret {
            Some(secret) if !secret.is_empty() => text.replace(secret.as_str(), "<server key>"),
            _ => text.to_owned(),
        }
    }

    /// The file actually written: the target of a symlink, else the path itself.
    pub fn target(&self) -> PathBuf {
        resolve_links(&self.path)
    }

    /// Writes the new text (backup first when the file existed). Returns the backup's path.
    pub fn apply(&self) -> Result<Option<PathBuf>, InstallError> {
        if matches!(self.change, Change::Unchanged | Change::Absent) {
            return Ok(None);
        }
        let target = self.target();
        if let Some(parent) = target.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| InstallError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let backup = match &self.before {
            Some(before) => {
                let backup = backup_path(&target);
                std::fs::write(&backup, before).map_err(|source| InstallError::Backup {
                    path: backup.clone(),
                    source,
                })?;
                copy_permissions(&target, &backup);
                Some(backup)
            }
            None => None,
        };
        let tmp = sibling(&target, ".fly-machines-mcp.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, &self.after)?;
            copy_permissions(&target, &tmp);
            std::fs::rename(&tmp, &target)
        };
        if let Err(source) = write() {
            // Best effort: don't leave the temporary file behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(InstallError::Write {
                path: target,
                source,
            });
        }
        Ok(backup)
    }
}

/// Follows symlinks from `path` (relative links resolve against the link's folder); a
/// dangling link resolves to the file it names, which is then created.
fn resolve_links(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let is_link = std::fs::symlink_metadata(&current)
            .map(|meta| meta.file_type().is_symlink())
            .unwrap_or(false);
        if !is_link {
            return current;
        }
        match std::fs::read_link(&current) {
            Ok(next) if next.is_absolute() => current = next,
            Ok(next) => {
                current = current
                    .parent()
                    .map_or_else(|| next.clone(), |parent| parent.join(&next));
            }
            Err(_) => return current,
        }
    }
    current
}

/// Reads the file, or `None` if it does not exist.
pub(crate) fn read_existing(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InstallError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// `FILE.bak-YYYYMMDDTHHMMSSZ` next to the file, with `-N` added if that name is taken, so
/// no earlier backup is ever overwritten.
fn backup_path(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let first = sibling(path, &format!(".bak-{stamp}"));
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|n| sibling(path, &format!(".bak-{stamp}-{n}")))
        .find(|candidate| !candidate.exists())
        .unwrap_or(first)
}

/// Gives `to` the permission bits of `from` (a 0600 `~/.claude.json` stays 0600).
fn copy_permissions(from: &Path, to: &Path) {
    if let Ok(meta) = std::fs::metadata(from) {
        // Best effort: the file is still correct with default permissions.
        let _ = std::fs::set_permissions(to, meta.permissions());
    }
}
