//! The HTTP plumbing shared by every Fly call: [`Client`], [`ClientConfig`],
//! [`RetryPolicy`], [`RequestIds`]. Builds URLs from path segments (each one
//! percent-encoded), sets the auth header, JSON bodies and the lease nonce, parses
//! Fly error bodies, keeps `fly-request-id`, retries transient failures with
//! jittered exponential backoff (honouring `Retry-After`) and paces calls.
//!
//! Knows nothing of MCP; reqwest types never leave this module.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use url::Url;

use super::pacing::{PaceClass, Pacer};
use super::{Error, Token, TransportKind};

/// Default Machines REST base.
pub const DEFAULT_API_HOSTNAME: &str = "https://api.machines.dev";
/// Default base for GraphQL and the logs API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.fly.io";

/// How transient failures are waited out.
///
/// A 429 is never a failure while the request's patience lasts: it is waited out
/// (`Retry-After` when given, else the window of Fly's per-action limit), on any
/// request. So are a 5xx, a 408 and a dropped connection on a request that is safe to
/// repeat. Only when `patience` has run out does the failure reach the caller. Fly's
/// production clients treat 429 and 5xx as transient too (API-NOTES §4: flyctl
/// retries them with backoff; fly-go's transport retries 502/503 and, in
/// `flaps/flaps.go` `do`, resets on GETs).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt, at most (0 turns retries off).
    pub max_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
    /// Largest `Retry-After` honoured; longer values are capped to this.
    pub max_retry_after: Duration,
    /// How long one request keeps waiting out transient answers before the failure
    /// is reported: the call's deadline for that request.
    pub patience: Duration,
    /// The wait after a 429 without `Retry-After`: the window of Fly's documented
    /// per-action limit (1 request per second; API-NOTES §4).
    pub rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 1_000,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            patience: Duration::from_secs(120),
            rate_limit_wait: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Millisecond delays, for tests against a local server (whose rate-limit
    /// windows are scaled down too).
    pub fn fast() -> Self {
        RetryPolicy {
            max_retries: 1_000,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(50),
            patience: Duration::from_secs(5),
            rate_limit_wait: Duration::from_millis(20),
        }
    }

    fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .build()
    }
}

/// The retries of one request (or of one look-then-retry loop): a backoff schedule
/// bounded by the policy's patience.
pub(crate) struct Retrier {
    policy: RetryPolicy,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    started: std::time::Instant,
    refused: usize,
}

/// Connections refused in a row before the failure is reported: nothing listens
/// there (a wrong `FLY_API_HOSTNAME`, or no network), which waiting rarely cures.
const MAX_REFUSED: usize = 3;

impl Retrier {
    pub(crate) fn new(policy: &RetryPolicy) -> Retrier {
        Retrier {
            policy: policy.clone(),
            delays: Box::new(policy.delays()),
            started: std::time::Instant::now(),
            refused: 0,
        }
    }

    /// How long to wait before trying again after `err`, or `None` when the retries
    /// or the patience are spent.
    pub(crate) fn next_delay(&mut self, err: &Error) -> Option<Duration> {
        if let Error::Transport {
            kind: TransportKind::Connect,
            ..
        } = err
        {
            self.refused += 1;
            if self.refused > MAX_REFUSED {
                return None;
            }
        }
        let backoff = self.delays.next()?;
        let delay = match err {
            Error::Api {
                status: 429,
                retry_after,
                ..
            } => retry_after
                .map(|ra| ra.min(self.policy.max_retry_after))
                .unwrap_or(self.policy.rate_limit_wait)
                .max(backoff),
            Error::Api {
                retry_after: Some(ra),
                ..
            } => (*ra).min(self.policy.max_retry_after).max(backoff),
            _ => backoff,
        };
        (self.started.elapsed() + delay < self.policy.patience).then_some(delay)
    }
}

/// Where a client reports the transient answers it waits out (429s, 5xx, resets), so
/// a long call can say why it is slow. Called synchronously; keep it cheap.
#[derive(Clone)]
pub struct RetryNotices(Arc<dyn Fn(&str) + Send + Sync>);

