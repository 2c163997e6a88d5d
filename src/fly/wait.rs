//! Waiting for a machine state: one `GET …/wait` call ([`Client::wait_once`], at
//! most 60 s, Fly's proxy limit) and the loop over it under a caller's deadline
//! ([`Client::wait_for_state`]), pinned with `version` / `from_event_id`,
//! tolerating 408 ("not yet") and a 404 just after create. A client with a
//! [`WaitObserver`] ([`Client::observing_waits`]) waits in calls of at most
//! [`OBSERVED_WAIT_CALL`] and tells the observer after each one that ended "not yet",
//! so a caller upstream can say the call is still alive.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Req, RetryMode};
use super::{Client, Error, MachineState};

/// Longest single wait call Fly accepts.
pub const MAX_WAIT_CALL: Duration = Duration::from_secs(60);
/// Longest single wait call of a client with a [`WaitObserver`]: below the 10 s after
/// which MCP clients that reset their timeout on progress may give up on a silent call.
pub const OBSERVED_WAIT_CALL: Duration = Duration::from_secs(8);
/// How long after the wait starts a 404 is taken as "not visible yet".
const NOT_FOUND_GRACE: Duration = Duration::from_secs(10);

/// One wait call ended without the state being reached ("not yet", 408).
#[derive(Debug, Clone, PartialEq)]
pub struct WaitTick {
    pub app: String,
    pub machine_id: String,
    /// The states waited for, comma-joined as the API takes them.
    pub wanted: String,
    /// How long the server has waited so far (the calls that ended "not yet").
    pub waited: Duration,
}

/// Told about every [`WaitTick`] of the client it is attached to. Cheap to clone.
#[derive(Clone)]
pub struct WaitObserver(Arc<dyn Fn(WaitTick) + Send + Sync>);

impl WaitObserver {
    /// An observer calling `f` (which must not block).
    pub fn new(f: impl Fn(WaitTick) + Send + Sync + 'static) -> WaitObserver {
        WaitObserver(Arc::new(f))
    }
}

impl fmt::Debug for WaitObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WaitObserver")
    }
}

/// A state the wait endpoint can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitTarget {
    /// `started`.
    Started,
    /// `stopped`.
    Stopped,
    /// `suspended`.
    Suspended,
    /// `destroyed`.
    Destroyed,
    /// `failed`.
    Failed,
    /// No longer in a transient state.
    Settled,
}

impl WaitTarget {
    /// The API's string.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitTarget::Started => "started",
            WaitTarget::Stopped => "stopped",
            WaitTarget::Suspended => "suspended",
            WaitTarget::Destroyed => "destroyed",
            WaitTarget::Failed => "failed",
            WaitTarget::Settled => "settled",
        }
    }

    /// Whether a machine in `state` satisfies this target.
    pub fn is_met_by(self, state: &MachineState) -> bool {
        match self {
            WaitTarget::Started => *state == MachineState::Started,
            WaitTarget::Stopped => *state == MachineState::Stopped,
            WaitTarget::Suspended => *state == MachineState::Suspended,
            WaitTarget::Destroyed => *state == MachineState::Destroyed,
            WaitTarget::Failed => *state == MachineState::Failed,
            WaitTarget::Settled => !state.is_transient() && *state != MachineState::Missing,
        }
    }
}

/// Parameters of one wait call.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitParams {
    /// States to wait for (any of them); empty means `started`.
    pub states: Vec<WaitTarget>,
    /// Server-side timeout, clamped to 1–60 s.
    pub timeout: Duration,
    /// Pin to this machine version.
    pub version: Option<String>,
    /// Only events after this one count.
    pub from_event_id: Option<String>,
}

impl Default for WaitParams {
    fn default() -> Self {
        WaitParams {
            states: vec![WaitTarget::Started],
            timeout: MAX_WAIT_CALL,
            version: None,
            from_event_id: None,
        }
    }
}

/// What a successful wait answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitOutcome {
    /// Always true on success.
    #[serde(default)]
    pub ok: bool,
    /// The state reached (older servers leave it out).
    #[serde(default)]
    pub state: Option<MachineState>,
    /// The version the state belongs to.
    #[serde(default)]
    pub version: Option<String>,
    /// The event that reached the state (feed it to `from_event_id`).
    #[serde(default)]
    pub event_id: Option<String>,
}

impl Client {
    /// A clone whose waits ([`Client::wait_for_state`]) are cut into calls of at most
    /// [`OBSERVED_WAIT_CALL`], each "not yet" reported to `observer`.
    pub fn observing_waits(&self, observer: WaitObserver) -> Client {
        let mut client = self.clone();
        client.wait_observer = Some(observer);
        client
    }

