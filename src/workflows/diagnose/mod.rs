//! `diagnose`: turns what Fly reports about an app (machines with their events,
//! checks, host status and leases; volumes; log lines) into findings, each with a
//! severity, the machine, the exact evidence and a next step, plus a per-second
//! timeline of the worst incident.
//!
//! The analysis ([`analyse`]) is pure: it takes the evidence and a `now` and never
//! calls Fly, so it is tested on hand-made and simulator-made inputs alike. The
//! gathering ([`diagnose`]) decides which log windows to read. Nothing here may key
//! on particular machine ids or app names; log lines are recognised by the messages
//! Fly's init and proxy print (OOM killer, signals, reboot, health checks).

use std::collections::BTreeSet;

use futures::future::join_all;

use super::Error;
use super::logs::LogLine;
use super::observe::clock_time;
use super::status::VolumeFact;
use crate::fly::{self, Machine};

mod fleet;
mod machine;
mod signals;
#[cfg(test)]
mod tests;
mod timeline;

use machine::{Examined, OomKills};
pub use signals::{LogKind, OomFigures, classify, describe_event, killed_process};
use signals::{event_ts, is_oom_exit};

/// How urgent a finding is. Ordered most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// Several machines were OOM-killed: an app-wide memory problem.
    OomPattern,
    OomKill,
    CrashLoop,
    Crashed,
    CheckCritical,
    CheckWarning,
    HostUnreachable,
    Failed,
    StuckTransition,
    ImageDrift,
    ConfigDrift,
    VolumeNearFull,
    LongLease,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::OomPattern => "oom_pattern",
            FindingKind::OomKill => "oom_kill",
            FindingKind::CrashLoop => "crash_loop",
            FindingKind::Crashed => "crashed",
            FindingKind::CheckCritical => "check_critical",
            FindingKind::CheckWarning => "check_warning",
            FindingKind::HostUnreachable => "host_unreachable",
            FindingKind::Failed => "failed",
            FindingKind::StuckTransition => "stuck_transition",
            FindingKind::ImageDrift => "image_drift",
            FindingKind::ConfigDrift => "config_drift",
            FindingKind::VolumeNearFull => "volume_near_full",
            FindingKind::LongLease => "long_lease",
        }
    }
}

/// One thing that is wrong, with the proof and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
    /// Machine id; `None` for app-wide findings.
    pub machine: Option<String>,
    pub region: Option<String>,
    /// One line: what is wrong.
    pub title: String,
    /// The exact event, check or log lines that show it.
    pub evidence: Vec<String>,
    /// What to call or do next.
    pub next_step: String,
    /// When it (last) happened, epoch ms; orders findings of equal severity.
    pub at_ms: Option<i64>,
}

/// Where a timeline entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Log,
    Event,
    Check,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Log => "log",
            Source::Event => "event",
            Source::Check => "check",
        }
    }
}

/// One line of the incident timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at_ms: i64,
    /// Milliseconds after the incident started (negative: just before).
    pub offset_ms: i64,
    pub source: Source,
    pub text: String,
}

/// The worst incident, second by second.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub machine: String,
    pub region: String,
    /// The unplanned exit that started it, epoch ms.
    pub started_ms: i64,
    /// Seconds from the exit to health checks passing again; `None` if not seen.
    pub recovered_after_s: Option<i64>,
    /// The steps in order, e.g. `OOM kill → SIGKILL → reboot → …`.
    pub chain: Vec<String>,
    pub entries: Vec<TimelineEntry>,
}

/// Everything `diagnose` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub app: String,
    pub machines: usize,
    /// Machines no finding names.
    pub healthy: usize,
    /// Most urgent first.
    pub findings: Vec<Finding>,
    pub incident: Option<Incident>,
    /// Log lines looked at.
    pub logs_scanned: usize,
}

/// What the analysis looks at.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub app: String,
    pub now_ms: i64,
    pub machines: Vec<Machine>,
    pub volumes: Vec<VolumeFact>,
    /// Log lines of any machine, any order (incident windows and the latest page).
    pub logs: Vec<LogLine>,
}

// Thresholds.
const OOM_CRITICAL_WITHIN_MS: i64 = 3_600_000;
const OOM_LOOKBACK_MS: i64 = 7 * 86_400_000;
const CRASH_LOOP_WINDOW_MS: i64 = 3_600_000;
const CRASH_LOOP_EXITS: usize = 3;
const CRASH_LOOKBACK_MS: i64 = 86_400_000;
const STUCK_AFTER_MS: i64 = 10 * 60_000;
const STUCK_CRITICAL_AFTER_MS: i64 = 60 * 60_000;
const LONG_LEASE_MS: i64 = 10 * 60_000;
const VOLUME_WARN: f64 = 0.80;
const VOLUME_CRITICAL: f64 = 0.95;
/// How far before an exit the kernel's OOM line may be logged.
const KERNEL_LINE_BEFORE_MS: i64 = 10_000;
/// How long after an exit the incident timeline follows the machine.
const INCIDENT_SPAN_MS: i64 = 10 * 60_000;
const MAX_TIMELINE_ENTRIES: usize = 30;
/// Evidence lines one finding lists at most (the rest are counted).
const MAX_EVIDENCE_LINES: usize = 10;
const MAX_EVIDENCE_TEXT: usize = 240;