impl RetryNotices {
    /// Notices go to `f`.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> RetryNotices {
        RetryNotices(Arc::new(f))
    }
}

impl std::fmt::Debug for RetryNotices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryNotices")
    }
}

/// The one-line notice for a transient failure waited out.
fn notice(op: &str, err: &Error, delay: Duration) -> String {
    let what = match err {
        Error::Api { status: 429, .. } => "Fly API rate limit (429)".to_owned(),
        Error::Api { status, .. } => format!("Fly API answered {status}"),
        Error::Transport {
            kind: TransportKind::Timeout,
            ..
        } => "Fly API timed out".to_owned(),
        Error::Transport { .. } => "connection to the Fly API failed".to_owned(),
        Error::GraphQl { .. }
        | Error::Decode { .. }
        | Error::Timeout { .. }
        | Error::Invalid { .. }
        | Error::NoToken { .. }
        | Error::Build { .. } => "Fly API call failed".to_owned(),
    };
    format!(
        "{what} on {op}; waiting {:.1} s and trying again",
        delay.as_secs_f64()
    )
}

/// Everything a [`Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Machines REST base (`FLY_API_HOSTNAME`).
    pub api_hostname: Url,
    /// GraphQL and logs base (`FLY_API_BASE_URL`).
    pub api_base_url: Url,
    /// The token; `None` for passthrough servers that set one per request.
    pub token: Option<Token>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Pace calls at Fly's documented rate limits.
    pub pacing: bool,
    /// Per-request timeout (wait calls get their own, longer one).
    pub timeout: Duration,
    /// How the token is narrowed before each call (on by default for macaroons).
    pub attenuation: super::Attenuation,
    /// Where "now" comes from for the validity window of attenuated tokens
    /// (`None`: the system clock).
    pub clock: Option<super::UnixClock>,
}

