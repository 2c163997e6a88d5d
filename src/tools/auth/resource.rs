//! The HTTP side of the OAuth resource server: the protected-resource metadata
//! document (RFC 9728 §3, at `/.well-known/oauth-protected-resource` and with the
//! resource path appended), and the check of each `/mcp` request: 401 with
//! `WWW-Authenticate: Bearer resource_metadata=…` for a missing or invalid token
//! (`error="invalid_token"`), 403 `error="insufficient_scope"` with the scope needed
//! when a `tools/call` (or any request, without `fly:read`) needs more than the token
//! grants (RFC 6750 §3; MCP authorization spec). The token itself is never echoed.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use super::oauth::{Refusal, SCOPE_DESTROY, SCOPE_READ, SCOPE_WRITE, TokenCaller, Verifier};
use crate::tools::{
    catalog::ToolKind,
    gate::{Caller, Gate},
};

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

fn resource_path(v: &Verifier) -> String {
    url::Url::parse(v.audience())
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The metadata document's URL (RFC 9728 §3.1: well-known segment, then the
/// resource's path).
pub fn metadata_url(v: &Verifier) -> String {
    match url::Url::parse(v.audience()) {
        Ok(mut u) => {
            let path = format!("{WELL_KNOWN}{}", resource_path(v));
            u.set_path(&path);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => WELL_KNOWN.to_owned(),
    }
}

fn document(v: &Verifier) -> Value {
    json!({
        "resource": v.audience(),
        "authorization_servers": [v.issuer()],
        "scopes_supported": [SCOPE_READ, SCOPE_WRITE, SCOPE_DESTROY],
        "bearer_methods_supported": ["header"],
        "resource_name": crate::tools::server::SERVER_NAME,
    })
}

/// The metadata routes (no authentication).
pub fn metadata_routes(v: Arc<Verifier>) -> Router {
    let doc = Arc::new(document(&v));
    let mut router = Router::new();
    let mut paths = vec![WELL_KNOWN.to_owned()];
    let with_path = format!("{WELL_KNOWN}{}", resource_path(&v));
    if with_path != WELL_KNOWN {
        paths.push(with_path);
    }
    for path in paths {
        let doc = doc.clone();
        router = router.route(
            &path,
            get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        );
    }
    router
}

fn quoted(s: &str) -> String {
    s.replace(['"', '\\'], "'")
}

fn challenge(v: &Verifier, refusal: Option<&Refusal>) -> Response {
    let meta = metadata_url(v);
    let (status, value, message) = match refusal {
        None => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer resource_metadata=\"{meta}\", scope=\"{SCOPE_READ}\""),
            "missing bearer token".to_owned(),
        ),
        Some(Refusal::InvalidToken(why)) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{meta}\"",
                quoted(why)
            ),
            format!("invalid token: {why}"),
        ),
        Some(Refusal::InsufficientScope(scope)) => (
            StatusCode::FORBIDDEN,
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{meta}\", error_description=\"this request needs the scope {scope}\""
            ),
            format!("insufficient scope: this request needs {scope}"),
        ),
    };
    let body = json!({ "error": message }).to_string();
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Ok(h) = value.parse() {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, h);
    }
    resp
}

/// The tool names of the `tools/call` requests in a JSON-RPC body (one or a batch).
fn called_tools(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let items = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    items
        .iter()
        .filter(|m| m.get("method").and_then(Value::as_str) == Some("tools/call"))
        .filter_map(|m| m.pointer("/params/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Authenticates one `/mcp` request; answers the caller and the request to pass on,
/// or the refusal to send.
pub async fn authorize(
    v: &Verifier,
    gate: &Gate,
    req: Request<Body>,
    max_body_bytes: usize,
) -> Result<(Caller, Request<Body>), Response> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let Some(presented) = presented else {
        return Err(challenge(v, None));
    };
    let token: TokenCaller = v
        .verify(&presented)
        .await
        .map_err(|r| challenge(v, Some(&r)))?;
    token
        .check(ToolKind::Read)
        .map_err(|r| challenge(v, Some(&r)))?;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, max_body_bytes)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"error": "request body too large"}).to_string(),
            )
                .into_response()
        })?;
    for name in called_tools(&bytes) {
        if let Some(tool) = gate.catalog().get(&name) {
            token.check(tool.kind).map_err(|r| challenge(v, Some(&r)))?;
        }
    }
    let caller = Caller {
        subject: Some(token.subject.clone()),
        client_id: token.client_id.clone(),
        policy: Some(Arc::new(token.policy(v.caps()))),
        ..Caller::default()
    };
    Ok((caller, Request::from_parts(parts, Body::from(bytes))))
}
