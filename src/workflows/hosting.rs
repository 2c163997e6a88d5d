//! Hosting a third-party MCP server on Fly (`deploy_mcp_server`): the recipe of Fly's
//! "per-user dev environment" guide as one workflow — an app, a shared IPv4 and an
//! IPv6, a volume, one machine running an `npx …` / `uvx …` MCP server on an image
//! able to run it behind Fly's MCP wrapper, and an HTTP service that stops when idle
//! and starts on demand — plus a per-deployment bearer key stored as an app secret
//! before the machine exists, so the server is never reachable without it.
//!
//! The resources are made by [`super::provision`] (this file only describes them) and
//! removed by [`super::teardown`]. Knows `crate::fly` types for the machine's
//! services; never sees MCP or HTTP.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::fly;

use super::Error;
use super::provision::{AppSecrets, EnvSpec, GuestSpec, VolumeSpec};

/// The app secret the MCP wrapper in [`DEFAULT_IMAGE`] reads its bearer key from.
pub const BEARER_SECRET_NAME: &str = "FLY_MCP_BEARER_TOKEN";
/// Fly's image able to run `npx` and `uvx` MCP servers behind its HTTP wrapper.
pub const DEFAULT_IMAGE: &str = "flyio/mcp:latest";
/// The port the wrapper listens on inside the machine.
pub const INTERNAL_PORT: u16 = 8080;
/// Bytes of randomness in a bearer key (hex-encoded, so twice as many characters).
const KEY_BYTES: usize = 32;

/// What to deploy.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerSpec {
    pub app: String,
    pub org: String,
    pub region: String,
    /// The MCP server's command, e.g. `["npx", "-y", "@modelcontextprotocol/server-filesystem", "/data"]`.
    pub command: Vec<String>,
    /// The image; [`DEFAULT_IMAGE`] when `None`.
    pub image: Option<String>,
    /// Volume size in GB mounted at `volume_path`; no volume when 0.
    pub volume_gb: u64,
    pub volume_path: String,
    pub memory_mb: u32,
    /// Suspend rather than stop when idle.
    pub suspend_when_idle: bool,
    pub wait_timeout: Duration,
}

impl McpServerSpec {
    /// `https://APP.fly.dev/`.
    pub fn url(&self) -> String {
        format!("https://{}.fly.dev/", self.app)
    }

    fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(DEFAULT_IMAGE)
    }
}

/// What the deployment will make reachable from the internet, shown before
/// anything is created.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposure {
    pub app: String,
    pub url: String,
    /// One line per public thing (addresses, ports, what answers, how it is guarded).
    pub lines: Vec<String>,
}

