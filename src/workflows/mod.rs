//! The domain layer: plans, steps, waits and rollback for workflow-sized operations
//! (provision, rolling update, teardown, pools), composed from `crate::fly` calls.
//!
//! Never sees reqwest, rmcp or generated GraphQL types.
