//! The control API under `/__sim/`: inspect the world and the request log, set faults,
//! rate limits and realism, reset, move the stepped clock, and inject events tests need
//! (capacity failures, OOM kills, volume usage). Never faulted, never rate limited,
//! no auth.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::faults::FaultConfig;
use super::http::{ApiError, ApiResult, ok_json, parse_body, str_field};
use super::model::World;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sim/state", get(state))
        .route("/__sim/requests", get(requests).delete(clear_requests))
        .route("/__sim/faults", post(faults))
        .route("/__sim/reset", post(reset))
        .route("/__sim/clock/advance", post(advance))
        .route("/__sim/rate-limits", post(rate_limits))
        .route("/__sim/realism", post(realism))
        .route("/__sim/capacity", post(capacity))
        .route("/__sim/machines/{id}/crash", post(crash))
        .route("/__sim/machines/{id}/host", post(host))
        .route("/__sim/volumes/{id}/usage", post(volume_usage))
        .route("/__sim/tokens", post(tokens))
}

/// `{"org": "slug"}`: an org token minted with the simulator's key; `{}`: the viewer's.
async fn tokens(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let token = match body.get("org").and_then(Value::as_str) {
        Some(org) => s
            .org_token(org)
            .ok_or_else(|| ApiError::not_found(format!("organization {org} not found")))?,
        None => s.viewer_token(),
    };
    ok_json(200, json!({"token": token}))
}

async fn state(State(s): State<Arc<Shared>>) -> ApiResult {
    ok_json(200, s.with_world(|w, now| w.state_json(now)))
}

async fn requests(State(s): State<Arc<Shared>>) -> ApiResult {
    let list = s.with_world(|w, _| serde_json::to_value(&w.requests).unwrap_or(Value::Null));
    ok_json(200, json!({"requests": list}))
}

async fn clear_requests(State(s): State<Arc<Shared>>) -> ApiResult {
    s.with_world(|w, _| w.requests.clear());
    ok_json(200, json!({"ok": true}))
}

/// `{"spec": "5xx=0.05,reset=0.02,latency=200ms@0.5"}` or the bare string.
async fn faults(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let text = String::from_utf8_lossy(&body).to_string();
    let spec = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) => o
            .get("spec")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Ok(Value::String(s)) => s,
        _ => text.trim().to_owned(),
    };
    let cfg: FaultConfig = spec
        .parse()
        .map_err(|e: super::SimError| ApiError::bad_request(e.to_string()))?;
    s.with_world(|w, _| w.faults = cfg);
    ok_json(200, json!({"ok": true, "spec": spec}))
}

async fn reset(State(s): State<Arc<Shared>>) -> ApiResult {
    let now = s.clock.now_ms();
    let fresh = World::load(&s.cfg, now).map_err(|e| ApiError::new(500, e.to_string()))?;
    s.with_world(|w, _| {
        *w = fresh;
        w.touch();
    });
    ok_json(200, json!({"ok": true}))
}

/// `{"ms": N}` or `{"seconds": N}`.
async fn advance(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let ms = body
        .get("ms")
        .and_then(Value::as_u64)
        .or_else(|| {
            body.get("seconds").and_then(Value::as_f64).map(|x| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let ms = (x.max(0.0) * 1000.0) as u64;
                ms
            })
        })
        .ok_or_else(|| ApiError::bad_request("give {\"ms\": N} or {\"seconds\": N}"))?;
    let now = s.advance_ms(ms);
    ok_json(200, json!({"ok": true, "now_ms": now}))
}

/// The `{"enabled": bool}` of a switch: 400 without it.
fn enabled(body: &[u8]) -> Result<bool, ApiError> {
    parse_body(body)?
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::bad_request("give {\"enabled\": bool}"))
}

async fn rate_limits(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let on = enabled(&body)?;
    s.with_world(|w, _| {
        w.rate_limits_on = on;
        w.limiter.clear();
    });
    ok_json(200, json!({"ok": true, "enabled": on}))
}

/// `{"enabled": bool}`: the realistic profile (`Realism::realistic`) or the ideal
/// platform (`Realism::off`), for what happens from now on.
async fn realism(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let on = enabled(&body)?;
    s.with_world(|w, _| {
        w.realism = if on {
            super::Realism::realistic()
        } else {
            super::Realism::off()
        };
    });
    ok_json(200, json!({"ok": true, "enabled": on}))
}

/// `{"region": "iad", "failures": N, "volume_failures": M}`: the next N machine
/// creates there answer `insufficient_capacity`, the next M volume creates
/// `volume_placement_capacity` (both as 503s; `failures` defaults to 1 when neither is given).
async fn capacity(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let region = str_field(&body, "region");
    let volumes = body.get("volume_failures").and_then(Value::as_u64);
    let n = body
        .get("failures")
        .and_then(Value::as_u64)
        .or(volumes.is_none().then_some(1));
    if super::platform::region(&region).is_none() {
        return Err(ApiError::bad_request(format!("unknown region {region:?}")));
    }
    s.with_world(|w, _| {
        if let Some(n) = n {
            w.capacity_failures
                .insert(region.clone(), u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(m) = volumes {
            w.volume_capacity_failures
                .insert(region.clone(), u32::try_from(m).unwrap_or(u32::MAX));
        }
    });
    ok_json(
        200,
        json!({"ok": true, "region": region, "failures": n, "volume_failures": volumes}),
    )
}

/// `{"status": "unreachable" | "unknown" | "ok"}`: the machine's host as Fly sees it.
/// While it is not `ok` the machine shows `incomplete_config` instead of `config`, and
/// updates and lifecycle actions answer 503 (flyd cannot be reached).
async fn host(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unreachable")
        .to_owned();
    if !["ok", "unreachable", "unknown"].contains(&status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "host status {status:?}: expected ok, unreachable or unknown"
        )));
    }
    on_machine(&s, &id, |w, app, now| {
        let m = w.machine_mut(app, &id)?;
        m.host_status.clone_from(&status);
        m.updated_ms = now;
        w.touch();
        ok_json(200, json!({"ok": true, "id": id, "host_status": status}))
    })
}

/// Runs `f` on the world with the app of machine `id` (whichever app holds it): 404
/// when none does.
fn on_machine<R>(
    s: &Shared,
    id: &str,
    f: impl FnOnce(&mut World, &str, u64) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    s.with_world(|w, now| {
        let app = w
            .apps
            .values()
            .find(|a| a.machines.contains_key(id))
            .map(|a| a.name.clone())
            .ok_or_else(|| ApiError::not_found("machine not found"))?;
        f(w, &app, now)
    })
}

/// `{"oom": true}` (default) or `{"signal": "SIGSEGV"}`: the guest process dies.
async fn crash(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let oom = body.get("oom").and_then(Value::as_bool).unwrap_or(true);
    let signo = body
        .get("signal")
        .and_then(Value::as_str)
        .and_then(super::platform::signal_number)
        .unwrap_or(9);
    let out = on_machine(&s, &id, |w, app, now| {
        w.kill_process(app, &id, signo, oom, now)
    })?;
    ok_json(200, out)
}

async fn volume_usage(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(&body)?;
    let used = body
        .get("bytes_used")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::bad_request("give {\"bytes_used\": N}"))?;
    s.with_world(|w, _| {
        let v = w
            .apps
            .values_mut()
            .find_map(|a| a.volumes.get_mut(&id))
            .ok_or_else(|| ApiError::not_found("volume not found"))?;
        v.bytes_used = used.min(v.size_gb.saturating_mul(1 << 30));
        w.touch();
        ok_json(200, json!({"ok": true}))
    })
}
