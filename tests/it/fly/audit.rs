//! The fidelity audit (`openapi/AUDIT.md`): every Fly call the client makes has a row
//! naming the production-client source and an existing test; and the tests of the
//! differences the audit closed.

use std::collections::BTreeSet;
use std::path::Path;

use fly_machines_mcp::fly::{CreateMachine, IDEMPOTENCY_KEY_METADATA, LeaseNonce, MachineConfig};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The operation names of every call in `src/fly/` (test modules left out): the literal
/// first argument of a `Req` constructor (`Req::new`, `Req::machines`, `Req::machine`, …:
/// each takes the operation name first), of `simple_action` and of `graphql::<…>`.
fn calls_in_the_client() -> BTreeSet<String> {
    let literal =
        regex::Regex::new(r#"(?:Req::[a-z_]+|simple_action|graphql::<[^>]+>)\(\s*"([a-z0-9_]+)""#)
            .unwrap();
    let any_req = regex::Regex::new(r"Req::[a-z_]+\(\s*([^\s,]+)").unwrap();
    let mut ops = BTreeSet::new();
    let dir = Path::new(ROOT).join("src/fly");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for c in literal.captures_iter(code) {
            ops.insert(c[1].to_owned());
        }
        // A request built from a non-literal name must be one of the generic builders
        // whose callers pass literals (caught above); anything else would hide a call
        // from this list.
        for c in any_req.captures_iter(code) {
            let first = &c[1];
            assert!(
                first.starts_with('"') || first == "op",
                "{}: a Req built with `{first}`: give it a literal operation name",
                file.display()
            );
        }
    }
    ops
}

struct Row {
    call: String,
    source: String,
    test: String,
}

fn audit_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("openapi/AUDIT.md")).unwrap();
    let call = regex::Regex::new(r"^`([a-z0-9_]+)`$").unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 6, "a row of six cells: {l}");
            let name = call
                .captures(cells[0])
                .unwrap_or_else(|| panic!("first cell is a `call`: {l}"))[1]
                .to_owned();
            Row {
                call: name,
                source: cells[3].to_owned(),
                test: cells[4].to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_audit_table_covers_every_fly_call_with_a_source_and_a_test() {
    let calls = calls_in_the_client();
    assert!(
        calls.len() > 40,
        "the extraction found the calls: {calls:?}"
    );
    let rows = audit_rows();
    let mut seen = BTreeSet::new();
    for row in &rows {
        assert!(seen.insert(row.call.clone()), "two rows for {}", row.call);
        assert!(
            calls.contains(&row.call),
            "openapi/AUDIT.md has a row for `{}`, which the client no longer makes",
            row.call
        );
        assert!(
            row.source.contains(".go"),
            "row `{}` names no fly-go/flyctl source file",
            row.call
        );
        let (file, name) = row
            .test
            .split_once("::")
            .unwrap_or_else(|| panic!("row `{}`: test as path::fn", row.call));
        let body = std::fs::read_to_string(Path::new(ROOT).join(file))
            .unwrap_or_else(|e| panic!("row `{}`: test file {file}: {e}", row.call));
        assert!(
            body.contains(&format!("fn {name}(")),
            "row `{}`: no test `{name}` in {file}",
            row.call
        );
    }
    let missing: Vec<&String> = calls.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "Fly calls without a row in openapi/AUDIT.md: {missing:?}"
    );
}

/// `get_machine` with the holder: `?include_leases=true`, the lease decoded.
#[tokio::test]
async fn get_machine_with_lease_asks_for_the_lease() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1"))
        .and(query_param("include_leases", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "m1", "state": "started",
            "lease": {"owner": "ops@example.com", "description": "deploy", "expires_at": 1777629600}})))
        .expect(1)
        .mount(&server)
        .await;
    let m = client.get_machine_with_lease("web", "m1").await.unwrap();
    let lease = m.lease.expect("the lease is decoded");
    assert_eq!(lease.owner, "ops@example.com");
}

