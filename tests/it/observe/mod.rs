//! The observe toolset end to end: an rmcp client ↔ the server ↔ the simulator on
//! 127.0.0.1:0 (the demo scenario, or generated scenario files for large apps and
//! long logs). Output sizes are measured against the default 16 KiB cap.

mod diagnose;
mod injection;
mod logs;
mod status;

use fly_machines_mcp::{
    sim::{Scenario, SimHandle},
    tools::PolicyOptions,
};
use serde_json::Value;

pub use crate::support::{CAP, Harness};

impl Harness {
    /// The demo scenario (real-time clock: the tools read the wall clock), default
    /// toolsets.
    pub async fn demo() -> Harness {
        Harness::start(
            Scenario::Demo,
            &PolicyOptions::default(),
            tempfile::tempdir().unwrap(),
        )
        .await
    }

    /// A scenario built from `scenario` (JSON, written to a temporary file).
    pub async fn scenario(scenario: &Value) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenario.json");
        std::fs::write(&path, serde_json::to_vec(scenario).unwrap()).unwrap();
        Harness::start(Scenario::File(path), &PolicyOptions::default(), dir).await
    }
}

/// Replaces wall-clock times (the simulator runs on real time) so snapshots are stable.
pub fn stable(text: &str) -> String {
    let rules = [
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"\b\d{2}:\d{2}:\d{2}\b", "[HH:MM:SS]"),
        (r"\b\d+[smhd] ago\b", "[AGE] ago"),
        // Machine versions are ULIDs, whose first characters are the clock.
        (r"\b[0-9A-HJKMNP-TV-Z]{26}\b", "[ULID]"),
        // The fence around app-controlled text is random per result.
        (r"app:[0-9a-f]{8}", "app:[FENCE]"),
    ];
    let mut out = text.to_owned();
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The demo machine in `region` (ids are looked up, never hard-coded).
pub fn demo_machine_in(sim: &SimHandle, region: &str) -> String {
    let state = sim.state_json();
    let mut found = None;
    visit(&state, &mut |o| {
        if found.is_none()
            && o.get("region").and_then(Value::as_str) == Some(region)
            && o.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("cdn-demo-"))
        {
            found = o.get("id").and_then(Value::as_str).map(str::to_owned);
        }
    });
    found.unwrap_or_else(|| panic!("no demo machine in {region}"))
}

fn visit(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            o.values().for_each(|x| visit(x, f));
        }
        Value::Array(a) => a.iter().for_each(|x| visit(x, f)),
        _ => {}
    }
}
