//! The `hosting` toolset (opt-in): `deploy_mcp_server` puts a third-party MCP server
//! (`npx …` / `uvx …`) on Fly behind a per-deployment bearer key and returns the URL
//! and the client configuration.
//!
//! Two safeguards live here, because they are about the caller: what becomes public
//! is shown and must be confirmed (`confirm_public` = the app name) before anything
//! is created, and the key is delivered once — written to a file the caller names
//! (and from then on redacted from every output), or, without a file, in this one
//! result only. The key is never an argument, so the audit log never sees it.
//! The resources come from [`crate::workflows::provision`] through
//! [`crate::workflows::hosting`]; `teardown_environment` removes them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::tools::args::{AppName, Region};
use crate::tools::catalog::DeclarationError;
use crate::tools::{ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::{hosting as wf, provision, secret_refs::RefPolicy};

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![ToolDef::write(DEPLOY_MCP_SERVER, deploy_mcp_server)?])
}

const DEPLOY_MCP_SERVER: ToolInfo = ToolInfo {
    name: "deploy_mcp_server",
    title: "Deploy an MCP server on Fly",
    toolset: Toolset::Hosting,
    idempotent: false,
    description: "Run a third-party MCP server (an `npx …` or `uvx …` command, or any command \
with your own image) on Fly as a remote server only you can reach: creates a new app, a shared \
IPv4 and an IPv6, a volume (default 1 GB at /data), one machine on Fly's MCP image and an HTTPS \
service that stops when idle and starts on the next request, and a fresh bearer key stored as \
the app secret FLY_MCP_BEARER_TOKEN. The first call creates nothing: it shows what would become \
public; repeat it with confirm_public set to the app name. The key is returned once: written to \
key_file if you pass one (recommended), otherwise in this result only. Returns the URL and the \
MCP client configuration. Remove everything with teardown_environment.",
    narrow_hint: "",
};

fn default_volume_gb() -> u64 {
    1
}

fn default_volume_path() -> String {
    "/data".to_owned()
}

fn default_memory_mb() -> u32 {
    1024
}

/// What the machine does when no request has come for a while.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdleArg {
    /// Stop (cheapest; the next request boots it).
    #[default]
    Stop,
    /// Suspend (faster to wake; memory is kept).
    Suspend,
}

/// Arguments of `deploy_mcp_server`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
// The field docs are the tool's argument descriptions (what the model reads), not rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]
pub struct DeployMcpServerArgs {
    /// Name of the new app (global across Fly); the server is at https://APP.fly.dev/.
    #[schemars(length(min = 2, max = 63))]
    pub app: AppName,
    /// Org slug (the server's default org when left out).
    #[schemars(length(min = 1, max = 63))]
    pub org: Option<String>,
    /// Region (e.g. `iad`, `ams`).
    pub region: Region,
    /// The MCP server's command, e.g. ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"].
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 512)))]
    pub command: Vec<String>,
    /// Image to run (default flyio/mcp:latest, which runs npx and uvx servers).
    #[schemars(length(min = 1, max = 255))]
    pub image: Option<String>,
    /// Volume size in GB mounted at volume_path (default 1; 0 for no volume).
    #[serde(default = "default_volume_gb")]
    #[schemars(range(min = 0, max = 500))]
    pub volume_gb: u64,
    /// Where the volume is mounted (default /data).
    #[serde(default = "default_volume_path")]
    #[schemars(length(min = 2, max = 255))]
    pub volume_path: String,
    /// Memory of the machine in MB (default 1024, shared CPU).
    #[serde(default = "default_memory_mb")]
    #[schemars(range(min = 256, max = 8192))]
    pub memory_mb: u32,
    /// When idle: stop (default) or suspend.
    #[serde(default)]
    pub when_idle: IdleArg,
    /// Path of a new `.key` file (mode 0600) to write the bearer key to, under the
    /// operator's --secrets-dir; it must not exist. Without it the key is returned in
    /// this result, once.
    #[schemars(length(min = 2, max = 1024))]
    pub key_file: Option<String>,
    /// The app name, to confirm what the first call showed would become public.
    #[schemars(length(max = 63))]
    pub confirm_public: Option<String>,
}

/// Result of `deploy_mcp_server`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeployMcpServerOut {
    pub app: String,
    /// The server's URL (HTTP POST for requests, GET for replies, through Fly's wrapper).
    pub url: String,
    pub region: String,
    pub machine_id: String,
    pub volume_id: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// The app secret holding the key.
    pub key_secret: String,
    /// Where the key was written, when key_file was given.
    pub key_file: Option<String>,
    /// The key itself, only when no key_file was given. Shown once; not kept by this server.
    pub bearer_key: Option<String>,
    /// MCP client configuration (`fly mcp proxy` with the key).
    pub client_config: serde_json::Value,
    /// What is now public.
    pub exposed: Vec<String>,
    /// Resources created, `kind id` each.
    pub created: Vec<String>,
}

impl ToolOutput for DeployMcpServerOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "MCP server deployed: {} (app {}, region {}, machine {})\n",
            self.url, self.app, self.region, self.machine_id
        );
        out.push_str("public now:\n");
        for l in &self.exposed {
            out.push_str(&format!("- {l}\n"));
        }
        out.push_str(&format!("created: {}\n", self.created.join(", ")));
        match (&self.key_file, &self.bearer_key) {
            (Some(path), _) => out.push_str(&format!(
                "bearer key: written to {path} (app secret {})\n",
                self.key_secret
            )),
            (None, Some(key)) => out.push_str(&format!(
                "bearer key (shown once, not kept by this server; app secret {}): {key}\n",
                self.key_secret
            )),
            (None, None) => {}
        }
        out.push_str(&format!("client configuration:\n{}\n", self.client_config));
        out.push_str("remove it all with teardown_environment\n");
        out
    }
}

