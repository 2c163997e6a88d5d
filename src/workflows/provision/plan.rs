//! The read-only plan: what exists already and what a provision would create or
//! reuse, at what cost.

use super::{EnvPlan, EnvSpec, PlannedStep, StepAction, VolumeSpec, estimate_cost, resolve_guest};
use crate::fly;
use crate::workflows::Error;

/// What exists of an environment right now (read-only).
#[derive(Debug, Clone, Default)]
struct Existing {
    app: Option<fly::App>,
    shared_v4: Option<String>,
    v6: Option<String>,
    volume: Option<fly::Volume>,
    machine: Option<fly::Machine>,
}

async fn look(client: &fly::Client, spec: &EnvSpec) -> Result<Existing, Error> {
    let app = match client.get_app(&spec.app).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => return Ok(Existing::default()),
        Err(e) => return Err(Error::fly(format!("reading app {}", spec.app))(e)),
    };
    let key = spec.idempotency_key();
    let (ips, volume, machine) = futures::try_join!(
        existing_ips(client, &spec.app),
        existing_volume(client, spec),
        async {
            client
                .find_machine_by_idempotency_key(&spec.app, &key)
                .await
                .map_err(Error::fly(format!(
                    "looking up the machine of app {}",
                    spec.app
                )))
        }
    )?;
    Ok(Existing {
        app: Some(app),
        shared_v4: ips.0,
        v6: ips.1,
        volume,
        machine,
    })
}

pub(super) async fn existing_ips(
    client: &fly::Client,
    app: &str,
) -> Result<(Option<String>, Option<String>), Error> {
    let ips = client
        .list_ip_assignments(app)
        .await
        .map_err(Error::fly(format!("listing IPs of app {app}")))?;
    let find = |kind: &str| {
        ips.iter()
            .find(|ip| ip.kind() == kind)
            .and_then(|ip| ip.ip.clone())
    };
    Ok((find("shared_v4"), find("v6")))
}

pub(super) async fn existing_volume(
    client: &fly::Client,
    spec: &EnvSpec,
) -> Result<Option<fly::Volume>, Error> {
    let Some(v) = &spec.volume else {
        return Ok(None);
    };
    let vols = client
        .list_volumes(&spec.app)
        .await
        .map_err(Error::fly(format!("listing volumes of app {}", spec.app)))?;
    Ok(pick_volume(vols, v, &spec.region))
}

fn pick_volume(vols: Vec<fly::Volume>, v: &VolumeSpec, region: &str) -> Option<fly::Volume> {
    vols.into_iter()
        .find(|vol| vol.name == v.name && vol.region == region && !vol.is_going())
}

/// Says what [`provision_environment`](super::provision_environment) would create or reuse, and what it would cost.
/// Reads only.
pub async fn plan_environment(client: &fly::Client, spec: &EnvSpec) -> Result<EnvPlan, Error> {
    let (guest, sizes) = resolve_guest(client, &spec.guest).await?;
    let existing = look(client, spec).await?;
    let sizes = match sizes {
        Some(s) => s,
        None => client
            .vm_sizes()
            .await
            .map_err(Error::fly("listing VM sizes"))?,
    };
    let mut steps = Vec::new();
    let step = |kind, found: bool, detail: String| PlannedStep {
        kind,
        action: if found {
            StepAction::Reuse
        } else {
            StepAction::Create
        },
        detail,
    };
    steps.push(step(
        "app",
        existing.app.is_some(),
        format!("{} in org {}", spec.app, spec.org),
    ));
    if spec.public_ips {
        for (kind, address) in [("shared_v4", &existing.shared_v4), ("v6", &existing.v6)] {
            steps.push(step(
                "ip",
                address.is_some(),
                address
                    .as_ref()
                    .map_or(kind.to_owned(), |a| format!("{kind} {a}")),
            ));
        }
    }
    if let Some(v) = &spec.volume {
        steps.push(step(
            "volume",
            existing.volume.is_some(),
            match &existing.volume {
                Some(vol) => format!(
                    "{} ({}, {} GB, {})",
                    vol.id, vol.name, vol.size_gb, vol.region
                ),
                None => format!(
                    "{} ({} GB, {}) mounted at {}",
                    v.name, v.size_gb, spec.region, v.path
                ),
            },
        ));
    }
    steps.push(step(
        "machine",
        existing.machine.is_some(),
        match &existing.machine {
            Some(m) => format!("{} ({}, {})", m.id, m.name, m.state),
            None => format!(
                "{} ({}, {} {}x{} MB, {})",
                spec.machine_name,
                spec.image,
                guest.cpu_kind,
                guest.cpus,
                guest.memory_mb,
                spec.region
            ),
        },
    ));
    let volume_gb = match (&existing.volume, &spec.volume) {
        (Some(vol), _) => vol.size_gb,
        (None, Some(v)) => v.size_gb,
        (None, None) => 0,
    };
    Ok(EnvPlan {
        app: spec.app.clone(),
        url: spec.url(),
        steps,
        cost: estimate_cost(&guest, volume_gb, &sizes),
        guest,
        idempotency_key: spec.idempotency_key(),
    })
}
