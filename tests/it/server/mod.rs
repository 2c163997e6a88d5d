//! The MCP server: catalog invariants and snapshot, the safety gates, both protocol
//! eras, and the HTTP transport. In-process: rmcp client ↔ server over a duplex pipe
//! or loopback HTTP; fixture tools where no Fly call is needed.

mod auth;
mod catalog;
mod cli;
mod fixtures;
mod gates;
mod http;
mod oauth;
pub mod tools;

use std::sync::Arc;

use fly_machines_mcp::{
    fly,
    tools::{Catalog, Gate, Policy, PolicyOptions, Redactor, audit::AuditLog},
};

/// A Fly client pointing at a closed loopback port: fixture tools never call it.
pub fn offline_client() -> fly::Client {
    let cfg = fly::ClientConfig::local(
        "http://127.0.0.1:9".parse().unwrap(),
        fly::Token::parse("test-token-not-used"),
    )
    .unwrap();
    fly::Client::new(cfg).unwrap()
}

/// A gate over `catalog` with `opts`.
pub fn gate_with(
    catalog: Catalog,
    opts: &PolicyOptions,
    client: fly::Client,
    redactor: Redactor,
    audit: Option<AuditLog>,
) -> Arc<Gate> {
    let policy = Policy::new(&catalog, opts).unwrap();
    Arc::new(Gate::new(
        catalog, policy, client, "personal", redactor, audit,
    ))
}
