//! `diagnose`: what is wrong with an app, with evidence and a next step.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ROW_BUDGET;
use crate::tools::args::AppName;
use crate::tools::render::{rows, table_row};
use crate::tools::untrusted;
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{diagnose as diag, observe as wf};

pub(super) const DIAGNOSE: ToolInfo = ToolInfo {
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
    pub app: AppName,
}

// A finding.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FindingOut {
    // `critical`, `warning` or `info`.
    pub severity: String,
    // e.g. `oom_kill`, `check_critical`, `crash_loop`, `image_drift`.
    pub kind: String,
    // Machine id; absent for app-wide findings.
    pub machine: Option<String>,
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
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IncidentOut {
    pub machine: String,
    pub region: String,
    // RFC 3339.
    pub started_at: String,
    // Seconds until health checks passed again; absent if not seen.
    pub recovered_after_s: Option<i64>,
    // The steps in order, e.g. `OOM kill`, `SIGKILL`, `reboot`, ….
    pub chain: Vec<String>,
    pub timeline: Vec<TimelineOut>,
}

// Result of `diagnose`.
#[serde_with::skip_serializing_none]
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

table_row!(TimelineOut, |t| {
    "TIME": t.time.clone(),
    "T": offset_text(t.offset_s),
    "SOURCE": t.source.clone(),
    "WHAT": t.text.clone(),
});

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
            out.push_str(&untrusted::block(&rows(&i.timeline)));
        } else if self.findings.is_empty() {
            out.push_str("no unplanned exits and nothing failing\n");
        }
        out
    }
}

pub(super) async fn diagnose(
    ctx: ToolContext,
    args: DiagnoseArgs,
) -> Result<DiagnoseOut, ToolError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let report = DiagnoseOut {
            app: "web".into(),
            machines: 3,
            healthy: 2,
            findings: vec![FindingOut {
                severity: "critical".into(),
                kind: "crash_loop".into(),
                machine: Some("2865d90c412e08".into()),
                region: Some("iad".into()),
                title: "machine restarts in a loop (5 exits in 10 min)".into(),
                evidence: vec![
                    "exit code 1 at 15:00:01".into(),
                    "log: connection refused: db:5432".into(),
                ],
                next_step: "call app_logs with machine 2865d90c412e08".into(),
            }],
            left_out: 0,
            incident: Some(IncidentOut {
                machine: "2865d90c412e08".into(),
                region: "iad".into(),
                started_at: "2026-11-21T14:59:58Z".into(),
                recovered_after_s: None,
                chain: vec!["health check failing".into(), "exit code 1".into()],
                timeline: vec![
                    TimelineOut {
                        time: "2026-11-21T14:59:58Z".into(),
                        offset_s: 0.0,
                        source: "check".into(),
                        text: "http: 503".into(),
                    },
                    TimelineOut {
                        time: "2026-11-21T15:00:01Z".into(),
                        offset_s: 3.2,
                        source: "event".into(),
                        text: "exit (code 1)".into(),
                    },
                ],
            }),
            logs_read: 120,
        };
        let healthy = DiagnoseOut {
            app: "api".into(),
            machines: 2,
            healthy: 2,
            findings: Vec::new(),
            left_out: 0,
            incident: None,
            logs_read: 40,
        };
        insta::assert_snapshot!([report.render_text(), healthy.render_text()].join("\n---\n"));
    }
}
