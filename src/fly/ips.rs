//! Public and private IP addresses: the REST `ip_assignments` endpoints and the
//! GraphQL `allocateIpAddress` / `releaseIpAddress` mutations and app IP listing
//! (the shared v4 address is only in `app.sharedIpAddress`).

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{EmptyPage, Req, all_pages};
use super::graphql::gql;
use super::{Client, Error, null_as_default};

/// Kind of IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpType {
    /// Dedicated public IPv4 (billed).
    V4,
    /// Dedicated public IPv6.
    V6,
    /// Shared public IPv4 (free).
    SharedV4,
    /// Flycast private IPv6.
    PrivateV6,
    /// Egress IPv4 (REST only).
    EgressV4,
    /// Egress IPv6 (REST only).
    EgressV6,
    /// Egress v4 + v6 pair (REST only).
    EgressPair,
}

impl IpType {
    /// The API's string.
    pub fn as_str(self) -> &'static str {
        match self {
            IpType::V4 => "v4",
            IpType::V6 => "v6",
            IpType::SharedV4 => "shared_v4",
            IpType::PrivateV6 => "private_v6",
            IpType::EgressV4 => "egress_v4",
            IpType::EgressV6 => "egress_v6",
            IpType::EgressPair => "egress_pair",
        }
    }
}

/// The network of a Flycast address.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpNetwork {
    /// Network name (empty for the org's default network).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Org slug.
    pub org_slug: Option<String>,
}

/// An egress v4/v6 pair.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpPair {
    /// IPv4 address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub v4: String,
    /// IPv6 address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub v6: String,
}

/// An IP assigned to an app (REST shape; GraphQL results are converted into it).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpAssignment {
    /// The address (null for an egress pair: see `ip_pair`).
    pub ip: Option<String>,
    /// The pair, for `egress_pair`.
    pub ip_pair: Option<IpPair>,
    /// The kind, when known (REST lists leave it to be inferred).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Region (`global` or empty for anycast).
    pub region: Option<String>,
    /// Service name.
    pub service_name: Option<String>,
    /// A shared address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub shared: bool,
    /// An egress address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub egress: bool,
    /// Flycast network.
    pub network: Option<IpNetwork>,
    /// Creation time.
    pub created_at: Option<String>,
    /// GraphQL node id (for GraphQL results).
    pub id: Option<String>,
}

impl IpAssignment {
    /// The kind, as given or inferred from the address (`shared`, `:`, `fdaa:`).
    pub fn kind(&self) -> &str {
        if let Some(k) = self.kind.as_deref() {
            return k;
        }
        let ip = self.ip.as_deref().unwrap_or_default();
        if self.ip_pair.is_some() {
            "egress_pair"
        } else if self.shared {
            "shared_v4"
        } else if ip.starts_with("fdaa:") {
            "private_v6"
        } else if ip.contains(':') {
            if self.egress { "egress_v6" } else { "v6" }
        } else if self.egress {
            "egress_v4"
        } else {
            "v4"
        }
    }
}

/// Body of a REST IP allocation.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocateIp {
    /// Kind.
    #[serde(rename = "type")]
    pub kind: IpType,
    /// Region (default global).
    pub region: Option<String>,
    /// Org slug (for a Flycast address on another org's network).
    pub org_slug: Option<String>,
    /// Flycast network name.
    pub network: Option<String>,
    /// Service name.
    pub service_name: Option<String>,
}

impl AllocateIp {
    /// An allocation of `kind` with nothing else set.
    pub fn new(kind: IpType) -> AllocateIp {
        AllocateIp {
            kind,
            region: None,
            org_slug: None,
            network: None,
            service_name: None,
        }
    }
}

/// An app's addresses as GraphQL reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppIps {
    /// The shared v4 address, if the app has one (not among `addresses`).
    pub shared_v4: Option<String>,
    /// Every other address.
    pub addresses: Vec<IpAssignment>,
}

#[derive(Deserialize)]
struct WireIpList {
    #[serde(default, deserialize_with = "null_as_default")]
    ips: Vec<IpAssignment>,
}

/// Guard against a server that keeps saying "has next page".
const MAX_PAGES: usize = 100;

fn gql_type(kind: IpType) -> Result<gql::allocate_ip_address::IPAddressType, Error> {
    use gql::allocate_ip_address::IPAddressType as T;
    match kind {
        IpType::V4 => Ok(T::v4),
        IpType::V6 => Ok(T::v6),
        IpType::SharedV4 => Ok(T::shared_v4),
        IpType::PrivateV6 => Ok(T::private_v6),
        IpType::EgressV4 | IpType::EgressV6 | IpType::EgressPair => Err(Error::invalid(
            "ip type",
            "egress addresses are allocated through the REST ip_assignments endpoint",
        )),
    }
}

/// The API's name of a GraphQL `IPAddressType` (`v4`, `shared_v4`, …, or the unknown
/// name as given): each operation has its own generated copy of the enum, and what
/// their `Serialize` writes is that name.
fn ip_type_name(t: &impl Serialize) -> Option<String> {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}

impl Client {
    /// List IP Assignments: `GET /v1/apps/{app_name}/ip_assignments`.
    pub async fn list_ip_assignments(&self, app: &str) -> Result<Vec<IpAssignment>, Error> {
        let req = Req::app("list_ip_assignments", Method::GET, app, &["ip_assignments"]);
        let wire: WireIpList = self.send(req).await?.json()?;
        Ok(wire.ips)
    }

