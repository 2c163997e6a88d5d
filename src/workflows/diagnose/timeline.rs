//! The timeline of the worst incident: the unplanned exit that matters most, and the
//! events and log lines around it, second by second.

use super::signals::{
    LogKind, OomFigures, SIGNAL, check_ms, classify, describe_event, event_ts, guest_memory_mb,
    is_oom_exit, is_unplanned_exit, logs_of, signal_name,
};
use super::{
    Evidence, INCIDENT_SPAN_MS, Incident, KERNEL_LINE_BEFORE_MS, MAX_EVIDENCE_TEXT,
    MAX_TIMELINE_ENTRIES, Source, TimelineEntry,
};
use crate::fly::{Machine, MachineEvent};
use crate::workflows::logs::LogLine;
use crate::workflows::observe::clip;

/// The worst unplanned exit: on a machine that is unhealthy now, an OOM kill, the
/// most recent.
pub(super) fn worst_exit<'a>(live: &[&'a Machine]) -> Option<(&'a Machine, &'a MachineEvent)> {
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
pub(super) fn next_exit_after(m: &Machine, exit_ms: i64) -> Option<i64> {
    m.events
        .iter()
        .filter(|e| is_unplanned_exit(e) && event_ts(e) > exit_ms)
        .map(event_ts)
        .min()
}

pub(super) fn incident(ev: &Evidence, m: &Machine, exit: &MachineEvent) -> Incident {
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
