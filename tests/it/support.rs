//! Helpers every area of the integration tests shares.

use fly_machines_mcp::tools::Gate;
use serde_json::Value;

/// Checks a result against both schemas of its tool: the compact one `tools/list`
/// declares (what a client validates) and the detailed one (every nested field).
pub fn assert_matches_output_schemas(gate: &Gate, tool: &str, structured: &Value) {
    let declared = gate.get_tool(tool).unwrap().output_schema.unwrap();
    let detailed = gate
        .enabled()
        .find(|t| t.name() == tool)
        .unwrap()
        .detailed_output_schema()
        .clone();
    for (which, schema) in [("declared", (*declared).clone()), ("detailed", detailed)] {
        let validator = jsonschema::validator_for(&Value::Object(schema)).unwrap();
        if let Some(e) = validator.iter_errors(structured).next() {
            panic!("{tool}: structured content does not match its {which} outputSchema: {e}");
        }
    }
}
