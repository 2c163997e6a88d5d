//! The domain layer: plans, steps, waits and rollback for workflow-sized operations
//! (provision, rolling update, teardown, pools), composed from `crate::fly` calls.
//!
//! Never sees reqwest, rmcp or generated GraphQL types.

pub mod destroy;
pub mod diagnose;
mod error;
pub mod exec;
pub mod hosting;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod observe;
pub mod pool;
pub mod provision;
pub mod scale;
pub mod sched;
pub mod secret_refs;
pub mod secrets;
pub mod status;
pub mod teardown;
pub mod update;
pub mod volumes;

pub use error::Error;

/// Machine metadata key marking a machine as created by this server (`--owned-only`
/// mutates only machines carrying it with [`OWNER_METADATA_VALUE`]).
pub const OWNER_METADATA_KEY: &str = "fly_mcp_owner";
/// The value of [`OWNER_METADATA_KEY`] this server writes.
pub const OWNER_METADATA_VALUE: &str = "fly-machines-mcp";
