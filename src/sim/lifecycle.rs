//! Machine lifecycle: the operations that move a machine between states (create,
//! start, stop, suspend, restart, update, destroy, signal, crash), the queue of due
//! transitions with their events, checks and log lines, and the automatic-mode ticker
//! that runs them in real time. Rules follow API-NOTES §2; durations come from the
//! latency model. Knows nothing of routing; errors are already Fly-shaped.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::config_rules::{
    check_current_version, check_same_region, mounted_volumes, required_config, skip_launch,
};
use super::http::ApiError;
use super::model::{
    App, Check, Effect, Event, EventTpl, Lease, MState, Machine, MachineVersion, Step, Target,
    World,
};
use super::platform;

/// One planned transition, relative to the previous one.
pub(crate) struct Plan {
    pub after_ms: u64,
    pub state: MState,
    pub event: Option<EventTpl>,
    pub effect: Effect,
    pub log: Option<String>,
}

pub(crate) fn plan(after_ms: u64, state: MState) -> Plan {
    Plan {
        after_ms,
        state,
        event: None,
        effect: Effect::None,
        log: None,
    }
}

impl Plan {
    pub(crate) fn event(mut self, kind: &'static str, source: &'static str) -> Self {
        self.event = Some(EventTpl {
            kind,
            source,
            request: None,
        });
        self
    }
    pub(crate) fn request(mut self, request: Value) -> Self {
        if let Some(e) = self.event.as_mut() {
            e.request = Some(request);
        }
        self
    }
    pub(crate) fn effect(mut self, effect: Effect) -> Self {
        self.effect = effect;
        self
    }
    pub(crate) fn log(mut self, line: impl Into<String>) -> Self {
        self.log = Some(line.into());
        self
    }
}

fn exit_request(
    at: u64,
    code: i64,
    signal: i64,
    oom: bool,
    requested: bool,
    restarting: bool,
) -> Value {
    json!({"exit_event": {"exit_code": code, "guest_exit_code": code, "signal": signal,
        "guest_signal": signal, "oom_killed": oom, "requested_stop": requested,
        "restarting": restarting, "exited_at": at}, "restart_count": 0})
}

/// Test convention: an image whose tag starts with `unhealthy` (e.g. `app:unhealthy-2`)
/// boots, but its health checks stay critical (a release that never listens).
pub(crate) fn unhealthy_image(config: &Value) -> bool {
    let image = config.get("image").and_then(Value::as_str).unwrap_or("");
    image
        .rsplit_once(':')
        .is_some_and(|(_, tag)| tag.starts_with("unhealthy"))
}

/// Test convention: an image whose tag starts with `failing` (e.g. `app:failing-1`)
/// never comes up: each start ends in `failed`, as a start whose boot errors does on Fly
/// (API-NOTES §2: starting →(error) failed).
pub(crate) fn failing_image(config: &Value) -> bool {
    let image = config.get("image").and_then(Value::as_str).unwrap_or("");
    image
        .rsplit_once(':')
        .is_some_and(|(_, tag)| tag.starts_with("failing"))
}

/// Started again `start_ms` later (after a restart, a crash or an update), its checks
/// passing.
fn restarted(start_ms: u64) -> Plan {
    plan(start_ms, MState::Started)
        .event("start", "flyd")
        .effect(Effect::ChecksPassing)
        .log(format!("Machine started in {start_ms}ms"))
}

/// The last step of a boot: started, or failed for a [`failing_image`].
fn boot_step(config: &Value, after_ms: u64, started_line: String) -> Plan {
    if failing_image(config) {
        plan(after_ms, MState::Failed)
            .event("exit", "flyd")
            .log("Error: the main process could not be started (exit code 1)")
    } else {
        plan(after_ms, MState::Started)
            .event("start", "flyd")
            .effect(Effect::ChecksPassing)
            .log(started_line)
    }
}

/// Health check names a config defines: `checks{name}` and `servicecheck-NN-TYPE-PORT`.
pub(crate) fn check_names(config: &Value) -> Vec<String> {
    let mut out: Vec<String> = config
        .get("checks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(services) = config.get("services").and_then(Value::as_array) {
        let mut n = 0;
        for s in services {
            let port = s.get("internal_port").and_then(Value::as_u64).unwrap_or(0);
            for c in s
                .get("checks")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let kind = c.get("type").and_then(Value::as_str).unwrap_or("tcp");
                out.push(format!("servicecheck-{n:02}-{kind}-{port}"));
                n += 1;
            }
        }
    }
    out
}

