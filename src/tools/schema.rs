//! Schema rewriting: the JSON Schema the catalog publishes for a tool, from what
//! schemars writes. Subschemas are inlined (some clients do not resolve `$ref`),
//! numeric formats and the `null` of optional fields are dropped, `type` arrays become
//! `anyOf` branches, and `tools/list` declares only the top level of an output schema.
//! A destructive tool's input gains the `confirm` argument here.
//!
//! Knows JSON Schema and schemars; nothing of tools' bodies or of the gate.

use rmcp::model::JsonObject;
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

use super::catalog::{CONFIRM_ARG, DeclarationError};

fn schema_settings() -> SchemaSettings {
    let mut settings = SchemaSettings::draft2020_12();
    // Inline definitions: some clients do not resolve `$ref` in tool schemas.
    settings.inline_subschemas = true;
    settings
}

fn object_schema(
    tool: &'static str,
    mut value: Value,
    what: &str,
) -> Result<JsonObject, DeclarationError> {
    drop_integer_formats(&mut value);
    drop_implied_min_length(&mut value);
    let Some(obj) = value.as_object_mut() else {
        return Err(DeclarationError {
            tool,
            problem: format!("{what} schema is not a JSON object"),
        });
    };
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err(DeclarationError {
            tool,
            problem: format!("{what} schema must have type \"object\""),
        });
    }
    obj.remove("$schema");
    obj.remove("title");
    obj.remove("description");
    // An optional top-level property simply loses the `null`: for inputs the gate
    // treats a top-level `null` argument as absent; for outputs an optional `Option`
    // is skipped, never written as `null`.
    for_optional_properties(obj, drop_null_branch);
    let mut value = Value::Object(obj.clone());
    if what == "input" {
        // Deeper down the same holds for arguments: serde reads an absent optional
        // field and a `null` one alike, so the schema offers only the value.
        drop_optional_nulls(&mut value);
    }
    split_type_arrays(&mut value);
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(DeclarationError {
            tool,
            problem: format!("{what} schema is not a JSON object"),
        }),
    }
}

/// The schema of a list of nested objects whose fields the property's description
/// spells out: `serde` still checks every field (unknown ones are refused with the
/// path), and the model reads one line instead of a nested schema several times as
/// long.
pub fn objects_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "object" }
    })
}

/// Drops `minLength: 1` beside a `pattern` that no empty string matches: the pattern
/// already says it.
fn drop_implied_min_length(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            let implied = obj.get("minLength").and_then(Value::as_u64) == Some(1)
                && obj
                    .get("pattern")
                    .and_then(Value::as_str)
                    .and_then(|p| regex::Regex::new(p).ok())
                    .is_some_and(|re| !re.is_match(""));
            if implied {
                obj.remove("minLength");
            }
            obj.values_mut().for_each(drop_implied_min_length);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_implied_min_length),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Removes the `format` schemars writes for Rust integer and float types (`uint32`,
/// `int64`, `double` …), with the `minimum: 0` that only restates "unsigned". They are
/// not JSON Schema formats; the declared bounds say what matters, in fewer tokens.
fn drop_integer_formats(value: &mut Value) {
    const NUMERIC: [&str; 12] = [
        "uint8", "uint16", "uint32", "uint64", "uint", "int8", "int16", "int32", "int64", "int",
        "float", "double",
    ];
    match value {
        Value::Object(obj) => {
            let numeric = obj
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| NUMERIC.contains(&f));
            if numeric {
                let unsigned = obj
                    .get("format")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.starts_with("uint"));
                obj.remove("format");
                if unsigned && obj.get("minimum").and_then(Value::as_u64) == Some(0) {
                    obj.remove("minimum");
                }
            }
            obj.values_mut().for_each(drop_integer_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_integer_formats),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// In every nested object, an optional property loses its `null` branch (see
/// [`object_schema`] for the top level). Map values (`additionalProperties`) keep
/// theirs: there `null` means something (e.g. "remove this variable").
fn drop_optional_nulls(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            for_optional_properties(obj, drop_null_branch);
            obj.values_mut().for_each(drop_optional_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_optional_nulls),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Applies `f` to each property of `obj` that its `required` list does not name.
fn for_optional_properties(obj: &mut JsonObject, f: fn(&mut Value)) {
    let required: Vec<String> = match obj.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) | None => Vec::new(),
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if !required.contains(name) {
                f(prop);
            }
        }
    }
}

