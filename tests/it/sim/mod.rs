//! The Fly simulator, driven over HTTP with plain reqwest + serde_json (never the
//! project's Fly client, so the two stay independent). Stepped mode: the clock only
//! moves when a test advances it.

mod apps;
mod capacity;
mod demo;
mod lifecycle;
mod parity;
mod recipe;
mod rules;
mod tokens;

use std::time::Duration;

use fly_machines_mcp::sim::{Realism, SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::support::TestEnv;

pub(crate) const TOKEN: &str = "Bearer test-token";

pub(crate) struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

impl Sim {
    pub async fn start(cfg: SimConfig) -> Sim {
        let handle = TestEnv::sim_only().sim(cfg).start_sim().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Sim { handle, http }
    }

    pub async fn stepped() -> Sim {
        Sim::start(SimConfig::stepped()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
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
            .header("Authorization", TOKEN);
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

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub fn advance_ms(&self, ms: u64) {
        self.handle.advance(Duration::from_millis(ms));
    }

    /// Creates an app and lets the clock pass the moment a new app stays hidden
    /// (realistic profile), as a client waiting for it would.
    pub async fn create_app(&self, name: &str) {
        let (st, _) = self
            .post("/v1/apps", json!({"name": name, "org_slug": "personal"}))
            .await;
        assert_eq!(st, 201);
        self.pass_new_app_window();
    }

    /// Moves the clock past the window in which a new app answers 404.
    pub fn pass_new_app_window(&self) {
        self.advance_ms(Realism::realistic().new_app_hidden_ms);
    }

    pub async fn create_machine(&self, app: &str, body: Value) -> Value {
        let (st, m) = self.post(&format!("/v1/apps/{app}/machines"), body).await;
        assert_eq!(st, 200, "{m}");
        m
    }

    pub async fn state(&self, app: &str, id: &str) -> String {
        let (st, m) = self.get(&format!("/v1/apps/{app}/machines/{id}")).await;
        assert_eq!(st, 200, "{m}");
        m["state"].as_str().unwrap().to_owned()
    }

    /// Runs `fut` while stepping the clock by `step_ms` until it finishes (bounded).
    pub async fn advance_until<T>(
        &self,
        step_ms: u64,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        tokio::pin!(fut);
        for _ in 0..400 {
            if let Ok(v) = tokio::time::timeout(Duration::from_millis(25), &mut fut).await {
                return v;
            }
            self.advance_ms(step_ms);
        }
        panic!("operation did not finish while the clock advanced");
    }
}

pub(crate) fn basic_machine() -> Value {
    json!({"region": "iad", "config": {"image": "nginx:latest",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
        "services": [{"protocol": "tcp", "internal_port": 8080,
            "ports": [{"port": 443, "handlers": ["tls", "http"]}],
            "checks": [{"type": "http", "path": "/", "interval": "10s", "timeout": "2s"}]}]}})
}
