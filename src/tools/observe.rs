//! The `observe` toolset: read-only tools that show what is there — `list_apps`,
//! `app_status`, `machine_info`, `app_logs`, `diagnose`, `platform_info`.
//!
//! Each result is compact aligned text plus structured content, ids always shown,
//! and bounded on its own (rows and bytes) so that both renderings stay under the
//! output cap, saying what was left out and how to narrow. The analysis lives in
//! `crate::workflows`; this file only shapes arguments and results.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{DeclarationError, ToolDef, ToolInfo, ToolOutput, Toolset},
    context::ToolContext,
    error::ToolError,
    render::table,
    untrusted,
};
use crate::workflows::{diagnose as diag, logs, observe as wf, status};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::read(LIST_APPS, list_apps)?,
        ToolDef::read(APP_STATUS, app_status)?,
        ToolDef::read(MACHINE_INFO, machine_info)?,
        ToolDef::read(APP_LOGS, app_logs)?,
        ToolDef::read(DIAGNOSE, diagnose)?,
        ToolDef::read(PLATFORM_INFO, platform_info)?,
    ])
}

const PLATFORM_INFO: ToolInfo = ToolInfo {
    name: "platform_info",
    title: "Fly regions and VM sizes",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "Fly regions (code, name, paid-only, deprecated) and VM sizes (CPU, memory, monthly and \
per-second price): to pick a region or a size, or to estimate cost.",
    narrow_hint: "set `include` to `regions` or `vm_sizes`",
};

/// Which part of the platform facts to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformPart {
    #[default]
    All,
    Regions,
    VmSizes,
}

/// Arguments of `platform_info`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformInfoArgs {
    /// What to list: `all` (default), `regions` or `vm_sizes`.
    #[serde(default)]
    pub include: PlatformPart,
    /// Also list deprecated regions.
    #[serde(default)]
    pub include_deprecated: bool,
}

/// A region.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RegionOut {
    /// Region code, e.g. `ams`.
    pub code: String,
    pub name: String,
    /// Only available on paid plans.
    pub paid_only: bool,
    /// Deprecated: avoid for new machines.
    pub deprecated: bool,
}

/// A VM size preset.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VmSizeOut {
    /// Preset name for `guest` / `vm_size`, e.g. `shared-cpu-1x`.
    pub name: String,
    pub cpu_cores: f64,
    /// Default memory in MB.
    pub memory_mb: i64,
    /// Largest memory in MB.
    pub max_memory_mb: i64,
    /// USD per month if running all month.
    pub price_month: f64,
    /// USD per second of running.
    pub price_second: f64,
}

/// Result of `platform_info`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlatformInfo {
    pub regions: Vec<RegionOut>,
    pub vm_sizes: Vec<VmSizeOut>,
}

impl ToolOutput for PlatformInfo {
    fn render_text(&self) -> String {
        let mut out = String::new();
        if !self.regions.is_empty() {
            let rows: Vec<Vec<String>> = self
                .regions
                .iter()
                .map(|r| {
                    let mut flags = Vec::new();
                    if r.paid_only {
                        flags.push("paid-only");
                    }
                    if r.deprecated {
                        flags.push("deprecated");
                    }
                    vec![r.code.clone(), r.name.clone(), flags.join(",")]
                })
                .collect();
            out.push_str(&format!("{} regions\n", rows.len()));
            out.push_str(&table(&["CODE", "NAME", "FLAGS"], &rows));
        }
        if !self.vm_sizes.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            let rows: Vec<Vec<String>> = self
                .vm_sizes
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        format!("{}", s.cpu_cores),
                        s.memory_mb.to_string(),
                        s.max_memory_mb.to_string(),
                        format!("${:.2}", s.price_month),
                        format!("${:.8}", s.price_second),
                    ]
                })
                .collect();
            out.push_str(&format!("{} VM sizes\n", rows.len()));
            out.push_str(&table(
                &[
                    "SIZE",
                    "CPUS",
                    "MEM_MB",
                    "MAX_MB",
                    "PER_MONTH",
                    "PER_SECOND",
                ],
                &rows,
            ));
        }
        out
    }
}

