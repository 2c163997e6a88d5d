//! TLS certificates over REST (`/v1/apps/{app}/certificates/…`): list (paged),
//! get with DNS requirements, add an ACME certificate, re-run the check, remove.
//! Custom certificate upload (private keys) is deliberately not offered.

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{EmptyPage, Req, RetryMode, all_pages};
use super::{Client, Error, null_as_default};

/// One issued certificate of a hostname.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// `custom` or `fly`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub source: String,
    /// `active`, `pending_ownership`, `pending_validation`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// Issuer.
    pub issuer: Option<String>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Expiry time.
    pub expires_at: Option<String>,
}

/// Which validations passed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateValidation {
    /// DNS points at the app.
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_configured: bool,
    /// TLS-ALPN challenge possible.
    #[serde(default, deserialize_with = "null_as_default")]
    pub alpn_configured: bool,
    /// HTTP challenge possible.
    #[serde(default, deserialize_with = "null_as_default")]
    pub http_configured: bool,
    /// Ownership TXT record found.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ownership_txt_configured: bool,
}

/// A DNS name and the value it should point to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsTarget {
    /// Record name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Record target.
    #[serde(default, deserialize_with = "null_as_default")]
    pub target: String,
}

/// The ownership TXT record to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnershipRecord {
    /// Record name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Value proving app ownership.
    #[serde(default, deserialize_with = "null_as_default")]
    pub app_value: String,
    /// Value proving org ownership.
    #[serde(default, deserialize_with = "null_as_default")]
    pub org_value: String,
}

/// The DNS records the hostname needs.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsRequirements {
    /// A records.
    #[serde(default, deserialize_with = "null_as_default")]
    pub a: Vec<String>,
    /// AAAA records.
    #[serde(default, deserialize_with = "null_as_default")]
    pub aaaa: Vec<String>,
    /// CNAME target.
    pub cname: Option<String>,
    /// ACME DNS challenge CNAME.
    pub acme_challenge: Option<DnsTarget>,
    /// Ownership TXT record.
    pub ownership: Option<OwnershipRecord>,
}

/// A validation problem with its remedy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateValidationError {
    /// Code.
    #[serde(default, deserialize_with = "null_as_default")]
    pub code: String,
    /// Message.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// What to do.
    #[serde(default, deserialize_with = "null_as_default")]
    pub remediation: String,
}

/// A hostname's certificate state (list entries fill the summary fields;
/// detail and check answers fill the rest).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// Hostname.
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostname: String,
    /// Overall status.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// DNS is configured for the app.
    #[serde(default, deserialize_with = "null_as_default")]
    pub configured: bool,
    /// An ACME certificate was requested.
    #[serde(default, deserialize_with = "null_as_default")]
    pub acme_requested: bool,
    /// DNS provider.
    pub dns_provider: Option<String>,
    /// Let's Encrypt rate limit until.
    pub rate_limited_until: Option<String>,
    /// Creation time.
    pub created_at: Option<String>,
    /// Issued certificates.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateEntry>,
    /// Validation results.
    pub validation: Option<CertificateValidation>,
    /// DNS records to create.
    pub dns_requirements: Option<DnsRequirements>,
    /// Validation problems.
    #[serde(default, deserialize_with = "null_as_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<CertificateValidationError>,
}

#[derive(Deserialize)]
struct WireCertList {
    #[serde(default, deserialize_with = "null_as_default")]
    certificates: Vec<Certificate>,
    #[serde(default)]
    next_cursor: Option<String>,
}

fn check_hostname(hostname: &str) -> Result<(), Error> {
    let ok = !hostname.is_empty()
        && hostname.len() <= 253
        && hostname.split('.').count() >= 2
        && hostname.split('.').enumerate().all(|(i, label)| {
            !label.is_empty()
                && label.len() <= 63
                && (label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    || (i == 0 && label == "*"))
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "hostname",
            format!("`{hostname}` is not a valid DNS name"),
        ))
    }
}

impl Client {
    /// List Certificates: `GET /v1/apps/{app_name}/certificates` (all pages).
    pub async fn list_certificates(&self, app: &str) -> Result<Vec<Certificate>, Error> {
        all_pages(
            super::apps::MAX_PAGES,
            EmptyPage::Ends,
            |cursor| async move {
                let req = Req::app("list_certificates", Method::GET, app, &["certificates"])
                    .query("limit", 500)
                    .query_opt("cursor", cursor);
                let page: WireCertList = self.send(req).await?.json()?;
                let next = page.next_cursor.filter(|c| !c.is_empty());
                Ok((page.certificates, next))
            },
        )
        .await
    }

    /// Get Certificate: `GET /v1/apps/{app_name}/certificates/{hostname}`.
    pub async fn get_certificate(&self, app: &str, hostname: &str) -> Result<Certificate, Error> {
        let req = Req::app(
            "get_certificate",
            Method::GET,
            app,
            &["certificates", hostname],
        );
        self.send(req).await?.json()
    }

    /// Add ACME Certificate: `POST /v1/apps/{app_name}/certificates/acme` (body `{hostname}`).
    pub async fn add_acme_certificate(
        &self,
        app: &str,
        hostname: &str,
    ) -> Result<Certificate, Error> {
        check_hostname(hostname)?;
        let req = Req::app(
            "add_acme_certificate",
            Method::POST,
            app,
            &["certificates", "acme"],
        )
        .json(&serde_json::json!({ "hostname": hostname }))?;
        self.send(req).await?.json()
    }

    /// Check Certificate: `POST /v1/apps/{app_name}/certificates/{hostname}/check`.
    pub async fn check_certificate(&self, app: &str, hostname: &str) -> Result<Certificate, Error> {
        let req = Req::app(
            "check_certificate",
            Method::POST,
            app,
            &["certificates", hostname, "check"],
        )
        .retry(RetryMode::Safe);
        self.send(req).await?.json()
    }

    /// Remove Certificate: `DELETE /v1/apps/{app_name}/certificates/{hostname}`.
    pub async fn remove_certificate(&self, app: &str, hostname: &str) -> Result<(), Error> {
        let req = Req::app(
            "remove_certificate",
            Method::DELETE,
            app,
            &["certificates", hostname],
        );
        self.send(req).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Issued certificates and validation errors: `null`, missing and empty all decode as
    /// empty and are left out when encoded; filled ones go out as they came.
    #[test]
    fn certificate_lists_null_missing_and_empty() {
        let summary = json!({"hostname": "a.example.com", "status": "ok",
            "configured": true, "acme_requested": false});
        for (certificates, errors) in [
            (None, None),
            (Some(json!(null)), Some(json!(null))),
            (Some(json!([])), Some(json!([]))),
        ] {
            let mut wire = summary.clone();
            if let (Some(c), Some(e)) = (certificates, errors) {
                wire["certificates"] = c;
                wire["validation_errors"] = e;
            }
            let cert: Certificate = serde_json::from_value(wire).unwrap();
            assert!(cert.certificates.is_empty() && cert.validation_errors.is_empty());
            assert_eq!(serde_json::to_value(&cert).unwrap(), summary);
        }
        let mut full = summary.clone();
        full["certificates"] = json!([{"source": "fly", "status": "active"}]);
        full["validation_errors"] = json!([{"code": "c", "message": "m", "remediation": "r"}]);
        let cert: Certificate = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(serde_json::to_value(&cert).unwrap(), full);
    }
}