impl World {
    pub(crate) fn app_mut(&mut self, app: &str) -> Result<&mut App, ApiError> {
        self.apps
            .get_mut(app)
            .ok_or_else(|| ApiError::not_found("app not found"))
    }

    pub(crate) fn machine(&self, app: &str, id: &str) -> Result<&Machine, ApiError> {
        self.apps
            .get(app)
            .ok_or_else(|| ApiError::not_found("app not found"))?
            .machines
            .get(id)
            .ok_or_else(|| ApiError::not_found("machine not found"))
    }

    pub(crate) fn machine_mut(&mut self, app: &str, id: &str) -> Result<&mut Machine, ApiError> {
        self.apps
            .get_mut(app)
            .ok_or_else(|| ApiError::not_found("app not found"))?
            .machines
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("machine not found"))
    }

    /// Replaces the machine's pending transitions with `steps`.
    pub(crate) fn schedule(&mut self, app: &str, id: &str, steps: Vec<Plan>, now: u64) {
        let mut due = now;
        let mut entries = Vec::new();
        if let Ok(m) = self.machine_mut(app, id) {
            m.plan.clear();
            for p in steps {
                due = due.saturating_add(p.after_ms);
                m.plan.push_back(Step {
                    due,
                    state: p.state,
                    event: p.event,
                    effect: p.effect,
                    log: p.log,
                });
                entries.push(due);
            }
        }
        for due in entries {
            self.due_seq += 1;
            self.due.push(Reverse((
                due,
                self.due_seq,
                Target::Machine {
                    app: app.to_owned(),
                    id: id.to_owned(),
                },
            )));
        }
        self.scheduled_count = self.scheduled_count.wrapping_add(1);
    }

    pub(crate) fn schedule_volume(&mut self, app: &str, id: &str, due: u64) {
        self.due_seq += 1;
        self.due.push(Reverse((
            due,
            self.due_seq,
            Target::Volume {
                app: app.to_owned(),
                id: id.to_owned(),
            },
        )));
        self.scheduled_count = self.scheduled_count.wrapping_add(1);
    }

    /// The earliest pending transition, if any.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Runs every transition due at or before `now`, each at its own time.
    pub(crate) fn run_due(&mut self, now: u64) {
        while let Some(Reverse((due, _, _))) = self.due.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, _, target))) = self.due.pop() else {
                break;
            };
            match target {
                Target::Machine { app, id } => loop {
                    let step = match self.machine_mut(&app, &id) {
                        Ok(m) => match m.plan.front() {
                            Some(s) if s.due <= now => m.plan.pop_front(),
                            _ => None,
                        },
                        Err(_) => None,
                    };
                    let Some(step) = step else { break };
                    self.apply_step(&app, &id, step);
                },
                Target::Volume { app, id } => self.run_volume_due(&app, &id, now),
            }
        }
    }

    /// A volume's due transitions: `restoring` → `created`, and the states of a destroy
    /// under realism (the volume is removed when it reaches `destroyed`).
    fn run_volume_due(&mut self, app: &str, id: &str, now: u64) {
        let Some(a) = self.apps.get_mut(app) else {
            return;
        };
        let Some(v) = a.volumes.get_mut(id) else {
            return;
        };
        let mut changed = false;
        if v.ready_at.is_some_and(|t| t <= now) {
            v.ready_at = None;
            v.state = "created".into();
            changed = true;
        }
        while let Some((due, state)) = v.destroy_plan.front().copied() {
            if due > now {
                break;
            }
            v.destroy_plan.pop_front();
            v.state = state.to_owned();
            changed = true;
        }
        if v.state == "destroyed" {
            a.volumes.remove(id);
        }
        if changed {
            self.touch();
        }
    }

    fn apply_step(&mut self, app: &str, id: &str, step: Step) {
        let event_id = self.rng.ulid(step.due);
        let log_line = step.log.clone();
        let mut detach = false;
        if let Ok(m) = self.machine_mut(app, id) {
            m.state = step.state;
            m.updated_ms = step.due;
            if let Some(e) = step.event {
                m.events.push(Event {
                    id: event_id,
                    kind: e.kind.to_owned(),
                    status: step.state.as_str().to_owned(),
                    source: e.source.to_owned(),
                    timestamp: step.due,
                    request: e.request,
                });
            }
            match step.effect {
                Effect::None => {}
                Effect::ChecksPassing => {
                    let healthy = !unhealthy_image(m.config());
                    m.checks = check_names(m.config())
                        .into_iter()
                        .map(|name| Check {
                            name,
                            status: if healthy { "passing" } else { "critical" }.into(),
                            output: if healthy {
                                "Success"
                            } else {
                                "dial tcp: connect: connection refused"
                            }
                            .into(),
                            updated_ms: step.due,
                        })
                        .collect();
                }
                Effect::ChecksDown => {
                    for c in &mut m.checks {
                        c.status = "critical".into();
                        c.output = "the machine is not running".into();
                        c.updated_ms = step.due;
                    }
                }
                Effect::DetachVolumes => {
                    m.checks.clear();
                    m.lease = None;
                    detach = true;
                }
            }
        }
        if detach && let Some(a) = self.apps.get_mut(app) {
            for v in a.volumes.values_mut() {
                if v.attached_machine_id.as_deref() == Some(id) {
                    v.attached_machine_id = None;
                    v.attached_alloc_id = None;
                }
            }
        }
        if let Some(line) = log_line {
            self.log(app, id, step.due, &line);
        }
        self.touch();
    }

    /// A user's action begins: the machine enters `state` now, with the `kind` event.
    fn begin(&mut self, app: &str, id: &str, state: MState, kind: &str, now: u64) {
        if let Ok(m) = self.machine_mut(app, id) {
            m.state = state;
            m.updated_ms = now;
        }
        self.push_event(app, id, kind, "user", None, now);
    }

    /// Appends an event now (user-initiated actions).
    pub(crate) fn push_event(
        &mut self,
        app: &str,
        id: &str,
        kind: &str,
        source: &str,
        request: Option<Value>,
        now: u64,
    ) {
        let event_id = self.rng.ulid(now);
        if let Ok(m) = self.machine_mut(app, id) {
            m.events.push(Event {
                id: event_id,
                kind: kind.to_owned(),
                status: m.state.as_str().to_owned(),
                source: source.to_owned(),
                timestamp: now,
                request,
            });
            m.updated_ms = now;
        }
        self.touch();
    }

    /// 409 unless the caller holds the machine's lease (or nobody does).
    /// 503 while the machine's host is not reachable: flyd, which applies updates and
    /// lifecycle actions, cannot be asked (`POST /__sim/machines/{id}/host`).
    pub(crate) fn check_host(&self, app: &str, id: &str) -> Result<(), ApiError> {
        let m = self.machine(app, id)?;
        if m.host_reachable() {
            Ok(())
        } else {
            Err(ApiError::new(
                503,
                format!(
                    "unavailable: host of machine {id} is {} and cannot be reached",
                    m.host_status
                ),
            ))
        }
    }

    pub(crate) fn check_lease(
        &self,
        app: &str,
        id: &str,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<(), ApiError> {
        let m = self.machine(app, id)?;
        match m.live_lease(now) {
            Some(l) if Some(l.nonce.as_str()) != nonce => Err(ApiError::new(
                409,
                format!(
                    "aborted: machine ID {id} lease currently held by {}, expires at {}",
                    l.owner,
                    super::clock::rfc3339(l.expires_ms)
                ),
            )),
            _ => Ok(()),
        }
    }

    fn precondition(op: &str, state: MState) -> ApiError {
        ApiError::new(
            412,
            format!(
                "failed_precondition: unable to {op} machine from current state: '{}'",
                state.as_str()
            ),
        )
    }

    /// `POST …/start`.
    pub(crate) fn start_machine(
        &mut self,
        app: &str,
        id: &str,
        now: u64,
    ) -> Result<Value, ApiError> {
        let m = self.machine(app, id)?;
        let previous = m.state;
        let boot = match previous {
            MState::Created | MState::Stopped | MState::Failed => self.latency.start_ms,
            MState::Suspended => self.latency.resume_ms,
            MState::Started => {
                return Ok(json!({"previous_state": "started", "migrated": false, "new_host": ""}));
            }
            other => return Err(Self::precondition("start", other)),
        };
        let delay = self.delay(boot);
        let config = m.config().clone();
        self.begin(app, id, MState::Starting, "start", now);
        let resumed = previous == MState::Suspended;
        let line = if resumed {
            format!("Machine resumed in {delay}ms")
        } else {
            format!("Machine started in {delay}ms")
        };
        self.schedule(app, id, vec![boot_step(&config, delay, line)], now);
        Ok(json!({"previous_state": previous.as_str(), "migrated": false, "new_host": ""}))
    }

    /// `POST …/stop`.
    pub(crate) fn stop_machine(
        &mut self,
        app: &str,
        id: &str,
        signal: &str,
        now: u64,
    ) -> Result<Value, ApiError> {
        let state = self.machine(app, id)?.state;
        match state {
            MState::Started
            | MState::Starting
            | MState::Created
            | MState::Suspended
            | MState::Failed
            | MState::Restarting => {}
            MState::Stopped | MState::Stopping => return Ok(json!({"ok": true})),
            other => return Err(Self::precondition("stop", other)),
        }
        let signo = platform::signal_number(signal).unwrap_or(15);
        self.begin(app, id, MState::Stopping, "stop", now);
        let delay = self.delay(self.latency.stop_ms);
        let exit = exit_request(now.saturating_add(delay), 0, signo, false, true, false);
        self.schedule(
            app,
            id,
            vec![
                plan(delay, MState::Stopped)
                    .event("exit", "flyd")
                    .request(exit)
                    .effect(Effect::ChecksDown)
                    .log(format!("Sending signal {signal} to main child process")),
            ],
            now,
        );
        Ok(json!({"ok": true}))
    }

    /// `POST …/suspend`.
    pub(crate) fn suspend_machine(
        &mut self,
        app: &str,
        id: &str,
        now: u64,
    ) -> Result<Value, ApiError> {
        let state = self.machine(app, id)?.state;
        match state {
            MState::Started => {}
            MState::Suspended | MState::Suspending => return Ok(json!({"ok": true})),
            other => return Err(Self::precondition("suspend", other)),
        }
        self.begin(app, id, MState::Suspending, "suspend", now);
        let delay = self.delay(self.latency.suspend_ms);
        self.schedule(
            app,
            id,
            vec![
                plan(delay, MState::Suspended)
                    .event("suspend", "flyd")
                    .log("Virtual machine has been suspended"),
            ],
            now,
        );
        Ok(json!({"ok": true}))
    }

    /// `POST …/restart`.
    pub(crate) fn restart_machine(
        &mut self,
        app: &str,
        id: &str,
        now: u64,
    ) -> Result<Value, ApiError> {
        let state = self.machine(app, id)?.state;
        if state != MState::Started {
            return Err(Self::precondition("restart", state));
        }
        self.begin(app, id, MState::Restarting, "restart", now);
        let stop = self.delay(self.latency.stop_ms);
        let start = self.delay(self.latency.start_ms);
        let exit = exit_request(now.saturating_add(stop), 0, 15, false, true, true);
        self.schedule(
            app,
            id,
            vec![
                plan(stop, MState::Starting)
                    .event("exit", "flyd")
                    .request(exit)
                    .effect(Effect::ChecksDown),
                restarted(start),
            ],
            now,
        );
        Ok(json!({"ok": true}))
    }

    /// The guest's main process dies (a signal, or the OOM killer); the restart policy
    /// decides whether it comes back.
    pub(crate) fn kill_process(
        &mut self,
        app: &str,
        id: &str,
        signo: i64,
        oom: bool,
        now: u64,
    ) -> Result<Value, ApiError> {
        let m = self.machine(app, id)?;
        if m.state != MState::Started {
            return Err(Self::precondition("signal", m.state));
        }
        let policy = m
            .config()
            .pointer("/restart/policy")
            .and_then(Value::as_str)
            .unwrap_or("on-failure")
            .to_owned();
        let restarting = policy != "no";
        let code = 128 + signo;
        let request = exit_request(now, code, signo, oom, false, restarting);
        if oom {
            self.log(
                app,
                id,
                now,
                "Out of memory: Killed process 641 (app) total-vm:2097152kB, anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4096kB oom_score_adj:0",
            );
        }
        let start = self.delay(self.latency.start_ms);
        let mut steps = vec![
            plan(0, MState::Stopped)
                .event("exit", "flyd")
                .request(request)
                .effect(Effect::ChecksDown)
                .log(format!(
                    "Main child exited with signal (with signal '{}', core dumped? false)",
                    platform::signal_name(signo)
                )),
        ];
        if restarting {
            steps.push(plan(0, MState::Starting).log("reboot: Restarting system"));
            steps.push(restarted(start));
        }
        self.schedule(app, id, steps, now);
        Ok(json!({"ok": true}))
    }

    /// `DELETE …/machines/{id}`.
    pub(crate) fn destroy_machine(
        &mut self,
        app: &str,
        id: &str,
        force: bool,
        now: u64,
    ) -> Result<Value, ApiError> {
        let state = self.machine(app, id)?.state;
        match state {
            MState::Created | MState::Stopped | MState::Suspended | MState::Failed => {}
            MState::Destroyed | MState::Destroying => {
                return Err(Self::precondition("destroy", state));
            }
            other if !force => {
                return Err(ApiError::new(
                    412,
                    format!(
                        "failed_precondition: unable to destroy machine, not currently stopped, suspended, created or failed (state '{}'); pass force=true to kill it",
                        other.as_str()
                    ),
                ));
            }
            _ => {}
        }
        self.begin(app, id, MState::Destroying, "destroy", now);
        let delay = self.delay(self.latency.destroy_ms);
        self.schedule(
            app,
            id,
            vec![
                plan(delay, MState::Destroyed)
                    .event("destroy", "flyd")
                    .effect(Effect::DetachVolumes),
            ],
            now,
        );
        Ok(json!({"ok": true}))
    }

    /// Takes or refreshes a lease; `Err` 409 names the holder.
    pub(crate) fn acquire_lease(
        &mut self,
        app: &str,
        id: &str,
        ttl_s: u64,
        description: &str,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<Lease, ApiError> {
        let owner = self.viewer.email.clone();
        let fresh_nonce = self.rng.nonce();
        let m = self.machine(app, id)?;
        let version = m.version().to_owned();
        let lease = match m.live_lease(now) {
            Some(l) if Some(l.nonce.as_str()) == nonce => Lease {
                expires_ms: now.saturating_add(ttl_s.saturating_mul(1000)),
                description: if description.is_empty() {
                    l.description.clone()
                } else {
                    description.to_owned()
                },
                version,
                ..l.clone()
            },
            Some(l) => {
                return Err(ApiError::new(
                    409,
                    format!(
                        "aborted: lease currently held by {}, expires at {}",
                        l.owner,
                        super::clock::rfc3339(l.expires_ms)
                    ),
                ));
            }
            None => Lease {
                nonce: fresh_nonce,
                owner,
                description: description.to_owned(),
                expires_ms: now.saturating_add(ttl_s.saturating_mul(1000)),
                version,
            },
        };
        if let Ok(m) = self.machine_mut(app, id) {
            m.lease = Some(lease.clone());
        }
        self.touch();
        Ok(lease)
    }

    /// Marks the volumes in `config.mounts` attached to `id`, releasing any others.
    pub(crate) fn attach_mounts(&mut self, app: &str, id: &str) {
        let (ids, version) = match self.machine(app, id) {
            Ok(m) => (mounted_volumes(m.config()), m.version().to_owned()),
            Err(_) => return,
        };
        if let Some(a) = self.apps.get_mut(app) {
            for v in a.volumes.values_mut() {
                if ids.contains(&v.id) {
                    v.attached_machine_id = Some(id.to_owned());
                    v.attached_alloc_id = Some(version.clone());
                } else if v.attached_machine_id.as_deref() == Some(id) {
                    v.attached_machine_id = None;
                    v.attached_alloc_id = None;
                }
            }
        }
    }

    /// `POST /v1/apps/{app}/machines`.
    pub(crate) fn create_machine(
        &mut self,
        app: &str,
        body: &Value,
        now: u64,
    ) -> Result<Value, ApiError> {
        if !self.apps.contains_key(app) {
            return Err(ApiError::not_found("app not found"));
        }
        let config = required_config(body)?;
        let region = self.create_region(body)?;
        let name = self.create_name(app, body)?;
        let booted_secrets = self.launch_secrets(app, body, now)?;
        let id = self.rng.machine_id();
        let config = self.normalise_config(app, &id, config, &region, &[])?;
        if let Some(n) = self.capacity_failures.get_mut(&region)
            && *n > 0
        {
            *n -= 1;
            // A 503, as fly-go's tests model it (`flaps/flaps_error_test.go`: "another
            // status code", 503 with `insufficient_capacity`): a client that decides by
            // the status retries it as a transient 5xx; the code says it is final.
            return Err(ApiError::coded(
                503,
                format!(
                    "insufficient resources to create new machine with existing volume in region {region}: no capacity"
                ),
                "insufficient_capacity",
            ));
        }
        // Realism: a full region refuses every machine, as a 422 with the code (see
        // `Realism::full_region`, from fly-go `flaps/flaps_error.go` `CapacityScopeOf`).
        if self.realism.full_region.as_deref() == Some(region.as_str()) {
            return Err(ApiError::coded(
                422,
                format!("insufficient resources to create new machine in region {region}"),
                "insufficient_capacity",
            ));
        }
        let version = self.rng.ulid(now);
        let private_ip = self.rng.private_ip();
        let launch_event = self.rng.ulid(now);
        let machine = Machine {
            id: id.clone(),
            name,
            region,
            state: MState::Created,
            versions: vec![MachineVersion {
                id: version,
                config,
                created_ms: now,
            }],
            events: vec![Event {
                id: launch_event,
                kind: "launch".into(),
                status: "created".into(),
                source: "user".into(),
                timestamp: now,
                request: None,
            }],
            checks: Vec::new(),
            lease: None,
            cordoned: false,
            created_ms: now,
            updated_ms: now,
            private_ip,
            plan: Default::default(),
            host_status: "ok".into(),
            pid_base: 600,
            secrets_version: booted_secrets,
        };
        self.app_mut(app)?.machines.insert(id.clone(), machine);
        self.attach_mounts(app, &id);
        let nonce = match body.get("lease_ttl").and_then(Value::as_u64) {
            Some(ttl) if ttl > 0 => Some(self.acquire_lease(app, &id, ttl, "", None, now)?.nonce),
            _ => None,
        };
        if !skip_launch(body) {
            let config_now = self.machine(app, &id)?.config().clone();
            let create = self.delay(self.latency.create_ms);
            let boot = self.delay(self.latency.boot_ms);
            self.schedule(
                app,
                &id,
                vec![
                    plan(create, MState::Starting).log("Pulling container image"),
                    boot_step(
                        &config_now,
                        boot,
                        format!("Machine created and started in {}ms", create + boot),
                    ),
                ],
                now,
            );
        }
        self.touch();
        let mut out = self.machine(app, &id)?.to_json(false, false, now);
        if let (Some(n), Some(o)) = (nonce, out.as_object_mut()) {
            o.insert("nonce".into(), json!(n));
        }
        Ok(out)
    }

    /// `POST /v1/apps/{app}/machines/{id}`: a new version, replacing the running one.
    pub(crate) fn update_machine(
        &mut self,
        app: &str,
        id: &str,
        body: &Value,
        now: u64,
    ) -> Result<Value, ApiError> {
        let m = self.machine(app, id)?;
        let previous = m.state;
        let region = m.region.clone();
        let current = m.version().to_owned();
        let current_mounts = mounted_volumes(m.config());
        check_current_version(body, &current)?;
        if matches!(previous, MState::Destroyed | MState::Destroying) {
            return Err(Self::precondition("update", previous));
        }
        check_same_region(body, &region)?;
        let config = required_config(body)?;
        let config = self.normalise_config(app, id, config, &region, &current_mounts)?;
        let booted_secrets = self.launch_secrets(app, body, now)?;
        let version = self.rng.ulid(now);
        let skip = skip_launch(body);
        if let Ok(m) = self.machine_mut(app, id) {
            m.versions.push(MachineVersion {
                id: version,
                config,
                created_ms: now,
            });
            m.secrets_version = booted_secrets;
            m.state = MState::Replacing;
            m.updated_ms = now;
        }
        self.attach_mounts(app, id);
        self.push_event(app, id, "update", "user", None, now);
        let update = self.delay(self.latency.update_ms);
        let start = self.delay(self.latency.start_ms);
        let steps = if skip {
            let end = match previous {
                MState::Created => MState::Created,
                _ => MState::Stopped,
            };
            vec![
                plan(update, end)
                    .event("update", "flyd")
                    .effect(Effect::ChecksDown),
            ]
        } else {
            vec![
                plan(update, MState::Starting).event("update", "flyd"),
                restarted(start),
            ]
        };
        self.schedule(app, id, steps, now);
        if let Some(ttl) = body.get("lease_ttl").and_then(Value::as_u64)
            && ttl > 0
        {
            let nonce = self
                .machine(app, id)?
                .lease
                .as_ref()
                .map(|l| l.nonce.clone());
            self.acquire_lease(app, id, ttl, "", nonce.as_deref(), now)?;
        }
        Ok(self.machine(app, id)?.to_json(false, false, now))
    }
}

/// Automatic mode: runs transitions as they fall due (real time), then tells waiters.
pub(crate) async fn ticker(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let now = shared.clock.now_ms();
        let next = shared.with_world(|w, _| w.next_due());
        let sleep = match next {
            Some(due) => Duration::from_millis(due.saturating_sub(now).max(1)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
