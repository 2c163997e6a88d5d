//! The safety policy a server instance runs with: which tools are offered
//! (toolsets, `--tools`, `--exclude-tools`, `--read-only`, `--no-destroy`), how
//! destructive calls are confirmed, which orgs and apps may be touched, the output cap,
//! what secret references may read, and the part of all this that Fly itself enforces:
//! the attenuation the Fly client applies to its token ([`Policy::attenuation`]). Pure
//! data and checks; the gate in
//! [`super::gate`] applies them.

use std::collections::BTreeSet;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::confirm_token::ConfirmKey;
use super::{
    catalog::{Catalog, ToolDef, ToolKind, Toolset},
    error::ToolError,
};
use crate::workflows::secret_refs::{RefPolicy, RefPolicyOptions};
use secrecy::SecretString;

/// How destructive calls are confirmed (`--confirm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmMode {
    /// Ask the user through elicitation; without it, fall back to `argument`.
    #[default]
    Elicit,
    /// Always return the plan first, with a token bound to it; the call is repeated
    /// with `confirm` = that token.
    Argument,
    /// No confirmation (CI that has been told what it is doing).
    Never,
}

/// The default text cap of a tool result (16 KiB).
pub const DEFAULT_MAX_OUTPUT: usize = 16 * 1024;

/// Which tools are selected, before the safety modes apply.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `None` = the default toolsets (or none, when `tools` is given).
    pub toolsets: Option<Vec<String>>,
    /// Extra tools by name, added to the toolsets.
    pub tools: Vec<String>,
    /// Tools removed by name.
    pub exclude_tools: Vec<String>,
}

/// A set of glob patterns with the flag that introduced them, for refusal messages.
#[derive(Debug, Clone)]
pub struct GlobRule {
    flag: &'static str,
    patterns: Vec<String>,
    set: GlobSet,
}

impl GlobRule {
    /// Compiles `patterns` (shell globs, e.g. `dev-*`).
    pub fn new(flag: &'static str, patterns: &[String]) -> Result<Option<Self>, String> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(Glob::new(p).map_err(|e| format!("{flag} '{p}': {e}"))?);
        }
        let set = builder.build().map_err(|e| format!("{flag}: {e}"))?;
        Ok(Some(GlobRule {
            flag,
            patterns: patterns.to_vec(),
            set,
        }))
    }

    /// True when `name` matches one of the patterns.
    pub fn allows(&self, name: &str) -> bool {
        self.set.is_match(name)
    }

    /// The patterns without glob characters (names given literally).
    pub fn literals(&self) -> Vec<String> {
        self.patterns
            .iter()
            .filter(|p| !p.contains(['*', '?', '[', '{']))
            .cloned()
            .collect()
    }

    /// The rule as the user wrote it, e.g. `--allow-app dev-*`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.flag, self.patterns.join(","))
    }
}

/// The org/app allowlists (`--allow-org`, `--allow-app`), checked before any Fly call.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub orgs: Option<GlobRule>,
    pub apps: Option<GlobRule>,
    /// A caller's own `allow-org`/`allow-app` (server key or OAuth token), checked
    /// after these: it only narrows.
    narrower: Option<Box<Scope>>,
}

impl Scope {
    /// Builds the scope from the command-line patterns.
    pub fn new(allow_org: &[String], allow_app: &[String]) -> Result<Self, String> {
        Ok(Scope {
            orgs: GlobRule::new("--allow-org", allow_org)?,
            apps: GlobRule::new("--allow-app", allow_app)?,
            narrower: None,
        })
    }

    /// This scope further narrowed by a caller's own rules.
    pub fn narrowed(&self, orgs: Option<GlobRule>, apps: Option<GlobRule>) -> Scope {
        let mut s = self.clone();
        if orgs.is_some() || apps.is_some() {
            s.narrower = Some(Box::new(Scope {
                orgs,
                apps,
                narrower: None,
            }));
        }
        s
    }

