//! Scenarios: the world the simulator starts with, from `empty`, the embedded `demo`
//! (`scenarios/demo.json`) or a JSON/TOML file of the same structure.
//!
//! # File structure
//! Times are seconds relative to when the scenario is loaded (negative = in the past).
//! ```json
//! {
//!   "viewer": {"email": "me@example.com", "name": "Me"},
//!   "nearest_region": "iad",
//!   "orgs": [{"slug": "acme", "name": "Acme", "type": "SHARED", "paid_plan": true, "member": true}],
//!   "apps": [{
//!     "name": "web", "org": "acme", "created_at": -86400,
//!     "machine_config": { "image": "…", "guest": {…} },          // default for machines without "config"
//!     "machines": [{"id": "0801…", "name": "web-1", "region": "iad", "state": "started",
//!                   "created_at": -3600, "config": {…},
//!                   "events": [{"at": -60, "type": "exit", "status": "stopped", "source": "flyd",
//!                               "request": {"exit_event": {"oom_killed": true}}}],
//!                   "checks": [{"name": "servicecheck-00-http-3000", "status": "critical",
//!                               "output": "context deadline exceeded", "at": -5}]}],
//!     "volumes": [{"id": "vol_…", "name": "data", "region": "iad", "size_gb": 1,
//!                  "attached_machine": "0801…", "bytes_used": 1024}],
//!     "ips": [{"address": "2a09:…", "type": "v6", "region": "global"}],
//!     "shared_ip": "66.241.125.10",
//!     "certificates": [{"hostname": "www.example.com", "issued": true}],
//!     "secrets": {"DATABASE_URL": "…"},
//!     "logs": [{"at": -10.5, "instance": "0801…", "message": "…", "level": "info"}],
//!     "log_series": [{"from": -60, "to": 0, "every": 1, "instance": "0801…",
//!                     "messages": ["GET / 200", "GET /a 200"]}]
//!   }]
//! }
//! ```
//! An `orgs` list without a `PERSONAL` org gets one. `member: false` makes an org whose
//! apps answer 403 (names in it are still taken).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::lifecycle::check_names;
use super::model::{
    App, Certificate, Check, Event, Ip, LogLine, MState, Machine, MachineVersion, Org, Secret,
    Volume, World, secret_digest,
};
use super::{Scenario, SimError, platform};

const DEMO: &str = include_str!("scenarios/demo.json");

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScenarioFile {
    #[serde(default)]
    viewer: Option<ViewerSpec>,
    #[serde(default)]
    nearest_region: Option<String>,
    #[serde(default)]
    orgs: Vec<OrgSpec>,
    #[serde(default)]
    apps: Vec<AppSpec>,
}

#[derive(Debug, Deserialize)]
struct ViewerSpec {
    email: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct OrgSpec {
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default = "shared", rename = "type")]
    kind: String,
    #[serde(default)]
    paid_plan: bool,
    #[serde(default = "yes")]
    member: bool,
}

