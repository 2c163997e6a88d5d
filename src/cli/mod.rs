//! The command line (clap): `serve`, `sim`, `call`, `tools`, `install`, `auth`.
//!
//! Owns argument parsing, logging set-up (stderr only) and exit codes. It wires
//! configuration into [`crate::tools`] and [`crate::sim`]; it holds no domain logic.

use std::process::ExitCode;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}

// `install` and `auth` subcommands (their parsing structs and entry points).
pub mod auth;
pub mod install;
