//! The tool catalog: a committed snapshot of the full `tools/list`, and invariants
//! every tool (including ones added later) must keep.

use fly_machines_mcp::tools::{Catalog, ToolKind};

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
        assert!(a.title.is_some(), "{name}: annotation title");
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
