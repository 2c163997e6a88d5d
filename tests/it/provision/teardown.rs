//! teardown_environment: confirmed (elicitation and `confirm` argument), and
//! nothing of the app is left afterwards.

use fly_machines_mcp::{sim::SimConfig, tools::ConfirmMode};
use serde_json::json;

use super::{
    Confirming, app_state, assert_output_schema, call, connect, env_args, gate, provision_env,
    start_sim, text_of,
};

#[tokio::test]
async fn teardown_by_confirm_argument_removes_everything() {
    let env = provision_env().start().await;
    let (sim, gate) = (&env.sim, &env.gate);
    let r = env
        .call("provision_environment", env_args("dev-frank"))
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let s = r.structured_content.unwrap();
    let machine = s["machine_id"].as_str().unwrap().to_owned();
    let volume = s["volume_id"].as_str().unwrap().to_owned();

    // Without confirmation: the plan lists every resource; nothing is destroyed.
    let r = env
        .call("teardown_environment", json!({"app": "dev-frank"}))
        .await;
    assert_eq!(r.is_error, Some(true));
    let plan = text_of(&r);
    for needle in [machine.as_str(), volume.as_str(), "app dev-frank"] {
        assert!(plan.contains(needle), "missing {needle}: {plan}");
    }
    let stale = crate::support::confirm_token_in(&plan);
    let app = app_state(sim, "dev-frank").expect("nothing destroyed");
    assert_eq!(app["machines"].as_array().unwrap().len(), 1);

    // A wrong confirmation is refused too, and so is the app name, which an injected
    // instruction could hand the agent as a one-shot destructive call.
    for wrong in ["dev-other", "dev-frank"] {
        let r = env
            .call(
                "teardown_environment",
                json!({"app": "dev-frank", "confirm": wrong}),
            )
            .await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text_of(&r).contains("confirmation required"),
            "{}",
            text_of(&r)
        );
        assert_eq!(
            app_state(sim, "dev-frank").unwrap()["machines"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    // A machine appears after the plan was shown: the plan's token no longer matches,
    // and the new plan names the new machine.
    let (st, added) = crate::support::post_json(
        &sim.base_url(),
        super::TOKEN,
        "/v1/apps/dev-frank/machines",
        json!({"region": "iad", "config": {"image": "nginx:1"}}),
    )
    .await;
    assert_eq!(st, 200, "{added}");
    let added = added["id"].as_str().unwrap().to_owned();
    crate::support::eventually("the new machine to start", || {
        let state = app_state(sim, "dev-frank");
        let added = added.clone();
        async move {
            state.is_some_and(|a| {
                a["machines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["id"] == added.as_str() && m["state"] == "started")
            })
        }
    })
    .await;
    let r = env
        .call(
            "teardown_environment",
            json!({"app": "dev-frank", "confirm": stale}),
        )
        .await;
    let plan = text_of(&r);
    assert!(
        plan.contains("not this plan's") && plan.contains(&added),
        "{plan}"
    );
    assert_eq!(
        app_state(sim, "dev-frank").unwrap()["machines"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Confirmed with the new plan's token: everything removed and reported.
    let r = env
        .call(
            "teardown_environment",
            json!({"app": "dev-frank", "confirm": crate::support::confirm_token_in(&plan)}),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_output_schema(gate, "teardown_environment", &r);
    let s = r.structured_content.unwrap();
    assert_eq!(s["app_deleted"], true);
    let removed: Vec<(String, String)> = s["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        removed.contains(&("machine".into(), machine.clone()))
            && removed.contains(&("machine".into(), added.clone())),
        "{removed:?}"
    );
    assert!(
        removed.contains(&("volume".into(), volume.clone())),
        "{removed:?}"
    );
    assert_eq!(
        removed.iter().filter(|(k, _)| k == "ip").count(),
        2,
        "{removed:?}"
    );
    assert!(
        removed.contains(&("app".into(), "dev-frank".into())),
        "{removed:?}"
    );
    assert!(app_state(sim, "dev-frank").is_none());

    // Again: the app is gone; a clear error, nothing else happens.
    let r = env
        .call(
            "teardown_environment",
            json!({"app": "dev-frank", "confirm": "dev-frank"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("not found"), "{}", text_of(&r));
    env.shutdown().await;
}

#[tokio::test]
async fn teardown_by_elicitation_declined_then_accepted() {
    let sim = start_sim(SimConfig::for_tests()).await;
    let gate = gate(&sim, ConfirmMode::Elicit);

    let declining = Confirming::default();
    let asked = declining.asked.clone();
    let client = connect(gate.clone(), declining).await;
    let r = client
        .call_tool(call("provision_environment", env_args("dev-gina")))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let r = client
        .call_tool(call("teardown_environment", json!({"app": "dev-gina"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("nothing was destroyed"),
        "{}",
        text_of(&r)
    );
    let question = asked.lock().unwrap().join("\n");
    assert!(
        question.contains("app dev-gina") && question.contains("volume"),
        "{question}"
    );
    assert_eq!(
        app_state(&sim, "dev-gina").unwrap()["machines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    client.cancel().await.unwrap();

    let accepting = Confirming {
        answer: Some("dev-gina".into()),
        ..Confirming::default()
    };
    let client = connect(gate.clone(), accepting).await;
    let r = client
        .call_tool(call("teardown_environment", json!({"app": "dev-gina"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(app_state(&sim, "dev-gina").is_none());
    client.cancel().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_confirmation_token_is_bound_to_the_machines_versions() {
    let env = provision_env().start().await;
    let sim = &env.sim;
    let r = env
        .call("provision_environment", env_args("dev-vera"))
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let machine = r.structured_content.unwrap()["machine_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = json!({"app": "dev-vera", "machine_ids": [machine], "force": true});
    let r = env.call("destroy_machines", args.clone()).await;
    let stale = crate::support::with_confirm(&args, &text_of(&r));

    // The machine gets a new version (same id, same state) after the plan was shown.
    let version = |sim: &fly_machines_mcp::sim::SimHandle| {
        app_state(sim, "dev-vera").unwrap()["machines"][0]["version"].clone()
    };
    let before = version(sim);
    let (st, body) = crate::support::post_json(
        &sim.base_url(),
        super::TOKEN,
        &format!("/v1/apps/dev-vera/machines/{machine}"),
        json!({"config": {"image": "nginx:1.28"}}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    crate::support::eventually("the update to settle", || {
        let m = app_state(sim, "dev-vera").unwrap()["machines"][0].clone();
        async move { m["state"] == "started" }
    })
    .await;
    assert_ne!(version(sim), before);

    let r = env.call("destroy_machines", stale).await;
    let plan = text_of(&r);
    assert!(plan.contains("not this plan's"), "{plan}");
    assert_eq!(
        app_state(sim, "dev-vera").unwrap()["machines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = env
        .call(
            "destroy_machines",
            crate::support::with_confirm(&args, &plan),
        )
        .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
}
