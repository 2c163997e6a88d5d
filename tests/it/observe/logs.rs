//! `app_logs`: filters (machine, region, since, grep), newest last, paging with
//! `next`, never over the cap, secrets redacted, actionable errors.

use serde_json::{Value, json};

use super::{CAP, Harness, demo_machine_in};

fn lines(s: &Value) -> Vec<Value> {
    s["lines"].as_array().unwrap().clone()
}

fn assert_newest_last(ls: &[Value]) {
    let times: Vec<&str> = ls.iter().map(|l| l["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn filters_select_the_right_lines_newest_last() {
    let h = Harness::demo().await;
    let ewr = demo_machine_in(&h.sim, "ewr");
    let atl = demo_machine_in(&h.sim, "atl");

    // Latest lines, no filter.
    let (_, s) = h
        .ok("app_logs", json!({"app": "cdn-demo", "tail": 20}))
        .await;
    let ls = lines(&s);
    assert_eq!(ls.len(), 20);
    assert_newest_last(&ls);

    // Machine filter, by id.
    let (_, s) = h
        .ok(
            "app_logs",
            json!({"app": "cdn-demo", "machine": atl, "since": "1h"}),
        )
        .await;
    let ls = lines(&s);
    assert!(!ls.is_empty());
    assert!(ls.iter().all(|l| l["machine"] == atl.as_str()));

    // Region filter.
    let (_, s) = h
        .ok(
            "app_logs",
            json!({"app": "cdn-demo", "region": "ewr", "since": "10m", "tail": 5}),
        )
        .await;
    assert!(lines(&s).iter().all(|l| l["region"] == "ewr"));

    // grep: substring (case-insensitive) and /regex/.
    let (text, s) = h
        .ok(
            "app_logs",
            json!({"app": "cdn-demo", "since": "10m", "grep": "out of MEMORY"}),
        )
        .await;
    let ls = lines(&s);
    assert_eq!(ls.len(), 1, "{text}");
    assert!(
        ls[0]["message"]
            .as_str()
            .unwrap()
            .contains("anon-rss:3744352kB")
    );
    assert_eq!(ls[0]["machine"], ewr.as_str());
    let (_, s) = h
        .ok("app_logs", json!({"app": "cdn-demo", "since": "10m", "grep": r"/^Health check on port \d+ has failed/"}))
        .await;
    let ls = lines(&s);
    assert_eq!(ls.len(), 3, "{ls:?}");
    assert_newest_last(&ls);

    // since excludes older lines: the OOM kill was 5 minutes ago.
    let (_, s) = h
        .ok(
            "app_logs",
            json!({"app": "cdn-demo", "since": "4m", "grep": "out of memory"}),
        )
        .await;
    assert!(lines(&s).is_empty());
    h.sim.shutdown().await;
}

/// Pages through the ewr machine's last 7 minutes `tail` lines at a time.
async fn page_through(h: &Harness, machine: &str, tail: u32) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..50 {
        let mut args = json!({"app": "cdn-demo", "machine": machine, "tail": tail});
        match &next {
            Some(n) => args["next"] = json!(n),
            None => args["since"] = json!("7m"),
        }
        let (text, s) = h.ok("app_logs", args).await;
        assert!(text.len() <= CAP);
        let page = lines(&s);
        assert!(page.len() <= tail as usize);
        assert_newest_last(&page);
        seen.extend(page.iter().cloned());
        next = s["next"].as_str().map(str::to_owned);
        if s["complete"] == true {
            return seen;
        }
        assert!(next.is_some(), "an incomplete page has a next cursor");
        assert!(
            text.contains("next="),
            "the text says how to continue: {text}"
        );
    }
    panic!("paging did not finish");
}

#[tokio::test]
async fn paging_with_next_covers_every_line_once() {
    let h = Harness::demo().await;
    let ewr = demo_machine_in(&h.sim, "ewr");
    let big = page_through(&h, &ewr, 500).await;
    let small = page_through(&h, &ewr, 40).await;
    // The demo logs about 230 lines for this machine in those 7 minutes.
    assert!(big.len() > 200, "{}", big.len());
    let key = |l: &Value| format!("{}|{}", l["time"], l["message"]);
    let big: Vec<String> = big.iter().map(key).collect();
    let small: Vec<String> = small.iter().map(key).collect();
    assert_eq!(
        small, big,
        "pages join up, no gaps or repeats, whatever the page size"
    );
    let mut dedup = big.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), big.len());
    h.sim.shutdown().await;
}

