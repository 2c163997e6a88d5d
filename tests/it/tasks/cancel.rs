//! Cancellation reaches every long tool: the caller's token (what
//! `notifications/cancelled` fires, and `tasks/cancel`) is the one the workflow sees.
//! First each of the five tools that once made a token of their own, called with the
//! caller's token already cancelled (nothing changes; the same call uncancelled then
//! does its work, so the setup was real); then a rolling update cancelled over MCP
//! mid-rollout, which stops at a machine boundary.

use fly_machines_mcp::tools::ConfirmMode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Recorder, audited, call_with, connect, gate, machines, ok, params};
use crate::update::Env;

fn cancelled() -> CancellationToken {
    let t = CancellationToken::new();
    t.cancel();
    t
}

#[tokio::test]
async fn update_machines_honours_the_callers_cancellation() {
    let env = Env::fast().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Never, &dir);
    let ids = env
        .app_with_machines("cx-update", "iad", "nginx:1", 3)
        .await;
    let args = json!({"app": "cx-update", "image": "nginx:2"});

    let r = ok(call_with(&gate, "update_machines", args.clone(), cancelled()).await);
    assert_eq!(
        (r["updated"].clone(), r["skipped"].clone()),
        (json!(0), json!(3)),
        "{r}"
    );
    for id in &ids {
        assert_eq!(env.machine("cx-update", id)["config"]["image"], "nginx:1");
        assert_eq!(env.version_count("cx-update", id).await, 1);
    }

    let r = ok(call_with(&gate, "update_machines", args, CancellationToken::new()).await);
    assert_eq!(r["updated"], 3, "{r}");
}

#[tokio::test]
async fn scale_machines_honours_the_callers_cancellation() {
    let env = Env::fast().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Never, &dir);
    env.app_with_machines("cx-scale", "iad", "nginx:1", 1).await;
    let ams = env.create_machine("cx-scale", "ams", "nginx:1").await;
    env.until_started("cx-scale", &ams).await;
    let args = json!({"app": "cx-scale", "regions": {"iad": 3, "ams": 0}});

    let r = ok(call_with(&gate, "scale_machines", args.clone(), cancelled()).await);
    assert_eq!(
        (r["created"].clone(), r["destroyed"].clone()),
        (json!(0), json!(0)),
        "{r}"
    );
    assert_eq!(machines(&env, "cx-scale").len(), 2);

    let r = ok(call_with(&gate, "scale_machines", args, CancellationToken::new()).await);
    assert_eq!(
        (r["created"].clone(), r["destroyed"].clone()),
        (json!(2), json!(1)),
        "{r}"
    );
}

#[tokio::test]
async fn set_secrets_honours_the_callers_cancellation() {
    let env = Env::fast().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Never, &dir);
    env.app_with_machines("cx-secrets", "iad", "nginx:1", 2)
        .await;
    let args = json!({"app": "cx-secrets", "set": {"API_KEY": "literal:cancel-canary-value"}, "rollout": true});

    let out = call_with(&gate, "set_secrets", args.clone(), cancelled()).await;
    match out {
        fly_machines_mcp::tools::Outcome::Failed { message, .. } => {
            assert!(message.contains("cancelled"), "{message}");
        }
        other => panic!("a cancelled set_secrets must not succeed: {other:?}"),
    }
    let state = env.state();
    let app = crate::update::app_of(&state, "cx-secrets");
    assert_eq!(app["secrets"], json!([]), "{app}");

    let r = ok(call_with(&gate, "set_secrets", args, CancellationToken::new()).await);
    assert_eq!(r["rollout"]["updated"], 2, "{r}");
}

#[tokio::test]
async fn pool_fill_honours_the_callers_cancellation() {
    let env = Env::fast().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Never, &dir);
    env.create_app("cx-pool").await;
    let args =
        json!({"app": "cx-pool", "pool": "p", "size": 3, "image": "nginx:1", "region": "iad"});

    let r = ok(call_with(&gate, "pool_fill", args.clone(), cancelled()).await);
    assert_eq!(r["created"], 0, "{r}");
    assert!(machines(&env, "cx-pool").is_empty());

    let r = ok(call_with(&gate, "pool_fill", args, CancellationToken::new()).await);
    assert_eq!(r["created"], 3, "{r}");
}

