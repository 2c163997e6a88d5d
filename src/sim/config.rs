//! What the simulator accepts as a machine config: a create's or update's config
//! validated and normalised (as the Machines API does before anything is scheduled),
//! and the secrets version it launches with.

use serde_json::{Value, json};

use super::http::ApiError;
use super::model::World;
use super::platform;

impl World {
    /// The secrets version a create or update launches with: 400 when
    /// `min_secrets_version` names a version the app does not have yet; otherwise at
    /// least that version, and without it only what every host has seen (realism:
    /// `secrets_propagation_ms`).
    pub(super) fn launch_secrets(
        &self,
        app: &str,
        body: &Value,
        now: u64,
    ) -> Result<u64, ApiError> {
        let a = self
            .apps
            .get(app)
            .ok_or_else(|| ApiError::not_found("app not found"))?;
        let min = body.get("min_secrets_version").and_then(Value::as_u64);
        if let Some(min) = min
            && min > a.secrets_version
        {
            return Err(ApiError::new(
                400,
                format!(
                    "min_secrets_version {min} is newer than the app's secrets version {}",
                    a.secrets_version
                ),
            ));
        }
        Ok(a.launch_secrets_version(min, now, self.realism.secrets_propagation_ms))
    }

    /// Validates a create/update request and returns the normalised config and region.
    pub(crate) fn normalise_config(
        &mut self,
        app: &str,
        machine_id: &str,
        mut config: Value,
        region: &str,
        current_mounts: &[String],
    ) -> Result<Value, ApiError> {
        let obj = config.as_object_mut().ok_or_else(|| {
            ApiError::new(400, "invalid machine config: config must be an object")
        })?;
        match obj.get("image").and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => {}
            _ => {
                return Err(ApiError::new(
                    400,
                    "invalid machine config: config.image is required",
                ));
            }
        }
        let guest = platform::validate_guest(obj.get("guest"))?;
        obj.insert("guest".into(), guest);
        let mounts = obj
            .get("mounts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut resolved = Vec::new();
        let a = self
            .apps
            .get(app)
            .ok_or_else(|| ApiError::not_found("app not found"))?;
        let mut taken: Vec<String> = Vec::new();
        for mount in mounts {
            let mut mount = mount;
            let wanted = mount
                .get("volume")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if wanted.is_empty() {
                return Err(ApiError::new(400, "invalid mount: volume is required"));
            }
            if mount
                .get("path")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::new(400, "invalid mount: path is required"));
            }
            let usable = |v: &&super::model::Volume| {
                v.attached_machine_id.is_none()
                    || v.attached_machine_id.as_deref() == Some(machine_id)
                    || current_mounts.contains(&v.id)
            };
            let vol = if wanted.starts_with("vol_") {
                let v = a.volumes.get(&wanted).ok_or_else(|| {
                    ApiError::new(400, format!("volume {wanted} not found in app {app}"))
                })?;
                if v.region != region {
                    return Err(ApiError::new(
                        400,
                        format!(
                            "volume {wanted} is in region {} but the machine is in {region}: a volume must be in the machine's region",
                            v.region
                        ),
                    ));
                }
                if !usable(&v) {
                    return Err(ApiError::new(
                        409,
                        format!(
                            "volume {wanted} is already attached to machine {}",
                            v.attached_machine_id.as_deref().unwrap_or("")
                        ),
                    ));
                }
                v
            } else {
                a.volumes
                    .values()
                    .filter(|v| {
                        v.name == wanted
                            && v.region == region
                            && !taken.contains(&v.id)
                            && !super::model::volume_is_going(&v.state)
                    })
                    .find(usable)
                    .ok_or_else(|| {
                        ApiError::new(
                            400,
                            format!(
                                "no unattached volume named {wanted:?} in region {region}; create one first or pick the region it is in"
                            ),
                        )
                    })?
            };
            if v_state_blocks(&vol.state) {
                return Err(ApiError::new(
                    412,
                    format!("volume {} is not ready (state {})", vol.id, vol.state),
                ));
            }
            taken.push(vol.id.clone());
            if let Some(m) = mount.as_object_mut() {
                m.insert("volume".into(), json!(vol.id));
                m.insert("name".into(), json!(vol.name));
            }
            resolved.push((mount, vol.zone.clone()));
        }
        if let Some((_, first_zone)) = resolved.first()
            && resolved.iter().any(|(_, z)| z != first_zone)
        {
            return Err(ApiError::new(
                400,
                "mounted volumes must all be in the same zone (they would be on different hosts)",
            ));
        }
        if !resolved.is_empty() {
            obj.insert(
                "mounts".into(),
                Value::Array(resolved.into_iter().map(|(m, _)| m).collect()),
            );
        }
        Ok(config)
    }
}

/// A volume in this state cannot be mounted: being restored, or on its way out.
fn v_state_blocks(state: &str) -> bool {
    state == "restoring" || super::model::volume_is_going(state)
}
