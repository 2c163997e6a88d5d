//! Volumes REST endpoints: list (`fly-next-cursor`), create (zones,
//! `require_unique_zone`), restore from a snapshot (`restoring` → `created`), fork
//! (`source_volume_id`), update backup settings, extend (`needs_restart`), destroy
//! (refused while attached, naming the machine) and snapshots.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::Shared;
use super::app_call::AppCall;
use super::http::{ApiError, ApiResult, ok_json, parse_body, str_field};
use super::model::{MState, Snapshot, Volume, World, volume_is_going};
use super::platform;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let v = "/v1/apps/{app_name}/volumes/{volume_id}";
    Router::new()
        .route("/v1/apps/{app_name}/volumes", get(list).post(create))
        .route(v, get(show).put(update).delete(destroy))
        .route(&format!("{v}/extend"), put(extend))
        .route(
            &format!("{v}/snapshots"),
            get(list_snapshots).post(take_snapshot),
        )
}

async fn list(call: AppCall<String>, Query(q): Query<Vec<(String, String)>>) -> ApiResult {
    let limit = q
        .iter()
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let cursor = q
        .iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    call.read(|_, a, _| {
        let matching: Vec<&Volume> = a
            .volumes
            .values()
            .filter(|v| v.state != "destroyed" && v.id.as_str() > cursor.as_str())
            .collect();
        let page: Vec<&Volume> = match limit {
            Some(l) => matching.iter().take(l.clamp(1, 1000)).copied().collect(),
            None => matching.clone(),
        };
        let mut resp =
            axum::Json(Value::Array(page.iter().map(|v| v.to_json()).collect())).into_response();
        if page.len() < matching.len()
            && let Some(last) = page.last()
            && let Ok(h) = HeaderValue::from_str(&last.id)
        {
            resp.headers_mut().insert("fly-next-cursor", h);
        }
        Ok(resp)
    })
}

/// Volume `id` of `app`; 404 `volume not found` when there is none.
fn volume<'a>(w: &'a World, app: &str, id: &str) -> Result<&'a Volume, ApiError> {
    w.apps
        .get(app)
        .and_then(|a| a.volumes.get(id))
        .ok_or_else(|| ApiError::not_found("volume not found"))
}

/// [`volume`], to change it.
fn volume_mut<'a>(w: &'a mut World, app: &str, id: &str) -> Result<&'a mut Volume, ApiError> {
    w.app_mut(app)?
        .volumes
        .get_mut(id)
        .ok_or_else(|| ApiError::not_found("volume not found"))
}

fn pick_zone(w: &mut World, app: &str, name: &str, region: &str, unique: bool) -> String {
    let used: Vec<String> = w
        .apps
        .get(app)
        .map(|a| {
            a.volumes
                .values()
                .filter(|v| v.name == name && v.region == region)
                .map(|v| v.zone.clone())
                .collect()
        })
        .unwrap_or_default();
    loop {
        let z = w.rng.zone();
        if !unique || !used.contains(&z) {
            return z;
        }
    }
}