/// `"type": [X, "null"]` → X, and `anyOf: [X, {"type": "null"}]` → X (keeping the
/// description beside it).
fn drop_null_branch(prop: &mut Value) {
    drop_null_type(prop);
    let Some(obj) = prop.as_object_mut() else {
        return;
    };
    let branch = match obj.get("anyOf") {
        Some(Value::Array(branches)) if branches.len() == 2 => {
            let null = serde_json::json!({ "type": "null" });
            match branches.as_slice() {
                [a, b] if *b == null => Some(a.clone()),
                [a, b] if *a == null => Some(b.clone()),
                _ => None,
            }
        }
        Some(_) | None => None,
    };
    if let Some(Value::Object(branch)) = branch {
        obj.remove("anyOf");
        for (k, v) in branch {
            obj.entry(k).or_insert(v);
        }
    }
    if let Some(Value::Array(values)) = obj.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
}

/// The output schema `tools/list` declares: the top-level fields with their types
/// (and enums); no descriptions, no nested shapes, no `required` list. Clients validate results
/// against it all the same; the model reads the shape from the result itself. The
/// full schema cost more context than every tool description together.
pub fn shallow_output(full: &JsonObject) -> JsonObject {
    let mut out = JsonObject::new();
    out.insert("type".to_owned(), Value::String("object".to_owned()));
    if let Some(Value::Object(props)) = full.get("properties") {
        let props: JsonObject = props
            .iter()
            .map(|(k, v)| (k.clone(), type_only(v)))
            .collect();
        out.insert("properties".to_owned(), Value::Object(props));
    }
    out
}

fn type_only(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return Value::Object(JsonObject::new());
    };
    let mut out = JsonObject::new();
    for key in ["type", "enum", "const"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(Value::Array(branches)) = obj.get("anyOf") {
        let mut kept: Vec<Value> = Vec::new();
        for b in branches.iter().map(type_only) {
            if !kept.contains(&b) {
                kept.push(b);
            }
        }
        out.insert("anyOf".to_owned(), Value::Array(kept));
    }
    Value::Object(out)
}

/// Rewrites `"type": ["string", "null"]` (what schemars writes for `Option<T>`), which
/// the MCP Inspector's `--strict` lint flags as unportable, into `anyOf` branches with
/// one `type` each.
fn split_type_arrays(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            for v in obj.values_mut() {
                split_type_arrays(v);
            }
            let types: Option<Vec<Value>> = match obj.get("type") {
                Some(Value::Array(types)) => Some(types.clone()),
                Some(_) | None => None,
            };
            if let Some(types) = types {
                obj.remove("type");
                let keep_top = ["description", "title", "default", "examples", "deprecated"];
                let mut shared = serde_json::Map::new();
                let keys: Vec<String> = obj.keys().cloned().collect();
                for k in keys {
                    if !keep_top.contains(&k.as_str())
                        && let Some(v) = obj.remove(&k)
                    {
                        shared.insert(k, v);
                    }
                }
                let branches: Vec<Value> = types
                    .into_iter()
                    .map(|t| {
                        if t == "null" {
                            serde_json::json!({ "type": "null" })
                        } else {
                            let mut b = shared.clone();
                            b.insert("type".to_owned(), t);
                            Value::Object(b)
                        }
                    })
                    .collect();
                obj.insert("anyOf".to_owned(), Value::Array(branches));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(split_type_arrays),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

pub(super) fn input_schema<A: JsonSchema>(
    tool: &'static str,
) -> Result<JsonObject, DeclarationError> {
    let schema = schema_settings()
        .into_generator()
        .into_root_schema_for::<A>();
    object_schema(tool, schema.to_value(), "input")
}

pub(super) fn output_schema<O: JsonSchema>(
    tool: &'static str,
) -> Result<JsonObject, DeclarationError> {
    let schema = schema_settings()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<O>();
    object_schema(tool, schema.to_value(), "output")
}

fn drop_null_type(prop: &mut Value) {
    if let Some(Value::Array(types)) = prop.get_mut("type") {
        types.retain(|t| t != "null");
        if let [single] = types.as_slice() {
            let single = single.clone();
            if let Some(obj) = prop.as_object_mut() {
                obj.insert("type".to_owned(), single);
            }
        }
    }
}

pub(super) fn add_confirm_property(schema: &mut JsonObject) {
    let props = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(JsonObject::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            CONFIRM_ARG.to_owned(),
            serde_json::json!({
                "type": "string",
                "maxLength": 100,
                "description": "Leave out at first: the reply lists what would be destroyed and a token; pass that token to go ahead."
            }),
        );
    }
}
