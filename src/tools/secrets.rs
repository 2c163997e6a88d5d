//! The `secrets` toolset: `set_secrets`, which sets and unsets app secrets with values
//! given by reference (`env:VAR`, `file:PATH`, read on this server), so a value never
//! passes through the model. Every value read is registered with the redaction choke
//! point before any Fly call is made; results carry names, digests and the version.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::tools::args::AppName;
use crate::tools::catalog::DeclarationError;
use crate::tools::error::complete_or_incomplete;
use crate::tools::render::{rows, table, table_row};
use crate::tools::{DestroyPlan, ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{secrets as wf, update as upd};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![ToolDef::destructive(
        SET_SECRETS,
        plan_set_secrets,
        set_secrets,
    )?])
}

const SET_SECRETS: ToolInfo = ToolInfo {
    name: "set_secrets",
    title: "Set or unset app secrets (by reference)",
    toolset: Toolset::Secrets,
    idempotent: true,
    description: "Set and unset an app's secrets in one call. Values are references the server reads, \
as far as its operator allows: `env:VAR` or `file:PATH` (`literal:VALUE` if allowed). Returns names, digests \
and the new version, never values. `rollout: true` updates every machine to use them. \
Confirmed first.",
    narrow_hint: "set fewer secrets per call",
};

/// Arguments of `set_secrets`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecretsArgs {
    /// App name.
    pub app: AppName,
    /// Secrets to set: NAME → reference (`env:VAR` or `file:PATH`).
    #[serde(default)]
    #[schemars(length(max = 50), with = "BTreeMap<String, String>")]
    pub set: BTreeMap<String, SecretRef>,
    /// Secret names to remove.
    #[serde(default)]
    #[schemars(length(max = 50), inner(pattern(r"^[A-Za-z_][A-Za-z0-9_]*$")))]
    pub unset: Vec<String>,
    /// Also update every machine (rolling) to use them.
    #[serde(default)]
    pub rollout: bool,
}

/// A reference (or an allowed literal), held as a secret from the moment it is parsed so
/// a literal value never shows in a Debug print.
#[derive(Clone)]
pub struct SecretRef(SecretString);

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRef([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SecretRef(SecretString::from(String::deserialize(d)?)))
    }
}

/// What `set_secrets` would do (names and references only).
#[derive(Debug, Clone, Serialize)]
pub struct SetSecretsPlan {
    pub app: String,
    /// NAME → reference, and whether it replaces an existing secret.
    pub set: Vec<PlannedSecret>,
    pub unset: Vec<String>,
    /// Names asked to be removed that do not exist.
    pub unset_missing: Vec<String>,
    pub rollout: bool,
    #[serde(skip)]
    plan: wf::SecretsPlan,
    #[serde(skip)]
    resolved: Vec<wf::ResolvedSecret>,
}

/// One secret in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedSecret {
    pub name: String,
    pub source: String,
    pub replaces: bool,
}

impl DestroyPlan for SetSecretsPlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        let mut rows: Vec<Vec<String>> = self
            .set
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    if s.replaces { "replace" } else { "add" }.to_owned(),
                    s.source.clone(),
                ]
            })
            .collect();
        rows.extend(
            self.unset
                .iter()
                .map(|n| vec![n.clone(), "remove".to_owned(), String::new()]),
        );
        let mut out = format!(
            "secrets of app {}:\n{}",
            self.app,
            table(&["NAME", "CHANGE", "FROM"], &rows)
        );
        if !self.unset_missing.is_empty() {
            out.push_str(&format!(
                "\nnot present (nothing to remove): {}",
                self.unset_missing.join(", ")
            ));
        }
        if self.rollout {
            out.push_str("\nthen every machine is updated (rolling) to run with the new secrets");
        }
        out
    }
}

/// One secret in the result.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SecretOut {
    pub name: String,
    /// `set`, `unset` or `kept`.
    pub change: String,
    /// Fly's digest of the value (empty once unset).
    pub digest: String,
    /// Where the value came from (for `set`).
    pub source: Option<String>,
}

/// Result of `set_secrets`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SetSecretsReport {
    pub app: String,
    /// The secrets version after the change (pass as min_secrets_version).
    pub version: u64,
    pub secrets: Vec<SecretOut>,
    /// Machines updated by the rollout, when asked for.
    pub rollout: Option<super::provision::UpdateMachinesReport>,
}

