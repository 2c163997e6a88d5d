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
        super::refuse_foreign(
            machines
                .iter()
                .filter(|m| !super::is_owned(m))
                .map(|m| m.id.as_str()),
            |ids| {
                format!(
                    "app {app} holds machines this server did not create ({ids}); it will not tear the app down"
                )
            },
        )?;
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
    let opts = BulkOptions::with_concurrency(4);
    let total = 5;

    // 1. Machines (destroyed and waited for, so their volumes detach).
    ctl.progress.report(0, Some(total), "destroying machines");
    for _ in 0..ROUNDS {
        ctl.check("destroying machines")?;
        let machines = list_machines(client, app, false).await?;
        if machines.is_empty() {
            break;
        }
        let keys: Vec<Key> = machines
            .into_iter()
            .map(|m| Key(m.id.clone(), m.name.clone()))
            .collect();
        let bulk = run_bulk(keys, &opts, ctl, |k| async move {
            destroy_machine_fully(client, app, &k.0, wait).await
        })
        .await;
        collect(&mut report, bulk.items, |k| Resource::Machine {
            id: k.0,
            name: k.1,
        });
    }

    // 2. Volumes.
    ctl.progress.report(1, Some(total), "destroying volumes");
    for _ in 0..ROUNDS {
        ctl.check("destroying volumes")?;
        let volumes = list_volumes(client, app).await?;
        if volumes.is_empty() {
            break;
        }
        let keys: Vec<Key> = volumes
            .into_iter()
            .map(|v| Key(v.id.clone(), v.name.clone()))
            .collect();
        let bulk = run_bulk(keys, &opts, ctl, |k| async move {
            destroy_volume_retrying(client, app, &k.0, wait).await
        })
        .await;
        collect(&mut report, bulk.items, |k| Resource::Volume {
            id: k.0,
            name: k.1,
        });
    }

    // 3. IPs.
    ctl.progress.report(2, Some(total), "releasing IPs");
    for _ in 0..ROUNDS {
        ctl.check("releasing IPs")?;
        let ips = list_ips(client, app).await?;
        let keys: Vec<Key> = ips
            .into_iter()
            .filter_map(|ip| {
                let kind = ip.kind().to_owned();
                ip.ip.map(|a| Key(a, kind))
            })
            .collect();
        if keys.is_empty() {
            break;
        }
        let bulk = run_bulk(keys, &opts, ctl, |k| async move {
            release_ip(client, app, &k.0).await
        })
        .await;
        collect(&mut report, bulk.items, |k| Resource::Ip {
            address: k.0,
            kind: k.1,
        });
    }

    // 4. Certificates.
    ctl.progress.report(3, Some(total), "removing certificates");
    for _ in 0..ROUNDS {
        ctl.check("removing certificates")?;
        let certs = list_certificates(client, app).await?;
        if certs.is_empty() {
            break;
        }
        let keys: Vec<Key> = certs.into_iter().map(|h| Key(h, String::new())).collect();
        let bulk = run_bulk(keys, &opts, ctl, |k| async move {
            match client.remove_certificate(app, &k.0).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(Error::fly(format!("removing certificate {}", k.0))(e)),
            }
        })
        .await;
        for item in bulk.items {
            match item.outcome {
                ItemOutcome::Done(()) => report.certificates.push(item.key.0),
                ItemOutcome::Failed(e) => report.errors.push(e.source_text()),
                ItemOutcome::Skipped | ItemOutcome::Cancelled => {}
            }
        }
    }

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

fn collect(
    report: &mut TeardownReport,
    items: Vec<super::sched::ItemReport<Key, ()>>,
    to_resource: impl Fn(Key) -> Resource,
) {
    for item in items {
        match item.outcome {
            ItemOutcome::Done(()) => {
                let r = to_resource(item.key);
                if !report.removed.contains(&r) {
                    report.removed.push(r);
                }
            }
            ItemOutcome::Failed(e) => report.errors.push(e.source_text()),
            ItemOutcome::Skipped | ItemOutcome::Cancelled => {}
        }
    }
}
