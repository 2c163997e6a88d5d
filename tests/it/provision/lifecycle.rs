//! machine_action on one and on all machines, and cancellation of a provision at the
//! workflow level and over MCP (progress notifications, then `notifications/cancelled`:
//! rolled back, nothing left).

use std::time::Duration;

use fly_machines_mcp::{
    sim::SimConfig,
    tools::ConfirmMode,
    workflows::{
        Error,
        provision::{EnvSpec, GuestSpec, provision_environment},
        sched::{CancellationToken, Control, Progress},
    },
};
use serde_json::json;

use super::{
    Confirming, app_state, assert_output_schema, call, client_for, connect, env_args, gate,
    start_sim, text_of,
};

#[tokio::test]
async fn stop_suspend_start_restart_and_cordon_report_per_machine() {
    let sim = start_sim(SimConfig::for_tests()).await;
    let gate = gate(&sim, ConfirmMode::Argument);
    let client = connect(gate.clone(), Confirming::default()).await;
    for name in ["one", "two"] {
        let mut args = env_args("dev-hal");
        args["machine_name"] = json!(name);
        args["volume"] = json!({"name": format!("data_{name}")});
        let r = client
            .call_tool(call("provision_environment", args))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    }
    let states = |sim: &fly_machines_mcp::sim::SimHandle| -> Vec<String> {
        app_state(sim, "dev-hal").unwrap()["machines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["state"].as_str().unwrap().to_owned())
            .collect()
    };

    let r = client
        .call_tool(call(
            "machine_action",
            json!({"app": "dev-hal", "action": "stop"}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_output_schema(&gate, "machine_action", &r);
    let s = r.structured_content.unwrap();
    assert_eq!(s["done"], 2);
    assert!(
        s["machines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["after"] == "stopped")
    );
    assert_eq!(states(&sim), ["stopped", "stopped"]);

    // Stopping again changes nothing.
    let r = client
        .call_tool(call(
            "machine_action",
            json!({"app": "dev-hal", "action": "stop"}),
        ))
        .await
        .unwrap();
    let s = r.structured_content.unwrap();
    assert_eq!(
        (s["done"].clone(), s["unchanged"].clone()),
        (json!(0), json!(2))
    );

    // One machine: start, then suspend, then restart.
    let id = app_state(&sim, "dev-hal").unwrap()["machines"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (action, want) in [
        ("start", "started"),
        ("suspend", "suspended"),
        ("start", "started"),
        ("restart", "started"),
    ] {
        let r = client
            .call_tool(call(
                "machine_action",
                json!({"app": "dev-hal", "action": action, "machine_ids": [id]}),
            ))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{action}: {}", text_of(&r));
        let s = r.structured_content.unwrap();
        assert_eq!(s["machines"][0]["after"], want, "{action}: {s}");
        assert_eq!(s["machines"].as_array().unwrap().len(), 1);
    }

    let r = client
        .call_tool(call(
            "machine_action",
            json!({"app": "dev-hal", "action": "cordon", "machine_ids": [id]}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(r.structured_content.unwrap()["done"], 1);

    // An unknown machine: a clear error naming it.
    let r = client
        .call_tool(call(
            "machine_action",
            json!({"app": "dev-hal", "action": "start", "machine_ids": ["0123456789abcd"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("0123456789abcd"), "{}", text_of(&r));
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn cancelling_during_the_wait_rolls_back() {
    // Stepped clock: the machine never starts on its own, so the wait is where the
    // cancellation arrives.
    let sim = start_sim(SimConfig::stepped()).await;
    let client = client_for(&sim);
    let spec = EnvSpec {
        app: "dev-ivan".into(),
        org: "personal".into(),
        region: "iad".into(),
        image: "nginx:latest".into(),
        cmd: None,
        guest: GuestSpec::Default,
        volume: None,
        services: Vec::new(),
        checks: Default::default(),
        env: Default::default(),
        user: None,
        expires_at: None,
        machine_name: "main".into(),
        public_ips: true,
        idempotency_key: None,
        wait_timeout: Duration::from_secs(30),
        secrets: Default::default(),
    };
    let (progress, mut updates) = Progress::channel();
    let cancel = CancellationToken::new();
    let ctl = Control::new(progress, cancel.clone());
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(u) = updates.recv().await {
            if u.message.starts_with("waiting for machine") {
                cancel.cancel();
            }
            seen.push(u.message);
        }
        seen
    });
    let reveal = super::reveal_new_app(&sim);
    let failure = provision_environment(&client, &spec, true, &ctl)
        .await
        .unwrap_err();
    reveal.await.unwrap();
    drop(ctl);
    assert!(
        matches!(failure.error, Error::Cancelled { .. }),
        "{:?}",
        failure.error
    );
    assert_eq!(failure.step, "start");
    assert!(failure.left.is_empty(), "{:?}", failure.left);
    assert_eq!(failure.rolled_back.len(), failure.created.len());
    assert!(app_state(&sim, "dev-ivan").is_none());
    let seen = watcher.await.unwrap();
    assert!(seen.iter().any(|m| m.contains("rolling back")), "{seen:?}");
    sim.shutdown().await;
}

/// A client that records progress messages and cancels its request when the
/// provision starts waiting for the machine.
#[derive(Clone, Default)]
struct Watching {
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    waiting: std::sync::Arc<tokio::sync::Notify>,
}

impl rmcp::ClientHandler for Watching {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let message = params.message.unwrap_or_default();
        if message.starts_with("waiting for machine") {
            self.waiting.notify_one();
        }
        self.messages.lock().unwrap().push(message);
    }
}

#[tokio::test]
async fn over_mcp_progress_arrives_and_a_cancelled_call_rolls_back() {
    // Stepped clock: the machine never starts on its own, so the call is still waiting
    // when the client cancels it.
    let sim = start_sim(SimConfig::stepped()).await;
    let gate = gate(&sim, ConfirmMode::Argument);
    let handler = Watching::default();
    let client = connect(gate.clone(), handler.clone()).await;
    let mut args = env_args("dev-judy");
    args["wait_timeout_s"] = json!(60);
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        call("provision_environment", args),
    ));
    let reveal = super::reveal_new_app(&sim);
    let handle = client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    reveal.await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), handler.waiting.notified())
        .await
        .expect("a progress notification saying the call waits for the machine");
    assert!(
        app_state(&sim, "dev-judy").is_some(),
        "the app exists while the call waits"
    );
    handle.cancel(Some("user gave up".into())).await.unwrap();

    // The server rolls back what the call created; the app disappears.
    crate::support::eventually("the cancelled provision rolled back", || async {
        app_state(&sim, "dev-judy").is_none()
    })
    .await;
    let seen = handler.messages.lock().unwrap().clone();
    assert!(seen.len() >= 3, "progress along the way: {seen:?}");
    // The connection is still usable after a cancelled call.
    let r = client
        .call_tool(call("app_status", json!({"app": "dev-judy"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

/// Issue 18 item 17: the transient answers a call waits out are said in its progress
/// notifications (and the call still succeeds).
#[tokio::test]
async fn item17_waited_out_faults_are_said_in_progress() {
    let sim = start_sim(SimConfig::for_tests()).await;
    let gate = gate(&sim, ConfirmMode::Argument);
    let handler = Watching::default();
    let client = connect(gate.clone(), handler.clone()).await;
    let r = client
        .call_tool(call("provision_environment", env_args("dev-noisy")))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    sim.set_faults("5xx=0.5".parse().unwrap());
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        call("app_status", json!({"app": "dev-noisy"})),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    let r = handle.await_response().await.unwrap();
    sim.set_faults(Default::default());
    let rmcp::model::ServerResult::CallToolResult(r) = r else {
        panic!("not a tool result: {r:?}");
    };
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    crate::support::eventually("a progress note about a waited-out 5xx", || async {
        handler
            .messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("Fly API answered 5") && m.contains("trying again"))
    })
    .await;
    client.cancel().await.unwrap();
    sim.shutdown().await;
}
