//! The demo scenario tells the story of the blog post.

use fly_machines_mcp::sim::{Scenario, SimConfig};
use serde_json::Value;

use super::Sim;

#[tokio::test]
async fn demo_has_the_incident() {
    let sim = Sim::start(SimConfig::stepped().with_scenario(Scenario::Demo)).await;
    let (st, ms) = sim.get("/v1/apps/cdn-demo/machines").await;
    assert_eq!(st, 200);
    let ms = ms.as_array().unwrap();
    assert_eq!(ms.len(), 11);
    let regions: Vec<&str> = ms.iter().map(|m| m["region"].as_str().unwrap()).collect();
    for r in [
        "lax", "atl", "ewr", "lhr", "cdg", "ams", "sin", "nrt", "hkg", "bog", "syd",
    ] {
        assert!(regions.contains(&r), "{r}");
    }
    assert!(ms.iter().all(|m| m["config"]["guest"]["memory_mb"] == 4096));
    let by = |r: &str| ms.iter().find(|m| m["region"] == r).unwrap().clone();
    assert_eq!(by("ewr")["checks"][0]["status"], "critical");
    assert_eq!(
        by("ewr")["checks"][0]["output"],
        "context deadline exceeded"
    );
    assert_eq!(by("atl")["checks"][0]["output"], "gone");
    let oom_machines = ms
        .iter()
        .filter(|m| {
            m["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["request"]["exit_event"]["oom_killed"] == true)
        })
        .count();
    assert!(oom_machines >= 3, "{oom_machines}");

    // the ewr logs: OOM kill, SIGKILL, reboot, failing check, listener, passing ~43 s later
    let ewr = by("ewr")["id"].as_str().unwrap().to_owned();
    let mut all: Vec<Value> = Vec::new();
    let mut token = String::from("0");
    for _ in 0..20 {
        let (st, page) = sim
            .get(&format!(
                "/api/v1/apps/cdn-demo/logs?instance={ewr}&next_token={token}"
            ))
            .await;
        assert_eq!(st, 200);
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        token = page["meta"]["next_token"].as_str().unwrap().to_owned();
        all.extend(data);
    }
    let find = |needle: &str| {
        all.iter()
            .find(|l| {
                l["attributes"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(needle)
            })
            .map(|l| {
                l["attributes"]["timestamp"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no log line with {needle:?}"))
    };
    let killed =
        find("Out of memory: Killed process 641 (bun) total-vm:85950964kB, anon-rss:3744352kB")
            .unwrap();
    find("SIGKILL");
    find("reboot: Restarting system");
    find("Health check on port 3000 has failed");
    find("Server listening on http://localhost:3000");
    let passing = find("Health check on port 3000 is now passing.").unwrap();
    let gap = passing.duration_since(killed).as_secs();
    assert_eq!(gap, 43);
    assert!(all.iter().any(|l| {
        l["attributes"]["message"]
            .as_str()
            .unwrap()
            .ends_with(" 200")
    }));

    // the exit event lines up with the kill line
    let (_, events) = sim
        .get(&format!("/v1/apps/cdn-demo/machines/{ewr}/events?limit=50"))
        .await;
    let exit = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exit")
        .unwrap();
    assert_eq!(exit["request"]["exit_event"]["signal"], 9);
    assert_eq!(exit["timestamp"].as_i64().unwrap(), killed.as_millisecond());

    // no token: the latest 100 lines
    let (_, latest) = sim.get("/api/v1/apps/cdn-demo/logs").await;
    assert_eq!(latest["data"].as_array().unwrap().len(), 100);
}
