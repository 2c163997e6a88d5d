//! Volumes and snapshots: list (`fly-next-cursor` paging), get, create (plain,
//! restore from `snapshot_id`, fork from `source_volume_id`), update backup
//! settings, extend, destroy; snapshot list and create.

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{EmptyPage, Req, RetryMode, all_pages};
use super::{Client, Error, GuestConfig, null_as_default};

/// A Fly volume.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// `vol_…`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Name (machines mount volumes by name or id).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `created`, `restoring`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub state: String,
    /// Region code.
    #[serde(default, deserialize_with = "null_as_default")]
    pub region: String,
    /// Hardware zone.
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone: String,
    /// Size in GB.
    #[serde(default, deserialize_with = "null_as_default")]
    pub size_gb: u64,
    /// Encrypted at rest.
    #[serde(default, deserialize_with = "null_as_default")]
    pub encrypted: bool,
    /// File system type.
    #[serde(default, deserialize_with = "null_as_default")]
    pub fstype: String,
    /// Creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: String,
    /// The machine it is attached to.
    pub attached_machine_id: Option<String>,
    /// The allocation it is attached to.
    pub attached_alloc_id: Option<String>,
    /// Bytes used, when reported.
    pub bytes_used: Option<u64>,
    /// Bytes in total, when reported.
    pub bytes_total: Option<u64>,
    /// Blocks in total.
    pub blocks: Option<u64>,
    /// Block size.
    pub block_size: Option<u64>,
    /// Free blocks.
    pub blocks_free: Option<u64>,
    /// Blocks available to unprivileged users.
    pub blocks_avail: Option<u64>,
    /// Days automatic snapshots are kept.
    pub snapshot_retention: Option<u32>,
    /// Daily automatic snapshots.
    pub auto_backup_enabled: Option<bool>,
    /// `ok`, `unknown` or `unreachable`.
    pub host_status: Option<String>,
}

/// The states of a volume on its way out, as fly-go lists them
/// (`flaps/flaps_volumes.go`, `destroyedVolumeStates`, which `GetVolumes` filters out
/// of every listing), plus `destroyed`. A destroyed volume stays listed in these
/// states for a while (flyctl `test/preflight/fly_volume_test.go`).
pub const VOLUME_GOING_STATES: [&str; 6] = [
    "scheduling_destroy",
    "fork_cleanup",
    "waiting_for_detach",
    "pending_destroy",
    "destroying",
    "destroyed",
];

impl Volume {
    /// Whether the volume is being destroyed (or is): not live, not to be reused,
    /// mounted, counted or destroyed again. The one predicate every workflow uses.
    pub fn is_going(&self) -> bool {
        VOLUME_GOING_STATES.contains(&self.state.as_str())
    }

    /// Whether a machine uses the volume.
    pub fn is_attached(&self) -> bool {
        self.attached_machine_id
            .as_deref()
            .is_some_and(|m| !m.is_empty())
    }
}

/// Body of a volume create.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolume {
    /// Name.
    pub name: String,
    /// Region code (must match the machine that will mount it).
    pub region: String,
    /// Size in GB (optional for a restore or a fork).
    pub size_gb: Option<u64>,
    /// Encrypt at rest (Fly's default is true).
    pub encrypted: Option<bool>,
    /// File system type.
    pub fstype: Option<String>,
    /// Put same-named volumes on different hardware (Fly's default is true).
    pub require_unique_zone: Option<bool>,
    /// Spread across all of the app's volumes.
    pub unique_zone_app_wide: Option<bool>,
    /// Restore from this snapshot (`vs_…`).
    pub snapshot_id: Option<String>,
    /// Fork from this volume (`vol_…`).
    pub source_volume_id: Option<String>,
    /// Days to keep automatic snapshots (1–60).
    pub snapshot_retention: Option<u32>,
    /// Daily automatic snapshots.
    pub auto_backup_enabled: Option<bool>,
    /// Guest the volume will be used with (placement hint).
    pub compute: Option<GuestConfig>,
}

/// Body of a volume update (backup settings).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateVolume {
    /// Daily automatic snapshots.
    pub auto_backup_enabled: Option<bool>,
    /// Days to keep automatic snapshots (1–60).
    pub snapshot_retention: Option<u32>,
}

/// What an extend answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendedVolume {
    /// The volume after the change.
    #[serde(default)]
    pub volume: Volume,
    /// Restart the attached machine to use the space.
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_restart: bool,
}

/// A volume snapshot.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `vs_…`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Size in bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub size: u64,
    /// Content digest.
    #[serde(default, deserialize_with = "null_as_default")]
    pub digest: String,
    /// Creation time.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created_at: String,
    /// Days it is kept.
    pub retention_days: Option<u32>,
    /// Status, when given.
    pub status: Option<String>,
    /// Size of the volume it was taken from, when given.
    pub volume_size: Option<u64>,
}

