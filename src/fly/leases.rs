//! Leases (an exclusive lock on a machine) and machine metadata. Lease answers
//! come wrapped (`{status, data}`, what Fly sends) or flat (what the spec shows);
//! both are parsed. Metadata writes use PATCH with `machine_version` (412 when stale).

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Req, Resp, RetryMode, decode_value};
use super::{Client, Error, LeaseNonce, null_as_default};

/// Acquires sent for one lease before an ambiguous failure is reported: each one
/// after the first follows a look at the lease that found none.
const AMBIGUOUS_ACQUIRES: usize = 5;

/// A lease on a machine.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The nonce to send as `fly-machine-lease-nonce`. Fly shows it to anyone who may
    /// read the app (`GET …/lease`; fly-go `MachineLeaseData`), so it proves nothing
    /// about who holds the lease; compare it with the nonce you were given.
    pub nonce: Option<LeaseNonce>,
    /// Expiry, unix seconds.
    #[serde(default, deserialize_with = "null_as_default")]
    pub expires_at: i64,
    /// Holder.
    #[serde(default, deserialize_with = "null_as_default")]
    pub owner: String,
    /// Reason given.
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    /// Machine version the lease was taken on.
    pub version: Option<String>,
}

#[derive(Serialize)]
struct WireAcquire<'a> {
    ttl: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
}

#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct WireMetadataPatch<'a> {
    metadata: &'a BTreeMap<String, Option<String>>,
    machine_version: Option<&'a str>,
}

/// Unwraps `{status, data}` when present; otherwise the body is the lease itself.
fn parse_lease(
    op: &'static str,
    body: serde_json::Value,
    request_id: Option<&str>,
) -> Result<Lease, Error> {
    let inner = match body {
        serde_json::Value::Object(mut map)
            if map.get("data").is_some_and(serde_json::Value::is_object) =>
        {
            map.remove("data").unwrap_or_default()
        }
        other => other,
    };
    decode_value(op, inner, request_id)
}

/// The lease a lease call answered.
fn lease_answer(resp: &Resp) -> Result<Lease, Error> {
    parse_lease(resp.op, resp.json()?, resp.request_id.as_deref())
}

impl Req {
    /// The lease's time to live, in the query and in the body `{ttl, description}` (see
    /// [`Client::acquire_lease`]).
    fn lease_ttl(self, ttl_secs: u64, description: &str) -> Result<Req, Error> {
        let ttl = ttl_secs.max(1);
        self.query("ttl", ttl)
            .json(&WireAcquire { ttl, description })
    }
}

