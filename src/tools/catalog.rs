//! The tool catalog: how a tool is declared (name, toolset, kind, annotations, input
//! and output schemas, handler) and which tools a server instance exposes.
//!
//! A toolset is one file (`network.rs`, `storage.rs`, ...) or a folder with one file
//! per tool (`observe/`, `provision/`, `fleet/`) exposing
//! `pub fn tools() -> Result<Vec<ToolDef>, DeclarationError>`; [`Catalog::all`] joins
//! them. The JSON Schema each tool publishes is written by [`super::schema`]. Knows
//! nothing of transports or of the safety gates; it only describes tools and runs their
//! bodies.

use std::{collections::BTreeSet, fmt, future::Future, str::FromStr, sync::Arc};

use futures::future::BoxFuture;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    context::ToolContext,
    error::ToolError,
    schema::{add_confirm_property, input_schema, output_schema, shallow_output},
};

/// A group of tools enabled together (`--toolsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Toolset {
    Observe,
    Provision,
    Storage,
    Secrets,
    Network,
    Fleet,
    Exec,
    Hosting,
}

impl Toolset {
    /// Every toolset, in catalog order.
    pub const ALL: [Toolset; 8] = [
        Toolset::Observe,
        Toolset::Provision,
        Toolset::Storage,
        Toolset::Secrets,
        Toolset::Network,
        Toolset::Fleet,
        Toolset::Exec,
        Toolset::Hosting,
    ];
    /// The toolsets enabled when `--toolsets` is not given.
    pub const DEFAULT: [Toolset; 4] = [
        Toolset::Observe,
        Toolset::Provision,
        Toolset::Storage,
        Toolset::Secrets,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Toolset::Observe => "observe",
            Toolset::Provision => "provision",
            Toolset::Storage => "storage",
            Toolset::Secrets => "secrets",
            Toolset::Network => "network",
            Toolset::Fleet => "fleet",
            Toolset::Exec => "exec",
            Toolset::Hosting => "hosting",
        }
    }
}

impl fmt::Display for Toolset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Toolset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Toolset::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Toolset::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "unknown toolset '{s}' (known: {}, or 'all')",
                    names.join(", ")
                )
            })
    }
}

/// What a tool does to the world. Exactly one per tool; the safety modes
/// (`--read-only`, `--no-destroy`) and the confirmation gate are derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    /// Reads only (`readOnlyHint: true`).
    Read,
    /// Creates or changes things, never destroys (`destructiveHint: false`).
    Write,
    /// Destroys something (`destructiveHint: true`); always confirmed.
    Destructive,
}

impl ToolKind {
    /// The name shown by `tools`.
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::Read => "read",
            ToolKind::Write => "write",
            ToolKind::Destructive => "destructive",
        }
    }
}

/// The static description of a tool: everything but its types and body.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    /// Snake-case name the model calls.
    pub name: &'static str,
    /// Short human title (annotations and `tools/list`).
    pub title: &'static str,
    pub toolset: Toolset,
    /// For write and destructive tools: repeating the call with the same arguments has
    /// no further effect. Read tools are always idempotent.
    pub idempotent: bool,
    /// What the model reads: when to use the tool, what it does not do, what to call next.
    pub description: &'static str,
    /// Shown when the text output is cut at the output cap: how to ask for less.
    pub narrow_hint: &'static str,
}

/// The result type of a tool: serialised as `structuredContent` (its JSON Schema is the
/// tool's `outputSchema`, so it must be an object) and rendered as compact text.
pub trait ToolOutput: Serialize + JsonSchema + Send + 'static {
    /// The compact text rendering (aligned columns or TSV, ids always shown).
    fn render_text(&self) -> String;
}

