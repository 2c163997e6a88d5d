//! One integration-test binary (keeps link time down on small machines).
// Helpers outside `#[test]` functions unwrap too; clippy.toml covers the tests themselves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attenuation;
mod cli;
mod contract;
mod docs;
mod examples;
mod fleet;
mod fly;
mod hardening;
mod observe;
mod optin;
mod provision;
mod server;
mod sim;
mod support;
mod update;
