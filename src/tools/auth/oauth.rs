//! OAuth 2.1 resource server (`--oauth-issuer`, `--oauth-audience`), as the MCP
//! authorization spec has it: the protected-resource metadata (RFC 9728), and JWT
//! access tokens validated against the issuer's JWKS (found through its metadata,
//! RFC 8414 / OpenID discovery; cached; fetched again on an unknown `kid`, at most once
//! per [`MIN_REFETCH`], so a key rotated at the provider is picked up without a
//! restart). Checked: signature, algorithm (asymmetric only: no `none`, no HMAC), `iss`,
//! `aud` = this server's resource URL (RFC 8707), `exp`/`nbf` with [`LEEWAY_S`].
//! Scopes `fly:read` < `fly:write` < `fly:destroy` become the caller's narrowing.
//! Tokens never appear in logs or errors: failures name the check, never the token.

use std::{
    collections::BTreeSet,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, Jwk, JwkSet},
};
use serde::Deserialize;

use super::CallerPolicy;
use crate::tools::catalog::ToolKind;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 30;
/// The soonest the JWKS is fetched again for an unknown `kid`.
pub const MIN_REFETCH: Duration = Duration::from_secs(2);

/// The scopes, least to most.
pub const SCOPE_READ: &str = "fly:read";
pub const SCOPE_WRITE: &str = "fly:write";
pub const SCOPE_DESTROY: &str = "fly:destroy";

/// Asymmetric algorithms only: an HMAC "signature" made with the public key, or
/// `none`, is never accepted.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The settings.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// The authorization server's issuer identifier.
    pub issuer: String,
    /// This server's resource URL (the `aud` tokens must carry); `None`: `http://ADDR/mcp`.
    pub audience: Option<String>,
    /// Usage caps of every OAuth subject, each counted on its own.
    pub caps: super::Caps,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 401 `invalid_token`; the text names the failed check only.
    InvalidToken(String),
    /// 403 `insufficient_scope`: the scope the request needs.
    InsufficientScope(&'static str),
}

/// A validated token's caller.
#[derive(Debug, Clone)]
pub struct TokenCaller {
    pub subject: String,
    pub client_id: Option<String>,
    /// The highest Fly scope granted.
    pub level: Option<ToolKind>,
}

impl TokenCaller {
    /// The narrowing its scopes give, with the per-subject `caps`.
    pub fn policy(&self, caps: &super::Caps) -> CallerPolicy {
        CallerPolicy {
            source: format!("OAuth subject '{}'", self.subject),
            caps: caps.clone(),
            read_only: !matches!(self.level, Some(ToolKind::Write | ToolKind::Destructive)),
            no_destroy: self.level != Some(ToolKind::Destructive),
            ..CallerPolicy::default()
        }
    }

    /// Refuses a request needing `kind` that the scopes do not grant.
    pub fn check(&self, kind: ToolKind) -> Result<(), Refusal> {
        let rank = |k: ToolKind| match k {
            ToolKind::Read => 1,
            ToolKind::Write => 2,
            ToolKind::Destructive => 3,
        };
        let granted = self.level.map_or(0, rank);
        if granted >= rank(kind) {
            Ok(())
        } else {
            Err(Refusal::InsufficientScope(scope_for(kind)))
        }
    }
}

/// The scope a tool of `kind` needs.
pub fn scope_for(kind: ToolKind) -> &'static str {
    match kind {
        ToolKind::Read => SCOPE_READ,
        ToolKind::Write => SCOPE_WRITE,
        ToolKind::Destructive => SCOPE_DESTROY,
    }
}

