//! `app_status`: one app at a glance — machines by state and region, checks, IPs,
//! volumes, certificates.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ROW_BUDGET, counts_text, listed};
use crate::tools::args::{AppName, Region};
use crate::tools::render::table_of;
use crate::tools::untrusted;
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{observe as wf, status};

pub(super) const APP_STATUS: ToolInfo = ToolInfo {
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
    pub app: AppName,
    /// Only machines in this region (e.g. `ams`).
    pub region: Option<Region>,
    /// Only machines in this state.
    pub state: Option<StateFilter>,
    /// Most machines to list (default 100), unhealthy first.
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
}

// A machine as `app_status` lists it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineStatusOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    // Host status when not `ok` (`unreachable`, `unknown`).
    pub host: Option<String>,
    // `1 passing`, `1 critical`, `-` (no checks).
    pub checks: String,
    // Last event, e.g. `start → started`.
    pub last_event: Option<String>,
    // When the last event happened (RFC 3339).
    pub last_event_at: Option<String>,
    // Unplanned exits among recent events.
    pub restarts: u64,
    // OOM kills among recent events.
    pub oom_kills: u64,
    // The image, when it differs from the app's common image.
    pub image: Option<String>,
    // Lease holder, when leased.
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VolumeOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u64,
    // Used share in percent, when reported.
    pub used_percent: Option<u32>,
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppStatusOut {
    pub app: String,
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
    pub image: Option<String>,
    // The guest size most machines have.
    pub guest: Option<String>,
    // Unhealthy first, then by region and name.
    pub machines: Vec<MachineStatusOut>,
    // Failing checks of the listed machines: `id check status: output`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_checks: Vec<String>,
    // Machines not listed (limit or output cap).
    pub left_out: usize,
    // What was left out and how to narrow.
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
            out.push_str(&table_of(&header, &self.machines, |m| {
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
            }));
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
        out.push_str(&format!("IPs: {}\n", listed(&ips, ", ")));
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
        out.push_str(&format!("volumes: {}\n", listed(&vols, "; ")));
        let certs: Vec<String> = self
            .certificates
            .iter()
            .map(|c| format!("{} ({})", c.hostname, c.status))
            .collect();
        out.push_str(&format!("certificates: {}\n", listed(&certs, ", ")));
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

pub(super) async fn app_status(
    ctx: ToolContext,
    args: AppStatusArgs,
) -> Result<AppStatusOut, ToolError> {
    let sel = status::MachineSelection {
        region: args.region.clone().map(String::from),
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
        unavailable: super::unavailable(st.gaps),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        // "exit 3h ago": the last event three hours before now.
        let at = wf::format_rfc3339(wf::now_ms() - 10_800_000);
        let machine = |id: &str, state: &str, checks: &str| MachineStatusOut {
            id: id.into(),
            name: format!("web-{}", &id[..2]),
            region: "iad".into(),
            state: state.into(),
            host: None,
            checks: checks.into(),
            last_event: Some("exit (code 1)".into()),
            last_event_at: Some(at.clone()),
            restarts: 2,
            oom_kills: 0,
            image: Some("nginx:1.27".into()),
            lease: None,
            cordoned: false,
        };
        let status = AppStatusOut {
            app: "web".into(),
            org: Some("personal".into()),
            status: "deployed".into(),
            url: "https://web.fly.dev".into(),
            machine_count: 3,
            states: BTreeMap::from([("started".to_owned(), 2), ("stopped".to_owned(), 1)]),
            regions: BTreeMap::from([("iad".to_owned(), 3)]),
            image: Some("nginx:1.27".into()),
            guest: Some("shared-cpu-1x, 256 MB".into()),
            machines: vec![
                machine("148e1d4ae77d89", "started", "1/1 passing"),
                MachineStatusOut {
                    host: Some("unreachable".into()),
                    lease: Some("held by deploy-bot until 15:05".into()),
                    cordoned: true,
                    ..machine("2865d90c412e08", "started", "0/1 passing")
                },
            ],
            failing_checks: vec!["2865d90c412e08 http: 503 Service Unavailable".into()],
            left_out: 1,
            left_out_note: Some("1 stopped machine left out; pass state to list it".into()),
            ips: vec![IpOut {
                address: "66.241.124.17".into(),
                kind: "shared_v4".into(),
                region: "global".into(),
            }],
            volumes: vec![VolumeOut {
                id: "vol_4o2ejqnyx7y8gkpv".into(),
                name: "data".into(),
                region: "iad".into(),
                size_gb: 1,
                used_percent: Some(42),
                attached_to: Some("148e1d4ae77d89".into()),
            }],
            certificates: vec![CertOut {
                hostname: "web.example.com".into(),
                status: "pending_validation".into(),
                configured: false,
            }],
            unavailable: vec!["certificates: Fly API answered 500".into()],
        };
        insta::assert_snapshot!(status.render_text());
    }
}