table_row!(SecretOut, |s| {
    "NAME": s.name.clone(),
    "CHANGE": s.change.clone(),
    "DIGEST": s.digest.chars().take(16).collect(),
    "FROM": s.source.clone().unwrap_or_default(),
});

impl ToolOutput for SetSecretsReport {
    fn render_text(&self) -> String {
        let mut out = format!(
            "app {}: secrets version {}\n{}",
            self.app,
            self.version,
            rows(&self.secrets)
        );
        if let Some(r) = &self.rollout {
            out.push_str("\nrollout: ");
            out.push_str(&r.render_text());
        }
        out
    }
}

async fn plan_set_secrets(
    ctx: ToolContext,
    args: SetSecretsArgs,
) -> Result<SetSecretsPlan, ToolError> {
    let refs: BTreeMap<String, SecretString> = args
        .set
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    // Every value is registered with the redactor inside `resolve`, as it is read,
    // before any Fly call below.
    let register = |value: &SecretString| ctx.register_secret(value);
    let is_credential = |value: &str| ctx.client().token_appears_in(value);
    let resolved = wf::resolve(
        &refs,
        &args.unset,
        ctx.secret_refs(),
        &is_credential,
        &register,
    )?;
    let plan = wf::plan_secrets(
        ctx.client(),
        &args.app,
        &resolved,
        &args.unset,
        args.rollout,
    )
    .await?;
    Ok(SetSecretsPlan {
        app: plan.app.clone(),
        set: plan
            .set
            .iter()
            .map(|(name, source, replaces)| PlannedSecret {
                name: name.clone(),
                source: source.clone(),
                replaces: *replaces,
            })
            .collect(),
        unset: plan.unset.clone(),
        unset_missing: plan.unset_missing.clone(),
        rollout: plan.rollout,
        plan,
        resolved,
    })
}

async fn set_secrets(
    ctx: ToolContext,
    _args: SetSecretsArgs,
    plan: SetSecretsPlan,
) -> Result<SetSecretsReport, ToolError> {
    let opts = upd::UpdateOptions {
        owned_only: ctx.owned_only(),
        start_timeout: Duration::from_secs(300),
        ..upd::UpdateOptions::default()
    };
    let client = ctx.client();
    let r = ctx
        .steer(|ctl| async move {
            wf::apply_secrets(client, &plan.plan, plan.resolved, &opts, &ctl).await
        })
        .await?;
    let report = SetSecretsReport {
        app: r.app,
        version: r.version,
        secrets: r
            .secrets
            .into_iter()
            .map(|s| SecretOut {
                name: s.name,
                change: s.change.to_owned(),
                digest: s.digest,
                source: s.source,
            })
            .collect(),
        rollout: r.rollout.map(Into::into),
    };
    complete_or_incomplete(
        report
            .rollout
            .as_ref()
            .is_some_and(|r| r.failed > 0 || r.reverted > 0),
        report,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let plan = SetSecretsPlan {
            app: "web".into(),
            set: vec![
                PlannedSecret {
                    name: "DATABASE_URL".into(),
                    source: "env:DATABASE_URL".into(),
                    replaces: true,
                },
                PlannedSecret {
                    name: "API_KEY".into(),
                    source: "file:/run/secrets/api_key".into(),
                    replaces: false,
                },
            ],
            unset: vec!["OLD_TOKEN".into()],
            unset_missing: vec!["NEVER_SET".into()],
            rollout: true,
            plan: wf::SecretsPlan {
                app: "web".into(),
                set: Vec::new(),
                unset: Vec::new(),
                unset_missing: Vec::new(),
                rollout: true,
            },
            resolved: Vec::new(),
        };
        let report = SetSecretsReport {
            app: "web".into(),
            version: 7,
            secrets: vec![
                SecretOut {
                    name: "DATABASE_URL".into(),
                    change: "set".into(),
                    digest: "4f1a9c2e".into(),
                    source: Some("env:DATABASE_URL".into()),
                },
                SecretOut {
                    name: "OLD_TOKEN".into(),
                    change: "unset".into(),
                    digest: String::new(),
                    source: None,
                },
            ],
            rollout: None,
        };
        insta::assert_snapshot!([plan.describe(), report.render_text()].join("\n---\n"));
    }
}