async fn platform_info(
    ctx: ToolContext,
    args: PlatformInfoArgs,
) -> Result<PlatformInfo, ToolError> {
    let (regions, sizes) = match args.include {
        PlatformPart::All => (true, true),
        PlatformPart::Regions => (true, false),
        PlatformPart::VmSizes => (false, true),
    };
    let facts = wf::platform_facts(ctx.client(), regions, sizes).await?;
    Ok(PlatformInfo {
        regions: facts
            .regions
            .into_iter()
            .filter(|r| args.include_deprecated || !r.deprecated)
            .map(|r| RegionOut {
                code: r.code,
                name: r.name,
                paid_only: r.paid_only,
                deprecated: r.deprecated,
            })
            .collect(),
        vm_sizes: facts
            .vm_sizes
            .into_iter()
            .map(|s| VmSizeOut {
                name: s.name,
                cpu_cores: s.cpu_cores,
                memory_mb: s.memory_mb,
                max_memory_mb: s.max_memory_mb,
                price_month: s.price_month,
                price_second: s.price_second,
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Shared limits and helpers.

/// Bytes of rows (text and structured alike) one result spends at most, leaving
/// room for headers under the default 16 KiB output cap.
const ROW_BUDGET: usize = 11 * 1024;

/// App name argument bounds (Fly app names).
const APP_PATTERN: &str = r"^[a-z0-9][a-z0-9-]*$";

fn counts_text(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// list_apps

const LIST_APPS: ToolInfo = ToolInfo {
    name: "list_apps",
    title: "Apps this token reaches",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "Who the token is, its orgs and their apps (status, machine and volume counts); filter by \
`org` or `name`. Start here when the app name is unknown, then app_status or diagnose.",
    narrow_hint: "set `org` or `name`",
};

/// Arguments of `list_apps`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAppsArgs {
    /// Only this org (slug, e.g. `personal`).
    #[schemars(length(min = 1, max = 100))]
    pub org: Option<String>,
    /// Only apps whose name contains this (any case).
    #[schemars(length(min = 1, max = 100))]
    pub name: Option<String>,
}

// An org the token reaches.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrgOut {
    pub slug: String,
    pub name: String,
    // `PERSONAL` or `SHARED`.
    pub kind: String,
    // Its apps could not be listed (why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// An app in the listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppOut {
    pub name: String,
    pub org: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<u64>,
}

// Result of `list_apps`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListAppsOut {
    // Who the token is (one entry per token in the header).
    pub identity: Vec<String>,
    pub orgs: Vec<OrgOut>,
    pub apps: Vec<AppOut>,
    // Apps matching but left out to stay under the output cap.
    pub left_out: usize,
}

impl ToolOutput for ListAppsOut {
    fn render_text(&self) -> String {
        let mut out = String::new();
        if !self.identity.is_empty() {
            out.push_str(&format!("token: {}\n", self.identity.join("; ")));
        }
        let orgs: Vec<String> = self
            .orgs
            .iter()
            .map(|o| {
                let kind = o.kind.to_lowercase();
                match &o.error {
                    Some(e) => format!("{} ({}, {kind}; apps not listed: {e})", o.slug, o.name),
                    None => format!("{} ({}, {kind})", o.slug, o.name),
                }
            })
            .collect();
        out.push_str(&format!("orgs: {}\n", orgs.join(", ")));
        if self.apps.is_empty() {
            out.push_str("no apps\n");
        } else {
            let rows: Vec<Vec<String>> = self
                .apps
                .iter()
                .map(|a| {
                    let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                    vec![
                        a.name.clone(),
                        a.org.clone(),
                        a.status.clone(),
                        n(a.machines),
                        n(a.volumes),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["APP", "ORG", "STATUS", "MACHINES", "VOLUMES"],
                &rows,
            ));
        }
        if self.left_out > 0 {
            out.push_str(&format!(
                "left out {} more apps; narrow with `org` or `name`\n",
                self.left_out
            ));
        }
        out
    }
}

async fn list_apps(ctx: ToolContext, args: ListAppsArgs) -> Result<ListAppsOut, ToolError> {
    let scope = ctx.scope();
    let listing = status::list_apps(
        ctx.client(),
        args.org.as_deref(),
        args.name.as_deref(),
        &|o| scope.org_visible(o),
        &|a| scope.app_visible(a),
    )
    .await?;
    let mut apps = Vec::new();
    let mut bytes = 0usize;
    let total = listing.apps.len();
    for a in listing.apps {
        let cost = a.name.len() + a.org.len() + a.status.len() + 70;
        if bytes + cost > ROW_BUDGET {
            break;
        }
        bytes += cost;
        apps.push(AppOut {
            name: a.name,
            org: a.org,
            status: a.status,
            machines: a.machines,
            volumes: a.volumes,
        });
    }
    Ok(ListAppsOut {
        identity: listing.identity,
        orgs: listing
            .orgs
            .into_iter()
            .map(|o| OrgOut {
                slug: o.slug,
                name: o.name,
                kind: o.kind,
                error: o.error,
            })
            .collect(),
        left_out: total.saturating_sub(apps.len()),
        apps,
    })
}

// ---------------------------------------------------------------------------
// app_status

const APP_STATUS: ToolInfo = ToolInfo {
    name: "app_status",
    title: "App status: machines, checks, IPs, volumes, certificates",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "What `fly status` shows and more, in one call: the URL; every machine (id, region, state, \
checks, last event, restarts, OOM kills; unhealthy first, with check output); IPs, volumes, \
certificates. Narrow big apps by `region`, `state`, `limit`. Causes: diagnose; one machine: \
machine_info.",
    narrow_hint: "filter with `region` or `state`, or lower `limit`",
};

/// Machine states `app_status` can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    Started,
    Stopped,
    Suspended,
    Created,
    Failed,
}

impl StateFilter {
    fn as_str(self) -> &'static str {
        match self {
            StateFilter::Started => "started",
            StateFilter::Stopped => "stopped",
            StateFilter::Suspended => "suspended",
            StateFilter::Created => "created",
            StateFilter::Failed => "failed",
        }
    }
}

/// Arguments of `app_status`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppStatusArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), regex(pattern = APP_PATTERN))]
    pub app: String,
    /// Only machines in this region (e.g. `ams`).
    #[schemars(length(min = 2, max = 8))]
    pub region: Option<String>,
    /// Only machines in this state.
    pub state: Option<StateFilter>,
    /// Most machines to list (default 100), unhealthy first.
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

// A machine as `app_status` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineStatusOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    // Host status when not `ok` (`unreachable`, `unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    // `1 passing`, `1 critical`, `-` (no checks).
    pub checks: String,
    // Last event, e.g. `start → started`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
    // When the last event happened (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<String>,
    // Unplanned exits among recent events.
    pub restarts: u64,
    // OOM kills among recent events.
    pub oom_kills: u64,
    // The image, when it differs from the app's common image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    // Lease holder, when leased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cordoned: bool,
}

// An address of the app.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IpOut {
    pub address: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
}

