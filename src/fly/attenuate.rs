//! Least privilege enforced by Fly itself: before every call the client appends
//! caveats to its macaroon token so that what it sends never allows more than the call
//! in hand needs, and Fly refuses the rest (superfly/macaroon: anyone holding a token
//! may narrow it, nobody can widen it; flyctl does the same in `fly tokens create
//! readonly` and `fly tokens attenuate`).
//!
//! [`Client::attenuated_attempt`] builds the one `Authorization` header of each
//! attempt. The caveats come from three places:
//! - the policy ([`Attenuation`]): `--read-only` appends `Action r` to every call;
//!   `--allow-org SLUG` (one literal slug) appends `Organization {id}`;
//! - the call's scope ([`CallAccess`], set by the caller for the call, from its tool's
//!   kind): read calls `Action r`, write calls `Action rwcC` (no delete), destroy calls
//!   everything;
//! - the request: a request on an app (`/v1/apps/{app}/…`, the logs of an app) gets
//!   `Apps {app id: mask}` with the app's internal numeric id (`GET /v1/apps/{app}`,
//!   cached); a request on an org (list its apps, its machines) gets `Organization {id:
//!   mask}`, and creating an app `Organization {id: c}` — exactly what creating needs.
//!
//! Every attenuated token carries a `ValidityWindow` of a few minutes, so one that
//! leaks is nearly worthless. A token that is not a macaroon, or cannot be decoded, is
//! sent as it is (the caller warns at start-up).
//!
//! Knows nothing of MCP: the scope is a plain value handed down by the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;

use super::client::{Api, Req, Resp};
use super::macaroon::{Action, Caveat};
use super::pacing::PaceClass;
use super::token::Audience;
use super::{Client, Error};

/// How far back the validity window starts, for clocks that disagree a little.
const NOT_BEFORE_SLACK: Duration = Duration::from_secs(120);
/// How long learnt org ids are trusted before a miss reloads them.
const ORG_RELOAD: Duration = Duration::from_secs(60);

/// How the client narrows its token before each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attenuation {
    /// Attenuate at all (`--no-attenuate` turns it off). Only macaroon tokens can be.
    pub enabled: bool,
    /// `--read-only`: every call gets `Action r`.
    pub read_only: bool,
    /// `--allow-org` patterns. One literal slug (no glob characters) confines every
    /// call to that org; with globs only calls on an org are confined (to that org).
    pub allow_orgs: Vec<String>,
    /// How long an attenuated token is valid after it is made.
    pub validity: Duration,
}

impl Default for Attenuation {
    fn default() -> Self {
        Attenuation {
            enabled: true,
            read_only: false,
            allow_orgs: Vec::new(),
            validity: Duration::from_secs(300),
        }
    }
}

impl Attenuation {
    /// Off: the token is sent as it is.
    pub fn off() -> Self {
        Attenuation {
            enabled: false,
            ..Attenuation::default()
        }
    }

    fn single_org(&self) -> Option<&str> {
        match self.allow_orgs.as_slice() {
            [one] if !one.contains(['*', '?', '[', '{']) && !one.is_empty() => Some(one),
            _ => None,
        }
    }
}

/// What one call may do: the caller's scope, from its tool's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAccess {
    /// Reads only.
    Read,
    /// Reads, writes, creates and controls; never deletes.
    Write,
    /// Anything, deleting included (on the apps the call's requests name).
    Destroy,
}

impl CallAccess {
    /// The action mask this access allows.
    pub fn mask(self) -> Action {
        match self {
            CallAccess::Read => Action::READ,
            CallAccess::Write => Action::READ
                .union(Action::WRITE)
                .union(Action::CREATE)
                .union(Action::CONTROL),
            CallAccess::Destroy => Action::ALL,
        }
    }
}

/// Unix seconds "now", for validity windows (tests against a simulator with its own
/// clock pass the simulator's).
#[derive(Clone)]
pub struct UnixClock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl UnixClock {
    /// A clock reading `now` (Unix seconds).
    pub fn new(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        UnixClock(Arc::new(now))
    }
}

impl std::fmt::Debug for UnixClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnixClock")
    }
}

/// The policy and the call scope a client clone attenuates with.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    policy: Arc<Attenuation>,
    access: Option<CallAccess>,
    /// Whether ids may be looked up (off for the lookups themselves).
    lookups: bool,
}