impl Client {
    /// Get Lease: `GET /v1/apps/{app_name}/machines/{machine_id}/lease`
    /// (`None` when no lease is held: 404).
    pub async fn get_lease(&self, app: &str, machine_id: &str) -> Result<Option<Lease>, Error> {
        let req = Req::machine("get_lease", Method::GET, app, machine_id, &["lease"]);
        match self.send(req).await {
            Ok(resp) => Ok(Some(lease_answer(&resp)?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create Lease: `POST /v1/apps/{app_name}/machines/{machine_id}/lease`
    /// (`?ttl=` and body `{ttl, description}`; 409 when someone else holds it). The
    /// spec puts `ttl` in the body, fly-go (`flaps/flaps_machines.go`, `AcquireLease`,
    /// `RefreshLease`) in the query: both are sent, so either reading gets our TTL.
    ///
    /// An acquire is not idempotent (a second one meets our own lease and answers 409),
    /// so after an ambiguous failure (5xx, reset: the lease may have been granted) this
    /// looks before asking again. The description carries a token of this call, and
    /// `GET …/lease` shows the lease with its nonce (fly-go `MachineLeaseData`): a lease
    /// with our token is ours and is adopted; no lease means the acquire had no effect
    /// and is repeated; anyone else's lease is the 409 the acquire would have met. fly-go
    /// `AcquireLease` retries every failure for a minute (`flaps/retry.go`) and would
    /// meet its own lease instead.
    pub async fn acquire_lease(
        &self,
        app: &str,
        machine_id: &str,
        ttl_secs: u64,
        description: &str,
    ) -> Result<Lease, Error> {
        let token = hex::encode(rand::random::<[u8; 6]>());
        let description = if description.is_empty() {
            format!("[{token}]")
        } else {
            format!("{description} [{token}]")
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let err = match self
                .acquire_once(app, machine_id, ttl_secs, &description)
                .await
            {
                Ok(lease) => return Ok(lease),
                Err(e) if e.is_ambiguous() && attempts < AMBIGUOUS_ACQUIRES => e,
                Err(e) => return Err(e),
            };
            match self.get_lease(app, machine_id).await? {
                None => {}
                Some(lease) if lease.description == description && lease.nonce.is_some() => {
                    tracing::debug!(
                        app,
                        machine = machine_id,
                        "an acquire answered {err} had taken the lease: adopted"
                    );
                    return Ok(lease);
                }
                Some(lease) => {
                    return Err(Error::Api {
                        op: "acquire_lease",
                        status: 409,
                        code: None,
                        message: format!(
                            "lease currently held by {}, expires at {} (after an unanswered acquire: {err})",
                            lease.owner, lease.expires_at
                        ),
                        request_id: None,
                        retry_after: None,
                    });
                }
            }
        }
    }

    async fn acquire_once(
        &self,
        app: &str,
        machine_id: &str,
        ttl_secs: u64,
        description: &str,
    ) -> Result<Lease, Error> {
        let req = Req::machine("acquire_lease", Method::POST, app, machine_id, &["lease"])
            .lease_ttl(ttl_secs, description)?;
        let lease = lease_answer(&self.send(req).await?)?;
        if lease.nonce.is_none() {
            return Err(Error::invalid(
                "lease",
                "the acquire answer carried no nonce",
            ));
        }
        Ok(lease)
    }

    /// Refresh Lease: `POST /v1/apps/{app_name}/machines/{machine_id}/lease?ttl=` with the
    /// nonce header (and `ttl` in the body too, as for an acquire).
    pub async fn refresh_lease(
        &self,
        app: &str,
        machine_id: &str,
        nonce: &LeaseNonce,
        ttl_secs: u64,
    ) -> Result<Lease, Error> {
        let req = Req::machine("refresh_lease", Method::POST, app, machine_id, &["lease"])
            .lease_ttl(ttl_secs, "")?
            .nonce(Some(nonce))
            .retry(RetryMode::Safe);
        let mut lease = lease_answer(&self.send(req).await?)?;
        match &lease.nonce {
            None => lease.nonce = Some(nonce.clone()),
            // flyctl (`internal/machine/leasable_machine.go`, `RefreshLease`) refuses a
            // refresh that answers a new nonce: the lease we held is not the one now held.
            Some(answered) if answered != nonce => {
                return Err(Error::invalid(
                    "lease",
                    "the refresh answered another nonce: the lease held is no longer ours",
                ));
            }
            Some(_) => {}
        }
        Ok(lease)
    }

    /// Release Lease: `DELETE /v1/apps/{app_name}/machines/{machine_id}/lease` with the nonce header.
    /// A 404 ("lease not found": it expired, or a retried release already removed it) is
    /// success: no lease of ours is left, and flyctl ignores that answer too
    /// (`internal/machine/lease.go`, `releaseLease`).
    pub async fn release_lease(
        &self,
        app: &str,
        machine_id: &str,
        nonce: &LeaseNonce,
    ) -> Result<(), Error> {
        let req = Req::machine("release_lease", Method::DELETE, app, machine_id, &["lease"])
            .nonce(Some(nonce));
        match self.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Get Metadata: `GET /v1/apps/{app_name}/machines/{machine_id}/metadata`.
    pub async fn get_metadata(
        &self,
        app: &str,
        machine_id: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let req = Req::machine("get_metadata", Method::GET, app, machine_id, &["metadata"]);
        let map: Option<BTreeMap<String, String>> = self.send(req).await?.json()?;
        Ok(map.unwrap_or_default())
    }

    /// Patch Metadata: `PATCH /v1/apps/{app_name}/machines/{machine_id}/metadata`
    /// (body `{metadata: {k: v or null to remove}, machine_version}`; 412 when stale).
    pub async fn patch_metadata(
        &self,
        app: &str,
        machine_id: &str,
        changes: &BTreeMap<String, Option<String>>,
        machine_version: Option<&str>,
        nonce: Option<&LeaseNonce>,
    ) -> Result<(), Error> {
        let req = Req::machine(
            "patch_metadata",
            Method::PATCH,
            app,
            machine_id,
            &["metadata"],
        )
        .json(&WireMetadataPatch {
            metadata: changes,
            machine_version,
        })?
        .nonce(nonce)
        .retry(RetryMode::Safe);
        self.send(req).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_lease_shapes_parse() {
        let wrapped = json!({"status": "success", "data": {"nonce": "n1", "expires_at": 17, "owner": "a@b", "description": "", "version": "v"}});
        let flat = json!({"nonce": "n1", "expires_at": 17, "owner": "a@b", "description": "", "version": "v"});
        let a = parse_lease("t", wrapped, None).unwrap();
        let b = parse_lease("t", flat, None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.nonce.unwrap().as_str(), "n1");
    }
}