fn shared() -> String {
    "SHARED".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct AppSpec {
    name: String,
    org: String,
    #[serde(default)]
    created_at: Option<f64>,
    #[serde(default)]
    machine_config: Option<Value>,
    #[serde(default)]
    machines: Vec<MachineSpec>,
    #[serde(default)]
    volumes: Vec<VolumeSpec>,
    #[serde(default)]
    ips: Vec<IpSpec>,
    #[serde(default)]
    shared_ip: Option<String>,
    #[serde(default)]
    certificates: Vec<CertSpec>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    logs: Vec<LogSpec>,
    #[serde(default)]
    log_series: Vec<LogSeries>,
}

#[derive(Debug, Deserialize)]
struct MachineSpec {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    region: String,
    #[serde(default = "started")]
    state: String,
    #[serde(default)]
    created_at: Option<f64>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    events: Vec<EventSpec>,
    #[serde(default)]
    checks: Vec<CheckSpec>,
}

fn started() -> String {
    "started".into()
}

#[derive(Debug, Deserialize)]
struct EventSpec {
    at: f64,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    #[serde(default = "flyd")]
    source: String,
    #[serde(default)]
    request: Option<Value>,
}

fn flyd() -> String {
    "flyd".into()
}

#[derive(Debug, Deserialize)]
struct CheckSpec {
    name: String,
    status: String,
    #[serde(default)]
    output: String,
    #[serde(default)]
    at: f64,
}

#[derive(Debug, Deserialize)]
struct VolumeSpec {
    #[serde(default)]
    id: Option<String>,
    name: String,
    region: String,
    #[serde(default = "one")]
    size_gb: u64,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    attached_machine: Option<String>,
    #[serde(default)]
    bytes_used: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
struct IpSpec {
    address: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CertSpec {
    hostname: String,
    #[serde(default)]
    issued: bool,
}

#[derive(Debug, Deserialize)]
struct LogSpec {
    at: f64,
    instance: String,
    message: String,
    #[serde(default)]
    level: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LogSeries {
    from: f64,
    to: f64,
    every: f64,
    instance: String,
    messages: Vec<String>,
}

/// The file behind a [`Scenario`].
pub(crate) fn resolve(s: &Scenario) -> Result<ScenarioFile, SimError> {
    match s {
        Scenario::Empty => Ok(ScenarioFile::default()),
        Scenario::Demo => serde_json::from_str(DEMO).map_err(|e| SimError::ScenarioInvalid {
            name: "demo".into(),
            message: e.to_string(),
        }),
        Scenario::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SimError::ScenarioRead {
                path: path.clone(),
                source,
            })?;
            let invalid = |message: String| SimError::ScenarioInvalid {
                name: path.display().to_string(),
                message,
            };
            if path.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).map_err(|e| invalid(e.to_string()))
            } else {
                serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))
            }
        }
    }
}

fn at(now: u64, secs: f64) -> u64 {
    #[allow(clippy::cast_possible_truncation)]
    let offset = (secs * 1000.0).round() as i64;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    u64::try_from(now.saturating_add(offset)).unwrap_or(0)
}