#[tokio::test]
async fn reap_expired_honours_the_callers_cancellation() {
    let env = Env::fast().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, _) = gate(&env, ConfirmMode::Never, &dir);
    env.create_app("cx-reap").await;
    let fill =
        json!({"app": "cx-reap", "pool": "p", "size": 2, "image": "nginx:1", "region": "iad"});
    ok(call_with(&gate, "pool_fill", fill, CancellationToken::new()).await);
    let claim = json!({"app": "cx-reap", "pool": "p", "user": "ana@example.com"});
    let env_out = ok(call_with(&gate, "claim_environment", claim, CancellationToken::new()).await);
    let id = env_out["machine_id"].as_str().unwrap().to_owned();
    // The claim expired an hour ago.
    let (status, body) = env
        .post(
            &format!("/v1/apps/cx-reap/machines/{id}/metadata/fly_mcp_pool_expires_at"),
            json!({"value": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let reap = json!({"app": "cx-reap", "pool": "p"});

    let r = ok(call_with(&gate, "reap_expired", reap.clone(), cancelled()).await);
    assert_eq!(r["destroyed"], 0, "{r}");
    assert_eq!(r["machines"][0]["outcome"], "not started", "{r}");
    assert_eq!(machines(&env, "cx-reap").len(), 2);

    let r = ok(call_with(&gate, "reap_expired", reap, CancellationToken::new()).await);
    assert_eq!(r["destroyed"], 1, "{r}");
}

#[tokio::test]
async fn update_machines_cancelled_over_mcp_mid_rollout_stops_at_a_machine_boundary() {
    // Stepped clock: nothing moves unless the test says so, so the rollout is mid-way
    // (the first machine done, the second being changed) when the client cancels.
    let env = Env::stepped().await;
    let dir = tempfile::tempdir().unwrap();
    let (gate, audit) = gate(&env, ConfirmMode::Argument, &dir);
    let ids = env
        .advance_until(500, env.app_with_machines("cx-roll", "iad", "nginx:1", 4))
        .await;
    let handler = Recorder::new(None);
    let client = connect(gate, handler.clone()).await;
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        params(
            "update_machines",
            json!({"app": "cx-roll", "image": "nginx:2", "start_timeout_secs": 60, "health_timeout_secs": 60}),
        ),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .unwrap();
    env.advance_until(200, handler.until(|m| m.ends_with(": done")))
        .await;
    handle
        .cancel(Some("the user gave up".into()))
        .await
        .unwrap();

    // The machine being changed is finished (never left half-way); no other starts.
    env.advance_until(
        200,
        crate::support::eventually("the cancelled update ended", || async {
            audited(&audit, "update_machines").is_some()
        }),
    )
    .await;
    let record = audited(&audit, "update_machines").unwrap();
    assert_eq!(record["outcome"], "ok", "{record}");
    let mut images = Vec::new();
    for id in &ids {
        let m = env.machine("cx-roll", id);
        assert!(m.get("lease").is_none(), "lease left: {m}");
        assert_eq!(m["state"], "started", "{m}");
        let image = m["config"]["image"].as_str().unwrap().to_owned();
        let versions = env.version_count("cx-roll", id).await;
        let expected = if image == "nginx:2" { 2 } else { 1 };
        assert_eq!(
            versions, expected,
            "{id}: {image} after {versions} versions"
        );
        images.push(image);
    }
    images.sort();
    assert_eq!(
        images,
        ["nginx:1", "nginx:1", "nginx:2", "nginx:2"],
        "two machines done before the cancel took effect, two never touched: {:?}",
        handler.messages()
    );
    let _ = client.cancel().await;
}