/// What a destructive tool will destroy, computed before anything is destroyed. Shown
/// to the user (elicitation) or returned to the model (argument confirmation).
pub trait DestroyPlan: Serialize + Send + 'static {
    /// The value `confirm` must equal to go ahead: the app name.
    fn confirm_token(&self) -> &str;
    /// Exactly what will be destroyed, one line per resource, with ids.
    fn describe(&self) -> String;
    /// What a confirmation token is bound to: the plan's targets and versions, without
    /// fields that change by themselves between two calls (a clock).
    fn binding(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A rendered tool result, before redaction and the output cap.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub structured: Value,
    pub text: String,
    /// The result's `_meta` (set by the gate: which fields are app-controlled).
    pub meta: Option<serde_json::Map<String, Value>>,
}

/// A confirmation the gate must obtain before a destructive tool runs.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    /// The app name the caller must echo in `confirm`.
    pub token: String,
    /// Human-readable plan.
    pub description: String,
    /// The plan as JSON (for `call` and the audit log).
    pub plan: Value,
    /// What confirmation is bound to: the arguments (without `confirm`) and the plan's
    /// [`DestroyPlan::binding`].
    pub binding: Value,
}

/// A tool's arguments: parsed from the call's JSON, described by their JSON Schema.
pub trait ToolArgs: DeserializeOwned + JsonSchema + Send + 'static {}

impl<A: DeserializeOwned + JsonSchema + Send + 'static> ToolArgs for A {}

/// A tool body, or a destructive tool's plan: an
/// `async fn(ToolContext, A) -> Result<Output, ToolError>`.
pub trait Body<A>: Send + Sync + 'static {
    /// What it answers: a [`ToolOutput`], or a [`DestroyPlan`].
    type Output;
    /// Its future, unboxed: the runner awaits it inside its own boxed future.
    type Future: Future<Output = Result<Self::Output, ToolError>> + Send + 'static;

    /// Runs it.
    fn call(&self, ctx: ToolContext, args: A) -> Self::Future;
}

impl<A, O, F, Fut> Body<A> for F
where
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    type Output = O;
    type Future = Fut;

    fn call(&self, ctx: ToolContext, args: A) -> Fut {
        self(ctx, args)
    }
}

type Exec = Box<dyn FnOnce(ToolContext) -> BoxFuture<'static, Result<Rendered, ToolError>> + Send>;

/// A call whose arguments parsed and (for destructive tools) whose plan is ready.
pub struct Prepared {
    pub confirm: Option<ConfirmRequest>,
    exec: Exec,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("confirm", &self.confirm)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Runs the tool body.
    pub async fn execute(self, ctx: ToolContext) -> Result<Rendered, ToolError> {
        (self.exec)(ctx).await
    }
}

trait Runner: Send + Sync {
    fn prepare(
        &self,
        ctx: ToolContext,
        args: Value,
    ) -> BoxFuture<'static, Result<Prepared, ToolError>>;
}

/// One tool: its description, schemas and body.
#[derive(Clone)]
pub struct ToolDef {
    pub info: ToolInfo,
    pub kind: ToolKind,
    input_schema: Arc<JsonObject>,
    /// What `tools/list` declares: the top-level fields and their types.
    output_schema: Arc<JsonObject>,
    /// The whole shape, for tests that check results field by field.
    detailed_output_schema: Arc<JsonObject>,
    validator: Arc<jsonschema::Validator>,
    runner: Arc<dyn Runner>,
}

