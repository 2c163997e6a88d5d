//! What a tool body gets: the Fly client (already switched to the caller's token in
//! passthrough mode, and recording request ids for the audit log), the scope rules,
//! the secret registry and a progress reporter. Built per call by the gate; the
//! server keeps no other state between calls.

use std::sync::Arc;

use rmcp::{
    RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
    service::Peer,
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{error::ToolError, redact::Redactor, safety::Scope};
use crate::{
    fly,
    workflows::{pool::PoolListings, secret_refs::RefPolicy},
};

/// Per-call context handed to tool bodies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ToolContext {
    client: fly::Client,
    scope: Arc<Scope>,
    owned_only: bool,
    default_org: Arc<str>,
    redactor: Redactor,
    progress: Option<Progress>,
    secret_refs: Arc<RefPolicy>,
    pool_listings: Arc<PoolListings>,
    cancel: CancellationToken,
}

#[derive(Debug, Clone)]
struct Progress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    /// The last progress value sent: MCP wants each notification's value above the
    /// one before, and retry notices come between the workflow's own steps.
    last: Arc<std::sync::Mutex<f64>>,
}

impl Progress {
    /// The value to send for a workflow step `done`, or (`None`) for a note between
    /// steps: always above the last one sent.
    fn next_value(&self, done: Option<u32>) -> f64 {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = match done.map(f64::from) {
            Some(d) if d > *last => d,
            // Halfway to the next whole step: never reaches it.
            _ => last.floor() + (last.fract() + 1.0) / 2.0,
        };
        *last = value;
        value
    }

    fn notify(&self, value: f64, total: Option<u32>, message: String) -> ProgressNotificationParam {
        let mut param =
            ProgressNotificationParam::new(self.token.clone(), value).with_message(message);
        if let Some(total) = total {
            param = param.with_total(f64::from(total));
        }
        param
    }
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
            progress: None,
            secret_refs: Arc::new(RefPolicy::default()),
            pool_listings: Arc::default(),
            cancel: CancellationToken::new(),
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

    /// A workflow [`Control`](crate::workflows::sched::Control) whose progress reports
    /// become this call's progress notifications (a no-op when the caller asked for
    /// none). The forwarding task ends when the workflow drops its progress sink.
    pub fn control(&self) -> crate::workflows::sched::Control {
        use crate::workflows::sched::{CancellationToken, Control, Progress as Sink};
        if self.progress.is_none() {
            return Control::detached();
        }
        let (sink, mut updates) = Sink::channel();
        let ctx = self.clone();
        tokio::spawn(async move {
            while let Some(u) = updates.recv().await {
                ctx.progress(u.done, u.total, u.message).await;
            }
        });
        Control::new(sink, CancellationToken::new())
    }

    /// Sends progress notifications to `peer` under `token`. The transient answers the
    /// Fly client waits out (429s, 5xx, resets) are reported there too, so a slow
    /// call says why it is slow.
    pub fn with_progress(mut self, peer: Peer<RoleServer>, token: ProgressToken) -> Self {
        let progress = Progress {
            peer,
            token,
            last: Arc::default(),
        };
        let sink = progress.clone();
        let redactor = self.redactor.clone();
        self.client = self
            .client
            .with_notices(fly::RetryNotices::new(move |message: &str| {
                let param = sink.notify(
                    sink.next_value(None),
                    None,
                    redactor.redact(message).into_owned(),
                );
                let peer = sink.peer.clone();
                tokio::spawn(async move {
                    if let Err(e) = peer.notify_progress(param).await {
                        tracing::debug!(error = %e, "progress notification not delivered");
                    }
                });
            }));
        self.progress = Some(progress);
        self
    }

    /// Cancelled when the client cancels this call (`notifications/cancelled`).
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The call's cancellation token: long workflows stop (and roll back) when it fires.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
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
    pub async fn progress(&self, done: u32, total: Option<u32>, message: impl Into<String>) {
        if let Some(p) = &self.progress {
            let param = p.notify(
                p.next_value(Some(done)),
                total,
                self.redactor.redact(&message.into()).into_owned(),
            );
            if let Err(e) = p.peer.notify_progress(param).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
    }
}
