//! The tool catalog: a committed snapshot of the full `tools/list`, and invariants
//! every tool (including ones added later) must keep.

use fly_machines_mcp::tools::{Catalog, ToolKind, Toolset};
use serde_json::Value;

#[test]
fn every_tool_has_title_annotations_kind_and_schemas() {
    let catalog = Catalog::all().unwrap();
    assert!(!catalog.tools().is_empty());
    for t in catalog.tools() {
        let tool = t.to_mcp();
        let name = t.name();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}: snake_case"
        );
        assert!(
            tool.title.as_deref().is_some_and(|s| !s.is_empty()),
            "{name}: title"
        );
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 40),
            "{name}: description"
        );
        let a = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: annotations"));
        assert!(
            a.title.is_none(),
            "{name}: the title is said once, at the top"
        );
        let (ro, de) = (a.read_only_hint.unwrap(), a.destructive_hint.unwrap());
        assert!(
            a.idempotent_hint.is_some() && a.open_world_hint.is_some(),
            "{name}: all hints set"
        );
        match t.kind {
            ToolKind::Read => assert!(ro && !de, "{name}"),
            ToolKind::Write => assert!(!ro && !de, "{name}"),
            ToolKind::Destructive => {
                assert!(!ro && de, "{name}");
                let props = tool.input_schema.get("properties").unwrap();
                assert!(props.get("confirm").is_some(), "{name}: confirm argument");
            }
        }
        assert_eq!(tool.input_schema.get("type").unwrap(), "object", "{name}");
        let out = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: outputSchema"));
        assert_eq!(out.get("type").unwrap(), "object", "{name}");
        // Every property is described, so the model knows what to pass.
        if let Some(props) = tool
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
        {
            for (prop, schema) in props {
                assert!(
                    schema.get("description").is_some(),
                    "{name}.{prop}: description"
                );
            }
        }
        // Schemas compile.
        jsonschema::validator_for(&serde_json::Value::Object((*tool.input_schema).clone()))
            .unwrap_or_else(|e| panic!("{name}: input schema: {e}"));
        jsonschema::validator_for(&serde_json::Value::Object((**out).clone()))
            .unwrap_or_else(|e| panic!("{name}: output schema: {e}"));
    }
}

#[test]
fn tools_list_snapshot() {
    let catalog = Catalog::all().unwrap();
    let tools: Vec<serde_json::Value> = catalog
        .tools()
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t.to_mcp()).unwrap();
            v.as_object_mut()
                .unwrap()
                .insert("x-toolset".into(), t.info.toolset.name().into());
            v
        })
        .collect();
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("tools_list", tools);
    });
}

/// DESIGN §9: the default `tools/list` costs at most 6,000 tokens, counted as bytes/4
/// of the compact JSON a client receives (the JSON-RPC envelope adds about 40 bytes).
#[test]
fn the_default_tools_list_fits_its_context_budget() {
    let catalog = Catalog::all().unwrap();
    let tools: Vec<_> = catalog
        .tools()
        .iter()
        .filter(|t| Toolset::DEFAULT.contains(&t.info.toolset))
        .map(|t| t.to_mcp())
        .collect();
    assert_eq!(tools.len(), 15);
    let bytes = serde_json::to_string(&serde_json::json!({ "tools": tools }))
        .unwrap()
        .len();
    assert!(
        bytes + 40 <= 24_000,
        "default tools/list is {bytes} bytes (~{} tokens); the budget is 6,000 tokens",
        (bytes + 40) / 4
    );
}

/// `tools/list` declares the top level of each output; the detailed schema has the
/// same fields, and results are checked against both (see `support`).
#[test]
fn declared_output_schemas_are_the_top_of_the_detailed_ones() {
    let catalog = Catalog::all().unwrap();
    for t in catalog.tools() {
        let declared = t.to_mcp().output_schema.unwrap();
        let detailed = t.detailed_output_schema();
        let keys = |s: &serde_json::Map<String, Value>| -> Vec<String> {
            s.get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&declared), keys(detailed), "{}", t.name());
        let text = serde_json::to_string(&*declared).unwrap();
        for nested in ["\"items\"", "\"description\"", "\"required\""] {
            assert!(!text.contains(nested), "{}: {nested} in {text}", t.name());
        }
    }
}

/// Compaction keeps the meaning: optional nested fields and numeric formats go, bounds
/// and required fields stay.
#[test]
fn input_schemas_keep_bounds_and_required_fields_without_noise() {
    let catalog = Catalog::all().unwrap();
    let provision = catalog.get("provision_environment").unwrap().to_mcp();
    let schema = Value::Object((*provision.input_schema).clone());
    assert_eq!(
        schema["required"],
        serde_json::json!(["app", "region", "image"])
    );
    let size = &schema["properties"]["volume"]["properties"]["size_gb"];
    assert_eq!(
        (
            size["type"].as_str(),
            size["minimum"].as_u64(),
            size["maximum"].as_u64()
        ),
        (Some("integer"), Some(1), Some(500)),
        "{size}"
    );
    assert_eq!(schema["properties"]["services"]["maxItems"], 8);
    for t in catalog.tools() {
        let text = serde_json::to_string(&*t.to_mcp().input_schema).unwrap();
        for noise in [
            "\"format\":\"uint",
            "\"format\":\"int",
            "\"format\":\"double\"",
        ] {
            assert!(!text.contains(noise), "{}: {noise}", t.name());
        }
    }
    // A nested map keeps `null` where it means something (remove this variable).
    let update = catalog.get("update_machines").unwrap().to_mcp();
    let env = &update.input_schema["properties"]["env"]["additionalProperties"];
    assert!(env.to_string().contains("null"), "{env}");
}

/// Claude Code's tool search: the tools an agent needs first always load; the tools
/// outside the default toolsets carry a short search hint; none carries both.
#[test]
fn tool_search_meta_marks_the_first_tools_and_hints_the_optional_ones() {
    let catalog = Catalog::all().unwrap();
    for tool in catalog.tools() {
        let mcp = tool.to_mcp();
        let meta = mcp.meta.as_ref().map(|m| m.0.clone()).unwrap_or_default();
        let always = meta.get("anthropic/alwaysLoad");
        let hint = meta.get("anthropic/searchHint");
        let name = tool.info.name;
        if ["list_apps", "app_status", "diagnose"].contains(&name) {
            assert_eq!(always, Some(&serde_json::Value::Bool(true)), "{name}");
            assert!(hint.is_none(), "{name}");
        } else {
            assert!(always.is_none(), "{name}");
        }
        if !Toolset::DEFAULT.contains(&tool.info.toolset) {
            let hint = hint.and_then(|h| h.as_str()).unwrap_or_default();
            assert!(!hint.is_empty() && hint.len() <= 60, "{name}: {hint:?}");
        }
    }
}
