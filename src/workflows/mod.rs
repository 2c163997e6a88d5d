//! The domain layer: plans, steps, waits and rollback for workflow-sized operations
//! (provision, rolling update, teardown, pools), composed from `crate::fly` calls.
//!
//! Never sees reqwest, rmcp or generated GraphQL types.

pub mod cleanup;
pub mod destroy;
pub mod diagnose;
mod error;
pub mod exec;
pub mod hosting;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod observe;
pub mod outcome;
pub mod pool;
pub mod provision;
pub mod scale;
pub mod sched;
pub mod secret_refs;
pub mod secrets;
pub mod status;
pub mod teardown;
pub mod update;
pub mod usage;
pub mod volumes;

pub use error::{Error, NextStep};
pub use outcome::Outcome;

/// Machine metadata key marking a machine as created by this server (`--owned-only`
/// mutates only machines carrying it with [`OWNER_METADATA_VALUE`]).
pub const OWNER_METADATA_KEY: &str = "fly_mcp_owner";
/// The value of [`OWNER_METADATA_KEY`] this server writes.
pub const OWNER_METADATA_VALUE: &str = "fly-machines-mcp";

/// Whether this server created `m` (its [`OWNER_METADATA_KEY`] metadata).
pub fn is_owned(m: &crate::fly::Machine) -> bool {
    m.metadata(OWNER_METADATA_KEY) == Some(OWNER_METADATA_VALUE)
}

/// `--owned-only`: refused when `foreign` (machines this server did not create) names
/// any; `message` gets their ids, comma-joined.
pub(crate) fn refuse_foreign<'a>(
    foreign: impl IntoIterator<Item = &'a str>,
    message: impl FnOnce(String) -> String,
) -> Result<(), Error> {
    let foreign: Vec<&str> = foreign.into_iter().collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::Refused {
        rule: "--owned-only".to_owned(),
        message: message(foreign.join(", ")),
    })
}

/// [`refuse_foreign`] for `machines`: refused when any of them was not created by this
/// server ([`is_owned`]).
pub(crate) fn refuse_foreign_machines<'a>(
    machines: impl IntoIterator<Item = &'a crate::fly::Machine>,
    message: impl FnOnce(String) -> String,
) -> Result<(), Error> {
    refuse_foreign(
        machines
            .into_iter()
            .filter(|m| !is_owned(m))
            .map(|m| m.id.as_str()),
        message,
    )
}

/// Machine metadata key: the app secrets version this machine was launched with at
/// least (`min_secrets_version`), written whenever this server creates or updates a
/// machine knowing that version. Fly keeps no record of it a client can read back, and
/// what a server process keeps between calls is only caches (app ids, pool listings:
/// losing them costs a request, never a wrong answer), so a later clone (scale, pool
/// fill, refill, wipe) takes its `min_secrets_version` from here, as flyctl takes it from the version it remembers
/// after a secrets write (`internal/appsecrets/minvers.go`).
pub const SECRETS_VERSION_METADATA_KEY: &str = "fly_mcp_secrets_version";

/// The secrets version recorded in a config's metadata ([`SECRETS_VERSION_METADATA_KEY`]).
pub fn recorded_secrets_version(config: &crate::fly::MachineConfig) -> Option<u64> {
    config
        .metadata
        .get(SECRETS_VERSION_METADATA_KEY)
        .and_then(|v| v.parse().ok())
}

/// The highest secrets version recorded on any of `machines`: the floor a new machine
/// of their app must launch with (`min_secrets_version`) so it boots with the secrets
/// the others were given.
pub fn secrets_floor<'a>(
    machines: impl IntoIterator<Item = &'a crate::fly::Machine>,
) -> Option<u64> {
    machines
        .into_iter()
        .filter_map(|m| m.config.as_ref().and_then(recorded_secrets_version))
        .max()
}

/// Records `version` in `config` (see [`SECRETS_VERSION_METADATA_KEY`]); keeps a higher
/// one already there.
pub fn record_secrets_version(config: &mut crate::fly::MachineConfig, version: u64) {
    let version = recorded_secrets_version(config).map_or(version, |v| v.max(version));
    config
        .metadata
        .insert(SECRETS_VERSION_METADATA_KEY.to_owned(), version.to_string());
}

/// The full config of `m`, to base an update or a clone on. Refused while its host is
/// not reachable: Fly then fills only `incomplete_config` (API-NOTES §3; the spec's
/// `fly.Machine`), and posting that back — or cloning it — would drop what it lacks.
/// `purpose` names what was about to happen ("update", "clone as a template", …).
pub(crate) fn full_config(
    m: &crate::fly::Machine,
    purpose: &str,
) -> Result<crate::fly::MachineConfig, Error> {
    if !m.host_reachable() {
        return Err(Error::Refused {
            rule: "unreachable host".to_owned(),
            message: format!(
                "machine {} is on a host Fly cannot reach (host_status {}): only part of its config is known, so it cannot {purpose}; nothing was changed. Try again when app_status shows the host ok",
                m.id,
                m.host_status.as_deref().unwrap_or("unknown")
            ),
        });
    }
    m.config.clone().ok_or_else(|| Error::Invalid {
        field: "machine".to_owned(),
        rule: format!("machine {} came back without a config", m.id),
    })
}
