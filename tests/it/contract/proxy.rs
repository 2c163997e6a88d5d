//! A recording HTTP proxy on 127.0.0.1:0 for client contract runs: the client under test
//! talks to the proxy, the proxy forwards to an upstream (the simulator) and keeps every
//! exchange exactly as it went over the wire (method, path, query, headers, body, and the
//! response). Knows nothing of the client's types.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use super::openapi::CapturedResponse;
use super::recorder::{Exchange, Exchanges, capture_request};

#[derive(Debug, Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
    log: Exchanges,
}

/// A running proxy; dropping it stops it.
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    pub log: Exchanges,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    /// Starts a proxy in front of `upstream` (e.g. `http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log = Exchanges::default();
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            log: log.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, log, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const HOP_BY_HOP: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let captured = capture_request(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        &bytes,
    );
    let target = match parts.uri.query() {
        Some(q) => format!("{}{}?{q}", up.base, parts.uri.path()),
        None => format!("{}{}", up.base, parts.uri.path()),
    };
    let mut rb = up.http.request(parts.method.clone(), &target);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            rb = rb.header(k, v);
        }
    }
    if !bytes.is_empty() {
        rb = rb.body(bytes.to_vec());
    }
    let (status, headers, body) = match rb.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            (status, headers, body)
        }
        Err(e) => (
            http::StatusCode::BAD_GATEWAY,
            http::HeaderMap::new(),
            bytes::Bytes::from(format!("recording proxy: upstream failed: {e}")),
        ),
    };
    up.log.push(Exchange {
        request: captured,
        response: CapturedResponse {
            status: status.as_u16(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.to_vec(),
        },
    });
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(body)).unwrap_or_default()
}