// A volume of the app.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VolumeOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u64,
    // Used share in percent, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_to: Option<String>,
}

// A certificate of the app.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CertOut {
    pub hostname: String,
    pub status: String,
    pub configured: bool,
}

// Result of `app_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppStatusOut {
    pub app: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    pub status: String,
    pub url: String,
    // Machines matching the filters.
    pub machine_count: usize,
    // Machines per state.
    pub states: BTreeMap<String, usize>,
    // Machines per region.
    pub regions: BTreeMap<String, usize>,
    // The image most machines run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    // The guest size most machines have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    // Unhealthy first, then by region and name.
    pub machines: Vec<MachineStatusOut>,
    // Failing checks of the listed machines: `id check status: output`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_checks: Vec<String>,
    // Machines not listed (limit or output cap).
    pub left_out: usize,
    // What was left out and how to narrow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out_note: Option<String>,
    pub ips: Vec<IpOut>,
    pub volumes: Vec<VolumeOut>,
    pub certificates: Vec<CertOut>,
    // Parts that could not be read, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

fn checks_text(row: &status::MachineRow) -> String {
    let mut parts = Vec::new();
    if row.checks_critical > 0 {
        parts.push(format!("{} critical", row.checks_critical));
    }
    if row.checks_warning > 0 {
        parts.push(format!("{} warning", row.checks_warning));
    }
    if row.checks_passing > 0 {
        parts.push(format!("{} passing", row.checks_passing));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The value most rows have.
fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values.filter(|v| !v.is_empty()) {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(v, _)| v.to_owned())
}

/// Short form of an image for a table: the part after the last `/`.
fn short_image(image: &str) -> String {
    image.rsplit('/').next().unwrap_or(image).to_owned()
}

impl ToolOutput for AppStatusOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "app {} ({}{}) {}\n",
            self.app,
            self.org
                .as_deref()
                .map(|o| format!("org {o}, "))
                .unwrap_or_default(),
            self.status,
            self.url
        );
        if let Some(img) = &self.image {
            out.push_str(&format!("image {img}"));
            if let Some(g) = &self.guest {
                out.push_str(&format!(" · guest {g}"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "{} machines: {} · regions: {}\n",
            self.machine_count,
            counts_text(&self.states),
            counts_text(&self.regions)
        ));
        if !self.machines.is_empty() {
            let drift = self.machines.iter().any(|m| m.image.is_some());
            let rows: Vec<Vec<String>> = self
                .machines
                .iter()
                .map(|m| {
                    let mut state = m.state.clone();
                    if let Some(h) = &m.host {
                        state.push_str(&format!(" (host {h})"));
                    }
                    if m.cordoned {
                        state.push_str(" (cordoned)");
                    }
                    let mut row = vec![
                        m.id.clone(),
                        m.name.clone(),
                        m.region.clone(),
                        state,
                        m.checks.clone(),
                        m.last_event_text(),
                        m.restarts.to_string(),
                        if m.oom_kills > 0 {
                            m.oom_kills.to_string()
                        } else {
                            "-".to_owned()
                        },
                    ];
                    if drift {
                        row.push(m.image.as_deref().map(short_image).unwrap_or_default());
                    }
                    row
                })
                .collect();
            let mut header = vec![
                "ID",
                "NAME",
                "REGION",
                "STATE",
                "CHECKS",
                "LAST EVENT",
                "RESTARTS",
                "OOM",
            ];
            if drift {
                header.push("IMAGE (if different)");
            }
            out.push_str(&table(&header, &rows));
        }
        if let Some(note) = &self.left_out_note {
            out.push_str(note);
            out.push('\n');
        }
        if !self.failing_checks.is_empty() {
            out.push_str("failing checks:\n");
            let lines: String = self
                .failing_checks
                .iter()
                .map(|c| format!("  {c}\n"))
                .collect();
            out.push_str(&untrusted::block(&lines));
        }
        let ips: Vec<String> = self
            .ips
            .iter()
            .map(|i| {
                if i.region.is_empty() || i.region == "global" {
                    format!("{} ({})", i.address, i.kind)
                } else {
                    format!("{} ({} {})", i.address, i.kind, i.region)
                }
            })
            .collect();
        out.push_str(&format!(
            "IPs: {}\n",
            if ips.is_empty() {
                "none".to_owned()
            } else {
                ips.join(", ")
            }
        ));
        let vols: Vec<String> = self
            .volumes
            .iter()
            .map(|v| {
                let used = v
                    .used_percent
                    .map(|p| format!(", {p}% used"))
                    .unwrap_or_default();
                let att = v
                    .attached_to
                    .as_deref()
                    .map(|m| format!(", on {m}"))
                    .unwrap_or_else(|| ", unattached".to_owned());
                format!(
                    "{} {} ({}, {} GB{used}{att})",
                    v.id, v.name, v.region, v.size_gb
                )
            })
            .collect();
        out.push_str(&format!(
            "volumes: {}\n",
            if vols.is_empty() {
                "none".to_owned()
            } else {
                vols.join("; ")
            }
        ));
        let certs: Vec<String> = self
            .certificates
            .iter()
            .map(|c| format!("{} ({})", c.hostname, c.status))
            .collect();
        out.push_str(&format!(
            "certificates: {}\n",
            if certs.is_empty() {
                "none".to_owned()
            } else {
                certs.join(", ")
            }
        ));
        for u in &self.unavailable {
            out.push_str(&format!("not read: {u}\n"));
        }
        out
    }
}