impl Exposure {
    /// The exposure as one paragraph.
    pub fn describe(&self) -> String {
        let mut out = format!("deploying app {} exposes publicly:\n", self.app);
        for l in &self.lines {
            out.push_str("- ");
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// Checks the spec and says what will be public. Reads nothing.
pub fn plan_exposure(spec: &McpServerSpec) -> Result<Exposure, Error> {
    check(spec)?;
    let mut lines = vec![
        format!(
            "{} on a shared IPv4 and a dedicated IPv6 (ports 80, redirected to https, and 443)",
            spec.url()
        ),
        format!(
            "the MCP server `{}` (image {}) with every tool it offers to whoever holds the key",
            spec.command.join(" "),
            spec.image()
        ),
        format!("guarded by a new bearer key (app secret {BEARER_SECRET_NAME}), returned once"),
    ];
    if spec.volume_gb > 0 {
        lines.push(format!(
            "a {} GB volume mounted at {}: what the server can read and write there is reachable through its tools",
            spec.volume_gb, spec.volume_path
        ));
    }
    Ok(Exposure {
        app: spec.app.clone(),
        url: spec.url(),
        lines,
    })
}

fn check(spec: &McpServerSpec) -> Result<(), Error> {
    let program = spec.command.first().map(String::as_str).unwrap_or_default();
    if program.trim().is_empty() {
        return Err(Error::Invalid {
            field: "command".to_owned(),
            rule: "name the MCP server's command, e.g. [\"npx\", \"-y\", \"@modelcontextprotocol/server-everything\"]".to_owned(),
        });
    }
    let launcher = matches!(program, "npx" | "uvx");
    if !launcher && spec.image.is_none() {
        return Err(Error::Invalid {
            field: "command".to_owned(),
            rule: format!(
                "the default image {DEFAULT_IMAGE} runs `npx …` and `uvx …` servers; for `{program}` pass an image that contains it"
            ),
        });
    }
    if spec.volume_gb > 0 && !spec.volume_path.starts_with('/') {
        return Err(Error::Invalid {
            field: "volume_path".to_owned(),
            rule: "an absolute path, e.g. /data".to_owned(),
        });
    }
    Ok(())
}

/// A fresh bearer key: 32 random bytes from the thread's CSPRNG, hex-encoded.
pub fn generate_key() -> SecretString {
    let mut bytes = [0u8; KEY_BYTES];
    rand::fill(&mut bytes);
    SecretString::from(hex::encode(bytes))
}

/// The services of the recipe: HTTP on 80 (redirected) and 443 (TLS) to the
/// wrapper's port, stopped or suspended when idle and started on demand.
pub fn services(suspend_when_idle: bool) -> Vec<fly::MachineService> {
    vec![fly::MachineService {
        protocol: "tcp".to_owned(),
        internal_port: INTERNAL_PORT,
        ports: vec![
            fly::MachinePort {
                port: Some(80),
                handlers: vec!["http".to_owned()],
                force_https: Some(true),
                ..fly::MachinePort::default()
            },
            fly::MachinePort {
                port: Some(443),
                handlers: vec!["http".to_owned(), "tls".to_owned()],
                ..fly::MachinePort::default()
            },
        ],
        autostop: Some(if suspend_when_idle {
            fly::AutostopMode::Suspend
        } else {
            fly::AutostopMode::Stop
        }),
        autostart: Some(true),
        min_machines_running: Some(0),
        ..fly::MachineService::default()
    }]
}

/// The environment [`super::provision`] builds for the deployment, with the bearer
/// key as an app secret set before the machine is created.
pub fn env_spec(spec: &McpServerSpec, key: &SecretString) -> EnvSpec {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        BEARER_SECRET_NAME.to_owned(),
        SecretString::from(key.expose_secret().to_owned()),
    );
    EnvSpec {
        app: spec.app.clone(),
        org: spec.org.clone(),
        region: spec.region.clone(),
        image: spec.image().to_owned(),
        cmd: Some(spec.command.clone()),
        guest: GuestSpec::Custom {
            cpu_kind: "shared".to_owned(),
            cpus: 1,
            memory_mb: spec.memory_mb,
        },
        volume: (spec.volume_gb > 0).then(|| VolumeSpec {
            name: "data".to_owned(),
            size_gb: spec.volume_gb,
            path: spec.volume_path.clone(),
            auto_extend: Some((80, 1, 100)),
        }),
        services: services(spec.suspend_when_idle),
        checks: BTreeMap::new(),
        env: BTreeMap::new(),
        user: None,
        expires_at: None,
        machine_name: format!("{}-mcp", spec.app),
        public_ips: true,
        idempotency_key: None,
        wait_timeout: spec.wait_timeout,
        secrets: AppSecrets(secrets),
    }
}

/// Refuses an app that already exists: a second deployment would generate a key the
/// running machine never sees. Reads only.
pub async fn check_app_is_new(client: &fly::Client, app: &str) -> Result<(), Error> {
    match client.get_app(app).await {
        Ok(_) => Err(Error::Refused {
            rule: "one deployment per app".to_owned(),
            message: format!(
                "app {app} exists already; choose another name, or remove it first with teardown_environment"
            ),
        }),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) if e.status() == Some(403) => Err(Error::Refused {
            rule: "app names are global".to_owned(),
            message: format!("the name {app} is taken by an app this token cannot see"),
        }),
        Err(e) => Err(Error::fly(format!("reading app {app}"))(e)),
    }
}

/// How an MCP client reaches the deployment. `key` is what to put where the key
/// goes (the key itself, or a placeholder naming where it was written).
pub fn client_config(name: &str, url: &str, key: &str) -> serde_json::Value {
    serde_json::json!({
        "mcpServers": {
            name: {
                "command": "fly",
                "args": ["mcp", "proxy", "--url", url, "--bearer-token", key],
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(command: &[&str]) -> McpServerSpec {
        McpServerSpec {
            app: "mcp-demo".into(),
            org: "personal".into(),
            region: "iad".into(),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            image: None,
            volume_gb: 1,
            volume_path: "/data".into(),
            memory_mb: 1024,
            suspend_when_idle: false,
            wait_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn npx_and_uvx_run_on_the_default_image_others_need_one() {
        assert!(plan_exposure(&spec(&["npx", "-y", "pkg"])).is_ok());
        assert!(plan_exposure(&spec(&["uvx", "mcp-server-time"])).is_ok());
        let err = plan_exposure(&spec(&["python3", "server.py"])).unwrap_err();
        assert!(err.to_string().contains("pass an image"), "{err}");
        let mut s = spec(&["python3", "server.py"]);
        s.image = Some("registry.example/my-mcp:1".into());
        assert!(plan_exposure(&s).is_ok());
    }

    #[test]
    fn exposure_names_url_ips_key_and_volume() {
        let e = plan_exposure(&spec(&["npx", "-y", "pkg"])).unwrap();
        let text = e.describe();
        assert!(text.contains("https://mcp-demo.fly.dev/"), "{text}");
        assert!(text.contains("IPv4") && text.contains("IPv6"), "{text}");
        assert!(text.contains(BEARER_SECRET_NAME), "{text}");
        assert!(text.contains("/data"), "{text}");
    }

    #[test]
    fn keys_are_fresh_and_long() {
        let (a, b) = (generate_key(), generate_key());
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }

    #[test]
    fn env_spec_is_the_recipe() {
        let key = generate_key();
        let e = env_spec(&spec(&["npx", "-y", "pkg"]), &key);
        assert_eq!(e.image, DEFAULT_IMAGE);
        assert_eq!(e.cmd.as_deref().unwrap(), ["npx", "-y", "pkg"]);
        assert!(e.public_ips);
        assert_eq!(e.volume.as_ref().unwrap().path, "/data");
        let svc = &e.services[0];
        assert_eq!(svc.internal_port, INTERNAL_PORT);
        assert_eq!(svc.autostop, Some(fly::AutostopMode::Stop));
        assert_eq!(svc.autostart, Some(true));
        assert_eq!(
            e.secrets.0[BEARER_SECRET_NAME].expose_secret(),
            key.expose_secret()
        );
    }
}
