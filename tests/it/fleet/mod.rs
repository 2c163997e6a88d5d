//! The fleet toolset (warm pools) against the in-process simulator with Fly's rate
//! limits on: fill, claim, release and reap through the workflow layer, two
//! independent client stacks racing for one pool, the claim's cost on the simulator's
//! own clock, and the MCP tools over an in-process pipe.

mod pool;
mod processes;
mod race;
mod twenty;

use std::time::Duration;

use fly_machines_mcp::{
    fly,
    sim::{self, SimConfig, SimHandle},
    workflows::pool::{Park, PoolListings, PoolSpec},
};
use serde_json::{Value, json};

/// The token the tests present to the simulator.
pub const TOKEN: &str = "fleet-tests-token";

/// A simulator with rate limits on and the project's client pointed at it.
pub struct Fleet {
    pub sim: SimHandle,
    pub client: fly::Client,
    /// The pool listings `client`'s claims share (one server process's).
    pub listings: PoolListings,
}

impl Fleet {
    /// Automatic mode, latencies and rate-limit windows multiplied by `time_scale`.
    pub async fn scaled(time_scale: f64) -> Fleet {
        let cfg = SimConfig {
            time_scale,
            ..SimConfig::for_tests().with_rate_limits(true)
        };
        Fleet::start(cfg).await
    }

    /// Stepped mode with unscaled latencies: the clock moves only through [`Fleet::drive`].
    pub async fn stepped() -> Fleet {
        Fleet::start(SimConfig::stepped().with_rate_limits(true)).await
    }

    async fn start(cfg: SimConfig) -> Fleet {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = sim::start(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let client = self::client(&sim);
        Fleet {
            sim,
            client,
            listings: PoolListings::new(),
        }
    }

    /// Creates `app` in the personal org (moving a stepped clock while the client
    /// waits for the new app to answer).
    pub async fn app(&self, app: &str) {
        let body = fly::CreateApp {
            name: app.to_owned(),
            org_slug: "personal".to_owned(),
            ..fly::CreateApp::default()
        };
        self.drive(50, self.client.create_app(&body)).await.unwrap();
    }

    /// The machines of `app` in the simulator's own state.
    pub fn machines(&self, app: &str) -> Vec<Value> {
        let state = self.sim.state_json();
        state["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == app)
            .map(|a| a["machines"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Responses with status 429 in the simulator's request log.
    pub async fn count_429(&self) -> usize {
        let url = format!("{}/__sim/requests", self.sim.base_url());
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == json!(429))
            .count()
    }

    /// Stepped mode: runs `fut`, moving the simulator's clock by `step_ms` each time
    /// it has been pending for a few real milliseconds (bounded: 20 000 steps).
    pub async fn drive<T>(&self, step_ms: u64, fut: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(fut);
        for _ in 0..20_000 {
            if let Ok(v) = tokio::time::timeout(Duration::from_millis(15), &mut fut).await {
                return v;
            }
            self.sim.advance(Duration::from_millis(step_ms));
        }
        panic!("operation did not finish while the clock advanced");
    }
}

/// A client of its own (its own connection pool): what a second server process has.
pub fn client(sim: &SimHandle) -> fly::Client {
    crate::support::attenuating_client(sim)
}

/// A pool template: nginx in iad, parked as `park`.
pub fn spec(app: &str, pool: &str, park: Park) -> PoolSpec {
    PoolSpec {
        app: app.to_owned(),
        pool: pool.to_owned(),
        region: Some("iad".to_owned()),
        config: fly::MachineConfig {
            image: "nginx:1".to_owned(),
            ..fly::MachineConfig::default()
        },
        park,
    }
}
