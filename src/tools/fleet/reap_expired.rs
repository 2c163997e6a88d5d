//! `reap_expired`: destroy the environments whose claim has expired, confirmed first.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use super::{MemberOut, PoolArgs};
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{rows, table_row, tallied};
use crate::tools::{DestroyPlan, ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{
    outcome::{self, Outcome},
    pool as wf,
};

pub(super) const REAP_EXPIRED: ToolInfo = ToolInfo {
    name: "reap_expired",
    title: "Destroy expired environments",
    toolset: Toolset::Fleet,
    idempotent: true,
    description: "Destroy the environments of a pool whose claim is past expires_at (and only \
those: free ones and unexpired claims are untouched; a claim renewed meanwhile is spared). \
Confirmed first, unless the server runs with --confirm never. Call pool_fill afterwards to \
replace them.",
    narrow_hint: "",
};

/// What `reap_expired` would destroy.
#[derive(Debug, Clone, Serialize)]
pub struct ReapPlanOut {
    pub app: String,
    pub pool: String,
    pub now: String,
    pub expired: Vec<MemberOut>,
    #[serde(skip)]
    plan: wf::ReapPlan,
}

impl DestroyPlan for ReapPlanOut {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn binding(&self) -> serde_json::Value {
        // `now` moves by itself; what is expired is the plan.
        serde_json::json!({"app": self.app, "pool": self.pool, "expired": self.expired})
    }

    fn describe(&self) -> String {
        if self.expired.is_empty() {
            return format!(
                "nothing: no claim in pool {} of app {} is past its expiry",
                self.pool, self.app
            );
        }
        format!(
            "{} expired environment(s) of pool {} in app {} (machines destroyed, running ones killed):\n{}",
            self.expired.len(),
            self.pool,
            self.app,
            rows(&self.expired)
        )
    }
}

/// One reaped member.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReapedOut {
    pub machine_id: String,
    pub user: Option<String>,
    /// `destroyed`, `renewed` (spared), `busy` (leased by someone else) or `failed: …`.
    pub outcome: String,
}

/// Result of `reap_expired`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReapOut {
    pub app: String,
    pub pool: String,
    pub destroyed: usize,
    pub machines: Vec<ReapedOut>,
}

table_row!(ReapedOut, |m| {
    "ID": m.machine_id.clone(),
    "USER": m.user.clone().unwrap_or_default(),
    "OUTCOME": m.outcome.clone(),
});

impl ToolOutput for ReapOut {
    fn render_text(&self) -> String {
        tallied(
            &format!("pool {} in app {}", self.pool, self.app),
            &[(self.destroyed, "destroyed")],
            &self.machines,
        )
    }
}

pub(super) async fn plan_reap_expired(
    ctx: ToolContext,
    args: PoolArgs,
) -> Result<ReapPlanOut, ToolError> {
    let plan = wf::plan_reap(ctx.client(), &args.app, &args.pool, Timestamp::now()).await?;
    Ok(ReapPlanOut {
        app: plan.app.clone(),
        pool: plan.pool.clone(),
        now: plan.now.to_string(),
        expired: plan.expired.iter().map(MemberOut::from).collect(),
        plan,
    })
}

pub(super) async fn reap_expired(
    ctx: ToolContext,
    _args: PoolArgs,
    plan: ReapPlanOut,
) -> Result<ReapOut, ToolError> {
    let client = ctx.client().clone();
    let wf_plan = plan.plan.clone();
    let reaped = ctx
        .steer(|ctl| async move { wf::reap(&client, &wf_plan, &ctl).await })
        .await;
    let destroyed = outcome::count(&reaped, Outcome::Destroyed);
    let failed = outcome::count(&reaped, Outcome::Failed);
    let machines: Vec<ReapedOut> = reaped
        .into_iter()
        .map(|r| ReapedOut {
            machine_id: r.machine_id,
            user: r.user,
            outcome: match r.error {
                Some(e) => format!("{}: {e}", r.outcome.name()),
                None => r.outcome.name().to_owned(),
            },
        })
        .collect();
    let out = ReapOut {
        app: plan.app,
        pool: plan.pool,
        destroyed,
        machines,
    };
    complete_or_incomplete(failed > 0, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let now: jiff::Timestamp = "2026-11-21T15:00:00Z".parse().unwrap();
        let member = MemberOut {
            machine_id: "2865d90c412e08".into(),
            slot: Some(1),
            region: "iad".into(),
            machine_state: "started".into(),
            pool_state: "claimed".into(),
            user: Some("ana@example.com".into()),
            expires_at: Some("2026-11-21T14:00:00Z".into()),
            problem: None,
        };
        let plan = ReapPlanOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            now: now.to_string(),
            expired: vec![member],
            plan: wf::ReapPlan {
                app: "devboxes".into(),
                pool: "dev".into(),
                now,
                expired: Vec::new(),
            },
        };
        let report = ReapOut {
            app: "devboxes".into(),
            pool: "dev".into(),
            destroyed: 1,
            machines: vec![
                ReapedOut {
                    machine_id: "2865d90c412e08".into(),
                    user: Some("ana@example.com".into()),
                    outcome: "destroyed".into(),
                },
                ReapedOut {
                    machine_id: "3d8d413b1e3478".into(),
                    user: Some("bo@example.com".into()),
                    outcome: "busy".into(),
                },
            ],
        };
        insta::assert_snapshot!([plan.describe(), report.render_text()].join("\n---\n"));
    }
}
