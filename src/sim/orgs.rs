//! Org-wide listings (`GET /v1/orgs/{org}/machines`, `GET /v1/orgs/{org}/volumes`),
//! oldest `updated_at` first with a body cursor, and app deploy tokens
//! (`POST /v1/apps/{app}/deploy_token`), which the gate then accepts as app-scoped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::app_call::{AppCall, scope_and_path};
use super::clock::rfc3339;
use super::http::{ApiError, ApiResult, Scope, ok_json, parse_body};
use super::model::{App, MState};
use super::rest::resolve_org;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/orgs/{org_slug}/machines", get(org_machines))
        .route("/v1/orgs/{org_slug}/volumes", get(org_volumes))
        .route("/v1/apps/{app_name}/deploy_token", post(deploy_token))
}

/// The preamble of both listings: `State`, `Extension<Scope>`, `Path` (the org) and
/// `Query`, extracted in that order (so a rejection is the one the four separate
/// extractors would give).
struct OrgCall {
    s: Arc<Shared>,
    scope: Scope,
    org: String,
    q: HashMap<String, String>,
}

impl FromRequestParts<Arc<Shared>> for OrgCall {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let (scope, org) = scope_and_path(parts, state).await?;
        let Query(q) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(OrgCall {
            s: Arc::clone(state),
            scope,
            org,
            q,
        })
    }
}

impl OrgCall {
    /// The page `params` asks for of the rows `rows` makes of the org's apps the token
    /// may see: 404 for an org the caller has not.
    fn page(
        &self,
        params: &PageParams,
        rows: impl FnOnce(Vec<&App>) -> Vec<Row>,
    ) -> Result<Page, ApiError> {
        self.s.with_world(|w, _| {
            let org = &self.org;
            let slug = resolve_org(w, org)
                .ok_or_else(|| ApiError::not_found(format!("organization {org} not found")))?
                .slug
                .clone();
            let apps = w
                .apps
                .values()
                .filter(|a| a.org == slug && self.scope.allows(&a.name))
                .collect();
            Ok(params.page(rows(apps)))
        })
    }
}

/// `(updated_ms, id, entry)`: a listing's entry with the key it is ordered by.
type Row = (u64, String, Value);

/// `(updated_ms, id)` encoded as `MS-ID`.
fn parse_cursor(c: &str) -> Option<(u64, String)> {
    let (ms, id) = c.split_once('-')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

/// Paging and filtering shared by both listings.
struct PageParams {
    limit: usize,
    cursor: Option<(u64, String)>,
    updated_after: u64,
}

impl PageParams {
    /// The rows after the cursor, oldest first, at most `limit` of them.
    fn page(&self, mut rows: Vec<Row>) -> Page {
        rows.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| {
                self.cursor
                    .as_ref()
                    .is_none_or(|c| (r.0, &r.1) > (c.0, &c.1))
            })
            .collect();
        let more = rows.len() > self.limit;
        let page: Vec<_> = rows.into_iter().take(self.limit).collect();
        let last = page.last().map(|r| (r.0, r.1.clone()));
        Page {
            entries: page.into_iter().map(|r| r.2).collect(),
            more,
            last,
        }
    }
}

/// One page of a listing and the key of its last entry.
struct Page {
    entries: Vec<Value>,
    more: bool,
    last: Option<(u64, String)>,
}

impl Page {
    /// The cursor of the next page, if there is one.
    fn next_cursor(&self) -> Option<String> {
        if self.more {
            self.last.as_ref().map(|(ms, id)| format!("{ms}-{id}"))
        } else {
            None
        }
    }

    fn last_id(&self) -> Option<String> {
        self.last.as_ref().map(|l| l.1.clone())
    }

    fn last_updated_at(&self) -> Option<String> {
        self.last.as_ref().map(|l| rfc3339(l.0))
    }
}

