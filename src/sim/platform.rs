//! Fixed platform facts: regions (codes, names, coordinates, flags), VM sizes with
//! prices, guest limits, Unix signals. Pure data and validation; no state.

use serde_json::{Value, json};

use super::http::ApiError;

/// `(code, name, geo_region, lat, lon, requires_paid_plan, deprecated)`.
pub(crate) type RegionRow = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    bool,
    bool,
);

pub(crate) const REGIONS: &[RegionRow] = &[
    (
        "ams",
        "Amsterdam, Netherlands",
        "eu",
        52.374,
        4.8897,
        false,
        false,
    ),
    (
        "arn",
        "Stockholm, Sweden",
        "eu",
        59.6512,
        17.9178,
        false,
        false,
    ),
    (
        "atl",
        "Atlanta, Georgia (US)",
        "na",
        33.6407,
        -84.4277,
        false,
        false,
    ),
    (
        "bog",
        "Bogotá, Colombia",
        "sa",
        4.7016,
        -74.1469,
        false,
        false,
    ),
    ("bom", "Mumbai, India", "as", 19.0974, 72.8745, true, false),
    (
        "bos",
        "Boston, Massachusetts (US)",
        "na",
        42.3643,
        -71.0052,
        false,
        false,
    ),
    ("cdg", "Paris, France", "eu", 48.8566, 2.3522, false, false),
    (
        "den",
        "Denver, Colorado (US)",
        "na",
        39.8561,
        -104.6737,
        false,
        false,
    ),
    (
        "dfw",
        "Dallas, Texas (US)",
        "na",
        32.7767,
        -96.797,
        false,
        false,
    ),
    (
        "ewr",
        "Secaucus, NJ (US)",
        "na",
        40.7899,
        -74.0609,
        false,
        false,
    ),
    (
        "eze",
        "Ezeiza, Argentina",
        "sa",
        -34.8222,
        -58.5358,
        false,
        false,
    ),
    (
        "fra",
        "Frankfurt, Germany",
        "eu",
        50.1109,
        8.6821,
        false,
        false,
    ),
    (
        "gdl",
        "Guadalajara, Mexico",
        "na",
        20.5217,
        -103.3109,
        false,
        false,
    ),
    (
        "gig",
        "Rio de Janeiro, Brazil",
        "sa",
        -22.8099,
        -43.2505,
        false,
        false,
    ),
    (
        "gru",
        "Sao Paulo, Brazil",
        "sa",
        -23.5505,
        -46.6333,
        false,
        false,
    ),
    (
        "hkg",
        "Hong Kong, Hong Kong",
        "as",
        22.2796,
        114.1588,
        false,
        false,
    ),
    (
        "iad",
        "Ashburn, Virginia (US)",
        "na",
        39.0438,
        -77.4874,
        false,
        false,
    ),
    (
        "jnb",
        "Johannesburg, South Africa",
        "af",
        -26.1367,
        28.2411,
        false,
        false,
    ),
    (
        "lax",
        "Los Angeles, California (US)",
        "na",
        33.9416,
        -118.4085,
        false,
        false,
    ),
    (
        "lhr",
        "London, United Kingdom",
        "eu",
        51.5074,
        -0.1278,
        false,
        false,
    ),
    ("mad", "Madrid, Spain", "eu", 40.4168, -3.7038, false, false),
    (
        "mia",
        "Miami, Florida (US)",
        "na",
        25.7959,
        -80.287,
        false,
        false,
    ),
    ("nrt", "Tokyo, Japan", "as", 35.6762, 139.6503, false, false),
    (
        "ord",
        "Chicago, Illinois (US)",
        "na",
        41.8781,
        -87.6298,
        false,
        false,
    ),
    (
        "otp",
        "Bucharest, Romania",
        "eu",
        44.4268,
        26.1025,
        false,
        true,
    ),
    (
        "phx",
        "Phoenix, Arizona (US)",
        "na",
        33.4484,
        -112.074,
        false,
        false,
    ),
    (
        "qro",
        "Querétaro, Mexico",
        "na",
        20.6191,
        -100.1859,
        false,
        false,
    ),
    (
        "scl",
        "Santiago, Chile",
        "sa",
        -33.4489,
        -70.6693,
        false,
        false,
    ),
    (
        "sea",
        "Seattle, Washington (US)",
        "na",
        47.6062,
        -122.3321,
        false,
        false,
    ),
    (
        "sin",
        "Singapore, Singapore",
        "as",
        1.3521,
        103.8198,
        false,
        false,
    ),
    (
        "sjc",
        "San Jose, California (US)",
        "na",
        37.3382,
        -121.8863,
        false,
        false,
    ),
    (
        "syd",
        "Sydney, Australia",
        "oc",
        -33.8688,
        151.2093,
        false,
        false,
    ),
    ("waw", "Warsaw, Poland", "eu", 52.2297, 21.0122, false, true),
    (
        "yul",
        "Montreal, Canada",
        "na",
        45.5017,
        -73.5673,
        false,
        false,
    ),
    (
        "yyz",
        "Toronto, Canada",
        "na",
        43.6532,
        -79.3832,
        false,
        false,
    ),
];

