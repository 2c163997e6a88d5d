//! The wire layer: a typed async client for Fly's Machines REST API, GraphQL API and
//! logs API, with retries, pacing, waits, leases and idempotent creates built in.
//!
//! Knows nothing of MCP. Exposes domain types (converted from wire types in the file
//! that defines them); generated GraphQL types and reqwest never leave this module.
