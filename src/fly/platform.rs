//! Platform facts over REST: regions (`/v1/platform/regions`) and the caller's
//! token identity (`/v1/tokens/current`).

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::Req;
use super::pacing::PaceClass;
use super::{Client, Error, null_as_default};

/// A Fly region.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Three-letter code, e.g. `iad`.
    pub code: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Geographic group.
    pub geo_region: Option<String>,
    /// Latitude.
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
    /// Deprecated region (avoid for new machines).
    #[serde(default, deserialize_with = "null_as_default")]
    pub deprecated: bool,
    /// Has a WireGuard gateway.
    #[serde(default, deserialize_with = "null_as_default")]
    pub gateway_available: bool,
    /// Only for paid plans.
    #[serde(default, deserialize_with = "null_as_default")]
    pub requires_paid_plan: bool,
}

/// One token in the caller's `Authorization` header and what it reaches.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenDetail {
    /// Org slug the token is scoped to.
    pub org_slug: Option<String>,
    /// Org name.
    pub organization: Option<String>,
    /// Apps the token is restricted to (empty: all of the org's).
    #[serde(default, deserialize_with = "null_as_default")]
    pub apps: Vec<String>,
    /// The user, for user tokens.
    pub user: Option<String>,
    /// Token id.
    pub token_id: Option<String>,
    /// Machine the token is restricted to.
    pub restricted_to_machine: Option<String>,
    /// Machine making the request.
    pub source_machine_id: Option<String>,
}

/// The caller's token identity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// One entry per token in the header.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tokens: Vec<TokenDetail>,
}

#[derive(Deserialize)]
struct WireRegions {
    #[serde(default, deserialize_with = "null_as_default")]
    regions: Vec<Region>,
}

impl Client {
    /// List Regions: `GET /v1/platform/regions`.
    pub async fn list_regions(&self) -> Result<Vec<Region>, Error> {
        let req = Req::machines("list_regions", Method::GET, &["platform", "regions"])
            .pace(PaceClass::Action, "platform");
        let wire: WireRegions = self.send(req).await?.json()?;
        Ok(wire.regions)
    }

    /// Current Token: `GET /v1/tokens/current`.
    pub async fn current_token(&self) -> Result<TokenInfo, Error> {
        let req = Req::machines("current_token", Method::GET, &["tokens", "current"])
            .pace(PaceClass::Action, "token");
        self.send(req).await?.json()
    }
}
