use std::collections::BTreeMap;
use std::time::Duration;

use fly_machines_mcp::fly::{
    ExecRequest, LeaseNonce, MachineConfig, RestartOptions, StopOptions, UpdateMachine,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::{fixture, stub};

const M: &str = "/v1/apps/web/machines/m1";

fn nonce() -> LeaseNonce {
    LeaseNonce::new("nonce-1")
}

#[tokio::test]
async fn update_machine_sends_current_version_and_nonce() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(M))
        .and(header("fly-machine-lease-nonce", "nonce-1"))
        .and(body_json(json!({"config": {"image": "nginx:2", "schedule": "daily"}, "current_version": "01OLD"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("machine-created.json")))
        .expect(1)
        .mount(&server)
        .await;
    let mut config: MachineConfig =
        serde_json::from_value(json!({"image": "nginx:1", "schedule": "daily"})).unwrap();
    config.image = "nginx:2".into();
    let body = UpdateMachine {
        config,
        current_version: Some("01OLD".into()),
        ..UpdateMachine::default()
    };
    client
        .update_machine("web", "m1", &body, Some(&nonce()))
        .await
        .unwrap();
}

#[tokio::test]
async fn stale_current_version_is_a_conflict_not_retried() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(M))
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"error": "current_version mismatch"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let body = UpdateMachine {
        current_version: Some("01OLD".into()),
        ..UpdateMachine::default()
    };
    let err = client
        .update_machine("web", "m1", &body, None)
        .await
        .unwrap_err();
    assert!(err.is_conflict());
}

#[tokio::test]
async fn lifecycle_actions_hit_the_right_paths_with_the_nonce() {
    let (server, client) = stub().await;
    for action in [
        "start", "suspend", "cordon", "uncordon", "restart", "stop", "signal",
    ] {
        Mock::given(method("POST"))
            .and(path(format!("{M}/{action}")))
            .and(header("fly-machine-lease-nonce", "nonce-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"previous_state": "stopped", "migrated": false, "new_host": ""}),
            ))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path(M))
        .and(query_param("force", "true"))
        .and(header("fly-machine-lease-nonce", "nonce-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let n = nonce();
    let started = client.start_machine("web", "m1", Some(&n)).await.unwrap();
    assert_eq!(started.previous_state, "stopped");
    client.suspend_machine("web", "m1", Some(&n)).await.unwrap();
    client.cordon_machine("web", "m1", Some(&n)).await.unwrap();
    client
        .uncordon_machine("web", "m1", Some(&n))
        .await
        .unwrap();
    client
        .restart_machine(
            "web",
            "m1",
            &RestartOptions {
                signal: Some("SIGINT".into()),
                timeout: Some(Duration::from_secs(5)),
            },
            Some(&n),
        )
        .await
        .unwrap();
    client
        .stop_machine(
            "web",
            "m1",
            &StopOptions {
                signal: Some("SIGTERM".into()),
                timeout: Some(Duration::from_secs(10)),
            },
            Some(&n),
        )
        .await
        .unwrap();
    client
        .signal_machine("web", "m1", "SIGUSR1", Some(&n))
        .await
        .unwrap();
    client
        .destroy_machine("web", "m1", true, Some(&n))
        .await
        .unwrap();

    let reqs = server.received_requests().await.unwrap();
    let find = |suffix: &str| {
        reqs.iter()
            .find(|r| r.url.path().ends_with(suffix))
            .unwrap()
    };
    assert_eq!(
        find("/restart").url.query(),
        Some("signal=SIGINT&timeout=5s")
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&find("/stop").body).unwrap(),
        json!({"signal": "SIGTERM", "timeout": "10s"})
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&find("/signal").body).unwrap(),
        json!({"signal": "SIGUSR1"})
    );
    assert!(find("/start").body.is_empty(), "start takes no body");
}