impl fmt::Debug for ToolDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolDef")
            .field("name", &self.info.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The name of the argument every destructive tool accepts (added by the framework).
pub const CONFIRM_ARG: &str = "confirm";

/// An error in a tool's declaration, found when the catalog is built.
#[derive(Debug, thiserror::Error)]
#[error("tool {tool}: {problem}")]
pub struct DeclarationError {
    pub tool: &'static str,
    pub problem: String,
}

impl ToolDef {
    /// A read-only tool.
    pub fn read<A: ToolArgs>(
        info: ToolInfo,
        body: impl Body<A, Output: ToolOutput>,
    ) -> Result<Self, DeclarationError> {
        Self::simple(info, ToolKind::Read, body)
    }

    /// A tool that creates or changes things but never destroys.
    pub fn write<A: ToolArgs>(
        info: ToolInfo,
        body: impl Body<A, Output: ToolOutput>,
    ) -> Result<Self, DeclarationError> {
        Self::simple(info, ToolKind::Write, body)
    }

    /// A destructive tool: `plan` says exactly what would be destroyed (it must not
    /// change anything), the gate confirms it, then `run` destroys what the plan names.
    /// The framework adds the `confirm` argument to the input schema.
    pub fn destructive<A, P, O, FR, FutR>(
        info: ToolInfo,
        plan: impl Body<A, Output = P>,
        run: FR,
    ) -> Result<Self, DeclarationError>
    where
        A: ToolArgs + Clone,
        P: DestroyPlan,
        O: ToolOutput,
        FR: Fn(ToolContext, A, P) -> FutR + Send + Sync + 'static,
        FutR: Future<Output = Result<O, ToolError>> + Send + 'static,
    {
        let run = Arc::new(run);
        let runner = DestructiveRunner {
            plan: Arc::new(plan),
            run,
            _types: std::marker::PhantomData,
        };
        let mut input = input_schema::<A>(info.name)?;
        add_confirm_property(&mut input);
        Self::build(
            info,
            ToolKind::Destructive,
            input,
            output_schema::<O>(info.name)?,
            Arc::new(runner),
        )
    }

    fn simple<A: ToolArgs, B: Body<A, Output: ToolOutput>>(
        info: ToolInfo,
        kind: ToolKind,
        body: B,
    ) -> Result<Self, DeclarationError> {
        let runner = SimpleRunner {
            body: Arc::new(body),
            _types: std::marker::PhantomData,
        };
        Self::build(
            info,
            kind,
            input_schema::<A>(info.name)?,
            output_schema::<B::Output>(info.name)?,
            Arc::new(runner),
        )
    }

    fn build(
        info: ToolInfo,
        kind: ToolKind,
        input_schema: JsonObject,
        output_schema: JsonObject,
        runner: Arc<dyn Runner>,
    ) -> Result<Self, DeclarationError> {
        let validator =
            jsonschema::validator_for(&Value::Object(input_schema.clone())).map_err(|e| {
                DeclarationError {
                    tool: info.name,
                    problem: format!("input schema does not compile: {e}"),
                }
            })?;
        let compact = shallow_output(&output_schema);
        Ok(ToolDef {
            info,
            kind,
            input_schema: Arc::new(input_schema),
            output_schema: Arc::new(compact),
            detailed_output_schema: Arc::new(output_schema),
            validator: Arc::new(validator),
            runner,
        })
    }

    /// The tool name.
    pub fn name(&self) -> &'static str {
        self.info.name
    }

    /// The full output schema (every nested field), which every result also matches;
    /// `tools/list` declares only its top level (see [`super::schema::shallow_output`]).
    pub fn detailed_output_schema(&self) -> &JsonObject {
        &self.detailed_output_schema
    }

    /// The annotations derived from the kind.
    pub fn annotations(&self) -> ToolAnnotations {
        let (read_only, destructive, idempotent) = match self.kind {
            ToolKind::Read => (true, false, true),
            ToolKind::Write => (false, false, self.info.idempotent),
            ToolKind::Destructive => (false, true, self.info.idempotent),
        };
        // No `title` here: the tool's own `title` says it, and clients prefer that one.
        ToolAnnotations::new()
            .read_only(read_only)
            .destructive(destructive)
            .idempotent(idempotent)
            .open_world(true)
    }

    /// The MCP `Tool` as `tools/list` shows it.
    pub fn to_mcp(&self) -> Tool {
        let tool = Tool::new_with_raw(
            self.info.name,
            Some(self.info.description.into()),
            self.input_schema.clone(),
        )
        .with_title(self.info.title)
        .with_raw_output_schema(self.output_schema.clone())
        .with_annotations(self.annotations());
        match tool_search_meta(self.info.name) {
            Some(meta) => tool.with_meta(rmcp::model::MetaObject(meta)),
            None => tool,
        }
    }

    /// Checks `args` against the input schema. The error names the failing field.
    /// A `null` member counts as absent, as it does for the call itself.
    pub fn validate(&self, args: &Value) -> Result<(), ToolError> {
        let mut args = args.clone();
        strip_null_members(&mut args);
        match self.validator.iter_errors(&args).next() {
            None => Ok(()),
            Some(err) => {
                let path = err.instance_path().to_string();
                let field = if path.is_empty() {
                    "arguments".to_owned()
                } else {
                    path.trim_start_matches('/').replace('/', ".")
                };
                Err(ToolError::InvalidArgument {
                    field,
                    message: err.to_string(),
                })
            }
        }
    }

    /// Parses the arguments and, for destructive tools, computes the plan.
    pub async fn prepare(&self, ctx: ToolContext, args: Value) -> Result<Prepared, ToolError> {
        self.runner.prepare(ctx, args).await
    }
}

