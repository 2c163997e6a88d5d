//! The MCP layer (rmcp): transports, the tool catalog, schemas, rendering, and the
//! safety gates every tool passes through (modes, confirmation, scope, redaction,
//! output cap, audit).
//!
//! Adding a tool: put it in its toolset's file (`network.rs`, ...; a file of its own,
//! named after the tool, in `observe/`, `provision/` or `fleet/`) as a `ToolInfo`
//! constant, an args struct (serde + schemars, `deny_unknown_fields`,
//! bounds as schemars attributes; app names, machine and volume ids and regions as the
//! types of [`args`], whose schemas are written once), an output struct implementing [`ToolOutput`], and a
//! body `async fn(ToolContext, Args) -> Result<Output, ToolError>`; list it in that
//! file's `tools()`. Declare it with [`ToolDef::read`], [`ToolDef::write`] or
//! [`ToolDef::destructive`] (plan + run; the framework adds `confirm`). A new toolset
//! file is joined in [`Catalog::all`]. Never bypass the [`gate::Gate`].
//!
//! Knows rmcp and JSON Schema; calls [`crate::workflows`] only.

pub mod args;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod confirm_token;
pub mod context;
pub mod error;
pub mod exec;
pub mod fleet;
pub mod gate;
pub mod hosting;
pub mod http;
pub mod network;
pub mod observe;
pub mod progress;
pub mod provision;
pub mod redact;
pub mod reference;
pub mod render;
pub mod safety;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod tasks;
pub mod untrusted;

pub use catalog::{Catalog, DestroyPlan, ToolDef, ToolInfo, ToolKind, ToolOutput, Toolset};
pub use context::{Steering, ToolContext};
pub use error::ToolError;
pub use gate::{Caller, Confirmer, Gate, Outcome};
pub use progress::Reporter;
pub use redact::Redactor;
pub use safety::{ConfirmMode, Policy, PolicyOptions, Selection};
pub use server::McpServer;
