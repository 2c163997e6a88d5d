use std::time::Duration;

use fly_machines_mcp::fly::{
    AutostopMode, CreateMachine, GuestConfig, MachineConfig, MachineFilter, MachineState,
    WaitParams, WaitTarget,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use super::{fixture, stub};

#[tokio::test]
async fn list_machines_sends_filters_and_follows_cursor_header() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .and(query_param("state", "started,stopped"))
        .and(query_param("region", "iad"))
        .and(query_param("summary", "true"))
        .and(query_param("include_leases", "true"))
        .and(query_param("metadata.owner", "alice"))
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("fly-next-cursor", "page2")
                .set_body_json(json!([fixture("machine-created.json")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .and(query_param("cursor", "page2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([fixture("machine-exited.json")])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let filter = MachineFilter {
        state: vec![MachineState::Started, MachineState::Stopped],
        region: Some("iad".into()),
        summary: true,
        metadata: vec![("owner".into(), "alice".into())],
        include_leases: true,
    };
    let machines = client.list_machines("web", &filter).await.unwrap();
    assert_eq!(machines.len(), 2);
}

#[tokio::test]
async fn machine_fixtures_decode_liberally() {
    let m: fly_machines_mcp::fly::Machine =
        serde_json::from_value(fixture("machine-created.json")).unwrap();
    assert_eq!(m.state, MachineState::Created);
    assert_eq!(
        m.version, "01J9ZK3T5W6X7Y8Z9A0B1C2D3E",
        "instance_id is read as version"
    );
    let cfg = m.config.as_ref().unwrap();
    assert_eq!(cfg.guest.as_ref().unwrap().memory_mb, 256);
    assert_eq!(
        cfg.extra.get("schedule"),
        Some(&json!("hourly")),
        "unmodelled fields are kept"
    );
    assert_eq!(cfg.extra.get("dns"), Some(&json!({})));

    let m: fly_machines_mcp::fly::Machine =
        serde_json::from_value(fixture("machine-exited.json")).unwrap();
    let cfg = m.config.as_ref().unwrap();
    assert!(cfg.metadata.is_empty(), "null metadata is an empty map");
    assert_eq!(
        cfg.services[0].autostop,
        Some(AutostopMode::Stop),
        "bool autostop accepted"
    );
    assert_eq!(
        cfg.init.as_ref().unwrap().extra.get("tty"),
        Some(&json!(false))
    );
    let exit = m.events[0].exit_event.as_ref().unwrap();
    assert!(exit.oom_killed);
    assert_eq!((exit.exit_code, exit.signal), (137, 9));
    assert_eq!(m.events[0].restart_count, Some(2));
    assert_eq!(m.checks[0].output, "context deadline exceeded");

    // Round trip: what we serialize decodes to the same machine.
    let again: fly_machines_mcp::fly::Machine =
        serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    assert_eq!(again, m);
}

#[tokio::test]
async fn unknown_state_is_kept_not_rejected() {
    let m: fly_machines_mcp::fly::Machine =
        serde_json::from_value(json!({"id": "1", "state": "hibernating", "version": "v"})).unwrap();
    assert_eq!(m.state, MachineState::Unknown("hibernating".into()));
    assert_eq!(m.state.to_string(), "hibernating");
}

#[tokio::test]
async fn get_machine_and_decode_error_names_the_path() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/3d8d9e1f2a4b6c"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("machine-created.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/bad"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "bad", "config": {"guest": {"cpus": "two"}}})),
        )
        .mount(&server)
        .await;
    let m = client.get_machine("web", "3d8d9e1f2a4b6c").await.unwrap();
    assert_eq!(m.name, "quiet-river-2048");
    let err = client.get_machine("web", "bad").await.unwrap_err();
    match &err {
        fly_machines_mcp::fly::Error::Decode { path, .. } => assert_eq!(path, "config.guest.cpus"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_machine_sends_strict_body() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "config": {"image": "nginx:1.27", "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
                       "metadata": {"owner": "alice"}},
            "region": "iad", "skip_launch": true, "lease_ttl": 30, "min_secrets_version": 4
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json({
            let mut m = fixture("machine-created.json");
            m["nonce"] = json!("n-123");
            m
        }))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = MachineConfig {
        image: "nginx:1.27".into(),
        guest: Some(GuestConfig {
            cpu_kind: "shared".into(),
            cpus: 1,
            memory_mb: 256,
            ..GuestConfig::default()
        }),
        ..MachineConfig::default()
    };
    config.metadata.insert("owner".into(), "alice".into());
    let m = client
        .create_machine(
            "web",
            &CreateMachine {
                config,
                region: Some("iad".into()),
                skip_launch: Some(true),
                lease_ttl: Some(30),
                min_secrets_version: Some(4),
                ..CreateMachine::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.nonce.as_deref(), Some("n-123"));
}

#[tokio::test]
async fn wait_once_sends_query_and_parses_outcome() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1/wait"))
        .and(query_param("state", "stopped,suspended"))
        .and(query_param("timeout", "30"))
        .and(query_param("version", "01VER"))
        .and(query_param("from_event_id", "01EVT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ok": true, "state": "stopped", "version": "01VER", "event_id": "01EVT2"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let out = client
        .wait_once(
            "web",
            "m1",
            &WaitParams {
                states: vec![WaitTarget::Stopped, WaitTarget::Suspended],
                timeout: Duration::from_secs(30),
                version: Some("01VER".into()),
                from_event_id: Some("01EVT".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(out.state, Some(MachineState::Stopped));
    assert_eq!(out.event_id.as_deref(), Some("01EVT2"));
}

#[tokio::test]
async fn wait_for_state_rides_out_404_and_408_then_reads_state() {
    let (server, client) = stub().await;
    // First a 404 (just created), then a 408 (not yet), then an old-style {ok:true}.
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m2/wait"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"error": "machine not found"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m2/wait"))
        .respond_with(
            ResponseTemplate::new(408).set_body_json(json!({"error": "deadline_exceeded"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m2/wait"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "m2", "state": "started"})),
        )
        .mount(&server)
        .await;
    let out = client
        .wait_for_state(
            "web",
            "m2",
            &[WaitTarget::Started],
            None,
            None,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(out.state, Some(MachineState::Started));
}

#[tokio::test]
async fn wait_for_state_stops_on_400_and_times_out_under_deadline() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/bad/wait"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "machine failed to reach desired state"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/slow/wait"))
        .respond_with(
            ResponseTemplate::new(408).set_body_json(json!({"error": "deadline_exceeded"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/slow"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "slow", "state": "starting"})),
        )
        .mount(&server)
        .await;
    let err = client
        .wait_for_state(
            "web",
            "bad",
            &[WaitTarget::Started],
            None,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    let err = client
        .wait_for_state(
            "web",
            "slow",
            &[WaitTarget::Started],
            None,
            None,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("did not reach started") && text.contains("last state: starting"),
        "{text}"
    );
}