    /// Wait for Machine State: `GET /v1/apps/{app_name}/machines/{machine_id}/wait`
    /// (one call, at most 60 s). A 408 means "not reached yet" and is returned as
    /// an error with status 408, not retried.
    pub async fn wait_once(
        &self,
        app: &str,
        machine_id: &str,
        params: &WaitParams,
    ) -> Result<WaitOutcome, Error> {
        let secs = params.timeout.as_secs().clamp(1, MAX_WAIT_CALL.as_secs());
        let states = if params.states.is_empty() {
            WaitTarget::Started.as_str().to_owned()
        } else {
            params
                .states
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let req = Req::machine("wait_machine", Method::GET, app, machine_id, &["wait"])
            .query("state", states)
            .query("timeout", secs)
            .query_opt("version", params.version.as_deref())
            .query_opt("from_event_id", params.from_event_id.as_deref())
            .retry(RetryMode::Wait)
            .timeout(Duration::from_secs(secs) + self.default_timeout());
        self.send(req).await?.json()
    }

    /// Waits until the machine reaches one of `targets`, looping wait calls of at
    /// most 60 s under `deadline`. Tolerates 408 (keeps waiting) and a 404 in the
    /// first seconds (a machine just created may not be visible yet). When the
    /// server does not say which state was reached, reads the machine.
    pub async fn wait_for_state(
        &self,
        app: &str,
        machine_id: &str,
        targets: &[WaitTarget],
        version: Option<&str>,
        from_event_id: Option<&str>,
        deadline: Duration,
    ) -> Result<WaitOutcome, Error> {
        let started = Instant::now();
        let targets: Vec<WaitTarget> = if targets.is_empty() {
            vec![WaitTarget::Started]
        } else {
            targets.to_vec()
        };
        let wanted = targets
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut pause = Duration::from_millis(50);
        // What the server says it waited: the sum of the calls that ended "not yet".
        let mut waited = Duration::ZERO;
        loop {
            let elapsed = started.elapsed();
            let Some(remaining) = deadline.checked_sub(elapsed).filter(|r| !r.is_zero()) else {
                let last_state = self
                    .get_machine(app, machine_id)
                    .await
                    .ok()
                    .map(|m| m.state.to_string());
                return Err(Error::Timeout {
                    op: "wait_for_state",
                    machine_id: machine_id.to_owned(),
                    wanted,
                    waited: elapsed,
                    last_state,
                });
            };
            let longest = if self.wait_observer.is_some() {
                OBSERVED_WAIT_CALL
            } else {
                MAX_WAIT_CALL
            };
            let params = WaitParams {
                states: targets.clone(),
                timeout: remaining.min(longest),
                version: version.map(str::to_owned),
                from_event_id: from_event_id.map(str::to_owned),
            };
            let call = tokio::time::timeout(
                remaining + Duration::from_secs(1),
                self.wait_once(app, machine_id, &params),
            )
            .await;
            let err = match call {
                Err(_elapsed) => continue,
                Ok(Ok(mut outcome)) => {
                    if outcome.state.is_none() {
                        outcome.state = self
                            .get_machine(app, machine_id)
                            .await
                            .ok()
                            .map(|m| m.state);
                    }
                    return Ok(outcome);
                }
                Ok(Err(e)) => e,
            };
            if err.status() == Some(408) {
                waited +=
                    Duration::from_secs(params.timeout.as_secs().clamp(1, MAX_WAIT_CALL.as_secs()));
                if let Some(observer) = &self.wait_observer {
                    (observer.0)(WaitTick {
                        app: app.to_owned(),
                        machine_id: machine_id.to_owned(),
                        wanted: wanted.clone(),
                        waited,
                    });
                }
                // "Not yet": the call itself took its time; a short pause keeps a
                // server that answers 408 at once from being hammered.
                tokio::time::sleep(pause.min(remaining)).await;
                continue;
            }
            if err.is_not_found() {
                if targets.contains(&WaitTarget::Destroyed) && started.elapsed() > NOT_FOUND_GRACE {
                    return Ok(WaitOutcome {
                        ok: true,
                        state: Some(MachineState::Destroyed),
                        version: None,
                        event_id: None,
                    });
                }
                if started.elapsed() < NOT_FOUND_GRACE {
                    tokio::time::sleep(pause.min(remaining)).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
            if err.is_retryable() {
                tokio::time::sleep(pause.min(remaining)).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                continue;
            }
            return Err(err);
        }
    }
}
