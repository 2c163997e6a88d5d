//! Findings about one machine, one function per kind: OOM kills, crashes (loops, gave
//! up, one-off), health checks, its host, failed or stuck states, long leases.

use super::signals::{
    LogKind, OomFigures, check_ms, classify, describe_event, event_ts, guest_memory_mb,
    is_oom_exit, is_unplanned_exit, kernel_line, killed_process, logs_of,
};
use super::{
    CRASH_LOOKBACK_MS, CRASH_LOOP_EXITS, CRASH_LOOP_WINDOW_MS, Evidence, Finding, FindingKind,
    LONG_LEASE_MS, MAX_EVIDENCE_TEXT, OOM_CRITICAL_WITHIN_MS, OOM_LOOKBACK_MS, STUCK_AFTER_MS,
    STUCK_CRITICAL_AFTER_MS, Severity,
};
use crate::fly::{Machine, MachineEvent, MachineState};
use crate::workflows::observe::{age, clip, format_rfc3339, parse_rfc3339_ms};

/// One live machine under examination: its events newest first, and what every
/// finding about it shares.
pub(super) struct Examined<'a> {
    pub(super) ev: &'a Evidence,
    pub(super) m: &'a Machine,
    /// Newest first.
    pub(super) events: Vec<&'a MachineEvent>,
    logs_hint: String,
}

/// An OOM kill found on one machine: when the last was and how many there were.
pub(super) struct OomKills {
    pub(super) last_ms: i64,
    pub(super) count: usize,
}

impl<'a> Examined<'a> {
    pub(super) fn new(ev: &'a Evidence, m: &'a Machine) -> Self {
        let mut events: Vec<&MachineEvent> = m.events.iter().collect();
        events.sort_by_key(|e| std::cmp::Reverse(event_ts(e)));
        Examined {
            ev,
            m,
            events,
            logs_hint: format!("app_logs machine={} since=15m", m.id),
        }
    }

    fn now(&self) -> i64 {
        self.ev.now_ms
    }

    fn finding(
        &self,
        severity: Severity,
        kind: FindingKind,
        title: String,
        evidence: Vec<String>,
        next_step: String,
        at_ms: Option<i64>,
    ) -> Finding {
        Finding {
            severity,
            kind,
            machine: Some(self.m.id.clone()),
            region: Some(self.m.region.clone()),
            title,
            evidence,
            next_step,
            at_ms,
        }
    }

    /// Every finding about this machine, and its OOM kills (for the app-wide pattern).
    pub(super) fn findings(&self, out: &mut Vec<Finding>) -> Option<OomKills> {
        let (oom, kills) = self.oom().unzip();
        out.extend(oom);
        out.extend(self.crash());
        out.extend(self.checks());
        out.extend(self.host());
        out.extend(self.state());
        out.extend(self.lease());
        kills
    }

    fn event_line(e: &MachineEvent) -> String {
        format!(
            "{} event {}",
            format_rfc3339(event_ts(e)),
            describe_event(e)
        )
    }

