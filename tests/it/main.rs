//! One integration-test binary (keeps link time down on small machines).

mod cli;
mod contract;
