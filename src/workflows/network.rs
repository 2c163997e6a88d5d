//! Public and private addresses and TLS certificates of one app: allocating and
//! releasing IPs (REST `ip_assignments`, which covers every kind including egress),
//! adding an ACME certificate, and turning Fly's certificate answer into the DNS
//! records to create and a plain list of what is still missing.
//!
//! Knows `crate::fly` only; the MCP layer shapes arguments and results.

use crate::fly;
use crate::workflows::NextStep;

use super::Error;

/// Kind of address to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpKind {
    /// Shared anycast IPv4 (free; one per app).
    SharedV4,
    /// Dedicated anycast IPv4 (billed).
    V4,
    /// Dedicated anycast IPv6.
    V6,
    /// Flycast: private IPv6 reachable from the org's network only.
    PrivateV6,
    /// Static egress IPv4 (outbound traffic).
    EgressV4,
    /// Static egress IPv6.
    EgressV6,
    /// Static egress v4 + v6 pair.
    EgressPair,
}

impl IpKind {
    fn wire(self) -> fly::IpType {
        match self {
            IpKind::SharedV4 => fly::IpType::SharedV4,
            IpKind::V4 => fly::IpType::V4,
            IpKind::V6 => fly::IpType::V6,
            IpKind::PrivateV6 => fly::IpType::PrivateV6,
            IpKind::EgressV4 => fly::IpType::EgressV4,
            IpKind::EgressV6 => fly::IpType::EgressV6,
            IpKind::EgressPair => fly::IpType::EgressPair,
        }
    }

    /// The API's name (`shared_v4`, `v6`, ...).
    pub fn as_str(self) -> &'static str {
        self.wire().as_str()
    }

    /// True when the address is reachable from the internet (what `allocate_ip`
    /// warns about).
    pub fn is_public(self) -> bool {
        match self {
            IpKind::SharedV4 | IpKind::V4 | IpKind::V6 => true,
            IpKind::PrivateV6 | IpKind::EgressV4 | IpKind::EgressV6 | IpKind::EgressPair => false,
        }
    }
}

/// One address of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct IpAddress {
    pub address: String,
    /// `shared_v4`, `v4`, `v6`, `private_v6`, `egress_v4`, `egress_v6`.
    pub kind: String,
    /// `global` for anycast addresses.
    pub region: String,
    /// Flycast network name, for private addresses.
    pub network: Option<String>,
    pub created_at: Option<String>,
}

impl IpAddress {
    fn from_wire(ip: fly::IpAssignment) -> Vec<IpAddress> {
        let kind = ip.kind().to_owned();
        let region = ip
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "global".to_owned());
        let network = match kind.as_str() {
            "private_v6" => ip.network.as_ref().map(|n| n.name.clone()),
            _ => None,
        };
        let one = |address: String, kind: String| IpAddress {
            address,
            kind,
            region: region.clone(),
            network: network.clone(),
            created_at: ip.created_at.clone(),
        };
        match (&ip.ip, &ip.ip_pair) {
            (Some(addr), _) if !addr.is_empty() => vec![one(addr.clone(), kind)],
            (_, Some(pair)) => vec![
                one(pair.v4.clone(), "egress_v4".to_owned()),
                one(pair.v6.clone(), "egress_v6".to_owned()),
            ],
            _ => Vec::new(),
        }
    }
}

/// What to allocate.
#[derive(Debug, Clone, PartialEq)]
pub struct IpRequest {
    pub app: String,
    pub kind: IpKind,
    /// Region for a regional address (default: global anycast).
    pub region: Option<String>,
    /// Flycast network (private_v6 only).
    pub network: Option<String>,
}