pub(crate) fn region(code: &str) -> Option<&'static RegionRow> {
    REGIONS.iter().find(|r| r.0 == code)
}

/// `GET /v1/platform/regions` rows.
pub(crate) fn regions_rest() -> Vec<Value> {
    REGIONS
        .iter()
        .map(|&(code, name, geo, lat, lon, paid, deprecated)| {
            json!({"code": code, "name": name, "geo_region": geo, "latitude": lat,
                   "longitude": lon, "deprecated": deprecated, "gateway_available": !deprecated,
                   "requires_paid_plan": paid, "mpg_available": !deprecated && !paid})
        })
        .collect()
}

/// GraphQL `platform.regions` nodes.
pub(crate) fn regions_graphql() -> Vec<Value> {
    REGIONS
        .iter()
        .map(|&(code, name, _, lat, lon, paid, deprecated)| {
            json!({"__typename": "Region", "code": code, "name": name, "latitude": lat,
                   "longitude": lon, "gatewayAvailable": !deprecated,
                   "requiresPaidPlan": paid, "deprecated": deprecated})
        })
        .collect()
}

/// Price per second of a preset: shared CPUs $0.0000008/s per 256 MB step-ish;
/// performance CPUs $0.0000124/s per CPU. Month = 30 days.
fn vm(name: &str, kind: &str, cpus: u32, mem_mb: u32, price_second: f64) -> Value {
    let (per_cpu_min, per_cpu_max) = if kind == "shared" {
        (256, 2048)
    } else {
        (2048, 8192)
    };
    json!({"__typename": "VMSize", "name": name, "cpuCores": f64::from(cpus),
           "memoryMb": mem_mb, "memoryGb": f64::from(mem_mb) / 1024.0,
           "maxMemoryMb": per_cpu_max * cpus,
           "memoryIncrementsMb": [per_cpu_min, 256],
           "priceSecond": price_second,
           "priceMonth": (price_second * 2_592_000.0 * 100.0).round() / 100.0})
}

/// GraphQL `platform.vmSizes`: fly-go's presets with prices.
pub(crate) fn vm_sizes() -> Vec<Value> {
    let mut out = Vec::new();
    for n in [1u32, 2, 4, 6, 8] {
        out.push(vm(
            &format!("shared-cpu-{n}x"),
            "shared",
            n,
            256 * n,
            0.000_000_75 * f64::from(n),
        ));
    }
    for n in [1u32, 2, 4, 6, 8, 10, 12, 14, 16] {
        out.push(vm(
            &format!("performance-{n}x"),
            "performance",
            n,
            2048 * n,
            0.000_012_4 * f64::from(n),
        ));
    }
    out
}

