//! Input validation used before calling Fly (and by workflows): app names,
//! region codes, guest sizes and presets. Every error names the field and the
//! rule it broke. Pure functions; no I/O.

use super::{Error, GuestConfig};

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
    let (per_cpu_min, per_cpu_max, cpus_ok): (u32, u32, &[u32]) = match g.cpu_kind.as_str() {
        "shared" | "" => (256, 2048, &[1, 2, 4, 6, 8]),
        "performance" => (2048, 8192, &[1, 2, 4, 6, 8, 10, 12, 14, 16]),
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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
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
        assert!(
            guest(&g("shared", 1, 300))
                .unwrap_err()
                .to_string()
                .contains("multiple of 256")
        );
        assert!(
            guest(&g("shared", 1, 4096))
                .unwrap_err()
                .to_string()
                .contains("guest.memory_mb")
        );
        assert!(
            guest(&g("shared", 3, 768))
                .unwrap_err()
                .to_string()
                .contains("guest.cpus")
        );
        assert!(
            guest(&g("gpu", 1, 256))
                .unwrap_err()
                .to_string()
                .contains("guest.cpu_kind")
        );
    }
}
