//! Apps: list (all pages), get, create (`?wait=true`, with `idempotency_key`, then a
//! wait until the new app answers), delete; the `App` and `Organization` domain
//! types. Wire envelopes stay private to this file.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{EmptyPage, Req, all_pages};
use super::pacing::PaceClass;
use super::{Client, Error, null_as_default};

/// An organization (from an app, or from GraphQL `organizations`).
#[serde_with::skip_serializing_none]
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
    pub kind: Option<String>,
    /// Whether the org is on a paid plan, when known.
    pub paid_plan: Option<bool>,
    /// The caller's role in the org, when known.
    pub viewer_role: Option<String>,
    /// Numeric id, when known.
    pub internal_numeric_id: Option<i64>,
}

/// A Fly app.
#[serde_with::skip_serializing_none]
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
    pub organization: Option<Organization>,
    /// Private network name.
    pub network: Option<String>,
    /// Number of machines, when the API counts them.
    pub machine_count: Option<u64>,
    /// Number of volumes, when the API counts them.
    pub volume_count: Option<u64>,
}

impl App {
    /// The public hostname Fly gives an app (`<name>.fly.dev`).
    pub fn hostname(&self) -> String {
        format!("{}.fly.dev", self.name)
    }
}

/// Body of an app create.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateApp {
    /// App name.
    pub name: String,
    /// Org slug (`personal` works).
    pub org_slug: String,
    /// Custom private network name.
    pub network: Option<String>,
    /// Enable `*.<app>.fly.dev` subdomains.
    pub enable_subdomains: Option<bool>,
    /// Makes a retry of this exact create safe.
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

/// How long a new app may answer 404 before `create_app` gives up: fly-go's
/// `WaitForApp` retries for one minute (`flaps/retry.go`).
pub const APP_VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// Guard against a server that keeps handing out cursors.
pub(crate) const MAX_PAGES: usize = 1000;

impl Client {
    /// List Apps: `GET /v1/apps?org_slug=` (follows `next_cursor` to the last page).
    pub async fn list_apps(&self, org_slug: &str) -> Result<Vec<App>, Error> {
        all_pages(MAX_PAGES, EmptyPage::FollowsCursor, |cursor| async move {
            let req = Req::machines("list_apps", Method::GET, &["apps"])
                .query("org_slug", org_slug)
                .query_opt("cursor", cursor)
                .pace(PaceClass::Action, org_slug);
            let page: WireAppList = self.send(req).await?.json()?;
            let next = page.next_cursor.filter(|c| !c.is_empty());
            Ok((page.apps, next))
        })
        .await
    }

    /// Get App: `GET /v1/apps/{app_name}`.
    pub async fn get_app(&self, app: &str) -> Result<App, Error> {
        let req = Req::app("get_app", Method::GET, app, &[]);
        self.send(req).await?.json()
    }

    /// Create App: `POST /v1/apps?wait=true`, then [`Client::wait_for_app`], as fly-go's
    /// `CreateApp` and every flyctl caller after it do (`flaps/flaps_apps.go`;
    /// flyctl `internal/command/apps/create.go`): a new app can answer 404 for a
    /// while, and the calls that follow (secrets, IPs, machines) must not see that.
    /// Retried after an ambiguous failure only when an `idempotency_key` makes that
    /// safe.
    pub async fn create_app(&self, body: &CreateApp) -> Result<CreatedApp, Error> {
        super::validate::app_name(&body.name)?;
        let mut req = Req::machines("create_app", Method::POST, &["apps"])
            .query("wait", "true")
            .json(body)?
            .pace(PaceClass::Action, &body.org_slug);
        if body.idempotency_key.is_some() {
            req = req.retry(super::client::RetryMode::Safe);
        }
        let wire: WireCreatedApp = self.send(req).await?.json()?;
        self.wait_for_app(&body.name, APP_VISIBLE_WITHIN).await?;
        Ok(CreatedApp {
            id: wire.id,
            name: body.name.clone(),
            created_at: wire.created_at,
        })
    }

    /// Waits until `GET /v1/apps/{app_name}` answers: fly-go's `WaitForApp`
    /// (`flaps/flaps_apps.go`) retries a 404 or 401 with backoff (`flaps/retry.go`:
    /// from 100 ms, at most 500 ms apart) for up to a minute, and gives up at once on
    /// anything else. Here a transient failure (429, 5xx, a reset) also keeps waiting,
    /// since `send` already retried it and the deadline still has time.
    pub async fn wait_for_app(&self, app: &str, within: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let mut delays = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.retry_min_delay().min(Duration::from_millis(100)))
            .with_max_delay(self.retry_max_delay().min(Duration::from_millis(500)))
            .without_max_times()
            .build();
        loop {
            let req = Req::app("wait_for_app", Method::GET, app, &[]);
            let err = match self.send(req).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let waitable = matches!(err.status(), Some(404 | 401)) || err.is_retryable();
            let elapsed = started.elapsed();
            if !waitable || elapsed >= within {
                return Err(err);
            }
            let pause = delays
                .next()
                .unwrap_or(Duration::from_millis(500))
                .min(within.saturating_sub(elapsed));
            tracing::debug!(app, error = %err, ?pause, "new app not visible yet");
            tokio::time::sleep(pause).await;
        }
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
