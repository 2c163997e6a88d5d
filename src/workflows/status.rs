//! `app_status` and `list_apps`: what `fly status` shows and more, gathered in one
//! go (app, machines with checks / last event / restarts / OOM flag, IPs, volumes,
//! certificates), and the token's orgs with their apps. Summarising a machine is
//! pure ([`MachineRow::from_machine`]); gathering reads Fly concurrently. Knows
//! nothing of MCP or of how the result is rendered.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::Error;
use crate::fly::{self, Machine, MachineFilter};
use crate::workflows::NextStep;

/// A volume with its usage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeFact {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    pub size_gb: u64,
    pub used_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub attached_machine_id: Option<String>,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

impl VolumeFact {
    /// Used share of the volume (0.0–1.0), when usage is reported.
    pub fn used_fraction(&self) -> Option<f64> {
        let used = self.used_bytes? as f64;
        let total = match self.total_bytes.filter(|t| *t > 0) {
            Some(t) => t as f64,
            None if self.size_gb > 0 => self.size_gb as f64 * GIB,
            None => return None,
        };
        Some(used / total)
    }

    /// `1.2 GB` or `?`.
    pub fn used_text(&self) -> String {
        match self.used_bytes {
            Some(b) => format!("{:.1} GB", b as f64 / GIB),
            None => "?".to_owned(),
        }
    }
}

impl From<fly::Volume> for VolumeFact {
    fn from(v: fly::Volume) -> Self {
        let attached = v.is_attached();
        VolumeFact {
            id: v.id,
            name: v.name,
            region: v.region,
            state: v.state,
            size_gb: v.size_gb,
            used_bytes: v.bytes_used,
            total_bytes: v.bytes_total,
            attached_machine_id: v.attached_machine_id.filter(|_| attached),
        }
    }
}

/// One machine as `app_status` shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineRow {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    /// `ok`, `unknown`, `unreachable` (when reported).
    pub host_status: Option<String>,
    pub cordoned: bool,
    pub image: String,
    pub process_group: String,
    /// `shared-cpu-2x 4096MB`-style size.
    pub guest: Option<String>,
    pub checks_passing: usize,
    pub checks_warning: usize,
    pub checks_critical: usize,
    /// `name: output` of each non-passing check.
    pub failing_checks: Vec<String>,
    /// `exit`, `start`, … with its status and time.
    pub last_event: Option<EventBrief>,
    /// Unplanned exits among the reported events.
    pub restarts: u64,
    /// OOM kills among the reported events.
    pub oom_kills: u64,
    pub last_oom_ms: Option<i64>,
    /// Epoch ms of the last update (for "stuck" judgements).
    pub updated_ms: Option<i64>,
    /// Lease holder, if the listing included leases.
    pub lease_owner: Option<String>,
}

/// A machine event in brief.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBrief {
    pub kind: String,
    pub status: String,
    pub at_ms: i64,
    pub oom_killed: bool,
}

impl MachineRow {
    /// Summarises a machine. Pure.
    pub fn from_machine(m: &Machine) -> MachineRow {
        let mut row = MachineRow {
            id: m.id.clone(),
            name: m.name.clone(),
            region: m.region.clone(),
            state: m.state.as_str().to_owned(),
            host_status: m.host_status.clone().filter(|h| !h.is_empty()),
            cordoned: m.cordoned,
            image: m
                .shown_config()
                .map(|c| c.image.clone())
                .unwrap_or_default(),
            process_group: m.metadata("fly_process_group").unwrap_or("app").to_owned(),
            guest: m
                .shown_config()
                .and_then(|c| c.guest.as_ref())
                .map(|g| format!("{}-cpu-{}x {}MB", g.cpu_kind, g.cpus, g.memory_mb)),
            updated_ms: super::observe::parse_rfc3339_ms(&m.updated_at),
            lease_owner: m.lease.as_ref().map(|l| l.owner.clone()),
            ..MachineRow::default()
        };
        for c in &m.checks {
            match c.status.as_str() {
                "passing" => row.checks_passing += 1,
                "warning" => row.checks_warning += 1,
                _ => row.checks_critical += 1,
            }
            if c.status != "passing" {
                row.failing_checks
                    .push(format!("{} {}: {}", c.name, c.status, c.output.trim()));
            }
        }
        for e in &m.events {
            if let Some(x) = e.exit_event.as_ref().filter(|_| e.kind == "exit") {
                if !x.requested_stop {
                    row.restarts += 1;
                }
                if x.oom_killed {
                    row.oom_kills += 1;
                    row.last_oom_ms = row.last_oom_ms.max(Some(e.timestamp));
                }
            }
        }
        row.last_event = m
            .events
            .iter()
            .max_by_key(|e| e.timestamp)
            .map(|e| EventBrief {
                kind: e.kind.clone(),
                status: e.status.clone(),
                at_ms: e.timestamp,
                oom_killed: e.exit_event.as_ref().is_some_and(|x| x.oom_killed),
            });
        row
    }

