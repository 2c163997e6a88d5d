//! Property tests: random and malformed arguments at every tool in `Catalog::all()`
//! through MCP. Each case the schema rejects must come back as an error result that
//! names a field; the server must keep answering; the simulator's resources must not
//! change and no Fly request may be made for an invalid call.

use std::collections::BTreeMap;

use fly_machines_mcp::tools::Catalog;
use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::{Map, Value, json};

use super::{call, connect, demo_sim, resources, sim_client, text_of};

const TOKEN: &str = "fuzz-sim-token-77aa";

/// How many cases per run (kept small: the whole module runs in well under a minute).
const CASES: u32 = 256;

/// One tool's argument shape, read from its published input schema.
struct Shape {
    name: String,
    props: BTreeMap<String, Value>,
    required: Vec<String>,
}

fn shapes(catalog: &Catalog) -> Vec<Shape> {
    catalog
        .tools()
        .iter()
        .map(|t| {
            let tool = t.to_mcp();
            let schema = Value::Object((*tool.input_schema).clone());
            let props = schema["properties"]
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let required = schema["required"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Shape {
                name: tool.name.to_string(),
                props,
                required,
            }
        })
        .collect()
}

/// A plausible value for a property (not necessarily valid).
fn plausible(schema: &Value) -> Value {
    let ty = match &schema["type"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|s| *s != "null")
            .unwrap_or("string")
            .to_owned(),
        _ => "string".to_owned(),
    };
    match ty.as_str() {
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "array" => json!([]),
        "object" => json!({}),
        _ => json!("cdn-demo"),
    }
}

/// Hostile leaf values: wrong types, huge strings, unicode, extreme numbers.
fn junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(-0.5)),
        "\\PC{0,40}".prop_map(Value::from),
        (1usize..200_000).prop_map(|n| Value::from("é".repeat(n / 2))),
        Just(json!("\u{0}\u{202e}\u{1F4A5}../../etc/passwd")),
        Just(json!("'; DROP TABLE apps; --")),
        Just(json!([1, "two", null, {"three": 3}])),
        Just(json!({"nested": {"deeper": [[[[]]]]}})),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace property `i` (mod the property count) with a hostile value.
    Retype(usize, Value),
    /// Drop required property `i` (mod the required count).
    Drop(usize),
    /// Add an unknown field.
    Extra(String, Value),
    /// Throw the whole object away for random keys and values.
    Random(Vec<(String, Value)>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), junk()).prop_map(|(i, v)| Mutation::Retype(i, v)),
        2 => any::<usize>().prop_map(Mutation::Drop),
        2 => ("[a-z_]{1,12}|\\PC{1,8}", junk()).prop_map(|(k, v)| Mutation::Extra(k, v)),
        2 => proptest::collection::vec(("[a-z_]{1,10}", junk()), 0..5).prop_map(Mutation::Random),
    ]
}

fn build(shape: &Shape, m: &Mutation) -> Map<String, Value> {
    let mut args: Map<String, Value> = shape
        .required
        .iter()
        .map(|k| {
            let v = shape.props.get(k).map_or_else(|| json!("x"), plausible);
            (k.clone(), v)
        })
        .collect();
    match m {
        Mutation::Retype(i, v) => {
            let keys: Vec<&String> = shape.props.keys().collect();
            if let Some(k) = keys.get(i % keys.len().max(1)) {
                args.insert((*k).clone(), v.clone());
            } else {
                args.insert("unexpected".into(), v.clone());
            }
        }
        Mutation::Drop(i) => {
            if let Some(k) = shape.required.get(i % shape.required.len().max(1)) {
                args.remove(k);
            }
        }
        Mutation::Extra(k, v) => {
            args.insert(k.clone(), v.clone());
        }
        Mutation::Random(kv) => {
            args = kv.iter().cloned().collect();
        }
    }
    args
}

#[test]
fn malformed_arguments_to_every_tool_are_refused_cleanly() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sim, gate, client) = rt.block_on(async {
        let sim = demo_sim(TOKEN).await;
        let (gate, client) = connect(sim_client(&sim, TOKEN), None).await;
        (sim, gate, client)
    });
    let catalog = Catalog::all().unwrap();
    let shapes = shapes(&catalog);
    // Every tool of the catalog is served with the `all` selection.
    assert_eq!(
        shapes.len(),
        gate.list_tools().len(),
        "a tool is not served"
    );
    assert!(shapes.len() >= 10, "the catalog has {} tools", shapes.len());
    let before = resources(&sim);
    let requests_before = rt.block_on(sim_requests(&sim));

    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let tool_count = shapes.len();
    runner
        .run(&(0..tool_count, mutation()), |(t, m)| {
            let shape = &shapes[t];
            let args = build(shape, &m);
            let def = catalog.get(&shape.name).unwrap();
            if def.validate(&Value::Object(args.clone())).is_ok() {
                // Schema-valid by chance: a real call; not this test's subject.
                return Ok(());
            }
            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let r = rt
                .block_on(client.call_tool(call(&shape.name, args.clone())))
                .map_err(|e| TestCaseError::fail(format!("{}: protocol error {e}", shape.name)))?;
            let text = text_of(&r);
            prop_assert_eq!(r.is_error, Some(true), "{}: {:?} → {}", shape.name, m, text);
            prop_assert!(
                text.contains("invalid argument"),
                "{}: not an argument error: {}",
                shape.name,
                text
            );
            // The error names a field: one the call sent, one the schema requires, or a
            // path inside them.
            let names_a_field = args
                .keys()
                .chain(shape.required.iter())
                .any(|k| text.contains(&format!("'{k}")) || text.contains(&format!("\"{k}\"")))
                || text.contains("'arguments'");
            prop_assert!(names_a_field, "{}: no field named in: {}", shape.name, text);
            prop_assert!(
                text.len() < 20_000,
                "{}: error of {} bytes",
                shape.name,
                text.len()
            );
            Ok(())
        })
        .unwrap();

    // Still alive and answering, nothing created or destroyed, no Fly call made.
    let alive = rt.block_on(client.list_all_tools()).unwrap();
    assert_eq!(alive.len(), gate.list_tools().len());
    assert_eq!(
        resources(&sim),
        before,
        "an invalid call changed the simulator"
    );
    assert_eq!(
        rt.block_on(sim_requests(&sim)),
        requests_before,
        "an invalid call reached Fly"
    );
    assert!(
        refused.load(std::sync::atomic::Ordering::Relaxed) > (CASES as usize) / 4,
        "too few invalid cases were generated"
    );
    rt.block_on(async {
        client.cancel().await.unwrap();
        sim.shutdown().await;
    });
}

/// How many API requests the simulator has served (its request log).
async fn sim_requests(sim: &fly_machines_mcp::sim::SimHandle) -> usize {
    let url = format!("{}/__sim/requests", sim.base_url());
    let v: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    match v {
        Value::Array(a) => a.len(),
        Value::Object(o) => o
            .get("requests")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        _ => 0,
    }
}