/// `POST /v1/apps/{app}/volumes`: create, restore (`snapshot_id`) or fork (`source_volume_id`).
async fn create(call: AppCall<String>, body: Bytes) -> ApiResult {
    let app = call.app();
    let body = parse_body(&body)?;
    let name = str_field(&body, "name");
    let region = str_field(&body, "region");
    let size = body.get("size_gb").and_then(Value::as_u64);
    let snapshot_id = body
        .get("snapshot_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let source = body
        .get("source_volume_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let unique = body
        .get("require_unique_zone")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let delay =
        call.world(|w, now| -> Result<(Value, u64), ApiError> {
            let a = w
                .apps
                .get(app)
                .ok_or_else(|| ApiError::not_found("app not found"))?;
            let source_vol =
                match &source {
                    Some(id) => Some(a.volumes.get(id).cloned().ok_or_else(|| {
                        ApiError::not_found(format!("source volume {id} not found"))
                    })?),
                    None => None,
                };
            let snapshot = match &snapshot_id {
                Some(sid) => Some(
                    a.volumes
                        .values()
                        .flat_map(|v| v.snapshots.iter())
                        .find(|sn| &sn.id == sid)
                        .cloned()
                        .ok_or_else(|| ApiError::not_found(format!("snapshot {sid} not found")))?,
                ),
                None => None,
            };
            let name = if name.is_empty() {
                source_vol
                    .as_ref()
                    .map(|v| v.name.clone())
                    .unwrap_or_default()
            } else {
                name.clone()
            };
            if name.is_empty()
                || name.len() > 30
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ApiError::bad_request(format!(
                    "invalid volume name {name:?}: use up to 30 letters, digits and underscores"
                )));
            }
            let region = if region.is_empty() {
                source_vol
                    .as_ref()
                    .map(|v| v.region.clone())
                    .unwrap_or_default()
            } else {
                region.clone()
            };
            if platform::region(&region).is_none() {
                return Err(ApiError::bad_request(format!("invalid region {region:?}")));
            }
            let min = snapshot
                .as_ref()
                .map(|sn| sn.volume_size)
                .or(source_vol.as_ref().map(|v| v.size_gb))
                .unwrap_or(1);
            let size_gb = size.unwrap_or(min);
            if size_gb == 0 || size_gb > 500 || size_gb < min {
                return Err(ApiError::bad_request(format!(
                    "invalid size_gb {size_gb}: must be between {min} and 500"
                )));
            }
            // Placement capacity on demand (`POST /__sim/capacity` with
            // `volume_failures`): the spec's `ErrorResponse.status` code
            // `volume_placement_capacity`, answered as a 503 like the machine
            // capacity error (see `create_machine`).
            if let Some(n) = w.volume_capacity_failures.get_mut(&region)
                && *n > 0
            {
                *n -= 1;
                return Err(ApiError::coded(
                    503,
                    format!("no capacity to place a {size_gb} GB volume in region {region}"),
                    "volume_placement_capacity",
                ));
            }
            // Realism: a full region refuses the volume with flaps' 409 "aborted: no
            // capacity" (see `Realism::full_region`).
            if w.realism.full_region.as_deref() == Some(region.as_str()) {
                return Err(ApiError::new(409, "aborted: no capacity"));
            }
            let id = w.rng.volume_id();
            let zone = pick_zone(w, app, &name, &region, unique);
            let restoring = snapshot.is_some() || source_vol.is_some();
            let ready = now.saturating_add(w.delay(w.latency.volume_restore_ms));
            let vol = Volume {
                id: id.clone(),
                name,
                region,
                zone,
                size_gb,
                state: if restoring {
                    "restoring".into()
                } else {
                    "created".into()
                },
                encrypted: body
                    .get("encrypted")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                fstype: body
                    .get("fstype")
                    .and_then(Value::as_str)
                    .unwrap_or("ext4")
                    .to_owned(),
                created_ms: now,
                attached_machine_id: None,
                attached_alloc_id: None,
                snapshot_retention: body
                    .get("snapshot_retention")
                    .and_then(Value::as_u64)
                    .unwrap_or(5),
                auto_backup_enabled: body
                    .get("auto_backup_enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                bytes_used: snapshot.as_ref().map_or(0, |s| s.size),
                snapshots: Vec::new(),
                ready_at: restoring.then_some(ready),
                destroy_plan: Default::default(),
            };
            let out = vol.to_json();
            w.app_mut(app)?.volumes.insert(id.clone(), vol);
            if restoring {
                w.schedule_volume(app, &id, ready);
            }
            w.touch();
            Ok((out, w.delay(w.latency.volume_create_ms)))
        })?;
    let (out, ms) = delay;
    super::http::respond_after(&call.s, ms).await;
    ok_json(200, out)
}

async fn show(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, _| {
        let v = volume(w, app, id)?;
        ok_json(200, v.to_json())
    })
}

