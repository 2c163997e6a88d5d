//! Tearing an environment down: everything of one app — machines, volumes, IPs,
//! certificates, then the app itself — with a report of what was removed.
//!
//! [`plan_teardown`] reads only (what the confirmation shows). [`teardown`] works in
//! phases; each phase re-lists before it acts (so a retried or concurrent teardown
//! never trips over what is already gone), every removal treats "not found" as done,
//! and a phase is repeated a few times until its listing comes back empty. The app is
//! deleted last and confirmed gone, so nothing is left behind even when single steps
//! fail and are retried.
//!
//! Knows the Fly client's domain types; never sees reqwest, rmcp or GraphQL types.

use std::time::Duration;

use super::{
    Error,
    cleanup::{delete_app_fully, destroy_machine_fully, destroy_volume_retrying, release_ip},
    provision::Resource,
    sched::{BulkOptions, Control, ItemOutcome, run_bulk},
};
use crate::fly;
use crate::workflows::NextStep;

/// Everything of an app that a teardown removes.
#[derive(Debug, Clone, PartialEq)]
pub struct TeardownPlan {
    pub app: String,
    pub machines: Vec<PlannedMachine>,
    pub volumes: Vec<PlannedVolume>,
    pub ips: Vec<PlannedIp>,
    /// Certificate hostnames.
    pub certificates: Vec<String>,
}

/// A machine a teardown will destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMachine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
}

/// A volume a teardown will destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u64,
}

/// An IP address a teardown will release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedIp {
    pub address: String,
    /// `shared_v4`, `v6`, ...
    pub kind: String,
}

impl TeardownPlan {
    /// How many resources, the app included.
    pub fn count(&self) -> usize {
        self.machines.len() + self.volumes.len() + self.ips.len() + self.certificates.len() + 1
    }
}

/// Lists what a teardown of `app` would remove. With `owned_only`, refuses an app
/// holding machines this server did not create.
pub async fn plan_teardown(
    client: &fly::Client,
    app: &str,
    owned_only: bool,
) -> Result<TeardownPlan, Error> {
    match client.get_app(app).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {
            return Err(Error::NotFound {
                what: "app",
                id: app.to_owned(),
                hint: NextStep::to(
                    "nothing to tear down (list_apps shows the apps this token reaches)",
                ),
            });
        }
        Err(e) => return Err(Error::fly(format!("reading app {app}"))(e)),
    }
    let (machines, volumes, ips, certs) = futures::try_join!(
        list_machines(client, app, owned_only),
        list_volumes(client, app),
        list_ips(client, app),
        list_certificates(client, app),
    )?;
    if owned_only {
        super::refuse_foreign_machines(&machines, |ids| {
            format!(
                "app {app} holds machines this server did not create ({ids}); it will not tear the app down"
            )
        })?;
    }
    Ok(TeardownPlan {
        app: app.to_owned(),
        machines: machines
            .into_iter()
            .map(|m| PlannedMachine {
                state: m.state.to_string(),
                id: m.id,
                name: m.name,
                region: m.region,
            })
            .collect(),
        volumes: volumes
            .into_iter()
            .map(|v| PlannedVolume {
                id: v.id,
                name: v.name,
                region: v.region,
                size_gb: v.size_gb,
            })
            .collect(),
        ips: ips
            .into_iter()
            .filter_map(|ip| {
                let kind = ip.kind().to_owned();
                ip.ip.map(|address| PlannedIp { address, kind })
            })
            .collect(),
        certificates: certs,
    })
}

/// The app's live machines. With `owned_only` the listing keeps the configs: a summary
/// listing leaves out `config` (API-NOTES §1), so its metadata would make every machine
/// look foreign and refuse the teardown of an app that is ours (as issue 18 item 3 found
/// for adoption).
async fn list_machines(
    client: &fly::Client,
    app: &str,
    owned_only: bool,
) -> Result<Vec<fly::Machine>, Error> {
    let filter = fly::MachineFilter {
        summary: !owned_only,
        ..fly::MachineFilter::default()
    };
    match client.list_machines(app, &filter).await {
        Ok(ms) => Ok(ms
            .into_iter()
            .filter(|m| {
                !matches!(
                    m.state,
                    fly::MachineState::Destroyed | fly::MachineState::Destroying
                )
            })
            .collect()),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(Error::fly(format!("listing machines of app {app}"))(e)),
    }
}

async fn list_volumes(client: &fly::Client, app: &str) -> Result<Vec<fly::Volume>, Error> {
    match client.list_volumes(app).await {
        Ok(vs) => Ok(vs.into_iter().filter(|v| !v.is_going()).collect()),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(Error::fly(format!("listing volumes of app {app}"))(e)),
    }
}

async fn list_ips(client: &fly::Client, app: &str) -> Result<Vec<fly::IpAssignment>, Error> {
    match client.list_ip_assignments(app).await {
        Ok(ips) => Ok(ips),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(Error::fly(format!("listing IPs of app {app}"))(e)),
    }
}

async fn list_certificates(client: &fly::Client, app: &str) -> Result<Vec<String>, Error> {
    match client.list_certificates(app).await {
        Ok(cs) => Ok(cs.into_iter().map(|c| c.hostname).collect()),
        Err(e) if e.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(Error::fly(format!("listing certificates of app {app}"))(e)),
    }
}

