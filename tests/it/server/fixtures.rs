//! Fixture tools exercising every gate without touching Fly.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use fly_machines_mcp::tools::{
    Catalog, DestroyPlan, ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const CANARY_TOKEN: &str = "canary-token-9f8e7d6c5b4a";
pub const CANARY_SECRET: &str = "canary-secret-value-31337";

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoArgs {
    /// App name.
    pub app: String,
    /// Text to repeat.
    #[schemars(length(max = 100))]
    pub text: String,
    /// How many times.
    #[schemars(range(min = 1, max = 10))]
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EchoOut {
    pub app: String,
    pub text: String,
}

impl ToolOutput for EchoOut {
    fn render_text(&self) -> String {
        format!("{}: {}", self.app, self.text)
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppArgs {
    pub app: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyArgs {
    pub app: String,
    #[schemars(length(min = 1, max = 5))]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub app: String,
    pub ids: Vec<String>,
}

impl DestroyPlan for Plan {
    fn confirm_token(&self) -> &str {
        &self.app
    }
    fn describe(&self) -> String {
        self.ids
            .iter()
            .map(|id| format!("thing {id} of {}", self.app))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Destroyed {
    pub destroyed: Vec<String>,
}

impl ToolOutput for Destroyed {
    fn render_text(&self) -> String {
        format!("destroyed {}", self.destroyed.join(","))
    }
}

const fn info(name: &'static str, toolset: Toolset) -> ToolInfo {
    ToolInfo {
        name,
        title: name,
        toolset,
        idempotent: true,
        description: "fixture",
        narrow_hint: "ask for less",
    }
}

/// Counts how many times the destructive body ran.
#[derive(Debug, Clone, Default)]
pub struct Runs(pub Arc<AtomicUsize>);

impl Runs {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// `echo` (read), `leak` (read, prints the canaries), `big` (read, 100 KB),
/// `make_thing` (write), `destroy_thing` (destructive).
pub fn catalog(runs: Runs) -> Catalog {
    let tools = vec![
        ToolDef::read(info("echo", Toolset::Observe), |_ctx: ToolContext, a: EchoArgs| async move {
            Ok::<_, ToolError>(EchoOut {
                app: a.app,
                text: a.text.repeat(a.count as usize),
            })
        })
        .unwrap(),
        ToolDef::read(info("leak", Toolset::Observe), |ctx: ToolContext, a: AppArgs| async move {
            ctx.register_secret(&secrecy::SecretString::from(CANARY_SECRET.to_owned()));
            tracing::warn!("leaking {CANARY_TOKEN} and {CANARY_SECRET} into a log line");
            Ok::<_, ToolError>(EchoOut {
                app: a.app,
                text: format!(
                    "token={CANARY_TOKEN} secret={CANARY_SECRET} fly=fm2_abcdefghij pem=-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
                ),
            })
        })
        .unwrap(),
        ToolDef::read(info("big", Toolset::Observe), |_ctx: ToolContext, a: AppArgs| async move {
            Ok::<_, ToolError>(EchoOut {
                app: a.app,
                text: "0123456789abcdef\n".repeat(6000),
            })
        })
        .unwrap(),
        ToolDef::write(info("make_thing", Toolset::Provision), |_ctx: ToolContext, a: AppArgs| async move {
            Ok::<_, ToolError>(EchoOut {
                app: a.app,
                text: "made".into(),
            })
        })
        .unwrap(),
        ToolDef::destructive(
            info("destroy_thing", Toolset::Provision),
            |_ctx: ToolContext, a: DestroyArgs| async move {
                Ok::<_, ToolError>(Plan {
                    app: a.app,
                    ids: a.ids,
                })
            },
            move |_ctx: ToolContext, _a: DestroyArgs, plan: Plan| {
                let runs = runs.clone();
                async move {
                    runs.0.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ToolError>(Destroyed { destroyed: plan.ids })
                }
            },
        )
        .unwrap(),
    ];
    Catalog::from_tools(tools).unwrap()
}