fn page_params(q: &HashMap<String, String>) -> Result<PageParams, ApiError> {
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let cursor = match q.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(
            parse_cursor(c)
                .ok_or_else(|| ApiError::bad_request(format!("invalid cursor {c:?}")))?,
        ),
    };
    let after = match q.get("updated_after").map(String::as_str) {
        None | Some("") => 0,
        Some(t) => {
            let ts: jiff::Timestamp = t.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid updated_after {t:?}: RFC 3339 expected"))
            })?;
            u64::try_from(ts.as_millisecond()).unwrap_or(0)
        }
    };
    Ok(PageParams {
        limit,
        cursor,
        updated_after: after,
    })
}

async fn org_machines(call: OrgCall) -> ApiResult {
    let params = page_params(&call.q)?;
    let after = params.updated_after;
    let include_deleted = call.q.get("include_deleted").is_some_and(|v| v == "true");
    let region = call.q.get("region").cloned().unwrap_or_default();
    let states: Vec<String> = call
        .q
        .get("state")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let page = call.page(&params, |apps| {
        apps.into_iter()
            .flat_map(|a| a.machines.values().map(move |m| (a, m)))
            .filter(|(_, m)| include_deleted || m.state != MState::Destroyed)
            .filter(|(_, m)| region.is_empty() || m.region == region)
            .filter(|(_, m)| states.is_empty() || states.iter().any(|st| st == m.state.as_str()))
            .filter(|(_, m)| m.updated_ms >= after)
            .map(|(a, m)| {
                let cfg = m.config();
                let metadata = cfg.get("metadata").cloned().unwrap_or_else(|| json!({}));
                let entry = json!({
                    "app_name": a.name, "id": m.id, "name": m.name,
                    "state": m.state.as_str(), "region": m.region, "private_ip": m.private_ip,
                    "version": m.version(),
                    "created_at": rfc3339(m.created_ms), "updated_at": rfc3339(m.updated_ms),
                    "config": {"image": cfg.get("image"), "guest": cfg.get("guest"),
                               "metadata": metadata},
                });
                (m.updated_ms, m.id.clone(), entry)
            })
            .collect()
    })?;
    ok_json(
        200,
        json!({
            "machines": page.entries,
            "next_cursor": page.next_cursor(),
            "last_machine_id": page.last_id(),
            "last_updated_at": page.last_updated_at(),
            "error_regions": [],
        }),
    )
}

async fn org_volumes(call: OrgCall) -> ApiResult {
    let params = page_params(&call.q)?;
    let after = params.updated_after;
    let region = call.q.get("region").cloned().unwrap_or_default();
    let page = call.page(&params, |apps| {
        apps.into_iter()
            .flat_map(|a| a.volumes.values().map(move |v| (a, v)))
            .filter(|(_, v)| region.is_empty() || v.region == region)
            .filter(|(_, v)| v.created_ms >= after)
            .map(|(a, v)| {
                let mut j = v.to_json();
                if let Some(o) = j.as_object_mut() {
                    o.insert("app_name".into(), json!(a.name));
                    o.insert("updated_at".into(), json!(rfc3339(v.created_ms)));
                }
                (v.created_ms, v.id.clone(), j)
            })
            .collect()
    })?;
    ok_json(
        200,
        json!({
            "volumes": page.entries,
            "next_cursor": page.next_cursor(),
            "last_volume_id": page.last_id(),
            "last_updated_at": page.last_updated_at(),
        }),
    )
}

/// `POST /v1/apps/{app}/deploy_token`: `{token}`, usable at once as an app-scoped token.
async fn deploy_token(call: AppCall<String>, body: Bytes) -> ApiResult {
    let _ = parse_body(&body)?;
    call.world(|w, _| {
        let token = format!("fm2_sim{:016x}{:016x}", w.rng.next_u64(), w.rng.next_u64());
        w.deploy_tokens.insert(token.clone(), call.app().to_owned());
        w.touch();
        ok_json(200, json!({"token": format!("FlyV1 {token}")}))
    })
}
