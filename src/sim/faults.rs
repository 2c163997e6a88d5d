//! Injected faults: server errors, dropped connections and added latency, drawn from
//! the simulator's seeded generator. Parsed from `5xx=0.05,reset=0.02,latency=200ms@0.5`.
//! Faults never apply to the control API.

use std::time::Duration;

use super::SimError;

/// Probabilities are in `[0, 1]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability of a 5xx answer.
    pub server_error: f64,
    /// Probability of closing the connection without an answer.
    pub reset: f64,
    /// Added delay and the probability of adding it.
    pub latency: Option<(Duration, f64)>,
}

impl FaultConfig {
    pub fn is_off(&self) -> bool {
        self.server_error <= 0.0 && self.reset <= 0.0 && self.latency.is_none()
    }
}

fn prob(key: &str, v: &str) -> Result<f64, SimError> {
    let p: f64 = v
        .trim()
        .parse()
        .map_err(|_| SimError::Config(format!("fault {key}: {v:?} is not a number")))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(SimError::Config(format!(
            "fault {key}: probability {p} is outside 0..1"
        )))
    }
}

impl std::str::FromStr for FaultConfig {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = FaultConfig::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| SimError::Config(format!("fault {part:?}: expected KEY=VALUE")))?;
            match key.trim() {
                "5xx" => out.server_error = prob("5xx", value)?,
                "reset" => out.reset = prob("reset", value)?,
                "latency" => {
                    let (dur, p) = match value.split_once('@') {
                        Some((d, p)) => (d, prob("latency", p)?),
                        None => (value, 1.0),
                    };
                    let d = humantime::parse_duration(dur.trim())
                        .map_err(|e| SimError::Config(format!("fault latency {dur:?}: {e}")))?;
                    out.latency = Some((d, p));
                }
                other => {
                    return Err(SimError::Config(format!(
                        "unknown fault {other:?} (known: 5xx, reset, latency)"
                    )));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_form() {
        let f: FaultConfig = "5xx=0.05,reset=0.02,latency=200ms@0.5".parse().unwrap();
        assert_eq!(f.server_error, 0.05);
        assert_eq!(f.reset, 0.02);
        assert_eq!(f.latency, Some((Duration::from_millis(200), 0.5)));
        assert!("".parse::<FaultConfig>().unwrap().is_off());
        assert!("5xx=2".parse::<FaultConfig>().is_err());
        assert!("boom=1".parse::<FaultConfig>().is_err());
    }
}