impl ScenarioFile {
    /// Fills an empty world.
    pub(crate) fn apply(self, w: &mut World, now: u64) -> Result<(), SimError> {
        let invalid = |message: String| SimError::ScenarioInvalid {
            name: "scenario".into(),
            message,
        };
        if let Some(v) = self.viewer {
            w.viewer.name = if v.name.is_empty() {
                v.email.clone()
            } else {
                v.name
            };
            w.viewer.email = v.email;
        }
        if let Some(r) = self.nearest_region {
            if platform::region(&r).is_none() {
                return Err(invalid(format!("nearest_region {r:?} is not a region")));
            }
            w.nearest_region = r;
        }
        let mut orgs = self.orgs;
        if !orgs.iter().any(|o| o.kind == "PERSONAL") {
            orgs.insert(
                0,
                OrgSpec {
                    slug: "personal-sim".into(),
                    name: w.viewer.name.clone(),
                    kind: "PERSONAL".into(),
                    paid_plan: false,
                    member: true,
                },
            );
        }
        for o in orgs {
            let numeric = w.numeric_id();
            let id = w.rng.app_id();
            w.orgs.insert(
                o.slug.clone(),
                Org {
                    id,
                    name: if o.name.is_empty() {
                        o.slug.clone()
                    } else {
                        o.name
                    },
                    slug: o.slug,
                    kind: o.kind,
                    paid_plan: o.paid_plan,
                    member: o.member,
                    internal_numeric_id: numeric,
                },
            );
        }
        for a in self.apps {
            let org = if a.org == "personal" {
                w.orgs
                    .values()
                    .find(|o| o.kind == "PERSONAL")
                    .map(|o| o.slug.clone())
                    .unwrap_or_default()
            } else {
                a.org.clone()
            };
            if !w.orgs.contains_key(&org) {
                return Err(invalid(format!(
                    "app {} names unknown org {:?}",
                    a.name, a.org
                )));
            }
            let created = at(now, a.created_at.unwrap_or(-30.0 * 86_400.0));
            let id = w.rng.app_id();
            let numeric = w.numeric_id();
            let mut app = App::new(id, a.name.clone(), org, created, numeric);
            app.shared_ip = a.shared_ip;
            for m in a.machines {
                let id = m.id.unwrap_or_else(|| w.rng.machine_id());
                let state = MState::parse(&m.state)
                    .ok_or_else(|| invalid(format!("machine {id}: unknown state {:?}", m.state)))?;
                if platform::region(&m.region).is_none() {
                    return Err(invalid(format!(
                        "machine {id}: unknown region {:?}",
                        m.region
                    )));
                }
                let mut config = m
                    .config
                    .or_else(|| a.machine_config.clone())
                    .unwrap_or_else(|| json!({"image": "flyio/hellofly:latest"}));
                let guest = platform::validate_guest(config.get("guest"))
                    .map_err(|e| invalid(format!("machine {id}: {}", e.message)))?;
                if let Some(o) = config.as_object_mut() {
                    o.insert("guest".into(), guest);
                }
                let created_ms = at(now, m.created_at.unwrap_or(-7.0 * 86_400.0));
                let version = w.rng.ulid(created_ms);
                let mut events: Vec<Event> = Vec::new();
                let mut specs = m.events;
                specs.sort_by(|x, y| x.at.total_cmp(&y.at));
                for e in specs {
                    let ts = at(now, e.at);
                    let mut request = e.request;
                    if let Some(ex) = request
                        .as_mut()
                        .and_then(|r| r.get_mut("exit_event"))
                        .and_then(Value::as_object_mut)
                    {
                        ex.entry("exited_at").or_insert(json!(ts));
                        for (k, v) in [
                            ("exit_code", json!(0)),
                            ("guest_exit_code", json!(0)),
                            ("signal", json!(-1)),
                            ("guest_signal", json!(-1)),
                            ("oom_killed", json!(false)),
                            ("requested_stop", json!(false)),
                            ("restarting", json!(false)),
                        ] {
                            ex.entry(k).or_insert(v);
                        }
                    }
                    events.push(Event {
                        id: w.rng.ulid(ts),
                        kind: e.kind,
                        status: e.status,
                        source: e.source,
                        timestamp: ts,
                        request,
                    });
                }
                if events.is_empty() {
                    events.push(Event {
                        id: w.rng.ulid(created_ms),
                        kind: "launch".into(),
                        status: "created".into(),
                        source: "user".into(),
                        timestamp: created_ms,
                        request: None,
                    });
                }
                let updated_ms = events
                    .iter()
                    .map(|e| e.timestamp)
                    .max()
                    .unwrap_or(created_ms);
                let mut checks: Vec<Check> = if state == MState::Started {
                    check_names(&config)
                        .into_iter()
                        .map(|name| Check {
                            name,
                            status: "passing".into(),
                            output: "Success".into(),
                            updated_ms,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                for c in m.checks {
                    let check = Check {
                        name: c.name.clone(),
                        status: c.status,
                        output: c.output,
                        updated_ms: at(now, c.at),
                    };
                    match checks.iter_mut().find(|x| x.name == c.name) {
                        Some(x) => *x = check,
                        None => checks.push(check),
                    }
                }
                let machine = Machine {
                    id: id.clone(),
                    name: m.name.unwrap_or_else(|| w.rng.machine_name()),
                    region: m.region,
                    state,
                    versions: vec![MachineVersion {
                        id: version,
                        config,
                        created_ms,
                    }],
                    events,
                    checks,
                    lease: None,
                    cordoned: false,
                    created_ms,
                    updated_ms,
                    private_ip: w.rng.private_ip(),
                    plan: Default::default(),
                    host_status: "ok".into(),
                    pid_base: 600,
                    secrets_version: 0,
                };
                app.machines.insert(id, machine);
            }
            for v in a.volumes {
                let id = v.id.unwrap_or_else(|| w.rng.volume_id());
                let attached = v.attached_machine.filter(|m| app.machines.contains_key(m));
                let alloc = attached
                    .as_ref()
                    .and_then(|m| app.machines.get(m))
                    .map(|m| m.version().to_owned());
                let zone = v.zone.unwrap_or_else(|| w.rng.zone());
                app.volumes.insert(
                    id.clone(),
                    Volume {
                        id,
                        name: v.name,
                        region: v.region,
                        zone,
                        size_gb: v.size_gb,
                        state: "created".into(),
                        encrypted: true,
                        fstype: "ext4".into(),
                        created_ms: created,
                        attached_machine_id: attached,
                        attached_alloc_id: alloc,
                        snapshot_retention: 5,
                        auto_backup_enabled: true,
                        bytes_used: v.bytes_used,
                        snapshots: Vec::new(),
                        ready_at: None,
                        destroy_plan: Default::default(),
                    },
                );
            }
            for ip in a.ips {
                app.ips.push(Ip {
                    id: format!("ip_{}", w.rng.app_id()),
                    address: ip.address,
                    kind: ip.kind,
                    region: ip.region.unwrap_or_else(|| "global".into()),
                    created_ms: created,
                    service_name: String::new(),
                    network: "default".into(),
                });
            }
            for c in a.certificates {
                app.certificates.insert(
                    c.hostname.clone(),
                    Certificate {
                        hostname: c.hostname,
                        created_ms: created,
                        checks_run: u32::from(c.issued),
                    },
                );
            }
            for (k, v) in a.secrets {
                app.secrets.insert(
                    k,
                    Secret {
                        digest: secret_digest(&v),
                        value: v,
                        created_ms: created,
                        updated_ms: created,
                    },
                );
            }
            if !app.secrets.is_empty() {
                // Written when the app was, long since seen by every host.
                app.secrets_version = 1;
                app.secrets_history.push((1, created));
                for m in app.machines.values_mut() {
                    m.secrets_version = 1;
                }
            }
            let mut lines: Vec<(u64, String, String, String)> = a
                .logs
                .into_iter()
                .map(|l| {
                    (
                        at(now, l.at),
                        l.instance,
                        l.message,
                        l.level.unwrap_or_else(|| "info".into()),
                    )
                })
                .collect();
            for s in a.log_series {
                if s.every <= 0.0 || s.messages.is_empty() {
                    return Err(invalid("log_series needs every > 0 and messages".into()));
                }
                let mut t = s.from;
                let mut i = 0usize;
                while t <= s.to && i < 100_000 {
                    let msg = s
                        .messages
                        .get(i % s.messages.len())
                        .cloned()
                        .unwrap_or_default();
                    lines.push((at(now, t), s.instance.clone(), msg, "info".into()));
                    t += s.every;
                    i += 1;
                }
            }
            lines.sort_by_key(|l| l.0);
            for (ts, instance, message, level) in lines {
                let region = app
                    .machines
                    .get(&instance)
                    .map(|m| m.region.clone())
                    .unwrap_or_default();
                let ts_ns = LogLine::unique_ns(ts, app.logs.len());
                app.logs.push(LogLine {
                    ts_ns,
                    instance,
                    region,
                    level,
                    message,
                    id: w.rng.ulid(ts),
                });
            }
            w.apps.insert(a.name, app);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_parses_and_loads() {
        let cfg = super::super::SimConfig::stepped().with_scenario(Scenario::Demo);
        let w = World::load(&cfg, super::super::clock::STEPPED_EPOCH_MS).unwrap();
        let app = w.apps.get("cdn-demo").unwrap();
        assert_eq!(app.machines.len(), 11);
        assert!(app.logs.len() > 100);
    }
}