/// Analyses the evidence. Pure.
pub fn analyse(ev: &Evidence) -> Diagnosis {
    let now = ev.now_ms;
    let live: Vec<&Machine> = ev
        .machines
        .iter()
        .filter(|m| !m.state.is_terminal())
        .collect();
    let mut findings = Vec::new();
    let mut oom_kills: Vec<(&Machine, OomKills)> = Vec::new();
    for m in &live {
        if let Some(kills) = Examined::new(ev, m).findings(&mut findings) {
            oom_kills.push((m, kills));
        }
    }
    // Several machines OOM-killed: say it once, app-wide.
    findings.extend(fleet::oom_pattern(&oom_kills, live.len(), now));
    fleet::drift(&live, &mut findings);
    fleet::volumes(&ev.volumes, &mut findings);

    for f in &mut findings {
        if f.evidence.len() > MAX_EVIDENCE_LINES {
            let more = f.evidence.len() - (MAX_EVIDENCE_LINES - 1);
            f.evidence.truncate(MAX_EVIDENCE_LINES - 1);
            f.evidence.push(format!("… and {more} more"));
        }
    }
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| {
                b.at_ms
                    .unwrap_or(i64::MIN)
                    .cmp(&a.at_ms.unwrap_or(i64::MIN))
            })
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.machine.cmp(&b.machine))
    });

    let named: BTreeSet<&str> = findings
        .iter()
        .filter_map(|f| f.machine.as_deref())
        .collect();
    let healthy = live
        .iter()
        .filter(|m| !named.contains(m.id.as_str()))
        .count();

    Diagnosis {
        app: ev.app.clone(),
        machines: live.len(),
        healthy,
        incident: timeline::worst_exit(&live).map(|(m, e)| timeline::incident(ev, m, e)),
        findings,
        logs_scanned: ev.logs.len(),
    }
}

/// Pages of logs read for the worst incident's window.
const INCIDENT_LOG_PAGES: usize = 10;
/// Other OOM kills whose kernel line is looked up (one page each).
const MAX_KERNEL_PROBES: usize = 8;

/// Reads what `analyse` needs and analyses it: the app (it must exist), its machines
/// with leases, its volumes, the latest page of logs, the log window around the
/// worst unplanned exit and a short window around each other recent OOM kill (for
/// the kernel's RSS figures). A volume or log read that fails leaves that evidence
/// out rather than failing the diagnosis.
pub async fn diagnose(client: &fly::Client, app: &str, now_ms: i64) -> Result<Diagnosis, Error> {
    let filter = fly::MachineFilter {
        include_leases: true,
        ..fly::MachineFilter::default()
    };
    let latest_query = fly::LogQuery::default();
    let (app_res, machines, volumes, latest) = tokio::join!(
        client.get_app(app),
        client.list_machines(app, &filter),
        client.list_volumes(app),
        client.app_logs(app, &latest_query),
    );
    app_res.map_err(super::status::app_not_found(app))?;
    let machines = machines.map_err(Error::fly(format!("listing machines of app {app}")))?;
    let volumes: Vec<VolumeFact> = match volumes {
        Ok(v) => v
            .into_iter()
            .filter(|v| !v.is_going())
            .map(VolumeFact::from)
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, app, "diagnose: volumes not read");
            Vec::new()
        }
    };
    let mut logs: Vec<LogLine> = match latest {
        Ok(page) => page
            .entries
            .into_iter()
            .filter_map(LogLine::from_entry)
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, app, "diagnose: latest logs not read");
            Vec::new()
        }
    };

    let live: Vec<&Machine> = machines.iter().filter(|m| !m.state.is_terminal()).collect();
    let mut windows: Vec<(String, i64, i64, usize)> = Vec::new();
    let worst = timeline::worst_exit(&live);
    if let Some((m, e)) = worst {
        let t = event_ts(e);
        windows.push((
            m.id.clone(),
            t.saturating_sub(KERNEL_LINE_BEFORE_MS + 60_000),
            t.saturating_add(INCIDENT_SPAN_MS),
            INCIDENT_LOG_PAGES,
        ));
    }
    let mut probes: Vec<(i64, &Machine)> = live
        .iter()
        .filter(|m| worst.is_none_or(|(w, _)| w.id != m.id))
        .filter_map(|m| {
            m.events
                .iter()
                .filter(|e| is_oom_exit(e) && now_ms.saturating_sub(event_ts(e)) <= OOM_LOOKBACK_MS)
                .map(event_ts)
                .max()
                .map(|t| (t, *m))
        })
        .collect();
    probes.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    for (t, m) in probes.into_iter().take(MAX_KERNEL_PROBES) {
        windows.push((
            m.id.clone(),
            t.saturating_sub(KERNEL_LINE_BEFORE_MS),
            t.saturating_add(5_000),
            1,
        ));
    }
    let reads = join_all(windows.iter().map(|(machine, from, to, pages)| {
        super::logs::read_window(client, app, machine, *from, *to, *pages)
    }))
    .await;
    for read in reads {
        match read {
            Ok(lines) => logs.extend(lines),
            Err(e) => tracing::debug!(error = %e, app, "diagnose: a log window was not read"),
        }
    }
    logs.sort_by(|a, b| {
        (a.ts_ns, &a.instance, &a.message).cmp(&(b.ts_ns, &b.instance, &b.message))
    });
    logs.dedup_by(|a, b| a.ts_ns == b.ts_ns && a.instance == b.instance && a.message == b.message);

    Ok(analyse(&Evidence {
        app: app.to_owned(),
        now_ms,
        machines,
        volumes,
        logs,
    }))
}

/// The time of a timeline entry as `HH:MM:SS`.
pub fn entry_clock(e: &TimelineEntry) -> String {
    clock_time(e.at_ms)
}
