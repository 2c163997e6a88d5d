//! Apps: list (all pages), get, create (with `idempotency_key`), delete; the `App`
//! and `Organization` domain types. Wire envelopes stay private to this file.

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::Req;
use super::pacing::PaceClass;
use super::{Client, Error, null_as_default};

/// An organization (from an app, or from GraphQL `organizations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// GraphQL node id (empty when the org came embedded in an app).
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Org slug (`personal` for a personal org in REST calls).
    #[serde(default, deserialize_with = "null_as_default")]
    pub slug: String,
    /// Display name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `PERSONAL` or `SHARED`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether the org is on a paid plan, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_plan: Option<bool>,
    /// The caller's role in the org, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_role: Option<String>,
    /// Numeric id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_numeric_id: Option<i64>,
}

/// A Fly app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    /// App id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// App name (global namespace).
    pub name: String,
    /// `pending`, `deployed`, `suspended`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// Owning organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Organization>,
    /// Private network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Number of machines, when the API counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_count: Option<u64>,
    /// Number of volumes, when the API counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_count: Option<u64>,
}

impl App {
    /// The public hostname Fly gives an app (`<name>.fly.dev`).
    pub fn hostname(&self) -> String {
        format!("{}.fly.dev", self.name)
    }
}

/// Body of an app create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateApp {
    /// App name.
    pub name: String,
    /// Org slug (`personal` works).
    pub org_slug: String,
    /// Custom private network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Enable `*.<app>.fly.dev` subdomains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_subdomains: Option<bool>,
    /// Makes a retry of this exact create safe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// What an app create answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApp {
    /// App id.
    pub id: String,
    /// App name (as requested).
    pub name: String,
    /// Creation time, epoch milliseconds.
    #[serde(default)]
    pub created_at: Option<i64>,
}

#[derive(Deserialize)]
struct WireAppList {
    #[serde(default, deserialize_with = "null_as_default")]
    apps: Vec<App>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct WireCreatedApp {
    #[serde(default)]
    id: String,
    #[serde(default)]
    created_at: Option<i64>,
}

/// Guard against a server that keeps handing out cursors.
pub(crate) const MAX_PAGES: usize = 1000;

impl Client {
    /// List Apps: `GET /v1/apps?org_slug=` (follows `next_cursor` to the last page).
    pub async fn list_apps(&self, org_slug: &str) -> Result<Vec<App>, Error> {
        let mut apps = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let req = Req::machines("list_apps", Method::GET, &["apps"])
                .query("org_slug", org_slug)
                .query_opt("cursor", cursor.as_deref())
                .pace(PaceClass::Action, org_slug);
            let page: WireAppList = self.send(req).await?.json()?;
            apps.extend(page.apps);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(apps)
    }

    /// Get App: `GET /v1/apps/{app_name}`.
    pub async fn get_app(&self, app: &str) -> Result<App, Error> {
        let req =
            Req::machines("get_app", Method::GET, &["apps", app]).pace(PaceClass::Action, app);
        self.send(req).await?.json()
    }

    /// Create App: `POST /v1/apps`. Retried after an ambiguous failure only when an
    /// `idempotency_key` makes that safe.
    pub async fn create_app(&self, body: &CreateApp) -> Result<CreatedApp, Error> {
        super::validate::app_name(&body.name)?;
        let mut req = Req::machines("create_app", Method::POST, &["apps"])
            .json(body)?
            .pace(PaceClass::Action, &body.org_slug);
        if body.idempotency_key.is_some() {
            req = req.retry(super::client::RetryMode::Safe);
        }
        let wire: WireCreatedApp = self.send(req).await?.json()?;
        Ok(CreatedApp {
            id: wire.id,
            name: body.name.clone(),
            created_at: wire.created_at,
        })
    }

    /// Destroy App: `DELETE /v1/apps/{app_name}` (`?force=true` stops its machines first).
    pub async fn delete_app(&self, app: &str, force: bool) -> Result<(), Error> {
        let mut req = Req::machines("delete_app", Method::DELETE, &["apps", app])
            .pace(PaceClass::AppDelete, "all");
        if force {
            req = req.query("force", "true");
        }
        self.send(req).await?;
        Ok(())
    }
}
