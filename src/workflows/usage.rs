//! What one caller has created, read back from Fly: machines carry their creator in
//! metadata ([`fly::CREATOR_METADATA_KEY`]), so counting needs no state of ours and
//! every replica (and a restarted server) counts the same. Feeds the usage caps.

use crate::fly;

use super::Error;

/// The rolling window of the creation cap.
pub const DAY_SECONDS: i64 = 24 * 60 * 60;

/// One caller's usage in some orgs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// When each machine created in the last 24 hours was created (Unix seconds,
    /// oldest first), destroyed ones included.
    pub created_last_day: Vec<i64>,
    /// Estimated monthly cost of the caller's running machines (`dry_run` pricing).
    pub running_monthly_usd: f64,
    /// Running machines whose size has no price (left out of the sum).
    pub unpriced: usize,
    /// Fly's "now" the window was measured at.
    pub now: i64,
}

/// Counts what `creator` created in `orgs`: two org listings per org (the last day's,
/// deleted included; and what exists now), plus the VM price list when money is asked.
pub async fn usage_of(
    client: &fly::Client,
    orgs: &[String],
    creator: &str,
    with_cost: bool,
) -> Result<Usage, Error> {
    let now = client.fly_now();
    let since = now.saturating_sub(DAY_SECONDS);
    let mut usage = Usage {
        now,
        ..Usage::default()
    };
    let sizes = if with_cost {
        client
            .vm_sizes()
            .await
            .map_err(Error::fly("list VM sizes for the cost cap"))?
    } else {
        Vec::new()
    };
    for org in orgs {
        let recent = client
            .list_org_machines(org, true, Some(since))
            .await
            .map_err(Error::fly("list the org's machines for the creation cap"))?;
        usage.created_last_day.extend(
            recent
                .iter()
                .filter(|m| m.creator.as_deref() == Some(creator))
                .filter_map(|m| m.created_at)
                .filter(|t| *t > since),
        );
        if with_cost {
            let all = client
                .list_org_machines(org, false, None)
                .await
                .map_err(Error::fly("list the org's machines for the cost cap"))?;
            for m in all.iter().filter(|m| {
                m.creator.as_deref() == Some(creator) && m.state == fly::MachineState::Started
            }) {
                match m
                    .guest
                    .as_ref()
                    .and_then(|g| super::provision::estimate_cost(g, 0, &sizes))
                {
                    Some(c) => usage.running_monthly_usd += c.machine_usd,
                    None => usage.unpriced = usage.unpriced.saturating_add(1),
                }
            }
        }
    }
    usage.created_last_day.sort_unstable();
    Ok(usage)
}