/// Allocates an address. `shared_v4` is idempotent on Fly's side (an app has one);
/// the others allocate a new address each call.
pub async fn allocate_ip(client: &fly::Client, req: &IpRequest) -> Result<Vec<IpAddress>, Error> {
    if req.network.is_some() && req.kind != IpKind::PrivateV6 {
        return Err(Error::Invalid {
            field: "network".to_owned(),
            rule: "only a private_v6 (Flycast) address belongs to a network".to_owned(),
        });
    }
    let mut body = fly::AllocateIp::new(req.kind.wire());
    body.region = req.region.clone();
    body.network = req.network.clone();
    let ip = client
        .allocate_ip_assignment(&req.app, &body)
        .await
        .map_err(Error::fly_or_not_found(
            format!(
                "allocating a {} address for app {}",
                req.kind.as_str(),
                req.app
            ),
            || super::status::missing_app(&req.app),
        ))?;
    let out = IpAddress::from_wire(ip);
    if out.is_empty() {
        return Err(Error::Invalid {
            field: "answer".to_owned(),
            rule: format!(
                "Fly allocated a {} address for app {} but did not say which",
                req.kind.as_str(),
                req.app
            ),
        });
    }
    Ok(out)
}

/// Every address of `app` (shared v4 included).
pub async fn list_ips(client: &fly::Client, app: &str) -> Result<Vec<IpAddress>, Error> {
    let ips = client
        .list_ip_assignments(app)
        .await
        .map_err(super::status::app_not_found_while(
            app,
            "listing the addresses of app",
        ))?;
    Ok(ips.into_iter().flat_map(IpAddress::from_wire).collect())
}

/// Looks up the address to release (reads only). An address the app does not have
/// is an error listing the ones it has.
pub async fn plan_ip_release(
    client: &fly::Client,
    app: &str,
    address: &str,
) -> Result<IpAddress, Error> {
    let ips = list_ips(client, app).await?;
    let wanted = address.trim().to_ascii_lowercase();
    let known: Vec<String> = ips.iter().map(|i| i.address.clone()).collect();
    ips.into_iter()
        .find(|i| i.address.to_ascii_lowercase() == wanted)
        .ok_or_else(|| Error::NotFound {
            what: "address",
            id: format!("{address} (app {app})"),
            hint: NextStep::to(if known.is_empty() {
                "the app has no addresses".to_owned()
            } else {
                format!("the app has {}", known.join(", "))
            }),
        })
}

/// Releases a planned address. Gone already counts as released.
pub async fn release_ip(client: &fly::Client, app: &str, ip: &IpAddress) -> Result<(), Error> {
    match client.release_ip_assignment(app, &ip.address).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!(
            "releasing {} address {} of app {app}",
            ip.kind, ip.address
        ))(e)),
    }
}

/// A DNS record the certificate's hostname needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecord {
    /// `A`, `AAAA`, `CNAME` or `TXT`.
    pub record_type: &'static str,
    pub name: String,
    pub value: String,
    /// Why the record is needed and when it is optional.
    pub purpose: &'static str,
}

/// A hostname's certificate, in terms of what to do next.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateState {
    pub app: String,
    pub hostname: String,
    /// Fly's overall status (`active`, `pending_validation`, ...).
    pub status: String,
    /// A certificate has been issued and DNS points at the app.
    pub ready: bool,
    /// The records to create at the DNS provider.
    pub records: Vec<DnsRecord>,
    /// What is still missing, one sentence each; empty when ready.
    pub missing: Vec<String>,
    /// Issued certificates, e.g. `fly active (expires 2027-02-19T…)`.
    pub issued: Vec<String>,
}

const PURPOSE_A: &str =
    "points the hostname at the app (use A/AAAA for an apex domain, or the CNAME instead)";
const PURPOSE_CNAME: &str = "points a subdomain at the app (instead of the A/AAAA records)";
const PURPOSE_ACME: &str = "lets Fly obtain the certificate by DNS-01 before traffic moves (optional once A/AAAA or CNAME point at the app)";
const PURPOSE_TXT: &str =
    "proves ownership of the hostname (needed when it is served elsewhere too)";

