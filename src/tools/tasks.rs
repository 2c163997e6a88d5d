//! MCP Tasks (SEP-2663, the `io.modelcontextprotocol/tasks` extension): a tool call
//! whose work waits on Fly is answered with a task the client polls, instead of a
//! result that may come after the client stopped waiting.
//!
//! The task runs the same gate call as the synchronous path ([`super::server`]), in
//! the background: its progress becomes the task's `statusMessage`, `tasks/cancel`
//! fires the same cancellation token `notifications/cancelled` fires (so the workflow
//! stops at the same boundaries and rolls back the same way), a confirmation inside it
//! is asked as the task's `input_required` elicitation, and its result (structured and
//! text, or `isError` for a tool error) is inlined when it completes. rmcp's
//! [`TaskManager`] keeps the state, the TTL and the input round trips; this module adds
//! what a deployment of this server needs around it:
//!
//! - **Which calls become tasks**: [`runs_as_task`].
//! - **Who may see a task**: only the caller that started it (the same server key,
//!   OAuth subject or Fly token); anyone else is told the task does not exist.
//! - **Where a task lives**: a task is held in the memory of the process that runs it.
//!   Behind Fly's proxy with several replicas, a poll may reach another one; the task
//!   id therefore starts with the Fly Machine id of its replica (`FLY_MACHINE_ID`, set
//!   by Fly in every Machine: <https://fly.io/docs/machines/runtime-environment/>), and
//!   [`replay_target`] tells the HTTP layer to answer such a poll with
//!   `fly-replay: instance=<id>`, which makes Fly's proxy deliver the same request to
//!   that Machine (<https://fly.io/docs/networking/dynamic-request-routing/>).
//! - **How long**: [`TASK_TTL`], stated in every task (`ttlMs`). A task still running
//!   [`TTL_MARGIN`] before its TTL is cancelled through the workflow's own path (with
//!   rollback) rather than left to be aborted by the TTL sweep.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, GetTaskResult, Task},
    task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions},
};
use serde_json::Value;

use super::gate::Caller;
use super::render::millis;

/// How long a task is kept (its `ttlMs`): long enough for the longest workflow (a
/// 200-machine pool fill at Fly's create limit takes about 200 s; a rolling update
/// of a large app, tens of minutes), and for a client to come back after a reconnect.
pub const TASK_TTL: Duration = Duration::from_secs(3600);

/// The poll interval suggested to clients (`pollIntervalMs`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A task still running this long before its TTL is cancelled (and rolls back).
pub const TTL_MARGIN: Duration = Duration::from_secs(300);

/// Tasks one caller may have running at once: a task returns at once, so without a
/// bound one client could start workflows faster than they finish.
pub const MAX_RUNNING_PER_CALLER: usize = 16;

/// The tools whose work waits on Fly, and so run as tasks for clients that declared
/// the extension (checked against the catalog by the tests).
pub const TASK_TOOLS: &[&str] = &[
    "provision_environment",
    "update_machines",
    "scale_machines",
    "teardown_environment",
    "pool_fill",
    "reap_expired",
    "deploy_mcp_server",
    "machine_action",
    "volume_action",
];

/// Whether this call of `tool` runs as a task: one of [`TASK_TOOLS`], `machine_action`
/// only when it waits, `volume_action` only for a fork or a restore (a new volume that
/// Fly hydrates).
pub fn runs_as_task(tool: &str, args: Option<&serde_json::Map<String, Value>>) -> bool {
    let arg = |name: &str| args.and_then(|a| a.get(name));
    match tool {
        "machine_action" => arg("wait").and_then(Value::as_bool) != Some(false),
        "volume_action" => matches!(
            arg("action").and_then(Value::as_str),
            Some("fork" | "restore")
        ),
        _ => TASK_TOOLS.contains(&tool),
    }
}

/// Who a task belongs to: the server key, the OAuth subject, or a fingerprint of the
/// caller's own Fly token; `None` for an unauthenticated (loopback) or stdio caller.
fn owner_of(caller: &Caller) -> Option<String> {
    if let Some(key) = &caller.key_id {
        return Some(format!("key:{key}"));
    }
    if let Some(subject) = &caller.subject {
        return Some(format!("sub:{subject}"));
    }
    caller
        .fly_token
        .as_ref()
        .map(|t| format!("token:{}", t.fingerprint()))
}

