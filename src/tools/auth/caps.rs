//! Usage caps per caller (`max-machines-per-day`, `max-monthly-usd`): before a call
//! that creates machines, count what this caller created, from Fly
//! ([`crate::workflows::usage`]), and refuse before anything is created when the call
//! would pass a cap, saying the cap, the usage and when room frees up. A `dry_run`
//! creates nothing and is never refused.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CallerPolicy;
use crate::tools::{catalog::ToolDef, error::ToolError, gate::Caller};
use crate::workflows::usage::{DAY_SECONDS, usage_of};

/// Tools that may create machines (every path: provision, scale up, pool fill and
/// claim refills, hosting deploys).
const CREATING_TOOLS: &[&str] = &[
    "provision_environment",
    "scale_machines",
    "pool_fill",
    "claim_environment",
    "deploy_mcp_server",
];

/// The creator label machines created by `caller` carry: `key:ID` for a server key,
/// `oauth:SUB` for an OAuth subject (hashed when it is long or has characters a
/// metadata value should not); `None` for stdio and anonymous callers.
pub fn creator_label(caller: &Caller) -> Option<String> {
    if let Some(sub) = &caller.subject {
        let plain = sub.len() <= 64
            && sub
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        return Some(if plain {
            format!("oauth:{sub}")
        } else {
            let d = Sha256::digest(sub.as_bytes());
            format!(
                "oauth:sha256-{}",
                hex::encode(d.get(..12).unwrap_or_default())
            )
        });
    }
    caller.key_id.as_ref().map(|id| format!("key:{id}"))
}

fn when(now: i64, at: i64) -> String {
    let secs = at.saturating_sub(now).max(0);
    let stamp = jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    format!("in {}h{:02}m ({stamp})", secs / 3600, (secs % 3600) / 60)
}

/// Refuses `tool` when it would pass one of the caller's caps.
pub async fn check(
    client: &crate::fly::Client,
    tool: &ToolDef,
    args: &Value,
    policy: &CallerPolicy,
    label: &str,
    default_org: &str,
) -> Result<(), ToolError> {
    if policy.caps.is_empty()
        || !CREATING_TOOLS.contains(&tool.info.name)
        || args.get("dry_run").and_then(Value::as_bool) == Some(true)
    {
        return Ok(());
    }
    let mut orgs: Vec<String> = vec![
        args.get("org")
            .and_then(Value::as_str)
            .unwrap_or(default_org)
            .to_owned(),
    ];
    if let Some(rule) = &policy.orgs {
        for literal in rule.literals() {
            if !orgs.contains(&literal) {
                orgs.push(literal);
            }
        }
    }
    let usage = usage_of(client, &orgs, label, policy.caps.monthly_usd.is_some())
        .await
        .map_err(ToolError::from)?;
    let rule = format!("the caps of {}", policy.source);
    if let Some(cap) = policy.caps.machines_per_day {
        let used = usage.created_last_day.len();
        // This call creates at least one machine.
        if used.saturating_add(1) > cap as usize {
            let frees = usage
                .created_last_day
                .first()
                .map(|t| when(usage.now, t.saturating_add(DAY_SECONDS)))
                .unwrap_or_else(|| "never (the cap is 0)".to_owned());
            return Err(ToolError::Refused {
                rule,
                message: format!(
                    "this call would create machines past the cap of {cap} machines per rolling 24 hours: {used} created in the last 24 hours; room frees up {frees}. Nothing was created."
                ),
            });
        }
    }
    if let Some(cap) = policy.caps.monthly_usd
        && usage.running_monthly_usd >= cap
    {
        return Err(ToolError::Refused {
            rule,
            message: format!(
                "the machines you created that are running already cost an estimated ${:.2}/month, at or past the cap of ${cap:.2}/month; room frees up when you stop or destroy some of them. Nothing was created.",
                usage.running_monthly_usd
            ),
        });
    }
    Ok(())
}
