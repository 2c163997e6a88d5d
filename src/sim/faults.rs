//! Injected faults: server errors, dropped connections and added latency, drawn from
//! the simulator's seeded generator. Parsed from
//! `5xx=0.05,reset=0.02,applied=0.02,applied_reset=0.01,latency=200ms@0.5`, optionally narrowed to some
//! requests (`on=POST /v1/apps/a/machines`) and a number of faults (`times=1`), so a
//! test can aim one fault at one call. Faults never apply to the control API.
//!
//! `5xx` and `reset` fire before the handler: the request had no effect. `applied`
//! and `applied_reset` fire after it: the handler ran (the machine was updated, the
//! app created) and then the answer is lost — a 5xx, or a dropped connection.
//! That is the ambiguity a production client has to live with: fly-go
//! `flaps/flaps.go` (`do`) and flyctl treat a 5xx or a reset as "may have happened",
//! which is why creates carry idempotency keys and updates a `current_version`.

use std::time::Duration;

use super::SimError;

/// Probabilities are in `[0, 1]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability of a 5xx answer.
    pub server_error: f64,
    /// Probability of closing the connection without an answer.
    pub reset: f64,
    /// Probability of applying the request and then answering a 5xx: the effect
    /// happened, the client cannot tell.
    pub applied: f64,
    /// Probability of applying the request and then closing the connection without
    /// an answer.
    pub applied_reset: f64,
    /// Added delay and the probability of adding it.
    pub latency: Option<(Duration, f64)>,
    /// Only requests whose `METHOD /path` (query left out) is this are faulted
    /// (`on=POST /v1/apps/a/machines`; a trailing `*` matches a prefix); every request
    /// when `None`.
    pub on: Option<String>,
    /// How many more faults (5xx, reset, applied) may fire; unlimited when `None`.
    /// Latency is not counted.
    pub times: Option<u64>,
}

impl FaultConfig {
    pub fn is_off(&self) -> bool {
        self.server_error <= 0.0
            && self.reset <= 0.0
            && self.applied <= 0.0
            && self.applied_reset <= 0.0
            && self.latency.is_none()
    }

    /// Whether the request `method path` is one the faults apply to.
    pub(crate) fn targets(&self, method: &str, path: &str) -> bool {
        let Some(on) = self.on.as_deref() else {
            return true;
        };
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let request = format!("{method} {path}");
        match on.strip_suffix('*') {
            Some(prefix) => request.starts_with(prefix),
            None => request == on,
        }
    }

    /// Whether another fault may fire; counts it when so.
    pub(crate) fn take_one(&mut self) -> bool {
        match &mut self.times {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
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
                "applied" => out.applied = prob("applied", value)?,
                "applied_reset" => out.applied_reset = prob("applied_reset", value)?,
                "on" => out.on = Some(value.trim().to_owned()),
                "times" => {
                    let n = value.trim().parse::<u64>().map_err(|_| {
                        SimError::Config(format!("fault times: {value:?} is not a count"))
                    })?;
                    out.times = Some(n);
                }
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
                        "unknown fault {other:?} (known: 5xx, reset, applied, applied_reset, latency, on, times)"
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
        let f: FaultConfig =
            "5xx=0.05,reset=0.02,applied=0.03,applied_reset=0.01,latency=200ms@0.5"
                .parse()
                .unwrap();
        assert_eq!(f.server_error, 0.05);
        assert_eq!(f.reset, 0.02);
        assert_eq!(f.applied, 0.03);
        assert_eq!(f.applied_reset, 0.01);
        assert!(!"applied=0.1".parse::<FaultConfig>().unwrap().is_off());
        let mut once: FaultConfig = "applied=1,on=POST /v1/apps/a/machines/m,times=1"
            .parse()
            .unwrap();
        assert!(once.targets("POST", "/v1/apps/a/machines/m?x=1"));
        assert!(!once.targets("GET", "/v1/apps/a/machines/m"));
        assert!(!once.targets("POST", "/v1/apps/a/machines/m/lease"));
        let prefix: FaultConfig = "5xx=1,on=POST /v1/apps/a/*".parse().unwrap();
        assert!(prefix.targets("POST", "/v1/apps/a/machines/m/lease"));
        assert!(once.take_one() && !once.take_one());
        assert_eq!(f.latency, Some((Duration::from_millis(200), 0.5)));
        assert!("".parse::<FaultConfig>().unwrap().is_off());
        assert!("5xx=2".parse::<FaultConfig>().is_err());
        assert!("boom=1".parse::<FaultConfig>().is_err());
    }
}