struct SimpleRunner<A, F> {
    body: Arc<F>,
    _types: std::marker::PhantomData<fn(A)>,
}

impl<A, F> Runner for SimpleRunner<A, F>
where
    A: DeserializeOwned + Send + 'static,
    F: Body<A, Output: ToolOutput>,
{
    fn prepare(
        &self,
        _ctx: ToolContext,
        args: Value,
    ) -> BoxFuture<'static, Result<Prepared, ToolError>> {
        let body = self.body.clone();
        Box::pin(async move {
            let parsed: A = parse_args(args)?;
            let exec: Exec = Box::new(move |ctx| {
                Box::pin(async move {
                    let out = body.call(ctx, parsed).await?;
                    render(&out)
                })
            });
            Ok(Prepared {
                confirm: None,
                exec,
            })
        })
    }
}

struct DestructiveRunner<A, FP, FR> {
    plan: Arc<FP>,
    run: Arc<FR>,
    _types: std::marker::PhantomData<fn(A)>,
}

impl<A, P, O, FP, FR, FutR> Runner for DestructiveRunner<A, FP, FR>
where
    A: DeserializeOwned + Clone + Send + 'static,
    P: DestroyPlan,
    O: ToolOutput,
    FP: Body<A, Output = P>,
    FR: Fn(ToolContext, A, P) -> FutR + Send + Sync + 'static,
    FutR: Future<Output = Result<O, ToolError>> + Send + 'static,
{
    fn prepare(
        &self,
        ctx: ToolContext,
        mut args: Value,
    ) -> BoxFuture<'static, Result<Prepared, ToolError>> {
        let plan_fn = self.plan.clone();
        let run = self.run.clone();
        Box::pin(async move {
            if let Some(obj) = args.as_object_mut() {
                obj.remove(CONFIRM_ARG);
            }
            let bound_args = args.clone();
            let parsed: A = parse_args(args)?;
            let plan = plan_fn.call(ctx, parsed.clone()).await?;
            let confirm = ConfirmRequest {
                binding: serde_json::json!({"args": bound_args, "plan": plan.binding()}),
                token: plan.confirm_token().to_owned(),
                description: plan.describe(),
                plan: serde_json::to_value(&plan).map_err(|e| ToolError::Internal {
                    context: format!("serialising the plan: {e}"),
                })?,
            };
            let exec: Exec = Box::new(move |ctx| {
                Box::pin(async move {
                    let out = run(ctx, parsed, plan).await?;
                    render(&out)
                })
            });
            Ok(Prepared {
                confirm: Some(confirm),
                exec,
            })
        })
    }
}

fn parse_args<A: DeserializeOwned>(args: Value) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        ToolError::InvalidArgument {
            field: if path == "." {
                "arguments".to_owned()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })
}

fn render<O: ToolOutput>(out: &O) -> Result<Rendered, ToolError> {
    let structured = serde_json::to_value(out).map_err(|e| ToolError::Internal {
        context: format!("serialising the result: {e}"),
    })?;
    Ok(Rendered {
        structured,
        text: out.render_text(),
        meta: None,
    })
}