    /// Something about this machine needs attention.
    pub fn needs_attention(&self) -> bool {
        self.checks_critical > 0
            || self.checks_warning > 0
            || matches!(
                self.state.as_str(),
                "failed" | "launch_failed" | "replacing" | "destroying"
            )
            || self.host_status.as_deref().is_some_and(|h| h != "ok")
            || self.oom_kills > 0
    }

    /// Sort rank: the worst first.
    pub fn urgency(&self) -> u8 {
        if self.checks_critical > 0
            || matches!(self.state.as_str(), "failed" | "launch_failed")
            || self.host_status.as_deref() == Some("unreachable")
        {
            0
        } else if self.needs_attention() {
            1
        } else {
            2
        }
    }
}

/// An IP address of the app.
#[derive(Debug, Clone, PartialEq)]
pub struct IpFact {
    pub address: String,
    /// `shared_v4`, `v4`, `v6`, `private_v6`, …
    pub kind: String,
    pub region: String,
}

/// A certificate of the app, in brief.
#[derive(Debug, Clone, PartialEq)]
pub struct CertFact {
    pub hostname: String,
    pub status: String,
    pub configured: bool,
}

/// A part of the status that could not be read (the rest is still shown).
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub part: &'static str,
    pub error: String,
}

/// Everything `app_status` reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppStatus {
    pub name: String,
    pub org: Option<String>,
    pub status: String,
    pub hostname: String,
    /// Machines, worst first, then by region and name.
    pub machines: Vec<MachineRow>,
    pub ips: Vec<IpFact>,
    pub volumes: Vec<VolumeFact>,
    pub certificates: Vec<CertFact>,
    pub gaps: Vec<Gap>,
}