    /// Assign IP: `POST /v1/apps/{app_name}/ip_assignments`.
    pub async fn allocate_ip_assignment(
        &self,
        app: &str,
        body: &AllocateIp,
    ) -> Result<IpAssignment, Error> {
        let req = Req::app(
            "allocate_ip_assignment",
            Method::POST,
            app,
            &["ip_assignments"],
        )
        .json(body)?;
        let mut ip: IpAssignment = self.send(req).await?.json()?;
        if ip.kind.is_none() {
            ip.kind = Some(body.kind.as_str().to_owned());
        }
        Ok(ip)
    }

    /// Release IP: `DELETE /v1/apps/{app_name}/ip_assignments/{ip}`.
    pub async fn release_ip_assignment(&self, app: &str, ip: &str) -> Result<(), Error> {
        let req = Req::app(
            "release_ip_assignment",
            Method::DELETE,
            app,
            &["ip_assignments", ip],
        );
        self.send(req).await?;
        Ok(())
    }

    /// GraphQL `allocateIpAddress`. For `shared_v4` Fly returns no address node:
    /// the address is read from `app.sharedIpAddress`.
    pub async fn gql_allocate_ip(
        &self,
        app: &str,
        kind: IpType,
        region: Option<&str>,
    ) -> Result<IpAssignment, Error> {
        let vars = gql::allocate_ip_address::Variables {
            input: gql::allocate_ip_address::AllocateIPAddressInput {
                app_id: app.to_owned(),
                type_: gql_type(kind)?,
                region: region.map(str::to_owned),
                organization_id: None,
                network: None,
                service_name: None,
                client_mutation_id: None,
            },
        };
        let data = self
            .graphql::<gql::AllocateIpAddress>("allocate_ip_address", vars, true)
            .await?;
        let payload = data.allocate_ip_address.ok_or_else(|| {
            Error::invalid("allocate_ip_address", "the answer carried no payload")
        })?;
        match payload.ip_address {
            Some(ip) => Ok(IpAssignment {
                ip: Some(ip.address),
                kind: ip_type_name(&ip.type_),
                region: ip.region,
                service_name: ip.service_name,
                shared: false,
                created_at: Some(ip.created_at),
                id: Some(ip.id),
                network: ip.network.map(|n| IpNetwork {
                    name: n.name,
                    org_slug: None,
                }),
                ..IpAssignment::default()
            }),
            None => {
                let shared = payload.app.shared_ip_address.ok_or_else(|| {
                    Error::invalid("allocate_ip_address", "no address in the answer")
                })?;
                Ok(IpAssignment {
                    ip: Some(shared),
                    kind: Some(IpType::SharedV4.as_str().to_owned()),
                    shared: true,
                    ..IpAssignment::default()
                })
            }
        }
    }

    /// GraphQL `releaseIpAddress` (by app name and address).
    pub async fn gql_release_ip(&self, app: &str, ip: &str) -> Result<(), Error> {
        let vars = gql::release_ip_address::Variables {
            input: gql::release_ip_address::ReleaseIPAddressInput {
                app_id: Some(app.to_owned()),
                ip: Some(ip.to_owned()),
                ip_address_id: None,
                service_name: None,
                client_mutation_id: None,
            },
        };
        self.graphql::<gql::ReleaseIpAddress>("release_ip_address", vars, true)
            .await?;
        Ok(())
    }

    /// GraphQL `app(name){ipAddresses, sharedIpAddress}` (all pages).
    pub async fn app_ip_addresses(&self, app: &str) -> Result<AppIps, Error> {
        let pages = all_pages(MAX_PAGES, EmptyPage::FollowsCursor, |after| async move {
            let vars = gql::app_ip_addresses::Variables {
                app_name: app.to_owned(),
                after,
            };
            let data = self
                .graphql::<gql::AppIpAddresses>("app_ip_addresses", vars, false)
                .await?;
            let Some(gql_app) = data.app else {
                return Err(Error::Api {
                    op: "app_ip_addresses",
                    status: 404,
                    code: None,
                    message: format!("app {app} not found"),
                    request_id: None,
                    retry_after: None,
                });
            };
            let ips = gql_app.ip_addresses;
            let addresses = ips.nodes.unwrap_or_default().into_iter().flatten();
            let addresses = addresses.map(|ip| IpAssignment {
                ip: Some(ip.address),
                kind: ip_type_name(&ip.type_),
                region: ip.region,
                service_name: ip.service_name,
                created_at: Some(ip.created_at),
                id: Some(ip.id),
                network: ip.network.map(|n| IpNetwork {
                    name: n.name,
                    org_slug: Some(n.organization.slug),
                }),
                ..IpAssignment::default()
            });
            let page = AppIps {
                shared_v4: gql_app.shared_ip_address,
                addresses: addresses.collect(),
            };
            let next = ips.page_info.filter(|p| p.has_next_page);
            Ok((vec![page], next.and_then(|p| p.end_cursor)))
        })
        .await?;
        // Every page tells the shared address; the last one's is kept.
        Ok(AppIps {
            shared_v4: pages.last().and_then(|p| p.shared_v4.clone()),
            addresses: pages.into_iter().flat_map(|p| p.addresses).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_type_names_are_the_api_names() {
        use gql::allocate_ip_address::IPAddressType as Allocated;
        use gql::app_ip_addresses::IPAddressType as Listed;
        let cases = [
            (Allocated::v4, Listed::v4, "v4"),
            (Allocated::v6, Listed::v6, "v6"),
            (Allocated::shared_v4, Listed::shared_v4, "shared_v4"),
            (Allocated::private_v6, Listed::private_v6, "private_v6"),
            (
                Allocated::Other("v9".into()),
                Listed::Other("v9".into()),
                "v9",
            ),
        ];
        for (allocated, listed, name) in cases {
            assert_eq!(ip_type_name(&allocated).as_deref(), Some(name));
            assert_eq!(ip_type_name(&listed).as_deref(), Some(name));
        }
    }
}
