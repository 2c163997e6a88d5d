//! The `network` toolset (opt-in): `allocate_ip`, `release_ip` (destructive),
//! `certificate_action` (add / check / show an ACME certificate, with the DNS records
//! to create and what is still missing) and `remove_certificate` (destructive).
//!
//! The calls and the reading of Fly's certificate answer live in
//! [`crate::workflows::network`]; this file shapes arguments, plans and results.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::args::{AppName, Region};
use crate::tools::catalog::DeclarationError;
use crate::tools::render::{rows, table_row};
use crate::tools::{DestroyPlan, ToolContext, ToolDef, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::network as wf;

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::write(ALLOCATE_IP, allocate_ip)?,
        ToolDef::destructive(RELEASE_IP, plan_release_ip, release_ip)?,
        ToolDef::write(CERTIFICATE_ACTION, certificate_action)?,
        ToolDef::destructive(
            REMOVE_CERTIFICATE,
            plan_remove_certificate,
            remove_certificate,
        )?,
    ])
}

const ALLOCATE_IP: ToolInfo = ToolInfo {
    name: "allocate_ip",
    title: "Allocate an IP address",
    toolset: Toolset::Network,
    idempotent: false,
    description: "Give an app an address: shared_v4 (free, one per app), v4 (dedicated, billed), \
v6 (dedicated, free), private_v6 (Flycast: reachable only from the org's private network), or a \
static egress address for outbound traffic (egress_v4, egress_v6, egress_pair; pass a region). \
A public address (shared_v4, v4, v6) makes the app's services reachable from the internet. Each \
call except shared_v4 allocates a new address. Release with release_ip.",
    narrow_hint: "",
};

const RELEASE_IP: ToolInfo = ToolInfo {
    name: "release_ip",
    title: "Release an IP address",
    toolset: Toolset::Network,
    idempotent: true,
    description: "Release one address of an app (as shown by allocate_ip or app_status). Traffic \
to it stops reaching the app and a dedicated address cannot be got back. Confirmed before \
anything is released; an address the app does not have is an error listing the ones it has.",
    narrow_hint: "",
};

const CERTIFICATE_ACTION: ToolInfo = ToolInfo {
    name: "certificate_action",
    title: "Add or check a TLS certificate",
    toolset: Toolset::Network,
    idempotent: true,
    description: "Manage the Let's Encrypt certificate of a custom hostname on an app. action \
add: request it (adding an existing hostname just shows it); check: ask Fly to re-run the DNS and \
ACME checks; show: read only. Every answer lists the DNS records to create (A/AAAA or CNAME to \
point the hostname at the app, the _acme-challenge CNAME, the ownership TXT) and, until the \
certificate is active, what is still missing. The app needs a public address first \
(allocate_ip). Remove with remove_certificate.",
    narrow_hint: "",
};

const REMOVE_CERTIFICATE: ToolInfo = ToolInfo {
    name: "remove_certificate",
    title: "Remove a TLS certificate",
    toolset: Toolset::Network,
    idempotent: true,
    description: "Remove the certificate of a custom hostname from an app: HTTPS on that \
hostname stops working. Confirmed before anything is removed. Does not touch DNS records or \
the app's fly.dev hostname.",
    narrow_hint: "",
};

/// Kind of address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpKindArg {
    /// Shared public IPv4 (free, one per app).
    SharedV4,
    /// Dedicated public IPv4 (billed monthly).
    V4,
    /// Dedicated public IPv6.
    V6,
    /// Flycast private IPv6 (org network only).
    PrivateV6,
    /// Static egress IPv4.
    EgressV4,
    /// Static egress IPv6.
    EgressV6,
    /// Static egress IPv4 + IPv6.
    EgressPair,
}

impl From<IpKindArg> for wf::IpKind {
    fn from(k: IpKindArg) -> Self {
        match k {
            IpKindArg::SharedV4 => wf::IpKind::SharedV4,
            IpKindArg::V4 => wf::IpKind::V4,
            IpKindArg::V6 => wf::IpKind::V6,
            IpKindArg::PrivateV6 => wf::IpKind::PrivateV6,
            IpKindArg::EgressV4 => wf::IpKind::EgressV4,
            IpKindArg::EgressV6 => wf::IpKind::EgressV6,
            IpKindArg::EgressPair => wf::IpKind::EgressPair,
        }
    }
}

/// Arguments of `allocate_ip`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateIpArgs {
    /// App name.
    pub app: AppName,
    /// Kind of address.
    pub kind: IpKindArg,
    /// Region for a regional or egress address (e.g. `ams`); anycast when left out.
    pub region: Option<Region>,
    /// Flycast network name (private_v6 only; the org's default network when left out).
    #[schemars(length(min = 1, max = 63))]
    pub network: Option<String>,
}

/// An address of an app.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IpOut {
    pub address: String,
    /// `shared_v4`, `v4`, `v6`, `private_v6`, `egress_v4` or `egress_v6`.
    pub kind: String,
    /// `global` for anycast.
    pub region: String,
    /// Flycast network, for private addresses.
    pub network: Option<String>,
}

