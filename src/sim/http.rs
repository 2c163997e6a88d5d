//! HTTP plumbing of the simulator: the hyper accept loop (so an injected `reset` fault
//! can drop a connection without answering), the router that joins every area, the
//! outer middleware (request id, request log, faults, API latency) and the gate in
//! front of Fly's APIs (auth scopes, rate limits). Also the Fly-shaped error type.
//! Knows nothing of machine rules.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::Shared;
use super::latency::scaled_duration;
use super::model::{MAX_REQUEST_LOG, RequestRecord, World};
use super::ratelimit;

/// A Fly-shaped error: `{"error": "...", "status": "code"?}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: None,
        }
    }

    pub(crate) fn coded(status: u16, message: impl Into<String>, code: &'static str) -> Self {
        ApiError {
            status,
            message: message.into(),
            code: Some(code),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match self.code {
            Some(code) => json!({"error": self.message, "status": code}),
            None => json!({"error": self.message}),
        };
        (status, axum::Json(body)).into_response()
    }
}

/// Handler result: JSON with a status, or a Fly-shaped error.
pub(crate) type ApiResult = Result<Response, ApiError>;

pub(crate) fn ok_json(status: u16, body: Value) -> ApiResult {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Ok((status, axum::Json(body)).into_response())
}

pub(crate) fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Automatic mode: holds the response for `ms` of (already scaled) latency.
/// Stepped mode never sleeps.
pub(crate) async fn respond_after(s: &Shared, ms: u64) {
    if ms > 0 && !s.cfg.stepped {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Which apps the caller's token may see.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scope {
    /// An org or user token: every app of the orgs the viewer belongs to.
    Orgs,
    /// An app-scoped token.
    Apps(Vec<String>),
}

impl Scope {
    pub(crate) fn allows(&self, app: &str) -> bool {
        match self {
            Scope::Orgs => true,
            Scope::Apps(apps) => apps.iter().any(|a| a == app),
        }
    }
}

/// 404 if the app does not exist (or, under realism, was created a moment ago and is
/// not yet visible); 403 if it exists but the caller may not see it.
pub(crate) fn visible_app(w: &World, scope: &Scope, app: &str) -> Result<(), ApiError> {
    let a = w
        .apps
        .get(app)
        .filter(|a| a.is_visible(w.now_ms))
        .ok_or_else(|| ApiError::not_found("app not found"))?;
    let member = w.orgs.get(&a.org).is_some_and(|o| o.member);
    if member && scope.allows(app) {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            format!("unauthorized: your token cannot access app {app}"),
        ))
    }
}

/// Marks a response that must instead drop the connection.
#[derive(Debug, Clone, Copy)]
struct DropConnection;

#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

/// Accepts connections until `stop` flips; HTTP/1.1 with keep-alive.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let router = router.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                            let router = router.clone();
                            async move {
                                let resp: Response = match router.oneshot(req).await {
                                    Ok(r) => r,
                                    Err(never) => match never {},
                                };
                                if resp.extensions().get::<DropConnection>().is_some() {
                                    Err(InjectedReset)
                                } else {
                                    Ok(resp)
                                }
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "simulator: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    conns.abort_all();
}

/// Every route, the control API and the middleware.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .merge(super::rest::routes())
        .merge(super::machines::routes())
        .merge(super::volumes::routes())
        .merge(super::graphql::routes())
        .merge(super::logs::routes())
        .merge(super::orgs::routes())
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .merge(api)
        .merge(super::control::routes())
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), outer))
        .with_state(shared)
}

async fn fallback() -> ApiError {
    ApiError::not_found("not found")
}

enum Fault {
    None,
    ServerError(u16),
    Reset,
    /// Run the handler, then answer this 5xx (`Some`) or drop the connection (`None`).
    Applied(Option<u16>),
}

