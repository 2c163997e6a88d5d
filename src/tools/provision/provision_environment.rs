//! `provision_environment`: a complete environment (app, IPs, volume, machine) in one call.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::{collections::BTreeMap, time::Duration};

use super::{CpuKind, ResourceOut, resource_out};
use crate::fly;
use crate::tools::args::{AppName, NAME_PATTERN, Region};
use crate::tools::render::{millis, rows, table_row};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::provision::{self as prov, EnvSpec};

pub(super) const PROVISION_ENVIRONMENT: ToolInfo = ToolInfo {
    name: "provision_environment",
    title: "Provision an environment",
    toolset: Toolset::Provision,
    idempotent: true,
    description: "A complete environment in one call: the app (created if missing; refused if another \
owner's), shared IPv4 + IPv6 and a volume in parallel, then one machine (image, size, mount, \
services, autostop, checks, env, owner/expiry), waited until started. Returns the URL and \
every id. `dry_run` only plans and prices. Repeating it converges. On failure removes only \
what it created (`rollback: false`: reports what is left).",
    narrow_hint: "the report is small; nothing to narrow",
};

/// What the proxy does with an idle machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Autostop {
    #[default]
    Off,
    Stop,
    Suspend,
}

/// The volume to create (or reuse, by name) and mount.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeArgs {
    /// Volume name (default `data`).
    #[schemars(length(min = 1, max = 30), pattern(r"^[a-z0-9_]+$"))]
    pub name: Option<String>,
    /// Size in GB (default 1).
    #[schemars(range(min = 1, max = 500))]
    pub size_gb: Option<u64>,
    /// Mount path (default `/data`).
    #[schemars(length(min = 2, max = 200), pattern(r"^/"))]
    pub path: Option<String>,
    /// Grow by 1 GB at 80% full, up to this many GB.
    #[schemars(range(min = 1, max = 500))]
    pub auto_extend_limit_gb: Option<u32>,
}

/// A public port of a service.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortArgs {
    pub port: u16,
    /// e.g. `["http"]` or `["tls", "http"]`.
    #[serde(default)]
    pub handlers: Vec<String>,
    #[serde(default)]
    pub force_https: bool,
}

/// A service behind Fly's proxy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    pub internal_port: u16,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
    #[schemars(length(max = 8))]
    pub ports: Vec<PortArgs>,
}

/// A health check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    #[schemars(length(min = 1, max = 30))]
    pub name: String,
    /// `http` or `tcp`.
    #[schemars(pattern(r"^(http|tcp)$"))]
    pub r#type: String,
    pub port: u16,
    /// HTTP path (http checks).
    pub path: Option<String>,
    /// Go duration, e.g. `15s`.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub grace_period: Option<String>,
}

