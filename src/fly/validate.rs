//! Input validation used before calling Fly (and by workflows): app names,
//! region codes, guest sizes and presets. Every error names the field and the
//! rule it broke. Pure functions; no I/O.

use super::{Error, GuestConfig, Region};

/// Shared-CPU preset sizes (`shared-cpu-Nx`).
const SHARED_CPUS: [u32; 5] = [1, 2, 4, 6, 8];
/// Performance-CPU preset sizes (`performance-Nx`).
const PERFORMANCE_CPUS: [u32; 9] = [1, 2, 4, 6, 8, 10, 12, 14, 16];

/// App names (one global namespace, also a DNS label): 1–63 characters of
/// lowercase letters, digits and dashes, not starting or ending with a dash.
pub fn app_name(name: &str) -> Result<(), Error> {
    const FIELD: &str = "app name";
    if name.is_empty() {
        return Err(Error::invalid(FIELD, "must not be empty"));
    }
    if name.len() > 63 {
        return Err(Error::invalid(FIELD, "must be at most 63 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::invalid(
            FIELD,
            "may contain only lowercase letters, digits and dashes",
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(Error::invalid(FIELD, "must not start or end with a dash"));
    }
    Ok(())
}

/// Guest limits: memory a multiple of 256 MB; per-CPU memory 256–2048 MB for
/// shared CPUs and 2048–8192 MB for performance CPUs; CPU counts as in Fly's presets.
pub fn guest(g: &GuestConfig) -> Result<(), Error> {
    // Fly no longer offers GPU Machines; the API answers a GPU guest with a 400
    // (flyctl `internal/flag/machines.go`).
    if g.gpu_kind.as_deref().is_some_and(|k| !k.is_empty()) || g.gpus.is_some_and(|n| n > 0) {
        return Err(Error::invalid(
            "guest.gpu_kind",
            "GPU machines are no longer offered by Fly",
        ));
    }
    let (per_cpu_min, per_cpu_max, cpus_ok): (u32, u32, &[u32]) = match g.cpu_kind.as_str() {
        "shared" | "" => (256, 2048, &SHARED_CPUS),
        "performance" => (2048, 8192, &PERFORMANCE_CPUS),
        other => {
            return Err(Error::invalid(
                "guest.cpu_kind",
                format!("must be `shared` or `performance`, not `{other}`"),
            ));
        }
    };
    if !cpus_ok.contains(&g.cpus) {
        return Err(Error::invalid(
            "guest.cpus",
            format!(
                "must be one of {cpus_ok:?} for {} CPUs",
                if g.cpu_kind.is_empty() {
                    "shared"
                } else {
                    &g.cpu_kind
                }
            ),
        ));
    }
    if g.memory_mb == 0 || !g.memory_mb.is_multiple_of(256) {
        return Err(Error::invalid(
            "guest.memory_mb",
            "must be a positive multiple of 256",
        ));
    }
    let min = per_cpu_min.saturating_mul(g.cpus);
    let max = per_cpu_max.saturating_mul(g.cpus);
    if g.memory_mb < min || g.memory_mb > max {
        return Err(Error::invalid(
            "guest.memory_mb",
            format!("must be between {min} and {max} MB for {} CPUs", g.cpus),
        ));
    }
    Ok(())
}

/// A preset name (`shared-cpu-1x`, `performance-2x`, …) as a guest: shared presets
/// get 256 MB per CPU, performance presets 2048 MB per CPU. There are no GPU presets:
/// Fly no longer offers GPU Machines and the API refuses a GPU guest (flyctl
/// `internal/flag/machines.go`; `internal/command/platform/vmsizes.go` drops fly-go's
/// `a10`, `l40s`, `a100-40gb`, `a100-80gb` presets from `fly platform vm-sizes`).
pub fn preset(name: &str) -> Result<GuestConfig, Error> {
    let unknown = || {
        Error::invalid(
            "size",
            format!(
                "unknown preset `{name}`; use shared-cpu-{{1,2,4,6,8}}x or performance-{{1,2,4,6,8,10,12,14,16}}x (GPU machines are no longer offered)"
            ),
        )
    };
    let guest = |kind: &str, cpus: u32, mb_per_cpu: u32| GuestConfig {
        cpu_kind: kind.to_owned(),
        cpus,
        memory_mb: cpus.saturating_mul(mb_per_cpu),
        ..GuestConfig::default()
    };
    let count = |rest: &str| rest.strip_suffix('x').and_then(|n| n.parse::<u32>().ok());
    if let Some(n) = name.strip_prefix("shared-cpu-").and_then(count) {
        return SHARED_CPUS
            .contains(&n)
            .then(|| guest("shared", n, 256))
            .ok_or_else(unknown);
    }
    if let Some(n) = name.strip_prefix("performance-").and_then(count) {
        return PERFORMANCE_CPUS
            .contains(&n)
            .then(|| guest("performance", n, 2048))
            .ok_or_else(unknown);
    }
    Err(unknown())
}

/// A region code: three lowercase letters, and (when a region list is given)
/// one Fly knows. Deprecated regions are accepted; callers may warn.
pub fn region(code: &str, known: &[Region]) -> Result<(), Error> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(Error::invalid(
            "region",
            format!("`{code}` is not a region code (three lowercase letters, e.g. iad)"),
        ));
    }
    if known.is_empty() || known.iter().any(|r| r.code == code) {
        return Ok(());
    }
    let mut codes: Vec<&str> = known
        .iter()
        .filter(|r| !r.deprecated)
        .map(|r| r.code.as_str())
        .collect();
    codes.sort_unstable();
    Err(Error::invalid(
        "region",
        format!(
            "unknown region `{code}`; known regions: {}",
            codes.join(", ")
        ),
    ))
}

