//! `list_apps`: the orgs the token reaches and their apps.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ROW_BUDGET;
use crate::tools::render::{Row, rows};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::status;

pub(super) const LIST_APPS: ToolInfo = ToolInfo {
    name: "list_apps",
    title: "Apps this token reaches",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "Who the token is, its orgs and their apps (status, machine and volume counts); filter by \
`org` or `name`. Start here when the app name is unknown, then app_status or diagnose.",
    narrow_hint: "set `org` or `name`",
};

/// Arguments of `list_apps`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAppsArgs {
    /// Only this org (slug, e.g. `personal`).
    #[schemars(length(min = 1, max = 100))]
    pub org: Option<String>,
    /// Only apps whose name contains this (any case).
    #[schemars(length(min = 1, max = 100))]
    pub name: Option<String>,
}

// An org the token reaches.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrgOut {
    pub slug: String,
    pub name: String,
    // `PERSONAL` or `SHARED`.
    pub kind: String,
    // Its apps could not be listed (why).
    pub error: Option<String>,
}

// An app in the listing.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppOut {
    pub name: String,
    pub org: String,
    pub status: String,
    pub machines: Option<u64>,
    pub volumes: Option<u64>,
}

// Result of `list_apps`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListAppsOut {
    // Who the token is (one entry per token in the header).
    pub identity: Vec<String>,
    pub orgs: Vec<OrgOut>,
    pub apps: Vec<AppOut>,
    // Apps matching but left out to stay under the output cap.
    pub left_out: usize,
}

impl Row for AppOut {
    const HEADER: &'static [&'static str] = &["APP", "ORG", "STATUS", "MACHINES", "VOLUMES"];

    fn cells(&self) -> Vec<String> {
        let n = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        vec![
            self.name.clone(),
            self.org.clone(),
            self.status.clone(),
            n(self.machines),
            n(self.volumes),
        ]
    }
}

impl ToolOutput for ListAppsOut {
    fn render_text(&self) -> String {
        let mut out = String::new();
        if !self.identity.is_empty() {
            out.push_str(&format!("token: {}\n", self.identity.join("; ")));
        }
        let orgs: Vec<String> = self
            .orgs
            .iter()
            .map(|o| {
                let kind = o.kind.to_lowercase();
                match &o.error {
                    Some(e) => format!("{} ({}, {kind}; apps not listed: {e})", o.slug, o.name),
                    None => format!("{} ({}, {kind})", o.slug, o.name),
                }
            })
            .collect();
        out.push_str(&format!("orgs: {}\n", orgs.join(", ")));
        if self.apps.is_empty() {
            out.push_str("no apps\n");
        } else {
            out.push_str(&rows(&self.apps));
        }
        if self.left_out > 0 {
            out.push_str(&format!(
                "left out {} more apps; narrow with `org` or `name`\n",
                self.left_out
            ));
        }
        out
    }
}

pub(super) async fn list_apps(
    ctx: ToolContext,
    args: ListAppsArgs,
) -> Result<ListAppsOut, ToolError> {
    let scope = ctx.scope();
    let listing = status::list_apps(
        ctx.client(),
        args.org.as_deref(),
        args.name.as_deref(),
        &|o| scope.org_visible(o),
        &|a| scope.app_visible(a),
    )
    .await?;
    let mut apps = Vec::new();
    let mut bytes = 0usize;
    let total = listing.apps.len();
    for a in listing.apps {
        let cost = a.name.len() + a.org.len() + a.status.len() + 70;
        if bytes + cost > ROW_BUDGET {
            break;
        }
        bytes += cost;
        apps.push(AppOut {
            name: a.name,
            org: a.org,
            status: a.status,
            machines: a.machines,
            volumes: a.volumes,
        });
    }
    Ok(ListAppsOut {
        identity: listing.identity,
        orgs: listing
            .orgs
            .into_iter()
            .map(|o| OrgOut {
                slug: o.slug,
                name: o.name,
                kind: o.kind,
                error: o.error,
            })
            .collect(),
        left_out: total.saturating_sub(apps.len()),
        apps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let out = ListAppsOut {
            identity: vec!["user ana@example.com".into()],
            orgs: vec![
                OrgOut {
                    slug: "personal".into(),
                    name: "Ana".into(),
                    kind: "PERSONAL".into(),
                    error: None,
                },
                OrgOut {
                    slug: "acme".into(),
                    name: "Acme".into(),
                    kind: "SHARED".into(),
                    error: Some("listing apps: Fly API answered 500".into()),
                },
            ],
            apps: vec![
                AppOut {
                    name: "web".into(),
                    org: "personal".into(),
                    status: "deployed".into(),
                    machines: Some(3),
                    volumes: Some(1),
                },
                AppOut {
                    name: "dev-alice".into(),
                    org: "personal".into(),
                    status: "pending".into(),
                    machines: None,
                    volumes: None,
                },
            ],
            left_out: 4,
        };
        insta::assert_snapshot!(out.render_text());
    }
}