/// The tasks of this process.
pub struct Tasks {
    manager: TaskManager,
    /// This replica's Fly Machine id, which prefixes every task id; `None` outside Fly.
    instance: Option<String>,
    /// Internal task id → (owner, created): checked on every `tasks/*` request.
    owners: Mutex<HashMap<String, (Option<String>, Instant)>>,
    /// Owner → tasks still running (a slot is given back when the task's future ends).
    running: Arc<Mutex<HashMap<Option<String>, usize>>>,
    ttl: Duration,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("instance", &self.instance)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new(None)
    }
}

impl Tasks {
    /// The task store of a process running on Fly Machine `instance` (if any).
    pub fn new(instance: Option<String>) -> Tasks {
        Tasks {
            manager: TaskManager::new(),
            instance: instance.filter(|i| is_instance_id(i)),
            owners: Mutex::new(HashMap::new()),
            running: Arc::default(),
            ttl: TASK_TTL,
        }
    }

    /// Keeps tasks for `ttl` instead of [`TASK_TTL`] (tests).
    pub fn with_ttl(mut self, ttl: Duration) -> Tasks {
        self.ttl = ttl;
        self
    }

    /// The TTL every task states.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// This replica's Fly Machine id, if it runs on one.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn external(&self, internal: &str) -> String {
        match &self.instance {
            Some(instance) => format!("{instance}.{internal}"),
            None => internal.to_owned(),
        }
    }

    /// The internal id of a task id a caller sent, if it is one of ours and theirs.
    fn internal<'a>(&self, external: &'a str, caller: &Caller) -> Result<&'a str, McpError> {
        let unknown = || McpError::invalid_params(format!("unknown task: {external}"), None);
        let internal = match (&self.instance, external.split_once('.')) {
            (Some(ours), Some((instance, rest))) if instance == ours => rest,
            (None, None) => external,
            _ => return Err(unknown()),
        };
        match self.owners().get(internal) {
            Some((owner, _)) if *owner == owner_of(caller) => Ok(internal),
            _ => Err(unknown()),
        }
    }

    /// Starts `work` as a task of `caller`'s and returns it (with its public id) for
    /// the `CreateTaskResult`. `work` gets the task's context (status line, input
    /// requests, cancellation); it runs on after the request that created it ends.
    ///
    /// Refused (with what to tell the caller) when [`MAX_RUNNING_PER_CALLER`] of the
    /// caller's tasks are still running.
    pub fn spawn<F>(&self, caller: &Caller, status: &str, work: F) -> Result<Task, String>
    where
        F: FnOnce(TaskContext) -> TaskFuture,
    {
        let owner = owner_of(caller);
        let slot = RunningSlot::take(&self.running, owner.clone())?;
        let options = TaskOptions::new()
            .with_ttl_ms(millis(self.ttl))
            .with_poll_interval_ms(millis(POLL_INTERVAL))
            .with_status_message(status);
        let mut task = self.manager.spawn(options, move |ctx| {
            let work = work(ctx);
            boxed(async move {
                let _slot = slot;
                work.await
            })
        });
        {
            let mut owners = self.owners();
            // Forget tasks the manager has evicted (it keeps a finished task one TTL
            // past its end; an entry older than three TTLs is gone there).
            let horizon = self.ttl.saturating_mul(3);
            owners.retain(|_, (_, created)| created.elapsed() < horizon);
            owners.insert(task.task_id.clone(), (owner, Instant::now()));
        }
        task.task_id = self.external(&task.task_id);
        Ok(task)
    }

    /// `tasks/get`.
    pub fn get(&self, task_id: &str, caller: &Caller) -> Result<GetTaskResult, McpError> {
        let internal = self.internal(task_id, caller)?;
        let mut detailed = self.manager.get_task(internal)?;
        detailed.task.task_id = task_id.to_owned();
        Ok(GetTaskResult::new(detailed))
    }

    /// `tasks/update`: answers to the task's input requests.
    pub fn update(
        &self,
        task_id: &str,
        caller: &Caller,
        responses: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<(), McpError> {
        let internal = self.internal(task_id, caller)?;
        self.manager.update_task(internal, responses)
    }

    /// `tasks/cancel`: the running workflow sees its cancellation token fire.
    pub fn cancel(&self, task_id: &str, caller: &Caller) -> Result<(), McpError> {
        let internal = self.internal(task_id, caller)?;
        self.manager.cancel_task(internal)
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.manager.running_task_count()
    }
}