    /// OOM kills in the past week, with the kernel's figures when a log line has them.
    fn oom(&self) -> Option<(Finding, OomKills)> {
        let now = self.now();
        let ooms: Vec<&MachineEvent> = self
            .events
            .iter()
            .copied()
            .filter(|e| is_oom_exit(e) && now.saturating_sub(event_ts(e)) <= OOM_LOOKBACK_MS)
            .collect();
        let last = ooms.first()?;
        let last_ms = event_ts(last);
        let mut evidence = vec![Self::event_line(last)];
        let line = ooms
            .iter()
            .find_map(|e| kernel_line(&self.ev.logs, &self.m.id, event_ts(e)));
        let figures = line.and_then(|line| {
            evidence.push(format!(
                "{} log \"{}\"",
                format_rfc3339(line.ts_ms()),
                clip(&line.message, MAX_EVIDENCE_TEXT)
            ));
            OomFigures::parse(&line.message).map(|f| (f, killed_process(&line.message)))
        });
        let guest = guest_memory_mb(self.m);
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
        let finding = self.finding(
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
                "give it more memory (update_machines memory_mb) or find what grows; {}",
                self.logs_hint
            ),
            Some(last_ms),
        );
        Some((
            finding,
            OomKills {
                last_ms,
                count: ooms.len(),
            },
        ))
    }

    /// A crash loop, a crash the restart policy gave up on, or one recent crash that
    /// is not an OOM kill (at most one of the three).
    fn crash(&self) -> Option<Finding> {
        let now = self.now();
        let logs_hint = &self.logs_hint;
        let recent_exits: Vec<&MachineEvent> = self
            .events
            .iter()
            .copied()
            .filter(|e| {
                is_unplanned_exit(e) && now.saturating_sub(event_ts(e)) <= CRASH_LOOP_WINDOW_MS
            })
            .collect();
        let latest = self.events.first().copied();
        let stayed_down = latest.is_some_and(|e| {
            is_unplanned_exit(e)
                && e.exit_event.as_ref().is_some_and(|x| !x.restarting)
                && matches!(self.m.state, MachineState::Stopped)
        });
        if recent_exits.len() >= CRASH_LOOP_EXITS {
            return Some(self.finding(
                Severity::Critical,
                FindingKind::CrashLoop,
                format!(
                    "crash loop: {} unplanned exits in the past hour",
                    recent_exits.len()
                ),
                recent_exits.iter().take(3).map(|e| Self::event_line(e)).collect(),
                format!(
                    "read why it exits: {logs_hint}; fix the image or config, then update_machines"
                ),
                recent_exits.first().map(|e| event_ts(e)),
            ));
        }
        if let Some(e) = latest.filter(|_| stayed_down) {
            return Some(self.finding(
                Severity::Critical,
                FindingKind::Crashed,
                "crashed and was not restarted (restart policy gave up)".to_owned(),
                vec![Self::event_line(e)],
                format!("{logs_hint}; then machine_action start once the cause is fixed"),
                Some(event_ts(e)),
            ));
        }
        let e = self.events.iter().find(|e| {
            is_unplanned_exit(e)
                && !is_oom_exit(e)
                && e.exit_event.as_ref().is_some_and(|x| x.exit_code != 0)
                && now.saturating_sub(event_ts(e)) <= CRASH_LOOKBACK_MS
        })?;
        Some(self.finding(
            Severity::Warning,
            FindingKind::Crashed,
            format!("exited unexpectedly {} ago", age(now, event_ts(e))),
            vec![Self::event_line(e)],
            logs_hint.clone(),
            Some(event_ts(e)),
        ))
    }

    /// Health checks in critical or warning state, with the latest failing-check log line.
    fn checks(&self) -> Vec<Finding> {
        let now = self.now();
        let mut out = Vec::new();
        for c in &self.m.checks {
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
            if let Some(line) = logs_of(&self.ev.logs, &self.m.id)
                .filter(|l| classify(l) == LogKind::CheckFailed)
                .max_by_key(|l| l.ts_ns)
            {
                evidence.push(format!(
                    "{} log \"{}\"",
                    format_rfc3339(line.ts_ms()),
                    clip(&line.message, MAX_EVIDENCE_TEXT)
                ));
            }
            out.push(self.finding(
                severity,
                kind,
                format!("check {} {}: \"{}\"", c.name, c.status, clip(c.output.trim(), 80)),
                evidence,
                format!(
                    "the proxy routes around it while it fails; {}; if it stays {}, machine_action restart",
                    self.logs_hint, c.status
                ),
                at,
            ));
        }
        out
    }

    /// A host that is unreachable or in an unknown state.
    fn host(&self) -> Option<Finding> {
        let status = self.m.host_status.as_deref()?;
        let (severity, title, next_step) = match status {
            "unreachable" => (
                Severity::Critical,
                "host unreachable: its state and checks may be stale",
                "wait for the host to return, or replace the machine with one in another host of the region (scale_machines)",
            ),
            "unknown" => (
                Severity::Warning,
                "host status unknown",
                "check again in a minute; if it stays unknown, treat it as unreachable",
            ),
            _ => return None,
        };
        Some(self.finding(
            severity,
            FindingKind::HostUnreachable,
            title.to_owned(),
            vec![format!("host_status: {status}")],
            next_step.to_owned(),
            None,
        ))
    }

    /// A failed machine, or one stuck in a transition.
    fn state(&self) -> Option<Finding> {
        let now = self.now();
        let latest = self.events.first().copied();
        let m = self.m;
        if matches!(m.state, MachineState::Failed | MachineState::LaunchFailed) {
            let mut evidence = vec![format!("state: {}", m.state)];
            evidence.extend(latest.map(Self::event_line));
            return Some(self.finding(
                Severity::Critical,
                FindingKind::Failed,
                format!("machine is {}", m.state),
                evidence,
                format!(
                    "{}; a failed machine can be started again or destroyed and recreated",
                    self.logs_hint
                ),
                latest.map(event_ts),
            ));
        }
        if !m.state.is_transient() {
            return None;
        }
        let since = latest
            .map(event_ts)
            .or_else(|| parse_rfc3339_ms(&m.updated_at))?;
        let for_ms = now.saturating_sub(since);
        (for_ms >= STUCK_AFTER_MS).then(|| {
            self.finding(
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
            )
        })
    }

    /// A lease held for longer than an update would wait.
    fn lease(&self) -> Option<Finding> {
        let lease = self.m.lease.as_ref()?;
        let expires_ms = lease.expires_at.saturating_mul(1000);
        if expires_ms.saturating_sub(self.now()) < LONG_LEASE_MS {
            return None;
        }
        let desc = if lease.description.is_empty() {
            String::new()
        } else {
            format!(" ({})", lease.description)
        };
        Some(self.finding(
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
        ))
    }
}
