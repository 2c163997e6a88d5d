//! What diagnosis reads in Fly's output: log lines classified by the messages Fly's
//! init, kernel and proxy print; machine events described; the kernel's OOM figures.

use std::sync::LazyLock;

use regex::Regex;

use super::KERNEL_LINE_BEFORE_MS;
use crate::fly::{self, Machine, MachineEvent};
use crate::workflows::logs::LogLine;
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
    pub(super) fn step(self) -> Option<&'static str> {
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

pub(super) fn regex(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static OOM_KILL: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)out of memory: kill(?:ed)? process"));
static OOM_NOTICE: LazyLock<Option<Regex>> =
    LazyLock::new(|| regex(r"(?i)\boom[ -]?kill(?:ed|er)?\b"));
pub(super) static SIGNAL: LazyLock<Option<Regex>> =
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

pub(super) fn is(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// Classifies a log line by the messages Fly's init, kernel and proxy print.
pub fn classify(line: &LogLine) -> LogKind {
    let m = line.message.as_str();
    // In order of precedence: the first that matches names the line.
    let by_message: [(&LazyLock<Option<Regex>>, LogKind); 8] = [
        (&OOM_KILL, LogKind::OomKill),
        (&OOM_NOTICE, LogKind::OomNotice),
        (&SIGNAL, LogKind::Signal),
        (&CHECK_FAILED, LogKind::CheckFailed),
        (&CHECK_PASSING, LogKind::CheckPassing),
        (&REBOOT, LogKind::Reboot),
        (&BOOTED, LogKind::Booted),
        (&LISTENING, LogKind::Listening),
    ];
    if let Some((_, kind)) = by_message.iter().find(|(re, _)| is(re, m)) {
        *kind
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

pub(super) fn signal_name(signal: i64) -> Option<&'static str> {
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
pub(super) fn is_unplanned_exit(e: &MachineEvent) -> bool {
    e.kind == "exit" && e.exit_event.as_ref().is_some_and(|x| !x.requested_stop)
}

pub(super) fn is_oom_exit(e: &MachineEvent) -> bool {
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

pub(super) fn guest_memory_mb(m: &Machine) -> Option<u32> {
    m.config
        .as_ref()
        .and_then(|c| c.guest.as_ref())
        .map(|g| g.memory_mb)
}

pub(super) fn logs_of<'a>(
    logs: &'a [LogLine],
    machine: &'a str,
) -> impl Iterator<Item = &'a LogLine> + 'a {
    logs.iter().filter(move |l| l.instance == machine)
}

/// The kernel OOM line logged around an exit, if any.
pub(super) fn kernel_line<'a>(
    logs: &'a [LogLine],
    machine: &'a str,
    exit_ms: i64,
) -> Option<&'a LogLine> {
    logs_of(logs, machine)
        .filter(|l| {
            let t = l.ts_ms();
            t >= exit_ms.saturating_sub(KERNEL_LINE_BEFORE_MS) && t <= exit_ms.saturating_add(5_000)
        })
        .find(|l| classify(l) == LogKind::OomKill)
}

pub(super) fn event_ts(e: &MachineEvent) -> i64 {
    e.timestamp
}

pub(super) fn check_ms(c: &fly::CheckStatus) -> Option<i64> {
    c.updated_at
        .as_deref()
        .and_then(crate::workflows::observe::parse_rfc3339_ms)
}
