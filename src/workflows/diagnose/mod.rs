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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use futures::future::join_all;
use regex::Regex;

use super::Error;
use super::logs::LogLine;
use super::observe::{age, clip, clock_time, format_rfc3339};
use super::status::VolumeFact;
use crate::fly::{self, Machine, MachineEvent, MachineState};

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

/// What a log line says, as far as diagnosis cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// The kernel's `Out of memory: Killed process …` line.
    OomKill,
    /// Init noticing the OOM kill.
    OomNotice,
    /// The main process ended by a signal.
    Signal,
    Reboot,
    /// The machine (re)booted.
    Booted,
    /// The health check started failing.
    CheckFailed,
    /// The health check passes again.
    CheckPassing,
    /// The app is listening again.
    Listening,
    /// An error-level line.
    Error,
    Other,
}

impl LogKind {
    /// The step name in an incident chain.
    fn step(self) -> Option<&'static str> {
        match self {
            LogKind::OomKill | LogKind::OomNotice => Some("OOM kill"),
            LogKind::Signal => None,
            LogKind::Reboot => Some("reboot"),
            LogKind::Booted => Some("machine started"),
            LogKind::CheckFailed => Some("check failing"),
            LogKind::CheckPassing => Some("check passing"),
            LogKind::Listening => Some("listener up"),
            LogKind::Error => Some("error"),
            LogKind::Other => None,
        }
    }
}

fn regex(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static OOM_KILL: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)out of memory: kill(?:ed)? process"));
static OOM_NOTICE: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)\boom[ -]?kill(?:ed|er)?\b"));
static SIGNAL: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i:signal|killed by)\D{0,20}\b(SIG[A-Z]{2,6})\b"));
static REBOOT: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)\breboot(?:ing)?\b|restarting system"));
static BOOTED: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)machine (?:started|booted) in\b"));
static CHECK_FAILED: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)health check\b.*\b(?:has failed|is failing|failed)\b"));
static CHECK_PASSING: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)health check\b.*\b(?:is now passing|passing)\b"));
static LISTENING: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(
        r"(?i)\blistening (?:on|at)\b|\bserver (?:is )?(?:running|started|ready)\b|ready to accept connections",
    )
});
static ERROR_WORDS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    regex(r"(?i)\b(?:panic(?:ked)?|fatal|uncaught exception|segmentation fault)\b")
});
static ANON_RSS: LazyLock<Option<Regex>> = LazyLock::new(|| regex(r"anon-rss:(\d+)kB"));
static KILLED_PROCESS: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)killed process (\d+) \(([^)]*)\)"));

fn is(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// Classifies a log line by the messages Fly's init, kernel and proxy print.
pub fn classify(line: &LogLine) -> LogKind {
    let m = line.message.as_str();
    if is(&OOM_KILL, m) {
        LogKind::OomKill
    } else if is(&OOM_NOTICE, m) {
        LogKind::OomNotice
    } else if is(&SIGNAL, m) {
        LogKind::Signal
    } else if is(&CHECK_FAILED, m) {
        LogKind::CheckFailed
    } else if is(&CHECK_PASSING, m) {
        LogKind::CheckPassing
    } else if is(&REBOOT, m) {
        LogKind::Reboot
    } else if is(&BOOTED, m) {
        LogKind::Booted
    } else if is(&LISTENING, m) {
        LogKind::Listening
    } else if matches!(
        line.level.to_ascii_lowercase().as_str(),
        "error" | "fatal" | "critical"
    ) || is(&ERROR_WORDS, m)
    {
        LogKind::Error
    } else {
        LogKind::Other
    }
}

/// The memory figures of a kernel OOM line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OomFigures {
    /// Resident anonymous memory of the killed process, kB.
    pub anon_rss_kb: u64,
}

/// `641 (bun)` from a kernel OOM line.
pub fn killed_process(message: &str) -> Option<String> {
    let caps = KILLED_PROCESS.as_ref()?.captures(message)?;
    Some(format!(
        "{} ({})",
        caps.get(1)?.as_str(),
        caps.get(2)?.as_str()
    ))
}

impl OomFigures {
    /// Parses `anon-rss:NNNkB` from a kernel OOM line.
    pub fn parse(message: &str) -> Option<OomFigures> {
        let caps = ANON_RSS.as_ref()?.captures(message)?;
        let anon_rss_kb = caps.get(1)?.as_str().parse().ok()?;
        Some(OomFigures { anon_rss_kb })
    }

    /// `anon-rss 3744352 kB = 3.57 GiB of the 4096 MB (4.00 GiB) guest: 89%`.
    pub fn describe(&self, guest_memory_mb: Option<u32>) -> String {
        let gib = self.anon_rss_kb as f64 / 1024.0 / 1024.0;
        let mut text = format!("anon-rss {} kB = {gib:.2} GiB", self.anon_rss_kb);
        if let Some(mb) = guest_memory_mb.filter(|mb| *mb > 0) {
            let limit_gib = f64::from(mb) / 1024.0;
            let pct = gib / limit_gib * 100.0;
            text.push_str(&format!(
                " of the {mb} MB ({limit_gib:.2} GiB) guest limit: {pct:.0}%"
            ));
        }
        text
    }
}

