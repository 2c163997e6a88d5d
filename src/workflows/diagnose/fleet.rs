//! Findings across the app's machines: an OOM pattern on several of them, drift within
//! a process group, nearly full volumes.

use std::collections::{BTreeMap, BTreeSet};

use super::machine::OomKills;
use super::signals::guest_memory_mb;
use super::{Finding, FindingKind, OOM_CRITICAL_WITHIN_MS, Severity, VOLUME_CRITICAL, VOLUME_WARN};
use crate::fly::Machine;
use crate::workflows::observe::age;
use crate::workflows::status::VolumeFact;

/// OOM kills on two or more machines: said once, app-wide, with their guest sizes.
pub(super) fn oom_pattern(
    kills: &[(&Machine, OomKills)],
    live: usize,
    now: i64,
) -> Option<Finding> {
    if kills.len() < 2 {
        return None;
    }
    let last = kills.iter().map(|(_, k)| k.last_ms).max();
    let total: usize = kills.iter().map(|(_, k)| k.count).sum();
    let memories: BTreeSet<u32> = kills
        .iter()
        .filter_map(|(m, _)| guest_memory_mb(m))
        .collect();
    let guests = if memories.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = memories.iter().map(|mb| format!("{mb} MB")).collect();
        format!(" (guest memory {})", list.join(", "))
    };
    let mut sorted: Vec<&(&Machine, OomKills)> = kills.iter().collect();
    sorted.sort_by_key(|(_, k)| std::cmp::Reverse(k.last_ms));
    Some(Finding {
        severity: if last.is_some_and(|t| now.saturating_sub(t) <= OOM_CRITICAL_WITHIN_MS) {
            Severity::Critical
        } else {
            Severity::Warning
        },
        kind: FindingKind::OomPattern,
        machine: None,
        region: None,
        title: format!(
            "{total} OOM kills on {} of {live} machines{guests}: the app needs more memory than its guests have",
            kills.len(),
        ),
        evidence: sorted
            .iter()
            .map(|(m, k)| {
                format!(
                    "{} ({}): {}× oom_killed, last {} ago",
                    m.id,
                    m.region,
                    k.count,
                    age(now, k.last_ms)
                )
            })
            .collect(),
        next_step: "raise guest memory for all machines (update_machines with a larger memory_mb) \
or reduce the process's memory use; the per-machine findings show the kernel's RSS figures"
            .to_owned(),
        at_ms: last,
    })
}

/// The key a machine is compared under for drift: its process group.
fn process_group(m: &Machine) -> String {
    m.metadata("fly_process_group").unwrap_or("app").to_owned()
}

fn guest_text(m: &Machine) -> Option<String> {
    let g = m.config.as_ref()?.guest.as_ref()?;
    Some(format!("{} {}x {}MB", g.cpu_kind, g.cpus, g.memory_mb))
}

/// Machines of one process group that differ in image or guest.
pub(super) fn drift(live: &[&Machine], findings: &mut Vec<Finding>) {
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

/// Volumes nearly full.
pub(super) fn volumes(volumes: &[VolumeFact], findings: &mut Vec<Finding>) {
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