/// Arguments of `provision_environment`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionArgs {
    /// App name (created if missing).
    #[schemars(length(min = 2, max = 63))]
    pub app: AppName,
    /// Org slug (default: the server's).
    #[schemars(length(min = 1, max = 63))]
    pub org: Option<String>,
    /// Region, e.g. `iad` (see platform_info).
    #[schemars(length(min = 3, max = 4), pattern(r"^[a-z]{3,4}$"))]
    pub region: Region,
    /// Container image, e.g. `nginx:latest`.
    #[schemars(length(min = 1, max = 300))]
    pub image: String,
    /// Command replacing the image's CMD.
    #[schemars(length(max = 50))]
    pub cmd: Option<Vec<String>>,
    /// VM size, e.g. `shared-cpu-1x` (see platform_info).
    #[schemars(length(min = 3, max = 40))]
    pub vm_size: Option<String>,
    /// CPUs (instead of vm_size).
    #[schemars(range(min = 1, max = 16))]
    pub cpus: Option<u32>,
    /// Memory in MB, a multiple of 256 (with vm_size: above the preset's).
    #[schemars(range(min = 256, max = 131072))]
    pub memory_mb: Option<u32>,
    /// CPU kind with `cpus` (default shared).
    pub cpu_kind: Option<CpuKind>,
    /// A volume to create (or reuse by name) and mount.
    pub volume: Option<VolumeArgs>,
    /// Port the app listens on, served on 443 and 80 (to HTTPS); or give `services`.
    pub internal_port: Option<u16>,
    /// Services in full, instead of internal_port: [{internal_port, protocol (`tcp` or
    /// `udp`), ports: [{port, handlers (e.g. `["tls", "http"]`), force_https}]}].
    #[serde(default)]
    #[schemars(schema_with = "crate::tools::schema::objects_schema", length(max = 8))]
    pub services: Option<Vec<ServiceArgs>>,
    /// When idle: `off` (default), `stop` or `suspend`.
    #[serde(default)]
    pub autostop: Autostop,
    /// Start on a request (default true).
    pub autostart: Option<bool>,
    /// Health checks: [{name, type (`http` or `tcp`), port, path, interval, timeout,
    /// grace_period}], durations in Go form (e.g. `15s`).
    #[serde(default)]
    #[schemars(schema_with = "crate::tools::schema::objects_schema", length(max = 10))]
    pub checks: Option<Vec<CheckArgs>>,
    /// Environment variables (secrets: set_secrets).
    pub env: Option<BTreeMap<String, String>>,
    /// Who it is for (user id or email; kept in metadata).
    #[schemars(length(max = 200))]
    pub owner: Option<String>,
    /// Reapable after: an RFC 3339 time or a duration from now (`24h`).
    #[schemars(length(max = 40))]
    pub expires_at: Option<String>,
    /// Machine name (default `main`).
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub machine_name: Option<String>,
    /// Shared IPv4 and IPv6 addresses (default true).
    pub public_ips: Option<bool>,
    /// Idempotency key (default: from org, app and machine name).
    #[schemars(length(min = 1, max = 100))]
    pub idempotency_key: Option<String>,
    /// Seconds to wait for it to start (default 180).
    #[schemars(range(min = 1, max = 900))]
    pub wait_timeout_s: Option<u32>,
    /// On failure remove what this call made (default true).
    pub rollback: Option<bool>,
    /// Only plan and price; create nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// One planned step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanStepOut {
    pub kind: String,
    /// `create` or `reuse`.
    pub action: String,
    pub detail: String,
}

/// Result of `provision_environment`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProvisionReport {
    pub app: String,
    pub url: String,
    /// `provisioned` or `planned` (dry run).
    pub status: String,
    pub machine_id: Option<String>,
    pub machine_state: Option<String>,
    pub volume_id: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub region: String,
    /// Created by this call.
    pub created: Vec<ResourceOut>,
    /// Already there and reused.
    pub reused: Vec<ResourceOut>,
    /// Dry run: what would be created or reused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanStepOut>,
    /// Estimated cost per month running all month, USD.
    pub estimated_monthly_usd: Option<f64>,
    pub cost_basis: Option<String>,
    pub idempotency_key: String,
    pub elapsed_ms: u64,
}

table_row!(PlanStepOut, |s| {
    "RESOURCE": s.kind.clone(),
    "ACTION": s.action.clone(),
    "DETAIL": s.detail.clone(),
});