fn signal_name(signal: i64) -> Option<&'static str> {
    match signal {
        1 => Some("SIGHUP"),
        2 => Some("SIGINT"),
        3 => Some("SIGQUIT"),
        6 => Some("SIGABRT"),
        9 => Some("SIGKILL"),
        11 => Some("SIGSEGV"),
        15 => Some("SIGTERM"),
        _ => None,
    }
}

/// An unplanned exit: the machine's process ended without a stop request.
fn is_unplanned_exit(e: &MachineEvent) -> bool {
    e.kind == "exit" && e.exit_event.as_ref().is_some_and(|x| !x.requested_stop)
}

fn is_oom_exit(e: &MachineEvent) -> bool {
    e.kind == "exit" && e.exit_event.as_ref().is_some_and(|x| x.oom_killed)
}

/// One event as a line: `exit: OOM-killed, exit code 137, signal 9 (SIGKILL), restarting`.
pub fn describe_event(e: &MachineEvent) -> String {
    let mut text = e.kind.clone();
    if !e.status.is_empty() && e.status != e.kind {
        text.push_str(&format!(" → {}", e.status));
    }
    if let Some(x) = &e.exit_event {
        let mut parts = Vec::new();
        if x.oom_killed {
            parts.push("OOM-killed".to_owned());
        }
        parts.push(format!("exit code {}", x.exit_code));
        if x.signal > 0 {
            match signal_name(x.signal) {
                Some(name) => parts.push(format!("signal {} ({name})", x.signal)),
                None => parts.push(format!("signal {}", x.signal)),
            }
        }
        if x.requested_stop {
            parts.push("requested stop".to_owned());
        }
        if x.restarting {
            parts.push("restarting".to_owned());
        }
        text.push_str(": ");
        text.push_str(&parts.join(", "));
    }
    if let Some(n) = e.restart_count.filter(|n| *n > 0) {
        text.push_str(&format!(" (restart #{n})"));
    }
    text
}

fn guest_memory_mb(m: &Machine) -> Option<u32> {
    m.config
        .as_ref()
        .and_then(|c| c.guest.as_ref())
        .map(|g| g.memory_mb)
}

fn logs_of<'a>(logs: &'a [LogLine], machine: &'a str) -> impl Iterator<Item = &'a LogLine> + 'a {
    logs.iter().filter(move |l| l.instance == machine)
}

/// The kernel OOM line logged around an exit, if any.
fn kernel_line<'a>(logs: &'a [LogLine], machine: &'a str, exit_ms: i64) -> Option<&'a LogLine> {
    logs_of(logs, machine)
        .filter(|l| {
            let t = l.ts_ms();
            t >= exit_ms.saturating_sub(KERNEL_LINE_BEFORE_MS) && t <= exit_ms.saturating_add(5_000)
        })
        .find(|l| classify(l) == LogKind::OomKill)
}

fn event_ts(e: &MachineEvent) -> i64 {
    e.timestamp
}

fn check_ms(c: &fly::CheckStatus) -> Option<i64> {
    c.updated_at
        .as_deref()
        .and_then(super::observe::parse_rfc3339_ms)
}

/// Analyses the evidence. Pure.
pub fn analyse(ev: &Evidence) -> Diagnosis {
    let now = ev.now_ms;
    let live: Vec<&Machine> = ev
        .machines
        .iter()
        .filter(|m| !m.state.is_terminal())
        .collect();
    let mut findings = Vec::new();
    let mut oom_machines: Vec<(&Machine, i64, usize)> = Vec::new();

    for m in &live {
        let mut events: Vec<&MachineEvent> = m.events.iter().collect();
        events.sort_by_key(|e| std::cmp::Reverse(event_ts(e)));
        machine_findings(ev, m, &events, &mut findings, &mut oom_machines);
    }

    // Several machines OOM-killed: say it once, app-wide.
    if oom_machines.len() >= 2 {
        let last = oom_machines.iter().map(|(_, t, _)| *t).max();
        let kills: usize = oom_machines.iter().map(|(_, _, n)| *n).sum();
        let mut memories: BTreeSet<u32> = BTreeSet::new();
        for (m, _, _) in &oom_machines {
            if let Some(mb) = guest_memory_mb(m) {
                memories.insert(mb);
            }
        }
        let guests = if memories.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = memories.iter().map(|mb| format!("{mb} MB")).collect();
            format!(" (guest memory {})", list.join(", "))
        };
        let mut sorted = oom_machines.clone();
        sorted.sort_by_key(|(_, t, _)| std::cmp::Reverse(*t));
        findings.push(Finding {
            severity: if last.is_some_and(|t| now.saturating_sub(t) <= OOM_CRITICAL_WITHIN_MS) {
                Severity::Critical
            } else {
                Severity::Warning
            },
            kind: FindingKind::OomPattern,
            machine: None,
            region: None,
            title: format!(
                "{kills} OOM kills on {} of {} machines{guests}: the app needs more memory than its guests have",
                oom_machines.len(),
                live.len(),
            ),
            evidence: sorted
                .iter()
                .map(|(m, t, n)| {
                    format!(
                        "{} ({}): {n}× oom_killed, last {} ago",
                        m.id,
                        m.region,
                        age(now, *t)
                    )
                })
                .collect(),
            next_step: "raise guest memory for all machines (update_machines with a larger memory_mb) \
or reduce the process's memory use; the per-machine findings show the kernel's RSS figures"
                .to_owned(),
            at_ms: last,
        });
    }

    drift_findings(&live, &mut findings);
    volume_findings(&ev.volumes, &mut findings);

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
        incident: worst_exit(&live).map(|(m, e)| timeline(ev, m, e)),
        findings,
        logs_scanned: ev.logs.len(),
    }
}

