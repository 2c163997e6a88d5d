//! Streamable HTTP transport: `/mcp` (rmcp's streamable HTTP service, both protocol
//! eras) behind our authentication and Origin check, and an unauthenticated
//! `/healthz`. Binds loopback by default and refuses a non-loopback address without
//! authentication. Two auth modes: server keys (a file re-read on change, so a key can
//! be revoked without a restart) and passthrough (the bearer is the caller's own Fly
//! token, handed to the gate as the call's token).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use secrecy::SecretString;

pub use super::auth::keys::KeyFile;
use super::{
    gate::{Caller, Gate},
    server::McpServer,
};
use crate::fly;

/// How HTTP callers authenticate.
#[derive(Debug, Clone)]
pub enum HttpAuth {
    /// No authentication (loopback only).
    None,
    /// `Authorization: Bearer <key>`, keys from this file.
    Keys(PathBuf),
    /// The bearer is the caller's Fly token.
    Passthrough,
    /// The bearer is an OAuth access token (JWT) from this issuer.
    OAuth(super::auth::oauth::OAuthSettings),
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub auth: HttpAuth,
    /// Extra `Host` values accepted (beyond loopback names and the bind address).
    pub allowed_hosts: Vec<String>,
    /// Extra browser origins accepted (beyond loopback origins).
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Sessions idle this long are closed.
    pub idle_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            auth: HttpAuth::None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// Why the HTTP server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing to listen on {addr} without authentication: a non-loopback address needs --auth-keys FILE or --per-request-token (or bind 127.0.0.1)"
    )]
    UnauthenticatedPublicBind { addr: SocketAddr },
    #[error("cannot read the auth keys file {}", path.display())]
    KeysFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the auth keys file {} holds no key", path.display())]
    NoKeys { path: PathBuf },
    #[error("OAuth settings: {0}")]
    OAuth(String),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed")]
    Serve {
        #[source]
        source: std::io::Error,
    },
}

/// Refuses a non-loopback bind without authentication.
pub fn check_bind(addr: SocketAddr, auth: &HttpAuth) -> Result<(), HttpError> {
    match auth {
        HttpAuth::None if !addr.ip().is_loopback() => {
            Err(HttpError::UnauthenticatedPublicBind { addr })
        }
        HttpAuth::None | HttpAuth::Keys(_) | HttpAuth::Passthrough | HttpAuth::OAuth(_) => Ok(()),
    }
}

/// A running HTTP server (tests use [`start`]; `serve` waits on Ctrl-C).
#[derive(Debug)]
pub struct HttpHandle {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), HttpError>>,
}

impl HttpHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) -> Result<(), HttpError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(HttpError::Serve {
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// Binds and serves in the background.
pub async fn start(
    gate: Arc<Gate>,
    addr: SocketAddr,
    opts: HttpOptions,
) -> Result<HttpHandle, HttpError> {
    check_bind(addr, &opts.auth)?;
    let keys = match &opts.auth {
        HttpAuth::Keys(path) => {
            let keys = KeyFile::new(path.clone());
            if keys.current()?.is_empty() {
                return Err(HttpError::NoKeys { path: path.clone() });
            }
            Some(keys)
        }
        HttpAuth::None | HttpAuth::Passthrough | HttpAuth::OAuth(_) => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let oauth = match &opts.auth {
        HttpAuth::OAuth(settings) => Some(Arc::new(
            super::auth::oauth::Verifier::new(
                settings.issuer.clone(),
                settings
                    .audience
                    .clone()
                    .unwrap_or_else(|| format!("http://{local}/mcp")),
                settings.caps.clone(),
            )
            .map_err(HttpError::OAuth)?,
        )),
        HttpAuth::None | HttpAuth::Keys(_) | HttpAuth::Passthrough => None,
    };
    let router = router(gate, local, &opts, keys, oauth);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .map_err(|source| HttpError::Serve { source })
    });
    Ok(HttpHandle {
        addr: local,
        shutdown: Some(tx),
        task,
    })
}

/// Serves until Ctrl-C.
pub async fn serve(gate: Arc<Gate>, addr: SocketAddr, opts: HttpOptions) -> Result<(), HttpError> {
    let handle = start(gate, addr, opts).await?;
    eprintln!("fly-machines-mcp: MCP over HTTP at {}", handle.mcp_url());
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await
}

#[derive(Clone)]
struct AuthState {
    mode: AuthMode,
    gate: Arc<Gate>,
    allowed_origins: Arc<Vec<String>>,
    max_body_bytes: usize,
}

#[derive(Clone)]
enum AuthMode {
    None,
    Keys(KeyFile),
    Passthrough,
    OAuth(Arc<super::auth::oauth::Verifier>),
}

fn router(
    gate: Arc<Gate>,
    local: SocketAddr,
    opts: &HttpOptions,
    keys: Option<KeyFile>,
    oauth: Option<Arc<super::auth::oauth::Verifier>>,
) -> Router {
    let mut hosts: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "[::1]".into(),
    ];
    if !local.ip().is_unspecified() {
        hosts.push(local.ip().to_string());
    }
    hosts.extend(opts.allowed_hosts.iter().cloned());
    let mut session_manager = LocalSessionManager::default();
    session_manager.session_config.keep_alive = Some(opts.idle_timeout);
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(opts.max_body_bytes);
    let factory_gate = gate.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::new(factory_gate.clone())),
        Arc::new(session_manager),
        config,
    );
    let mode = match (&opts.auth, keys, oauth) {
        (_, _, Some(verifier)) => AuthMode::OAuth(verifier),
        (HttpAuth::Keys(_), Some(keys), None) => AuthMode::Keys(keys),
        (HttpAuth::Passthrough, _, None) => AuthMode::Passthrough,
        (HttpAuth::None | HttpAuth::OAuth(_), _, None) | (HttpAuth::Keys(_), None, None) => {
            AuthMode::None
        }
    };
    let metadata = match &mode {
        AuthMode::OAuth(v) => Some(super::auth::resource::metadata_routes(v.clone())),
        AuthMode::None | AuthMode::Keys(_) | AuthMode::Passthrough => None,
    };
    let state = AuthState {
        mode,
        gate,
        allowed_origins: Arc::new(opts.allowed_origins.clone()),
        max_body_bytes: opts.max_body_bytes,
    };
    let replay = ReplayState {
        instance: state.gate.tasks().instance().map(str::to_owned),
        max_body_bytes: opts.max_body_bytes,
    };
    let router = Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(replay, replay_elsewhere))
        .layer(middleware::from_fn_with_state(state, guard))
        .route("/healthz", get(|| async { "ok" }));
    match metadata {
        Some(m) => router.merge(m),
        None => router,
    }
}

