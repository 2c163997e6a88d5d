//! Tests of the Fly API client (`fly_machines_mcp::fly`) against a loopback
//! `wiremock` stub: requests (method, path, query, headers, body) and decoding
//! of success and error bodies shaped like Fly's.

mod actions;
mod against_sim;
mod apps;
mod idempotent;
mod leases;
mod logs;
mod machines;
mod network;
mod platform;
mod resilience;
mod secrecy;
mod secrets;
mod storage;
mod token_parts;

use fly_machines_mcp::fly::{Client, ClientConfig, Token};
use wiremock::MockServer;

/// A token whose value must never show up anywhere.
pub const CANARY: &str = "fm2_canary-7f3a9e";

/// A stub server and a client pointed at it (no pacing, millisecond retries).
pub async fn stub() -> (MockServer, Client) {
    let server = MockServer::start().await;
    let client = client_for(&server, true);
    (server, client)
}

pub fn client_for(server: &MockServer, fast: bool) -> Client {
    let base = url::Url::parse(&server.uri()).unwrap();
    let mut cfg = ClientConfig::local(base, Token::parse(CANARY)).unwrap();
    if !fast {
        cfg.retry = fly_machines_mcp::fly::RetryPolicy::none();
    }
    Client::new(cfg).unwrap()
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/it/fly/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
