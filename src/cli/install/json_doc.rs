//! Editing a JSON (or JSON-with-comments) client file as a concrete syntax tree.
//!
//! Owns the three JSON dialects clients read and the edit itself: other entries, key
//! order, formatting and comments survive because the file is edited in place, never
//! re-serialised. A file the client itself cannot read (comments in a strict-JSON file,
//! trailing commas where only comments are allowed) is refused, never "fixed" or left
//! half-written. Knows no client.

use std::path::Path;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstNode, CstObject, CstRootNode};

use super::{Change, Edit, InstallError};

/// What the client's JSON parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Plain JSON (`JSON.parse`, serde_json): no comments, no trailing commas.
    Strict,
    /// Comments are stripped first, but trailing commas are an error (Gemini CLI).
    Comments,
    /// JSONC: comments and trailing commas (VS Code, Zed, opencode, Copilot CLI).
    Jsonc,
}

impl Dialect {
    fn options(self) -> ParseOptions {
        let (comments, trailing) = match self {
            Dialect::Strict => (false, false),
            Dialect::Comments => (true, false),
            Dialect::Jsonc => (true, true),
        };
        ParseOptions {
            allow_comments: comments,
            allow_trailing_commas: trailing,
            allow_loose_object_property_names: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        }
    }

    /// What this dialect refuses, for the error message.
    fn refuses(self) -> &'static str {
        match self {
            Dialect::Strict => "strict JSON (no comments, no trailing commas)",
            Dialect::Comments => "JSON with comments but without trailing commas",
            Dialect::Jsonc => "JSON with comments",
        }
    }
}

/// The edited text and what the edit does; `entry` `None` removes `name`.
pub(crate) fn edit(
    dialect: Dialect,
    client: &'static str,
    edit: Edit<'_>,
) -> Result<(String, Change), InstallError> {
    let text = edit.before.unwrap_or("");
    // The concrete syntax tree parser is always lenient; the dialect is checked first
    // with the value parser, which honours the options.
    if let Err(err) = jsonc_parser::parse_to_value(text, &dialect.options()) {
        // Would a lenient reader accept it? Then it is the dialect, not a typo.
        let lenient = jsonc_parser::parse_to_value(text, &Dialect::Jsonc.options()).is_ok();
        return Err(if lenient && dialect != Dialect::Jsonc {
            InstallError::WrongDialect {
                path: edit.path.to_path_buf(),
                client,
                reads: dialect.refuses(),
                message: err.to_string(),
            }
        } else {
            InstallError::Parse {
                path: edit.path.to_path_buf(),
                message: err.to_string(),
            }
        });
    }
    let root =
        CstRootNode::parse(text, &Dialect::Jsonc.options()).map_err(|err| InstallError::Parse {
            path: edit.path.to_path_buf(),
            message: err.to_string(),
        })?;
    let object = root
        .object_value_or_create()
        .ok_or_else(|| InstallError::NotAnObject {
            path: edit.path.to_path_buf(),
            key: "(root)".to_owned(),
        })?;

    let change = match edit.entry {
        None => match child_object(&object, edit.container, false, edit.path)? {
            Some(servers) => match servers.get(edit.name) {
                Some(prop) => {
                    prop.remove();
                    Change::Removed
                }
                None => Change::Absent,
            },
            None => Change::Absent,
        },
        Some(entry) => {
            let servers =
                child_object(&object, edit.container, true, edit.path)?.ok_or_else(|| {
                    InstallError::NotAnObject {
                        path: edit.path.to_path_buf(),
                        key: edit.container.to_owned(),
                    }
                })?;
            let wanted = entry.to_json();
            match servers.get(edit.name) {
                Some(prop) if prop.value().and_then(|v| v.to_serde_value()) == Some(wanted) => {
                    Change::Unchanged
                }
                Some(prop) => {
                    prop.set_value(entry.to_cst());
                    Change::Updated
                }
                None => {
                    servers.append(edit.name, entry.to_cst());
                    Change::Added
                }
            }
        }
    };
    if matches!(change, Change::Unchanged | Change::Absent) {
        return Ok((text.to_owned(), change));
    }
    Ok((finish(&root, edit.before), change))
}

/// The object under `key` in `parent`, created when absent (unless `create` is false).
fn child_object(
    parent: &CstObject,
    key: &str,
    create: bool,
    path: &Path,
) -> Result<Option<CstObject>, InstallError> {
    let not_an_object = || InstallError::NotAnObject {
        path: path.to_path_buf(),
        key: key.to_owned(),
    };
    match parent.get(key) {
        Some(prop) => match prop.value() {
            Some(CstNode::Container(container)) => {
                container.as_object().map(Some).ok_or_else(not_an_object)
            }
            _ => Err(not_an_object()),
        },
        None if create => Ok(parent.object_value_or_create(key)),
        None => Ok(None),
    }
}

/// The edited document as text, ending with a newline like the original (or always, for
/// a new file).
fn finish(root: &CstRootNode, before: Option<&str>) -> String {
    let mut text = root.to_string();
    let wants_newline = before.is_none_or(|b| b.ends_with('\n') || b.trim().is_empty());
    if wants_newline && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
