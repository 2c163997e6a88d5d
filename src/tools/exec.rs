//! The `exec` toolset (opt-in): `exec_command` runs one non-interactive command in a
//! running machine and returns its exit code, stdout and stderr. Declared destructive
//! (a command can change or delete anything in the machine), so it is confirmed, kept
//! out by `--read-only` / `--no-destroy`, and every call lands in the audit log with
//! its argv.
//!
//! Time and output bounds live in [`crate::workflows::exec`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::args::{AppName, MachineId};
use crate::tools::catalog::DeclarationError;
use crate::tools::render::millis;
use crate::tools::{DestroyPlan, ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::exec as wf;

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![ToolDef::destructive(
        EXEC_COMMAND,
        plan_exec_command,
        exec_command,
    )?])
}

const EXEC_COMMAND: ToolInfo = ToolInfo {
    name: "exec_command",
    title: "Run a command in a machine",
    toolset: Toolset::Exec,
    idempotent: false,
    description: "Run one non-interactive command (argv, no shell unless you name one, e.g. \
[\"sh\",\"-c\",\"ls /data | head\"]) in a started machine and get its exit code, stdout and \
stderr. Bounded: timeout_secs (default 30, at most 300) and max_output_bytes per stream (default \
4096; longer output keeps its head and tail and says how much was left out). Confirmed before it \
runs, because a command can change or delete anything in the machine; recorded in the audit log. \
Not for long-running processes or interactive shells; machine ids come from app_status.",
    narrow_hint: "pass a smaller max_output_bytes, or filter in the command (e.g. `| tail -n 50`)",
};

fn default_timeout() -> u64 {
    30
}

fn default_max_output() -> usize {
    4096
}

/// Arguments of `exec_command`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecCommandArgs {
    /// App name.
    pub app: AppName,
    /// Machine id (14 hex characters, as shown by app_status).
    pub machine_id: MachineId,
    /// The argv to run; the first element is the program.
    #[schemars(length(min = 1, max = 64), inner(length(max = 4096)))]
    pub command: Vec<String>,
    /// Seconds the command may run (default 30).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_secs: u64,
    /// Text written to the command's stdin.
    #[schemars(length(max = 65536))]
    pub stdin: Option<String>,
    /// Byte budget for stdout and for stderr each (default 4096).
    #[serde(default = "default_max_output")]
    #[schemars(range(min = 256, max = 65536))]
    pub max_output_bytes: usize,
}

/// What `exec_command` will run, shown before it runs.
#[derive(Debug, Clone, Serialize)]
pub struct ExecCommandPlan {
    pub app: String,
    pub machine_id: String,
    pub machine_name: String,
    pub region: String,
    pub command: Vec<String>,
    pub timeout_secs: u64,
}

impl DestroyPlan for ExecCommandPlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        format!(
            "run `{}` on machine {} ({}, {}) of app {} for at most {} s; the command can change or delete anything in the machine",
            command_line(&self.command),
            self.machine_id,
            self.machine_name,
            self.region,
            self.app,
            self.timeout_secs
        )
    }
}

/// Longest command line shown in plans and results (the full argv is in the
/// structured result and the audit log).
const SHOWN_COMMAND_BYTES: usize = 200;

/// The argv as one line, quoting elements that need it, cut to
/// [`SHOWN_COMMAND_BYTES`].
fn command_line(argv: &[String]) -> String {
    let mut line = shell_words(argv);
    if line.len() > SHOWN_COMMAND_BYTES {
        let mut cut = SHOWN_COMMAND_BYTES;
        while cut > 0 && !line.is_char_boundary(cut) {
            cut -= 1;
        }
        let total = line.len();
        line.truncate(cut);
        line.push_str(&format!("… ({total} bytes)"));
    }
    line
}

/// The argv as one line, quoting elements that need it.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One output stream of the command.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StreamOut {
    /// The text (head and tail kept when cut).
    pub text: String,
    /// Size of the whole stream.
    pub total_bytes: usize,
    /// Part of the stream was left out.
    pub truncated: bool,
}

