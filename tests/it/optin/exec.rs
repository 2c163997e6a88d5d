//! exec_command: exit code, stdout and stderr from a started machine; confirmation
//! before anything runs; the per-stream budget and the output cap; the audit line
//! carries the argv.

use serde_json::json;

use super::{CAP, DEMO_APP, Harness};

#[tokio::test]
async fn exec_returns_exit_code_and_streams_after_confirmation() {
    let h = Harness::opt_in().await;
    let id = h.started_machine(DEMO_APP);
    let args = json!({"app": DEMO_APP, "machine_id": id, "command": ["echo", "hello", "world"]});
    let err = h.err("exec_command", args.clone()).await;
    assert!(err.contains("confirmation required"), "{err}");
    assert!(err.contains("echo hello world"), "{err}");

    let confirmed = crate::support::with_confirm(&args, &err);
    let (text, out) = h.ok("exec_command", confirmed).await;
    assert_eq!(out["exit_code"], 0);
    assert_eq!(out["stdout"]["text"], "hello world\n");
    assert_eq!(out["stderr"]["total_bytes"], 0);
    assert!(text.contains("exit 0"), "{text}");

    let (text, out) = h
        .confirmed(
            "exec_command",
            json!({"app": DEMO_APP, "machine_id": id, "command": ["no-such-tool", "-x"]}),
        )
        .await;
    assert_eq!(out["exit_code"], 127);
    assert!(
        out["stderr"]["text"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{text}"
    );

    // The audit log names the argv of every call, confirmed or not.
    let records = h.audit_records();
    let execs: Vec<_> = records
        .iter()
        .filter(|r| r["tool"] == "exec_command")
        .collect();
    // Each confirmed call is two: the plan (with its token), then the call.
    assert_eq!(execs.len(), 4, "{records:?}");
    assert_eq!(execs[0]["outcome"], "confirmation_required");
    assert_eq!(execs[1]["outcome"], "ok");
    assert_eq!(
        execs[1]["args"]["command"],
        json!(["echo", "hello", "world"])
    );
    assert_eq!(execs[2]["outcome"], "confirmation_required");
    assert_eq!(execs[3]["args"]["command"][0], "no-such-tool");
}

#[tokio::test]
async fn exec_output_is_bounded_by_the_budget_and_the_cap() {
    let h = Harness::opt_in().await;
    let id = h.started_machine(DEMO_APP);
    // 15 arguments of 4,000 bytes (the schema's per-argument bound is 4,096).
    let mut argv = vec!["echo".to_owned(), "BEGIN".to_owned()];
    argv.extend((0..15).map(|_| "x".repeat(4000)));
    argv.push("END".to_owned());
    let (text, out) = h
        .confirmed(
            "exec_command",
            json!({"app": DEMO_APP, "machine_id": id, "command": argv,
                   "max_output_bytes": 2048}),
        )
        .await;
    let stdout = &out["stdout"];
    assert_eq!(stdout["truncated"], true);
    // "BEGIN " + 15 × ("x"×4000 + " ") + "END\n"
    assert_eq!(stdout["total_bytes"], 6 + 15 * 4001 + 4);
    let kept = stdout["text"].as_str().unwrap();
    assert!(kept.len() < 2048 + 64, "{}", kept.len());
    assert!(kept.starts_with("BEGIN") && kept.trim_end().ends_with("END"));
    assert!(text.len() <= CAP, "{}", text.len());
    assert!(text.contains("bytes left out"), "{text}");

    // The largest budget still leaves the text under the cap.
    let (text, out) = h
        .confirmed(
            "exec_command",
            json!({"app": DEMO_APP, "machine_id": id, "command": argv,
                   "max_output_bytes": 65536}),
        )
        .await;
    assert_eq!(out["stdout"]["truncated"], false);
    assert!(text.len() <= CAP, "{}", text.len());
    assert!(text.contains("[truncated"), "{}", &text[text.len() - 300..]);
}

#[tokio::test]
async fn exec_refuses_a_machine_that_is_not_started() {
    let h = Harness::opt_in().await;
    let a = h.app_state(DEMO_APP).unwrap();
    let Some(id) = a["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["state"] != "started" && m["state"] != "destroyed")
        .and_then(|m| m["id"].as_str())
    else {
        return;
    };
    let err = h
        .err(
            "exec_command",
            json!({"app": DEMO_APP, "machine_id": id, "command": ["true"], "confirm": DEMO_APP}),
        )
        .await;
    assert!(err.contains("started machine"), "{err}");
}
