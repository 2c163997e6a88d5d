//! Machine lifecycle and inspection: update (with `current_version`), destroy,
//! start, stop, suspend, restart, signal, cordon/uncordon, events, versions, ps
//! and exec. Every mutating call carries the lease nonce when one is given.

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Req, RetryMode};
use super::{Client, Error, LeaseNonce, Machine, MachineConfig, MachineEvent, null_as_default};

/// Signals the signal endpoint accepts (the spec's `SignalRequest.signal` enum).
pub const SIGNALS: [&str; 14] = [
    "SIGABRT", "SIGALRM", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGKILL", "SIGPIPE", "SIGQUIT",
    "SIGSEGV", "SIGTERM", "SIGTRAP", "SIGUSR1", "SIGUSR2",
];

/// Signals stop and restart accept: the spec's `StopRequest.signal` and restart
/// `signal` query enums (also `fly.StopConfig.signal`) list only these seven.
pub const STOP_SIGNALS: [&str; 7] = [
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM",
];

/// Body of a machine update.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMachine {
    /// The full new config (read the machine, change it, send it back).
    pub config: MachineConfig,
    /// Optimistic concurrency: the version the change is based on (409 if stale).
    pub current_version: Option<String>,
    /// Leave the machine `created` instead of starting it.
    pub skip_launch: Option<bool>,
    /// Require at least this secrets version.
    pub min_secrets_version: Option<u64>,
    /// Rename the machine.
    pub name: Option<String>,
    /// Move to another region.
    pub region: Option<String>,
    /// Don't re-register services with the proxy yet.
    pub skip_service_registration: Option<bool>,
}

/// How to stop a machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StopOptions {
    /// Signal to send first (default: the image's / `stop_config`'s).
    pub signal: Option<String>,
    /// How long to wait before killing.
    pub timeout: Option<Duration>,
}

/// How to restart a machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestartOptions {
    /// Signal to stop with.
    pub signal: Option<String>,
    /// How long to wait before killing.
    pub timeout: Option<Duration>,
}

/// What a start answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartResult {
    /// The state before the start.
    #[serde(default, deserialize_with = "null_as_default")]
    pub previous_state: String,
    /// The machine moved host.
    #[serde(default, deserialize_with = "null_as_default")]
    pub migrated: bool,
    /// The new host, when migrated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub new_host: String,
}

/// One config version of a machine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineVersion {
    /// Version ULID.
    #[serde(default, deserialize_with = "null_as_default")]
    pub version: String,
    /// The config of that version.
    pub user_config: Option<MachineConfig>,
}

/// A listening socket of a guest process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenSocket {
    /// Address and port.
    #[serde(default, deserialize_with = "null_as_default")]
    pub address: String,
    /// `tcp` / `udp`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub proto: String,
}

/// A process in the guest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pid: i64,
    /// Command line.
    #[serde(default, deserialize_with = "null_as_default")]
    pub command: String,
    /// CPU usage.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cpu: f64,
    /// Resident memory in bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rss: u64,
    /// Run time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rtime: u64,
    /// System time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stime: u64,
    /// Working directory.
    #[serde(default, deserialize_with = "null_as_default")]
    pub directory: String,
    /// Listening sockets.
    #[serde(default, deserialize_with = "null_as_default")]
    pub listen_sockets: Vec<ListenSocket>,
}

/// A command to run in a machine (not interactive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecRequest {
    /// Argv.
    pub command: Vec<String>,
    /// How long the command may run.
    pub timeout: Duration,
    /// Data for stdin.
    pub stdin: Option<String>,
    /// Container to run in (multi-container machines).
    pub container: Option<String>,
}

/// The result of an exec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Exit code.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exit_code: i64,
    /// Signal that ended it (0 for none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub exit_signal: i64,
    /// Standard output.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stdout: String,
    /// Standard error.
    #[serde(default, deserialize_with = "null_as_default")]
    pub stderr: String,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct WireStop<'a> {
    signal: Option<&'a str>,
    timeout: Option<String>,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct WireExec<'a> {
    command: &'a [String],
    timeout: u64,
    stdin: Option<&'a str>,
    container: Option<&'a str>,
}