/// Checks `config.guest` against Fly's limits and fills in defaults
/// (shared, 1 CPU, 256 MB). 422 with a message naming the limit.
pub(crate) fn validate_guest(guest: Option<&Value>) -> Result<Value, ApiError> {
    let g = guest.cloned().unwrap_or_else(|| json!({}));
    // GPU Machines are no longer offered and the API rejects a GPU guest with a 400
    // (flyctl `internal/flag/machines.go`: "GPU machines are no longer supported";
    // `internal/command/platform/vmsizes.go` filters fly-go's GPU presets out).
    let gpu_kind = g.get("gpu_kind").and_then(Value::as_str).unwrap_or("");
    let gpus = g.get("gpus").and_then(Value::as_u64).unwrap_or(0);
    if !gpu_kind.is_empty() || gpus > 0 {
        return Err(ApiError::new(
            400,
            "invalid guest: GPU machines are no longer supported (gpu_kind, gpus)",
        ));
    }
    let kind = g
        .get("cpu_kind")
        .and_then(Value::as_str)
        .unwrap_or("shared")
        .to_owned();
    let cpus = g.get("cpus").and_then(Value::as_u64).unwrap_or(1);
    let (allowed, min_per, max_per): (&[u64], u64, u64) = match kind.as_str() {
        "shared" => (&[1, 2, 4, 6, 8], 256, 2048),
        "performance" => (&[1, 2, 4, 6, 8, 10, 12, 14, 16], 2048, 8192),
        other => {
            return Err(ApiError::new(
                422,
                format!("invalid guest: cpu_kind {other:?} is not one of shared, performance"),
            ));
        }
    };
    if !allowed.contains(&cpus) {
        return Err(ApiError::new(
            422,
            format!(
                "invalid guest: {cpus} {kind} CPUs is not a valid count (allowed: {allowed:?})"
            ),
        ));
    }
    let memory = g
        .get("memory_mb")
        .and_then(Value::as_u64)
        .unwrap_or(min_per * cpus);
    let (min, max) = (min_per * cpus, max_per * cpus);
    if memory < min || memory > max {
        return Err(ApiError::new(
            422,
            format!(
                "invalid guest: memory_mb {memory} is outside the range {min}..={max} MB for {cpus} {kind} CPU(s)"
            ),
        ));
    }
    if memory % 256 != 0 {
        return Err(ApiError::new(
            422,
            format!("invalid guest: memory_mb {memory} must be a multiple of 256"),
        ));
    }
    let mut out = g.as_object().cloned().unwrap_or_default();
    out.insert("cpu_kind".into(), json!(kind));
    out.insert("cpus".into(), json!(cpus));
    out.insert("memory_mb".into(), json!(memory));
    Ok(Value::Object(out))
}

const SIGNALS: &[(&str, i64)] = &[
    ("SIGABRT", 6),
    ("SIGALRM", 14),
    ("SIGFPE", 8),
    ("SIGHUP", 1),
    ("SIGILL", 4),
    ("SIGINT", 2),
    ("SIGKILL", 9),
    ("SIGPIPE", 13),
    ("SIGQUIT", 3),
    ("SIGSEGV", 11),
    ("SIGTERM", 15),
    ("SIGTRAP", 5),
    ("SIGUSR1", 10),
    ("SIGUSR2", 12),
];

pub(crate) fn signal_number(name: &str) -> Option<i64> {
    SIGNALS.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// The signals stop and restart take: the spec's `StopRequest.signal`, restart
/// `signal` query and `fly.StopConfig.signal` enums list only these seven (the
/// signal endpoint's `SignalRequest` takes all fourteen of [`SIGNALS`]).
const STOP_SIGNALS: &[&str] = &[
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM",
];

/// The number of a signal stop or restart accepts; `None` for any other name.
pub(crate) fn stop_signal_number(name: &str) -> Option<i64> {
    STOP_SIGNALS
        .contains(&name)
        .then(|| signal_number(name))
        .flatten()
}

/// The `signal` of a `POST …/signal` body: one of the spec's fourteen names, or the
/// number of one of them — fly-go's `Kill` (`flaps/flaps_machines.go`) sends
/// `{"signal": 9}`, an integer, so real Fly takes both.
pub(crate) fn signal_from_json(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(name) => signal_number(name),
        serde_json::Value::Number(n) => n.as_i64().filter(|n| SIGNALS.iter().any(|s| s.1 == *n)),
        _ => None,
    }
}

pub(crate) fn signal_name(n: i64) -> &'static str {
    SIGNALS.iter().find(|s| s.1 == n).map_or("UNKNOWN", |s| s.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_limits() {
        assert!(validate_guest(None).is_ok());
        assert!(
            validate_guest(Some(
                &json!({"cpu_kind":"shared","cpus":1,"memory_mb":4096})
            ))
            .is_err()
        );
        assert!(
            validate_guest(Some(
                &json!({"cpu_kind":"shared","cpus":2,"memory_mb":4096})
            ))
            .is_ok()
        );
        assert!(
            validate_guest(Some(
                &json!({"cpu_kind":"performance","cpus":1,"memory_mb":1024})
            ))
            .is_err()
        );
        assert!(validate_guest(Some(&json!({"cpu_kind":"gpu"}))).is_err());
        let gpu = validate_guest(Some(
            &json!({"cpu_kind":"performance","cpus":8,"memory_mb":32768,"gpu_kind":"a100-pcie-40gb","gpus":1}),
        ))
        .unwrap_err();
        assert_eq!(gpu.status, 400);
        assert!(REGIONS.len() >= 35);
        assert_eq!(signal_number("SIGKILL"), Some(9));
    }
}
