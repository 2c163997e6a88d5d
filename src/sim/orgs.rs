//! Org-wide listings (`GET /v1/orgs/{org}/machines`, `GET /v1/orgs/{org}/volumes`),
//! oldest `updated_at` first with a body cursor, and app deploy tokens
//! (`POST /v1/apps/{app}/deploy_token`), which the gate then accepts as app-scoped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::clock::rfc3339;
use super::http::{ApiError, ApiResult, Scope, ok_json, parse_body, visible_app};
use super::model::MState;
use super::rest::resolve_org;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/orgs/{org_slug}/machines", get(org_machines))
        .route("/v1/orgs/{org_slug}/volumes", get(org_volumes))
        .route("/v1/apps/{app_name}/deploy_token", post(deploy_token))
}

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

async fn org_machines(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let PageParams {
        limit,
        cursor,
        updated_after: after,
    } = page_params(&q)?;
    let include_deleted = q.get("include_deleted").is_some_and(|v| v == "true");
    let region = q.get("region").cloned().unwrap_or_default();
    let states: Vec<String> = q
        .get("state")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    s.with_world(|w, _| {
        let slug = resolve_org(w, &org).ok_or_else(|| ApiError::not_found(format!("organization {org} not found")))?.slug.clone();
        let mut rows: Vec<(u64, String, Value)> = w
            .apps
            .values()
            .filter(|a| a.org == slug && scope.allows(&a.name))
            .flat_map(|a| a.machines.values().map(move |m| (a, m)))
            .filter(|(_, m)| include_deleted || m.state != MState::Destroyed)
            .filter(|(_, m)| region.is_empty() || m.region == region)
            .filter(|(_, m)| states.is_empty() || states.iter().any(|st| st == m.state.as_str()))
            .filter(|(_, m)| m.updated_ms >= after)
            .map(|(a, m)| {
                let cfg = m.config();
                (m.updated_ms, m.id.clone(), json!({"app_name": a.name, "id": m.id, "name": m.name,
                    "state": m.state.as_str(), "region": m.region, "private_ip": m.private_ip,
                    "version": m.version(), "created_at": rfc3339(m.created_ms), "updated_at": rfc3339(m.updated_ms),
                    "config": {"image": cfg.get("image"), "guest": cfg.get("guest"),
                               "metadata": cfg.get("metadata").cloned().unwrap_or_else(|| json!({}))}}))
            })
            .collect();
        rows.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
        let rows: Vec<_> = rows.into_iter().filter(|r| cursor.as_ref().is_none_or(|c| (r.0, &r.1) > (c.0, &c.1))).collect();
        let more = rows.len() > limit;
        let page: Vec<_> = rows.into_iter().take(limit).collect();
        let last = page.last().map(|r| (r.0, r.1.clone()));
        ok_json(200, json!({
            "machines": page.into_iter().map(|r| r.2).collect::<Vec<_>>(),
            "next_cursor": if more { last.as_ref().map(|(ms, id)| format!("{ms}-{id}")) } else { None },
            "last_machine_id": last.as_ref().map(|l| l.1.clone()),
            "last_updated_at": last.as_ref().map(|l| rfc3339(l.0)),
            "error_regions": [],
        }))
    })
}

async fn org_volumes(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    Path(org): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let PageParams {
        limit,
        cursor,
        updated_after: after,
    } = page_params(&q)?;
    let region = q.get("region").cloned().unwrap_or_default();
    s.with_world(|w, _| {
        let slug = resolve_org(w, &org).ok_or_else(|| ApiError::not_found(format!("organization {org} not found")))?.slug.clone();
        let mut rows: Vec<(u64, String, Value)> = w
            .apps
            .values()
            .filter(|a| a.org == slug && scope.allows(&a.name))
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
            .collect();
        rows.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
        let rows: Vec<_> = rows.into_iter().filter(|r| cursor.as_ref().is_none_or(|c| (r.0, &r.1) > (c.0, &c.1))).collect();
        let more = rows.len() > limit;
        let page: Vec<_> = rows.into_iter().take(limit).collect();
        let last = page.last().map(|r| (r.0, r.1.clone()));
        ok_json(200, json!({
            "volumes": page.into_iter().map(|r| r.2).collect::<Vec<_>>(),
            "next_cursor": if more { last.as_ref().map(|(ms, id)| format!("{ms}-{id}")) } else { None },
            "last_volume_id": last.as_ref().map(|l| l.1.clone()),
            "last_updated_at": last.as_ref().map(|l| rfc3339(l.0)),
        }))
    })
}

/// `POST /v1/apps/{app}/deploy_token`: `{token}`, usable at once as an app-scoped token.
async fn deploy_token(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    Path(app): Path<String>,
    body: Bytes,
) -> ApiResult {
    let _ = parse_body(&body)?;
    s.with_world(|w, _| {
        visible_app(w, &scope, &app)?;
        let token = format!("fm2_sim{:016x}{:016x}", w.rng.next_u64(), w.rng.next_u64());
        w.deploy_tokens.insert(token.clone(), app.clone());
        w.touch();
        ok_json(200, json!({"token": format!("FlyV1 {token}")}))
    })
}