/// A Go duration string for whole seconds (`10s`) or milliseconds (`1500ms`).
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn check_signal(signal: &str, allowed: &[&str]) -> Result<(), Error> {
    if allowed.contains(&signal) {
        Ok(())
    } else {
        Err(Error::invalid(
            "signal",
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

/// The exec answer when `body` is the `flydv1.ExecResponse` document: a JSON object
/// with at least one of its fields (so a command whose raw output happens to be some
/// other JSON is not mistaken for it).
fn exec_document(body: &[u8]) -> Option<ExecResult> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let known = ["exit_code", "exit_signal", "stdout", "stderr"];
    if !known.iter().any(|k| object.contains_key(*k)) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// Whether `machine` carries the change `body` asked for: every field of the config we
/// sent has the value we sent (Fly may add defaults to a stored config, so the read
/// config is allowed to hold more).
fn update_applied(machine: &Machine, body: &UpdateMachine) -> bool {
    let (Some(config), Ok(sent)) = (&machine.config, serde_json::to_value(&body.config)) else {
        return false;
    };
    let Ok(read) = serde_json::to_value(config) else {
        return false;
    };
    json_within(&sent, &read)
}

/// `small` is contained in `big`: objects key by key (absent or null in `small` is
/// no constraint), everything else equal.
fn json_within(small: &serde_json::Value, big: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (small, big) {
        (Value::Object(s), Value::Object(b)) => s.iter().all(|(k, v)| match b.get(k) {
            Some(bv) => json_within(v, bv),
            None => v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty),
        }),
        (Value::Array(s), Value::Array(b)) => {
            s.len() == b.len() && s.iter().zip(b).all(|(x, y)| json_within(x, y))
        }
        _ => small == big,
    }
}

impl Req {
    /// A lifecycle action, `POST /v1/apps/{app}/machines/{machine_id}/{action}`, under
    /// the lease when one is given; repeated after an ambiguous failure (a start or
    /// suspend that then meets the machine already on its way is sorted out by
    /// `Client::under_way`).
    fn machine_action(
        op: &'static str,
        app: &str,
        machine_id: &str,
        action: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Req {
        Req::machine(op, Method::POST, app, machine_id, &[action])
            .nonce(nonce)
            .retry(RetryMode::Safe)
    }
}

impl Client {
    /// Update Machine: `POST /v1/apps/{app_name}/machines/{machine_id}` (409 when
    /// `current_version` is stale or someone else holds the lease).
    pub async fn update_machine(
        &self,
        app: &str,
        machine_id: &str,
        body: &UpdateMachine,
        nonce: Option<&LeaseNonce>,
    ) -> Result<Machine, Error> {
        let mut req = Req::machine("update_machine", Method::POST, app, machine_id, &[])
            .json(body)?
            .nonce(nonce);
        let Some(based_on) = body.current_version.as_deref() else {
            return self.send(req).await?.json();
        };
        // A stale version answers 409 and changes nothing, so a retry is safe.
        req = req.retry(RetryMode::Safe);
        let (sent, ambiguous) = self.send_noting_ambiguity(req).await;
        match sent {
            Ok(resp) => resp.json(),
            // A 409 after a retry that followed an ambiguous failure (5xx, reset,
            // timeout) may be our own first attempt: it applied, bumped the version,
            // and only its answer was lost. Read the machine and compare before saying
            // nothing changed (issue 18 item 11).
            Err(e) if ambiguous && e.status() == Some(409) => {
                let now = self.get_machine(app, machine_id).await?;
                if now.version != based_on && update_applied(&now, body) {
                    tracing::debug!(
                        app,
                        machine_id,
                        "409 after an ambiguous update: the first attempt applied"
                    );
                    Ok(now)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Destroy Machine: `DELETE /v1/apps/{app_name}/machines/{machine_id}`; to kill a
    /// running one it sends `?force=true&kill=true`: the spec and docs name the flag
    /// `force`, fly-go (`flaps/flaps_machines.go`, `Destroy`) sends `kill`, so both go.
    pub async fn destroy_machine(
        &self,
        app: &str,
        machine_id: &str,
        force: bool,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        let mut req =
            Req::machine("destroy_machine", Method::DELETE, app, machine_id, &[]).nonce(nonce);
        if force {
            req = req.query("force", "true").query("kill", "true");
        }
        match self.send(req).await {
            Ok(_) => Ok(()),
            // A retry whose first attempt went through (answered with a 5xx or a reset)
            // meets the machine destroyed or on its way: 412 `unable to destroy machine
            // from current state: 'destroyed'`. That is the destroy done, not a failure.
            Err(e) if e.status() == Some(412) => match self.get_machine(app, machine_id).await {
                Ok(m)
                    if matches!(
                        m.state,
                        super::MachineState::Destroyed | super::MachineState::Destroying
                    ) =>
                {
                    tracing::debug!(app, machine = machine_id, error = %e, "destroy refused, but the machine is already destroyed");
                    Ok(())
                }
                Err(look) if look.is_not_found() => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Start Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/start`.
    pub async fn start_machine(
        &self,
        app: &str,
        machine_id: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<StartResult, Error> {
        let req = Req::machine_action("start_machine", app, machine_id, "start", nonce);
        let resp = match self.send(req).await {
            Ok(resp) => resp,
            Err(e) => {
                use super::MachineState as S;
                self.under_way(app, machine_id, e, |s| {
                    matches!(s, S::Starting | S::Started)
                })
                .await?;
                return Ok(StartResult::default());
            }
        };
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(StartResult::default());
        }
        resp.json()
    }

    /// After a failed action: `Ok` when the failure is a 412 (`failed_precondition:
    /// unable to start machine from current state: 'starting'`) and the machine is
    /// already where the action leads (`arrived`). That is the answer to a retry whose
    /// first attempt took effect but was answered with a 5xx or a reset (the retry is
    /// `Safe`); reporting it as a failure would be a false outcome. Anything else: `err`.
    async fn under_way(
        &self,
        app: &str,
        machine_id: &str,
        err: Error,
        arrived: impl Fn(&super::MachineState) -> bool,
    ) -> Result<(), Error> {
        if err.status() != Some(412) {
            return Err(err);
        }
        match self.get_machine(app, machine_id).await {
            Ok(m) if arrived(&m.state) => {
                tracing::debug!(app, machine = machine_id, error = %err, "action refused, but the machine is already on its way");
                Ok(())
            }
            _ => Err(err),
        }
    }

    /// Stop Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/stop` (body `{signal, timeout}`).
    pub async fn stop_machine(
        &self,
        app: &str,
        machine_id: &str,
        opts: &StopOptions,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        if let Some(sig) = &opts.signal {
            check_signal(sig, &STOP_SIGNALS)?;
        }
        let body = WireStop {
            signal: opts.signal.as_deref(),
            timeout: opts.timeout.map(go_duration),
        };
        let req =
            Req::machine_action("stop_machine", app, machine_id, "stop", nonce).json(&body)?;
        self.send(req).await?;
        Ok(())
    }

    /// Suspend Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/suspend`.
    pub async fn suspend_machine(
        &self,
        app: &str,
        machine_id: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        use super::MachineState as S;
        match self
            .simple_action("suspend_machine", app, machine_id, "suspend", nonce)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                self.under_way(app, machine_id, e, |s| {
                    matches!(s, S::Suspending | S::Suspended)
                })
                .await
            }
        }
    }

    /// Restart Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/restart` (`?signal=&timeout=`).
    pub async fn restart_machine(
        &self,
        app: &str,
        machine_id: &str,
        opts: &RestartOptions,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        if let Some(sig) = &opts.signal {
            check_signal(sig, &STOP_SIGNALS)?;
        }
        let req = Req::machine_action("restart_machine", app, machine_id, "restart", nonce)
            .query_opt("signal", opts.signal.as_deref())
            .query_opt("timeout", opts.timeout.map(go_duration));
        self.send(req).await?;
        Ok(())
    }

    /// Signal Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/signal` (body `{signal}`).
    pub async fn signal_machine(
        &self,
        app: &str,
        machine_id: &str,
        signal: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        check_signal(signal, &SIGNALS)?;
        let req = Req::machine("signal_machine", Method::POST, app, machine_id, &["signal"])
            .json(&serde_json::json!({ "signal": signal }))?
            .nonce(nonce);
        self.send(req).await?;
        Ok(())
    }

    /// Cordon Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/cordon`.
    pub async fn cordon_machine(
        &self,
        app: &str,
        machine_id: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        self.simple_action("cordon_machine", app, machine_id, "cordon", nonce)
            .await
    }

    /// Uncordon Machine: `POST /v1/apps/{app_name}/machines/{machine_id}/uncordon`.
    pub async fn uncordon_machine(
        &self,
        app: &str,
        machine_id: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        self.simple_action("uncordon_machine", app, machine_id, "uncordon", nonce)
            .await
    }

    async fn simple_action(
        &self,
        op: &'static str,
        app: &str,
        machine_id: &str,
        action: &str,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        self.send(Req::machine_action(op, app, machine_id, action, nonce))
            .await?;
        Ok(())
    }

    /// List Machine Events: `GET /v1/apps/{app_name}/machines/{machine_id}/events?limit=` (newest first, limit ≤ 50).
    pub async fn machine_events(
        &self,
        app: &str,
        machine_id: &str,
        limit: u32,
    ) -> Result<Vec<MachineEvent>, Error> {
        let req = Req::machine("machine_events", Method::GET, app, machine_id, &["events"])
            .query("limit", limit.clamp(1, 50));
        self.send(req).await?.json()
    }

    /// List Machine Versions: `GET /v1/apps/{app_name}/machines/{machine_id}/versions`.
    pub async fn machine_versions(
        &self,
        app: &str,
        machine_id: &str,
    ) -> Result<Vec<MachineVersion>, Error> {
        let req = Req::machine(
            "machine_versions",
            Method::GET,
            app,
            machine_id,
            &["versions"],
        );
        self.send(req).await?.json()
    }

    /// List Processes: `GET /v1/apps/{app_name}/machines/{machine_id}/ps`.
    pub async fn machine_ps(&self, app: &str, machine_id: &str) -> Result<Vec<ProcessInfo>, Error> {
        let req = Req::machine("machine_ps", Method::GET, app, machine_id, &["ps"]);
        self.send(req).await?.json()
    }

    /// Execute Command: `POST /v1/apps/{app_name}/machines/{machine_id}/exec`
    /// (body `{command: [...], timeout}`). The answer is decoded as the
    /// `flydv1.ExecResponse` JSON document whatever its content type: the spec lists
    /// that schema under both `application/octet-stream` and `application/json`, and
    /// fly-go (`flaps/flaps_machines.go`, `Exec`) decodes JSON without looking at the
    /// type. Only bytes that are not that document are taken as raw stdout.
    pub async fn exec(
        &self,
        app: &str,
        machine_id: &str,
        exec: &ExecRequest,
    ) -> Result<ExecResult, Error> {
        if exec.command.is_empty() {
            return Err(Error::invalid("command", "must not be empty"));
        }
        let secs = exec.timeout.as_secs().max(1);
        let body = WireExec {
            command: &exec.command,
            timeout: secs,
            stdin: exec.stdin.as_deref(),
            container: exec.container.as_deref(),
        };
        let req = Req::machine("exec", Method::POST, app, machine_id, &["exec"])
            .json(&body)?
            .timeout(Duration::from_secs(secs) + self.default_timeout());
        let resp = self.send(req).await?;
        if let Some(result) = exec_document(&resp.body) {
            return Ok(result);
        }
        let is_json = resp
            .header("content-type")
            .is_some_and(|ct| ct.contains("json"));
        if is_json {
            // A JSON answer that is not the exec document: name the mismatch.
            resp.json()
        } else {
            Ok(ExecResult {
                stdout: String::from_utf8_lossy(&resp.body).into_owned(),
                ..ExecResult::default()
            })
        }
    }
}