/// One of an owner's [`MAX_RUNNING_PER_CALLER`] running tasks, given back on drop
/// (the task's future ended, or was aborted).
struct RunningSlot {
    counts: Arc<Mutex<HashMap<Option<String>, usize>>>,
    owner: Option<String>,
}

impl RunningSlot {
    fn take(
        counts: &Arc<Mutex<HashMap<Option<String>, usize>>>,
        owner: Option<String>,
    ) -> Result<RunningSlot, String> {
        let mut map = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let running = map.entry(owner.clone()).or_default();
        if *running >= MAX_RUNNING_PER_CALLER {
            return Err(format!(
                "{running} of your tasks are still running (at most {MAX_RUNNING_PER_CALLER}): \
                 wait for one to finish (tasks/get) or cancel one, then call again"
            ));
        }
        *running += 1;
        Ok(RunningSlot {
            counts: counts.clone(),
            owner,
        })
    }
}

impl Drop for RunningSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.owner);
            }
        }
    }
}

/// A Fly Machine id as Fly writes them (lower-case letters and digits).
fn is_instance_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// For a `tasks/*` JSON-RPC request (`body`) naming a task of another replica than
/// `ours`: that replica's Machine id, for a `fly-replay: instance=<id>` answer, and the
/// request's id. `None` for anything else (the handler answers it, unknown tasks
/// included).
pub fn replay_target(body: &[u8], ours: &str) -> Option<(String, Value)> {
    let message: Value = serde_json::from_slice(body).ok()?;
    let method = message.get("method")?.as_str()?;
    if !matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel") {
        return None;
    }
    let task_id = message.get("params")?.get("taskId")?.as_str()?;
    let (instance, _) = task_id.split_once('.')?;
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    (is_instance_id(instance) && instance != ours).then(|| (instance.to_owned(), id))
}

/// The channel a task asks its confirmation through (its `input_required` state).
#[derive(Clone)]
pub struct TaskInput(pub TaskContext);

impl std::fmt::Debug for TaskInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TaskInput").field(&self.0.task_id()).finish()
    }
}

/// What the gate's outcome becomes when a task ends: a protocol failure stays one
/// (`failed`); once the task was cancelled it reads `cancelled` whatever the workflow
/// managed before it stopped (its report is the task's last status line); otherwise
/// the result (`completed`, with `isError` for a tool error).
pub fn exit_of(
    result: Result<CallToolResult, McpError>,
    cancelled: bool,
) -> Result<CallToolResult, TaskExit> {
    match result {
        Err(e) => Err(TaskExit::Error(e)),
        Ok(_) if cancelled => Err(TaskExit::Cancelled),
        Ok(r) => Ok(r),
    }
}

/// Cancels `token` when the task is cancelled, or [`TTL_MARGIN`] before its TTL;
/// the returned guard stops watching when dropped.
pub fn watch_cancellation(
    ctx: &TaskContext,
    token: tokio_util::sync::CancellationToken,
    ttl: Duration,
) -> tokio_util::sync::DropGuard {
    let ctx = ctx.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = stop.clone();
    let deadline = ttl.saturating_sub(TTL_MARGIN).max(ttl / 2);
    tokio::spawn(async move {
        tokio::select! {
            () = ctx.cancelled() => token.cancel(),
            () = tokio::time::sleep(deadline) => {
                ctx.set_status_message("the task reached its time limit; stopping it");
                token.cancel();
            }
            () = watcher.cancelled() => {}
        }
    });
    stop.drop_guard()
}

