//! `list_apps`, `app_status` and `machine_info`: content, size (the demo app within
//! 1,500 tokens counted as bytes/4; a 1,000-machine app under the cap saying what it
//! left out) and actionable errors.

use serde_json::{Value, json};

use super::{CAP, Harness, demo_machine_in, stable};

#[tokio::test]
async fn list_apps_shows_identity_orgs_and_apps() {
    let h = Harness::demo().await;
    let (text, s) = h.ok("list_apps", json!({})).await;
    assert!(text.contains("cdn-demo"), "{text}");
    let app = s["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "cdn-demo")
        .unwrap();
    assert_eq!(app["org"], "cdn-org");
    let (text, s) = h
        .ok("list_apps", json!({"name": "nothing-like-this"}))
        .await;
    assert_eq!(s["apps"].as_array().unwrap().len(), 0, "{text}");
    let err = h.err("list_apps", json!({"org": "no-such-org"})).await;
    assert!(
        err.contains("no-such-org") && err.contains("list_apps"),
        "{err}"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn app_status_of_the_demo_app_is_complete_and_small() {
    let h = Harness::demo().await;
    let (text, s) = h.ok("app_status", json!({"app": "cdn-demo"})).await;
    let machines = s["machines"].as_array().unwrap();
    assert_eq!(
        machines.len(),
        s["machine_count"].as_u64().unwrap() as usize
    );
    assert_eq!(s["left_out"], 0);
    // Unhealthy first: the two critical machines lead the table.
    let first_two: Vec<&str> = machines[..2]
        .iter()
        .map(|m| m["region"].as_str().unwrap())
        .collect();
    assert!(
        first_two.contains(&"ewr") && first_two.contains(&"atl"),
        "{first_two:?}"
    );
    for m in machines {
        assert!(
            text.contains(m["id"].as_str().unwrap()),
            "every id is shown"
        );
    }
    assert!(
        text.contains("context deadline exceeded") && text.contains("gone"),
        "{text}"
    );
    assert!(
        text.contains("66.241.125.10") && text.contains("cdn.example.com"),
        "{text}"
    );
    let oom: u64 = machines
        .iter()
        .map(|m| m["oom_kills"].as_u64().unwrap())
        .sum();
    assert!(oom >= 5, "{text}");

    let tokens = text.len() / 4;
    let structured = s.to_string().len();
    eprintln!(
        "app_status demo ({} machines): text {} bytes = ~{tokens} tokens (bytes/4), structured {structured} bytes = ~{} tokens",
        machines.len(),
        text.len(),
        structured / 4
    );
    assert!(tokens <= 1_500, "app_status text is ~{tokens} tokens");
    assert!(
        structured / 4 <= 1_500,
        "app_status structured is ~{} tokens",
        structured / 4
    );
    insta::assert_snapshot!("app_status_demo", stable(&text));
    h.sim.shutdown().await;
}

fn big_app(machines: usize) -> Value {
    let regions = ["ams", "iad", "ord", "lhr", "nrt", "syd", "gru", "sin"];
    let list: Vec<Value> = (0..machines)
        .map(|i| {
            let region = regions[i % regions.len()];
            let mut m = json!({
                "id": format!("{:014x}", 0x1000_0000_0000u64 + i as u64),
                "name": format!("worker-{i:04}"),
                "region": region,
                "state": if i % 10 == 9 { "stopped" } else { "started" },
                "created_at": -86400,
                "events": [{"at": -86400, "type": "launch", "status": "created", "source": "user"}]
            });
            if i % 3 == 0 {
                m["events"] = json!([
                    {"at": -86400, "type": "launch", "status": "created", "source": "user"},
                    {"at": -600 - i as i64, "type": "exit", "status": "stopped", "source": "flyd",
                     "request": {"exit_event": {"exit_code": 137, "signal": 9, "oom_killed": true,
                                                "restarting": true}, "restart_count": 1}},
                    {"at": -598 - i as i64, "type": "start", "status": "started", "source": "flyd"}
                ]);
            }
            if i == 777 {
                m["checks"] = json!([{"name": "servicecheck-00-http-8080", "status": "critical",
                                      "output": "connection refused", "at": -30}]);
            }
            m
        })
        .collect();
    json!({
        "orgs": [{"slug": "big-org", "name": "Big", "type": "SHARED", "paid_plan": true}],
        "apps": [{
            "name": "big-app", "org": "big-org", "created_at": -864000,
            "machine_config": {"image": "registry.fly.io/big-app:v1",
                               "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}},
            "machines": list
        }]
    })
}

#[tokio::test]
async fn a_thousand_machine_app_stays_under_the_cap_and_says_what_it_left_out() {
    let h = Harness::scenario(&big_app(1_000)).await;
    let (text, s) = h.ok("app_status", json!({"app": "big-app"})).await;
    assert_eq!(s["machine_count"], 1_000);
    let shown = s["machines"].as_array().unwrap();
    let left = s["left_out"].as_u64().unwrap() as usize;
    assert_eq!(shown.len() + left, 1_000);
    assert!(left > 0);
    assert!(
        text.contains(&format!("left out {left} machines")),
        "{text}"
    );
    assert!(text.contains("narrow with `region` or `state`"), "{text}");
    // The unhealthy machine is not among those left out.
    assert_eq!(shown[0]["name"], "worker-0777");
    assert!(
        !text.contains("[truncated"),
        "the tool bounds itself before the cap"
    );
    assert!(text.len() <= CAP, "text {} bytes", text.len());
    let structured = s.to_string().len();
    assert!(structured <= CAP, "structured {structured} bytes");
    eprintln!(
        "app_status 1,000 machines: {} listed, {left} left out; text {} bytes, structured {structured} bytes",
        shown.len(),
        text.len()
    );

    // diagnose of the same app stays under the cap too, most urgent first.
    let (text, s) = h.ok("diagnose", json!({"app": "big-app"})).await;
    assert!(text.len() <= CAP, "diagnose text {} bytes", text.len());
    assert!(
        s.to_string().len() <= CAP + 2048,
        "diagnose structured {} bytes",
        s.to_string().len()
    );
    assert!(s["left_out"].as_u64().unwrap() > 0);
    assert!(
        s["findings"].as_array().unwrap().len() > 5,
        "evidence lists are bounded"
    );
    assert!(text.contains("less urgent findings"), "{text}");
    assert_eq!(s["findings"][0]["severity"], "critical");
    assert!(
        text.contains("worker-0777")
            || text.contains(&format!("{:014x}", 0x1000_0000_0000u64 + 777)),
        "the critical check is shown"
    );
    eprintln!(
        "diagnose 1,000 machines: {} findings shown, {} left out; text {} bytes, structured {} bytes",
        s["findings"].as_array().unwrap().len(),
        s["left_out"],
        text.len(),
        s.to_string().len()
    );

    // Narrowing works: one region, one state.
    let (_, s) = h
        .ok(
            "app_status",
            json!({"app": "big-app", "region": "iad", "state": "stopped"}),
        )
        .await;
    let ms = s["machines"].as_array().unwrap();
    assert!(!ms.is_empty());
    assert!(
        ms.iter()
            .all(|m| m["region"] == "iad" && m["state"] == "stopped")
    );
    assert_eq!(s["left_out"], 0);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn machine_info_shows_config_events_checks_and_processes() {
    let h = Harness::demo().await;
    let ewr = demo_machine_in(&h.sim, "ewr");
    let (text, s) = h
        .ok(
            "machine_info",
            json!({"app": "cdn-demo", "machine": ewr, "processes": true}),
        )
        .await;
    assert_eq!(s["id"], ewr.as_str());
    assert_eq!(s["oom_kills"], 1);
    assert!(
        text.contains("OOM-killed, exit code 137, signal 9 (SIGKILL)"),
        "{text}"
    );
    assert!(text.contains("context deadline exceeded"), "{text}");
    assert!(text.contains("bun run server.ts"), "{text}");
    assert!(text.contains("tcp 3000"), "{text}");
    assert!(s["env"].as_array().unwrap().iter().any(|e| e == "PORT"));
    assert!(
        s.get("processes").is_some() || s.get("unavailable").is_some(),
        "{text}"
    );
    insta::assert_snapshot!(
        "machine_info_demo_ewr",
        stable(&text).replace(&ewr, "[EWR]")
    );

    // A machine name works as well as an id.
    let (_, by_name) = h
        .ok(
            "machine_info",
            json!({"app": "cdn-demo", "machine": "cdn-demo-ewr"}),
        )
        .await;
    assert_eq!(by_name["id"], ewr.as_str());
    h.sim.shutdown().await;
}

#[tokio::test]
async fn unknown_app_and_machine_errors_say_what_to_do() {
    let h = Harness::demo().await;
    let err = h.err("app_status", json!({"app": "no-such-app"})).await;
    assert!(
        err.contains("no-such-app") && err.contains("list_apps"),
        "{err}"
    );

    let err = h
        .err(
            "machine_info",
            json!({"app": "cdn-demo", "machine": "0123456789abcd"}),
        )
        .await;
    assert!(err.contains("0123456789abcd"), "{err}");
    for region in ["ewr", "atl", "lax"] {
        let id = demo_machine_in(&h.sim, region);
        assert!(err.contains(&id), "valid id {id} listed: {err}");
    }
    let err = h
        .err(
            "machine_info",
            json!({"app": "no-such-app", "machine": "0123456789abcd"}),
        )
        .await;
    assert!(err.contains("list_apps"), "{err}");
    h.sim.shutdown().await;
}