impl AppStatus {
    /// Machines per state, e.g. `started: 9, stopped: 1`.
    pub fn state_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in &self.machines {
            *counts.entry(m.state.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Machines per region.
    pub fn region_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in &self.machines {
            *counts.entry(m.region.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// The error for an app that does not exist, or that the token cannot see.
pub fn missing_app(app: &str) -> Error {
    Error::NotFound {
        what: "app",
        id: app.to_owned(),
        hint: NextStep::to("call list_apps to see the apps this token can reach"),
    }
}

/// Maps "not found" on an app to an error that says what to call instead.
pub fn app_not_found(app: &str) -> impl FnOnce(fly::Error) -> Error + '_ {
    app_not_found_while(app, "reading app")
}

/// As [`app_not_found`], for a call that reads something of the app (`doing` names
/// it, e.g. "listing machines of app"): other errors keep that as their context.
pub fn app_not_found_while<'a>(
    app: &'a str,
    doing: &'a str,
) -> impl FnOnce(fly::Error) -> Error + 'a {
    Error::fly_or_not_found(format!("{doing} {app}"), || missing_app(app))
}

/// Every machine of `app` (no filter); a missing app is [`Error::NotFound`] with the
/// next step.
pub async fn list_app_machines(
    client: &fly::Client,
    app: &str,
) -> Result<Vec<fly::Machine>, Error> {
    client
        .list_machines(app, &fly::MachineFilter::default())
        .await
        .map_err(app_not_found_while(app, "listing machines of app"))
}

/// Which machines to read.
#[derive(Debug, Clone, Default)]
pub struct MachineSelection {
    pub region: Option<String>,
    pub state: Option<String>,
}

/// Reads an app, its machines (with leases), IPs, volumes and certificates
/// concurrently. The app must exist; the other parts are reported as [`Gap`]s when
/// they cannot be read.
pub async fn app_status(
    client: &fly::Client,
    app: &str,
    sel: &MachineSelection,
) -> Result<AppStatus, Error> {
    let filter = MachineFilter {
        region: sel.region.clone(),
        include_leases: true,
        state: sel
            .state
            .iter()
            .map(|s| fly::MachineState::parse(s))
            .collect(),
        ..MachineFilter::default()
    };
    let (app_res, machines, ips, volumes, certs) = tokio::join!(
        client.get_app(app),
        client.list_machines(app, &filter),
        client.list_ip_assignments(app),
        client.list_volumes(app),
        client.list_certificates(app),
    );
    let info = app_res.map_err(app_not_found(app))?;
    let machines = machines.map_err(Error::fly(format!("listing machines of app {app}")))?;
    let mut out = AppStatus {
        name: info.name.clone(),
        org: info.organization.as_ref().map(|o| o.slug.clone()),
        status: info.status.clone(),
        hostname: info.hostname(),
        ..AppStatus::default()
    };
    let mut rows: Vec<MachineRow> = machines
        .iter()
        .filter(|m| !m.state.is_terminal())
        .map(MachineRow::from_machine)
        .collect();
    rows.sort_by(|a, b| {
        (a.urgency(), &a.region, &a.name, &a.id).cmp(&(b.urgency(), &b.region, &b.name, &b.id))
    });
    out.machines = rows;
    match ips {
        Ok(ips) => {
            for ip in ips {
                let kind = ip.kind().to_owned();
                let address = ip
                    .ip
                    .clone()
                    .or_else(|| ip.ip_pair.as_ref().map(|p| format!("{} / {}", p.v4, p.v6)));
                if let Some(address) = address.filter(|a| !a.is_empty()) {
                    out.ips.push(IpFact {
                        address,
                        kind,
                        region: ip.region.unwrap_or_default(),
                    });
                }
            }
            // Shared first, then public, then the rest.
            out.ips.sort_by_key(|i| match i.kind.as_str() {
                "shared_v4" => 0,
                "v4" => 1,
                "v6" => 2,
                _ => 3,
            });
        }
        Err(e) => out.gaps.push(gap("ips", &e)),
    }
    match volumes {
        Ok(v) => {
            out.volumes = v
                .into_iter()
                .filter(|v| !v.is_going())
                .map(VolumeFact::from)
                .collect();
        }
        Err(e) => out.gaps.push(gap("volumes", &e)),
    }
    match certs {
        Ok(c) => {
            out.certificates = c
                .into_iter()
                .map(|c| CertFact {
                    hostname: c.hostname,
                    status: c.status,
                    configured: c.configured,
                })
                .collect();
        }
        Err(e) => out.gaps.push(gap("certificates", &e)),
    }
    Ok(out)
}

fn gap(part: &'static str, e: &fly::Error) -> Gap {
    Gap {
        part,
        error: e.to_string(),
    }
}

/// An app in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct AppBrief {
    pub name: String,
    pub org: String,
    pub status: String,
    pub machines: Option<u64>,
    pub volumes: Option<u64>,
}

/// An org the token reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgBrief {
    pub slug: String,
    pub name: String,
    pub kind: String,
    /// Apps could not be listed (the error), e.g. not a member.
    pub error: Option<String>,
}

/// The token's identity, orgs and apps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppListing {
    /// Who the token is: user e-mail, org-scoped token, app-scoped token.
    pub identity: Vec<String>,
    pub orgs: Vec<OrgBrief>,
    pub apps: Vec<AppBrief>,
}

