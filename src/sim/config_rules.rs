//! What a machine create or update request must say besides its config (which
//! `config.rs` validates and normalises): a config at all, a Fly region, a name no live
//! machine of the app holds, the version it was read at, no change of region. The
//! lifecycle runs these checks in the order Fly answers them; each error is Fly-shaped.

use serde_json::Value;

use super::http::ApiError;
use super::model::{MState, World};
use super::platform;

/// The request's `config`: 400 without one.
pub(super) fn required_config(body: &Value) -> Result<Value, ApiError> {
    body.get("config")
        .cloned()
        .ok_or_else(|| ApiError::new(400, "invalid request: config is required"))
}

/// Whether the request asks to create or update without booting the machine.
pub(super) fn skip_launch(body: &Value) -> bool {
    body.get("skip_launch")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The volume ids a config mounts.
pub(super) fn mounted_volumes(config: &Value) -> Vec<String> {
    config
        .get("mounts")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|x| x.get("volume").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// 409 when the update names a `current_version` the machine is no longer at.
pub(super) fn check_current_version(body: &Value, current: &str) -> Result<(), ApiError> {
    match body.get("current_version").and_then(Value::as_str) {
        Some(cv) if !cv.is_empty() && cv != current => Err(ApiError::new(
            409,
            format!(
                "machine version mismatch: current_version {cv} is not the machine's current version {current}"
            ),
        )),
        _ => Ok(()),
    }
}

/// 400 when the update asks for another region than the machine's.
pub(super) fn check_same_region(body: &Value, region: &str) -> Result<(), ApiError> {
    match body.get("region").and_then(Value::as_str) {
        Some(r) if !r.is_empty() && r != region => Err(ApiError::new(
            400,
            format!(
                "cannot change a machine's region ({region} → {r}); create a new machine instead"
            ),
        )),
        _ => Ok(()),
    }
}

impl World {
    /// A create's region (the nearest when none is given): 400 for one that is not a
    /// Fly region.
    pub(super) fn create_region(&self, body: &Value) -> Result<String, ApiError> {
        let region = match body.get("region").and_then(Value::as_str) {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => self.nearest_region.clone(),
        };
        if platform::region(&region).is_none() {
            return Err(ApiError::new(
                400,
                format!(
                    "invalid region {region:?}: not a Fly region (GET /v1/platform/regions lists them)"
                ),
            ));
        }
        Ok(region)
    }

    /// A create's machine name (a generated one when none is given): 409 when a machine
    /// of `app` that is not destroyed has it.
    pub(super) fn create_name(&mut self, app: &str, body: &Value) -> Result<String, ApiError> {
        let name = match body.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => self.rng.machine_name(),
        };
        if let Some(existing) = self.apps.get(app).and_then(|a| {
            a.machines
                .values()
                .find(|m| m.name == name && m.state != MState::Destroyed)
        }) {
            return Err(ApiError::new(
                409,
                format!(
                    "already_exists: unique machine name violation, machine ID {} already exists with name \"{name}\"",
                    existing.id
                ),
            ));
        }
        Ok(name)
    }
}
