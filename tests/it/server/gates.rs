//! Every gate, through a real rmcp client over an in-process pipe.

use std::sync::{Arc, Mutex};

use fly_machines_mcp::tools::{ConfirmMode, PolicyOptions, Redactor, Selection, audit::AuditLog};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use super::fixtures::{CANARY_SECRET, CANARY_TOKEN, Runs, catalog};
use super::{gate_with, offline_client};

use crate::support::{Confirming, TestEnv, confirm_token_in, connect, connect_stateless};

fn call(name: &'static str, v: Value) -> CallToolRequestParams {
    crate::support::params(name, v)
}

use crate::support::text_of;

fn all_tools() -> PolicyOptions {
    PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        ..PolicyOptions::default()
    }
}

#[tokio::test]
async fn read_only_hides_and_refuses_every_non_read_tool() {
    let runs = Runs::default();
    let gate = TestEnv::builder()
        .catalog(catalog(runs.clone()))
        .policy(all_tools())
        .read_only()
        .offline_gate();
    let client = connect(gate, ()).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["echo", "leak", "big"]);
    for t in &tools {
        assert_eq!(t.annotations.as_ref().unwrap().read_only_hint, Some(true));
    }
    for (name, a) in [
        ("make_thing", json!({"app": "a"})),
        (
            "destroy_thing",
            json!({"app": "a", "ids": ["1"], "confirm": "a"}),
        ),
    ] {
        let r = client.call_tool(call(name, a)).await.unwrap();
        assert_eq!(r.is_error, Some(true), "{name}");
        assert!(text_of(&r).contains("--read-only"), "{}", text_of(&r));
    }
    assert_eq!(runs.get(), 0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn no_destroy_keeps_write_tools_only() {
    let opts = PolicyOptions {
        no_destroy: true,
        ..all_tools()
    };
    let gate = TestEnv::builder()
        .catalog(catalog(Runs::default()))
        .policy(opts)
        .offline_gate();
    let names: Vec<String> = gate
        .list_tools()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"make_thing".to_owned()));
    assert!(!names.contains(&"destroy_thing".to_owned()));
}

