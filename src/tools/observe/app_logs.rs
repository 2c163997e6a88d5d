//! `app_logs`: recent log lines of an app, paged and filtered.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ROW_BUDGET;
use crate::tools::args::{AppName, Region};
use crate::tools::untrusted;
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{logs, observe as wf};

pub(super) const APP_LOGS: ToolInfo = ToolInfo {
    name: "app_logs",
    title: "App logs, filtered and paged",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "An app's log lines, newest last, secrets redacted, capped. Without `since` only the latest \
lines are searched; with it, lines run oldest first from then: pass `next` back to continue.",
    narrow_hint: "add `grep`, `machine` or a later `since`, or lower `tail`",
};

/// Arguments of `app_logs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppLogsArgs {
    /// App name.
    pub app: AppName,
    /// Only this machine (id or name).
    #[schemars(length(min = 1, max = 63))]
    pub machine: Option<String>,
    /// Only this region (e.g. `ewr`).
    pub region: Option<Region>,
    /// From this time on: a duration back from now (`15m`, `2h`, `1d`) or an RFC 3339 time.
    #[schemars(length(min = 2, max = 40))]
    pub since: Option<String>,
    /// Only lines containing this text (any case), or matching `/regex/` (`/regex/i`: any
    /// case).
    #[schemars(length(min = 1, max = 200))]
    pub grep: Option<String>,
    /// Most lines to return (default 100).
    #[schemars(range(min = 1, max = 500))]
    pub tail: Option<u32>,
    /// An earlier answer's `next`: continue after it.
    #[schemars(length(min = 1, max = 40))]
    pub next: Option<String>,
}

// A log line.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogLineOut {
    // RFC 3339 with milliseconds.
    pub time: String,
    pub machine: String,
    pub region: String,
    pub level: String,
    pub message: String,
}

// Result of `app_logs`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppLogsOut {
    // Oldest first, newest last.
    pub lines: Vec<LogLineOut>,
    // Pass as `next` to continue after the last line (or, when `complete`, to see newer lines later).
    pub next: Option<String>,
    // Everything up to now was read.
    pub complete: bool,
    // Matching lines not returned (tail or output cap).
    pub left_out: usize,
    // Lines read before `grep`.
    pub scanned: usize,
    // How to read more, when there is more.
    pub note: Option<String>,
}

impl ToolOutput for AppLogsOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "{} lines (read {}){}\n",
            self.lines.len(),
            self.scanned,
            self.next
                .as_deref()
                .map(|n| format!(" · next: {n}"))
                .unwrap_or_default()
        );
        let mut date = "";
        let mut lines = String::new();
        for l in &self.lines {
            let (d, t) = l.time.split_once('T').unwrap_or(("", l.time.as_str()));
            if d != date {
                lines.push_str(&format!("-- {d} --\n"));
                date = d;
            }
            let t = t.trim_end_matches('Z');
            lines.push_str(&format!(
                "{t} {} {} {} {}\n",
                l.machine, l.region, l.level, l.message
            ));
        }
        if !lines.is_empty() {
            out.push_str(&untrusted::block(&lines));
        }
        if let Some(n) = &self.note {
            out.push_str(n);
            out.push('\n');
        }
        out
    }
}

pub(super) async fn app_logs(ctx: ToolContext, args: AppLogsArgs) -> Result<AppLogsOut, ToolError> {
    let now = wf::now_ms();
    let since_ms = args
        .since
        .as_deref()
        .map(|s| logs::parse_since(s, now))
        .transpose()?;
    let grep = args.grep.as_deref().map(logs::Grep::parse).transpose()?;
    let q = logs::LogsQuery {
        machine: args.machine.clone(),
        region: args.region.clone().map(String::from),
        since_ms,
        cursor: args.next.clone(),
        grep,
        tail: args.tail.map_or(logs::DEFAULT_TAIL, |t| t as usize),
        max_bytes: ROW_BUDGET,
    };
    let r = logs::read_logs(ctx.client(), &args.app, &q).await?;
    let note = if r.latest_only && r.left_out > 0 {
        Some(format!(
            "left out {} older matching lines; pass `since` to page through them",
            r.left_out
        ))
    } else if r.latest_only {
        Some(
            "searched only the latest lines; pass `since` (e.g. `1h`) to search further back"
                .to_owned(),
        )
    } else if !r.complete {
        Some(format!(
            "more lines follow{}: call again with next={}",
            if r.left_out > 0 {
                format!(
                    " ({} matching lines already seen on the last page)",
                    r.left_out
                )
            } else {
                String::new()
            },
            r.next.as_deref().unwrap_or_default()
        ))
    } else {
        None
    };
    Ok(AppLogsOut {
        lines: r
            .lines
            .into_iter()
            .map(|l| LogLineOut {
                time: format_millis(l.ts_ms()),
                machine: l.instance,
                region: l.region,
                level: l.level,
                message: untrusted::line(&l.message),
            })
            .collect(),
        next: r.next,
        complete: r.complete,
        left_out: r.left_out,
        scanned: r.scanned,
        note,
    })
}

/// RFC 3339 with milliseconds.
fn format_millis(ms: i64) -> String {
    let secs = wf::format_rfc3339(ms);
    let frac = ms.rem_euclid(1000);
    match secs.strip_suffix('Z') {
        Some(base) => format!("{base}.{frac:03}Z"),
        None => secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let line = |time: &str, level: &str, message: &str| LogLineOut {
            time: time.into(),
            machine: "148e1d4ae77d89".into(),
            region: "iad".into(),
            level: level.into(),
            message: message.into(),
        };
        let page = AppLogsOut {
            lines: vec![
                line(
                    "2026-11-21T14:59:58.120Z",
                    "info",
                    "listening on 0.0.0.0:8080",
                ),
                line(
                    "2026-11-21T15:00:01.004Z",
                    "error",
                    "connection refused: db:5432",
                ),
            ],
            next: Some("1763737201004000000".into()),
            complete: false,
            left_out: 3,
            scanned: 40,
            note: Some("3 older lines left out; pass next to read on".into()),
        };
        let empty = AppLogsOut {
            lines: Vec::new(),
            next: None,
            complete: true,
            left_out: 0,
            scanned: 0,
            note: None,
        };
        insta::assert_snapshot!([page.render_text(), empty.render_text()].join("\n---\n"));
    }
}
