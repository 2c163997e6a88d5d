//! `machine_info`: one machine whole — config, checks, events, processes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::listed;
use crate::tools::args::AppName;
use crate::tools::render::{rows, table_row};
use crate::tools::untrusted;
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{observe as wf, status};

pub(super) const MACHINE_INFO: ToolInfo = ToolInfo {
    name: "machine_info",
    title: "One machine in detail",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "One machine in detail: config (image, guest, cmd, services, mounts, restart policy, env \
names), event timeline (exit codes, signals, OOM kills), checks with output, lease holder, \
metadata, versions; processes when `processes` is true.",
    narrow_hint: "lower `events`",
};

/// Arguments of `machine_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineInfoArgs {
    /// App name.
    pub app: AppName,
    /// Machine id or name.
    #[schemars(length(min = 1, max = 63))]
    pub machine: String,
    /// Also list its running processes.
    #[serde(default)]
    pub processes: bool,
    /// Latest events to show (default 20).
    #[schemars(range(min = 1, max = 100))]
    pub events: Option<u32>,
}

// A health check.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckOut {
    pub name: String,
    pub status: String,
    pub output: String,
    pub updated_at: Option<String>,
}

// An event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EventOut {
    // RFC 3339.
    pub at: String,
    // `user` or `flyd`.
    pub source: String,
    // e.g. `exit → stopped: OOM-killed, exit code 137, signal 9 (SIGKILL), restarting`.
    pub text: String,
}

// A process.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProcessOut {
    pub pid: i64,
    pub command: String,
    pub cpu: f64,
    pub rss_mb: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listening: Vec<String>,
}

// Result of `machine_info`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MachineInfoOut {
    pub id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    pub host_status: Option<String>,
    pub version: String,
    pub private_ip: String,
    pub created_at: String,
    pub image: String,
    pub image_digest: Option<String>,
    pub guest: Option<String>,
    pub cmd: Option<String>,
    pub restart: Option<String>,
    pub services: Vec<String>,
    pub mounts: Vec<String>,
    // Environment variable names (values are not shown).
    pub env: Vec<String>,
    pub checks: Vec<CheckOut>,
    // Oldest first.
    pub events: Vec<EventOut>,
    // Unplanned exits and OOM kills among the events.
    pub restarts: u64,
    pub oom_kills: u64,
    pub lease: Option<String>,
    pub metadata: BTreeMap<String, String>,
    // Newest first.
    pub versions: Vec<String>,
    pub processes: Option<Vec<ProcessOut>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

table_row!(CheckOut, |c| {
    "NAME": c.name.clone(),
    "STATUS": c.status.clone(),
    "OUTPUT": wf::clip(&c.output, 200),
    "UPDATED": c.updated_at.clone().unwrap_or_default(),
});

table_row!(EventOut, |e| {
    "AT": e.at.clone(),
    "SOURCE": e.source.clone(),
    "EVENT": e.text.clone(),
});

table_row!(ProcessOut, |p| {
    "PID": p.pid.to_string(),
    "COMMAND": wf::clip(&p.command, 80),
    "CPU": format!("{:.1}", p.cpu),
    "RSS_MB": format!("{:.0}", p.rss_mb),
    "LISTEN": p.listening.join(", "),
});

impl ToolOutput for MachineInfoOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "machine {} {} ({}) {}",
            self.id, self.name, self.region, self.state
        );
        if let Some(h) = &self.host_status {
            out.push_str(&format!(" · host {h}"));
        }
        out.push_str(&format!(
            " · version {} · private IP {} · created {}\n",
            self.version, self.private_ip, self.created_at
        ));
        out.push_str(&format!("image {}", self.image));
        if let Some(d) = &self.image_digest {
            out.push_str(&format!(" ({d})"));
        }
        out.push('\n');
        let mut line = Vec::new();
        if let Some(g) = &self.guest {
            line.push(format!("guest {g}"));
        }
        if let Some(r) = &self.restart {
            line.push(format!("restart {r}"));
        }
        if let Some(c) = &self.cmd {
            line.push(format!("cmd {c}"));
        }
        if !line.is_empty() {
            out.push_str(&line.join(" · "));
            out.push('\n');
        }
        let list = |v: &[String]| listed(v, "; ");
        out.push_str(&format!("services: {}\n", list(&self.services)));
        out.push_str(&format!("mounts: {}\n", list(&self.mounts)));
        out.push_str(&format!("env: {}\n", untrusted::block(&list(&self.env))));
        if self.checks.is_empty() {
            out.push_str("checks: none\n");
        } else {
            out.push_str("checks:\n");
            out.push_str(&untrusted::block(&rows(&self.checks)));
        }
        out.push_str(&format!(
            "events (oldest first; {} restarts, {} OOM kills):\n",
            self.restarts, self.oom_kills
        ));
        out.push_str(&untrusted::block(&rows(&self.events)));
        out.push_str(&format!(
            "lease: {}\n",
            self.lease.as_deref().unwrap_or("none")
        ));
        let meta: Vec<String> = self
            .metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("metadata: {}\n", untrusted::block(&list(&meta))));
        out.push_str(&format!("versions: {}\n", list(&self.versions)));
        if let Some(ps) = &self.processes {
            out.push_str("processes:\n");
            out.push_str(&untrusted::block(&rows(ps)));
        }
        for u in &self.unavailable {
            out.push_str(&format!("not read: {u}\n"));
        }
        out
    }
}