fn check_retention(days: Option<u32>) -> Result<(), Error> {
    match days {
        Some(d) if !(1..=60).contains(&d) => Err(Error::invalid(
            "snapshot_retention",
            "must be between 1 and 60 days",
        )),
        _ => Ok(()),
    }
}

impl Client {
    /// List Volumes: `GET /v1/apps/{app_name}/volumes` (follows `fly-next-cursor`).
    pub async fn list_volumes(&self, app: &str) -> Result<Vec<Volume>, Error> {
        all_pages(
            super::apps::MAX_PAGES,
            EmptyPage::Ends,
            |cursor| async move {
                let req = Req::app("list_volumes", Method::GET, app, &["volumes"])
                    .query_opt("cursor", cursor);
                let resp = self.send(req).await?;
                let next = resp.header("fly-next-cursor").filter(|c| !c.is_empty());
                Ok((resp.json()?, next.map(str::to_owned)))
            },
        )
        .await
    }

    /// Get Volume: `GET /v1/apps/{app_name}/volumes/{volume_id}`.
    pub async fn get_volume(&self, app: &str, volume_id: &str) -> Result<Volume, Error> {
        let req = Req::volume("get_volume", Method::GET, app, volume_id, &[]);
        self.send(req).await?.json()
    }

    /// Create Volume: `POST /v1/apps/{app_name}/volumes` (restore with
    /// `snapshot_id`, fork with `source_volume_id`).
    pub async fn create_volume(&self, app: &str, body: &CreateVolume) -> Result<Volume, Error> {
        super::validate::volume_name(&body.name)?;
        super::validate::region(&body.region, &[])?;
        if body.size_gb.is_none() && body.snapshot_id.is_none() && body.source_volume_id.is_none() {
            return Err(Error::invalid(
                "size_gb",
                "is required unless restoring from snapshot_id or forking source_volume_id",
            ));
        }
        if body.size_gb == Some(0) {
            return Err(Error::invalid("size_gb", "must be at least 1"));
        }
        check_retention(body.snapshot_retention)?;
        let req = Req::app("create_volume", Method::POST, app, &["volumes"]).json(body)?;
        self.send(req).await?.json()
    }

    /// Update Volume: `PUT /v1/apps/{app_name}/volumes/{volume_id}` (backup settings).
    pub async fn update_volume(
        &self,
        app: &str,
        volume_id: &str,
        body: &UpdateVolume,
    ) -> Result<Volume, Error> {
        check_retention(body.snapshot_retention)?;
        let req = Req::volume("update_volume", Method::PUT, app, volume_id, &[]).json(body)?;
        self.send(req).await?.json()
    }

    /// Extend Volume: `PUT /v1/apps/{app_name}/volumes/{volume_id}/extend` (`size_gb` is the new total).
    pub async fn extend_volume(
        &self,
        app: &str,
        volume_id: &str,
        size_gb: u64,
    ) -> Result<ExtendedVolume, Error> {
        let req = Req::volume("extend_volume", Method::PUT, app, volume_id, &["extend"])
            .json(&serde_json::json!({ "size_gb": size_gb }))?;
        self.send(req).await?.json()
    }

    /// Destroy Volume: `DELETE /v1/apps/{app_name}/volumes/{volume_id}`.
    pub async fn destroy_volume(&self, app: &str, volume_id: &str) -> Result<Volume, Error> {
        let req = Req::volume("destroy_volume", Method::DELETE, app, volume_id, &[]);
        let resp = self.send(req).await?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Volume {
                id: volume_id.to_owned(),
                ..Volume::default()
            });
        }
        resp.json()
    }

    /// List Snapshots: `GET /v1/apps/{app_name}/volumes/{volume_id}/snapshots`.
    pub async fn list_snapshots(&self, app: &str, volume_id: &str) -> Result<Vec<Snapshot>, Error> {
        let req = Req::volume(
            "list_snapshots",
            Method::GET,
            app,
            volume_id,
            &["snapshots"],
        );
        self.send(req).await?.json()
    }

    /// Create Snapshot: `POST /v1/apps/{app_name}/volumes/{volume_id}/snapshots`.
    pub async fn create_snapshot(&self, app: &str, volume_id: &str) -> Result<(), Error> {
        let req = Req::volume(
            "create_snapshot",
            Method::POST,
            app,
            volume_id,
            &["snapshots"],
        )
        .retry(RetryMode::Unsafe);
        self.send(req).await?;
        Ok(())
    }
}
