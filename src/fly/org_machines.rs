//! Every machine of an org in one listing (`GET /v1/orgs/{org_slug}/machines`), and the
//! creator label a client can stamp on the machines it creates. Together they let a
//! server count what one caller created without keeping any state of its own: Fly's
//! machine metadata is the record, so replicas agree and a restart forgets nothing.

use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;

use super::{
    GuestConfig, MachineState,
    client::{Client, EmptyPage, Req, all_pages},
    error::Error,
    pacing::PaceClass,
};

/// Machine metadata key: who (server key id or OAuth subject) created the machine.
pub const CREATOR_METADATA_KEY: &str = "fly_mcp_creator";

/// Largest page Fly gives (API-NOTES §1: `limit` max 1000).
const PAGE: &str = "1000";
/// A bound on pages followed, so a misbehaving cursor cannot loop forever.
const MAX_PAGES: usize = 100;

/// One machine of an org listing.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgMachine {
    pub app: String,
    pub id: String,
    pub state: MachineState,
    /// Unix seconds; `None` when Fly's timestamp does not parse.
    pub created_at: Option<i64>,
    pub guest: Option<GuestConfig>,
    /// The creator label ([`CREATOR_METADATA_KEY`]), if any.
    pub creator: Option<String>,
}

#[derive(Deserialize)]
struct WirePage {
    #[serde(default)]
    machines: Vec<WireOrgMachine>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct WireOrgMachine {
    #[serde(default)]
    app_name: String,
    id: String,
    state: MachineState,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    config: Option<WireConfig>,
}

#[derive(Deserialize)]
struct WireConfig {
    #[serde(default)]
    guest: Option<GuestConfig>,
    #[serde(default)]
    metadata: Option<std::collections::BTreeMap<String, String>>,
}

impl From<WireOrgMachine> for OrgMachine {
    fn from(w: WireOrgMachine) -> Self {
        let (guest, creator) = match w.config {
            Some(c) => (
                c.guest,
                c.metadata.and_then(|mut m| m.remove(CREATOR_METADATA_KEY)),
            ),
            None => (None, None),
        };
        OrgMachine {
            app: w.app_name,
            id: w.id,
            state: w.state,
            created_at: w
                .created_at
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_second()),
            guest,
            creator,
        }
    }
}

impl Client {
    /// The same client, recording `creator` in the metadata of every machine it creates.
    pub fn with_creator(&self, creator: &str) -> Client {
        let mut c = self.clone();
        c.creator = Some(Arc::from(creator));
        c
    }

    /// List org machines: `GET /v1/orgs/{org_slug}/machines` with `include_deleted`
    /// and `updated_after` (Unix seconds, sent as RFC 3339); follows `next_cursor`.
    pub async fn list_org_machines(
        &self,
        org: &str,
        include_deleted: bool,
        updated_after: Option<i64>,
    ) -> Result<Vec<OrgMachine>, Error> {
        let after = updated_after
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_string());
        all_pages(MAX_PAGES, EmptyPage::Ends, |cursor| {
            let mut req = Req::machines("org_machines", Method::GET, &["orgs", org, "machines"])
                .pace(PaceClass::Action, org)
                .query("limit", PAGE);
            if include_deleted {
                req = req.query("include_deleted", "true");
            }
            req = req.query_opt("updated_after", after.as_deref());
            req = req.query_opt("cursor", cursor);
            async move {
                let page: WirePage = self.send(req).await?.json()?;
                let machines = page.machines.into_iter().map(OrgMachine::from).collect();
                Ok((machines, page.next_cursor.filter(|c| !c.is_empty())))
            }
        })
        .await
    }
}