fn machine_findings<'a>(
    ev: &Evidence,
    m: &'a Machine,
    events: &[&MachineEvent],
    findings: &mut Vec<Finding>,
    oom_machines: &mut Vec<(&'a Machine, i64, usize)>,
) {
    let now = ev.now_ms;
    let here = |severity, kind, title: String, evidence: Vec<String>, next: String, at| Finding {
        severity,
        kind,
        machine: Some(m.id.clone()),
        region: Some(m.region.clone()),
        title,
        evidence,
        next_step: next,
        at_ms: at,
    };
    let logs_hint = format!("app_logs machine={} since=15m", m.id);

    // OOM kills.
    let ooms: Vec<&&MachineEvent> = events
        .iter()
        .filter(|e| is_oom_exit(e) && now.saturating_sub(event_ts(e)) <= OOM_LOOKBACK_MS)
        .collect();
    if let Some(last) = ooms.first() {
        let last_ms = event_ts(last);
        oom_machines.push((m, last_ms, ooms.len()));
        let mut evidence = vec![format!(
            "{} event {}",
            format_rfc3339(last_ms),
            describe_event(last)
        )];
        let mut figures = None;
        for e in &ooms {
            if let Some(line) = kernel_line(&ev.logs, &m.id, event_ts(e)) {
                evidence.push(format!(
                    "{} log \"{}\"",
                    format_rfc3339(line.ts_ms()),
                    clip(&line.message, MAX_EVIDENCE_TEXT)
                ));
                figures =
                    OomFigures::parse(&line.message).map(|f| (f, killed_process(&line.message)));
                break;
            }
        }
        let guest = guest_memory_mb(m);
        if let Some((f, process)) = figures {
            let who = process
                .map(|p| format!("process {p}: "))
                .unwrap_or_default();
            evidence.push(format!("{who}{}", f.describe(guest)));
        } else if let Some(mb) = guest {
            evidence.push(format!(
                "guest limit {mb} MB (no kernel OOM line in the logs read)"
            ));
        }
        let times = if ooms.len() == 1 {
            "once".to_owned()
        } else {
            format!("{}×", ooms.len())
        };
        findings.push(here(
            if now.saturating_sub(last_ms) <= OOM_CRITICAL_WITHIN_MS {
                Severity::Critical
            } else {
                Severity::Warning
            },
            FindingKind::OomKill,
            format!(
                "OOM-killed {times} in the past week, last {} ago",
                age(now, last_ms)
            ),
            evidence,
            format!(
                "give it more memory (update_machines memory_mb) or find what grows; {logs_hint}"
            ),
            Some(last_ms),
        ));
    }

    // Crash loops and crashes that are not OOM kills.
    let recent_exits: Vec<&&MachineEvent> = events
        .iter()
        .filter(|e| is_unplanned_exit(e) && now.saturating_sub(event_ts(e)) <= CRASH_LOOP_WINDOW_MS)
        .collect();
    let latest = events.first();
    let stayed_down = latest.is_some_and(|e| {
        is_unplanned_exit(e)
            && e.exit_event.as_ref().is_some_and(|x| !x.restarting)
            && matches!(m.state, MachineState::Stopped)
    });
    if recent_exits.len() >= CRASH_LOOP_EXITS {
        findings.push(here(
            Severity::Critical,
            FindingKind::CrashLoop,
            format!(
                "crash loop: {} unplanned exits in the past hour",
                recent_exits.len()
            ),
            recent_exits
                .iter()
                .take(3)
                .map(|e| {
                    format!(
                        "{} event {}",
                        format_rfc3339(event_ts(e)),
                        describe_event(e)
                    )
                })
                .collect(),
            format!(
                "read why it exits: {logs_hint}; fix the image or config, then update_machines"
            ),
            recent_exits.first().map(|e| event_ts(e)),
        ));
    } else if let Some(e) = latest.filter(|_| stayed_down) {
        findings.push(here(
            Severity::Critical,
            FindingKind::Crashed,
            "crashed and was not restarted (restart policy gave up)".to_owned(),
            vec![format!(
                "{} event {}",
                format_rfc3339(event_ts(e)),
                describe_event(e)
            )],
            format!("{logs_hint}; then machine_action start once the cause is fixed"),
            Some(event_ts(e)),
        ));
    } else if let Some(e) = events.iter().find(|e| {
        is_unplanned_exit(e)
            && !is_oom_exit(e)
            && e.exit_event.as_ref().is_some_and(|x| x.exit_code != 0)
            && now.saturating_sub(event_ts(e)) <= CRASH_LOOKBACK_MS
    }) {
        findings.push(here(
            Severity::Warning,
            FindingKind::Crashed,
            format!("exited unexpectedly {} ago", age(now, event_ts(e))),
            vec![format!(
                "{} event {}",
                format_rfc3339(event_ts(e)),
                describe_event(e)
            )],
            logs_hint.clone(),
            Some(event_ts(e)),
        ));
    }

    // Health checks.
    for c in &m.checks {
        let (severity, kind) = match c.status.as_str() {
            "critical" => (Severity::Critical, FindingKind::CheckCritical),
            "warning" => (Severity::Warning, FindingKind::CheckWarning),
            _ => continue,
        };
        let at = check_ms(c);
        let since = at
            .map(|t| format!(" (updated {} ago)", age(now, t)))
            .unwrap_or_default();
        let mut evidence = vec![format!(
            "check {}: {}, output \"{}\"{since}",
            c.name,
            c.status,
            clip(c.output.trim(), MAX_EVIDENCE_TEXT)
        )];
        if let Some(line) = logs_of(&ev.logs, &m.id)
            .filter(|l| classify(l) == LogKind::CheckFailed)
            .max_by_key(|l| l.ts_ns)
        {
            evidence.push(format!(
                "{} log \"{}\"",
                format_rfc3339(line.ts_ms()),
                clip(&line.message, MAX_EVIDENCE_TEXT)
            ));
        }
        findings.push(here(
            severity,
            kind,
            format!("check {} {}: \"{}\"", c.name, c.status, clip(c.output.trim(), 80)),
            evidence,
            format!(
                "the proxy routes around it while it fails; {logs_hint}; if it stays {}, machine_action restart",
                c.status
            ),
            at,
        ));
    }

    // Host.
    match m.host_status.as_deref() {
        Some("unreachable") => findings.push(here(
            Severity::Critical,
            FindingKind::HostUnreachable,
            "host unreachable: its state and checks may be stale".to_owned(),
            vec!["host_status: unreachable".to_owned()],
            "wait for the host to return, or replace the machine with one in another host of the region (scale_machines)"
                .to_owned(),
            None,
        )),
        Some("unknown") => findings.push(here(
            Severity::Warning,
            FindingKind::HostUnreachable,
            "host status unknown".to_owned(),
            vec!["host_status: unknown".to_owned()],
            "check again in a minute; if it stays unknown, treat it as unreachable".to_owned(),
            None,
        )),
        Some(_) | None => {}
    }

    // Failed states.
    if matches!(m.state, MachineState::Failed | MachineState::LaunchFailed) {
        let mut evidence = vec![format!("state: {}", m.state)];
        if let Some(e) = latest {
            evidence.push(format!(
                "{} event {}",
                format_rfc3339(event_ts(e)),
                describe_event(e)
            ));
        }
        findings.push(here(
            Severity::Critical,
            FindingKind::Failed,
            format!("machine is {}", m.state),
            evidence,
            format!(
                "{logs_hint}; a failed machine can be started again or destroyed and recreated"
            ),
            latest.map(|e| event_ts(e)),
        ));
    } else if m.state.is_transient() {
        // Stuck transitions.
        let since = latest
            .map(|e| event_ts(e))
            .or_else(|| super::observe::parse_rfc3339_ms(&m.updated_at));
        if let Some(since) = since {
            let for_ms = now.saturating_sub(since);
            if for_ms >= STUCK_AFTER_MS {
                findings.push(here(
                    if for_ms >= STUCK_CRITICAL_AFTER_MS {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    FindingKind::StuckTransition,
                    format!("stuck in {} for {}", m.state, age(now, since)),
                    vec![format!("state {} since {}", m.state, format_rfc3339(since))],
                    "machine_action stop or start to move it on; if it does not move, destroy it and create a new one"
                        .to_owned(),
                    Some(since),
                ));
            }
        }
    }

    // Leases.
    if let Some(lease) = &m.lease {
        let expires_ms = lease.expires_at.saturating_mul(1000);
        if expires_ms.saturating_sub(now) >= LONG_LEASE_MS {
            let desc = if lease.description.is_empty() {
                String::new()
            } else {
                format!(" ({})", lease.description)
            };
            findings.push(here(
                Severity::Warning,
                FindingKind::LongLease,
                format!(
                    "lease held by {}{desc} until {}",
                    lease.owner,
                    format_rfc3339(expires_ms)
                ),
                vec![format!(
                    "lease owner {} expires_at {}",
                    lease.owner,
                    format_rfc3339(expires_ms)
                )],
                "updates to this machine fail with 409 until the lease is released or expires; ask its holder, or wait"
                    .to_owned(),
                None,
            ));
        }
    }
}

/// The key a machine is compared under for drift: its process group.
fn process_group(m: &Machine) -> String {
    m.metadata("fly_process_group").unwrap_or("app").to_owned()
}

fn guest_text(m: &Machine) -> Option<String> {
    let g = m.config.as_ref()?.guest.as_ref()?;
    Some(format!("{} {}x {}MB", g.cpu_kind, g.cpus, g.memory_mb))
}

fn drift_findings(live: &[&Machine], findings: &mut Vec<Finding>) {
    let mut groups: BTreeMap<String, Vec<&Machine>> = BTreeMap::new();
    for m in live {
        groups.entry(process_group(m)).or_default().push(m);
    }
    type Attr = (FindingKind, &'static str, fn(&Machine) -> Option<String>);
    let attrs: [Attr; 3] = [
        (FindingKind::ImageDrift, "image", |m| {
            m.config.as_ref().map(|c| c.image.clone())
        }),
        (FindingKind::ConfigDrift, "guest", guest_text),
        (FindingKind::ConfigDrift, "release", |m| {
            m.metadata("fly_release_version").map(str::to_owned)
        }),
    ];
    for (group, machines) in &groups {
        for (kind, what, get) in &attrs {
            let mut by_value: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for m in machines {
                if let Some(v) = get(m) {
                    by_value.entry(v).or_default().push(&m.id);
                }
            }
            if by_value.len() < 2 {
                continue;
            }
            let mut values: Vec<(&String, &Vec<&str>)> = by_value.iter().collect();
            values.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
            let Some((common, common_ids)) = values.first() else {
                continue;
            };
            let odd: Vec<String> = values
                .iter()
                .skip(1)
                .map(|(v, ids)| {
                    let shown: Vec<&str> = ids.iter().take(8).copied().collect();
                    let more = ids.len().saturating_sub(shown.len());
                    let more = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    format!("{what} {v}: {} ({}{more})", ids.len(), shown.join(", "))
                })
                .collect();
            let odd_count: usize = values.iter().skip(1).map(|(_, ids)| ids.len()).sum();
            let mut evidence = vec![format!("{what} {common}: {} machines", common_ids.len())];
            evidence.extend(odd);
            findings.push(Finding {
                severity: Severity::Warning,
                kind: *kind,
                machine: None,
                region: None,
                title: format!(
                    "{what} drift in process group {group}: {odd_count} of {} machines differ from the rest",
                    machines.len()
                ),
                evidence,
                next_step: format!(
                    "if a deploy was interrupted, finish it: update_machines with the intended {what}"
                ),
                at_ms: None,
            });
        }
    }
}

fn volume_findings(volumes: &[VolumeFact], findings: &mut Vec<Finding>) {
    for v in volumes {
        let Some(frac) = v.used_fraction() else {
            continue;
        };
        if frac < VOLUME_WARN {
            continue;
        }
        findings.push(Finding {
            severity: if frac >= VOLUME_CRITICAL {
                Severity::Critical
            } else {
                Severity::Warning
            },
            kind: FindingKind::VolumeNearFull,
            machine: v.attached_machine_id.clone(),
            region: Some(v.region.clone()),
            title: format!("volume {} ({}) is {:.0}% full", v.id, v.name, frac * 100.0),
            evidence: vec![format!(
                "volume {}: {} used of {} GB",
                v.id,
                v.used_text(),
                v.size_gb
            )],
            next_step: format!(
                "extend it (volume_action extend volume={}) or delete data",
                v.id
            ),
            at_ms: None,
        });
    }
}

/// The worst unplanned exit: on a machine that is unhealthy now, an OOM kill, the
/// most recent.
fn worst_exit<'a>(live: &[&'a Machine]) -> Option<(&'a Machine, &'a MachineEvent)> {
    live.iter()
        .flat_map(|m| {
            m.events
                .iter()
                .filter(|e| is_unplanned_exit(e))
                .map(move |e| (*m, e))
        })
        .max_by_key(|(m, e)| {
            let unhealthy = m.checks.iter().any(|c| c.status == "critical")
                || m.host_status.as_deref() == Some("unreachable");
            (unhealthy, is_oom_exit(e), event_ts(e))
        })
}