#[tokio::test]
async fn bad_signal_is_rejected_before_calling() {
    let (server, client) = stub().await;
    let err = client
        .signal_machine("web", "m1", "SIGFOO", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid signal: must be one of SIGABRT"),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn events_versions_ps_and_exec() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path(format!("{M}/events")))
        .and(query_param("limit", "50"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("machine-exited.json")["events"].clone()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{M}/versions")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"version": "01A", "user_config": {"image": "x"}}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{M}/ps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"pid": 1, "command": "/init", "cpu": 0.5, "rss": 1024,
            "rtime": 3, "stime": 1, "directory": "/", "listen_sockets": [{"address": "0.0.0.0:8080", "proto": "tcp"}]}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{M}/exec")))
        .and(header_exists("authorization"))
        .and(body_json(json!({"command": ["uname", "-a"], "timeout": 5})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"exit_code": 0, "exit_signal": 0, "stdout": "Linux\n", "stderr": ""}),
        ))
        .mount(&server)
        .await;
    let events = client.machine_events("web", "m1", 500).await.unwrap();
    assert!(events[0].exit_event.as_ref().unwrap().oom_killed);
    let versions = client.machine_versions("web", "m1").await.unwrap();
    assert_eq!(versions[0].user_config.as_ref().unwrap().image, "x");
    let ps = client.machine_ps("web", "m1").await.unwrap();
    assert_eq!(ps[0].listen_sockets[0].address, "0.0.0.0:8080");
    let out = client
        .exec(
            "web",
            "m1",
            &ExecRequest {
                command: vec!["uname".into(), "-a".into()],
                timeout: Duration::from_secs(5),
                ..ExecRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "Linux\n");
}

#[tokio::test]
async fn metadata_get_and_patch() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path(format!("{M}/metadata")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"owner": "alice"})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{M}/metadata")))
        .and(body_json(
            json!({"metadata": {"owner": "bob", "stale": null}, "machine_version": "01V"}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/v1/apps/web/machines/m2/metadata"))
        .respond_with(
            ResponseTemplate::new(412).set_body_json(json!({"error": "precondition failed"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client.get_metadata("web", "m1").await.unwrap()["owner"],
        "alice"
    );
    let mut changes = BTreeMap::new();
    changes.insert("owner".to_owned(), Some("bob".to_owned()));
    changes.insert("stale".to_owned(), None);
    client
        .patch_metadata("web", "m1", &changes, Some("01V"), None)
        .await
        .unwrap();
    let err = client
        .patch_metadata("web", "m2", &changes, Some("01V"), None)
        .await
        .unwrap_err();
    assert!(err.is_conflict() && err.status() == Some(412));
}

/// Issue 18 item 12: the spec names the destroy flag `force`, fly-go sends `kill`
/// (`flaps/flaps_machines.go`, `Destroy`): a forced destroy sends both.
#[tokio::test]
async fn item12_forced_destroy_sends_force_and_kill() {
    let (server, client) = stub().await;
    Mock::given(method("DELETE"))
        .and(path(M))
        .and(query_param("force", "true"))
        .and(query_param("kill", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    client
        .destroy_machine("web", "m1", true, None)
        .await
        .unwrap();
}

/// Issue 18 item 14: stop and restart take only the seven signals the spec's
/// `StopRequest`/restart `signal` enum lists; `/signal` takes all fourteen.
#[tokio::test]
async fn item14_stop_and_restart_refuse_signals_outside_the_spec() {
    let (server, client) = stub().await;
    let stop = client
        .stop_machine(
            "web",
            "m1",
            &StopOptions {
                signal: Some("SIGSEGV".into()),
                timeout: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(stop.to_string().contains("SIGHUP"), "{stop}");
    assert!(!stop.to_string().contains("SIGSEGV"), "{stop}");
    let restart = client
        .restart_machine(
            "web",
            "m1",
            &RestartOptions {
                signal: Some("SIGABRT".into()),
                timeout: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(restart.to_string().contains("invalid signal"), "{restart}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Issue 18 item 13: the spec lists the exec answer under both
/// `application/octet-stream` and `application/json` with the same `flydv1.ExecResponse`
/// schema, and fly-go (`flaps/flaps_machines.go`, `Exec`) decodes JSON whatever the
/// content type: an octet-stream answer holding that JSON is decoded, exit code included.
#[tokio::test]
async fn item13_exec_answer_under_octet_stream_is_decoded_as_json() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(format!("{M}/exec")))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                br#"{"exit_code": 3, "exit_signal": 0, "stdout": "partial\n", "stderr": "boom\n"}"#
                    .to_vec(),
                "application/octet-stream",
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m2/exec"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            b"raw bytes, not JSON\n".to_vec(),
            "application/octet-stream",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let req = ExecRequest {
        command: vec!["false".into()],
        timeout: Duration::from_secs(5),
        ..ExecRequest::default()
    };
    let out = client.exec("web", "m1", &req).await.unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
        (3, "partial\n", "boom\n")
    );
    // Bytes that are not the JSON document stay stdout (older flyd answers).
    let raw = client.exec("web", "m2", &req).await.unwrap();
    assert_eq!(raw.stdout, "raw bytes, not JSON\n");
}