/// Lists the orgs the token reaches (GraphQL) and the apps of each (REST), filtered
/// by `org` and a case-insensitive `name` substring. `org_visible` applies the
/// server's allowlist.
pub async fn list_apps(
    client: &fly::Client,
    org: Option<&str>,
    name: Option<&str>,
    org_visible: &(dyn Fn(&str) -> bool + Sync),
    app_visible: &(dyn Fn(&str) -> bool + Sync),
) -> Result<AppListing, Error> {
    let (token, orgs) = tokio::join!(client.current_token(), client.organizations());
    let mut out = AppListing::default();
    if let Ok(token) = token {
        for t in token.tokens {
            let mut parts = Vec::new();
            if let Some(u) = t.user.filter(|u| !u.is_empty()) {
                parts.push(format!("user {u}"));
            }
            if let Some(o) = t.org_slug.filter(|o| !o.is_empty()) {
                parts.push(format!("org {o}"));
            }
            if !t.apps.is_empty() {
                parts.push(format!("apps {}", t.apps.join(",")));
            }
            if !parts.is_empty() {
                out.identity.push(parts.join(", "));
            }
        }
    }
    let orgs = orgs.map_err(Error::fly("listing organizations"))?;
    let orgs: Vec<fly::Organization> = orgs
        .into_iter()
        .filter(|o| org.is_none_or(|want| o.slug == want))
        .filter(|o| org_visible(&o.slug))
        .collect();
    if let Some(want) = org
        && orgs.is_empty()
    {
        return Err(Error::NotFound {
            what: "org",
            id: want.to_owned(),
            hint: NextStep::to("call list_apps without org to see the orgs this token reaches"),
        });
    }
    let listings = join_all(orgs.iter().map(|o| client.list_apps(&o.slug))).await;
    let needle = name.map(str::to_lowercase);
    for (o, apps) in orgs.iter().zip(listings) {
        let mut brief = OrgBrief {
            slug: o.slug.clone(),
            name: o.name.clone(),
            kind: o.kind.clone().unwrap_or_default(),
            error: None,
        };
        match apps {
            Ok(apps) => {
                for a in apps {
                    if needle
                        .as_deref()
                        .is_some_and(|n| !a.name.to_lowercase().contains(n))
                        || !app_visible(&a.name)
                    {
                        continue;
                    }
                    out.apps.push(AppBrief {
                        org: a
                            .organization
                            .as_ref()
                            .map(|x| x.slug.clone())
                            .unwrap_or_else(|| o.slug.clone()),
                        name: a.name,
                        status: a.status,
                        machines: a.machine_count,
                        volumes: a.volume_count,
                    });
                }
            }
            Err(e) => brief.error = Some(e.to_string()),
        }
        out.orgs.push(brief);
    }
    out.apps
        .sort_by(|a, b| (&a.org, &a.name).cmp(&(&b.org, &b.name)));
    Ok(out)
}

/// The error for a machine id the app does not have: names the valid ids (up to
/// 30) so the next call can use one.
pub async fn unknown_machine(client: &fly::Client, app: &str, id: &str) -> Error {
    let filter = MachineFilter {
        summary: true,
        ..MachineFilter::default()
    };
    let hint = match client.list_machines(app, &filter).await {
        Ok(ms) => {
            let live: Vec<&Machine> = ms.iter().filter(|m| !m.state.is_terminal()).collect();
            if live.is_empty() {
                NextStep::to("the app has no machines")
            } else {
                let shown: Vec<String> = live
                    .iter()
                    .take(30)
                    .map(|m| format!("{} ({}, {}, {})", m.id, m.name, m.region, m.state))
                    .collect();
                let more = live.len().saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more (see app_status)")
                } else {
                    String::new()
                };
                NextStep::to(format!(
                    "valid machine ids of app {app}: {}{more}",
                    shown.join(", ")
                ))
            }
        }
        Err(_) => NextStep::to("call app_status to see the app's machine ids"),
    };
    Error::NotFound {
        what: "machine",
        id: format!("{id} (app {app})"),
        hint,
    }
}

/// Reads one machine by id (or, failing that, by its name); an unknown app or
/// machine is an actionable error.
pub async fn get_machine(client: &fly::Client, app: &str, id: &str) -> Result<Machine, Error> {
    match client.get_machine(app, id).await {
        Ok(m) => Ok(m),
        Err(e) if e.is_not_found() || e.status() == Some(400) => {
            // Tell an unknown app from an unknown machine; accept a machine name.
            if let Err(e) = client.get_app(app).await
                && e.is_not_found()
            {
                return Err(app_not_found(app)(e));
            }
            let filter = MachineFilter {
                summary: true,
                ..MachineFilter::default()
            };
            if let Ok(ms) = client.list_machines(app, &filter).await
                && let Some(named) = ms.iter().find(|m| m.name == id && !m.state.is_terminal())
            {
                return client
                    .get_machine(app, &named.id)
                    .await
                    .map_err(Error::fly(format!(
                        "reading machine {} of app {app}",
                        named.id
                    )));
            }
            Err(unknown_machine(client, app, id).await)
        }
        Err(e) => Err(Error::fly(format!("reading machine {id} of app {app}"))(e)),
    }
}

