//! Sizes and prices: a guest from a preset or explicit figures, the monthly cost
//! estimate, and the machine config an environment is created with.

use std::collections::BTreeMap;

use super::{
    CostEstimate, EXPIRES_AT_METADATA_KEY, EXTRA_MEMORY_USD_PER_GB_MONTH, EnvSpec, GuestSpec,
    USER_METADATA_KEY, VOLUME_USD_PER_GB_MONTH,
};
use crate::fly;
use crate::workflows::{Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE};

/// Resolves the guest: presets via `vm_sizes` (GraphQL), defaults without a call.
pub async fn resolve_guest(
    client: &fly::Client,
    guest: &GuestSpec,
) -> Result<(fly::GuestConfig, Option<Vec<fly::VmSize>>), Error> {
    match guest {
        GuestSpec::Default => Ok((guest_config("shared", 1, 256), None)),
        GuestSpec::Custom {
            cpu_kind,
            cpus,
            memory_mb,
        } => Ok((guest_config(cpu_kind, *cpus, *memory_mb), None)),
        GuestSpec::Preset { name, memory_mb } => {
            let sizes = client
                .vm_sizes()
                .await
                .map_err(Error::fly("listing VM sizes"))?;
            let size = sizes
                .iter()
                .find(|s| s.name == *name)
                .ok_or_else(|| Error::Invalid {
                    field: "guest.preset".to_owned(),
                    rule: format!(
                        "unknown VM size '{name}' (known: {}; platform_info lists them with prices)",
                        sizes
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            let kind = if size.name.starts_with("performance") {
                "performance"
            } else {
                "shared"
            };
            let cpus = size.cpu_cores.round().max(1.0) as u32;
            let base = u32::try_from(size.memory_mb).unwrap_or(256);
            let memory = memory_mb.unwrap_or(base).max(base);
            Ok((guest_config(kind, cpus, memory), Some(sizes)))
        }
    }
}

pub(super) fn guest_config(kind: &str, cpus: u32, memory_mb: u32) -> fly::GuestConfig {
    fly::GuestConfig {
        cpu_kind: kind.to_owned(),
        cpus,
        memory_mb,
        ..fly::GuestConfig::default()
    }
}

/// Monthly cost of `guest` (running all month) plus `volume_gb`, from VM size prices:
/// the preset with the same CPU kind and count, plus memory above the preset's at
/// [`EXTRA_MEMORY_USD_PER_GB_MONTH`]; volumes at [`VOLUME_USD_PER_GB_MONTH`].
pub fn estimate_cost(
    guest: &fly::GuestConfig,
    volume_gb: u64,
    sizes: &[fly::VmSize],
) -> Option<CostEstimate> {
    let preset = sizes.iter().find(|s| {
        let kind_ok = if guest.cpu_kind == "performance" {
            s.name.starts_with("performance")
        } else {
            s.name.starts_with("shared")
        };
        kind_ok && (s.cpu_cores.round() as u32) == guest.cpus
    })?;
    let extra_mb = i64::from(guest.memory_mb)
        .saturating_sub(preset.memory_mb)
        .max(0);
    let extra = extra_mb as f64 / 1024.0 * EXTRA_MEMORY_USD_PER_GB_MONTH;
    let machine = preset.price_month + extra;
    let volume = volume_gb as f64 * VOLUME_USD_PER_GB_MONTH;
    Some(CostEstimate {
        machine_usd: round_cents(machine),
        volume_usd: round_cents(volume),
        total_usd: round_cents(machine + volume),
        basis: format!(
            "{} at ${:.2}/month{}{}; running all month (autostop lowers it); shared IPv4 and IPv6 are free",
            preset.name,
            preset.price_month,
            if extra_mb > 0 {
                format!(" + {extra_mb} MB extra memory at ${EXTRA_MEMORY_USD_PER_GB_MONTH:.2}/GB")
            } else {
                String::new()
            },
            if volume_gb > 0 {
                format!(" + {volume_gb} GB volume at ${VOLUME_USD_PER_GB_MONTH:.2}/GB")
            } else {
                String::new()
            }
        ),
    })
}

fn round_cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The machine config the spec describes (mount filled in by the caller).
pub fn machine_config(
    spec: &EnvSpec,
    guest: fly::GuestConfig,
    volume_id: Option<&str>,
) -> fly::MachineConfig {
    let mut metadata = BTreeMap::new();
    metadata.insert(
        OWNER_METADATA_KEY.to_owned(),
        OWNER_METADATA_VALUE.to_owned(),
    );
    if let Some(user) = &spec.user {
        metadata.insert(USER_METADATA_KEY.to_owned(), user.clone());
    }
    if let Some(at) = &spec.expires_at {
        metadata.insert(EXPIRES_AT_METADATA_KEY.to_owned(), at.clone());
    }
    let mounts = match (&spec.volume, volume_id) {
        (Some(v), Some(id)) => vec![fly::Mount {
            volume: id.to_owned(),
            path: v.path.clone(),
            name: Some(v.name.clone()),
            extend_threshold_percent: v.auto_extend.map(|a| a.0),
            add_size_gb: v.auto_extend.map(|a| a.1),
            size_gb_limit: v.auto_extend.map(|a| a.2),
            ..fly::Mount::default()
        }],
        _ => Vec::new(),
    };
    fly::MachineConfig {
        image: spec.image.clone(),
        guest: Some(guest),
        env: spec.env.clone(),
        metadata,
        services: spec.services.clone(),
        checks: spec.checks.clone(),
        mounts,
        init: spec.cmd.as_ref().map(|cmd| fly::InitConfig {
            cmd: Some(cmd.clone()),
            ..fly::InitConfig::default()
        }),
        ..fly::MachineConfig::default()
    }
}