/// flyctl (`internal/machine/leasable_machine.go`, `RefreshLease`) fails when a refresh
/// answers another nonce: the lease we held is gone and someone else's is in its place.
#[tokio::test]
async fn a_refresh_answered_with_another_nonce_is_an_error() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m1/lease"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"status": "success", "data": {
            "nonce": "someone-else", "expires_at": 1708569900, "owner": "other@example.com"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client
        .refresh_lease("web", "m1", &LeaseNonce::new("ours"), 30)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another nonce"), "{err}");
}

/// fly-go's `IsActive` (`machine_types.go`) leaves `destroying` machines out: a machine on
/// its way out that carries the idempotency key is not the create's answer.
#[tokio::test]
async fn a_destroying_machine_with_the_key_is_not_the_idempotent_answer() {
    let (server, client) = stub().await;
    let key_param = format!("metadata.{IDEMPOTENCY_KEY_METADATA}");
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .and(query_param(key_param.as_str(), "k1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": "old", "state": "destroying",
            "config": {"image": "nginx", "metadata": {IDEMPOTENCY_KEY_METADATA: "k1"}}}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "new", "state": "created",
            "config": {"image": "nginx", "metadata": {IDEMPOTENCY_KEY_METADATA: "k1"}}})))
        .expect(1)
        .mount(&server)
        .await;
    let body = CreateMachine {
        config: MachineConfig {
            image: "nginx".into(),
            ..MachineConfig::default()
        },
        ..CreateMachine::default()
    };
    let m = client
        .create_machine_idempotent("web", &body, "k1")
        .await
        .unwrap();
    assert_eq!(m.id, "new");
}

/// A release answered 404 "lease not found" (expired, or a retried DELETE whose first
/// attempt went through) leaves no lease of ours: success, as flyctl's `releaseLease`
/// (`internal/machine/lease.go`) ignores it. A 409 (someone else's lease) still fails.
#[tokio::test]
async fn releasing_a_lease_that_is_already_gone_is_success() {
    let (server, client) = stub().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/machines/m1/lease"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "lease not found"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/machines/m2/lease"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error": "aborted: lease currently held by other@example.com, nonce does not match"})))
        .expect(1)
        .mount(&server)
        .await;
    let nonce = LeaseNonce::new("ours");
    client.release_lease("web", "m1", &nonce).await.unwrap();
    let err = client.release_lease("web", "m2", &nonce).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
}

/// A start whose first attempt took effect but was answered 502 is retried, and the
/// retry meets the machine in `starting`: Fly refuses it with a 412. The lifecycle
/// workflow re-reads the machine and, finding it on its way, waits instead of reporting
/// a failure for a start that happened (issue 18: no false outcomes).
#[tokio::test]
async fn a_start_refused_because_the_first_attempt_went_through_is_done() {
    use fly_machines_mcp::workflows::lifecycle::{ActionSpec, MachineAction, run_machine_action};
    use fly_machines_mcp::workflows::sched::Control;

    let (server, client) = stub().await;
    let machine = |state: &str| json!({"id": "m1", "state": state, "region": "iad", "config": {"image": "nginx"}});
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine("stopped")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(machine("starting")))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m1/start"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m1/start"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({
            "error": "failed_precondition: unable to start machine from current state: 'starting'"})))
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1/wait"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "state": "started"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let spec = ActionSpec {
        app: "web".into(),
        action: MachineAction::Start,
        machine_ids: vec!["m1".into()],
        wait: true,
        timeout: std::time::Duration::from_secs(10),
        concurrency: 1,
    };
    let out = run_machine_action(&client, &spec, false, &Control::detached())
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].outcome,
        fly_machines_mcp::workflows::Outcome::Done,
        "{:?}",
        out[0]
    );
    assert_eq!(out[0].state_after.as_deref(), Some("started"));
}

