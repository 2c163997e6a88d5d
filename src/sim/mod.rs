//! A faithful, stateful, in-memory simulator of Fly's platform (axum, loopback only):
//! the Machines REST API, GraphQL, the logs API and a `/__sim/` control API.
//!
//! Has its own wire types and JSON builders written from the spec; it must never
//! import anything from `crate::fly` (a shared serde mistake would pass every test).