/// One health check of a machine.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    pub name: String,
    pub status: String,
    pub output: String,
    pub updated_at: Option<String>,
}

/// One event of a machine, described.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub at_ms: i64,
    pub text: String,
    pub source: String,
}

/// One process in the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessLine {
    pub pid: i64,
    pub command: String,
    pub cpu: f64,
    pub rss_bytes: u64,
    pub listening: Vec<String>,
}

/// Everything `machine_info` shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineDetail {
    pub row: MachineRow,
    pub version: String,
    pub private_ip: String,
    pub created_at: String,
    pub updated_at: String,
    pub image_digest: Option<String>,
    pub cmd: Option<String>,
    /// `tcp 3000 ← 80 [http] force_https, 443 [tls,http]; autostop off, autostart on, min 1`.
    pub services: Vec<String>,
    /// `vol_x → /data`.
    pub mounts: Vec<String>,
    /// `always`, `on-failure (max 3)`, …
    pub restart: Option<String>,
    /// Env variable names (values are not shown).
    pub env_names: Vec<String>,
    pub checks: Vec<CheckLine>,
    /// Oldest first.
    pub events: Vec<EventLine>,
    /// `owner (description) until T`.
    pub lease: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Newest first.
    pub versions: Vec<String>,
    pub processes: Option<Vec<ProcessLine>>,
    /// Why processes (or versions, or the lease) could not be read.
    pub gaps: Vec<Gap>,
}

fn describe_service(s: &fly::MachineService) -> String {
    let ports: Vec<String> = s
        .ports
        .iter()
        .map(|p| {
            let mut t = p
                .port
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".to_owned());
            if !p.handlers.is_empty() {
                t.push_str(&format!(" [{}]", p.handlers.join(",")));
            }
            if p.force_https == Some(true) {
                t.push_str(" force_https");
            }
            t
        })
        .collect();
    let mut text = format!("{} {}", s.protocol, s.internal_port);
    if !ports.is_empty() {
        text.push_str(&format!(" ← {}", ports.join(", ")));
    }
    let mut opts = Vec::new();
    if let Some(a) = s.autostop {
        opts.push(format!(
            "autostop {}",
            match a {
                fly::AutostopMode::Off => "off",
                fly::AutostopMode::Stop => "stop",
                fly::AutostopMode::Suspend => "suspend",
            }
        ));
    }
    if let Some(a) = s.autostart {
        opts.push(format!("autostart {}", if a { "on" } else { "off" }));
    }
    if let Some(n) = s.min_machines_running {
        opts.push(format!("min running {n}"));
    }
    if !opts.is_empty() {
        text.push_str(&format!("; {}", opts.join(", ")));
    }
    text
}

