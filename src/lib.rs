//! fly-machines-mcp: an MCP server that manages Fly.io apps, Machines, volumes, IPs,
//! secrets and certificates by calling Fly's Machines REST API and GraphQL API directly.
//!
//! Layers are one-way (see `ARCHITECTURE.md`):
//! `cli` → [`tools`] (MCP) → [`workflows`] (domain) → [`fly`] (wire).
//! [`sim`] is a self-contained simulator of Fly's APIs; it shares no wire types with [`fly`].

pub mod chain;
pub mod cli;
pub mod config;
pub mod fly;
pub mod sim;
pub mod tools;
pub mod workflows;
