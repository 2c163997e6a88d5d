//! The wire layer: a typed async client for Fly's Machines REST API, GraphQL API and
//! logs API, with retries, pacing, waits, leases and idempotent creates built in.
//!
//! Knows nothing of MCP. Exposes domain types (converted from wire types in the file
//! that defines them); generated GraphQL types and reqwest never leave this module.

mod actions;
mod apps;
mod attenuate;
mod certificates;
mod client;
mod error;
mod graphql;
mod identity;
mod ips;
mod leases;
mod logs;
pub mod macaroon;
mod machines;
mod org_machines;
mod pacing;
mod platform;
mod secrets;
mod token;
pub mod validate;
mod volumes;
mod wait;

pub use actions::{
    ExecRequest, ExecResult, ListenSocket, MachineVersion, ProcessInfo, RestartOptions, SIGNALS,
    STOP_SIGNALS, StartResult, StopOptions, UpdateMachine,
};
pub use apps::{App, CreateApp, CreatedApp, Organization};
pub use attenuate::{Attenuation, CallAccess, UnixClock};
pub use certificates::{
    Certificate, CertificateEntry, CertificateValidation, CertificateValidationError,
    DnsRequirements, DnsTarget, OwnershipRecord,
};
pub use client::{
    Client, ClientConfig, DEFAULT_API_BASE_URL, DEFAULT_API_HOSTNAME, RequestIds, RetryNotices,
    RetryPolicy,
};
pub use error::{Error, GraphQlError, TransportKind};
pub use graphql::VmSize;
pub use identity::Viewer;
pub use ips::{AllocateIp, AppIps, IpAssignment, IpNetwork, IpPair, IpType};
pub use leases::Lease;
pub use logs::{LogEntry, LogPage, LogQuery};
pub use machines::{
    AutostopMode, CheckStatus, CreateMachine, ExitEvent, GuestConfig, IDEMPOTENCY_KEY_METADATA,
    ImageRef, InitConfig, LeaseInfo, Machine, MachineCheck, MachineConfig, MachineEvent,
    MachineFilter, MachinePort, MachineService, MachineState, Mount, RestartPolicy, StopConfig,
};
pub use org_machines::{CREATOR_METADATA_KEY, OrgMachine};
pub use platform::{Region, TokenDetail, TokenInfo};
pub use secrets::{Secret, SecretsVersion, is_secret_name};
pub use token::{AuthScheme, MacaroonSummary, Token};
pub use volumes::{
    CreateVolume, ExtendedVolume, Snapshot, UpdateVolume, VOLUME_GOING_STATES, Volume,
};
pub use wait::{OBSERVED_WAIT_CALL, WaitObserver, WaitOutcome, WaitParams, WaitTarget, WaitTick};

/// The nonce of a lease held on a machine; sent as `fly-machine-lease-nonce` on
/// every mutating call made under the lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LeaseNonce(String);

impl LeaseNonce {
    /// Wraps a nonce string.
    pub fn new(nonce: impl Into<String>) -> LeaseNonce {
        LeaseNonce(nonce.into())
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Deserializes `null` (or a missing field, with `#[serde(default)]`) as the
/// type's default: Fly sends `"metadata": null`, `"env": null` and the like.
pub(crate) fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}