impl ToolOutput for ProvisionReport {
    fn render_text(&self) -> String {
        let mut out = format!("app {} ({}): {}\n", self.app, self.url, self.status);
        if !self.plan.is_empty() {
            out.push_str(&rows(&self.plan));
            out.push('\n');
        }
        if let Some(id) = &self.machine_id {
            out.push_str(&format!(
                "machine {id} {} in {}\n",
                self.machine_state.as_deref().unwrap_or("?"),
                self.region
            ));
        }
        if let Some(v) = &self.volume_id {
            out.push_str(&format!("volume {v}\n"));
        }
        for (label, ip) in [("ipv4", &self.ipv4), ("ipv6", &self.ipv6)] {
            if let Some(ip) = ip {
                out.push_str(&format!("{label} {ip}\n"));
            }
        }
        let list = |rs: &[ResourceOut]| {
            rs.iter()
                .map(|r| format!("{} {}", r.kind, r.id))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.created.is_empty() {
            out.push_str(&format!("created: {}\n", list(&self.created)));
        }
        if !self.reused.is_empty() {
            out.push_str(&format!("reused: {}\n", list(&self.reused)));
        }
        if let Some(usd) = self.estimated_monthly_usd {
            out.push_str(&format!(
                "estimated ${usd:.2}/month ({})\n",
                self.cost_basis.as_deref().unwrap_or("")
            ));
        }
        out.push_str(&format!("idempotency key {}", self.idempotency_key));
        out
    }
}

fn env_spec(ctx: &ToolContext, a: &ProvisionArgs) -> Result<EnvSpec, ToolError> {
    let org = a
        .org
        .clone()
        .unwrap_or_else(|| ctx.default_org().to_owned());
    ctx.check_org(&org)?;
    let guest = prov::GuestRequest {
        vm_size: a.vm_size.clone(),
        cpus: a.cpus,
        memory_mb: a.memory_mb,
        cpu_kind: a.cpu_kind.map(Into::into),
    }
    .into_spec()
    .map_err(|e| ToolError::InvalidArgument {
        field: e.field.to_owned(),
        message: e.message,
    })?;
    let services = prov::ProxyRequest {
        services: a
            .services
            .as_ref()
            .map(|list| list.iter().map(prov::ServiceRequest::from).collect()),
        internal_port: a.internal_port,
        autostop: a.autostop.into(),
        autostart: a.autostart,
    }
    .into_services();
    let checks = prov::checks(a.checks.iter().flatten().map(prov::CheckRequest::from));
    let expires_at = a.expires_at.as_deref().map(expiry).transpose()?;
    Ok(EnvSpec {
        app: a.app.to_string(),
        org,
        region: a.region.to_string(),
        image: a.image.clone(),
        cmd: a.cmd.clone().filter(|c| !c.is_empty()),
        guest,
        volume: a.volume.as_ref().map(|v| {
            prov::VolumeRequest {
                name: v.name.clone(),
                size_gb: v.size_gb,
                path: v.path.clone(),
                auto_extend_limit_gb: v.auto_extend_limit_gb,
            }
            .into_spec()
        }),
        services,
        checks,
        env: a.env.clone().unwrap_or_default(),
        user: a.owner.clone(),
        expires_at,
        machine_name: a.machine_name.clone().unwrap_or_else(|| "main".to_owned()),
        public_ips: a.public_ips.unwrap_or(true),
        idempotency_key: a.idempotency_key.clone(),
        wait_timeout: Duration::from_secs(u64::from(a.wait_timeout_s.unwrap_or(180))),
        secrets: prov::AppSecrets::default(),
    })
}

impl From<Autostop> for fly::AutostopMode {
    fn from(a: Autostop) -> Self {
        match a {
            Autostop::Off => fly::AutostopMode::Off,
            Autostop::Stop => fly::AutostopMode::Stop,
            Autostop::Suspend => fly::AutostopMode::Suspend,
        }
    }
}

impl From<&ServiceArgs> for prov::ServiceRequest {
    fn from(s: &ServiceArgs) -> Self {
        prov::ServiceRequest {
            internal_port: s.internal_port,
            protocol: s.protocol.clone(),
            ports: s
                .ports
                .iter()
                .map(|p| prov::PortRequest {
                    port: p.port,
                    handlers: p.handlers.clone(),
                    force_https: p.force_https,
                })
                .collect(),
        }
    }
}

impl From<&CheckArgs> for prov::CheckRequest {
    fn from(c: &CheckArgs) -> Self {
        prov::CheckRequest {
            name: c.name.clone(),
            kind: c.r#type.clone(),
            port: c.port,
            path: c.path.clone(),
            interval: c.interval.clone(),
            timeout: c.timeout.clone(),
            grace_period: c.grace_period.clone(),
        }
    }
}

/// An RFC 3339 time, or a duration from now (`24h`, `7d`), as RFC 3339.
fn expiry(text: &str) -> Result<String, ToolError> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.to_string());
    }
    let invalid = |message: String| ToolError::InvalidArgument {
        field: "expires_at".to_owned(),
        message,
    };
    let d = humantime::parse_duration(text).map_err(|e| {
        invalid(format!(
            "'{text}' is neither an RFC 3339 time nor a duration like 24h or 7d ({e})"
        ))
    })?;
    let d = jiff::SignedDuration::try_from(d).map_err(|e| invalid(e.to_string()))?;
    jiff::Timestamp::now()
        .checked_add(d)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .map_err(|e| invalid(e.to_string()))
}