impl CertificateState {
    fn from_wire(app: &str, c: fly::Certificate) -> CertificateState {
        let hostname = c.hostname.clone();
        let mut records = Vec::new();
        if let Some(req) = &c.dns_requirements {
            for a in &req.a {
                records.push(DnsRecord {
                    record_type: "A",
                    name: hostname.clone(),
                    value: a.clone(),
                    purpose: PURPOSE_A,
                });
            }
            for a in &req.aaaa {
                records.push(DnsRecord {
                    record_type: "AAAA",
                    name: hostname.clone(),
                    value: a.clone(),
                    purpose: PURPOSE_A,
                });
            }
            if let Some(cname) = req.cname.as_ref().filter(|c| !c.is_empty()) {
                records.push(DnsRecord {
                    record_type: "CNAME",
                    name: hostname.clone(),
                    value: cname.clone(),
                    purpose: PURPOSE_CNAME,
                });
            }
            if let Some(acme) = req.acme_challenge.as_ref().filter(|t| !t.name.is_empty()) {
                records.push(DnsRecord {
                    record_type: "CNAME",
                    name: acme.name.clone(),
                    value: acme.target.clone(),
                    purpose: PURPOSE_ACME,
                });
            }
            if let Some(own) = req.ownership.as_ref().filter(|o| !o.name.is_empty()) {
                records.push(DnsRecord {
                    record_type: "TXT",
                    name: own.name.clone(),
                    value: own.app_value.clone(),
                    purpose: PURPOSE_TXT,
                });
            }
        }
        let issued: Vec<String> = c
            .certificates
            .iter()
            .map(|e| match &e.expires_at {
                Some(exp) => format!("{} {} (expires {exp})", e.source, e.status),
                None => format!("{} {}", e.source, e.status),
            })
            .collect();
        let has_active = c.certificates.iter().any(|e| e.status == "active");
        let ready = c.status == "active" || (has_active && c.configured);
        let missing = if ready {
            Vec::new()
        } else {
            missing_steps(&c, &records)
        };
        CertificateState {
            app: app.to_owned(),
            hostname,
            status: c.status,
            ready,
            records,
            missing,
            issued,
        }
    }
}

/// Plain sentences for what stands between the certificate and `active`.
fn missing_steps(c: &fly::Certificate, records: &[DnsRecord]) -> Vec<String> {
    let mut out = Vec::new();
    let v = c.validation.clone().unwrap_or_default();
    let has_addresses = records
        .iter()
        .any(|r| r.record_type == "A" || r.record_type == "AAAA");
    if !has_addresses {
        out.push(format!(
            "the app has no public address to point {} at: call allocate_ip (shared_v4 and v6) first",
            c.hostname
        ));
    }
    if !v.dns_configured && !c.configured {
        out.push(format!(
            "DNS for {} does not point at the app yet: create the A/AAAA records (or the CNAME) listed",
            c.hostname
        ));
    }
    if !v.dns_configured && !v.alpn_configured && !v.http_configured {
        out.push(
            "no ACME challenge can pass yet: point DNS at the app, or create the _acme-challenge CNAME to issue before moving traffic"
                .to_owned(),
        );
    }
    if c.certificates.iter().all(|e| e.status != "active") {
        out.push("no certificate has been issued yet".to_owned());
    }
    for e in &c.validation_errors {
        let line = match (e.message.is_empty(), e.remediation.is_empty()) {
            (false, false) => format!("{}: {}", e.message, e.remediation),
            (false, true) => e.message.clone(),
            (true, _) => e.code.clone(),
        };
        if !line.is_empty() && !out.contains(&line) {
            out.push(line);
        }
    }
    if let Some(until) = c.rate_limited_until.as_ref().filter(|u| !u.is_empty()) {
        out.push(format!(
            "Let's Encrypt rate-limits this hostname until {until}"
        ));
    }
    out.push("then run certificate_action with action check".to_owned());
    out
}

fn cert_not_found(app: &str, hostname: &str) -> Error {
    Error::NotFound {
        what: "certificate",
        id: format!("{hostname} (app {app})"),
        hint: NextStep::to("add it with certificate_action action add"),
    }
}

