//! `teardown_environment`: remove an app and everything in it, confirmed first.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::{ResourceOut, resource_out};
use crate::tools::args::AppName;
use crate::tools::render::table;
use crate::tools::{DestroyPlan, ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::teardown as down;

pub(super) const TEARDOWN_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "teardown_environment",
    title: "Tear down an environment",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "Remove an app and everything in it: machines, volumes (data lost), IPs, certificates, then \
the app. Confirmed first with the full list; retries until nothing is left.",
    narrow_hint: "the report lists every removed resource; nothing to narrow",
};

/// Arguments of `teardown_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeardownArgs {
    /// App name.
    pub app: AppName,
    /// Seconds per machine's destruction (default 120).
    #[schemars(range(min = 1, max = 900))]
    pub timeout_s: Option<u32>,
}

/// What `teardown_environment` would remove.
#[derive(Debug, Clone, Serialize)]
pub struct TeardownPlanOut {
    pub app: String,
    pub machines: Vec<String>,
    pub volumes: Vec<String>,
    pub ips: Vec<String>,
    pub certificates: Vec<String>,
}

impl DestroyPlan for TeardownPlanOut {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (kind, items) in [
            ("machine", &self.machines),
            ("volume", &self.volumes),
            ("ip", &self.ips),
            ("certificate", &self.certificates),
        ] {
            for item in items {
                lines.push(format!("{kind} {item}"));
            }
        }
        lines.push(format!("app {} (and anything left in it)", self.app));
        lines.join("\n")
    }
}

/// Result of `teardown_environment`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TeardownReportOut {
    pub app: String,
    pub app_deleted: bool,
    pub removed: Vec<ResourceOut>,
    pub certificates: Vec<String>,
    /// Errors met and retried past (empty on a clean run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retried_errors: Vec<String>,
}

impl ToolOutput for TeardownReportOut {
    fn render_text(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .removed
            .iter()
            .map(|r| vec![r.kind.clone(), r.id.clone(), r.detail.clone()])
            .chain(
                self.certificates
                    .iter()
                    .map(|c| vec!["certificate".to_owned(), c.clone(), String::new()]),
            )
            .collect();
        format!(
            "app {}: {} ({} resources removed)\n{}",
            self.app,
            if self.app_deleted {
                "torn down"
            } else {
                "NOT fully removed"
            },
            rows.len(),
            table(&["KIND", "ID", "DETAIL"], &rows)
        )
    }
}

pub(super) async fn plan_teardown_environment(
    ctx: ToolContext,
    args: TeardownArgs,
) -> Result<TeardownPlanOut, ToolError> {
    let plan = down::plan_teardown(ctx.client(), &args.app, ctx.owned_only()).await?;
    Ok(TeardownPlanOut {
        app: plan.app,
        machines: plan
            .machines
            .into_iter()
            .map(|m| format!("{} ({}, {}, {})", m.id, m.name, m.region, m.state))
            .collect(),
        volumes: plan
            .volumes
            .into_iter()
            .map(|v| format!("{} ({}, {}, {} GB)", v.id, v.name, v.region, v.size_gb))
            .collect(),
        ips: plan
            .ips
            .into_iter()
            .map(|ip| format!("{} ({})", ip.address, ip.kind))
            .collect(),
        certificates: plan.certificates,
    })
}

pub(super) async fn teardown_environment(
    ctx: ToolContext,
    args: TeardownArgs,
    plan: TeardownPlanOut,
) -> Result<TeardownReportOut, ToolError> {
    let wait = Duration::from_secs(u64::from(args.timeout_s.unwrap_or(120)));
    let client = ctx.client().clone();
    let app = plan.app.clone();
    let report = ctx
        .steer(|ctl| async move { down::teardown(&client, &app, wait, &ctl).await })
        .await?;
    Ok(TeardownReportOut {
        app: plan.app,
        app_deleted: report.app_deleted,
        removed: report.removed.iter().map(resource_out).collect(),
        certificates: report.certificates,
        retried_errors: report.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let plan = TeardownPlanOut {
            app: "dev-alice".into(),
            machines: vec!["148e1d4ae77d89 (dev-alice, iad, started)".into()],
            volumes: vec!["vol_4o2ejqnyx7y8gkpv (data, 1 GB)".into()],
            ips: vec!["66.241.124.17 (shared_v4)".into()],
            certificates: vec!["dev.example.com".into()],
        };
        let report = TeardownReportOut {
            app: "dev-alice".into(),
            app_deleted: true,
            removed: vec![
                ResourceOut {
                    kind: "machine".into(),
                    id: "148e1d4ae77d89".into(),
                    detail: "destroyed".into(),
                },
                ResourceOut {
                    kind: "volume".into(),
                    id: "vol_4o2ejqnyx7y8gkpv".into(),
                    detail: "destroyed".into(),
                },
            ],
            certificates: vec!["dev.example.com".into()],
            retried_errors: vec!["destroying volume vol_4o2ejqnyx7y8gkpv: 412, retried".into()],
        };
        insta::assert_snapshot!([plan.describe(), report.render_text()].join("\n---\n"));
    }
}