/// Request id, request log, faults and API latency.
async fn outer(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let control = path.starts_with("/__sim/");
    let (request_id, start_ms, fault, delay) = s.with_world(|w, now| {
        let id = w.rng_request_id(now);
        let mut delay = None;
        let mut fault = Fault::None;
        if !control && !w.faults.is_off() && w.faults.targets(&method, &path) {
            if let Some((d, p)) = w.faults.latency
                && w.fault_rng.next_f64() < p
            {
                delay = Some(d);
            }
            if w.fault_rng.next_f64() < w.faults.server_error {
                let codes = [500u16, 502, 503];
                let pick = usize::try_from(w.fault_rng.next_u64() % 3).unwrap_or(0);
                fault = Fault::ServerError(codes.get(pick).copied().unwrap_or(503));
            } else if w.fault_rng.next_f64() < w.faults.reset {
                fault = Fault::Reset;
            } else if w.fault_rng.next_f64() < w.faults.applied {
                let codes = [500u16, 502, 503];
                let pick = usize::try_from(w.fault_rng.next_u64() % 3).unwrap_or(0);
                fault = Fault::Applied(Some(codes.get(pick).copied().unwrap_or(502)));
            } else if w.fault_rng.next_f64() < w.faults.applied_reset {
                fault = Fault::Applied(None);
            }
            if !matches!(fault, Fault::None) && !w.faults.take_one() {
                fault = Fault::None;
            }
        }
        if !control && !s.cfg.stepped && w.latency.api_ms > 0 {
            let api = scaled_duration(w.latency.api_ms, w.time_scale);
            if !api.is_zero() {
                delay = Some(delay.unwrap_or_default() + api);
            }
        }
        (id, now, fault, delay)
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let fault_name = match fault {
        Fault::None => None,
        Fault::ServerError(_) => Some("5xx"),
        Fault::Reset => Some("reset"),
        Fault::Applied(Some(_)) => Some("applied"),
        Fault::Applied(None) => Some("applied_reset"),
    };
    let mut resp = match fault {
        Fault::None => next.run(req).await,
        Fault::ServerError(code) => {
            ApiError::new(code, "internal error (injected fault)").into_response()
        }
        Fault::Reset => dropped(),
        Fault::Applied(code) => {
            // The effect happens; only the answer is lost.
            let done = next.run(req).await;
            drop(done);
            match code {
                Some(code) => {
                    ApiError::new(code, "internal error (injected fault after the effect)")
                        .into_response()
                }
                None => dropped(),
            }
        }
    };
    if resp.status().as_u16() >= 400 && !is_json(&resp) {
        resp = fly_shaped(resp).await;
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("fly-request-id", v);
    }
    if !control {
        let status = resp.status().as_u16();
        let real_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        s.with_world(|w, now| {
            if w.requests.len() >= MAX_REQUEST_LOG {
                w.requests.pop_front();
            }
            w.requests.push_back(RequestRecord {
                id: request_id,
                method,
                path,
                status,
                start_ms,
                end_ms: now,
                real_us,
                fault: fault_name,
            });
        });
    }
    resp
}

/// A response that makes the accept loop drop the connection without an answer.
fn dropped() -> Response {
    let mut r = Response::new(axum::body::Body::empty());
    r.extensions_mut().insert(DropConnection);
    r
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Framework rejections (bad query strings, wrong methods) arrive as plain text;
/// Fly answers errors as `{"error": "..."}`.
async fn fly_shaped(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    if parts.extensions.get::<DropConnection>().is_some() {
        return Response::from_parts(parts, body);
    }
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_owned();
    if message.is_empty() {
        message = parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
    }
    let mut out = ApiError::new(parts.status.as_u16(), message).into_response();
    for (k, v) in &parts.headers {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

impl World {
    fn rng_request_id(&mut self, now: u64) -> String {
        self.fault_rng.request_id(now)
    }
}

/// The token from `Authorization`: `Bearer X`, `FlyV1 X` or `Bearer FlyV1 X`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let raw = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = strip_scheme(raw.trim());
    (!token.is_empty()).then(|| token.to_owned())
}

pub(crate) fn strip_scheme(s: &str) -> &str {
    let mut t = s.trim();
    loop {
        let lower = t.get(..6).map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some("bearer") if t.get(6..7) == Some(" ") => t = t.get(7..).unwrap_or("").trim_start(),
            Some("flyv1 ") => t = t.get(6..).unwrap_or("").trim_start(),
            _ => return t,
        }
    }
}

/// Authentication and rate limits in front of Fly's APIs.
async fn gate(
    State(s): State<Arc<Shared>>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return ApiError::new(401, "Authenticate: token validation error").into_response();
    };
    let template = matched.as_ref().map_or("", MatchedPath::as_str).to_owned();
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let grant = match super::authz::authenticate(&s.keys, header.as_deref()) {
        super::authz::Authn::NotMacaroons => None,
        super::authz::Authn::Invalid => {
            return ApiError::new(401, "Authenticate: token validation error").into_response();
        }
        super::authz::Authn::Verified(grant) => Some(grant),
    };
    if let Some(grant) = &grant {
        let (checked, refused) = authorize(&s, grant, &template, req).await;
        if refused {
            return ApiError::new(403, "unauthorized").into_response();
        }
        req = checked;
    }
    let scope = match s
        .cfg
        .app_tokens
        .iter()
        .find(|t| strip_scheme(&t.token) == token)
    {
        Some(t) => Scope::Apps(t.apps.clone()),
        None => match s.with_world(|w, _| w.deploy_tokens.get(&token).cloned()) {
            Some(app) => Scope::Apps(vec![app]),
            None => match &s.cfg.required_token {
                // A verified macaroon is the simulator's own token: no other is required.
                _ if grant.is_some() => Scope::Orgs,
                Some(required) if strip_scheme(required) != token => {
                    return ApiError::new(401, "Authenticate: token validation error")
                        .into_response();
                }
                _ => Scope::Orgs,
            },
        },
    };
    let method = req.method().clone();
    let exempt = template == "/graphql" || template.starts_with("/api/v1/") || template.is_empty();
    if !exempt {
        let segments: Vec<&str> = req.uri().path().split('/').collect();
        let app = segments.get(3).copied().unwrap_or("");
        let machine = if template.starts_with("/v1/apps/{app_name}/machines/{machine_id}") {
            segments.get(5).copied()
        } else {
            None
        };
        let (limit, key) = if method == axum::http::Method::GET
            && template == "/v1/apps/{app_name}/machines/{machine_id}"
        {
            (
                ratelimit::GET_MACHINE,
                format!("get_machine:{}", machine.unwrap_or("")),
            )
        } else if method == axum::http::Method::DELETE && template == "/v1/apps/{app_name}" {
            (ratelimit::APP_DELETE, "delete_app".to_owned())
        } else {
            (
                ratelimit::DEFAULT,
                format!("{method} {template}:{}", machine.unwrap_or(app)),
            )
        };
        let limited = s.with_world(|w, now| {
            if w.rate_limits_on {
                w.limiter.take(&key, limit, now, w.time_scale).err()
            } else {
                None
            }
        });
        if limited.is_some() {
            return ApiError::new(
                429,
                "rate limit exceeded: too many requests for this action, slow down and retry",
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(scope);
    if let Some(grant) = grant {
        req.extensions_mut().insert(grant);
    }
    next.run(req).await
}

/// Judges a request made with verified macaroons (see [`super::authz`]); returns the
/// request (its body read back in when the access needed it) and whether it is refused.
/// GraphQL is judged here as a read, and field by field where it resolves.
async fn authorize(
    s: &Shared,
    grant: &super::authz::Grant,
    template: &str,
    req: Request,
) -> (Request, bool) {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let (req, body) = if method == axum::http::Method::POST && template == "/v1/apps" {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .unwrap_or_default();
        let json = serde_json::from_slice::<Value>(&bytes).ok();
        (
            Request::from_parts(parts, axum::body::Body::from(bytes)),
            json,
        )
    } else {
        (req, None)
    };
    let access = if template == "/graphql" {
        super::authz::Access {
            action: super::authz::READ,
            org: None,
            app: None,
            platform: true,
        }
    } else {
        s.with_world(|w, _| {
            super::authz::rest_access(w, &method, template, &path, query.as_deref(), body.as_ref())
        })
    };
    let now_s = i64::try_from(s.clock.now_ms() / 1000).unwrap_or(i64::MAX);
    let refused = !grant.permits(&access, now_s);
    (req, refused)
}

/// Reads a JSON body leniently: an empty body is `{}`; a malformed one is 400.
/// A string field of a request body; `""` when it is absent or not a string.
pub(crate) fn str_field(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A string field a request body must have: 400 `KEY is required` without it.
pub(crate) fn required_str(body: &Value, key: &str) -> Result<String, ApiError> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request(format!("{key} is required")))
}

pub(crate) fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_scheme_the_recipe_and_clients_send() {
        assert_eq!(strip_scheme("Bearer abc"), "abc");
        assert_eq!(strip_scheme("FlyV1 fm2_x,fm2_y"), "fm2_x,fm2_y");
        assert_eq!(strip_scheme("Bearer FlyV1 fm2_x"), "fm2_x");
        assert_eq!(strip_scheme("plain"), "plain");
    }
}