    /// True when some rule limits orgs (the app's org must then be looked up).
    pub fn restricts_orgs(&self) -> bool {
        self.orgs.is_some() || self.narrower.as_ref().is_some_and(|n| n.orgs.is_some())
    }

    /// Refuses an app outside `--allow-app`.
    pub fn check_app(&self, app: &str) -> Result<(), ToolError> {
        self.check("app", app, |s| &s.apps)
    }

    /// Refuses an org outside `--allow-org`.
    pub fn check_org(&self, org: &str) -> Result<(), ToolError> {
        self.check("org", org, |s| &s.orgs)
    }

    /// Refuses `name`, an app or an org as `kind` says, when the rule that `rule` picks
    /// out of this scope (or out of the narrower one) does not allow it.
    fn check(
        &self,
        kind: &str,
        name: &str,
        rule: fn(&Scope) -> &Option<GlobRule>,
    ) -> Result<(), ToolError> {
        match rule(self) {
            Some(r) if !r.allows(name) => Err(ToolError::Refused {
                rule: r.describe(),
                message: format!("{kind} '{name}' is outside the {kind}s this server may touch"),
            }),
            Some(_) | None => match &self.narrower {
                Some(n) => n.check(kind, name, rule),
                None => Ok(()),
            },
        }
    }

    /// True when an app is visible under `--allow-app` (for filtering listings).
    pub fn app_visible(&self, app: &str) -> bool {
        self.apps.as_ref().is_none_or(|r| r.allows(app))
            && self.narrower.as_ref().is_none_or(|n| n.app_visible(app))
    }

    /// True when an org is visible under `--allow-org` (for filtering listings).
    pub fn org_visible(&self, org: &str) -> bool {
        self.orgs.as_ref().is_none_or(|r| r.allows(org))
            && self.narrower.as_ref().is_none_or(|n| n.org_visible(org))
    }
}

/// Everything the gate needs to decide about a call.
#[derive(Debug, Clone)]
pub struct Policy {
    pub read_only: bool,
    pub no_destroy: bool,
    pub confirm: ConfirmMode,
    pub scope: Scope,
    pub owned_only: bool,
    /// Text cap per result, in bytes.
    pub max_output: usize,
    /// What `set_secrets` references may read and where key files may be written.
    pub secret_refs: Arc<RefPolicy>,
    /// Signs the tokens of argument confirmation.
    pub confirm_key: Arc<ConfirmKey>,
    /// How the Fly client narrows its token (from `--read-only`, `--allow-org` and
    /// `--no-attenuate`), so that Fly refuses what the gate would.
    pub attenuation: crate::fly::Attenuation,
    enabled: BTreeSet<&'static str>,
    selected: BTreeSet<&'static str>,
}

/// The inputs of [`Policy::new`].
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    pub selection: Selection,
    pub read_only: bool,
    pub no_destroy: bool,
    pub confirm: ConfirmMode,
    pub allow_org: Vec<String>,
    pub allow_app: Vec<String>,
    pub owned_only: bool,
    pub max_output: Option<usize>,
    /// `--secret-env`, `--secrets-dir`, `--allow-literal-secrets` and the server's
    /// credential paths: what secret references may read.
    pub secret_refs: RefPolicyOptions,
    /// `--confirm-key`: replicas sharing it accept each other's confirmation tokens
    /// (else a random key per process).
    pub confirm_key: Option<SecretString>,
    /// Lifetime of a confirmation token (default 5 minutes).
    pub confirm_ttl: Option<std::time::Duration>,
    /// `--no-attenuate`: send the token as it is (no caveats appended).
    pub no_attenuate: bool,
}