impl MachineStatusOut {
    fn last_event_text(&self) -> String {
        match (&self.last_event, &self.last_event_at) {
            (Some(e), Some(at)) => {
                let kind = e.split(' ').next().unwrap_or(e);
                let ago = wf::parse_rfc3339_ms(at)
                    .map(|t| format!(" {} ago", wf::age(wf::now_ms(), t)))
                    .unwrap_or_default();
                format!("{kind}{ago}")
            }
            (Some(e), None) => e.clone(),
            (None, _) => "-".to_owned(),
        }
    }
}

async fn app_status(ctx: ToolContext, args: AppStatusArgs) -> Result<AppStatusOut, ToolError> {
    let sel = status::MachineSelection {
        region: args.region.clone(),
        state: args.state.map(|s| s.as_str().to_owned()),
    };
    let st = status::app_status(ctx.client(), &args.app, &sel).await?;
    let limit = args.limit.unwrap_or(100) as usize;
    let image = most_common(st.machines.iter().map(|m| m.image.as_str()));
    let guest = most_common(st.machines.iter().filter_map(|m| m.guest.as_deref()));

    let mut machines = Vec::new();
    let mut failing_checks = Vec::new();
    let mut bytes = 0usize;
    for row in &st.machines {
        if machines.len() >= limit {
            break;
        }
        let out = MachineStatusOut {
            id: row.id.clone(),
            name: row.name.clone(),
            region: row.region.clone(),
            state: row.state.clone(),
            host: row.host_status.clone().filter(|h| h != "ok"),
            checks: checks_text(row),
            last_event: row.last_event.as_ref().map(|e| {
                let mut t = if e.status.is_empty() || e.status == e.kind {
                    e.kind.clone()
                } else {
                    format!("{} → {}", e.kind, e.status)
                };
                if e.oom_killed {
                    t.push_str(" (OOM)");
                }
                t
            }),
            last_event_at: row.last_event.as_ref().map(|e| wf::format_rfc3339(e.at_ms)),
            restarts: row.restarts,
            oom_kills: row.oom_kills,
            image: Some(row.image.clone()).filter(|i| image.as_deref() != Some(i.as_str())),
            lease: row.lease_owner.clone(),
            cordoned: row.cordoned,
        };
        let checks: Vec<String> = row
            .failing_checks
            .iter()
            .map(|c| format!("{} {}", row.id, untrusted::line(&wf::clip(c, 200))))
            .collect();
        // Text row plus its JSON keys: about 330 bytes for a typical machine.
        let cost = 200
            + out.id.len()
            + out.name.len()
            + out.checks.len()
            + out.image.as_ref().map_or(0, String::len)
            + checks.iter().map(String::len).sum::<usize>();
        if bytes + cost > ROW_BUDGET && !machines.is_empty() {
            break;
        }
        bytes += cost;
        failing_checks.extend(checks);
        machines.push(out);
    }
    let left_out = st.machines.len().saturating_sub(machines.len());
    let left_out_note = (left_out > 0).then(|| {
        let mut omitted: BTreeMap<String, usize> = BTreeMap::new();
        for m in st.machines.iter().skip(machines.len()) {
            *omitted.entry(m.state.clone()).or_insert(0) += 1;
        }
        let attention = st
            .machines
            .iter()
            .skip(machines.len())
            .filter(|m| m.needs_attention())
            .count();
        format!(
            "left out {left_out} machines ({}{}); narrow with `region` or `state` (counts above), or `limit`",
            counts_text(&omitted),
            if attention > 0 {
                format!(", {attention} of them need attention")
            } else {
                ", all healthy".to_owned()
            }
        )
    });
    Ok(AppStatusOut {
        url: format!("https://{}", st.hostname),
        app: st.name.clone(),
        org: st.org.clone(),
        status: st.status.clone(),
        machine_count: st.machines.len(),
        states: st.state_counts(),
        regions: st.region_counts(),
        image,
        guest,
        machines,
        failing_checks,
        left_out,
        left_out_note,
        ips: st
            .ips
            .into_iter()
            .map(|i| IpOut {
                address: i.address,
                kind: i.kind,
                region: i.region,
            })
            .collect(),
        volumes: st
            .volumes
            .into_iter()
            .map(|v| VolumeOut {
                used_percent: v.used_fraction().map(|f| (f * 100.0).round() as u32),
                id: v.id,
                name: v.name,
                region: v.region,
                size_gb: v.size_gb,
                attached_to: v.attached_machine_id,
            })
            .collect(),
        certificates: st
            .certificates
            .into_iter()
            .map(|c| CertOut {
                hostname: c.hostname,
                status: c.status,
                configured: c.configured,
            })
            .collect(),
        unavailable: st
            .gaps
            .into_iter()
            .map(|g| format!("{}: {}", g.part, wf::clip(&g.error, 200)))
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// machine_info

const MACHINE_INFO: ToolInfo = ToolInfo {
    name: "machine_info",
    title: "One machine in detail",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "One machine in detail: config (image, guest, cmd, services, mounts, restart policy, env \
names), event timeline (exit codes, signals, OOM kills), checks with output, lease holder, \
metadata, versions; processes when `processes` is true.",
    narrow_hint: "lower `events`",
};

/// Arguments of `machine_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineInfoArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), regex(pattern = APP_PATTERN))]
    pub app: String,
    /// Machine id or name.
    #[schemars(length(min = 1, max = 63))]
    pub machine: String,
    /// Also list its running processes.
    #[serde(default)]
    pub processes: bool,
    /// Latest events to show (default 20).
    #[schemars(range(min = 1, max = 100))]
    pub events: Option<u32>,
}

// A health check.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckOut {
    pub name: String,
    pub status: String,
    pub output: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

// An event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventOut {
    // RFC 3339.
    pub at: String,
    // `user` or `flyd`.
    pub source: String,
    // e.g. `exit → stopped: OOM-killed, exit code 137, signal 9 (SIGKILL), restarting`.
    pub text: String,
}

// A process.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProcessOut {
    pub pid: i64,
    pub command: String,
    pub cpu: f64,
    pub rss_mb: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listening: Vec<String>,
}