/// Reads one machine in detail: config summary, events, checks, lease holder,
/// metadata, versions, and processes when asked.
pub async fn machine_detail(
    client: &fly::Client,
    app: &str,
    id: &str,
    processes: bool,
    max_events: usize,
) -> Result<MachineDetail, Error> {
    let m = get_machine(client, app, id).await?;
    let id = m.id.as_str();
    let ps = async {
        if processes {
            Some(client.machine_ps(app, id).await)
        } else {
            None
        }
    };
    let (lease, versions, ps) = tokio::join!(
        client.get_lease(app, id),
        client.machine_versions(app, id),
        ps
    );
    let mut d = MachineDetail {
        row: MachineRow::from_machine(&m),
        version: m.version.clone(),
        private_ip: m.private_ip.clone(),
        created_at: m.created_at.clone(),
        updated_at: m.updated_at.clone(),
        image_digest: m
            .image_ref
            .as_ref()
            .map(|r| r.digest.clone())
            .filter(|d| !d.is_empty()),
        ..MachineDetail::default()
    };
    if let Some(c) = m.shown_config() {
        d.cmd = c
            .init
            .as_ref()
            .and_then(|i| i.cmd.as_ref())
            .map(|cmd| cmd.join(" "));
        d.services = c.services.iter().map(describe_service).collect();
        d.mounts = c
            .mounts
            .iter()
            .map(|mt| format!("{} → {}", mt.volume, mt.path))
            .collect();
        d.restart = c.restart.as_ref().map(|r| match r.max_retries {
            Some(n) => format!("{} (max {n} retries)", r.policy),
            None => r.policy.clone(),
        });
        d.env_names = c.env.keys().cloned().collect();
        d.metadata = c.metadata.clone();
    }
    d.checks = m
        .checks
        .iter()
        .map(|c| CheckLine {
            name: c.name.clone(),
            status: c.status.clone(),
            output: c.output.trim().to_owned(),
            updated_at: c.updated_at.clone(),
        })
        .collect();
    let mut events: Vec<&fly::MachineEvent> = m.events.iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    events.truncate(max_events);
    events.reverse();
    d.events = events
        .into_iter()
        .map(|e| EventLine {
            at_ms: e.timestamp,
            text: super::diagnose::describe_event(e),
            source: e.source.clone(),
        })
        .collect();
    match lease {
        Ok(Some(l)) => {
            let desc = if l.description.is_empty() {
                String::new()
            } else {
                format!(" ({})", l.description)
            };
            d.lease = Some(format!(
                "{}{desc} until {}",
                l.owner,
                super::observe::format_rfc3339(l.expires_at.saturating_mul(1000))
            ));
        }
        Ok(None) => {}
        Err(e) => d.gaps.push(gap("lease", &e)),
    }
    match versions {
        Ok(v) => d.versions = v.into_iter().map(|v| v.version).take(10).collect(),
        Err(e) => d.gaps.push(gap("versions", &e)),
    }
    match ps {
        Some(Ok(procs)) => {
            d.processes = Some(
                procs
                    .into_iter()
                    .map(|p| ProcessLine {
                        pid: p.pid,
                        command: p.command,
                        cpu: p.cpu,
                        rss_bytes: p.rss,
                        listening: p
                            .listen_sockets
                            .into_iter()
                            .map(|s| format!("{} {}", s.proto, s.address))
                            .collect(),
                    })
                    .collect(),
            );
        }
        Some(Err(e)) => d.gaps.push(gap("processes", &e)),
        None => {}
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(json: serde_json::Value) -> Machine {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_machine_row_counts_checks_restarts_and_oom_kills() {
        let m = machine(serde_json::json!({
            "id": "m1", "name": "web", "region": "ams", "state": "started",
            "config": {"image": "img:1", "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 4096},
                       "metadata": {"fly_process_group": "web"}},
            "checks": [
                {"name": "a", "status": "passing", "output": "ok"},
                {"name": "b", "status": "critical", "output": "context deadline exceeded"}
            ],
            "events": [
                {"type": "start", "status": "started", "source": "flyd", "timestamp": 3000},
                {"type": "exit", "status": "stopped", "source": "flyd", "timestamp": 2000,
                 "request": {"exit_event": {"exit_code": 137, "signal": 9, "oom_killed": true, "restarting": true}}},
                {"type": "exit", "status": "stopped", "source": "user", "timestamp": 1000,
                 "request": {"exit_event": {"exit_code": 0, "requested_stop": true}}}
            ]
        }));
        let row = MachineRow::from_machine(&m);
        assert_eq!(row.checks_passing, 1);
        assert_eq!(row.checks_critical, 1);
        assert_eq!(
            row.failing_checks,
            ["b critical: context deadline exceeded"]
        );
        assert_eq!(row.restarts, 1);
        assert_eq!(row.oom_kills, 1);
        assert_eq!(row.last_oom_ms, Some(2000));
        assert_eq!(row.last_event.as_ref().unwrap().kind, "start");
        assert_eq!(row.process_group, "web");
        assert_eq!(row.guest.as_deref(), Some("shared-cpu-2x 4096MB"));
        assert_eq!(row.urgency(), 0);
    }

    #[test]
    fn volume_usage_uses_reported_totals_or_the_size() {
        let v = VolumeFact {
            size_gb: 10,
            used_bytes: Some(9 * 1024 * 1024 * 1024),
            ..VolumeFact::default()
        };
        assert!((v.used_fraction().unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(v.used_text(), "9.0 GB");
        let unknown = VolumeFact::default();
        assert_eq!(unknown.used_fraction(), None);
    }
}
