//! What a tool body gets: the Fly client (already switched to the caller's token in
//! passthrough mode, and recording request ids for the audit log), the scope rules,
//! the secret registry, and how the call is steered: where its progress goes and the
//! token that says the caller cancelled. Built per call by the gate; the server keeps
//! no other state between calls.
//!
//! [`ToolContext::steer`] is the one bridge between a workflow's
//! [`Control`] and the caller: every long workflow
//! runs under it, so `notifications/cancelled` and `tasks/cancel` reach every tool the
//! same way, and progress (MCP notifications or a task's status) is reported the same
//! way.

use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{error::ToolError, progress::Reporter, redact::Redactor, safety::Scope};
use crate::{
    fly,
    workflows::{
        pool::PoolListings,
        sched::{Control, Progress},
        secret_refs::RefPolicy,
    },
};

/// How one call is steered: where its progress goes and how the caller cancels it.
#[derive(Debug, Clone, Default)]
pub struct Steering {
    /// Progress notifications, a task's status line, or nothing.
    pub reporter: Reporter,
    /// Cancelled by `notifications/cancelled` (the request's token) or `tasks/cancel`.
    pub cancel: CancellationToken,
}

impl Steering {
    /// Steering with both parts.
    pub fn new(reporter: Reporter, cancel: CancellationToken) -> Steering {
        Steering { reporter, cancel }
    }
}

/// Per-call context handed to tool bodies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ToolContext {
    client: fly::Client,
    scope: Arc<Scope>,
    owned_only: bool,
    default_org: Arc<str>,
    redactor: Redactor,
    secret_refs: Arc<RefPolicy>,
    pool_listings: Arc<PoolListings>,
    steering: Steering,
}

impl ToolContext {
    /// A context for one call.
    pub fn new(
        client: fly::Client,
        scope: Arc<Scope>,
        owned_only: bool,
        default_org: Arc<str>,
        redactor: Redactor,
    ) -> Self {
        ToolContext {
            client,
            scope,
            owned_only,
            default_org,
            redactor,
            secret_refs: Arc::new(RefPolicy::default()),
            pool_listings: Arc::default(),
            steering: Steering::default(),
        }
    }

    /// What secret references may read (`--secret-env`, `--secrets-dir`,
    /// `--allow-literal-secrets`); nothing by default.
    pub fn with_secret_refs(mut self, policy: Arc<RefPolicy>) -> Self {
        self.secret_refs = policy;
        self
    }

    /// The pool listings claims share: the gate's, so one per server process (a
    /// context of its own otherwise).
    pub fn with_pool_listings(mut self, listings: Arc<PoolListings>) -> Self {
        self.pool_listings = listings;
        self
    }

    /// The pool listings claims share.
    pub fn pool_listings(&self) -> &PoolListings {
        &self.pool_listings
    }

    /// What secret references may read and where key files may be written.
    pub fn secret_refs(&self) -> &RefPolicy {
        &self.secret_refs
    }

    /// Steers the call: its progress goes to `steering.reporter`, and its waits on
    /// Fly report "still waiting" there too (the client cuts them into short calls);
    /// long workflows stop (and roll back) when `steering.cancel` fires.
    pub fn with_steering(mut self, steering: Steering) -> Self {
        if !steering.reporter.is_silent() {
            let reporter = steering.reporter.clone();
            self.client = self
                .client
                .observing_waits(fly::WaitObserver::new(move |tick| {
                    reporter.tick(format!(
                        "waiting for machine {} to be {} ({} s so far)",
                        tick.machine_id,
                        tick.wanted,
                        tick.waited.as_secs()
                    ));
                }));
            // The transient answers the client waits out (429s, 5xx, resets) say why a
            // slow call is slow.
            let reporter = steering.reporter.clone();
            self.client = self
                .client
                .with_notices(fly::RetryNotices::new(move |message: &str| {
                    reporter.tick(message.to_owned());
                }));
        }
        self.steering = steering;
        self
    }

    /// Runs `work` with a workflow [`Control`] steered by this call: its progress
    /// reports become the call's progress (values only grow), and its cancellation
    /// is the call's. The one bridge every tool uses.
    pub async fn steer<T, Fut>(&self, work: impl FnOnce(Control) -> Fut) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let (progress, mut updates) = Progress::channel();
        let ctl = Control::new(progress, self.steering.cancel.clone());
        let work = work(ctl);
        tokio::pin!(work);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                update = updates.recv(), if open => match update {
                    Some(u) => self.steering.reporter.step(u.done, u.total, u.message),
                    None => open = false,
                },
                out = &mut work => {
                    while let Ok(u) = updates.try_recv() {
                        self.steering.reporter.step(u.done, u.total, u.message);
                    }
                    return out;
                }
            }
        }
    }

    /// The call's cancellation token: long workflows stop (and roll back) when it fires.
    pub fn cancellation(&self) -> CancellationToken {
        self.steering.cancel.clone()
    }

    /// The Fly client for this call.
    pub fn client(&self) -> &fly::Client {
        &self.client
    }

    /// The org used when a tool's `org` argument is left out (`FLY_ORG`, else `personal`).
    pub fn default_org(&self) -> &str {
        &self.default_org
    }

    /// `--owned-only`: mutate only machines this server created.
    pub fn owned_only(&self) -> bool {
        self.owned_only
    }

    /// Refuses an app outside `--allow-app`. The gate already checked the `app`
    /// argument; use this for apps a tool discovers itself.
    pub fn check_app(&self, app: &str) -> Result<(), ToolError> {
        self.scope.check_app(app)
    }

    /// Refuses an org outside `--allow-org`.
    pub fn check_org(&self, org: &str) -> Result<(), ToolError> {
        self.scope.check_org(org)
    }

    /// The allowlists, for filtering listings.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Registers a secret value so it is redacted from every output from now on.
    pub fn register_secret(&self, value: &SecretString) {
        self.redactor.register(value);
    }

    /// Reports progress if the caller asked for it (a no-op otherwise).
    pub fn progress(&self, done: u32, total: Option<u32>, message: impl Into<String>) {
        self.steering.reporter.step(done, total, message);
    }
}
