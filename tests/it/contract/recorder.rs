//! Plain-HTTP helpers for contract runs: [`Tour`] sends scripted requests with reqwest and
//! keeps every exchange, and [`Exchanges`] validates a run against the spec (what was
//! exercised, which violations each side produced). Knows nothing of the simulator's or
//! the client's types.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::openapi::{CapturedRequest, CapturedResponse, Spec, Violation, parse_query};

/// One request and the response it drew.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: CapturedRequest,
    pub response: CapturedResponse,
}

/// A shared, append-only log of exchanges.
#[derive(Debug, Clone, Default)]
pub struct Exchanges(Arc<Mutex<Vec<Exchange>>>);

impl Exchanges {
    pub fn push(&self, e: Exchange) {
        self.0.lock().unwrap().push(e);
    }

    pub fn all(&self) -> Vec<Exchange> {
        self.0.lock().unwrap().clone()
    }

    /// Violations of the requests.
    pub fn request_violations(&self, spec: &Spec) -> Vec<Violation> {
        self.all()
            .iter()
            .flat_map(|e| spec.validate_request(&e.request))
            .collect()
    }

    /// Violations of the responses.
    pub fn response_violations(&self, spec: &Spec) -> Vec<Violation> {
        self.all()
            .iter()
            .flat_map(|e| spec.validate_response(&e.request, &e.response))
            .collect()
    }

    /// `(operationId, status)` of every exchange that matched an operation.
    pub fn exercised(&self, spec: &Spec) -> BTreeSet<(String, u16)> {
        self.all()
            .iter()
            .filter_map(|e| {
                spec.operation_id(&e.request.method, &e.request.path)
                    .ok()
                    .map(|id| (id, e.response.status))
            })
            .collect()
    }
}

/// Builds a [`CapturedRequest`] from parts as they go on the wire.
pub fn capture_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> CapturedRequest {
    CapturedRequest {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        query: query.map(parse_query).unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    }
}

/// Sends scripted requests to a base URL with a token, recording each exchange.
#[derive(Debug, Clone)]
pub struct Tour {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    pub log: Exchanges,
}

/// What a tour step got back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: http::HeaderMap,
}

impl Tour {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        // reqwest is built without a default TLS provider; plain HTTP still needs one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
            log: Exchanges::default(),
        }
    }

    /// The same tour (same log) with another token, or none.
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }

    /// Sends one request; `body` goes as JSON. Panics only on transport failure.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path_and_query}", self.base);
        let method_v = http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.http.request(method_v, &url);
        if let Some(t) = &self.token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = &body {
            rb = rb
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).unwrap());
        }
        let req = rb.build().unwrap();
        let captured = capture_request(
            method,
            req.url().path(),
            req.url().query(),
            req.headers(),
            req.body().and_then(|b| b.as_bytes()).unwrap_or_default(),
        );
        let resp = self
            .http
            .execute(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.log.push(Exchange {
            request: captured,
            response: CapturedResponse {
                status,
                content_type,
                body: bytes,
            },
        });
        Reply {
            status,
            body,
            headers,
        }
    }
}