/// Adds an ACME certificate for `hostname`; a hostname the app already has answers
/// its current state instead of failing.
pub async fn add_certificate(
    client: &fly::Client,
    app: &str,
    hostname: &str,
) -> Result<CertificateState, Error> {
    let hostname = hostname.trim().to_ascii_lowercase();
    match client.add_acme_certificate(app, &hostname).await {
        Ok(c) => Ok(CertificateState::from_wire(app, c)),
        Err(e) if e.status() == Some(422) && e.to_string().contains("already exists") => {
            show_certificate(client, app, &hostname).await
        }
        Err(e) if e.status() == Some(404) => Err(super::status::missing_app(app)),
        Err(e) => Err(Error::fly(format!(
            "adding a certificate for {hostname} to app {app}"
        ))(e)),
    }
}

/// Re-runs Fly's DNS and ACME checks.
pub async fn check_certificate(
    client: &fly::Client,
    app: &str,
    hostname: &str,
) -> Result<CertificateState, Error> {
    certificate_state(
        client.check_certificate(app, hostname).await,
        app,
        hostname,
        "checking",
    )
}

/// The certificate's current state (reads only).
pub async fn show_certificate(
    client: &fly::Client,
    app: &str,
    hostname: &str,
) -> Result<CertificateState, Error> {
    certificate_state(
        client.get_certificate(app, hostname).await,
        app,
        hostname,
        "reading",
    )
}

/// A certificate answer as its state; a 404 names the missing certificate.
fn certificate_state(
    answer: Result<fly::Certificate, fly::Error>,
    app: &str,
    hostname: &str,
    doing: &str,
) -> Result<CertificateState, Error> {
    match answer {
        Ok(c) => Ok(CertificateState::from_wire(app, c)),
        Err(e) if e.is_not_found() => Err(cert_not_found(app, hostname)),
        Err(e) => Err(Error::fly(format!(
            "{doing} the certificate of {hostname} (app {app})"
        ))(e)),
    }
}

/// Removes the certificate of `hostname`. Gone already counts as removed.
pub async fn remove_certificate(
    client: &fly::Client,
    app: &str,
    hostname: &str,
) -> Result<(), Error> {
    match client.remove_certificate(app, hostname).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!(
            "removing the certificate of {hostname} (app {app})"
        ))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> fly::Certificate {
        fly::Certificate {
            hostname: "app.example.com".into(),
            status: "pending_validation".into(),
            dns_requirements: Some(fly::DnsRequirements {
                a: vec!["66.241.124.1".into()],
                aaaa: vec!["2a09:8280:1::1".into()],
                cname: Some("demo.fly.dev".into()),
                acme_challenge: Some(fly::DnsTarget {
                    name: "_acme-challenge.app.example.com".into(),
                    target: "app.example.com.demo.flydns.net".into(),
                }),
                ownership: None,
            }),
            ..fly::Certificate::default()
        }
    }

    #[test]
    fn pending_certificate_lists_records_and_what_is_missing() {
        let s = CertificateState::from_wire("demo", pending());
        assert!(!s.ready);
        let kinds: Vec<&str> = s.records.iter().map(|r| r.record_type).collect();
        assert_eq!(kinds, ["A", "AAAA", "CNAME", "CNAME"]);
        assert!(s.missing.iter().any(|m| m.contains("does not point")));
        assert!(s.missing.last().unwrap().contains("check"));
    }

    #[test]
    fn no_addresses_says_allocate_first() {
        let mut c = pending();
        if let Some(r) = c.dns_requirements.as_mut() {
            r.a.clear();
            r.aaaa.clear();
        }
        let s = CertificateState::from_wire("demo", c);
        assert!(s.missing.first().unwrap().contains("allocate_ip"));
    }

    #[test]
    fn active_certificate_is_ready_with_nothing_missing() {
        let mut c = pending();
        c.status = "active".into();
        c.configured = true;
        let s = CertificateState::from_wire("demo", c);
        assert!(s.ready);
        assert!(s.missing.is_empty());
    }

    #[test]
    fn egress_pair_becomes_two_addresses() {
        let ip = fly::IpAssignment {
            ip_pair: Some(fly::IpPair {
                v4: "1.2.3.4".into(),
                v6: "2a09::1".into(),
            }),
            egress: true,
            ..fly::IpAssignment::default()
        };
        let out = IpAddress::from_wire(ip);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].kind, "egress_v4");
        assert_eq!(out[1].kind, "egress_v6");
    }
}