// Result of `machine_info`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineInfoOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_status: Option<String>,
    pub version: String,
    pub private_ip: String,
    pub created_at: String,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    pub services: Vec<String>,
    pub mounts: Vec<String>,
    // Environment variable names (values are not shown).
    pub env: Vec<String>,
    pub checks: Vec<CheckOut>,
    // Oldest first.
    pub events: Vec<EventOut>,
    // Unplanned exits and OOM kills among the events.
    pub restarts: u64,
    pub oom_kills: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    pub metadata: BTreeMap<String, String>,
    // Newest first.
    pub versions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessOut>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

impl ToolOutput for MachineInfoOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "machine {} {} ({}) {}",
            self.id, self.name, self.region, self.state
        );
        if let Some(h) = &self.host_status {
            out.push_str(&format!(" · host {h}"));
        }
        out.push_str(&format!(
            " · version {} · private IP {} · created {}\n",
            self.version, self.private_ip, self.created_at
        ));
        out.push_str(&format!("image {}", self.image));
        if let Some(d) = &self.image_digest {
            out.push_str(&format!(" ({d})"));
        }
        out.push('\n');
        let mut line = Vec::new();
        if let Some(g) = &self.guest {
            line.push(format!("guest {g}"));
        }
        if let Some(r) = &self.restart {
            line.push(format!("restart {r}"));
        }
        if let Some(c) = &self.cmd {
            line.push(format!("cmd {c}"));
        }
        if !line.is_empty() {
            out.push_str(&line.join(" · "));
            out.push('\n');
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join("; ")
            }
        };
        out.push_str(&format!("services: {}\n", list(&self.services)));
        out.push_str(&format!("mounts: {}\n", list(&self.mounts)));
        out.push_str(&format!("env: {}\n", untrusted::block(&list(&self.env))));
        if self.checks.is_empty() {
            out.push_str("checks: none\n");
        } else {
            out.push_str("checks:\n");
            let rows: Vec<Vec<String>> = self
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.status.clone(),
                        wf::clip(&c.output, 200),
                        c.updated_at.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.push_str(&untrusted::block(&table(
                &["NAME", "STATUS", "OUTPUT", "UPDATED"],
                &rows,
            )));
        }
        out.push_str(&format!(
            "events (oldest first; {} restarts, {} OOM kills):\n",
            self.restarts, self.oom_kills
        ));
        let rows: Vec<Vec<String>> = self
            .events
            .iter()
            .map(|e| vec![e.at.clone(), e.source.clone(), e.text.clone()])
            .collect();
        out.push_str(&untrusted::block(&table(&["AT", "SOURCE", "EVENT"], &rows)));
        out.push_str(&format!(
            "lease: {}\n",
            self.lease.as_deref().unwrap_or("none")
        ));
        let meta: Vec<String> = self
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("metadata: {}\n", untrusted::block(&list(&meta))));
        out.push_str(&format!("versions: {}\n", list(&self.versions)));
        if let Some(ps) = &self.processes {
            let rows: Vec<Vec<String>> = ps
                .iter()
                .map(|p| {
                    vec![
                        p.pid.to_string(),
                        wf::clip(&p.command, 80),
                        format!("{:.1}", p.cpu),
                        format!("{:.0}", p.rss_mb),
                        p.listening.join(", "),
                    ]
                })
                .collect();
            out.push_str("processes:\n");
            out.push_str(&untrusted::block(&table(
                &["PID", "COMMAND", "CPU", "RSS_MB", "LISTEN"],
                &rows,
            )));
        }
        for u in &self.unavailable {
            out.push_str(&format!("not read: {u}\n"));
        }
        out
    }
}

