//! Streamable HTTP transport: `/mcp` (rmcp's streamable HTTP service, both protocol
//! eras) behind our authentication and Origin check, and an unauthenticated
//! `/healthz`. Binds loopback by default and refuses a non-loopback address without
//! authentication. Two auth modes: server keys (a file re-read on change, so a key can
//! be revoked without a restart) and passthrough (the bearer is the caller's own Fly
//! token, handed to the gate as the call's token).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

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
use sha2::{Digest, Sha256};

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
        HttpAuth::None | HttpAuth::Keys(_) | HttpAuth::Passthrough => Ok(()),
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
        HttpAuth::None | HttpAuth::Passthrough => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let router = router(gate, local, &opts, keys);
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
}

#[derive(Clone)]
enum AuthMode {
    None,
    Keys(KeyFile),
    Passthrough,
}

fn router(gate: Arc<Gate>, local: SocketAddr, opts: &HttpOptions, keys: Option<KeyFile>) -> Router {
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
    let mode = match (&opts.auth, keys) {
        (HttpAuth::Keys(_), Some(keys)) => AuthMode::Keys(keys),
        (HttpAuth::Passthrough, _) => AuthMode::Passthrough,
        (HttpAuth::None, _) | (HttpAuth::Keys(_), None) => AuthMode::None,
    };
    let state = AuthState {
        mode,
        gate,
        allowed_origins: Arc::new(opts.allowed_origins.clone()),
    };
    Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state, guard))
        .route("/healthz", get(|| async { "ok" }))
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

async fn guard(State(state): State<AuthState>, mut req: Request<Body>, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| origin_allowed(o, &state.allowed_origins));
        if !ok {
            return reject(StatusCode::FORBIDDEN, "Origin not allowed");
        }
    }
    let caller = match &state.mode {
        AuthMode::None => Caller::default(),
        AuthMode::Keys(keys) => {
            let Some(presented) = bearer(req.headers()) else {
                return reject(StatusCode::UNAUTHORIZED, "missing bearer token");
            };
            match keys.lookup(presented) {
                Ok(Some(id)) => Caller {
                    key_id: Some(id),
                    ..Caller::default()
                },
                Ok(None) => return reject(StatusCode::UNAUTHORIZED, "invalid bearer token"),
                Err(e) => {
                    tracing::error!(error = %e, "auth keys file unreadable; refusing requests");
                    return reject(StatusCode::UNAUTHORIZED, "invalid bearer token");
                }
            }
        }
        AuthMode::Passthrough => {
            let Some(presented) = bearer(req.headers()) else {
                return reject(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token (your Fly token)",
                );
            };
            state
                .gate
                .redactor()
                .register(&SecretString::from(presented.to_owned()));
            let Some(token) = fly::Token::parse(presented) else {
                return reject(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token (your Fly token)",
                );
            };
            Caller {
                fly_token: Some(token),
                ..Caller::default()
            }
        }
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// The server keys file: one key per line, `#` comments, optionally `id:key`.
/// Re-read when its modification time or size changes.
#[derive(Clone)]
pub struct KeyFile {
    path: PathBuf,
    cache: Arc<Mutex<Option<CachedKeys>>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct CachedKeys {
    stamp: (Option<SystemTime>, u64),
    /// sha256(key) → id.
    keys: BTreeMap<[u8; 32], String>,
}

impl KeyFile {
    /// A key file at `path` (read lazily).
    pub fn new(path: PathBuf) -> Self {
        KeyFile {
            path,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    fn current(&self) -> Result<BTreeMap<[u8; 32], String>, HttpError> {
        let meta = std::fs::metadata(&self.path).map_err(|source| HttpError::KeysFile {
            path: self.path.clone(),
            source,
        })?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut cache = self.cache.lock().map_err(|_| HttpError::KeysFile {
            path: self.path.clone(),
            source: std::io::Error::other("key cache lock poisoned"),
        })?;
        if let Some(c) = cache.as_ref()
            && c.stamp == stamp
        {
            return Ok(c.keys.clone());
        }
        let text = std::fs::read_to_string(&self.path).map_err(|source| HttpError::KeysFile {
            path: self.path.clone(),
            source,
        })?;
        let keys = parse_keys(&text);
        *cache = Some(CachedKeys {
            stamp,
            keys: keys.clone(),
        });
        Ok(keys)
    }

    /// The id of the key `presented`, if it is a current key.
    pub fn lookup(&self, presented: &str) -> Result<Option<String>, HttpError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        Ok(self.current()?.get(&digest).cloned())
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse_keys(text: &str) -> BTreeMap<[u8; 32], String> {
    let mut keys = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, key) = match line.split_once(':') {
            Some((id, key))
                if !id.is_empty()
                    && !key.trim().is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                (id.to_owned(), key.trim())
            }
            Some(_) | None => {
                let d = Sha256::digest(line.as_bytes());
                (
                    format!("key-{}", hex::encode(d.get(..4).unwrap_or_default())),
                    line,
                )
            }
        };
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        keys.insert(digest, id);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_file_lines() {
        let keys = parse_keys("# comment\n\nalice:secret-one\nsecret-two\n  \n");
        assert_eq!(keys.len(), 2);
        let one: [u8; 32] = Sha256::digest(b"secret-one").into();
        assert_eq!(keys.get(&one).map(String::as_str), Some("alice"));
        let two: [u8; 32] = Sha256::digest(b"secret-two").into();
        assert!(keys.get(&two).unwrap().starts_with("key-"));
    }

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