#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// Validates access tokens for one issuer and audience.
pub struct Verifier {
    issuer: String,
    audience: String,
    caps: super::Caps,
    http: reqwest::Client,
    jwks_uri: tokio::sync::Mutex<Option<String>>,
    keys: Mutex<Option<Keys>>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn well_known(issuer: &str, doc: &str) -> String {
    // RFC 8414 §3: the well-known segment goes between the host and the issuer's path.
    match url::Url::parse(issuer) {
        Ok(u) if u.path() != "/" && !u.path().is_empty() => {
            let path = u.path().trim_end_matches('/').to_owned();
            let mut base = u.clone();
            base.set_path("");
            format!(
                "{}/.well-known/{doc}{path}",
                base.as_str().trim_end_matches('/')
            )
        }
        Ok(_) | Err(_) => format!("{}/.well-known/{doc}", issuer.trim_end_matches('/')),
    }
}

impl Verifier {
    /// A verifier (no network until the first token).
    pub fn new(issuer: String, audience: String, caps: super::Caps) -> Result<Self, String> {
        let url =
            url::Url::parse(&issuer).map_err(|e| format!("--oauth-issuer '{issuer}': {e}"))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(format!(
                "--oauth-issuer '{issuer}' must be https (http only on loopback)"
            ));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the OAuth HTTP client: {e}"))?;
        Ok(Verifier {
            issuer,
            audience,
            caps,
            http,
            jwks_uri: tokio::sync::Mutex::new(None),
            keys: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// This server's resource URL.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The caps of each OAuth subject.
    pub fn caps(&self) -> &super::Caps {
        &self.caps
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        resp.json::<T>()
            .await
            .map_err(|e| format!("GET {url}: {e}"))
    }

    async fn discover(&self) -> Result<String, String> {
        let mut cached = self.jwks_uri.lock().await;
        if let Some(uri) = cached.as_ref() {
            return Ok(uri.clone());
        }
        let mut last = String::new();
        for doc in ["oauth-authorization-server", "openid-configuration"] {
            match self
                .get_json::<ServerMetadata>(&well_known(&self.issuer, doc))
                .await
            {
                Ok(meta) if meta.issuer == self.issuer => {
                    *cached = Some(meta.jwks_uri.clone());
                    return Ok(meta.jwks_uri);
                }
                Ok(meta) => {
                    last = format!(
                        "the metadata names issuer '{}', not '{}'",
                        meta.issuer, self.issuer
                    );
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The key `kid` (any key when the token names none and there is one), fetching
    /// the JWKS when it is not cached or, rate-limited, when `kid` is unknown.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, Refusal> {
        let find = |set: &JwkSet| -> Option<Jwk> {
            match kid {
                Some(k) => set.find(k).cloned(),
                None if set.keys.len() == 1 => set.keys.first().cloned(),
                None => None,
            }
        };
        // The cache's answer: the key, a refusal (unknown and fetched too recently to
        // fetch again), or `None` (fetch).
        let cached = || -> Option<Result<Jwk, Refusal>> {
            let keys = match self.keys.lock() {
                Ok(keys) => keys,
                Err(_) => return Some(Err(invalid("key cache unavailable"))),
            };
            let keys = keys.as_ref()?;
            if let Some(k) = find(&keys.set) {
                return Some(Ok(k));
            }
            (keys.fetched.elapsed() < MIN_REFETCH).then(|| Err(invalid("unknown signing key")))
        };
        if let Some(answer) = cached() {
            return answer;
        }
        // One fetch at a time: a caller that waited here finds what the other fetched.
        let _one = self.fetching.lock().await;
        if let Some(answer) = cached() {
            return answer;
        }
        let set = match self.discover().await {
            Ok(uri) => self.get_json::<JwkSet>(&uri).await,
            Err(e) => Err(e),
        };
        let set = set.map_err(|e| {
            tracing::warn!(issuer = %self.issuer, error = %e, "cannot fetch the issuer's keys");
            invalid("the issuer's keys cannot be fetched")
        })?;
        let found = find(&set);
        if let Ok(mut keys) = self.keys.lock() {
            *keys = Some(Keys {
                set,
                fetched: Instant::now(),
            });
        }
        found.ok_or_else(|| invalid("unknown signing key"))
    }

    /// Validates `token`.
    pub async fn verify(&self, token: &str) -> Result<TokenCaller, Refusal> {
        let header = decode_header(token)
            .map_err(|_| invalid("malformed token or algorithm not allowed"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(invalid("algorithm not allowed"));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let family_ok = matches!(
            (&jwk.algorithm, header.alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        if !family_ok {
            return Err(invalid("the algorithm does not match the signing key"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("unusable signing key"))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = LEEWAY_S;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            invalid(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not yet valid",
                K::InvalidAudience => "token not issued for this resource (aud)",
                K::InvalidIssuer => "token from another issuer (iss)",
                K::InvalidSignature => "bad signature",
                K::InvalidAlgorithm => "algorithm not allowed",
                K::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "invalid token",
            })
        })?;
        let c = data.claims;
        let mut scopes: BTreeSet<String> = c
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        scopes.extend(c.scp.unwrap_or_default());
        let level = if scopes.contains(SCOPE_DESTROY) {
            Some(ToolKind::Destructive)
        } else if scopes.contains(SCOPE_WRITE) {
            Some(ToolKind::Write)
        } else if scopes.contains(SCOPE_READ) {
            Some(ToolKind::Read)
        } else {
            None
        };
        Ok(TokenCaller {
            subject: c.sub,
            client_id: c.client_id.or(c.azp),
            level,
        })
    }
}

fn invalid(why: &str) -> Refusal {
    Refusal::InvalidToken(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_goes_before_the_issuer_path() {
        assert_eq!(
            well_known("https://idp.example", "openid-configuration"),
            "https://idp.example/.well-known/openid-configuration"
        );
        assert_eq!(
            well_known("https://idp.example/tenant/a", "oauth-authorization-server"),
            "https://idp.example/.well-known/oauth-authorization-server/tenant/a"
        );
    }

    #[test]
    fn scopes_rank() {
        let c = TokenCaller {
            subject: "s".into(),
            client_id: None,
            level: Some(ToolKind::Write),
        };
        assert!(c.check(ToolKind::Read).is_ok());
        assert!(c.check(ToolKind::Write).is_ok());
        assert_eq!(
            c.check(ToolKind::Destructive),
            Err(Refusal::InsufficientScope(SCOPE_DESTROY))
        );
        let p = c.policy(&crate::tools::auth::Caps::default());
        assert!(!p.read_only && p.no_destroy);
    }

    #[test]
    fn plain_http_issuer_only_on_loopback() {
        assert!(
            Verifier::new("http://idp.example".into(), "x".into(), Default::default()).is_err()
        );
        assert!(
            Verifier::new("http://127.0.0.1:9/".into(), "x".into(), Default::default()).is_ok()
        );
    }
}