/// The client itself: a start or suspend refused with a 412 while the machine is
/// already on its way there is done (the pool's claim and fill call these directly); a
/// 412 from a state that leads elsewhere stays an error.
#[tokio::test]
async fn start_and_suspend_refused_on_the_way_there_are_done() {
    let (server, client) = stub().await;
    let refused = |op: &str, state: &str| {
        ResponseTemplate::new(412).set_body_json(json!({
            "error": format!("failed_precondition: unable to {op} machine from current state: '{state}'")}))
    };
    for (id, state) in [
        ("m1", "starting"),
        ("m2", "suspending"),
        ("m3", "destroying"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/apps/web/machines/{id}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": id, "state": state})),
            )
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m1/start"))
        .respond_with(refused("start", "starting"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m2/suspend"))
        .respond_with(refused("suspend", "suspending"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines/m3/start"))
        .respond_with(refused("start", "destroying"))
        .mount(&server)
        .await;
    client.start_machine("web", "m1", None).await.unwrap();
    client.suspend_machine("web", "m2", None).await.unwrap();
    let err = client.start_machine("web", "m3", None).await.unwrap_err();
    assert_eq!(err.status(), Some(412));
}

/// A summary listing leaves out `config`; `teardown_app` with `owned_only` reads the
/// owner from `config.metadata`, so it must not list with `summary` (the same mistake
/// as issue 18 item 3). Here the summary answer has no config and the full one has it.
#[tokio::test]
async fn owned_only_teardown_plan_reads_the_owner_from_full_configs() {
    use fly_machines_mcp::workflows::{OWNER_METADATA_KEY, OWNER_METADATA_VALUE, teardown};

    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "a1", "name": "web"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .and(query_param("summary", "true"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": "m1", "state": "started"}])),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "m1", "state": "started",
            "config": {"image": "nginx", "metadata": {OWNER_METADATA_KEY: OWNER_METADATA_VALUE}}}])))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/volumes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/ip_assignments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ips": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/certificates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"certificates": []})))
        .mount(&server)
        .await;
    let plan = teardown::plan_teardown(&client, "web", true).await.unwrap();
    assert_eq!(plan.machines.len(), 1);
}

/// The org listing (`Machines_org_list` in the spec; no Go client calls it): 1000 a
/// page, `include_deleted` and `updated_after` as asked, `next_cursor` followed, and the
/// creator read from each machine's metadata.
#[tokio::test]
async fn org_machines_pages_by_cursor_and_reads_the_creator() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/orgs/acme/machines"))
        .and(query_param("limit", "1000"))
        .and(query_param("include_deleted", "true"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "machines": [{"app_name": "b", "id": "m2", "state": "destroyed",
                "created_at": "2026-12-01T10:00:00Z"}],
            "next_cursor": ""})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/orgs/acme/machines"))
        .and(query_param("limit", "1000"))
        .and(query_param("include_deleted", "true"))
        .and(query_param("updated_after", "2026-12-01T00:00:00Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "machines": [{"app_name": "a", "id": "m1", "state": "started",
                "created_at": "2026-12-01T09:00:00Z",
                "config": {"metadata": {"fly_mcp_creator": "key:ci"}}}],
            "next_cursor": "c2"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let since = "2026-12-01T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_second();
    let all = client
        .list_org_machines("acme", true, Some(since))
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"]);
    assert_eq!(all[0].creator.as_deref(), Some("key:ci"));
    assert_eq!(all[0].app, "a");
    assert_eq!(all[1].creator, None);
}

/// A destroy retried after a 5xx whose first attempt went through meets the machine
/// destroyed (412 `unable to destroy machine from current state: 'destroyed'`): that is
/// the destroy done, not a failure (found by the fault campaign: scale-down and reap
/// reported a failure while the machine was gone). Another 412 stays an error.
#[tokio::test]
async fn a_destroy_refused_because_the_machine_is_already_destroyed_is_done() {
    let (server, client) = stub().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/machines/m1"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/machines/m1"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({
            "error": "failed_precondition: unable to destroy machine from current state: 'destroyed'"})))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "m1", "state": "destroyed", "region": "iad"})),
        )
        .mount(&server)
        .await;
    client
        .destroy_machine("web", "m1", true, None)
        .await
        .unwrap();

    let (server, client) = stub().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/machines/m2"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({
            "error": "failed_precondition: unable to destroy machine, not currently stopped"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/m2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "m2", "state": "started", "region": "iad"})),
        )
        .mount(&server)
        .await;
    let err = client
        .destroy_machine("web", "m2", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412), "{err}");
}