async fn machine_info(
    ctx: ToolContext,
    args: MachineInfoArgs,
) -> Result<MachineInfoOut, ToolError> {
    let events = args.events.unwrap_or(20) as usize;
    let d = status::machine_detail(
        ctx.client(),
        &args.app,
        &args.machine,
        args.processes,
        events,
    )
    .await?;
    Ok(MachineInfoOut {
        id: d.row.id.clone(),
        name: d.row.name.clone(),
        region: d.row.region.clone(),
        state: d.row.state.clone(),
        host_status: d.row.host_status.clone().filter(|h| h != "ok"),
        version: d.version,
        private_ip: d.private_ip,
        created_at: d.created_at,
        image: d.row.image.clone(),
        image_digest: d.image_digest,
        guest: d.row.guest.clone(),
        cmd: d.cmd,
        restart: d.restart,
        services: d.services,
        mounts: d.mounts,
        env: d.env_names.iter().map(|n| untrusted::line(n)).collect(),
        checks: d
            .checks
            .into_iter()
            .map(|c| CheckOut {
                name: c.name,
                status: c.status,
                output: untrusted::line(&wf::clip(&c.output, 1000)),
                updated_at: c.updated_at,
            })
            .collect(),
        events: d
            .events
            .into_iter()
            .map(|e| EventOut {
                at: wf::format_rfc3339(e.at_ms),
                source: e.source,
                text: untrusted::line(&e.text),
            })
            .collect(),
        restarts: d.row.restarts,
        oom_kills: d.row.oom_kills,
        lease: d.lease,
        metadata: d
            .metadata
            .into_iter()
            .map(|(k, v)| (untrusted::line(&k), untrusted::line(&v)))
            .collect(),
        versions: d.versions,
        processes: d.processes.map(|ps| {
            ps.into_iter()
                .take(50)
                .map(|p| ProcessOut {
                    pid: p.pid,
                    command: untrusted::line(&p.command),
                    cpu: p.cpu,
                    rss_mb: p.rss_bytes as f64 / 1024.0 / 1024.0,
                    listening: p.listening,
                })
                .collect()
        }),
        unavailable: d
            .gaps
            .into_iter()
            .map(|g| format!("{}: {}", g.part, wf::clip(&g.error, 200)))
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// app_logs

const APP_LOGS: ToolInfo = ToolInfo {
    name: "app_logs",
    title: "App logs, filtered and paged",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "An app's log lines, newest last, secrets redacted, capped. Without `since` only the latest \
lines are searched; with it, lines run oldest first from then: pass `next` back to continue.",
    narrow_hint: "add `grep`, `machine` or a later `since`, or lower `tail`",
};

/// Arguments of `app_logs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppLogsArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), regex(pattern = APP_PATTERN))]
    pub app: String,
    /// Only this machine (id or name).
    #[schemars(length(min = 1, max = 63))]
    pub machine: Option<String>,
    /// Only this region (e.g. `ewr`).
    #[schemars(length(min = 2, max = 8))]
    pub region: Option<String>,
    /// From this time on: a duration back from now (`15m`, `2h`, `1d`) or an RFC 3339 time.
    #[schemars(length(min = 2, max = 40))]
    pub since: Option<String>,
    /// Only lines containing this text (any case), or matching `/regex/` (`/regex/i`: any
    /// case).
    #[schemars(length(min = 1, max = 200))]
    pub grep: Option<String>,
    /// Most lines to return (default 100).
    #[schemars(range(min = 1, max = 500))]
    pub tail: Option<u32>,
    /// An earlier answer's `next`: continue after it.
    #[schemars(length(min = 1, max = 40))]
    pub next: Option<String>,
}

// A log line.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogLineOut {
    // RFC 3339 with milliseconds.
    pub time: String,
    pub machine: String,
    pub region: String,
    pub level: String,
    pub message: String,
}

// Result of `app_logs`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppLogsOut {
    // Oldest first, newest last.
    pub lines: Vec<LogLineOut>,
    // Pass as `next` to continue after the last line (or, when `complete`, to see newer lines later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    // Everything up to now was read.
    pub complete: bool,
    // Matching lines not returned (tail or output cap).
    pub left_out: usize,
    // Lines read before `grep`.
    pub scanned: usize,
    // How to read more, when there is more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ToolOutput for AppLogsOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "{} lines (read {}){}\n",
            self.lines.len(),
            self.scanned,
            self.next
                .as_deref()
                .map(|n| format!(" · next: {n}"))
                .unwrap_or_default()
        );
        let mut date = "";
        let mut lines = String::new();
        for l in &self.lines {
            let (d, t) = l.time.split_once('T').unwrap_or(("", l.time.as_str()));
            if d != date {
                lines.push_str(&format!("-- {d} --\n"));
                date = d;
            }
            let t = t.trim_end_matches('Z');
            lines.push_str(&format!(
                "{t} {} {} {} {}\n",
                l.machine, l.region, l.level, l.message
            ));
        }
        if !lines.is_empty() {
            out.push_str(&untrusted::block(&lines));
        }
        if let Some(n) = &self.note {
            out.push_str(n);
            out.push('\n');
        }
        out
    }
}