async fn update(call: AppCall<(String, String)>, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    call.world(|w, _| {
        let v = volume_mut(w, app, id)?;
        if let Some(r) = body.get("snapshot_retention").and_then(Value::as_u64) {
            if !(1..=60).contains(&r) {
                return Err(ApiError::bad_request(
                    "snapshot_retention must be between 1 and 60 days",
                ));
            }
            v.snapshot_retention = r;
        }
        if let Some(b) = body.get("auto_backup_enabled").and_then(Value::as_bool) {
            v.auto_backup_enabled = b;
        }
        let out = v.to_json();
        w.touch();
        ok_json(200, out)
    })
}

/// `DELETE`: refuses while attached, naming the machine. Under realism the volume
/// stays listed in `scheduling_destroy` → `pending_destroy` → `destroying` for
/// `Realism::volume_destroy_step_ms` each before it is gone (fly-go
/// `flaps/flaps_volumes.go` `destroyedVolumeStates`); a second destroy on the way
/// answers the volume as it is.
async fn destroy(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, now| {
        let step = w.realism.volume_destroy_step_ms;
        let a = w.app_mut(app)?;
        let v = a.volumes.get(id).ok_or_else(|| ApiError::not_found("volume not found"))?;
        if volume_is_going(&v.state) {
            return ok_json(200, v.to_json());
        }
        if let Some(mid) = &v.attached_machine_id {
            let live = a.machines.get(mid).is_some_and(|m| m.state != MState::Destroyed);
            if live {
                return Err(ApiError::new(
                    412,
                    format!("failed_precondition: volume {id} is attached to machine {mid}; destroy the machine (or update it to drop the mount) first"),
                ));
            }
        }
        if step == 0 {
            let mut v = a.volumes.remove(id).ok_or_else(|| ApiError::not_found("volume not found"))?;
            v.state = "destroyed".into();
            w.touch();
            return ok_json(200, v.to_json());
        }
        let v = a.volumes.get_mut(id).ok_or_else(|| ApiError::not_found("volume not found"))?;
        v.state = "scheduling_destroy".into();
        v.attached_machine_id = None;
        v.attached_alloc_id = None;
        v.ready_at = None;
        v.destroy_plan = ["pending_destroy", "destroying", "destroyed"]
            .into_iter()
            .zip(1u64..)
            .map(|(state, n)| (now.saturating_add(step.saturating_mul(n)), state))
            .collect();
        let out = v.to_json();
        let dues: Vec<u64> = v.destroy_plan.iter().map(|(due, _)| *due).collect();
        for due in dues {
            w.schedule_volume(app, id, due);
        }
        w.touch();
        ok_json(200, out)
    })
}

async fn extend(call: AppCall<(String, String)>, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let size = body
        .get("size_gb")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::bad_request("size_gb is required"))?;
    call.world(|w, _| {
        let a = w.app_mut(app)?;
        let v = a
            .volumes
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("volume not found"))?;
        if size <= v.size_gb {
            return Err(ApiError::bad_request(format!(
                "size_gb {size} must be larger than the current {} GB: volumes cannot shrink",
                v.size_gb
            )));
        }
        if size > 500 {
            return Err(ApiError::bad_request("size_gb cannot exceed 500"));
        }
        v.size_gb = size;
        let attached = v.attached_machine_id.clone();
        let out = v.to_json();
        let needs_restart = attached
            .and_then(|m| a.machines.get(&m))
            .is_some_and(|m| m.state == MState::Started);
        w.touch();
        ok_json(200, json!({"volume": out, "needs_restart": needs_restart}))
    })
}

async fn list_snapshots(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, _| {
        let v = volume(w, app, id)?;
        ok_json(
            200,
            Value::Array(v.snapshots.iter().map(Snapshot::to_json).collect()),
        )
    })
}

async fn take_snapshot(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, now| {
        let sid = w.rng.snapshot_id();
        let v = volume_mut(w, app, id)?;
        let digest = super::model::secret_digest(&sid);
        v.snapshots.push(Snapshot {
            id: sid,
            size: v.bytes_used,
            digest,
            created_ms: now,
            status: "created".into(),
            retention_days: v.snapshot_retention,
            volume_size: v.size_gb,
        });
        w.touch();
        ok_json(200, json!({}))
    })
}
