//! Workflows that change machines, volumes and secrets (rolling updates, scaling,
//! volume actions, secrets by reference), driven against the in-process simulator:
//! first the workflow layer directly, then the MCP tools over an in-process rmcp pipe.
//! Every test checks the simulator's own view (`/__sim/state`).

mod secret_refs;
mod tools;
mod workflows;

use std::time::Duration;

use fly_machines_mcp::{
    fly,
    sim::{self, SimConfig, SimHandle},
};
use serde_json::{Value, json};

use crate::support::{TestEnv, TestEnvBuilder};

/// The token the tests present to the simulator.
pub const TOKEN: &str = "update-tests-token";

/// A [`TestEnv`] (a simulator, the project's Fly client and, with [`Env::serving`],
/// an MCP client), and a raw HTTP client for setting things up.
pub struct Env {
    pub env: TestEnv,
    pub http: reqwest::Client,
    /// The Fly client of `env` (the same connection pool).
    pub client: fly::Client,
}

impl std::ops::Deref for Env {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

impl Env {
    /// An automatic-mode simulator with a tiny time scale (transitions take ms).
    pub async fn fast() -> Env {
        Env::start(SimConfig::for_tests()).await
    }

    /// A stepped simulator: the clock only moves when the test says so.
    pub async fn stepped() -> Env {
        Env::start(SimConfig::stepped()).await
    }

    pub async fn start(cfg: SimConfig) -> Env {
        Env::with(TestEnv::sim_only().sim(cfg)).await
    }

    /// An automatic-mode simulator and an MCP client of a server over every tool,
    /// confirming by the `confirm` argument.
    pub async fn serving() -> Env {
        Env::with(TestEnv::builder()).await
    }

    /// The environment `builder` describes.
    pub async fn with(builder: TestEnvBuilder) -> Env {
        let env = builder.start().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Env {
            client: env.fly.clone(),
            env,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("Authorization", format!("Bearer {TOKEN}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates an app and lets the clock pass the moment a new app stays hidden
    /// (realistic profile), as a client waiting for it would.
    pub async fn create_app(&self, name: &str) {
        let (st, v) = self
            .post("/v1/apps", json!({"name": name, "org_slug": "personal"}))
            .await;
        assert_eq!(st, 201, "{v}");
        self.sim.advance(Duration::from_millis(
            sim::Realism::realistic().new_app_hidden_ms,
        ));
    }

    /// Creates a machine with an HTTP service check and returns its id.
    pub async fn create_machine(&self, app: &str, region: &str, image: &str) -> String {
        let (st, m) = self
            .post(
                &format!("/v1/apps/{app}/machines"),
                json!({"region": region, "config": {"image": image,
                    "env": {"MODE": "one"},
                    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
                    "services": [{"protocol": "tcp", "internal_port": 8080,
                        "ports": [{"port": 443, "handlers": ["tls", "http"]}],
                        "checks": [{"type": "http", "path": "/", "interval": "10s", "timeout": "2s"}]}]}}),
            )
            .await;
        assert_eq!(st, 200, "{m}");
        m["id"].as_str().unwrap().to_owned()
    }

    /// The simulator's full state.
    pub fn state(&self) -> Value {
        self.sim.state_json()
    }

    /// One machine as the simulator's state shows it.
    pub fn machine(&self, app: &str, id: &str) -> Value {
        let state = self.state();
        app_of(&state, app)["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("machine {id} not in the state"))
    }

    /// Waits (the wait endpoint, bounded) until machine `id` is started.
    pub async fn until_started(&self, app: &str, id: &str) {
        self.client
            .wait_for_state(
                app,
                id,
                &[fly::WaitTarget::Started],
                None,
                None,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    /// An app with `n` started machines in `region` running `image`; returns their ids.
    pub async fn app_with_machines(
        &self,
        app: &str,
        region: &str,
        image: &str,
        n: usize,
    ) -> Vec<String> {
        self.create_app(app).await;
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = self.create_machine(app, region, image).await;
            self.until_started(app, &id).await;
            ids.push(id);
        }
        ids
    }
}

/// The project's Fly client pointed at the simulator.
pub fn client_for(sim: &SimHandle) -> fly::Client {
    crate::support::attenuating_client(sim)
}

/// An app in a `/__sim/state` document.
pub fn app_of<'a>(state: &'a Value, app: &str) -> &'a Value {
    crate::support::app_in(state, app).unwrap_or_else(|| panic!("app {app} not in the state"))
}

impl Env {
    /// Runs `fut` while stepping the simulator's clock by `step_ms` until it finishes
    /// (bounded: 400 steps).
    pub async fn advance_until<T>(
        &self,
        step_ms: u64,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(fut);
        for _ in 0..400 {
            if let Ok(v) = tokio::time::timeout(Duration::from_millis(20), &mut fut).await {
                return v;
            }
            self.sim.advance(Duration::from_millis(step_ms));
        }
        panic!("operation did not finish while the clock advanced");
    }

    /// `GET …/versions` of a machine: how many config versions it has had.
    pub async fn version_count(&self, app: &str, id: &str) -> usize {
        let (st, v) = self
            .send(
                reqwest::Method::GET,
                &format!("/v1/apps/{app}/machines/{id}/versions"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v.as_array().unwrap().len()
    }
}