/// What a teardown did.
#[derive(Debug, Default)]
pub struct TeardownReport {
    pub removed: Vec<Resource>,
    /// Certificate hostnames removed.
    pub certificates: Vec<String>,
    pub app_deleted: bool,
    /// Errors met on the way (retried ones included); empty on a clean run.
    pub errors: Vec<String>,
}

/// Rounds per phase before giving up on it.
const ROUNDS: usize = 3;

/// Removes everything of the app, phase by phase, then the app. `wait` bounds each
/// machine's destruction and each volume's retries.
pub async fn teardown(
    client: &fly::Client,
    app: &str,
    wait: Duration,
    ctl: &Control,
) -> Result<TeardownReport, Error> {
    let mut report = TeardownReport::default();
    let total = 5;
    let mut phases = Phases {
        ctl,
        opts: BulkOptions::with_concurrency(4),
        total,
        errors: Vec::new(),
    };

    // 1. Machines (destroyed and waited for, so their volumes detach).
    let list = || async {
        let machines = list_machines(client, app, false).await?;
        Ok(machines.into_iter().map(|m| Key(m.id, m.name)).collect())
    };
    let remove = |k: Key| async move { destroy_machine_fully(client, app, &k.0, wait).await };
    let machines = phases.run(0, "destroying machines", list, remove).await?;
    report.add(
        machines
            .into_iter()
            .map(|k| Resource::Machine { id: k.0, name: k.1 }),
    );

    // 2. Volumes.
    let list = || async {
        let volumes = list_volumes(client, app).await?;
        Ok(volumes.into_iter().map(|v| Key(v.id, v.name)).collect())
    };
    let remove = |k: Key| async move { destroy_volume_retrying(client, app, &k.0, wait).await };
    let volumes = phases.run(1, "destroying volumes", list, remove).await?;
    report.add(
        volumes
            .into_iter()
            .map(|k| Resource::Volume { id: k.0, name: k.1 }),
    );

    // 3. IPs.
    let list = || async {
        let ips = list_ips(client, app).await?;
        Ok(ips
            .into_iter()
            .filter_map(|ip| {
                let kind = ip.kind().to_owned();
                ip.ip.map(|a| Key(a, kind))
            })
            .collect())
    };
    let remove = |k: Key| async move { release_ip(client, app, &k.0).await };
    let ips = phases.run(2, "releasing IPs", list, remove).await?;
    report.add(ips.into_iter().map(|k| Resource::Ip {
        address: k.0,
        kind: k.1,
    }));

    // 4. Certificates.
    let list = || async {
        let certs = list_certificates(client, app).await?;
        Ok(certs.into_iter().map(|h| Key(h, String::new())).collect())
    };
    let remove = |k: Key| async move {
        match client.remove_certificate(app, &k.0).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(Error::fly(format!("removing certificate {}", k.0))(e)),
        }
    };
    let certs = phases.run(3, "removing certificates", list, remove).await?;
    report.certificates.extend(certs.into_iter().map(|k| k.0));
    report.errors = phases.errors;

    // 5. The app (which also takes anything a phase could not remove).
    ctl.progress
        .report(4, Some(total), format!("deleting app {app}"));
    ctl.check("deleting the app")?;
    delete_app_fully(client, app, wait).await?;
    report.app_deleted = true;
    report.removed.push(Resource::App {
        name: app.to_owned(),
    });
    ctl.progress
        .report(total, Some(total), format!("app {app} removed"));
    Ok(report)
}

/// An item key: id and a second field (name or kind), displayed as the id.
#[derive(Debug, Clone)]
struct Key(String, String);

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the teardown's phases share: the call's control, the bulk options, the
/// number of phases (for progress) and the errors met so far.
struct Phases<'a> {
    ctl: &'a Control,
    opts: BulkOptions,
    total: u32,
    errors: Vec<String>,
}

impl Phases<'_> {
    /// Phase `index`: up to [`ROUNDS`] times, re-lists what is left (`list`) and
    /// removes it in bulk (`remove`), until the listing comes back empty. Returns the
    /// keys removed; the failures go to `errors`.
    async fn run<L, LFut, R, RFut>(
        &mut self,
        index: u32,
        step: &str,
        list: L,
        remove: R,
    ) -> Result<Vec<Key>, Error>
    where
        L: Fn() -> LFut,
        LFut: Future<Output = Result<Vec<Key>, Error>>,
        R: Fn(Key) -> RFut,
        RFut: Future<Output = Result<(), Error>>,
    {
        self.ctl.progress.report(index, Some(self.total), step);
        let mut removed = Vec::new();
        for _ in 0..ROUNDS {
            self.ctl.check(step)?;
            let keys = list().await?;
            if keys.is_empty() {
                break;
            }
            let bulk = run_bulk(keys, &self.opts, self.ctl, &remove).await;
            for item in bulk.items {
                match item.outcome {
                    ItemOutcome::Done(()) => removed.push(item.key),
                    ItemOutcome::Failed(e) => self.errors.push(e.source_text()),
                    ItemOutcome::Skipped | ItemOutcome::Cancelled => {}
                }
            }
        }
        Ok(removed)
    }
}

impl TeardownReport {
    /// Records `resources` as removed, each once.
    fn add(&mut self, resources: impl IntoIterator<Item = Resource>) {
        for r in resources {
            if !self.removed.contains(&r) {
                self.removed.push(r);
            }
        }
    }
}