impl From<wf::StreamOutput> for StreamOut {
    fn from(s: wf::StreamOutput) -> Self {
        StreamOut {
            // The exec budget already bounds the whole stream (head and tail kept).
            text: super::untrusted::lines(&s.text, usize::MAX),
            total_bytes: s.total_bytes,
            truncated: s.truncated,
        }
    }
}

/// Result of `exec_command`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecCommandOut {
    pub app: String,
    pub machine_id: String,
    pub command: Vec<String>,
    pub exit_code: i64,
    /// Signal that ended the command (0 for none).
    pub exit_signal: i64,
    pub stdout: StreamOut,
    pub stderr: StreamOut,
    pub elapsed_ms: u64,
}

impl ToolOutput for ExecCommandOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "`{}` on machine {} (app {}): exit {}{} in {} ms\n",
            command_line(&self.command),
            self.machine_id,
            self.app,
            self.exit_code,
            if self.exit_signal != 0 {
                format!(" (signal {})", self.exit_signal)
            } else {
                String::new()
            },
            self.elapsed_ms
        );
        for (name, s) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if s.total_bytes == 0 {
                out.push_str(&format!("{name}: (empty)\n"));
                continue;
            }
            out.push_str(&format!(
                "--- {name} ({} bytes{}) ---\n{}",
                s.total_bytes,
                if s.truncated { ", cut" } else { "" },
                s.text
            ));
            if !s.text.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }
}

async fn plan_exec_command(
    ctx: ToolContext,
    args: ExecCommandArgs,
) -> Result<ExecCommandPlan, ToolError> {
    let plan = wf::plan_exec(ctx.client(), &args.app, &args.machine_id, ctx.owned_only()).await?;
    Ok(ExecCommandPlan {
        app: args.app.into(),
        machine_id: plan.machine.id,
        machine_name: plan.machine.name,
        region: plan.machine.region,
        command: args.command,
        timeout_secs: args.timeout_secs,
    })
}

async fn exec_command(
    ctx: ToolContext,
    args: ExecCommandArgs,
    plan: ExecCommandPlan,
) -> Result<ExecCommandOut, ToolError> {
    let spec = wf::ExecSpec {
        app: plan.app.clone(),
        machine_id: plan.machine_id.clone(),
        command: plan.command.clone(),
        timeout: Duration::from_secs(plan.timeout_secs),
        stdin: args.stdin,
        max_output_bytes: args.max_output_bytes,
    };
    let outcome = wf::run_exec(ctx.client(), &spec).await?;
    Ok(ExecCommandOut {
        app: plan.app,
        machine_id: plan.machine_id,
        command: plan.command,
        exit_code: outcome.exit_code,
        exit_signal: outcome.exit_signal,
        stdout: outcome.stdout.into(),
        stderr: outcome.stderr.into(),
        elapsed_ms: millis(outcome.elapsed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_quoted_only_where_needed() {
        let argv = vec!["sh".into(), "-c".into(), "ls /data | head".into()];
        assert_eq!(shell_words(&argv), "sh -c 'ls /data | head'");
        assert_eq!(shell_words(&["it's".into()]), r"'it'\''s'");
        let long = command_line(&["echo".into(), "x".repeat(5000)]);
        assert!(long.len() < SHOWN_COMMAND_BYTES + 30, "{long}");
        assert!(long.ends_with("(5005 bytes)"), "{long}");
    }

    #[test]
    fn texts_the_model_reads() {
        let plan = ExecCommandPlan {
            app: "web".into(),
            machine_id: "148e1d4ae77d89".into(),
            machine_name: "web-1".into(),
            region: "iad".into(),
            command: vec!["sh".into(), "-c".into(), "ls /data | head".into()],
            timeout_secs: 30,
        };
        let out = ExecCommandOut {
            app: "web".into(),
            machine_id: "148e1d4ae77d89".into(),
            command: plan.command.clone(),
            exit_code: 1,
            exit_signal: 0,
            stdout: StreamOut {
                text: "lost+found\n".into(),
                total_bytes: 11,
                truncated: false,
            },
            stderr: StreamOut {
                text: "head: write error\n".into(),
                total_bytes: 4096,
                truncated: true,
            },
            elapsed_ms: 240,
        };
        insta::assert_snapshot!([plan.describe(), out.render_text()].join("\n---\n"));
    }
}