impl Policy {
    /// Resolves the selection against the catalog. Unknown toolset or tool names are
    /// an error naming the valid ones.
    pub fn new(catalog: &Catalog, opts: &PolicyOptions) -> Result<Self, String> {
        let sel = &opts.selection;
        let mut toolsets: BTreeSet<Toolset> = BTreeSet::new();
        match &sel.toolsets {
            Some(names) => {
                for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                    if name == "all" {
                        toolsets.extend(Toolset::ALL);
                    } else {
                        toolsets.insert(name.parse()?);
                    }
                }
            }
            None if sel.tools.is_empty() => toolsets.extend(Toolset::DEFAULT),
            None => {}
        }
        let known = |name: &str| -> Result<&'static str, String> {
            catalog.get(name).map(|t| t.info.name).ok_or_else(|| {
                let names: Vec<&str> = catalog.tools().iter().map(|t| t.info.name).collect();
                format!("unknown tool '{name}' (known: {})", names.join(", "))
            })
        };
        let mut selected: BTreeSet<&'static str> = catalog
            .tools()
            .iter()
            .filter(|t| toolsets.contains(&t.info.toolset))
            .map(|t| t.info.name)
            .collect();
        for name in sel.tools.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            selected.insert(known(name)?);
        }
        for name in sel
            .exclude_tools
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
        {
            selected.remove(known(name)?);
        }
        let mut policy = Policy {
            read_only: opts.read_only,
            no_destroy: opts.no_destroy,
            confirm: opts.confirm,
            scope: Scope::new(&opts.allow_org, &opts.allow_app)?,
            owned_only: opts.owned_only,
            max_output: opts.max_output.unwrap_or(DEFAULT_MAX_OUTPUT).max(256),
            secret_refs: Arc::new(RefPolicy::new(&opts.secret_refs)?),
            confirm_key: Arc::new({
                let key = opts
                    .confirm_key
                    .as_ref()
                    .map_or_else(ConfirmKey::random, ConfirmKey::shared);
                key.with_ttl(
                    opts.confirm_ttl
                        .unwrap_or(super::confirm_token::DEFAULT_TTL),
                )
            }),
            attenuation: crate::fly::Attenuation {
                enabled: !opts.no_attenuate,
                read_only: opts.read_only,
                allow_orgs: opts.allow_org.clone(),
                ..crate::fly::Attenuation::default()
            },
            enabled: BTreeSet::new(),
            selected,
        };
        policy.enabled = catalog
            .tools()
            .iter()
            .filter(|t| policy.selected.contains(t.info.name) && policy.mode_blocks(t).is_none())
            .map(|t| t.info.name)
            .collect();
        Ok(policy)
    }

    /// Why the safety modes forbid a tool, if they do. Derived from the kind only.
    fn mode_blocks(&self, tool: &ToolDef) -> Option<&'static str> {
        match tool.kind {
            ToolKind::Read => None,
            ToolKind::Write if self.read_only => Some("the server runs with --read-only"),
            ToolKind::Destructive if self.read_only => Some("the server runs with --read-only"),
            ToolKind::Destructive if self.no_destroy => Some("the server runs with --no-destroy"),
            ToolKind::Write | ToolKind::Destructive => None,
        }
    }

    /// What the Fly client of a call on `tool` may do: its kind's access.
    pub fn call_access(tool: &ToolDef) -> crate::fly::CallAccess {
        match tool.kind {
            ToolKind::Read => crate::fly::CallAccess::Read,
            ToolKind::Write => crate::fly::CallAccess::Write,
            ToolKind::Destructive => crate::fly::CallAccess::Destroy,
        }
    }

    /// True when the tool is listed and callable.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.contains(name)
    }

    /// Refuses a tool this instance does not offer, saying why.
    pub fn check_enabled(&self, tool: &ToolDef) -> Result<(), ToolError> {
        if let Some(reason) = self.mode_blocks(tool) {
            return Err(ToolError::Disabled {
                name: tool.info.name.to_owned(),
                reason: reason.to_owned(),
            });
        }
        if !self.selected.contains(tool.info.name) {
            return Err(ToolError::Disabled {
                name: tool.info.name.to_owned(),
                reason: format!(
                    "its toolset '{}' is not enabled (start the server with --toolsets {} or --tools {})",
                    tool.info.toolset, tool.info.toolset, tool.info.name
                ),
            });
        }
        Ok(())
    }
}
