//! Running one non-interactive command in a machine (`/exec`): the plan (the machine
//! exists and is running, with `--owned-only` honoured) and the run, bounded in time
//! (Fly's own timeout plus the client's) and in output (each stream is cut to a byte
//! budget, keeping its head and its tail, with the full size reported).
//!
//! Knows `crate::fly` only.

use std::time::{Duration, Instant};

use crate::fly;

use super::{
    Error,
    observe::{MachineSummary, machine_not_found, machines_by_id},
};

/// Longest run Fly's exec endpoint is asked for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecSpec {
    pub app: String,
    pub machine_id: String,
    /// Argv (no shell unless the command names one).
    pub command: Vec<String>,
    pub timeout: Duration,
    pub stdin: Option<String>,
    /// Byte budget per stream (stdout and stderr each).
    pub max_output_bytes: usize,
}

/// The machine the command will run on.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecPlan {
    pub machine: MachineSummary,
}

/// One output stream, possibly cut.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutput {
    pub text: String,
    /// Size of the whole stream before cutting.
    pub total_bytes: usize,
    pub truncated: bool,
}

/// What the command did.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecOutcome {
    pub exit_code: i64,
    /// Signal that ended the command (0 for none).
    pub exit_signal: i64,
    pub stdout: StreamOutput,
    pub stderr: StreamOutput,
    pub elapsed: Duration,
}

/// Checks the machine exists (and is ours under `owned_only`) and is running.
pub async fn plan_exec(
    client: &fly::Client,
    app: &str,
    machine_id: &str,
    owned_only: bool,
) -> Result<ExecPlan, Error> {
    let machines = machines_by_id(client, app, &[machine_id.to_owned()]).await?;
    let machine = machines
        .into_iter()
        .next()
        .ok_or_else(|| machine_not_found(app, machine_id))?;
    if owned_only && !machine.owned {
        return Err(Error::Refused {
            rule: "--owned-only".to_owned(),
            message: format!(
                "machine {machine_id} was not created by this server (no {} metadata)",
                super::OWNER_METADATA_KEY
            ),
        });
    }
    if machine.state != "started" {
        return Err(Error::Invalid {
            field: "machine_id".to_owned(),
            rule: format!(
                "machine {machine_id} is {}; commands run only in a started machine (start it with machine_action)",
                machine.state
            ),
        });
    }
    Ok(ExecPlan { machine })
}

/// Runs the command and cuts each stream to the budget.
pub async fn run_exec(client: &fly::Client, spec: &ExecSpec) -> Result<ExecOutcome, Error> {
    if spec.command.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(Error::Invalid {
            field: "command".to_owned(),
            rule: "the first element must name a program".to_owned(),
        });
    }
    let timeout = spec.timeout.clamp(Duration::from_secs(1), MAX_TIMEOUT);
    let req = fly::ExecRequest {
        command: spec.command.clone(),
        timeout,
        stdin: spec.stdin.clone(),
        container: None,
    };
    let started = Instant::now();
    let result = client
        .exec(&spec.app, &spec.machine_id, &req)
        .await
        .map_err(|e| {
            if e.status() == Some(412) {
                Error::Invalid {
                    field: "machine_id".to_owned(),
                    rule: format!(
                        "machine {} is not running: start it with machine_action, then retry",
                        spec.machine_id
                    ),
                }
            } else {
                Error::fly(format!(
                    "running `{}` on machine {} (app {})",
                    spec.command.first().map(String::as_str).unwrap_or_default(),
                    spec.machine_id,
                    spec.app
                ))(e)
            }
        })?;
    Ok(ExecOutcome {
        exit_code: result.exit_code,
        exit_signal: result.exit_signal,
        stdout: cut(result.stdout, spec.max_output_bytes),
        stderr: cut(result.stderr, spec.max_output_bytes),
        elapsed: started.elapsed(),
    })
}

/// Keeps the first and last halves of `budget` bytes (on character boundaries) with
/// a marker naming how much was left out.
pub fn cut(text: String, budget: usize) -> StreamOutput {
    let total_bytes = text.len();
    if total_bytes <= budget {
        return StreamOutput {
            text,
            total_bytes,
            truncated: false,
        };
    }
    let half = budget / 2;
    let mut head_end = half;
    while head_end > 0 && !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = total_bytes.saturating_sub(half);
    while tail_start < total_bytes && !text.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let head = text.get(..head_end).unwrap_or_default();
    let tail = text.get(tail_start..).unwrap_or_default();
    let left_out = tail_start.saturating_sub(head_end);
    StreamOutput {
        text: format!("{head}\n… [{left_out} bytes left out] …\n{tail}"),
        total_bytes,
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let s = cut("hello\n".into(), 100);
        assert_eq!(s.text, "hello\n");
        assert!(!s.truncated);
        assert_eq!(s.total_bytes, 6);
    }

    #[test]
    fn long_output_keeps_head_and_tail_within_budget() {
        let text = format!("START{}END", "é".repeat(5000));
        let s = cut(text.clone(), 1000);
        assert!(s.truncated);
        assert_eq!(s.total_bytes, text.len());
        assert!(s.text.starts_with("START"));
        assert!(s.text.ends_with("END"));
        assert!(s.text.len() <= 1000 + 40, "{}", s.text.len());
        assert!(s.text.contains("bytes left out"));
    }
}