async fn app_logs(ctx: ToolContext, args: AppLogsArgs) -> Result<AppLogsOut, ToolError> {
    let now = wf::now_ms();
    let since_ms = args
        .since
        .as_deref()
        .map(|s| logs::parse_since(s, now))
        .transpose()?;
    let grep = args.grep.as_deref().map(logs::Grep::parse).transpose()?;
    let q = logs::LogsQuery {
        machine: args.machine.clone(),
        region: args.region.clone(),
        since_ms,
        cursor: args.next.clone(),
        grep,
        tail: args.tail.map_or(logs::DEFAULT_TAIL, |t| t as usize),
        max_bytes: ROW_BUDGET,
    };
    let r = logs::read_logs(ctx.client(), &args.app, &q).await?;
    let note = if r.latest_only && r.left_out > 0 {
        Some(format!(
            "left out {} older matching lines; pass `since` to page through them",
            r.left_out
        ))
    } else if r.latest_only {
        Some(
            "searched only the latest lines; pass `since` (e.g. `1h`) to search further back"
                .to_owned(),
        )
    } else if !r.complete {
        Some(format!(
            "more lines follow{}: call again with next={}",
            if r.left_out > 0 {
                format!(
                    " ({} matching lines already seen on the last page)",
                    r.left_out
                )
            } else {
                String::new()
            },
            r.next.as_deref().unwrap_or_default()
        ))
    } else {
        None
    };
    Ok(AppLogsOut {
        lines: r
            .lines
            .into_iter()
            .map(|l| LogLineOut {
                time: format_millis(l.ts_ms()),
                machine: l.instance,
                region: l.region,
                level: l.level,
                message: untrusted::line(&l.message),
            })
            .collect(),
        next: r.next,
        complete: r.complete,
        left_out: r.left_out,
        scanned: r.scanned,
        note,
    })
}

/// RFC 3339 with milliseconds.
fn format_millis(ms: i64) -> String {
    let secs = wf::format_rfc3339(ms);
    let frac = ms.rem_euclid(1000);
    match secs.strip_suffix('Z') {
        Some(base) => format!("{base}.{frac:03}Z"),
        None => secs,
    }
}

// ---------------------------------------------------------------------------
// diagnose

const DIAGNOSE: ToolInfo = ToolInfo {
    name: "diagnose",
    title: "Diagnose an app",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "What is wrong with an app, in one call: OOM kills (RSS against the limit), crash loops, \
critical checks, stuck transitions, unreachable hosts, failed machines, config drift, full \
volumes, long-held leases. Each finding: severity, machine, exact evidence, next step; plus \
a per-second timeline of the worst incident.",
    narrow_hint: "read one machine with machine_info or app_logs",
};

/// Arguments of `diagnose`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseArgs {
    /// App name.
    #[schemars(length(min = 1, max = 63), regex(pattern = APP_PATTERN))]
    pub app: String,
}

// A finding.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FindingOut {
    // `critical`, `warning` or `info`.
    pub severity: String,
    // e.g. `oom_kill`, `check_critical`, `crash_loop`, `image_drift`.
    pub kind: String,
    // Machine id; absent for app-wide findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub title: String,
    // The exact event, check or log lines.
    pub evidence: Vec<String>,
    pub next_step: String,
}

// One step of the incident timeline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TimelineOut {
    // `HH:MM:SS` UTC.
    pub time: String,
    // Seconds after the incident started.
    pub offset_s: f64,
    // `log`, `event` or `check`.
    pub source: String,
    pub text: String,
}

// The worst incident.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IncidentOut {
    pub machine: String,
    pub region: String,
    // RFC 3339.
    pub started_at: String,
    // Seconds until health checks passed again; absent if not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_after_s: Option<i64>,
    // The steps in order, e.g. `OOM kill`, `SIGKILL`, `reboot`, ….
    pub chain: Vec<String>,
    pub timeline: Vec<TimelineOut>,
}