#[tokio::test]
async fn long_logs_never_exceed_the_cap_and_secrets_are_redacted() {
    let long = "x".repeat(900);
    let canary = "FlyV1 fm2_lJPECAAAAAAAAMCanaryCanaryCanary";
    let scenario = json!({
        "orgs": [{"slug": "log-org", "name": "Logs", "type": "SHARED"}],
        "apps": [{
            "name": "chatty", "org": "log-org", "created_at": -86400,
            "machine_config": {"image": "registry.fly.io/chatty:v1"},
            "machines": [{"id": "0a0b0c0d0e0f10", "name": "chatty-1", "region": "ams",
                          "state": "started", "created_at": -86400}],
            "logs": [{"at": -30, "instance": "0a0b0c0d0e0f10",
                      "message": format!("connecting with token {canary}")},
                     {"at": -20, "instance": "0a0b0c0d0e0f10",
                      "message": format!("huge {}", "y".repeat(60_000))}],
            "log_series": [{"from": -600, "to": -1, "every": 1, "instance": "0a0b0c0d0e0f10",
                            "messages": [format!("request {long}")]}]
        }]
    });
    let h = Harness::scenario(&scenario).await;
    for args in [
        json!({"app": "chatty", "tail": 500}),
        json!({"app": "chatty", "since": "20m", "tail": 500}),
        json!({"app": "chatty", "since": "1h", "grep": "huge"}),
    ] {
        let (text, s) = h.ok("app_logs", args.clone()).await;
        assert!(text.len() <= CAP, "{args}: text {} bytes", text.len());
        let structured = s.to_string().len();
        assert!(
            structured <= CAP + 1024,
            "{args}: structured {structured} bytes"
        );
        assert!(!lines(&s).is_empty());
        if args.get("grep").is_some() {
            assert!(
                text.contains("more bytes]"),
                "a huge line is cut with a marker"
            );
            continue;
        }
        assert!(
            s["left_out"].as_u64().unwrap() > 0 || s["complete"] == false,
            "{args}"
        );
        assert!(
            text.contains("left out") || text.contains("next="),
            "{args}: says how to get more"
        );
    }
    let (text, s) = h
        .ok(
            "app_logs",
            json!({"app": "chatty", "since": "1h", "grep": "connecting"}),
        )
        .await;
    assert!(
        !text.contains("fm2_lJPECAAAA") && !s.to_string().contains("fm2_lJPECAAAA"),
        "{text}"
    );
    assert!(text.contains("[REDACTED]"), "{text}");
    h.sim.shutdown().await;
}

#[tokio::test]
async fn bad_arguments_and_unknown_names_are_actionable() {
    let h = Harness::demo().await;
    let err = h.err("app_logs", json!({"app": "no-such-app"})).await;
    assert!(err.contains("list_apps"), "{err}");
    let err = h
        .err(
            "app_logs",
            json!({"app": "cdn-demo", "machine": "0123456789abcd"}),
        )
        .await;
    assert!(
        err.contains(&demo_machine_in(&h.sim, "ewr")),
        "lists valid ids: {err}"
    );
    let err = h
        .err("app_logs", json!({"app": "cdn-demo", "since": "yesterday"}))
        .await;
    assert!(err.contains("since") && err.contains("15m"), "{err}");
    let err = h
        .err(
            "app_logs",
            json!({"app": "cdn-demo", "grep": "/(unclosed/"}),
        )
        .await;
    assert!(err.contains("grep"), "{err}");
    let err = h
        .err(
            "app_logs",
            json!({"app": "cdn-demo", "next": "not-a-cursor"}),
        )
        .await;
    assert!(err.contains("next"), "{err}");
    h.sim.shutdown().await;
}
