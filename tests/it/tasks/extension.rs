//! MCP Tasks (SEP-2663) over Streamable HTTP with the 2026-07-28 protocol, spoken on
//! the wire as a client would: a long call from a client that declared the extension
//! is a task (working → completed with the synchronous call's result), a failing one
//! completes with `isError`, `tasks/cancel` mid-way rolls back what the call created,
//! a destructive task asks its confirmation as `input_required` and goes on after
//! `tasks/update`, a task belongs to its caller, outlives its client, and a poll that
//! reaches another replica is answered with `fly-replay` naming the right one.

use std::{sync::Arc, time::Duration};

use fly_machines_mcp::tools::{
    Gate,
    http::{HttpAuth, HttpHandle, HttpOptions, start},
    tasks::Tasks,
};
use serde_json::{Value, json};

use crate::support::{TestEnv, eventually, eventually_within};

const TASKS: &str = "io.modelcontextprotocol/tasks";
/// How long a test waits for a task to get where it should.
const SETTLE: Duration = Duration::from_secs(30);

/// A stateless (2026-07-28) client speaking JSON-RPC over HTTP, each request carrying
/// its own metadata and capabilities.
struct Wire {
    url: String,
    http: reqwest::Client,
    key: Option<String>,
    caps: Value,
}

impl Wire {
    fn new(url: &str, caps: Value) -> Wire {
        Wire {
            url: url.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            key: None,
            caps,
        }
    }

    fn tasks(url: &str) -> Wire {
        Wire::new(url, json!({ "extensions": { TASKS: {} } }))
    }

    fn with_key(mut self, key: &str) -> Wire {
        self.key = Some(key.to_owned());
        self
    }