// Result of `diagnose`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiagnoseOut {
    pub app: String,
    pub machines: usize,
    // Machines no finding names.
    pub healthy: usize,
    // Most urgent first.
    pub findings: Vec<FindingOut>,
    // Findings left out to stay under the output cap (the least urgent).
    pub left_out: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentOut>,
    // Log lines read.
    pub logs_read: usize,
}

fn offset_text(s: f64) -> String {
    if (s - s.round()).abs() < 0.05 {
        format!("{:+}s", s.round() as i64)
    } else {
        format!("{s:+.1}s")
    }
}

impl ToolOutput for DiagnoseOut {
    fn render_text(&self) -> String {
        let mut by_sev: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &self.findings {
            *by_sev.entry(f.severity.as_str()).or_insert(0) += 1;
        }
        let sev: Vec<String> = ["critical", "warning", "info"]
            .iter()
            .filter_map(|s| by_sev.get(s).map(|n| format!("{n} {s}")))
            .collect();
        let mut out = format!(
            "diagnose {}: {} machines, {} without findings; {} findings{}; {} log lines read\n",
            self.app,
            self.machines,
            self.healthy,
            self.findings.len() + self.left_out,
            if sev.is_empty() {
                String::new()
            } else {
                format!(" ({})", sev.join(", "))
            },
            self.logs_read
        );
        for f in &self.findings {
            let whom = match (&f.machine, &f.region) {
                (Some(m), Some(r)) => format!("{m} ({r})"),
                (Some(m), None) => m.clone(),
                (None, _) => "app".to_owned(),
            };
            out.push_str(&format!(
                "\n{} {whom}: {}\n",
                f.severity.to_uppercase(),
                f.title
            ));
            let evidence: String = f
                .evidence
                .iter()
                .map(|e| format!("  evidence: {e}\n"))
                .collect();
            if !evidence.is_empty() {
                out.push_str(&untrusted::block(&evidence));
            }
            out.push_str(&format!("  next: {}\n", f.next_step));
        }
        if self.left_out > 0 {
            out.push_str(&format!(
                "\nleft out {} less urgent findings; use app_status and machine_info for the rest\n",
                self.left_out
            ));
        }
        if let Some(i) = &self.incident {
            let recovered = match i.recovered_after_s {
                Some(s) => format!("; recovered in {s} s"),
                None => "; no recovery seen".to_owned(),
            };
            out.push_str(&format!(
                "\nworst incident: {} ({}) at {}: {}{recovered}\n",
                i.machine,
                i.region,
                i.started_at,
                i.chain.join(" → ")
            ));
            let rows: Vec<Vec<String>> = i
                .timeline
                .iter()
                .map(|t| {
                    vec![
                        t.time.clone(),
                        offset_text(t.offset_s),
                        t.source.clone(),
                        t.text.clone(),
                    ]
                })
                .collect();
            out.push_str(&untrusted::block(&table(
                &["TIME", "T", "SOURCE", "WHAT"],
                &rows,
            )));
        } else if self.findings.is_empty() {
            out.push_str("no unplanned exits and nothing failing\n");
        }
        out
    }
}

async fn diagnose(ctx: ToolContext, args: DiagnoseArgs) -> Result<DiagnoseOut, ToolError> {
    let d = diag::diagnose(ctx.client(), &args.app, wf::now_ms()).await?;
    let incident = d.incident.map(|i| IncidentOut {
        started_at: wf::format_rfc3339(i.started_ms),
        machine: i.machine,
        region: i.region,
        recovered_after_s: i.recovered_after_s,
        chain: i.chain,
        timeline: i
            .entries
            .iter()
            .map(|e| TimelineOut {
                time: diag::entry_clock(e),
                offset_s: e.offset_ms as f64 / 1000.0,
                source: e.source.as_str().to_owned(),
                text: untrusted::line(&e.text),
            })
            .collect(),
    });
    // The timeline is bounded by the workflow (30 entries); findings share the rest.
    let mut budget = ROW_BUDGET;
    let mut findings = Vec::new();
    let total = d.findings.len();
    for f in d.findings {
        let cost = 120
            + f.title.len()
            + f.next_step.len()
            + f.evidence.iter().map(|e| e.len() + 14).sum::<usize>();
        if cost > budget && !findings.is_empty() {
            break;
        }
        budget = budget.saturating_sub(cost);
        findings.push(FindingOut {
            severity: f.severity.as_str().to_owned(),
            kind: f.kind.as_str().to_owned(),
            machine: f.machine,
            region: f.region,
            // Titles quote check output and log text.
            title: untrusted::line(&f.title),
            evidence: f.evidence.iter().map(|e| untrusted::line(e)).collect(),
            next_step: f.next_step,
        });
    }
    Ok(DiagnoseOut {
        app: d.app,
        machines: d.machines,
        healthy: d.healthy,
        left_out: total.saturating_sub(findings.len()),
        findings,
        incident,
        logs_read: d.logs_scanned,
    })
}
