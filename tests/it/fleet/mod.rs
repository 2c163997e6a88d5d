//! The fleet toolset (warm pools) against the in-process simulator with Fly's rate
//! limits on: fill, claim, release and reap through the workflow layer, two
//! independent client stacks racing for one pool, the claim's cost on the simulator's
//! own clock, and the MCP tools over an in-process pipe.

mod faults;
mod pool;
mod processes;
mod race;
mod twenty;

use fly_machines_mcp::{
    fly,
    sim::SimHandle,
    workflows::pool::{Park, PoolListings, PoolSpec},
};

use crate::support::{TestEnv, TestEnvBuilder};

/// The token the tests present to the simulator.
pub const TOKEN: &str = "fleet-tests-token";

/// A simulator with rate limits on and the project's client pointed at it, with the
/// pool listings of one server process.
pub struct Fleet {
    pub env: TestEnv,
    /// The Fly client of `env` (the same connection pool).
    pub client: fly::Client,
    /// The pool listings `client`'s claims share (one server process's).
    pub listings: PoolListings,
}

impl std::ops::Deref for Fleet {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

impl Fleet {
    /// The simulator `builder` describes, without a server.
    pub async fn new(builder: TestEnvBuilder) -> Fleet {
        let env = builder.start().await;
        Fleet {
            client: env.fly.clone(),
            env,
            listings: PoolListings::new(),
        }
    }

    /// Automatic mode, rate limits on, latencies and rate-limit windows multiplied by
    /// `time_scale`.
    pub async fn scaled(time_scale: f64) -> Fleet {
        Fleet::new(TestEnv::sim_only().rate_limits().time_scale(time_scale)).await
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