    /// Sends `method` (`name`: the tool or task the `Mcp-Name` header names) and
    /// returns the response's headers and JSON-RPC message.
    async fn send(
        &self,
        method: &str,
        name: &str,
        mut params: Value,
        extra: &[(&str, &str)],
    ) -> (reqwest::header::HeaderMap, Value) {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": "wire-test", "version": "0" },
            "io.modelcontextprotocol/clientCapabilities": self.caps,
        });
        let body = json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params });
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(body.to_string());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let message = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .chain(std::iter::once(text.trim()))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {text:?}"));
        (headers, message)
    }

    async fn rpc(&self, method: &str, name: &str, params: Value) -> Value {
        self.send(method, name, params, &[]).await.1
    }

    async fn call(&self, tool: &str, args: Value) -> Value {
        let m = self
            .rpc(
                "tools/call",
                tool,
                json!({ "name": tool, "arguments": args }),
            )
            .await;
        m.get("result").cloned().unwrap_or_else(|| panic!("{m}"))
    }

    async fn get(&self, task: &str) -> Value {
        let m = self.rpc("tasks/get", task, json!({ "taskId": task })).await;
        m.get("result").cloned().unwrap_or_else(|| panic!("{m}"))
    }

    async fn until(&self, task: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let last = std::sync::Mutex::new(Value::Null);
        eventually_within(&format!("task {task} got there"), SETTLE, || async {
            let t = self.get(task).await;
            let there = pred(&t);
            *last.lock().unwrap() = t;
            there
        })
        .await;
        last.into_inner().unwrap()
    }

    async fn settled(&self, task: &str) -> Value {
        self.until(task, |t| {
            matches!(
                t["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await
    }
}

/// A gate of its own on `env`'s simulator whose tasks name `instance`, served over
/// HTTP on loopback with `auth`.
async fn replica(env: &TestEnv, instance: Option<&str>, auth: HttpAuth) -> (Arc<Gate>, HttpHandle) {
    replica_with(env, Tasks::new(instance.map(str::to_owned)), auth).await
}

async fn replica_with(env: &TestEnv, tasks: Tasks, auth: HttpAuth) -> (Arc<Gate>, HttpHandle) {
    let gate = Arc::try_unwrap(env.another_gate())
        .unwrap()
        .with_tasks(tasks);
    let gate = Arc::new(gate);
    let http = start(
        gate.clone(),
        "127.0.0.1:0".parse().unwrap(),
        HttpOptions {
            auth,
            ..HttpOptions::default()
        },
    )
    .await
    .unwrap();
    (gate, http)
}

/// Machine starts take long enough (at this scale, about a second) for a test to act
/// while a provision waits.
async fn slow_env() -> TestEnv {
    TestEnv::builder().time_scale(0.3).start().await
}

fn provision(app: &str) -> Value {
    json!({ "app": app, "image": "nginx:1", "region": "iad" })
}

#[tokio::test]
async fn a_long_call_is_a_task_that_completes_with_the_synchronous_result() {
    let env = TestEnv::builder().start().await;
    let (_gate, http) = replica(&env, None, HttpAuth::None).await;
    let client = Wire::tasks(&http.mcp_url());

    let created = client
        .call("provision_environment", provision("tk-a"))
        .await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert_eq!(created["status"], "working", "{created}");
    assert_eq!(created["ttlMs"], 3_600_000, "{created}");
    assert!(created.get("result").is_none() && created.get("task").is_none());
    let id = created["taskId"].as_str().unwrap().to_owned();

    let done = client.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let result = &done["result"];
    assert_ne!(result["isError"], true, "{done}");

    // The same call without the extension is synchronous; its result has the same
    // shape, and both match the tool's output schema.
    let sync = Wire::new(&http.mcp_url(), json!({}));
    let plain = sync.call("provision_environment", provision("tk-b")).await;
    assert_ne!(plain["resultType"], "task", "{plain}");
    assert!(plain.get("taskId").is_none());
    for r in [result, &plain] {
        crate::support::assert_matches_output_schemas(
            &env.gate,
            "provision_environment",
            &r["structuredContent"],
        );
        assert!(
            r["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("machine")
        );
    }
    let keys = |v: &Value| {
        let mut k: Vec<String> = v["structuredContent"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(result), keys(&plain));
    assert_eq!(result["structuredContent"]["app"], "tk-a");
    assert!(env.app_state("tk-a").is_some() && env.app_state("tk-b").is_some());

    // Short tools stay synchronous for a tasks client.
    let list = client.call("list_apps", json!({})).await;
    assert!(list.get("taskId").is_none(), "{list}");
    http.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_call_completes_with_is_error_and_an_unknown_tool_is_a_protocol_error() {
    let env = TestEnv::builder().start().await;
    let (_gate, http) = replica(&env, None, HttpAuth::None).await;
    let client = Wire::tasks(&http.mcp_url());
    // `iad` is fine, `zzz` is not a region Fly has.
    let created = client
        .call(
            "provision_environment",
            json!({ "app": "tk-bad", "image": "nginx:1", "region": "zzz" }),
        )
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let done = client.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert!(env.app_state("tk-bad").is_none());

    let unknown = client
        .rpc(
            "tools/call",
            "no_such_tool",
            json!({ "name": "no_such_tool", "arguments": {} }),
        )
        .await;
    assert!(unknown.get("error").is_some(), "{unknown}");
    http.shutdown().await.unwrap();
}

#[tokio::test]
async fn tasks_cancel_mid_way_rolls_back_what_the_call_created() {
    let env = slow_env().await;
    let (gate, http) = replica(&env, None, HttpAuth::None).await;
    let client = Wire::tasks(&http.mcp_url());
    let created = client
        .call("provision_environment", provision("tk-cx"))
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let working = client
        .until(&id, |t| {
            t["statusMessage"]
                .as_str()
                .is_some_and(|m| m.contains("waiting for machine"))
        })
        .await;
    assert_eq!(working["status"], "working", "{working}");
    assert!(
        env.app_state("tk-cx").is_some(),
        "the call had created its app"
    );

    let ack = client
        .rpc("tasks/cancel", &id, json!({ "taskId": id }))
        .await;
    assert_eq!(ack["result"], json!({ "resultType": "complete" }), "{ack}");
    let done = client.settled(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(done.get("result").is_none());
    let said = done["statusMessage"].as_str().unwrap();
    assert!(
        said.starts_with("cancelled: ") && said.contains("rolled back"),
        "{said}"
    );
    // Nothing the call created is left.
    assert!(env.app_state("tk-cx").is_none(), "{said}");
    let state = env.sim.state_json();
    assert!(!state.to_string().contains("tk-cx"), "{state}");
    // Cancelling again is the same empty acknowledgement.
    let again = client
        .rpc("tasks/cancel", &id, json!({ "taskId": id }))
        .await;
    assert_eq!(again["result"], json!({ "resultType": "complete" }));
    assert_eq!(gate.tasks().running(), 0);
    http.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_destructive_task_asks_its_confirmation_as_input_required() {
    let env = TestEnv::builder()
        .confirm(fly_machines_mcp::tools::ConfirmMode::Elicit)
        .start()
        .await;
    let (_gate, http) = replica(&env, None, HttpAuth::None).await;
    let client = Wire::tasks(&http.mcp_url());
    let made = client
        .call("provision_environment", provision("tk-td"))
        .await;
    let made = client.settled(made["taskId"].as_str().unwrap()).await;
    assert_eq!(made["status"], "completed", "{made}");

    let eliciting = Wire::new(
        &http.mcp_url(),
        json!({ "elicitation": { "form": {} }, "extensions": { TASKS: {} } }),
    );
    let created = eliciting
        .call("teardown_environment", json!({ "app": "tk-td" }))
        .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let asking = eliciting
        .until(&id, |t| t["status"] == "input_required")
        .await;
    let form = &asking["inputRequests"]["confirm_destroy"];
    assert_eq!(form["method"], "elicitation/create", "{asking}");
    assert!(
        env.app_state("tk-td").is_some(),
        "nothing destroyed before the answer"
    );

    let answer = json!({
        "taskId": id,
        "inputResponses": {
            "confirm_destroy": { "action": "accept", "content": { "confirm": "tk-td" } }
        }
    });
    let ack = eliciting.rpc("tasks/update", &id, answer).await;
    assert_eq!(ack["result"]["resultType"], "complete", "{ack}");
    let done = eliciting.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_ne!(done["result"]["isError"], true, "{done}");
    eventually("the app is gone", || async {
        env.app_state("tk-td").is_none()
    })
    .await;
    http.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_task_belongs_to_its_caller_and_outlives_its_client() {
    let env = TestEnv::builder().start().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(
        &keys,
        "alice:key-of-alice-0123456789\nbob:key-of-bob-0123456789\n",
    )
    .unwrap();
    let (_gate, http) = replica(&env, None, HttpAuth::Keys(keys)).await;
    let created = {
        let alice = Wire::tasks(&http.mcp_url()).with_key("key-of-alice-0123456789");
        alice
            .call("provision_environment", provision("tk-own"))
            .await
        // This client (and its connections) is gone after this block.
    };
    let id = created["taskId"].as_str().unwrap().to_owned();

    let bob = Wire::tasks(&http.mcp_url()).with_key("key-of-bob-0123456789");
    let theirs = bob.rpc("tasks/get", &id, json!({ "taskId": id })).await;
    assert_eq!(theirs["error"]["code"], -32602, "{theirs}");
    let cancel = bob.rpc("tasks/cancel", &id, json!({ "taskId": id })).await;
    assert!(cancel.get("error").is_some(), "{cancel}");

    let alice_again = Wire::tasks(&http.mcp_url()).with_key("key-of-alice-0123456789");
    let done = alice_again.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["structuredContent"]["app"], "tk-own");
    http.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_poll_reaching_another_replica_is_replayed_to_the_one_running_the_task() {
    let env = TestEnv::builder().start().await;
    let (_a, replica_a) = replica(&env, Some("a1b2c3d4e5f607"), HttpAuth::None).await;
    let (_b, replica_b) = replica(&env, Some("0f9e8d7c6b5a43"), HttpAuth::None).await;
    let on_a = Wire::tasks(&replica_a.mcp_url());
    let on_b = Wire::tasks(&replica_b.mcp_url());

    let created = on_a.call("provision_environment", provision("tk-rp")).await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("a1b2c3d4e5f607."), "{id}");

    // Replica B does not hold the task: it answers with fly-replay naming A, which
    // Fly's proxy follows by delivering the same request to A.
    for method in ["tasks/get", "tasks/cancel"] {
        let (headers, message) = on_b.send(method, &id, json!({ "taskId": id }), &[]).await;
        assert_eq!(
            headers.get("fly-replay").and_then(|v| v.to_str().ok()),
            Some("instance=a1b2c3d4e5f607"),
            "{method}: {message}"
        );
    }
    // The proxy's replay (marked fly-replay-src) reaches A, which answers it.
    let (headers, replayed) = on_a
        .send(
            "tasks/get",
            &id,
            json!({ "taskId": id }),
            &[("fly-replay-src", "instance=0f9e8d7c6b5a43")],
        )
        .await;
    assert!(headers.get("fly-replay").is_none());
    assert!(replayed["result"]["status"].is_string(), "{replayed}");
    // A replayed request is never sent on again: B, reached by a replay, says unknown.
    let (headers, refused) = on_b
        .send(
            "tasks/get",
            &id,
            json!({ "taskId": id }),
            &[("fly-replay-src", "instance=a1b2c3d4e5f607")],
        )
        .await;
    assert!(headers.get("fly-replay").is_none());
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    let done = on_a.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["taskId"], id.as_str());
    replica_a.shutdown().await.unwrap();
    replica_b.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_the_extension_tasks_methods_are_refused_and_calls_stay_synchronous() {
    let env = TestEnv::builder().start().await;
    let (_gate, http) = replica(&env, None, HttpAuth::None).await;
    let plain = Wire::new(&http.mcp_url(), json!({}));
    let r = plain.rpc("tasks/get", "x", json!({ "taskId": "x" })).await;
    assert_eq!(r["error"]["code"], -32021, "{r}");
    let r = plain
        .call("provision_environment", provision("tk-sync"))
        .await;
    assert!(r.get("taskId").is_none(), "{r}");
    assert!(env.app_state("tk-sync").is_some());
    http.shutdown().await.unwrap();
}

/// A session-era client that declares the tasks extension at `initialize`.
#[derive(Clone, Default)]
struct SessionTasksClient;

impl rmcp::ClientHandler for SessionTasksClient {
    fn get_info(&self) -> rmcp::model::InitializeRequestParams {
        rmcp::model::InitializeRequestParams::new(
            rmcp::model::ClientCapabilities::builder()
                .enable_tasks()
                .build(),
            rmcp::model::Implementation::new("tasks-session-client", "0.0.0"),
        )
    }
}

#[tokio::test]
async fn a_session_that_declared_tasks_at_initialize_gets_a_task() {
    use rmcp::model::{
        CallToolRequest, ClientRequest, GetTaskParams, GetTaskRequest, ServerResult, TaskStatus,
    };
    let env = TestEnv::builder().handler(SessionTasksClient).start().await;
    let call = ClientRequest::CallToolRequest(CallToolRequest::new(crate::support::params(
        "provision_environment",
        provision("tk-sess"),
    )));
    let ServerResult::CreateTaskResult(created) = env.mcp().send_request(call).await.unwrap()
    else {
        panic!("a session that declared tasks gets a task for a long call");
    };
    let id = created.task.task_id.clone();
    let status = std::sync::Mutex::new(TaskStatus::Working);
    eventually_within("the session's task settled", SETTLE, || async {
        let get = ClientRequest::GetTaskRequest(GetTaskRequest::new(GetTaskParams::new(&id)));
        let ServerResult::GetTaskResult(got) = env.mcp().send_request(get).await.unwrap() else {
            panic!("tasks/get answers a task");
        };
        *status.lock().unwrap() = got.task.status();
        got.task.status().is_terminal()
    })
    .await;
    assert_eq!(status.into_inner().unwrap(), TaskStatus::Completed);
    assert!(env.app_state("tk-sess").is_some());
    // The same session's short calls are synchronous.
    let list = env.call("list_apps", json!({})).await;
    assert_ne!(list.is_error, Some(true));
}

#[tokio::test]
async fn a_task_near_its_ttl_is_cancelled_with_rollback_and_kept_for_a_ttl_after() {
    // A 2 s TTL: a provision still waiting for its machine after half of it (the margin
    // before a TTL is five minutes, or half a TTL this short) is cancelled through the
    // workflow's own path, never left to be aborted half-way by the TTL sweep.
    let env = TestEnv::builder().time_scale(1.0).start().await;
    let ttl = Duration::from_secs(2);
    let (_gate, http) = replica_with(&env, Tasks::new(None).with_ttl(ttl), HttpAuth::None).await;
    let client = Wire::tasks(&http.mcp_url());
    let created = client
        .call("provision_environment", provision("tk-ttl"))
        .await;
    assert_eq!(created["ttlMs"], 2000, "{created}");
    let id = created["taskId"].as_str().unwrap().to_owned();
    let done = client.settled(&id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        done["statusMessage"]
            .as_str()
            .unwrap()
            .starts_with("cancelled: "),
        "{done}"
    );
    assert!(env.app_state("tk-ttl").is_none(), "{done}");
    // Finished, it is still answered (for a TTL past its end), then forgotten.
    assert_eq!(client.get(&id).await["status"], "cancelled");
    eventually("the finished task is forgotten after its TTL", || async {
        let answer = client.rpc("tasks/get", &id, json!({ "taskId": id })).await;
        answer["error"]["code"] == -32602
    })
    .await;
    http.shutdown().await.unwrap();
}