impl From<wf::IpAddress> for IpOut {
    fn from(ip: wf::IpAddress) -> Self {
        IpOut {
            address: ip.address,
            kind: ip.kind,
            region: ip.region,
            network: ip.network,
        }
    }
}

table_row!(IpOut, |i| {
    "ADDRESS": i.address.clone(),
    "KIND": i.kind.clone(),
    "REGION": i.region.clone(),
    "NETWORK": i.network.clone().unwrap_or_default(),
});

/// Result of `allocate_ip`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AllocateIpOut {
    pub app: String,
    pub addresses: Vec<IpOut>,
    /// True when the address reaches the app from the internet.
    pub public: bool,
}

impl ToolOutput for AllocateIpOut {
    fn render_text(&self) -> String {
        format!(
            "app {}: allocated{}\n{}",
            self.app,
            if self.public {
                " (public: the app's services are reachable from the internet)"
            } else {
                ""
            },
            rows(&self.addresses)
        )
    }
}

async fn allocate_ip(ctx: ToolContext, args: AllocateIpArgs) -> Result<AllocateIpOut, ToolError> {
    let kind = wf::IpKind::from(args.kind);
    let req = wf::IpRequest {
        app: args.app.to_string(),
        kind,
        region: args.region.map(String::from),
        network: args.network,
    };
    let ips = wf::allocate_ip(ctx.client(), &req).await?;
    Ok(AllocateIpOut {
        app: args.app.into(),
        addresses: ips.into_iter().map(IpOut::from).collect(),
        public: kind.is_public(),
    })
}

/// Arguments of `release_ip`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIpArgs {
    /// App name.
    pub app: AppName,
    /// The address to release, exactly as listed (e.g. `2a09:8280:1::3` or `66.241.124.7`).
    #[schemars(length(min = 2, max = 64))]
    pub address: String,
}

/// What `release_ip` would release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseIpPlan {
    pub app: String,
    pub address: IpOut,
    #[serde(skip)]
    found: wf::IpAddress,
}

impl DestroyPlan for ReleaseIpPlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        format!(
            "address {} ({}, {}) of app {}: traffic to it stops reaching the app{}",
            self.address.address,
            self.address.kind,
            self.address.region,
            self.app,
            if self.address.kind == "v4" {
                "; a dedicated IPv4 cannot be got back"
            } else {
                ""
            }
        )
    }
}

/// Result of `release_ip`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReleaseIpOut {
    pub app: String,
    pub released: IpOut,
}

impl ToolOutput for ReleaseIpOut {
    fn render_text(&self) -> String {
        format!(
            "app {}: released {} ({})",
            self.app, self.released.address, self.released.kind
        )
    }
}

async fn plan_release_ip(
    ctx: ToolContext,
    args: ReleaseIpArgs,
) -> Result<ReleaseIpPlan, ToolError> {
    let found = wf::plan_ip_release(ctx.client(), &args.app, &args.address).await?;
    Ok(ReleaseIpPlan {
        app: args.app.into(),
        address: IpOut::from(found.clone()),
        found,
    })
}

async fn release_ip(
    ctx: ToolContext,
    _args: ReleaseIpArgs,
    plan: ReleaseIpPlan,
) -> Result<ReleaseIpOut, ToolError> {
    wf::release_ip(ctx.client(), &plan.app, &plan.found).await?;
    Ok(ReleaseIpOut {
        app: plan.app,
        released: plan.address,
    })
}

/// What to do with the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateOp {
    /// Request a certificate for the hostname.
    Add,
    /// Re-run Fly's DNS and ACME checks.
    Check,
    /// Read the current state only.
    Show,
}

/// Arguments of `certificate_action`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateActionArgs {
    /// App name.
    pub app: AppName,
    /// Custom hostname, e.g. `app.example.com` (a leading `*.` for a wildcard).
    #[schemars(length(min = 3, max = 253))]
    pub hostname: String,
    /// add, check or show.
    pub action: CertificateOp,
}

/// A DNS record to create at the hostname's DNS provider.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DnsRecordOut {
    /// `A`, `AAAA`, `CNAME` or `TXT`.
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub value: String,
    /// Why it is needed and when it is optional.
    pub purpose: String,
}

/// Result of `certificate_action` (and the plan of `remove_certificate`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CertificateOut {
    pub app: String,
    pub hostname: String,
    /// Fly's status (`active`, `pending_validation`, ...).
    pub status: String,
    /// Issued and DNS points at the app.
    pub ready: bool,
    pub dns_records: Vec<DnsRecordOut>,
    /// What is still missing, in order; empty when ready.
    pub missing: Vec<String>,
    /// Issued certificates.
    pub issued: Vec<String>,
}

impl From<wf::CertificateState> for CertificateOut {
    fn from(c: wf::CertificateState) -> Self {
        CertificateOut {
            app: c.app,
            hostname: c.hostname,
            status: c.status,
            ready: c.ready,
            dns_records: c
                .records
                .into_iter()
                .map(|r| DnsRecordOut {
                    record_type: r.record_type.to_owned(),
                    name: r.name,
                    value: r.value,
                    purpose: r.purpose.to_owned(),
                })
                .collect(),
            missing: c.missing,
            issued: c.issued,
        }
    }
}