async fn deploy_mcp_server(
    ctx: ToolContext,
    args: DeployMcpServerArgs,
) -> Result<DeployMcpServerOut, ToolError> {
    let org = args
        .org
        .clone()
        .unwrap_or_else(|| ctx.default_org().to_owned());
    ctx.check_org(&org)?;
    let spec = wf::McpServerSpec {
        app: args.app.to_string(),
        org,
        region: args.region.to_string(),
        command: args.command.clone(),
        image: args.image.clone(),
        volume_gb: args.volume_gb,
        volume_path: args.volume_path.clone(),
        memory_mb: args.memory_mb,
        suspend_when_idle: args.when_idle == IdleArg::Suspend,
        wait_timeout: Duration::from_secs(120),
    };
    let exposure = wf::plan_exposure(&spec)?;
    let key_path = args
        .key_file
        .as_deref()
        .map(|raw| key_path(ctx.secret_refs(), raw))
        .transpose()?;
    wf::check_app_is_new(ctx.client(), &spec.app).await?;
    if args.confirm_public.as_deref() != Some(spec.app.as_str()) {
        return Err(ToolError::Refused {
            rule: "public exposure confirmation".to_owned(),
            message: format!(
                "{}Nothing has been created. To go ahead, repeat the same call with \"confirm_public\": \"{}\".",
                exposure.describe(),
                spec.app
            ),
        });
    }

    let key = wf::generate_key();
    // The file is written before anything exists, so a key that cannot be delivered
    // never guards a server; it is removed again if the deployment fails.
    if let Some(path) = &key_path {
        write_key_file(path, &key)?;
        ctx.register_secret(&key);
    }
    let env = wf::env_spec(&spec, &key);
    let client = ctx.client().clone();
    let provisioned = ctx
        .steer(
            |ctl| async move { provision::provision_environment(&client, &env, true, &ctl).await },
        )
        .await;
    let done = match provisioned {
        Ok(done) => done,
        Err(failure) => {
            if let Some(path) = &key_path {
                let _ = std::fs::remove_file(path);
            }
            return Err(failure.into_error(&spec.app, true).into());
        }
    };
    let name = format!("{}-mcp", spec.app);
    let (key_file, bearer_key, key_ref) = match &key_path {
        Some(path) => {
            let shown = path.display().to_string();
            let placeholder = format!("<the key in {shown}>");
            (Some(shown), None, placeholder)
        }
        None => {
            let k = key.expose_secret().to_owned();
            (None, Some(k.clone()), k)
        }
    };
    Ok(DeployMcpServerOut {
        app: done.app.clone(),
        url: spec.url(),
        region: done.region.clone(),
        machine_id: done.machine_id.clone(),
        volume_id: done.volume_id.clone(),
        ipv4: done.ipv4.clone(),
        ipv6: done.ipv6.clone(),
        key_secret: wf::BEARER_SECRET_NAME.to_owned(),
        key_file,
        bearer_key,
        client_config: wf::client_config(&name, &spec.url(), &key_ref),
        exposed: exposure.lines,
        created: done
            .created
            .iter()
            .map(|r| format!("{} {}", r.kind(), r.id()))
            .collect(),
    })
}

/// The key file's path: under the operator's secrets directory once symlinks and `..`
/// are resolved, never one of the server's credential files, and not there yet.
fn key_path(policy: &RefPolicy, raw: &str) -> Result<PathBuf, ToolError> {
    // The name is constrained so that a caller cannot use the key file to plant a
    // file that some other program reads by name (the content is random, the name is not).
    if Path::new(raw).extension().and_then(|e| e.to_str()) != Some("key") {
        return Err(ToolError::InvalidArgument {
            field: "key_file".to_owned(),
            message: format!("{raw}: the file name must end in .key"),
        });
    }
    let path = policy.check_write("key_file", raw)?;
    if path.symlink_metadata().is_ok() {
        return Err(ToolError::InvalidArgument {
            field: "key_file".to_owned(),
            message: format!("{raw} exists already; name a new file"),
        });
    }
    Ok(path)
}

/// Creates the file (never overwrites) readable by its owner only and writes the key.
fn write_key_file(path: &Path, key: &SecretString) -> Result<(), ToolError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(path).and_then(|mut f| {
        f.write_all(key.expose_secret().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    written.map_err(|e| ToolError::InvalidArgument {
        field: "key_file".to_owned(),
        message: format!("cannot write {}: {e}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let out = DeployMcpServerOut {
            app: "mcp-notes".into(),
            url: "https://mcp-notes.fly.dev".into(),
            region: "iad".into(),
            machine_id: "148e1d4ae77d89".into(),
            volume_id: Some("vol_4o2ejqnyx7y8gkpv".into()),
            ipv4: Some("66.241.124.17".into()),
            ipv6: Some("2a09:8280:1::4e:1a2b".into()),
            key_secret: "MCP_KEY".into(),
            key_file: Some("/home/ana/.config/mcp-notes.key".into()),
            bearer_key: None,
            client_config: serde_json::json!({"mcpServers": {"mcp-notes": {
                "command": "fly", "args": ["mcp", "proxy", "--url", "https://mcp-notes.fly.dev"]}}}),
            exposed: vec!["port 443 (https) → 8080".into()],
            created: vec!["app mcp-notes".into(), "machine 148e1d4ae77d89".into()],
        };
        insta::assert_snapshot!(out.render_text());
    }
}
