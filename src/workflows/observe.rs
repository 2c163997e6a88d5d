//! Read-only workflows: platform facts (regions and VM sizes with prices) and
//! looking up machines by id. Compose `crate::fly` reads; change nothing.

use crate::fly;

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
    let regions_fut = async {
        if regions {
            client
                .list_regions()
                .await
                .map_err(Error::fly("listing regions"))
        } else {
            Ok(Vec::new())
        }
    };
    let sizes_fut = async {
        if vm_sizes {
            client
                .vm_sizes()
                .await
                .map_err(Error::fly("listing VM sizes"))
        } else {
            Ok(Vec::new())
        }
    };
    let (regions, sizes) = futures::try_join!(regions_fut, sizes_fut)?;
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
        vm_sizes: sizes
            .into_iter()
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
    /// Created by this server (ownership metadata present).
    pub owned: bool,
}

/// Looks up each named machine of `app`. An unknown id is an error naming it.
pub async fn machines_by_id(
    client: &fly::Client,
    app: &str,
    ids: &[String],
) -> Result<Vec<MachineSummary>, Error> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let m = client.get_machine(app, id).await.map_err(|e| {
            if e.is_not_found() {
                Error::NotFound {
                    what: "machine",
                    id: format!("{id} (app {app})"),
                    hint: ": call app_status to see the app's machine ids".to_owned(),
                }
            } else {
                Error::fly(format!("reading machine {id} of app {app}"))(e)
            }
        })?;
        let owned = m.metadata(super::OWNER_METADATA_KEY) == Some(super::OWNER_METADATA_VALUE);
        out.push(MachineSummary {
            id: m.id,
            name: m.name,
            region: m.region,
            state: m.state.as_str().to_owned(),
            owned,
        });
    }
    Ok(out)
}
