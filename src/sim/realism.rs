//! The realistic profile: the ways Fly departs from an ideal platform that a client has
//! to live with — eventual consistency, states that linger, keys that are forgotten.
//! One field per behaviour, each with the source that shows Fly behaves so (or that a
//! production client defends against it). On by default (`SimConfig::for_tests`,
//! `stepped`, `sandbox`, `sim`); [`Realism::off`] (`sim --realism off`) is the ideal
//! platform the simulator modelled before.
//!
//! Durations are simulator milliseconds and are **not** multiplied by
//! `SimConfig::time_scale`: they model how long Fly takes to agree with itself, which a
//! faster machine does not shorten, and a test that must hit a window has to be able to
//! count on it. Each one is small, so the suite stays quick.
//!
//! Adding a behaviour: add a field here (documented with its source, zero/`None` in
//! [`Realism::off`]), apply it where the rule lives, give it a stepped-mode test in
//! `tests/it/sim/`, and list it under `simulator_rules` in `openapi/divergences.yaml`
//! when the simulator's choice of value or shape is not Fly's documented one.

use super::SimError;

/// The region the realistic profile keeps full (Madrid: a real region no test or
/// scenario places anything in otherwise).
pub const FULL_REGION: &str = "mad";

/// How far the simulator departs from an ideal platform toward Fly's real behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Realism {
    /// After `POST /v1/apps` a new app answers 404 to every call naming it (REST,
    /// GraphQL `app`, logs) and is missing from app lists for this long; its name is
    /// taken meanwhile. Source: fly-go `flaps/flaps_apps.go` (`WaitForApp`, retrying
    /// 404 and 401 for up to a minute through `flaps/retry.go`), called by flyctl after
    /// every `CreateApp` (`internal/command/apps/create.go`, `launch/launch.go`,
    /// `machine/run.go`).
    pub new_app_hidden_ms: u64,
    /// A machine created or updated without `min_secrets_version` boots with the app's
    /// secrets as they were this long ago (a secrets write is not yet seen by every
    /// host). Source: flyctl passes the version the secrets write returned on every
    /// launch (`internal/appsecrets/minvers.go`, used by `deploy/machines_launchinput.go`,
    /// `machine/clone.go`, `scale/count_machines.go`); the spec documents
    /// `min_secrets_version` on create and update.
    pub secrets_propagation_ms: u64,
    /// A destroyed volume stays listed, in `scheduling_destroy`, then `pending_destroy`,
    /// then `destroying`, for this long in each state before it is gone. Source: fly-go
    /// `flaps/flaps_volumes.go` (`destroyedVolumeStates`, filtered out by `GetVolumes`)
    /// and flyctl `test/preflight/fly_volume_test.go` (a destroyed volume is listed in
    /// those states for a while).
    pub volume_destroy_step_ms: u64,
    /// How long `POST /v1/apps` remembers an `idempotency_key`; `None` keeps it as long
    /// as the app lives. Fly does not document the lifetime (the spec's
    /// `CreateAppRequest.idempotency_key` only promises a safe retry), so the simulator
    /// forgets keys after an hour: a client must not rely on a key for more than a
    /// retry.
    pub idempotency_key_ttl_ms: Option<u64>,
    /// `GET …/lease` answers the lease *with its nonce* to anyone who may read the app,
    /// so anyone can release or take over someone else's lease; a client must expect
    /// its lease to be cleared under it. Source: fly-go `machine_types.go`
    /// (`MachineLeaseData` carries `nonce`), read by flyctl `fly machine leases clear`
    /// (`internal/command/machine/leases.go`, `runLeaseClear`) to release another
    /// holder's lease. Off, only the holder learns the nonce (from its acquire).
    pub lease_nonce_visible: bool,
    /// A region whose hosts are full. A machine create there answers 422
    /// `{"status": "insufficient_capacity"}` and a volume create 409
    /// `"aborted: no capacity"`; nothing is created. Source: fly-go
    /// `flaps/flaps_error.go` (`CapacityScopeOf`: `insufficient_capacity` is region
    /// scoped, "a proper 422 insufficient_capacity"; `flydNoCapacityPhrase`: "aborted: no
    /// capacity" is what flaps answers, as a 409, when every host refused a volume create
    /// or fork), and its `Suggestion` for the code ("Try choosing a different region").
    /// Which region is full, and that it stays full, are the simulator's choice
    /// (`openapi/divergences.yaml`); no test but the capacity ones uses it.
    pub full_region: Option<String>,
}

impl Realism {
    /// Fly as it behaves: every behaviour on, with small windows.
    pub fn realistic() -> Self {
        Realism {
            new_app_hidden_ms: 250,
            secrets_propagation_ms: 2_000,
            volume_destroy_step_ms: 150,
            idempotency_key_ttl_ms: Some(3_600_000),
            lease_nonce_visible: true,
            full_region: Some(FULL_REGION.to_owned()),
        }
    }

    /// The ideal platform: a new app is visible at once, secrets reach every launch at
    /// once, a destroyed volume is gone at once, keys are kept as long as the app, only
    /// a lease's holder knows its nonce and every region has room.
    pub fn off() -> Self {
        Realism {
            new_app_hidden_ms: 0,
            secrets_propagation_ms: 0,
            volume_destroy_step_ms: 0,
            idempotency_key_ttl_ms: None,
            lease_nonce_visible: false,
            full_region: None,
        }
    }

    /// Whether every behaviour is off.
    pub fn is_off(&self) -> bool {
        *self == Realism::off()
    }
}

impl Default for Realism {
    fn default() -> Self {
        Realism::realistic()
    }
}

impl std::str::FromStr for Realism {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "on" | "realistic" => Ok(Realism::realistic()),
            "off" | "ideal" => Ok(Realism::off()),
            other => Err(SimError::Config(format!(
                "realism {other:?}: expected on or off"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_and_off_is_ideal() {
        assert_eq!(Realism::default(), Realism::realistic());
        assert!(!Realism::realistic().is_off());
        assert!("off".parse::<Realism>().unwrap().is_off());
        assert_eq!("on".parse::<Realism>().unwrap(), Realism::realistic());
        assert!("sometimes".parse::<Realism>().is_err());
    }
}