#[tokio::test]
async fn confirmation_by_argument_returns_the_plan_first() {
    let opts = PolicyOptions {
        confirm: ConfirmMode::Argument,
        ..all_tools()
    };
    let runs = Runs::default();
    let gate = TestEnv::builder()
        .catalog(catalog(runs.clone()))
        .policy(opts)
        .offline_gate();
    let client = connect(gate, ()).await;

    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1", "b2"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("thing a1 of dev-1") && t.contains("thing b2 of dev-1"),
        "{t}"
    );
    let token = confirm_token_in(&t);
    assert_eq!(runs.get(), 0);

    // The app name no longer confirms: a one-shot call with it destroys nothing and
    // shows the plan (with a fresh token) again.
    for wrong in ["dev-1", "dev-2", "cfm-1-00", &format!("{token}0")] {
        let r = client
            .call_tool(call(
                "destroy_thing",
                json!({"app": "dev-1", "ids": ["a1", "b2"], "confirm": wrong}),
            ))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        let t = text_of(&r);
        assert!(
            t.contains("confirmation required (") && t.contains("thing b2 of dev-1"),
            "{wrong}: {t}"
        );
        assert_eq!(runs.get(), 0, "{wrong}");
    }

    // The targets changed since the plan: its token no longer matches.
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1", "b2", "c3"], "confirm": token}),
        ))
        .await
        .unwrap();
    let t = text_of(&r);
    assert!(
        t.contains("not this plan's") && t.contains("thing c3 of dev-1"),
        "{t}"
    );
    assert_eq!(runs.get(), 0);

    // Plan → token → confirm destroys exactly the plan.
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1", "b2"], "confirm": token}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(
        r.structured_content,
        Some(json!({"destroyed": ["a1", "b2"]}))
    );
    assert_eq!(runs.get(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn confirmation_tokens_expire_and_replicas_share_them_only_with_the_same_key() {
    let with_key = |key: Option<&str>, ttl: u64| PolicyOptions {
        confirm: ConfirmMode::Argument,
        confirm_key: key.map(|k| secrecy::SecretString::from(k.to_owned())),
        confirm_ttl: Some(std::time::Duration::from_secs(ttl)),
        ..all_tools()
    };
    let runs = Runs::default();
    let replica = |opts: PolicyOptions| {
        TestEnv::builder()
            .catalog(catalog(runs.clone()))
            .policy(opts)
            .offline_gate()
    };
    let a = connect(replica(with_key(Some("shared-confirm-key"), 300)), ()).await;
    let b = connect(replica(with_key(Some("shared-confirm-key"), 300)), ()).await;
    let other = connect(replica(with_key(Some("another-key"), 300)), ()).await;
    let args = json!({"app": "dev-1", "ids": ["a1"]});
    let plan = text_of(
        &a.call_tool(call("destroy_thing", args.clone()))
            .await
            .unwrap(),
    );
    let token = confirm_token_in(&plan);
    let mut confirmed = args.clone();
    confirmed["confirm"] = json!(token);
    let r = other
        .call_tool(call("destroy_thing", confirmed.clone()))
        .await
        .unwrap();
    assert!(text_of(&r).contains("not this plan's"), "{}", text_of(&r));
    assert_eq!(runs.get(), 0);
    let r = b.call_tool(call("destroy_thing", confirmed)).await.unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(runs.get(), 1);

    // A token whose lifetime is over is refused with a new plan.
    let expired = connect(replica(with_key(Some("k"), 0)), ()).await;
    let token = confirm_token_in(&text_of(
        &expired
            .call_tool(call("destroy_thing", args.clone()))
            .await
            .unwrap(),
    ));
    let expiry: u64 = token.split('-').nth(1).unwrap().parse().unwrap();
    crate::support::eventually("the token to expire", || async move {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > expiry
    })
    .await;
    let mut late = args.clone();
    late["confirm"] = json!(token);
    let r = expired
        .call_tool(call("destroy_thing", late))
        .await
        .unwrap();
    assert!(text_of(&r).contains("has expired"), "{}", text_of(&r));
    assert_eq!(runs.get(), 1);
    for c in [a, b, other, expired] {
        c.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn confirmation_by_elicitation_shows_the_plan_and_respects_the_answer() {
    let runs = Runs::default();
    let gate = TestEnv::builder()
        .catalog(catalog(runs.clone()))
        .policy(all_tools())
        .offline_gate();

    let yes = Confirming::new(Some("dev-1"));
    let asked = yes.asked.clone();
    let client = connect(gate.clone(), yes).await;
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1"]}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(runs.get(), 1);
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].contains("thing a1 of dev-1"), "{}", asked[0]);
    client.cancel().await.unwrap();

    // A model-supplied confirm does not bypass the user when the client can ask.
    let client = connect(gate.clone(), Confirming::new(None)).await;
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1"], "confirm": "dev-1"}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    assert_eq!(runs.get(), 1);
    client.cancel().await.unwrap();

    let client = connect(gate, Confirming::new(Some("wrong-app"))).await;
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["a1"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(runs.get(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_era_confirms_through_an_input_required_round() {
    let runs = Runs::default();
    let gate = TestEnv::builder()
        .catalog(catalog(runs.clone()))
        .policy(all_tools())
        .offline_gate();
    let yes = Confirming::new(Some("dev-1"));
    let asked = yes.asked.clone();
    let client = connect_stateless(gate.clone(), yes);
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "destroy_thing"));
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["z9"]}),
        ))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert_eq!(runs.get(), 1);
    assert!(asked.lock().unwrap()[0].contains("thing z9 of dev-1"));

    let client = connect_stateless(gate, Confirming::new(None));
    let r = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": "dev-1", "ids": ["z9"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn allowlist_refusal_names_the_rule() {
    let opts = PolicyOptions {
        allow_app: vec!["dev-*".into()],
        ..all_tools()
    };
    let gate = TestEnv::builder()
        .catalog(catalog(Runs::default()))
        .policy(opts)
        .offline_gate();
    let client = connect(gate, ()).await;
    let r = client
        .call_tool(call("make_thing", json!({"app": "prod-db"})))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("--allow-app dev-*") && t.contains("prod-db"),
        "{t}"
    );
    let r = client
        .call_tool(call("make_thing", json!({"app": "dev-db"})))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_a_clear_error_naming_the_field_and_the_server_survives() {
    let gate = TestEnv::builder()
        .catalog(catalog(Runs::default()))
        .policy(all_tools())
        .offline_gate();
    let client = connect(gate, ()).await;

    let err = client
        .call_tool(call("no_such_tool", json!({})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no_such_tool"), "{err}");

    let cases = [
        (json!({"app": "a", "text": "x"}), "count"),
        (json!({"app": "a", "text": "x", "count": "three"}), "count"),
        (json!({"app": "a", "text": "x", "count": 99}), "count"),
        (
            json!({"app": "a", "text": "x".repeat(500), "count": 1}),
            "text",
        ),
        (json!({"app": 5, "text": "x", "count": 1}), "app"),
        (
            json!({"app": "a", "text": "x", "count": 1, "extra": true}),
            "extra",
        ),
    ];
    for (a, field) in cases {
        let r = client.call_tool(call("echo", a.clone())).await.unwrap();
        assert_eq!(r.is_error, Some(true), "{a}");
        let t = text_of(&r);
        assert!(t.contains(field), "{a} → {t}");
        assert!(t.starts_with("invalid argument"), "{a} → {t}");
    }
    // Still alive.
    let r = client
        .call_tool(call("echo", json!({"app": "a", "text": "hi", "count": 2})))
        .await
        .unwrap();
    assert_eq!(
        r.structured_content,
        Some(json!({"app": "a", "text": "hihi"}))
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn output_is_capped_with_a_marker_and_a_hint() {
    let opts = PolicyOptions {
        max_output: Some(4096),
        ..all_tools()
    };
    let gate = TestEnv::builder()
        .catalog(catalog(Runs::default()))
        .policy(opts)
        .offline_gate();
    let client = connect(gate, ()).await;
    let r = client
        .call_tool(call("big", json!({"app": "a"})))
        .await
        .unwrap();
    let t = text_of(&r);
    assert!(t.len() <= 4096, "{}", t.len());
    assert!(
        t.contains("[truncated: showing") && t.contains("ask for less"),
        "{t}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn canaries_never_appear_in_results_logs_or_audit() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let redactor = Redactor::new();
    redactor.register(&secrecy::SecretString::from(CANARY_TOKEN.to_owned()));
    let logs = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::fmt()
        .with_writer(redactor.buffer_writer(logs.clone()))
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let opts = PolicyOptions {
        confirm: ConfirmMode::Argument,
        ..all_tools()
    };
    let audit = AuditLog::open(&audit_path, redactor.clone()).unwrap();
    let gate = gate_with(
        catalog(Runs::default()),
        &opts,
        offline_client(),
        redactor,
        Some(audit),
    );
    let client = connect(gate, ()).await;

    let r = client
        .call_tool(call("leak", json!({"app": "a"})))
        .await
        .unwrap();
    let result = serde_json::to_string(&r).unwrap();
    // The secret registered during the call and arguments carrying the token.
    let r2 = client
        .call_tool(call(
            "make_thing",
            json!({"app": format!("x{CANARY_TOKEN}")}),
        ))
        .await
        .unwrap();
    let r3 = client
        .call_tool(call(
            "destroy_thing",
            json!({"app": CANARY_SECRET, "ids": [CANARY_TOKEN]}),
        ))
        .await
        .unwrap();
    client.cancel().await.unwrap();

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(
        logs.contains("leaking"),
        "the log line was captured: {logs}"
    );
    assert_eq!(audit.lines().count(), 2, "{audit}");
    for (what, text) in [
        ("result", result),
        ("result2", serde_json::to_string(&r2).unwrap()),
        ("result3", serde_json::to_string(&r3).unwrap()),
        ("logs", logs),
        ("audit", audit),
    ] {
        for canary in [CANARY_TOKEN, CANARY_SECRET, "fm2_abcdefghij", "MIIB"] {
            assert!(
                !text.contains(canary),
                "{canary} leaked into {what}: {text}"
            );
        }
    }
}
