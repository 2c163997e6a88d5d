//! Tests of the analysis on hand-made evidence and of the gathering on the simulator.

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
        ewr_oom.evidence.iter().any(|e| e
            .contains("anon-rss 3744352 kB = 3.57 GiB of the 4096 MB (4.00 GiB) guest limit: 89%")),
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
