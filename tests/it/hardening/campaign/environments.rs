//! One environment cycle of the campaign: provision → update → scale up → scale down →
//! teardown of its own app, each tool result checked against the simulator's state.

use serde_json::{Value, json};

use super::{ATTEMPTS, Campaign, first_line, live_machines, live_volumes};
use crate::provision::env_args;
use crate::support::text_of;

const NEW_IMAGE: &str = "nginx:1.27";

/// Whether a result reports success: not an error, and no failed item in its report.
fn succeeded(r: &rmcp::model::CallToolResult) -> bool {
    r.is_error != Some(true)
        && r.structured_content
            .as_ref()
            .and_then(|s| s.get("failed"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            == 0
}

/// Runs cycle `i` (app `camp-env-{i}`) through server process `i`.
pub(super) async fn cycle(c: &Campaign, i: usize) {
    let app = format!("camp-env-{i}");
    let app = app.as_str();
    if i.is_multiple_of(3) {
        full_region(c, i, app).await;
    }
    let t = std::time::Instant::now();
    provision(c, i, app).await;
    let provisioned = t.elapsed();
    update(c, i, app).await;
    let updated = t.elapsed();
    scale(c, i, app, 2).await;
    scale(c, i, app, 1).await;
    let scaled = t.elapsed();
    teardown(c, i, app).await;
    eprintln!(
        "environment cycle {i}: provisioned {provisioned:.1?}, updated {updated:.1?}, scaled {scaled:.1?}, torn down {:.1?}",
        t.elapsed()
    );
    c.tally.lock().unwrap().env_cycles += 1;
}

/// A provision in the region the realistic profile keeps full: a capacity error
/// (the volume's "no capacity" 409, or the machine's `insufficient_capacity` when
/// there is no volume), reported once, definitive, with nothing left behind; the
/// agent then picks another region (what fly-go suggests for the code).
async fn full_region(c: &Campaign, p: usize, app: &str) {
    let mut args = env_args(app);
    args["region"] = json!(fly_machines_mcp::sim::FULL_REGION);
    if (p / 3) % 2 == 1 {
        args.as_object_mut().unwrap().remove("volume");
    }
    let r = c.call(p, "provision_environment", args).await;
    let text = text_of(&r);
    if r.is_error != Some(true) {
        c.false_outcome(format!(
            "provision {app} in the full region reported success: {text}"
        ));
        return;
    }
    if !((text.contains("insufficient_capacity") || text.contains("no capacity"))
        && text.contains("another region"))
    {
        c.false_outcome(format!(
            "provision {app} in the full region failed without naming capacity and the way on: {}",
            first_line(&text)
        ));
    }
    c.tally.lock().unwrap().capacity_refusals += 1;
    if let Some(state) = c.app(app) {
        c.orphan(format!(
            "provision {app} refused for capacity left its app ({} machines, {} volumes)",
            live_machines(&state).len(),
            live_volumes(&state).len()
        ));
    }
}

async fn provision(c: &Campaign, p: usize, app: &str) {
    for _ in 0..ATTEMPTS {
        let r = c.call(p, "provision_environment", env_args(app)).await;
        let state = c.app(app);
        let text = text_of(&r);
        if r.is_error != Some(true) {
            let Some(state) = state else {
                c.false_outcome(format!("provision {app} reported success, no app: {text}"));
                return;
            };
            let machines = live_machines(&state);
            let volumes = live_volumes(&state);
            let ips = state["ips"].as_array().map_or(0, Vec::len);
            if machines.len() > 1 || volumes.len() > 1 || ips > 1 {
                c.duplicate(format!(
                    "provision {app}: {} machines, {} volumes, {ips} IPs",
                    machines.len(),
                    volumes.len()
                ));
            }
            if machines.len() != 1
                || machines.iter().any(|m| m["state"] != "started")
                || volumes.is_empty()
            {
                c.false_outcome(format!(
                    "provision {app} reported success: machines {machines:?}, volumes {}",
                    volumes.len()
                ));
            }
            return;
        }
        c.note_error("provision_environment", &text);
        // It rolls back what it made: a failed provision leaves no app behind.
        if let Some(state) = state {
            c.false_outcome(format!(
                "provision {app} reported failure ({}) but left {} machines, {} volumes",
                first_line(&text),
                live_machines(&state).len(),
                live_volumes(&state).len()
            ));
            return;
        }
    }
    panic!("{app}: provision did not converge in {ATTEMPTS} calls");
}

async fn update(c: &Campaign, p: usize, app: &str) {
    let args = json!({"app": app, "image": NEW_IMAGE, "env": {"CAMPAIGN": "2"}});
    for _ in 0..ATTEMPTS {
        let r = c.call(p, "update_machines", args.clone()).await;
        let text = text_of(&r);
        let machines = c.app(app).map(|a| live_machines(&a)).unwrap_or_default();
        let updated = |m: &Value| m["config"]["image"] == NEW_IMAGE;
        if succeeded(&r) {
            if machines.is_empty()
                || !machines
                    .iter()
                    .all(|m| updated(m) && m["state"] == "started")
            {
                c.false_outcome(format!(
                    "update {app} reported success: {:?}",
                    machines
                        .iter()
                        .map(|m| (&m["config"]["image"], &m["state"]))
                        .collect::<Vec<_>>()
                ));
            }
            return;
        }
        c.note_error("update_machines", &text);
        // The rollout stops at the first failure and reverts that machine.
        if machines.iter().any(updated) && !text.contains("updated") {
            c.false_outcome(format!(
                "update {app} reported failure ({}) but its machines run {NEW_IMAGE}",
                first_line(&text)
            ));
            return;
        }
    }
    panic!("{app}: update did not converge in {ATTEMPTS} calls");
}

async fn scale(c: &Campaign, p: usize, app: &str, count: usize) {
    let args = json!({"app": app, "regions": {"iad": count}});
    for _ in 0..ATTEMPTS {
        let Some(r) = c.confirmed(p, "scale_machines", args.clone()).await else {
            continue;
        };
        let text = text_of(&r);
        let state = c.app(app).unwrap_or(Value::Null);
        let machines = live_machines(&state);
        let volumes = live_volumes(&state);
        if machines.len() > count.max(1) || (count > 1 && volumes.len() > count) {
            c.duplicate(format!(
                "scale {app} to {count}: {} machines, {} volumes",
                machines.len(),
                volumes.len()
            ));
        }
        if succeeded(&r) {
            if machines.len() != count || machines.iter().any(|m| m["state"] != "started") {
                c.false_outcome(format!(
                    "scale {app} to {count} reported success: {:?}",
                    machines
                        .iter()
                        .map(|m| (&m["id"], &m["state"]))
                        .collect::<Vec<_>>()
                ));
            }
            return;
        }
        c.note_error("scale_machines", &text);
        if machines.len() == count && machines.iter().all(|m| m["state"] == "started") {
            c.false_outcome(format!(
                "scale {app} to {count} reported failure ({}) but it has {count} started machines",
                first_line(&text)
            ));
            return;
        }
    }
    panic!("{app}: scale to {count} did not converge in {ATTEMPTS} calls");
}

async fn teardown(c: &Campaign, p: usize, app: &str) {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 && c.app(app).is_none() {
            return;
        }
        let Some(r) = c
            .confirmed(p, "teardown_environment", json!({"app": app}))
            .await
        else {
            continue;
        };
        let text = text_of(&r);
        let gone = c.app(app).is_none();
        if r.is_error != Some(true) {
            if !gone {
                c.false_outcome(format!("teardown {app} reported success, app still there"));
            }
            return;
        }
        c.note_error("teardown_environment", &text);
        if gone {
            c.false_outcome(format!(
                "teardown {app} reported failure ({}) but the app is gone",
                first_line(&text)
            ));
            return;
        }
    }
    panic!("{app}: teardown did not converge in {ATTEMPTS} calls");
}
