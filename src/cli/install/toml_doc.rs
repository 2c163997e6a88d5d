//! Editing a TOML client file (Codex's `config.toml`) with `toml_edit`.
//!
//! `toml_edit` keeps comments, key order and formatting of everything it does not touch.
//! The entry becomes `[CONTAINER.NAME]` with its maps as sub-tables (`[CONTAINER.NAME.env]`),
//! the way Codex's own `codex mcp add` writes it. Knows no client.

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use super::entry::Node;
use super::{Change, Edit, InstallError};

/// The edited text and what the edit does; `entry` `None` removes `name`.
pub(crate) fn edit(edit: Edit<'_>) -> Result<(String, Change), InstallError> {
    let text = edit.before.unwrap_or("");
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|err: toml_edit::TomlError| InstallError::Parse {
                path: edit.path.to_path_buf(),
                message: err.to_string().trim().to_owned(),
            })?;
    let not_a_table = || InstallError::NotAnObject {
        path: edit.path.to_path_buf(),
        key: edit.container.to_owned(),
    };

    let Some(entry) = edit.entry else {
        let removed = match doc.get_mut(edit.container) {
            Some(item) => item
                .as_table_like_mut()
                .ok_or_else(not_a_table)?
                .remove(edit.name)
                .is_some(),
            None => false,
        };
        return Ok(if removed {
            (doc.to_string(), Change::Removed)
        } else {
            (text.to_owned(), Change::Absent)
        });
    };

    let servers = doc
        .entry(edit.container)
        .or_insert_with(|| {
            let mut table = Table::new();
            // `[mcp_servers.NAME]` headers only; no empty `[mcp_servers]` line.
            table.set_implicit(true);
            Item::Table(table)
        })
        .as_table_mut()
        .ok_or_else(not_a_table)?;
    let existed = servers.contains_key(edit.name);
    servers.insert(edit.name, Item::Table(table_of(entry)));
    let after = doc.to_string();
    let change = Change::of_write(text, &after, existed);
    Ok((after, change))
}

/// A map as a TOML table: scalars and lists as values, maps as sub-tables.
fn table_of(node: &Node) -> Table {
    let mut table = Table::new();
    if let Node::Map(fields) = node {
        for (key, value) in fields {
            let item = match value {
                Node::Map(_) => Item::Table(table_of(value)),
                other => Item::Value(value_of(other)),
            };
            table.insert(key, item);
        }
    }
    table
}

/// A scalar or list as a TOML value (a map inside a list becomes an inline table).
fn value_of(node: &Node) -> Value {
    match node {
        Node::Str(s) => Value::from(s.as_str()),
        Node::Bool(b) => Value::from(*b),
        Node::Int(n) => Value::from(*n),
        Node::List(items) => Value::Array(items.iter().map(value_of).collect::<Array>()),
        Node::Map(fields) => {
            let mut inline = toml_edit::InlineTable::new();
            for (key, value) in fields {
                inline.insert(key, value_of(value));
            }
            Value::InlineTable(inline)
        }
    }
}
