//! GraphQL plumbing (`POST {FLY_API_BASE_URL}/graphql`) and the operations that
//! exist only there: organizations and `platform.vmSizes` (IP operations live in
//! `ips.rs`, `viewer` in `identity.rs`). Generated `graphql_client` types stay in the
//! `gql` module, private to the wire layer, and are converted into domain types where
//! they are used.

use graphql_client::GraphQLQuery;
use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Api, EmptyPage, Req, RetryMode, all_pages, decode};
use super::error::GraphQlError;
use super::{Client, Error, Organization};

/// Generated operation types (one per `.graphql` file under `graphql/`).
#[allow(
    missing_debug_implementations,
    clippy::all,
    dead_code,
    non_camel_case_types
)]
pub(crate) mod gql {
    use graphql_client::GraphQLQuery;

    /// Fly's `BigInt` arrives as a number or a string.
    pub(crate) type BigInt = serde_json::Value;
    /// RFC 3339 timestamps, kept as text.
    pub(crate) type ISO8601DateTime = String;

    /// Declares operation `$name` of the query file `$query_path` (a literal token, as
    /// the derive reads it), checked against Fly's schema.
    #[rustfmt::skip] // rustfmt re-indents an attribute inside a macro body on every run
    macro_rules! operation {
        ($name:ident, $query_path:tt) => {
            #[derive(GraphQLQuery)]
            #[graphql(
                schema_path = "graphql/schema.graphql",
                query_path = $query_path,
                response_derives = "Debug"
            )]
            pub(crate) struct $name;
        };
    }

    operation!(Organizations, "graphql/organizations.graphql");
    operation!(VmSizes, "graphql/vm_sizes.graphql");
    operation!(AllocateIpAddress, "graphql/allocate_ip_address.graphql");
    operation!(ReleaseIpAddress, "graphql/release_ip_address.graphql");
    operation!(AppIpAddresses, "graphql/app_ip_addresses.graphql");
    operation!(Viewer, "graphql/viewer.graphql");
}

/// A VM size with its price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmSize {
    /// Preset name, e.g. `shared-cpu-1x`.
    pub name: String,
    /// CPU cores (fractional for shared CPUs).
    pub cpu_cores: f64,
    /// Default memory in MB.
    pub memory_mb: i64,
    /// Default memory in GB.
    pub memory_gb: f64,
    /// Largest memory in MB.
    pub max_memory_mb: i64,
    /// Allowed memory steps in MB.
    pub memory_increments_mb: Vec<i64>,
    /// USD per month.
    pub price_month: f64,
    /// USD per second.
    pub price_second: f64,
}

#[derive(Deserialize)]
struct WireGqlResponse {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Option<Vec<WireGqlError>>,
}

#[derive(Deserialize)]
struct WireGqlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    path: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    extensions: Option<WireGqlExtensions>,
}

#[derive(Deserialize)]
struct WireGqlExtensions {
    #[serde(default)]
    code: Option<String>,
}

/// Guard against a server that keeps saying "has next page".
const MAX_PAGES: usize = 100;

impl Client {
    /// Runs one GraphQL operation; `errors[]` (HTTP 200) becomes [`Error::GraphQl`].
    pub(crate) async fn graphql<Q: GraphQLQuery>(
        &self,
        op: &'static str,
        variables: Q::Variables,
        mutation: bool,
    ) -> Result<Q::ResponseData, Error> {
        let body = Q::build_query(variables);
        let mut req = Req::new(op, Method::POST, Api::Platform, &["graphql"]).json(&body)?;
        req = req.retry(if mutation {
            RetryMode::Unsafe
        } else {
            RetryMode::Safe
        });
        let resp = self.send(req).await?;
        let wire: WireGqlResponse = resp.json()?;
        if let Some(errors) = wire.errors.filter(|e| !e.is_empty()) {
            return Err(Error::GraphQl {
                op,
                errors: errors
                    .into_iter()
                    .map(|e| GraphQlError {
                        message: e.message,
                        path: e.path.unwrap_or_default(),
                        code: e.extensions.and_then(|x| x.code),
                    })
                    .collect(),
                request_id: resp.request_id.clone(),
            });
        }
        let data = wire.data.unwrap_or(serde_json::Value::Null);
        let bytes = serde_json::to_vec(&data).map_err(|e| Error::Decode {
            op,
            path: "data".into(),
            source: e,
            request_id: resp.request_id.clone(),
        })?;
        decode(op, &bytes, resp.request_id.as_deref())
    }

    /// GraphQL `organizations`: every org the token can see (all pages).
    pub async fn organizations(&self) -> Result<Vec<Organization>, Error> {
        all_pages(MAX_PAGES, EmptyPage::FollowsCursor, |after| async move {
            let vars = gql::organizations::Variables {
                admin: false,
                after,
            };
            let data = self
                .graphql::<gql::Organizations>("organizations", vars, false)
                .await?;
            let conn = data.organizations;
            let orgs = conn.nodes.unwrap_or_default().into_iter().flatten();
            let orgs = orgs.map(|node| Organization {
                id: node.id,
                slug: node.slug,
                name: node.name,
                kind: Some(org_type(&node.type_)),
                paid_plan: Some(node.paid_plan),
                viewer_role: Some(node.viewer_role),
                internal_numeric_id: big_int(&node.internal_numeric_id),
            });
            let next = conn.page_info.filter(|p| p.has_next_page);
            Ok((orgs.collect(), next.and_then(|p| p.end_cursor)))
        })
        .await
    }

    /// GraphQL `platform.vmSizes`: VM sizes with prices.
    pub async fn vm_sizes(&self) -> Result<Vec<VmSize>, Error> {
        let data = self
            .graphql::<gql::VmSizes>("vm_sizes", gql::vm_sizes::Variables {}, false)
            .await?;
        Ok(data
            .platform
            .vm_sizes
            .into_iter()
            .map(|s| VmSize {
                name: s.name,
                cpu_cores: s.cpu_cores,
                memory_mb: s.memory_mb,
                memory_gb: s.memory_gb,
                max_memory_mb: s.max_memory_mb,
                memory_increments_mb: s.memory_increments_mb,
                price_month: s.price_month,
                price_second: s.price_second,
            })
            .collect())
    }
}

fn org_type(t: &gql::organizations::OrganizationType) -> String {
    match t {
        gql::organizations::OrganizationType::PERSONAL => "PERSONAL".to_owned(),
        gql::organizations::OrganizationType::SHARED => "SHARED".to_owned(),
        gql::organizations::OrganizationType::Other(s) => s.clone(),
    }
}

fn big_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