/// Removes top-level `null` members from an arguments object: an optional argument
/// given as `null` means "not given". Nested `null`s keep their meaning (e.g. an env
/// map where `null` removes a variable).
pub(crate) fn strip_null_members(value: &mut Value) {
    if let Value::Object(obj) = value {
        obj.retain(|_, v| !v.is_null());
    }
}

/// Every tool this build knows, in catalog order.
#[derive(Debug, Clone)]
pub struct Catalog {
    tools: Vec<ToolDef>,
}

impl Catalog {
    /// All toolsets joined. Each toolset file contributes its `tools()`.
    pub fn all() -> Result<Self, DeclarationError> {
        let mut tools = Vec::new();
        tools.extend(super::observe::tools()?);
        tools.extend(super::provision::tools()?);
        tools.extend(super::storage::tools()?);
        tools.extend(super::secrets::tools()?);
        tools.extend(super::network::tools()?);
        tools.extend(super::fleet::tools()?);
        tools.extend(super::exec::tools()?);
        tools.extend(super::hosting::tools()?);
        Self::from_tools(tools)
    }

    /// A catalog of the given tools (tests use this for fixtures).
    pub fn from_tools(tools: Vec<ToolDef>) -> Result<Self, DeclarationError> {
        let mut seen = BTreeSet::new();
        for t in &tools {
            if !seen.insert(t.info.name) {
                return Err(DeclarationError {
                    tool: t.info.name,
                    problem: "declared twice".to_owned(),
                });
            }
        }
        Ok(Catalog { tools })
    }

    /// Every tool, whether enabled or not.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// Looks a tool up by name.
    pub fn get(&self, name: &str) -> Option<&ToolDef> {
        self.tools.iter().find(|t| t.info.name == name)
    }
}

/// The tools an agent needs first: Claude Code's tool search loads them with the prompt
/// instead of deferring them until searched for.
const ALWAYS_LOAD: [&str; 3] = ["list_apps", "app_status", "diagnose"];

/// Short search hints for tools outside the default toolsets. The default tools carry
/// none: their descriptions are what the search matches, and the default `tools/list`
/// has no room left in its 6,000-token budget for more.
const SEARCH_HINTS: [(&str, &str); 11] = [
    ("allocate_ip", "give an app a public or private IP address"),
    ("release_ip", "release an app's IP address"),
    ("certificate_action", "TLS certificate for a custom domain"),
    ("remove_certificate", "remove a custom domain's certificate"),
    ("pool_status", "warm pool of per-user environments"),
    ("pool_fill", "pre-create warm pool environments"),
    ("claim_environment", "hand a pooled environment to a user"),
    (
        "release_environment",
        "give back a user's pooled environment",
    ),
    ("reap_expired", "destroy expired pool claims"),
    ("exec_command", "run a command inside a machine"),
    ("deploy_mcp_server", "host an npx/uvx MCP server on Fly"),
];

/// `_meta` for Claude Code's MCP tool search: `anthropic/alwaysLoad` (never deferred) or
/// `anthropic/searchHint` (extra words the search matches for a deferred tool). Key names
/// as Claude Code reads them (code.claude.com/docs/en/mcp, "Tool search"; checked in the
/// 2.1.328 binary, which maps them to its own `alwaysLoad` and `searchHint`). Other
/// clients ignore `_meta` keys they do not know.
fn tool_search_meta(name: &str) -> Option<JsonObject> {
    let mut meta = JsonObject::new();
    if ALWAYS_LOAD.contains(&name) {
        meta.insert("anthropic/alwaysLoad".to_owned(), Value::Bool(true));
    } else if let Some((_, hint)) = SEARCH_HINTS.iter().find(|(tool, _)| *tool == name) {
        meta.insert(
            "anthropic/searchHint".to_owned(),
            Value::String((*hint).to_owned()),
        );
    }
    (!meta.is_empty()).then_some(meta)
}
