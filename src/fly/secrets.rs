//! App secrets over REST: list (names and digests only; values are never
//! requested) and set/unset many in one call (returns the new secrets version).
//! Values are `SecretString`s and are exposed only into the request body.

use std::collections::BTreeMap;

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::client::Req;
use super::{Client, Error, null_as_default};

/// A secret's name and digest (never its value).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// Name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Digest of the value.
    #[serde(default, deserialize_with = "null_as_default")]
    pub digest: String,
    /// Creation time.
    pub created_at: Option<String>,
    /// Last update time.
    pub updated_at: Option<String>,
}

/// What a secrets update answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretsVersion {
    /// The new secrets version (pass as `min_secrets_version` to roll it out).
    pub version: u64,
    /// The app's secrets after the change.
    pub secrets: Vec<Secret>,
}

#[derive(Deserialize)]
struct WireSecretList {
    #[serde(default, deserialize_with = "null_as_default")]
    secrets: Vec<Secret>,
}

#[derive(Deserialize)]
struct WireUpdate {
    #[serde(default, deserialize_with = "null_as_default")]
    secrets: Vec<Secret>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(rename = "Version", default)]
    legacy_version: Option<u64>,
}

/// Whether `name` can be a secret's name: an environment variable name (letters,
/// digits and underscores, not starting with a digit).
pub fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Secret names: an environment variable name.
fn check_name(name: &str) -> Result<(), Error> {
    if is_secret_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(
            "secret name",
            format!("`{name}` must be letters, digits and underscores, not starting with a digit"),
        ))
    }
}

impl Client {
    /// List App Secrets: `GET /v1/apps/{app_name}/secrets` (names and digests;
    /// `show_secrets` is never sent).
    pub async fn list_secrets(&self, app: &str) -> Result<Vec<Secret>, Error> {
        let req = Req::app("list_secrets", Method::GET, app, &["secrets"]);
        let wire: WireSecretList = self.send(req).await?.json()?;
        Ok(wire.secrets)
    }

    /// Update App Secrets: `POST /v1/apps/{app_name}/secrets` (body
    /// `{values: {NAME: value or null to unset}}`). Setting is idempotent, so
    /// transient failures are retried.
    pub async fn update_secrets(
        &self,
        app: &str,
        changes: &BTreeMap<String, Option<SecretString>>,
    ) -> Result<SecretsVersion, Error> {
        if changes.is_empty() {
            return Err(Error::invalid(
                "secrets",
                "at least one secret to set or unset",
            ));
        }
        let mut values = serde_json::Map::new();
        for (name, value) in changes {
            check_name(name)?;
            let v = match value {
                Some(secret) => serde_json::Value::String(secret.expose_secret().to_owned()),
                None => serde_json::Value::Null,
            };
            values.insert(name.clone(), v);
        }
        let req = Req::app("update_secrets", Method::POST, app, &["secrets"])
            .json(&serde_json::json!({ "values": values }))?
            .retry(super::client::RetryMode::Safe);
        let wire: WireUpdate = self.send(req).await?.json()?;
        Ok(SecretsVersion {
            version: wire.version.or(wire.legacy_version).unwrap_or_default(),
            secrets: wire.secrets,
        })
    }
}
