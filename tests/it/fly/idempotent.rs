//! Ambiguous machine creates: a stateful stub that sometimes creates the machine
//! and still answers 5xx, to prove a retry never makes a duplicate.

use std::sync::{Arc, Mutex};

use fly_machines_mcp::fly::{CreateMachine, IDEMPOTENCY_KEY_METADATA, MachineConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use super::stub;

#[derive(Clone, Default)]
struct Fleet {
    machines: Arc<Mutex<Vec<Value>>>,
    creates: Arc<Mutex<u32>>,
}

/// POST: the first `fail_after_create` creates store the machine but answer 502;
/// the first `fail_before_create` answer 503 without creating.
struct CreateResponder {
    fleet: Fleet,
    fail_after_create: u32,
    fail_before_create: u32,
}

impl Respond for CreateResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut creates = self.fleet.creates.lock().unwrap();
        *creates += 1;
        let n = *creates;
        if n <= self.fail_before_create {
            return ResponseTemplate::new(503).set_body_string("upstream connect error");
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let mut machines = self.fleet.machines.lock().unwrap();
        let machine = json!({"id": format!("m{}", machines.len() + 1), "state": "created", "config": body["config"]});
        machines.push(machine.clone());
        if n <= self.fail_before_create + self.fail_after_create {
            return ResponseTemplate::new(502).set_body_string("bad gateway");
        }
        ResponseTemplate::new(200).set_body_json(machine)
    }
}

/// GET list: honours `metadata.KEY=VALUE` filters.
struct ListResponder(Fleet);

impl Respond for ListResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let filters: Vec<(String, String)> = req
            .url
            .query_pairs()
            .filter_map(|(k, v)| {
                k.strip_prefix("metadata.")
                    .map(|k| (k.to_owned(), v.into_owned()))
            })
            .collect();
        let machines = self.0.machines.lock().unwrap();
        let hits: Vec<Value> = machines
            .iter()
            .filter(|m| {
                filters
                    .iter()
                    .all(|(k, v)| m["config"]["metadata"][k] == json!(v))
            })
            .cloned()
            .collect();
        ResponseTemplate::new(200).set_body_json(hits)
    }
}

async fn run(
    fail_before_create: u32,
    fail_after_create: u32,
) -> (Fleet, fly_machines_mcp::fly::Machine) {
    let (server, client) = stub().await;
    let fleet = Fleet::default();
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(CreateResponder {
            fleet: fleet.clone(),
            fail_after_create,
            fail_before_create,
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ListResponder(fleet.clone()))
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
        .create_machine_idempotent("web", &body, "key-1")
        .await
        .unwrap();
    // Re-running with the same key converges on the same machine.
    let again = client
        .create_machine_idempotent("web", &body, "key-1")
        .await
        .unwrap();
    assert_eq!(again.id, m.id);
    (fleet, m)
}

#[tokio::test]
async fn ambiguous_create_then_retry_yields_exactly_one_machine() {
    let (fleet, m) = run(0, 1).await;
    assert_eq!(fleet.machines.lock().unwrap().len(), 1);
    assert_eq!(
        *fleet.creates.lock().unwrap(),
        1,
        "the lookup found it; no second create"
    );
    assert_eq!(m.metadata(IDEMPOTENCY_KEY_METADATA), Some("key-1"));
}

#[tokio::test]
async fn failure_before_create_is_retried_and_still_one_machine() {
    let (fleet, _) = run(2, 0).await;
    assert_eq!(fleet.machines.lock().unwrap().len(), 1);
    assert_eq!(*fleet.creates.lock().unwrap(), 3);
}

/// Issue 18 item 7: `insufficient_capacity` is final whatever the HTTP status —
/// fly-go reads the code, not the status (`flaps/flaps_error.go`), and its tests model
/// the capacity error as a 503 (`flaps/flaps_error_test.go`). No look-and-retry: one
/// create, and the error carries the code.
#[tokio::test]
async fn item7_capacity_503_is_final_no_relist_no_recreate() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "error": "insufficient resources to create new machine", "status": "insufficient_capacity"})))
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
    let err = client
        .create_machine_idempotent("web", &body, "k1")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("insufficient_capacity"));
    assert!(err.is_definitive() && !err.is_ambiguous() && !err.is_retryable());
    let lists = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(lists, 1, "only the look before the first create");
    // The other definitive codes, on a request that is otherwise safe to repeat.
    for code in ["volume_placement_capacity", "name_taken"] {
        let (server, client) = stub().await;
        Mock::given(method("GET"))
            .and(path("/v1/apps/x"))
            .respond_with(
                ResponseTemplate::new(503).set_body_json(json!({"error": "no", "status": code})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = client.get_app("x").await.unwrap_err();
        assert_eq!(err.code(), Some(code));
    }
}
