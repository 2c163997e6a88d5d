//! Read-only workflows: platform facts (regions and VM sizes with prices), looking up
//! machines by id, and the time helpers the observe workflows share (`status`,
//! `diagnose`, `logs`). Compose `crate::fly` reads; change nothing.

use crate::fly;
use crate::workflows::NextStep;

use super::Error;

/// A region as the platform reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionFact {
    pub code: String,
    pub name: String,
    pub paid_only: bool,
    pub deprecated: bool,
}

/// A VM size preset with its price.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSizeFact {
    pub name: String,
    pub cpu_cores: f64,
    pub memory_mb: i64,
    pub max_memory_mb: i64,
    pub price_month: f64,
    pub price_second: f64,
}

/// Regions and VM sizes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlatformFacts {
    pub regions: Vec<RegionFact>,
    pub vm_sizes: Vec<VmSizeFact>,
}

/// Fetches regions (REST) and VM sizes (GraphQL) concurrently.
pub async fn platform_facts(
    client: &fly::Client,
    regions: bool,
    vm_sizes: bool,
) -> Result<PlatformFacts, Error> {
    let (regions, sizes) = futures::try_join!(
        read_if(regions, || client.list_regions(), "listing regions"),
        read_if(vm_sizes, || client.vm_sizes(), "listing VM sizes"),
    )?;
    Ok(PlatformFacts {
        regions: regions
            .into_iter()
            .map(|r| RegionFact {
                code: r.code,
                name: r.name,
                paid_only: r.requires_paid_plan,
                deprecated: r.deprecated,
            })
            .collect(),
        // Only the sizes a machine can be given (`fly::validate::preset`): GraphQL may
        // still list GPU sizes, which Fly no longer offers (flyctl
        // `internal/command/platform/vmsizes.go` leaves them out of `fly platform
        // vm-sizes`, and the API refuses a GPU guest).
        vm_sizes: sizes
            .into_iter()
            .filter(|s| fly::validate::preset(&s.name).is_ok())
            .map(|s| VmSizeFact {
                name: s.name,
                cpu_cores: s.cpu_cores,
                memory_mb: s.memory_mb,
                max_memory_mb: s.max_memory_mb,
                price_month: s.price_month,
                price_second: s.price_second,
            })
            .collect(),
    })
}

/// One machine as a plan shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSummary {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    /// Its current version (a confirmation is bound to it).
    pub version: String,
    /// Created by this server (ownership metadata present).
    pub owned: bool,
}

/// Makes and awaits `read` when `wanted` (a list nobody asked for is not fetched, and
/// reads empty); a failure names `step`. The read's future is made here, not passed
/// in, so it is built in place rather than moved.
async fn read_if<T, F>(
    wanted: bool,
    read: impl FnOnce() -> F,
    step: &'static str,
) -> Result<Vec<T>, Error>
where
    F: Future<Output = Result<Vec<T>, fly::Error>>,
{
    if wanted {
        read().await.map_err(Error::fly(step))
    } else {
        Ok(Vec::new())
    }
}

/// Reads machine `id` of `app`; an unknown id is [`Error::NotFound`] pointing at
/// `app_status`.
pub(crate) async fn machine_by_id(
    client: &fly::Client,
    app: &str,
    id: &str,
) -> Result<fly::Machine, Error> {
    client
        .get_machine(app, id)
        .await
        .map_err(Error::fly_or_not_found(
            format!("reading machine {id} of app {app}"),
            || machine_not_found(app, id),
        ))
}

/// The error for a machine id `app` does not have, pointing at `app_status`.
pub(crate) fn machine_not_found(app: &str, id: &str) -> Error {
    Error::NotFound {
        what: "machine",
        id: format!("{id} (app {app})"),
        hint: NextStep::to("call app_status to see the app's machine ids"),
    }
}

/// Looks up each named machine of `app`. An unknown id is an error naming it.
pub async fn machines_by_id(
    client: &fly::Client,
    app: &str,
    ids: &[String],
) -> Result<Vec<MachineSummary>, Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let m = machine_by_id(client, app, id).await?;
        let owned = super::is_owned(&m);
        out.push(MachineSummary {
            id: m.id,
            name: m.name,
            region: m.region,
            state: m.state.as_str().to_owned(),
            version: m.version,
            owned,
        });
    }
    Ok(out)
}

/// Epoch milliseconds of an RFC 3339 timestamp.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    Some(ts.as_millisecond())
}

/// RFC 3339 (UTC, second precision) of epoch milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `HH:MM:SS` (UTC) of epoch milliseconds.
pub fn clock_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// How long ago `then_ms` was, coarsely: `45s`, `12m`, `5h`, `3d`.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let s = now_ms.saturating_sub(then_ms).max(0) / 1000;
    if s < 120 {
        format!("{s}s")
    } else if s < 7_200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h", (s + 1_800) / 3_600)
    } else {
        format!("{}d", (s + 43_200) / 86_400)
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", text.get(..cut).unwrap_or_default())
}

/// The current time in epoch milliseconds (the tools' clock; workflows take `now` as
/// an argument so tests can pin it).
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The slug of the org that owns `app`, or `None` when the app does not exist (yet).
pub async fn app_org(client: &fly::Client, app: &str) -> Result<Option<String>, Error> {
    match client.get_app(app).await {
        Ok(found) => Ok(found.organization.map(|o| o.slug)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(Error::fly(format!("reading app {app} to check its org"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_compactly() {
        let ms = parse_rfc3339_ms("2026-01-01T20:47:03.250Z").unwrap();
        assert_eq!(clock_time(ms), "20:47:03");
        assert_eq!(format_rfc3339(ms), "2026-01-01T20:47:03Z");
        assert_eq!(age(ms + 20_000, ms), "20s");
        assert_eq!(age(ms + 300_000, ms), "5m");
        assert_eq!(age(ms + 3 * 3_600_000, ms), "3h");
        assert_eq!(age(ms + 3 * 86_400_000, ms), "3d");
        assert_eq!(age(ms, ms + 5), "0s");
    }
}