pub(super) async fn provision_environment(
    ctx: ToolContext,
    args: ProvisionArgs,
) -> Result<ProvisionReport, ToolError> {
    let spec = env_spec(&ctx, &args)?;
    if args.dry_run {
        let plan = prov::plan_environment(ctx.client(), &spec).await?;
        return Ok(ProvisionReport {
            app: plan.app,
            url: plan.url,
            status: "planned".to_owned(),
            machine_id: None,
            machine_state: None,
            volume_id: None,
            ipv4: None,
            ipv6: None,
            region: spec.region.clone(),
            created: Vec::new(),
            reused: Vec::new(),
            plan: plan
                .steps
                .into_iter()
                .map(|s| PlanStepOut {
                    kind: s.kind.to_owned(),
                    action: s.action.as_str().to_owned(),
                    detail: s.detail,
                })
                .collect(),
            estimated_monthly_usd: plan.cost.as_ref().map(|c| c.total_usd),
            cost_basis: plan.cost.map(|c| c.basis),
            idempotency_key: plan.idempotency_key,
            elapsed_ms: 0,
        });
    }
    let rollback = args.rollback.unwrap_or(true);
    let client = ctx.client().clone();
    let result = ctx
        .steer(
            |ctl| async move { prov::provision_environment(&client, &spec, rollback, &ctl).await },
        )
        .await;
    match result {
        Ok(p) => Ok(ProvisionReport {
            app: p.app,
            url: p.url,
            status: "provisioned".to_owned(),
            machine_id: Some(p.machine_id),
            machine_state: Some(p.machine_state),
            volume_id: p.volume_id,
            ipv4: p.ipv4,
            ipv6: p.ipv6,
            region: p.region,
            created: p.created.iter().map(resource_out).collect(),
            reused: p.reused.iter().map(resource_out).collect(),
            plan: Vec::new(),
            estimated_monthly_usd: None,
            cost_basis: None,
            idempotency_key: p.idempotency_key,
            elapsed_ms: millis(p.elapsed),
        }),
        Err(failure) => Err(failure.into_error(&args.app, rollback).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(kind: &str, id: &str) -> ResourceOut {
        ResourceOut {
            kind: kind.into(),
            id: id.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn texts_the_model_reads() {
        let provisioned = ProvisionReport {
            app: "dev-alice".into(),
            url: "https://dev-alice.fly.dev".into(),
            status: "provisioned".into(),
            machine_id: Some("148e1d4ae77d89".into()),
            machine_state: Some("started".into()),
            volume_id: Some("vol_4o2ejqnyx7y8gkpv".into()),
            ipv4: Some("66.241.124.17".into()),
            ipv6: Some("2a09:8280:1::4e:1a2b".into()),
            region: "iad".into(),
            created: vec![
                resource("machine", "148e1d4ae77d89"),
                resource("volume", "vol_4o2ejqnyx7y8gkpv"),
            ],
            reused: vec![resource("app", "dev-alice")],
            plan: Vec::new(),
            estimated_monthly_usd: None,
            cost_basis: None,
            idempotency_key: "prov-dev-alice-7f3a".into(),
            elapsed_ms: 5120,
        };
        let planned = ProvisionReport {
            status: "planned".into(),
            machine_id: None,
            machine_state: None,
            volume_id: None,
            ipv4: None,
            ipv6: None,
            created: Vec::new(),
            reused: Vec::new(),
            plan: vec![
                PlanStepOut {
                    kind: "app".into(),
                    action: "create".into(),
                    detail: "dev-alice in org personal".into(),
                },
                PlanStepOut {
                    kind: "machine".into(),
                    action: "create".into(),
                    detail: "shared-cpu-1x, nginx:latest".into(),
                },
            ],
            estimated_monthly_usd: Some(2.32),
            cost_basis: Some("shared-cpu-1x always on, 1 GB volume".into()),
            ..provisioned.clone()
        };
        insta::assert_snapshot!([provisioned.render_text(), planned.render_text()].join("\n---\n"));
    }
}