pub(super) async fn machine_info(
    ctx: ToolContext,
    args: MachineInfoArgs,
) -> Result<MachineInfoOut, ToolError> {
    let events = args.events.unwrap_or(20) as usize;
    let d = status::machine_detail(
        ctx.client(),
        &args.app,
        &args.machine,
        args.processes,
        events,
    )
    .await?;
    Ok(MachineInfoOut {
        id: d.row.id.clone(),
        name: d.row.name.clone(),
        region: d.row.region.clone(),
        state: d.row.state.clone(),
        host_status: d.row.host_status.clone().filter(|h| h != "ok"),
        version: d.version,
        private_ip: d.private_ip,
        created_at: d.created_at,
        image: d.row.image.clone(),
        image_digest: d.image_digest,
        guest: d.row.guest.clone(),
        cmd: d.cmd,
        restart: d.restart,
        services: d.services,
        mounts: d.mounts,
        env: d.env_names.iter().map(|n| untrusted::line(n)).collect(),
        checks: d
            .checks
            .into_iter()
            .map(|c| CheckOut {
                name: c.name,
                status: c.status,
                output: untrusted::line(&wf::clip(&c.output, 1000)),
                updated_at: c.updated_at,
            })
            .collect(),
        events: d
            .events
            .into_iter()
            .map(|e| EventOut {
                at: wf::format_rfc3339(e.at_ms),
                source: e.source,
                text: untrusted::line(&e.text),
            })
            .collect(),
        restarts: d.row.restarts,
        oom_kills: d.row.oom_kills,
        lease: d.lease,
        metadata: d
            .metadata
            .into_iter()
            .map(|(k, v)| (untrusted::line(&k), untrusted::line(&v)))
            .collect(),
        versions: d.versions,
        processes: d.processes.map(|ps| {
            ps.into_iter()
                .take(50)
                .map(|p| ProcessOut {
                    pid: p.pid,
                    command: untrusted::line(&p.command),
                    cpu: p.cpu,
                    rss_mb: p.rss_bytes as f64 / 1024.0 / 1024.0,
                    listening: p.listening,
                })
                .collect()
        }),
        unavailable: super::unavailable(d.gaps),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let info = MachineInfoOut {
            id: "148e1d4ae77d89".into(),
            name: "web-1".into(),
            region: "iad".into(),
            state: "started".into(),
            host_status: Some("ok".into()),
            version: "01JB3V9S1QK0V7J8ZP3T6W2M4N".into(),
            private_ip: "fdaa:0:3ec2:a7b:1::2".into(),
            created_at: "2026-11-20T09:00:00Z".into(),
            image: "nginx:1.27".into(),
            image_digest: Some("sha256:4f1a".into()),
            guest: Some("shared-cpu-1x, 256 MB".into()),
            cmd: Some("nginx -g 'daemon off;'".into()),
            restart: Some("on-failure (max 10)".into()),
            services: vec!["tcp 8080 ← 80 (http), 443 (tls, http)".into()],
            mounts: vec!["vol_4o2ejqnyx7y8gkpv at /data".into()],
            env: vec!["LOG_LEVEL".into()],
            checks: vec![CheckOut {
                name: "http".into(),
                status: "passing".into(),
                output: "200 OK".into(),
                updated_at: Some("2026-11-21T15:00:00Z".into()),
            }],
            events: vec![EventOut {
                at: "2026-11-21T14:59:50Z".into(),
                source: "user".into(),
                text: "start".into(),
            }],
            restarts: 0,
            oom_kills: 0,
            lease: None,
            metadata: BTreeMap::from([("fly_mcp_owner".to_owned(), "fly-machines-mcp".to_owned())]),
            versions: vec!["01JB3V9S1QK0V7J8ZP3T6W2M4N".into()],
            processes: Some(vec![ProcessOut {
                pid: 42,
                command: "nginx: master process".into(),
                cpu: 0.3,
                rss_mb: 12.5,
                listening: vec!["0.0.0.0:8080".into()],
            }]),
            unavailable: Vec::new(),
        };
        insta::assert_snapshot!(info.render_text());
    }
}