/// A machine id: 14 lowercase hex characters.
pub fn machine_id(id: &str) -> Result<(), Error> {
    if id.len() == 14
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::invalid(
            "machine id",
            format!("`{id}` is not a machine id (14 hex characters)"),
        ))
    }
}

/// A volume name: 1–30 lowercase letters, digits and underscores.
pub fn volume_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 30
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "volume name",
            format!("`{name}` must be 1-30 lowercase letters, digits and underscores"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        assert!(app_name("dev-alice-1").is_ok());
        for bad in ["", "Dev", "a_b", "-a", "a-", &"a".repeat(64)] {
            let e = app_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid app name:"), "{e}");
        }
    }

    #[test]
    fn guests() {
        let g = |kind: &str, cpus, mem| GuestConfig {
            cpu_kind: kind.into(),
            cpus,
            memory_mb: mem,
            ..GuestConfig::default()
        };
        assert!(guest(&g("shared", 1, 256)).is_ok());
        assert!(guest(&g("performance", 2, 4096)).is_ok());
        let mut with_gpu = g("performance", 8, 32768);
        with_gpu.gpu_kind = Some("a100-pcie-40gb".into());
        with_gpu.gpus = Some(1);
        for (bad, says) in [
            (g("shared", 1, 300), "multiple of 256"),
            (g("shared", 1, 4096), "guest.memory_mb"),
            (g("shared", 3, 768), "guest.cpus"),
            (g("gpu", 1, 256), "guest.cpu_kind"),
            (with_gpu, "GPU machines are no longer offered"),
        ] {
            let e = guest(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn presets() {
        let g = preset("shared-cpu-2x").unwrap();
        assert_eq!(
            (g.cpu_kind.as_str(), g.cpus, g.memory_mb),
            ("shared", 2, 512)
        );
        let g = preset("performance-4x").unwrap();
        assert_eq!(
            (g.cpu_kind.as_str(), g.cpus, g.memory_mb),
            ("performance", 4, 8192)
        );
        assert!(guest(&g).is_ok());
        for bad in [
            "shared-cpu-3x",
            "performance-0x",
            "huge",
            "shared-cpu-x",
            "a10",
            "l40s",
            "a100-40gb",
            "a100-80gb",
        ] {
            assert!(
                preset(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("invalid size: unknown preset"),
                "{bad}"
            );
        }
        for n in SHARED_CPUS {
            assert!(guest(&preset(&format!("shared-cpu-{n}x")).unwrap()).is_ok());
        }
        for n in PERFORMANCE_CPUS {
            assert!(guest(&preset(&format!("performance-{n}x")).unwrap()).is_ok());
        }
    }

    #[test]
    fn regions_ids_and_volume_names() {
        let known = vec![
            Region {
                code: "iad".into(),
                ..Region::default()
            },
            Region {
                code: "ord".into(),
                ..Region::default()
            },
        ];
        assert!(region("iad", &known).is_ok());
        assert!(region("xyz", &[]).is_ok(), "syntax only without a list");
        let e = region("xyz", &known).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid region: unknown region `xyz`; known regions: iad, ord"
        );
        assert!(
            region("IAD", &known)
                .unwrap_err()
                .to_string()
                .contains("three lowercase letters")
        );
        assert!(machine_id("080155df097248").is_ok());
        assert!(machine_id("not-an-id").is_err());
        assert!(volume_name("pg_data").is_ok());
        assert!(
            volume_name("pg-data")
                .unwrap_err()
                .to_string()
                .starts_with("invalid volume name:")
        );
    }
}