/// The exits of `m` after `exit_ms` (the next one ends the incident).
fn next_exit_after(m: &Machine, exit_ms: i64) -> Option<i64> {
    m.events
        .iter()
        .filter(|e| is_unplanned_exit(e) && event_ts(e) > exit_ms)
        .map(event_ts)
        .min()
}

fn timeline(ev: &Evidence, m: &Machine, exit: &MachineEvent) -> Incident {
    let start = event_ts(exit);
    let end = next_exit_after(m, start)
        .map(|t| t.saturating_sub(1))
        .unwrap_or(i64::MAX)
        .min(start.saturating_add(INCIDENT_SPAN_MS))
        .min(ev.now_ms.max(start));
    let from = start.saturating_sub(KERNEL_LINE_BEFORE_MS);

    let mut entries: Vec<(i64, Source, Option<LogKind>, String)> = Vec::new();
    let mut machine_logs: Vec<&LogLine> = logs_of(&ev.logs, &m.id).collect();
    machine_logs.sort_by_key(|l| l.ts_ns);

    let mut recovered: Option<i64> = None;
    for l in &machine_logs {
        let t = l.ts_ms();
        if t < from || t > end {
            continue;
        }
        let kind = classify(l);
        if kind == LogKind::Other {
            continue;
        }
        // Before the exit only the OOM story belongs to this incident.
        if t < start
            && !matches!(
                kind,
                LogKind::OomKill | LogKind::OomNotice | LogKind::Signal
            )
        {
            continue;
        }
        let mut text = clip(&l.message, MAX_EVIDENCE_TEXT);
        if kind == LogKind::OomKill
            && let Some(f) = OomFigures::parse(&l.message)
        {
            text.push_str(&format!(" [{}]", f.describe(guest_memory_mb(m))));
        }
        entries.push((t, Source::Log, Some(kind), text));
        if kind == LogKind::CheckPassing && t >= start {
            recovered = Some(t);
            break;
        }
    }
    let end = recovered.unwrap_or(end);

    // The last ordinary line before the trouble: what the machine was doing.
    let first_t = entries
        .iter()
        .map(|(t, ..)| *t)
        .min()
        .unwrap_or(start)
        .min(start);
    if let Some(l) = machine_logs
        .iter()
        .filter(|l| l.ts_ms() < first_t && classify(l) == LogKind::Other)
        .max_by_key(|l| l.ts_ns)
        .filter(|l| first_t.saturating_sub(l.ts_ms()) <= 60_000)
    {
        entries.push((
            l.ts_ms(),
            Source::Log,
            None,
            format!(
                "{} (last line before the incident)",
                clip(&l.message, MAX_EVIDENCE_TEXT)
            ),
        ));
    }

    for e in &m.events {
        let t = event_ts(e);
        if t >= start && t <= end {
            entries.push((t, Source::Event, None, describe_event(e)));
        }
    }
    for c in &m.checks {
        if let Some(t) = check_ms(c).filter(|t| *t >= start && *t <= end) {
            entries.push((
                t,
                Source::Check,
                None,
                format!(
                    "check {} {}: \"{}\"",
                    c.name,
                    c.status,
                    clip(c.output.trim(), 120)
                ),
            ));
            if c.status == "passing" && recovered.is_none() {
                recovered = Some(t);
            }
        }
    }
    entries.sort_by_key(|(t, source, ..)| (*t, *source));

    // Collapse repeats of the same kind of log line.
    let mut collapsed: Vec<(i64, Source, Option<LogKind>, String, usize)> = Vec::new();
    for (t, source, kind, text) in entries {
        if let (Some(prev), Some(k)) = (collapsed.last_mut(), kind)
            && prev.1 == Source::Log
            && prev.2 == Some(k)
            && !matches!(k, LogKind::OomKill)
        {
            prev.4 += 1;
            continue;
        }
        collapsed.push((t, source, kind, text, 1));
    }

    let mut chain: Vec<String> = Vec::new();
    let mut push_step = |s: String| {
        if !chain.contains(&s) {
            chain.push(s);
        }
    };
    for (_, source, kind, text, _) in &collapsed {
        match (source, kind) {
            (Source::Log, Some(LogKind::Signal)) => {
                if let Some(sig) = SIGNAL
                    .as_ref()
                    .and_then(|r| r.captures(text))
                    .and_then(|c| c.get(1))
                {
                    push_step(sig.as_str().to_uppercase());
                }
            }
            (Source::Log, Some(k)) => {
                if let Some(step) = k.step() {
                    push_step(step.to_owned());
                }
            }
            (Source::Event, _) if text.contains("OOM-killed") => push_step("OOM kill".to_owned()),
            (Source::Event, _) if text.starts_with("exit") => {
                if let Some(sig) = exit.exit_event.as_ref().and_then(|x| signal_name(x.signal)) {
                    push_step(format!("exit ({sig})"));
                } else {
                    push_step("exit".to_owned());
                }
            }
            (Source::Event, _) if text.starts_with("start") => {
                push_step("machine started".to_owned())
            }
            (Source::Check, _) if text.contains(" passing") => {
                push_step("check passing".to_owned())
            }
            (Source::Check, _) if text.contains(" critical") => {
                push_step("check failing".to_owned())
            }
            _ => {}
        }
    }

    let entries: Vec<TimelineEntry> = collapsed
        .into_iter()
        .take(MAX_TIMELINE_ENTRIES)
        .map(|(t, source, _, text, n)| TimelineEntry {
            at_ms: t,
            offset_ms: t.saturating_sub(start),
            source,
            text: if n > 1 {
                format!("{text} (×{n})")
            } else {
                text
            },
        })
        .collect();
    Incident {
        machine: m.id.clone(),
        region: m.region.clone(),
        started_ms: start,
        recovered_after_s: recovered.map(|t| (t.saturating_sub(start) + 500) / 1000),
        chain,
        entries,
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
    let worst = worst_exit(&live);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sim::{self, SimConfig, SimHandle};

    const NOW: i64 = 1_767_225_600_000;

    fn machine(v: serde_json::Value) -> Machine {
        serde_json::from_value(v).unwrap()
    }

    fn log(instance: &str, at_ms: i64, level: &str, msg: &str) -> LogLine {
        LogLine {
            id: String::new(),
            ts_ns: at_ms * 1_000_000,
            timestamp: String::new(),
            instance: instance.into(),
            region: "ams".into(),
            level: level.into(),
            message: msg.into(),
        }
    }

    fn exit(at: i64, oom: bool, requested: bool, restarting: bool, code: i64) -> serde_json::Value {
        json!({"type": "exit", "status": "stopped", "source": "flyd", "timestamp": at,
               "request": {"exit_event": {"exit_code": code, "signal": if oom { 9 } else { -1 },
               "oom_killed": oom, "requested_stop": requested, "restarting": restarting}}})
    }

    fn base(id: &str, state: &str, events: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"id": id, "name": id, "region": "ams", "state": state,
               "config": {"image": "img:1", "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024}},
               "events": events})
    }

    fn kinds(d: &Diagnosis, machine: &str) -> Vec<FindingKind> {
        d.findings
            .iter()
            .filter(|f| f.machine.as_deref() == Some(machine))
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn log_lines_are_classified_by_fly_messages() {
        let c = |m: &str| classify(&log("m", 0, "info", m));
        assert_eq!(
            c("Out of memory: Killed process 641 (bun) total-vm:1kB, anon-rss:2kB"),
            LogKind::OomKill
        );
        assert_eq!(
            c("Process appears to have been OOM killed!"),
            LogKind::OomNotice
        );
        assert_eq!(
            c("Main child exited with signal (with signal 'SIGKILL', core dumped? false)"),
            LogKind::Signal
        );
        assert_eq!(c("reboot: Restarting system"), LogKind::Reboot);
        assert_eq!(c("Machine started in 1.084s"), LogKind::Booted);
        assert_eq!(
            c(
                "Health check on port 3000 has failed. Your app is not responding properly. Services exposed on ports [80, 443] will have intermittent failures until the health check passes."
            ),
            LogKind::CheckFailed
        );
        assert_eq!(
            c("Health check on port 3000 is now passing."),
            LogKind::CheckPassing
        );
        assert_eq!(
            c("Server listening on http://localhost:3000 ..."),
            LogKind::Listening
        );
        assert_eq!(
            c("GET /react@18.2.0/umd/react.production.min.js 200"),
            LogKind::Other
        );
        assert_eq!(classify(&log("m", 0, "error", "boom")), LogKind::Error);
        assert_eq!(c("thread 'main' panicked at src/main.rs"), LogKind::Error);
    }

    #[test]
    fn kernel_rss_is_set_against_the_guest_limit() {
        let line = "Out of memory: Killed process 641 (bun) total-vm:85950964kB, anon-rss:3744352kB, file-rss:12032kB";
        let f = OomFigures::parse(line).unwrap();
        assert_eq!(f.anon_rss_kb, 3_744_352);
        assert_eq!(
            f.describe(Some(4096)),
            "anon-rss 3744352 kB = 3.57 GiB of the 4096 MB (4.00 GiB) guest limit: 89%"
        );
        assert_eq!(f.describe(None), "anon-rss 3744352 kB = 3.57 GiB");
        assert_eq!(killed_process(line).as_deref(), Some("641 (bun)"));
        assert_eq!(OomFigures::parse("no figures here"), None);
    }

    #[test]
    fn crash_loops_failed_stuck_and_unreachable_machines_are_found() {
        let loop_events: Vec<_> = (1..=4)
            .map(|i| exit(NOW - i * 60_000, false, false, true, 1))
            .collect();
        let mut unreachable = base("unreach", "started", vec![]);
        unreachable["host_status"] = json!("unreachable");
        let mut leased = base("leased", "started", vec![]);
        leased["lease"] = json!({"owner": "deployer@example.com", "description": "deploy",
                                 "expires_at": NOW / 1000 + 3600});
        let ev = Evidence {
            app: "a".into(),
            now_ms: NOW,
            machines: vec![
                machine(base("looping", "started", loop_events)),
                machine(base(
                    "down",
                    "stopped",
                    vec![exit(NOW - 600_000, false, false, false, 2)],
                )),
                machine(base("failed", "failed", vec![])),
                machine(base(
                    "stuck",
                    "stopping",
                    vec![
                        json!({"type": "stop", "status": "stopping", "source": "user", "timestamp": NOW - 20 * 60_000}),
                    ],
                )),
                machine(unreachable),
                machine(leased),
                machine(base("fine", "started", vec![])),
                machine(base(
                    "planned",
                    "stopped",
                    vec![exit(NOW - 60_000, false, true, false, 0)],
                )),
            ],
            ..Evidence::default()
        };
        let d = analyse(&ev);
        assert_eq!(kinds(&d, "looping"), [FindingKind::CrashLoop]);
        assert_eq!(kinds(&d, "down"), [FindingKind::Crashed]);
        assert_eq!(kinds(&d, "failed"), [FindingKind::Failed]);
        assert_eq!(kinds(&d, "stuck"), [FindingKind::StuckTransition]);
        assert_eq!(kinds(&d, "unreach"), [FindingKind::HostUnreachable]);
        assert_eq!(kinds(&d, "leased"), [FindingKind::LongLease]);
        assert!(kinds(&d, "fine").is_empty());
        assert!(
            kinds(&d, "planned").is_empty(),
            "a requested stop is no crash"
        );
        assert_eq!(d.healthy, 2);
        assert_eq!(d.findings.first().unwrap().severity, Severity::Critical);
        // Severity never goes up the list.
        assert!(
            d.findings
                .windows(2)
                .all(|w| w[0].severity <= w[1].severity)
        );
    }

    #[test]
    fn drift_and_full_volumes_are_found() {
        let mut odd = base("odd", "started", vec![]);
        odd["config"]["image"] = json!("img:2");
        let ev = Evidence {
            app: "a".into(),
            now_ms: NOW,
            machines: vec![
                machine(base("m1", "started", vec![])),
                machine(base("m2", "started", vec![])),
                machine(odd),
            ],
            volumes: vec![VolumeFact {
                id: "vol_1".into(),
                name: "data".into(),
                size_gb: 10,
                used_bytes: Some(96 * 1024 * 1024 * 1024 / 10),
                attached_machine_id: Some("m1".into()),
                ..VolumeFact::default()
            }],
            ..Evidence::default()
        };
        let d = analyse(&ev);
        let drift = d
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::ImageDrift)
            .unwrap();
        assert!(drift.title.contains("1 of 3 machines"), "{}", drift.title);
        assert!(
            drift.evidence.iter().any(|e| e == "image img:2: 1 (odd)"),
            "{:?}",
            drift.evidence
        );
        let vol = d
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::VolumeNearFull)
            .unwrap();
        assert_eq!(vol.severity, Severity::Critical);
        assert!(vol.title.contains("96% full"), "{}", vol.title);
    }

    async fn demo() -> (SimHandle, fly::Client) {
        let sim = sim::start(
            SimConfig::stepped().with_scenario(sim::Scenario::Demo),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let cfg = fly::ClientConfig::local(
            sim.base_url().parse().unwrap(),
            fly::Token::parse("sim-token"),
        )
        .unwrap();
        (sim, fly::Client::new(cfg).unwrap())
    }

    fn region_of(d: &Diagnosis, f: &Finding) -> String {
        let _ = d;
        f.region.clone().unwrap_or_default()
    }

    #[tokio::test]
    async fn the_demo_incident_is_reconstructed() {
        let (sim, client) = demo().await;
        let now = i64::try_from(sim.now_ms()).unwrap();
        let d = diagnose(&client, "cdn-demo", now).await.unwrap();

        let critical_checks: Vec<(String, String)> = d
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::CheckCritical)
            .map(|f| (region_of(&d, f), f.title.clone()))
            .collect();
        assert_eq!(critical_checks.len(), 2, "{critical_checks:?}");
        assert!(
            critical_checks
                .iter()
                .any(|(r, t)| r == "ewr" && t.contains("context deadline exceeded"))
        );
        assert!(
            critical_checks
                .iter()
                .any(|(r, t)| r == "atl" && t.contains("\"gone\""))
        );

        let mut oom_regions: Vec<String> = d
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::OomKill)
            .map(|f| region_of(&d, f))
            .collect();
        oom_regions.sort();
        assert_eq!(oom_regions, ["atl", "ewr", "lax", "sin", "syd"]);
        let ewr_oom = d
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::OomKill && f.region.as_deref() == Some("ewr"))
            .unwrap();
        assert!(
            ewr_oom.evidence.iter().any(|e| e.contains(
                "anon-rss 3744352 kB = 3.57 GiB of the 4096 MB (4.00 GiB) guest limit: 89%"
            )),
            "{:#?}",
            ewr_oom.evidence
        );
        assert!(d.findings.iter().any(|f| f.kind == FindingKind::OomPattern));

        let inc = d.incident.as_ref().unwrap();
        assert_eq!(inc.region, "ewr");
        assert_eq!(inc.recovered_after_s, Some(43));
        assert_eq!(
            inc.chain,
            [
                "OOM kill",
                "SIGKILL",
                "reboot",
                "machine started",
                "check failing",
                "listener up",
                "check passing"
            ]
        );
        let last = inc.entries.last().unwrap();
        assert_eq!(last.offset_ms, 43_000);
        assert!(last.text.contains("now passing"));
        sim.shutdown().await;
    }
}