impl ClientConfig {
    /// A config with Fly's public endpoints and production defaults.
    pub fn new(token: Option<Token>) -> Result<ClientConfig, Error> {
        Ok(ClientConfig {
            api_hostname: parse_url("api_hostname", DEFAULT_API_HOSTNAME)?,
            api_base_url: parse_url("api_base_url", DEFAULT_API_BASE_URL)?,
            token,
            user_agent: concat!("fly-machines-mcp/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            pacing: true,
            timeout: Duration::from_secs(30),
            attenuation: super::Attenuation::default(),
            clock: None,
        })
    }

    /// A config pointing both bases at one local server (simulator or stub), with
    /// millisecond retries and no pacing: for tests and the sandbox.
    pub fn local(base: Url, token: Option<Token>) -> Result<ClientConfig, Error> {
        let mut cfg = ClientConfig::new(token)?;
        cfg.api_hostname = base.clone();
        cfg.api_base_url = base;
        cfg.retry = RetryPolicy::fast();
        cfg.pacing = false;
        cfg.timeout = Duration::from_secs(10);
        Ok(cfg)
    }
}

fn parse_url(field: &str, s: &str) -> Result<Url, Error> {
    Url::parse(s).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The `fly-request-id`s of the responses a recording client received.
#[derive(Debug, Clone, Default)]
pub struct RequestIds(Arc<Mutex<Vec<String>>>);

impl RequestIds {
    /// Takes every id recorded so far, leaving the list empty.
    pub fn take(&self) -> Vec<String> {
        match self.0.lock() {
            Ok(mut ids) => std::mem::take(&mut *ids),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    fn push(&self, id: &str) {
        match self.0.lock() {
            Ok(mut ids) => ids.push(id.to_owned()),
            Err(poisoned) => poisoned.into_inner().push(id.to_owned()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    api_hostname: Url,
    api_base_url: Url,
    retry: RetryPolicy,
    pacer: Option<Pacer>,
    timeout: Duration,
    /// App and org ids learnt for attenuation, and the clock it uses.
    pub(crate) attn: super::attenuate::Shared,
}

/// The Fly API client. Cheap to clone (an `Arc` inside); clones share the
/// connection pool and the pacers.
#[derive(Debug, Clone)]
pub struct Client {
    shared: Arc<Shared>,
    pub(crate) token: Option<Token>,
    recorder: Option<RequestIds>,
    pub(crate) wait_observer: Option<super::wait::WaitObserver>,
    notices: Option<RetryNotices>,
    /// The attenuation policy and this clone's call scope.
    pub(crate) attn: super::attenuate::Scope,
    /// Recorded as the creator in the metadata of every machine this clone creates
    /// (see `org_machines.rs`).
    pub(crate) creator: Option<Arc<str>>,
}

/// Which base URL a call goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Api {
    /// `FLY_API_HOSTNAME` (Machines REST).
    Machines,
    /// `FLY_API_BASE_URL` (GraphQL, logs).
    Platform,
}

/// When a failed call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryMode {
    /// Idempotent: retry 408, 429, 5xx and transport errors.
    Safe,
    /// A wait call: like `Safe` but a 408 is an answer ("not yet"), not retried.
    Wait,
    /// Not idempotent: retry only when the request certainly had no effect
    /// (429, connection never made).
    Unsafe,
}

/// One request to make. `Debug` leaves the body out (it may hold secret values).
pub(crate) struct Req {
    pub(crate) op: &'static str,
    pub(crate) method: Method,
    pub(crate) api: Api,
    pub(crate) segments: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<serde_json::Value>,
    nonce: Option<String>,
    pace: Option<(PaceClass, String)>,
    retry: RetryMode,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Req")
            .field("op", &self.op)
            .field("method", &self.method)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

impl Req {
    pub(crate) fn new(op: &'static str, method: Method, api: Api, segments: &[&str]) -> Req {
        let retry = if method == Method::GET
            || method == Method::DELETE
            || method == Method::PUT
            || method == Method::HEAD
        {
            RetryMode::Safe
        } else {
            RetryMode::Unsafe
        };
        Req {
            op,
            method,
            api,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            nonce: None,
            pace: None,
            retry,
            timeout: None,
        }
    }

    /// A Machines REST call; `segments` follow `/v1/`.
    pub(crate) fn machines(op: &'static str, method: Method, segments: &[&str]) -> Req {
        let mut all = vec!["v1"];
        all.extend_from_slice(segments);
        Req::new(op, method, Api::Machines, &all)
    }

    /// A call on an app's resources, `/v1/apps/{app}/{tail…}`, paced per app.
    pub(crate) fn app(op: &'static str, method: Method, app: &str, tail: &[&str]) -> Req {
        let mut segments = vec!["apps", app];
        segments.extend_from_slice(tail);
        Req::machines(op, method, &segments).pace(PaceClass::Action, app)
    }

    /// A call on one machine, `/v1/apps/{app}/machines/{machine_id}/{tail…}`, paced per
    /// machine.
    pub(crate) fn machine(
        op: &'static str,
        method: Method,
        app: &str,
        machine_id: &str,
        tail: &[&str],
    ) -> Req {
        let mut segments = vec!["apps", app, "machines", machine_id];
        segments.extend_from_slice(tail);
        Req::machines(op, method, &segments).pace(PaceClass::Action, machine_id)
    }

    /// A call on one volume, `/v1/apps/{app}/volumes/{volume_id}/{tail…}`, paced per
    /// volume.
    pub(crate) fn volume(
        op: &'static str,
        method: Method,
        app: &str,
        volume_id: &str,
        tail: &[&str],
    ) -> Req {
        let mut segments = vec!["apps", app, "volumes", volume_id];
        segments.extend_from_slice(tail);
        Req::machines(op, method, &segments).pace(PaceClass::Action, volume_id)
    }

    pub(crate) fn query(mut self, key: &str, value: impl ToString) -> Req {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    pub(crate) fn query_opt(self, key: &str, value: Option<impl ToString>) -> Req {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    pub(crate) fn json(mut self, body: &impl serde::Serialize) -> Result<Req, Error> {
        let value = serde_json::to_value(body)
            .map_err(|e| Error::invalid("request body", e.to_string()))?;
        self.body = Some(value);
        Ok(self)
    }

    pub(crate) fn nonce(mut self, nonce: Option<&super::LeaseNonce>) -> Req {
        self.nonce = nonce.map(|n| n.as_str().to_owned());
        self
    }

    pub(crate) fn pace(mut self, class: PaceClass, scope: &str) -> Req {
        self.pace = Some((class, format!("{}:{scope}", self.op)));
        self
    }

    pub(crate) fn retry(mut self, mode: RetryMode) -> Req {
        self.retry = mode;
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Req {
        self.timeout = Some(timeout);
        self
    }
}

/// Whether a page without items ends a cursor-paged listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmptyPage {
    /// It is the last page, whatever cursor it gives.
    Ends,
    /// Its cursor is followed like any other.
    FollowsCursor,
}

/// Every item of a cursor-paged listing. `page(cursor)` fetches one page (the first
/// with `None`) and answers its items and the cursor of the next page (`None` after
/// the last). At most `max_pages` are fetched: a guard against a server that keeps
/// handing out cursors.
pub(crate) async fn all_pages<T, Page>(
    max_pages: usize,
    empty: EmptyPage,
    mut page: impl FnMut(Option<String>) -> Page,
) -> Result<Vec<T>, Error>
where
    Page: Future<Output = Result<(Vec<T>, Option<String>), Error>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..max_pages {
        let (items, next) = page(cursor.take()).await?;
        let last = empty == EmptyPage::Ends && items.is_empty();
        all.extend(items);
        match next {
            Some(next) if !last => cursor = Some(next),
            _ => break,
        }
    }
    Ok(all)
}

/// A successful response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) op: &'static str,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) request_id: Option<String>,
}

impl Resp {
    /// Decodes the body, naming the JSON path of any mismatch.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode(self.op, &self.body, self.request_id.as_deref())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Decodes JSON with `serde_path_to_error` so errors name the path.
pub(crate) fn decode<T: DeserializeOwned>(
    op: &'static str,
    body: &[u8],
    request_id: Option<&str>,
) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(decode_error(op, request_id))
}

/// The [`Error::Decode`] of a body that did not have the expected shape, naming the
/// path of the mismatch.
fn decode_error<'a>(
    op: &'static str,
    request_id: Option<&'a str>,
) -> impl FnOnce(serde_path_to_error::Error<serde_json::Error>) -> Error + 'a {
    move |e| Error::Decode {
        op,
        path: e.path().to_string(),
        source: e.into_inner(),
        request_id: request_id.map(str::to_owned),
    }
}

/// Decodes an already-parsed JSON value, naming the path of any mismatch.
pub(crate) fn decode_value<T: DeserializeOwned>(
    op: &'static str,
    value: serde_json::Value,
    request_id: Option<&str>,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(decode_error(op, request_id))
}

#[derive(serde::Deserialize)]
struct WireErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<String>,
}

const MAX_ERROR_TEXT: usize = 600;

fn api_error(
    op: &'static str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_id: Option<String>,
) -> Error {
    let text = String::from_utf8_lossy(body);
    let (message, code) = match serde_json::from_slice::<WireErrorBody>(body) {
        Ok(w) => {
            let code = match w.status {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
                _ => w.code.filter(|c| !c.is_empty()),
            };
            let message = w
                .message
                .filter(|m| !m.is_empty())
                .or(w.error)
                .unwrap_or_else(|| text.trim().to_owned());
            (message, code)
        }
        Err(_) => (text.trim().to_owned(), None),
    };
    let message = if message.is_empty() {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned()
    } else {
        truncate(&message, MAX_ERROR_TEXT)
    };
    Error::Api {
        op,
        status,
        code,
        message,
        request_id,
        retry_after: retry_after(headers),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?;
    let now = jiff::Timestamp::now();
    let span = at.timestamp().duration_since(now);
    Duration::try_from(span).ok()
}

fn transport(op: &'static str, e: reqwest::Error) -> Error {
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    };
    Error::Transport {
        op,
        kind,
        source: Box::new(e.without_url()),
    }
}

fn should_retry(mode: RetryMode, e: &Error) -> bool {
    match mode {
        RetryMode::Safe => e.is_retryable(),
        RetryMode::Wait => e.is_retryable() && e.status() != Some(408),
        RetryMode::Unsafe => e.status() == Some(429) || (e.is_retryable() && !e.is_ambiguous()),
    }
}

impl Client {
    /// Builds a client (rustls with the ring provider, HTTP/2 when offered).
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(cfg.user_agent.clone())
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Build {
                source: Box::new(e),
            })?;
        Ok(Client {
            shared: Arc::new(Shared {
                http,
                api_hostname: cfg.api_hostname,
                api_base_url: cfg.api_base_url,
                retry: cfg.retry,
                pacer: cfg.pacing.then(Pacer::new),
                timeout: cfg.timeout,
                attn: super::attenuate::Shared::new(cfg.clock),
            }),
            token: cfg.token,
            recorder: None,
            wait_observer: None,
            notices: None,
            attn: super::attenuate::Scope::new(cfg.attenuation),
            creator: None,
        })
    }

    /// The same client (pools, pacers) using another token: passthrough mode.
    pub fn with_token(&self, token: Token) -> Client {
        Client {
            shared: Arc::clone(&self.shared),
            token: Some(token),
            recorder: self.recorder.clone(),
            wait_observer: self.wait_observer.clone(),
            notices: self.notices.clone(),
            attn: self.attn.clone(),
            creator: self.creator.clone(),
        }
    }

    /// A clone that records the `fly-request-id` of every response it gets.
    pub fn recording(&self) -> (Client, RequestIds) {
        let ids = RequestIds::default();
        let client = Client {
            shared: Arc::clone(&self.shared),
            token: self.token.clone(),
            recorder: Some(ids.clone()),
            wait_observer: self.wait_observer.clone(),
            notices: self.notices.clone(),
            attn: self.attn.clone(),
            creator: self.creator.clone(),
        };
        (client, ids)
    }

    /// Fly's "now" in Unix seconds: the injected clock, else the system clock
    /// corrected by the offset to Fly's `Date` header.
    pub fn fly_now(&self) -> i64 {
        self.shared.attn.now()
    }

    /// A clone that reports every transient answer it waits out to `notices`.
    pub fn with_notices(&self, notices: RetryNotices) -> Client {
        Client {
            notices: Some(notices),
            ..self.clone()
        }
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `text` carries this client's token (see [`Token::appears_in`]).
    pub fn token_appears_in(&self, text: &str) -> bool {
        self.token.as_ref().is_some_and(|t| t.appears_in(text))
    }

    /// What attenuation learnt, shared by every clone (see `attenuate.rs`).
    pub(crate) fn learnt(&self) -> &super::attenuate::Shared {
        &self.shared.attn
    }

    /// The Machines REST base URL.
    pub fn api_hostname(&self) -> &Url {
        &self.shared.api_hostname
    }

    /// The GraphQL / logs base URL.
    pub fn api_base_url(&self) -> &Url {
        &self.shared.api_base_url
    }

    /// A fresh retry schedule of this client's policy (for look-then-retry loops).
    pub(crate) fn retrier(&self) -> Retrier {
        Retrier::new(&self.shared.retry)
    }

    /// Waits `delay` after `err`, saying so to the notices sink.
    pub(crate) async fn wait_out(&self, op: &str, err: &Error, delay: Duration) {
        tracing::debug!(op, error = %err, ?delay, "retrying Fly API call");
        if let Some(n) = &self.notices {
            (n.0)(&notice(op, err, delay));
        }
        tokio::time::sleep(delay).await;
    }

    /// The retry policy's first delay.
    pub(crate) fn retry_min_delay(&self) -> Duration {
        self.shared.retry.min_delay
    }

    /// The retry policy's largest delay.
    pub(crate) fn retry_max_delay(&self) -> Duration {
        self.shared.retry.max_delay
    }

    pub(crate) fn default_timeout(&self) -> Duration {
        self.shared.timeout
    }

    fn url(&self, req: &Req) -> Result<Url, Error> {
        let mut url = match req.api {
            Api::Machines => self.shared.api_hostname.clone(),
            Api::Platform => self.shared.api_base_url.clone(),
        };
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|()| Error::invalid("api base url", "cannot be a base URL"))?;
            segs.pop_if_empty();
            segs.extend(req.segments.iter());
        }
        if !req.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &req.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends a request with pacing and retries; returns the successful response.
    ///
    /// A DELETE repeated after an ambiguous failure that now answers 404 succeeded:
    /// the earlier attempt removed it and only its answer was lost.
    pub(crate) async fn send(&self, req: Req) -> Result<Resp, Error> {
        self.send_noting_ambiguity(req).await.0
    }

    /// [`Client::send`], also telling whether an attempt failed ambiguously (5xx,
    /// reset, timeout) before the final answer: then that answer may be about an
    /// effect the lost attempt already had (a 409 for our own update).
    pub(crate) async fn send_noting_ambiguity(&self, req: Req) -> (Result<Resp, Error>, bool) {
        let mut retrier = self.retrier();
        let mut ambiguous = false;
        let result = loop {
            if let (Some(pacer), Some((class, key))) = (&self.shared.pacer, &req.pace) {
                pacer.until_ready(*class, key).await;
            }
            let err = match self.attenuated_attempt(&req).await {
                Ok(resp) => break Ok(resp),
                Err(e) => e,
            };
            if ambiguous && req.method == Method::DELETE && err.is_not_found() {
                break Ok(Resp {
                    op: req.op,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                    request_id: err.request_id().map(str::to_owned),
                });
            }
            if !should_retry(req.retry, &err) {
                break Err(err);
            }
            let Some(delay) = retrier.next_delay(&err) else {
                break Err(err);
            };
            ambiguous |= err.is_ambiguous();
            self.wait_out(req.op, &err, delay).await;
        };
        (result, ambiguous)
    }

    /// One attempt with an `Authorization` header already built (see `attenuate.rs`).
    pub(crate) async fn attempt(
        &self,
        req: &Req,
        authorization: http::HeaderValue,
    ) -> Result<Resp, Error> {
        let op = req.op;
        let url = self.url(req)?;
        let mut rb = self
            .shared
            .http
            .request(req.method.clone(), url)
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json");
        if let Some(nonce) = &req.nonce {
            rb = rb.header("fly-machine-lease-nonce", nonce);
        }
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        if let Some(t) = req.timeout {
            rb = rb.timeout(t);
        }
        let started = std::time::Instant::now();
        let resp = rb.send().await.map_err(|e| transport(op, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let request_id = headers
            .get("fly-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| transport(op, e))?;
        if let (Some(rec), Some(id)) = (&self.recorder, &request_id) {
            rec.push(id);
        }
        tracing::debug!(
            op,
            method = %req.method,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Fly API call"
        );
        if (200..300).contains(&status) {
            Ok(Resp {
                op,
                headers,
                body,
                request_id,
            })
        } else {
            Err(api_error(op, status, &headers, &body, request_id))
        }
    }
}

/// reqwest is built without a bundled crypto provider: install ring as the
/// process default (a no-op when something already installed one).
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages `[1] → a`, `[] → b`, `[2] → end`, recording the cursors asked for.
    async fn listing(max_pages: usize, empty: EmptyPage) -> (Vec<u8>, Vec<Option<String>>) {
        let mut asked = Vec::new();
        let items = all_pages(max_pages, empty, |cursor| {
            asked.push(cursor.clone());
            async move {
                Ok(match cursor.as_deref() {
                    None => (vec![1], Some("a".to_owned())),
                    Some("a") => (vec![], Some("b".to_owned())),
                    _ => (vec![2], None),
                })
            }
        })
        .await
        .unwrap();
        (items, asked)
    }

    #[tokio::test]
    async fn all_pages_follows_cursors_to_the_last_page() {
        let (items, asked) = listing(10, EmptyPage::FollowsCursor).await;
        assert_eq!(items, [1, 2]);
        assert_eq!(asked, [None, Some("a".into()), Some("b".into())]);
        let (items, asked) = listing(10, EmptyPage::Ends).await;
        assert_eq!(items, [1]);
        assert_eq!(asked, [None, Some("a".into())]);
        let (items, asked) = listing(1, EmptyPage::FollowsCursor).await;
        assert_eq!(items, [1]);
        assert_eq!(asked, [None]);
    }
}
