//! The opt-in toolsets (network, exec, hosting) end to end: an rmcp client ↔ the
//! server (every toolset enabled, confirmation by argument, an audit log) ↔ the
//! simulator's demo world on 127.0.0.1:0. Effects are checked in the simulator's own
//! state, never through the client under test.

mod exec;
mod hosting;
mod network;
mod toolsets;

use fly_machines_mcp::{
    sim::Scenario,
    tools::{ConfirmMode, PolicyOptions, Selection},
    workflows::secret_refs::RefPolicyOptions,
};

pub use crate::support::{CAP, Harness};

impl Harness {
    /// The demo world, `--toolsets all`, `--confirm argument`, an audit log.
    pub async fn opt_in() -> Harness {
        Harness::opt_in_with(RefPolicyOptions::default()).await
    }

    /// [`Harness::opt_in`] with key files written (and secret files read) under `dir`.
    pub async fn opt_in_writing_to(dir: &std::path::Path) -> Harness {
        Harness::opt_in_with(RefPolicyOptions {
            dir: Some(dir.to_path_buf()),
            ..RefPolicyOptions::default()
        })
        .await
    }

    async fn opt_in_with(secret_refs: RefPolicyOptions) -> Harness {
        let opts = PolicyOptions {
            selection: Selection {
                toolsets: Some(vec!["all".into()]),
                ..Selection::default()
            },
            confirm: ConfirmMode::Argument,
            secret_refs,
            ..PolicyOptions::default()
        };
        Harness::start(Scenario::Demo, &opts, tempfile::tempdir().unwrap()).await
    }

    /// A started machine of `app`, read from the simulator's state.
    pub fn started_machine(&self, app: &str) -> String {
        let a = self.app_state(app).unwrap();
        a["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["state"] == "started")
            .and_then(|m| m["id"].as_str())
            .unwrap_or_else(|| panic!("no started machine in {app}: {a:#}"))
            .to_owned()
    }
}

/// The demo scenario's app.
pub const DEMO_APP: &str = "cdn-demo";
