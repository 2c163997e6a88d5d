//! Issue 18 (part B): simulator rules that hold the client to what Fly and its
//! production clients (superfly/fly-go `flaps/`, superfly/flyctl) do — signals, exec
//! answers, log cursors, capacity errors, unreachable hosts and effects answered with
//! a failure. Plain HTTP, stepped clock.

use super::{Sim, basic_machine};
use serde_json::{Value, json};

async fn started(sim: &Sim, app: &str) -> String {
    sim.create_app(app).await;
    let m = sim.create_machine(app, basic_machine()).await;
    sim.advance_ms(3500);
    m["id"].as_str().unwrap().to_owned()
}

/// Item 14: fly-go's `Kill` (`flaps/flaps_machines.go`) posts `{"signal": 9}`, an
/// integer; the spec's `SignalRequest` names fourteen signals. Both forms are taken,
/// anything else is a 400.
#[tokio::test]
async fn item14_signal_takes_an_integer_as_fly_go_sends_it() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "sig").await;
    let path = format!("/v1/apps/sig/machines/{id}/signal");
    let (st, body) = sim.post(&path, json!({"signal": 9})).await;
    assert_eq!(st, 200, "{body}");
    sim.advance_ms(100);
    let (_, events) = sim.get(&format!("/v1/apps/sig/machines/{id}/events")).await;
    let exit = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exit")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(exit["request"]["exit_event"]["signal"], 9, "{events}");
    for bad in [
        json!({"signal": 99}),
        json!({"signal": "SIGFOO"}),
        json!({}),
    ] {
        let (st, _) = sim.post(&path, bad.clone()).await;
        assert_eq!(st, 400, "{bad}");
    }
}

/// Item 14: stop and restart take only the seven signals of the spec's `StopRequest`
/// and restart `signal` enums; SIGSEGV is a signal-endpoint signal only.
#[tokio::test]
async fn item14_stop_and_restart_take_only_the_seven_stop_signals() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "stopsig").await;
    let base = format!("/v1/apps/stopsig/machines/{id}");
    let (st, body) = sim
        .post(&format!("{base}/stop"), json!({"signal": "SIGSEGV"}))
        .await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = sim
        .post(&format!("{base}/restart?signal=SIGABRT"), json!({}))
        .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(sim.state("stopsig", &id).await, "started");
    let (st, body) = sim
        .post(&format!("{base}/restart?signal=SIGUSR1"), json!({}))
        .await;
    assert_eq!(st, 200, "{body}");
}

/// Item 13: the spec lists the exec answer under `application/octet-stream` first;
/// the simulator answers with that type (the body is the `flydv1.ExecResponse` JSON).
#[tokio::test]
async fn item13_exec_answers_under_octet_stream() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "ex").await;
    let resp = sim
        .http
        .post(sim.url(&format!("/v1/apps/ex/machines/{id}/exec")))
        .header("Authorization", super::TOKEN)
        .json(&json!({"command": ["false"], "timeout": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["exit_code"], 1);
}

/// Item 6: the logs API's `next_token` carries nanoseconds no timestamp shows (they are
/// rounded to the millisecond, and lines of one millisecond each get their own token),
/// and an empty page answers an empty token — flyctl keeps the one it had
/// (`logs/polling.go`), so a client paging by timestamps repeats lines here.
#[tokio::test]
async fn item6_next_token_is_the_servers_and_empty_pages_give_none() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "logs").await;
    // Two lines in one millisecond: a stop logs "Sending signal", the exit follows.
    let (st, _) = sim
        .post(&format!("/v1/apps/logs/machines/{id}/stop"), json!({}))
        .await;
    assert_eq!(st, 200);
    sim.advance_ms(10_000);
    let (st, first) = sim.get("/api/v1/apps/logs/logs").await;
    assert_eq!(st, 200);
    let data = first["data"].as_array().unwrap();
    assert!(data.len() >= 2, "{first}");
    let token: u128 = first["meta"]["next_token"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let last = data.last().unwrap();
    let ts: jiff::Timestamp = last["attributes"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let from_ts = u128::try_from(ts.as_nanosecond()).unwrap();
    assert!(
        token > from_ts,
        "the token ({token}) is not the timestamp ({from_ts})"
    );
    // A cursor made from the last timestamp returns that line again.
    let (_, again) = sim
        .get(&format!("/api/v1/apps/logs/logs?next_token={from_ts}"))
        .await;
    assert_eq!(again["data"][0]["id"], last["id"]);
    // The server's token: nothing after it, and no token on the empty page.
    let (_, empty) = sim
        .get(&format!("/api/v1/apps/logs/logs?next_token={token}"))
        .await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["meta"]["next_token"], "");
}

/// Item 10: while the host is unreachable the machine shows only `incomplete_config`
/// (API-NOTES §3: filled only when `host_status != ok`), and updates answer 503.
#[tokio::test]
async fn item10_unreachable_host_shows_only_an_incomplete_config() {
    let sim = Sim::stepped().await;
    let id = started(&sim, "host").await;
    let (st, _) = sim
        .post(
            &format!("/__sim/machines/{id}/host"),
            json!({"status": "unreachable"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, m) = sim.get(&format!("/v1/apps/host/machines/{id}")).await;
    assert_eq!(m["host_status"], "unreachable");
    assert!(m.get("config").is_none(), "{m}");
    assert_eq!(m["incomplete_config"]["image"], "nginx:latest", "{m}");
    let (st, e) = sim
        .post(
            &format!("/v1/apps/host/machines/{id}"),
            json!({"config": m["incomplete_config"].clone()}),
        )
        .await;
    assert_eq!(st, 503, "{e}");
}