impl Scope {
    pub(crate) fn new(policy: Attenuation) -> Self {
        Scope {
            policy: Arc::new(policy),
            access: None,
            lookups: true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct AppIds {
    app: u64,
}

/// What every clone of a client shares: learnt ids, the clock and its offset to Fly's.
#[derive(Debug)]
pub(crate) struct Shared {
    clock: Option<UnixClock>,
    /// Fly's clock minus ours, in seconds, from the `Date` of the last answer (only
    /// with the system clock).
    offset: AtomicI64,
    apps: Mutex<HashMap<String, AppIds>>,
    orgs: Mutex<OrgIds>,
    /// Held while an id is looked up, so concurrent requests wait for one lookup
    /// instead of each making their own.
    looking_up: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct OrgIds {
    by_slug: HashMap<String, u64>,
    personal: Option<u64>,
    loaded: Option<Instant>,
}

impl Shared {
    pub(crate) fn new(clock: Option<UnixClock>) -> Self {
        Shared {
            clock,
            offset: AtomicI64::new(0),
            apps: Mutex::new(HashMap::new()),
            orgs: Mutex::new(OrgIds::default()),
            looking_up: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        match &self.clock {
            Some(c) => (c.0)(),
            None => jiff::Timestamp::now()
                .as_second()
                .saturating_add(self.offset.load(Ordering::Relaxed)),
        }
    }

    fn app(&self, name: &str) -> Option<AppIds> {
        lock(&self.apps).get(name).copied()
    }

    fn learn_app(&self, name: &str, ids: AppIds) {
        lock(&self.apps).insert(name.to_owned(), ids);
    }

    fn forget_app(&self, name: &str) {
        lock(&self.apps).remove(name);
    }

    fn org(&self, slug: &str) -> Option<u64> {
        let orgs = lock(&self.orgs);
        orgs.by_slug
            .get(slug)
            .copied()
            .or_else(|| (slug == "personal").then_some(orgs.personal).flatten())
    }

    fn org_reload_due(&self) -> bool {
        lock(&self.orgs)
            .loaded
            .is_none_or(|at| at.elapsed() >= ORG_RELOAD)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a request is about, as Fly's access check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Names an app (its path, or its logs).
    App(String),
    /// Names an org (app listing and creation, org-wide listings).
    Org { slug: String, creates_app: bool },
    /// Names neither (regions, the token, GraphQL).
    Neither,
}

fn target(req: &Req) -> Target {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.api, segs.as_slice()) {
        (Api::Machines, ["v1", "apps", app, ..])
        | (Api::Platform, ["api", "v1", "apps", app, ..]) => Target::App((*app).to_owned()),
        (Api::Machines, ["v1", "apps"]) => {
            let from_query = req
                .query
                .iter()
                .find(|(k, _)| k == "org_slug")
                .map(|(_, v)| v.clone());
            let from_body = req
                .body
                .as_ref()
                .and_then(|b| b.get("org_slug"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            match from_query.or(from_body) {
                Some(slug) => Target::Org {
                    slug,
                    creates_app: req.method == Method::POST,
                },
                None => Target::Neither,
            }
        }
        (Api::Machines, ["v1", "orgs", org, ..]) => Target::Org {
            slug: (*org).to_owned(),
            creates_app: false,
        },
        _ => Target::Neither,
    }
}

fn audience(req: &Req) -> Audience {
    match req.api {
        Api::Machines => Audience::Machines,
        Api::Platform if req.segments.first().is_some_and(|s| s == "graphql") => Audience::GraphQl,
        Api::Platform => Audience::Logs,
    }
}

/// The app of a `method` call on `/v1/apps/{app}` itself. A `GET` can be sent before
/// the app's id is known, and its answer teaches the id; a `DELETE` makes it stale.
fn app_itself(req: &Req, method: Method) -> Option<&str> {
    match (req.api, req.segments.as_slice()) {
        (Api::Machines, [v1, apps, app])
            if v1 == "v1" && apps == "apps" && req.method == method =>
        {
            Some(app)
        }
        _ => None,
    }
}

/// The caveats of one attempt, and whether an app id came from the cache.
struct Plan {
    caveats: Vec<Caveat>,
    cached_app: Option<String>,
}

impl Client {
    /// The same client (pools, pacers, learnt ids) attenuating with `policy` instead.
    pub fn with_attenuation(&self, policy: Attenuation) -> Client {
        let mut c = self.clone();
        c.attn = Scope::new(policy);
        c
    }

    /// The same client, every request of it narrowed to `access` (the call's scope).
    pub fn scoped(&self, access: CallAccess) -> Client {
        let mut c = self.clone();
        c.attn.access = Some(access);
        c
    }

    /// Undoing what this call created needs delete on the same apps: a write scope
    /// becomes a destroy scope (a read scope stays read; the policy still applies).
    pub fn for_rollback(&self) -> Client {
        match self.attn.access {
            Some(CallAccess::Write) => self.scoped(CallAccess::Destroy),
            _ => self.clone(),
        }
    }

    /// This clone's call scope.
    pub fn call_access(&self) -> Option<CallAccess> {
        self.attn.access
    }

    /// Whether requests are attenuated: the policy says so and the token can take
    /// caveats.
    pub fn attenuates(&self) -> bool {
        self.attn.policy.enabled && self.token.as_ref().is_some_and(super::Token::attenuable)
    }

    /// Why this client's macaroon token cannot be attenuated, if it is one that cannot
    /// (no part of the token in the text).
    pub fn attenuation_problem(&self) -> Option<String> {
        self.token
            .as_ref()
            .and_then(super::Token::attenuation_problem)
    }

    /// A clone for looking ids up: reads only, and no lookups of its own.
    fn resolver(&self) -> Client {
        let mut c = self.scoped(CallAccess::Read);
        c.attn.lookups = false;
        c
    }

    /// One attempt of `req` with the `Authorization` header attenuated for it. Learns
    /// app ids from `GET /v1/apps/{app}` answers and forgets them when the app is
    /// deleted; a 403 to a request that used a remembered id (the app was deleted and
    /// made again, by another replica) looks the id up once more and retries once.
    pub(crate) async fn attenuated_attempt(&self, req: &Req) -> Result<Resp, Error> {
        let token = self.token.as_ref().ok_or(Error::NoToken { op: req.op })?;
        if !self.attenuates() {
            return self
                .attempt(req, token.authorization(audience(req), &[])?)
                .await;
        }
        let plan = self.plan(req).await;
        let result = self
            .attempt(req, token.authorization(audience(req), &plan.caveats)?)
            .await;
        self.learn(req, &result);
        match (&result, plan.cached_app) {
            (Err(e), Some(app)) if e.status() == Some(403) => {
                let before = self.learnt().app(&app);
                self.learnt().forget_app(&app);
                let retry = self.plan(req).await;
                let after = self.learnt().app(&app);
                if after.is_some() && after.map(|a| a.app) != before.map(|a| a.app) {
                    tracing::debug!(
                        op = req.op,
                        app,
                        "app id changed; retrying with the new one"
                    );
                    let result = self
                        .attempt(req, token.authorization(audience(req), &retry.caveats)?)
                        .await;
                    self.learn(req, &result);
                    return result;
                }
                result
            }
            _ => result,
        }
    }

    /// Derives the caveats for `req` from the policy, the scope and the request.
    async fn plan(&self, req: &Req) -> Plan {
        let policy = &self.attn.policy;
        let now = self.learnt().now();
        let window = i64::try_from(policy.validity.as_secs()).unwrap_or(300);
        let slack = i64::try_from(NOT_BEFORE_SLACK.as_secs()).unwrap_or(120);
        let mut caveats = vec![Caveat::ValidityWindow {
            not_before: now.saturating_sub(slack),
            not_after: now.saturating_add(window),
        }];
        let mut mask = self.attn.access.map_or(Action::ALL, CallAccess::mask);
        if policy.read_only {
            mask = mask.intersect(Action::READ);
        }
        if mask != Action::ALL {
            caveats.push(Caveat::Action(mask));
        }
        let mut cached_app = None;
        match target(req) {
            Target::App(app) => {
                let known = self.learnt().app(&app);
                let ids = match known {
                    Some(ids) => {
                        cached_app = Some(app.clone());
                        Some(ids)
                    }
                    // Reading the app itself is how its id is learnt.
                    None if app_itself(req, Method::GET).is_some() => None,
                    None => self.look_up_app(&app).await,
                };
                if let Some(ids) = ids {
                    caveats.push(Caveat::Apps([(ids.app, mask)].into_iter().collect()));
                }
            }
            Target::Org { slug, creates_app } => {
                if let Some(id) = self.org_id(&slug).await {
                    let mask = if creates_app { Action::CREATE } else { mask };
                    caveats.push(Caveat::Organization { id, mask });
                }
            }
            Target::Neither => {}
        }
        if let Some(slug) = policy.single_org()
            && let Some(id) = self.org_id(slug).await
        {
            caveats.push(Caveat::Organization {
                id,
                mask: Action::ALL,
            });
        }
        Plan {
            caveats,
            cached_app,
        }
    }

    async fn look_up_app(&self, app: &str) -> Option<AppIds> {
        if !self.attn.lookups {
            return None;
        }
        let _one_at_a_time = self.learnt().looking_up.lock().await;
        if let Some(ids) = self.learnt().app(app) {
            return Some(ids);
        }
        let req =
            Req::machines("get_app", Method::GET, &["apps", app]).pace(PaceClass::Action, app);
        match Box::pin(self.resolver().send(req)).await {
            Ok(_) => self.learnt().app(app),
            Err(e) => {
                tracing::debug!(app, error = %e, "app id not known: its calls go without an Apps caveat");
                None
            }
        }
    }

    async fn org_id(&self, slug: &str) -> Option<u64> {
        if let Some(id) = self.learnt().org(slug) {
            return Some(id);
        }
        if !self.attn.lookups {
            return None;
        }
        let _one_at_a_time = self.learnt().looking_up.lock().await;
        if let Some(id) = self.learnt().org(slug) {
            return Some(id);
        }
        if !self.learnt().org_reload_due() {
            return None;
        }
        match Box::pin(self.resolver().organizations()).await {
            Ok(orgs) => {
                let mut ids = lock(&self.learnt().orgs);
                for o in orgs {
                    if let Some(id) = o.internal_numeric_id.and_then(|i| u64::try_from(i).ok()) {
                        if o.kind.as_deref() == Some("PERSONAL") {
                            ids.personal = Some(id);
                        }
                        ids.by_slug.insert(o.slug, id);
                    }
                }
                ids.loaded = Some(Instant::now());
            }
            Err(e) => {
                lock(&self.learnt().orgs).loaded = Some(Instant::now());
                tracing::debug!(org = slug, error = %e, "org id not known: its calls go without an Organization caveat");
            }
        }
        self.learnt().org(slug)
    }

    /// Learns from an answer: app ids from `GET /v1/apps/{app}`, a deleted app's id
    /// forgotten, and Fly's clock from `Date`.
    fn learn(&self, req: &Req, result: &Result<Resp, Error>) {
        let Ok(resp) = result else { return };
        if self.learnt().clock.is_none()
            && let Some(date) = resp.header("date")
            && let Ok(at) = jiff::fmt::rfc2822::parse(date)
        {
            let offset = at.timestamp().as_second() - jiff::Timestamp::now().as_second();
            self.learnt().offset.store(offset, Ordering::Relaxed);
        }
        if let Some(app) = app_itself(req, Method::GET) {
            #[derive(serde::Deserialize)]
            struct WireIds {
                #[serde(default)]
                internal_numeric_id: Option<serde_json::Value>,
            }
            if let Ok(w) = serde_json::from_slice::<WireIds>(&resp.body)
                && let Some(id) = w.internal_numeric_id.as_ref().and_then(numeric)
            {
                self.learnt().learn_app(app, AppIds { app: id });
            }
        } else if let Some(app) = app_itself(req, Method::DELETE) {
            self.learnt().forget_app(app);
        }
    }
}

/// Fly's numeric ids arrive as numbers or strings.
fn numeric(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_what_fly_checks() {
        let r = Req::machines("list_machines", Method::GET, &["apps", "a1", "machines"]);
        assert_eq!(target(&r), Target::App("a1".into()));
        let r = Req::new(
            "app_logs",
            Method::GET,
            Api::Platform,
            &["api", "v1", "apps", "a1", "logs"],
        );
        assert_eq!(target(&r), Target::App("a1".into()));
        assert_eq!(audience(&r), Audience::Logs);
        let r = Req::machines("list_apps", Method::GET, &["apps"]).query("org_slug", "acme");
        assert_eq!(
            target(&r),
            Target::Org {
                slug: "acme".into(),
                creates_app: false
            }
        );
        let r = Req::machines("create_app", Method::POST, &["apps"])
            .json(&serde_json::json!({"name": "x", "org_slug": "acme"}))
            .unwrap();
        assert_eq!(
            target(&r),
            Target::Org {
                slug: "acme".into(),
                creates_app: true
            }
        );
        let r = Req::machines("org_machines", Method::GET, &["orgs", "acme", "machines"]);
        assert!(matches!(
            target(&r),
            Target::Org {
                creates_app: false,
                ..
            }
        ));
        let r = Req::machines("list_regions", Method::GET, &["platform", "regions"]);
        assert_eq!(target(&r), Target::Neither);
        let r = Req::new("organizations", Method::POST, Api::Platform, &["graphql"]);
        assert_eq!(target(&r), Target::Neither);
        assert_eq!(audience(&r), Audience::GraphQl);
    }

    #[test]
    fn masks_by_access() {
        assert_eq!(CallAccess::Read.mask().letters(), "r");
        assert_eq!(CallAccess::Write.mask().letters(), "rwcC");
        assert_eq!(CallAccess::Destroy.mask().letters(), "rwcdC");
        let single = Attenuation {
            allow_orgs: vec!["acme".into()],
            ..Attenuation::default()
        };
        assert_eq!(single.single_org(), Some("acme"));
        let globbed = Attenuation {
            allow_orgs: vec!["acme-*".into()],
            ..Attenuation::default()
        };
        assert_eq!(globbed.single_org(), None);
    }
}