table_row!(DnsRecordOut, |r| {
    "TYPE": r.record_type.clone(),
    "NAME": r.name.clone(),
    "VALUE": r.value.clone(),
    "PURPOSE": r.purpose.clone(),
});

impl ToolOutput for CertificateOut {
    fn render_text(&self) -> String {
        let mut out = format!(
            "certificate {} (app {}): {}{}\nDNS records:\n{}",
            self.hostname,
            self.app,
            self.status,
            if self.ready { ", ready" } else { "" },
            rows(&self.dns_records)
        );
        if !self.issued.is_empty() {
            out.push_str(&format!("issued: {}\n", self.issued.join("; ")));
        }
        if !self.missing.is_empty() {
            out.push_str("missing:\n");
            for m in &self.missing {
                out.push_str(&format!("- {m}\n"));
            }
        }
        out
    }
}

async fn certificate_action(
    ctx: ToolContext,
    args: CertificateActionArgs,
) -> Result<CertificateOut, ToolError> {
    let c = ctx.client();
    let state = match args.action {
        CertificateOp::Add => wf::add_certificate(c, &args.app, &args.hostname).await?,
        CertificateOp::Check => wf::check_certificate(c, &args.app, &args.hostname).await?,
        CertificateOp::Show => wf::show_certificate(c, &args.app, &args.hostname).await?,
    };
    Ok(CertificateOut::from(state))
}

/// Arguments of `remove_certificate`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveCertificateArgs {
    /// App name.
    pub app: AppName,
    /// The certificate's hostname.
    #[schemars(length(min = 3, max = 253))]
    pub hostname: String,
}

/// What `remove_certificate` would remove.
#[derive(Debug, Clone, Serialize)]
pub struct RemoveCertificatePlan {
    pub app: String,
    pub hostname: String,
    pub status: String,
}

impl DestroyPlan for RemoveCertificatePlan {
    fn confirm_token(&self) -> &str {
        &self.app
    }

    fn describe(&self) -> String {
        format!(
            "certificate of {} (app {}, {}): HTTPS on that hostname stops working",
            self.hostname, self.app, self.status
        )
    }
}

/// Result of `remove_certificate`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RemoveCertificateOut {
    pub app: String,
    pub hostname: String,
}

impl ToolOutput for RemoveCertificateOut {
    fn render_text(&self) -> String {
        format!(
            "app {}: certificate of {} removed (DNS records are untouched)",
            self.app, self.hostname
        )
    }
}

async fn plan_remove_certificate(
    ctx: ToolContext,
    args: RemoveCertificateArgs,
) -> Result<RemoveCertificatePlan, ToolError> {
    let state = wf::show_certificate(ctx.client(), &args.app, &args.hostname).await?;
    Ok(RemoveCertificatePlan {
        app: args.app.into(),
        hostname: state.hostname,
        status: state.status,
    })
}

async fn remove_certificate(
    ctx: ToolContext,
    _args: RemoveCertificateArgs,
    plan: RemoveCertificatePlan,
) -> Result<RemoveCertificateOut, ToolError> {
    wf::remove_certificate(ctx.client(), &plan.app, &plan.hostname).await?;
    Ok(RemoveCertificateOut {
        app: plan.app,
        hostname: plan.hostname,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let found = wf::IpAddress {
            address: "2a09:8280:1::4e:1a2b".into(),
            kind: "v6".into(),
            region: "global".into(),
            network: None,
            created_at: Some("2026-11-20T09:00:00Z".into()),
        };
        let allocated = AllocateIpOut {
            app: "web".into(),
            addresses: vec![
                IpOut::from(found.clone()),
                IpOut {
                    address: "fdaa:0:3ec2:0:1::2f".into(),
                    kind: "private_v6".into(),
                    region: "global".into(),
                    network: Some("tenant-a".into()),
                },
            ],
            public: true,
        };
        let release = ReleaseIpPlan {
            app: "web".into(),
            address: IpOut::from(found.clone()),
            found: found.clone(),
        };
        let released = ReleaseIpOut {
            app: "web".into(),
            released: IpOut::from(found),
        };
        let certificate = CertificateOut {
            app: "web".into(),
            hostname: "web.example.com".into(),
            status: "pending_validation".into(),
            ready: false,
            dns_records: vec![DnsRecordOut {
                record_type: "CNAME".into(),
                name: "web.example.com".into(),
                value: "web.fly.dev".into(),
                purpose: "points the name at the app".into(),
            }],
            missing: vec!["DNS records for this hostname are not pointing at the app yet".into()],
            issued: Vec::new(),
        };
        let remove = RemoveCertificatePlan {
            app: "web".into(),
            hostname: "web.example.com".into(),
            status: "active".into(),
        };
        let removed = RemoveCertificateOut {
            app: "web".into(),
            hostname: "web.example.com".into(),
        };
        insta::assert_snapshot!(
            [
                allocated.render_text(),
                release.describe(),
                released.render_text(),
                certificate.render_text(),
                remove.describe(),
                removed.render_text(),
            ]
            .join("\n---\n")
        );
    }
}
