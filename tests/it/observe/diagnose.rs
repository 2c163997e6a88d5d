//! `diagnose` on the demo incident (seed 000): one call names the critical machines,
//! the OOM-killed ones, the kernel RSS against the limit, and the timeline.

use serde_json::json;

use super::{CAP, Harness, demo_machine_in, stable};

#[tokio::test]
async fn diagnose_tells_the_demo_story_in_one_call() {
    let h = Harness::demo().await;
    let (text, s) = h.ok("diagnose", json!({"app": "cdn-demo"})).await;

    let ewr = demo_machine_in(&h.sim, "ewr");
    let atl = demo_machine_in(&h.sim, "atl");
    let findings = s["findings"].as_array().unwrap();
    let has = |kind: &str, machine: &str, needle: &str| {
        findings
            .iter()
            .any(|f| f["kind"] == kind && f["machine"] == machine && f.to_string().contains(needle))
    };
    assert!(
        has("check_critical", &ewr, "context deadline exceeded"),
        "{text}"
    );
    assert!(has("check_critical", &atl, "gone"), "{text}");
    assert!(
        has(
            "oom_kill",
            &ewr,
            "anon-rss 3744352 kB = 3.57 GiB of the 4096 MB (4.00 GiB) guest limit"
        ),
        "{text}"
    );
    let oom: Vec<&str> = findings
        .iter()
        .filter(|f| f["kind"] == "oom_kill")
        .map(|f| f["region"].as_str().unwrap())
        .collect();
    assert_eq!(oom.len(), 5, "{oom:?}");
    for r in ["lax", "atl", "ewr", "sin", "syd"] {
        assert!(oom.contains(&r), "{r} missing from {oom:?}");
    }

    let inc = &s["incident"];
    assert_eq!(inc["machine"], ewr.as_str());
    assert_eq!(inc["recovered_after_s"], 43);
    let chain: Vec<&str> = inc["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // OOM kill → SIGKILL → reboot → check failing → listener up → check passing, in order.
    let order = [
        "OOM kill",
        "SIGKILL",
        "reboot",
        "check failing",
        "listener up",
        "check passing",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|step| {
            chain
                .iter()
                .position(|c| c == step)
                .unwrap_or_else(|| panic!("{step} not in {chain:?}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{chain:?}");
    assert!(text.contains("recovered in 43 s"), "{text}");

    assert!(text.len() <= CAP, "diagnose text is {} bytes", text.len());
    eprintln!(
        "diagnose demo: text {} bytes (~{} tokens at bytes/4), structured {} bytes",
        text.len(),
        text.len() / 4,
        s.to_string().len()
    );
    insta::assert_snapshot!("diagnose_demo", stable(&text));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn diagnose_of_an_unknown_app_points_to_list_apps() {
    let h = Harness::demo().await;
    let err = h.err("diagnose", json!({"app": "no-such-app"})).await;
    assert!(
        err.contains("no-such-app") && err.contains("list_apps"),
        "{err}"
    );
    h.sim.shutdown().await;
}