fn reject(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = "Bearer".parse()
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn origin_allowed(origin: &str, extra: &[String]) -> bool {
    if extra.iter().any(|o| o == origin) {
        return true;
    }
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && matches!(
            url.host_str(),
            Some("localhost") | Some("127.0.0.1") | Some("[::1]")
        )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

async fn guard(State(state): State<AuthState>, req: Request<Body>, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| origin_allowed(o, &state.allowed_origins));
        if !ok {
            return reject(StatusCode::FORBIDDEN, "Origin not allowed");
        }
    }
    let (caller, mut req) = match &state.mode {
        AuthMode::OAuth(verifier) => {
            match super::auth::resource::authorize(verifier, &state.gate, req, state.max_body_bytes)
                .await
            {
                Ok(pair) => pair,
                Err(resp) => return resp,
            }
        }
        AuthMode::None | AuthMode::Keys(_) | AuthMode::Passthrough => {
            let caller = match caller_of(&state, &req) {
                Ok(c) => c,
                Err(resp) => return resp,
            };
            (caller, req)
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[derive(Clone)]
struct ReplayState {
    /// This replica's Fly Machine id; `None` outside Fly (nothing is replayed).
    instance: Option<String>,
    max_body_bytes: usize,
}

/// A `tasks/*` request for a task another replica runs is answered with
/// `fly-replay: instance=<id>`: Fly's proxy then delivers the same request to that
/// Machine (<https://fly.io/docs/networking/dynamic-request-routing/>; the proxy
/// replays bodies up to 1 MB, our default body limit). A request the proxy already
/// replayed (`fly-replay-src`) is never sent on again: the handler answers it (an
/// unknown task, if that replica is gone).
async fn replay_elsewhere(
    State(state): State<ReplayState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let Some(ours) = state.instance.as_deref() else {
        return next.run(req).await;
    };
    if req.method() != axum::http::Method::POST || req.headers().contains_key("fly-replay-src") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return reject(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    if let Some((target, id)) = super::tasks::replay_target(&bytes, ours)
        && let Ok(value) = format!("instance={target}").parse::<header::HeaderValue>()
    {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": -32602,
                "message": format!(
                    "this task runs on replica {target}; behind Fly's proxy this request is replayed there"
                ),
            },
        });
        let mut resp = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        resp.headers_mut().insert("fly-replay", value);
        return resp;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[expect(clippy::result_large_err, reason = "the error is the response to send")]
fn caller_of(state: &AuthState, req: &Request<Body>) -> Result<Caller, Response> {
    Ok(match &state.mode {
        AuthMode::None | AuthMode::OAuth(_) => Caller::default(),
        AuthMode::Keys(keys) => {
            let Some(presented) = bearer(req.headers()) else {
                return Err(reject(StatusCode::UNAUTHORIZED, "missing bearer token"));
            };
            match keys.lookup(presented) {
                Ok(Some(entry)) => Caller {
                    key_id: Some(entry.id),
                    policy: entry.policy,
                    ..Caller::default()
                },
                Ok(None) => return Err(reject(StatusCode::UNAUTHORIZED, "invalid bearer token")),
                Err(e) => {
                    tracing::error!(error = %e, "auth keys file unreadable; refusing requests");
                    return Err(reject(StatusCode::UNAUTHORIZED, "invalid bearer token"));
                }
            }
        }
        AuthMode::Passthrough => {
            let Some(presented) = bearer(req.headers()) else {
                return Err(reject(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token (your Fly token)",
                ));
            };
            state
                .gate
                .redactor()
                .register(&SecretString::from(presented.to_owned()));
            let Some(token) = fly::Token::parse(presented) else {
                return Err(reject(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token (your Fly token)",
                ));
            };
            Caller {
                fly_token: Some(token),
                ..Caller::default()
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_bind_without_auth_is_refused() {
        let addr: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let err = check_bind(addr, &HttpAuth::None).unwrap_err();
        assert!(err.to_string().contains("without authentication"));
        assert!(check_bind(addr, &HttpAuth::Passthrough).is_ok());
        assert!(check_bind("127.0.0.1:0".parse().unwrap(), &HttpAuth::None).is_ok());
    }

    #[test]
    fn loopback_origins_only_by_default() {
        assert!(origin_allowed("http://localhost:6274", &[]));
        assert!(origin_allowed("http://127.0.0.1:3000", &[]));
        assert!(!origin_allowed("https://evil.example", &[]));
        assert!(origin_allowed(
            "https://app.example",
            &["https://app.example".to_owned()]
        ));
    }
}
