//! The tool reference in Markdown, generated from the catalog: what README.md shows
//! between its `<!-- tools:begin -->` and `<!-- tools:end -->` markers, so the reference
//! can never drift from what `tools/list` says (a test compares the two).
//!
//! Knows the catalog and JSON Schema; nothing else.

use std::fmt::Write as _;

use serde_json::Value;

use super::catalog::{Catalog, Toolset};

/// The command that regenerates the README section.
pub const REGENERATE: &str = "cargo run -- tools --markdown";

/// The whole tool reference: one section per toolset, one entry per tool with its
/// kind, title, description and arguments.
pub fn markdown(catalog: &Catalog) -> String {
    let mut out = String::new();
    for toolset in Toolset::ALL {
        let tools: Vec<_> = catalog
            .tools()
            .iter()
            .filter(|t| t.info.toolset == toolset)
            .collect();
        if tools.is_empty() {
            continue;
        }
        let default = if Toolset::DEFAULT.contains(&toolset) {
            "default"
        } else {
            "opt-in"
        };
        let _ = writeln!(out, "### `{}` ({default})\n", toolset.name());
        for tool in tools {
            let _ = writeln!(
                out,
                "#### `{}` — {} ({})\n",
                tool.info.name,
                tool.info.title,
                tool.kind.name()
            );
            let _ = writeln!(out, "{}\n", tool.info.description.trim());
            let schema = Value::Object((*tool.to_mcp().input_schema).clone());
            let args = arguments(&schema);
            if !args.is_empty() {
                let _ = writeln!(out, "| argument | type | required | description |");
                let _ = writeln!(out, "|---|---|---|---|");
                for (name, ty, required, description) in args {
                    let _ = writeln!(
                        out,
                        "| `{name}` | {ty} | {} | {} |",
                        if required { "yes" } else { "no" },
                        one_line(&description)
                    );
                }
                out.push('\n');
            }
        }
    }
    out
}

/// `(name, type, required, description)` for each top-level property.
fn arguments(schema: &Value) -> Vec<(String, String, bool, String)> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            (
                name.clone(),
                type_name(prop, schema),
                required.contains(&name.as_str()),
                prop.get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// A short type name for a property schema (follows one local `$ref`).
fn type_name(prop: &Value, root: &Value) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer));
        return match target {
            Some(t) if t.get("enum").is_some() => enum_values(t),
            Some(t) => type_name(t, root),
            None => "object".to_owned(),
        };
    }
    if prop.get("enum").is_some() {
        return enum_values(prop);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = prop.get(key).and_then(Value::as_array) {
            let names: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| type_name(a, root))
                .collect();
            return names.join(" \\| ");
        }
    }
    match prop.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let item = prop
                .get("items")
                .map(|i| type_name(i, root))
                .unwrap_or_else(|| "any".to_owned());
            format!("array of {item}")
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" \\| "),
        _ => "any".to_owned(),
    }
}

fn enum_values(schema: &Value) -> String {
    schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(Value::as_str)
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" \\| ")
        })
        .unwrap_or_else(|| "string".to_owned())
}

/// Table cells must stay on one line and must not break the table.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The README section between the markers, if both are there.
pub fn readme_section(readme: &str) -> Option<&str> {
    let start = readme.find(BEGIN)? + BEGIN.len();
    let end = readme.get(start..)?.find(END)? + start;
    readme.get(start..end)
}

/// Marks the start of the generated reference in README.md.
pub const BEGIN: &str =
    "<!-- tools:begin (generated by `fly-machines-mcp tools --markdown`; do not edit) -->\n";
/// Marks its end.
pub const END: &str = "<!-- tools:end -->";
