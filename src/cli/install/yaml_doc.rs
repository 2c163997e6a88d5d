//! Editing a YAML client file (goose's `config.yaml`) with `yaml-edit`.
//!
//! `yaml-edit` parses YAML into a lossless syntax tree, so comments, key order and
//! formatting of everything else survive the edit. The entry is rendered as a block
//! mapping whose strings are double-quoted (JSON string syntax is valid YAML, so no value
//! can be mistaken for a number, a boolean or a comment). Knows no client.

use std::str::FromStr;

use yaml_edit::Document;

use super::entry::Node;
use super::{Change, Edit, InstallError};

/// The edited text and what the edit does; `entry` `None` removes `name`.
pub(crate) fn edit(edit: Edit<'_>) -> Result<(String, Change), InstallError> {
    let text = edit.before.unwrap_or("");
    let parse_error = |message: String| InstallError::Parse {
        path: edit.path.to_path_buf(),
        message,
    };
    let not_a_mapping = |key: &str| InstallError::NotAnObject {
        path: edit.path.to_path_buf(),
        key: key.to_owned(),
    };

    if text.trim().is_empty() {
        return Ok(match edit.entry {
            None => (text.to_owned(), Change::Absent),
            Some(entry) => {
                let mut out = format!("{}:\n", key_text(edit.container));
                render_entry(&mut out, edit.name, entry, 2);
                (out, Change::Added)
            }
        });
    }

    let doc = Document::from_str(text).map_err(|err| parse_error(err.to_string()))?;
    let root = doc.as_mapping().ok_or_else(|| not_a_mapping("(root)"))?;
    let servers = root.get_mapping(edit.container);
    if servers.is_none() && root.get(edit.container).is_some_and(|v| !is_null(&v)) {
        return Err(not_a_mapping(edit.container));
    }

    let Some(entry) = edit.entry else {
        let removed = servers.is_some_and(|servers| servers.remove(edit.name).is_some());
        return Ok(if removed {
            (doc.to_string(), Change::Removed)
        } else {
            (text.to_owned(), Change::Absent)
        });
    };

    let mut snippet = String::new();
    render_map(&mut snippet, entry, 0);
    let value = Document::from_str(&snippet).map_err(|err| parse_error(err.to_string()))?;
    let existed = match &servers {
        Some(servers) => {
            let existed = servers.get(edit.name).is_some();
            servers.set(edit.name, &value);
            existed
        }
        None => {
            let mut wrapped = String::new();
            render_entry(&mut wrapped, edit.name, entry, 0);
            let wrapped =
                Document::from_str(&wrapped).map_err(|err| parse_error(err.to_string()))?;
            root.set(edit.container, &wrapped);
            false
        }
    };
    let mut after = doc.to_string();
    if !after.ends_with('\n') {
        after.push('\n');
    }
    let change = Change::of_write(text, &after, existed);
    Ok((after, change))
}

fn is_null(value: &yaml_edit::YamlNode) -> bool {
    let text = value.to_string();
    let text = text.trim();
    text.is_empty() || text == "~" || text == "null"
}

/// `name:` followed by the entry's block mapping, indented by `indent`.
fn render_entry(out: &mut String, name: &str, entry: &Node, indent: usize) {
    out.push_str(&" ".repeat(indent));
    out.push_str(&key_text(name));
    out.push_str(":\n");
    render_map(out, entry, indent + 2);
}

/// The fields of a map, one per line, at `indent`.
fn render_map(out: &mut String, node: &Node, indent: usize) {
    let Node::Map(fields) = node else {
        return;
    };
    let pad = " ".repeat(indent);
    for (key, value) in fields {
        out.push_str(&pad);
        out.push_str(&key_text(key));
        match value {
            Node::Map(inner) if inner.is_empty() => out.push_str(": {}\n"),
            Node::List(items) if items.is_empty() => out.push_str(": []\n"),
            Node::Map(_) => {
                out.push_str(":\n");
                render_map(out, value, indent + 2);
            }
            Node::List(items) => {
                out.push_str(":\n");
                for item in items {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&scalar_text(item));
                    out.push('\n');
                }
            }
            scalar => {
                out.push_str(": ");
                out.push_str(&scalar_text(scalar));
                out.push('\n');
            }
        }
    }
}

/// A key as plain text when it is a simple word, else double-quoted.
fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.starts_with(['-', '.']);
    if plain { key.to_owned() } else { quoted(key) }
}

/// A scalar: strings double-quoted, booleans and integers plain; a nested value inline.
fn scalar_text(node: &Node) -> String {
    match node {
        Node::Str(s) => quoted(s),
        Node::Bool(b) => b.to_string(),
        Node::Int(n) => n.to_string(),
        Node::List(_) | Node::Map(_) => node.to_json().to_string(),
    }
}

/// A double-quoted YAML scalar (JSON string syntax, which YAML reads the same way).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