/// Makes the task future rmcp runs out of an async block.
pub fn boxed<F>(work: F) -> TaskFuture
where
    F: std::future::Future<Output = Result<CallToolResult, TaskExit>> + Send + 'static,
{
    Box::pin(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tools_run_as_tasks_and_short_ones_do_not() {
        assert!(runs_as_task("provision_environment", None));
        assert!(runs_as_task("pool_fill", None));
        assert!(!runs_as_task("app_status", None));
        assert!(!runs_as_task("list_apps", None));
        let no_wait = serde_json::json!({ "wait": false });
        assert!(!runs_as_task("machine_action", no_wait.as_object()));
        assert!(runs_as_task("machine_action", None));
        let fork = serde_json::json!({ "action": "fork" });
        let extend = serde_json::json!({ "action": "extend" });
        assert!(runs_as_task("volume_action", fork.as_object()));
        assert!(!runs_as_task("volume_action", extend.as_object()));
        for tool in TASK_TOOLS {
            let any = serde_json::json!({ "action": "fork" });
            assert!(runs_as_task(tool, any.as_object()), "{tool}");
        }
    }

    #[test]
    fn a_poll_for_another_replicas_task_is_replayed_there() {
        let body = |method: &str, id: &str| {
            serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": { "taskId": id } })
                .to_string()
        };
        let other = body("tasks/get", "e286065f969386.5b0c1e9e");
        assert_eq!(
            replay_target(other.as_bytes(), "d8d9e1c1f73e48"),
            Some(("e286065f969386".to_owned(), serde_json::json!(1)))
        );
        let ours = body("tasks/cancel", "d8d9e1c1f73e48.5b0c1e9e");
        assert_eq!(replay_target(ours.as_bytes(), "d8d9e1c1f73e48"), None);
        let call = body("tools/call", "e286065f969386.5b0c1e9e");
        assert_eq!(replay_target(call.as_bytes(), "d8d9e1c1f73e48"), None);
        let bare = body("tasks/get", "5b0c1e9e");
        assert_eq!(replay_target(bare.as_bytes(), "d8d9e1c1f73e48"), None);
        let header_injection = body("tasks/get", "x;elsewhere=true.1");
        assert_eq!(
            replay_target(header_injection.as_bytes(), "d8d9e1c1f73e48"),
            None
        );
        assert_eq!(replay_target(b"not json", "d8d9e1c1f73e48"), None);
    }

    #[tokio::test]
    async fn a_task_is_answered_only_to_its_caller_and_under_its_public_id() {
        let tasks = Tasks::new(Some("d8d9e1c1f73e48".into()));
        let alice = Caller {
            key_id: Some("alice".into()),
            ..Caller::default()
        };
        let bob = Caller {
            key_id: Some("bob".into()),
            ..Caller::default()
        };
        let task = tasks
            .spawn(&alice, "starting", |_ctx| {
                boxed(async { Ok(CallToolResult::success(vec![])) })
            })
            .unwrap();
        assert!(task.task_id.starts_with("d8d9e1c1f73e48."));
        assert_eq!(task.ttl_ms, Some(3_600_000));
        let got = tasks.get(&task.task_id, &alice).unwrap();
        assert_eq!(got.task.task.task_id, task.task_id);
        let err = tasks.get(&task.task_id, &bob).unwrap_err();
        assert!(err.message.contains("unknown task"));
        assert!(tasks.cancel(&task.task_id, &bob).is_err());
        let internal = task.task_id.split_once('.').unwrap().1;
        assert!(tasks.get(internal, &alice).is_err());
    }

    #[tokio::test]
    async fn a_caller_may_have_so_many_tasks_running_and_others_are_not_counted() {
        let tasks = Tasks::new(None);
        let alice = Caller {
            key_id: Some("alice".into()),
            ..Caller::default()
        };
        let never = || {
            |ctx: TaskContext| {
                boxed(async move {
                    ctx.cancelled().await;
                    Err(TaskExit::Cancelled)
                })
            }
        };
        let mut ids = Vec::new();
        for _ in 0..MAX_RUNNING_PER_CALLER {
            ids.push(tasks.spawn(&alice, "waiting", never()).unwrap().task_id);
        }
        let refused = tasks.spawn(&alice, "waiting", never()).unwrap_err();
        assert!(refused.contains("still running"), "{refused}");
        // Someone else is not held back by alice's tasks.
        assert!(tasks.spawn(&Caller::default(), "waiting", never()).is_ok());
        // One of hers ends: she may start another.
        tasks.cancel(&ids[0], &alice).unwrap();
        for _ in 0..100 {
            if tasks
                .get(&ids[0], &alice)
                .unwrap()
                .task
                .status()
                .is_terminal()
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(tasks.spawn(&alice, "waiting", never()).is_ok());
    }

    #[test]
    fn a_protocol_error_fails_the_task_and_a_cancelled_one_carries_no_result() {
        let tool_error = CallToolResult::error(vec![]);
        assert!(
            matches!(exit_of(Ok(tool_error.clone()), false), Ok(r) if r.is_error == Some(true))
        );
        assert!(matches!(
            exit_of(Ok(tool_error), true),
            Err(TaskExit::Cancelled)
        ));
        let protocol = McpError::internal_error("boom", None);
        assert!(matches!(
            exit_of(Err(protocol.clone()), false),
            Err(TaskExit::Error(_))
        ));
        assert!(matches!(
            exit_of(Err(protocol), true),
            Err(TaskExit::Error(_))
        ));
    }
}
