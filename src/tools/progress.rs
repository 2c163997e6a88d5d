//! Where a call's progress goes: the one [`Reporter`] every tool reports through.
//!
//! A reporter turns what the call says (workflow steps, "still waiting" ticks from the
//! Fly client's wait loops) into what the caller sees: MCP progress notifications for
//! a synchronous call that sent a progress token, or the `statusMessage` of a task.
//! Progress values only ever grow (the MCP spec requires each notification's value to
//! be larger than the last): a step that does not advance, and a tick, move the value
//! a fraction towards the next whole step. When nothing was reported for
//! [`HEARTBEAT`], the reporter repeats the last message itself, so a call never sits
//! silent long enough for a client that resets its timeout on progress to give up.
//!
//! Every message passes the redactor. Knows rmcp (the peer it notifies), nothing of
//! workflows.

use std::{fmt, sync::Arc, time::Duration};

use rmcp::{
    RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
    service::Peer,
};
use tokio::{sync::mpsc, time::Instant};

use super::redact::Redactor;

/// Longest silence before the reporter repeats itself.
pub const HEARTBEAT: Duration = Duration::from_secs(8);

/// Where a call's progress goes. Cheap to clone; a silent one drops everything.
#[derive(Clone, Default)]
pub struct Reporter {
    tx: Option<mpsc::UnboundedSender<Note>>,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("silent", &self.tx.is_none())
            .finish()
    }
}

/// A task's status line: called with each new status message.
pub type StatusSink = Arc<dyn Fn(String) + Send + Sync>;

enum Note {
    Step {
        done: u32,
        total: Option<u32>,
        message: String,
    },
    Tick(String),
    Close,
}

enum Sink {
    Notify {
        peer: Peer<RoleServer>,
        token: ProgressToken,
    },
    Status(StatusSink),
}

impl Reporter {
    /// Drops every report (the `call` command, callers without a progress token).
    pub fn silent() -> Reporter {
        Reporter { tx: None }
    }

    /// MCP progress notifications to `peer` under `token`.
    pub fn notifications(
        peer: Peer<RoleServer>,
        token: ProgressToken,
        redactor: Redactor,
    ) -> Reporter {
        Reporter::spawn(Sink::Notify { peer, token }, redactor)
    }

    /// Status lines (a task's `statusMessage`).
    pub fn status(sink: StatusSink, redactor: Redactor) -> Reporter {
        Reporter::spawn(Sink::Status(sink), redactor)
    }

    fn spawn(sink: Sink, redactor: Redactor) -> Reporter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward(rx, sink, redactor));
        Reporter { tx: Some(tx) }
    }

    /// Whether reports go anywhere.
    pub fn is_silent(&self) -> bool {
        self.tx.is_none()
    }

    /// `done` of `total` steps, and what is happening now.
    pub fn step(&self, done: u32, total: Option<u32>, message: impl Into<String>) {
        self.send(Note::Step {
            done,
            total,
            message: message.into(),
        });
    }

    /// Still alive, no step further: `message` says what the call waits for.
    pub fn tick(&self, message: impl Into<String>) {
        self.send(Note::Tick(message.into()));
    }

    /// The call is over: nothing more is sent, whoever still holds a clone.
    pub fn close(&self) {
        self.send(Note::Close);
    }

    /// Resolves once everything sent before [`Reporter::close`] has been delivered
    /// (a task's last status line is then the one it keeps).
    pub async fn closed(&self) {
        if let Some(tx) = &self.tx {
            tx.closed().await;
        }
    }

    fn send(&self, note: Note) {
        if let Some(tx) = &self.tx {
            let _forwarder_gone = tx.send(note);
        }
    }
}

async fn forward(mut rx: mpsc::UnboundedReceiver<Note>, sink: Sink, redactor: Redactor) {
    let mut value = Monotone::default();
    let mut last = String::new();
    let mut since = Instant::now();
    loop {
        let note = tokio::select! {
            note = rx.recv() => note,
            () = tokio::time::sleep(HEARTBEAT) => {
                let waited = since.elapsed().as_secs();
                Some(Note::Tick(if last.is_empty() {
                    format!("working ({waited} s)")
                } else {
                    format!("{last} (still working, {waited} s)")
                }))
            }
        };
        let (done, total, message) = match note {
            None | Some(Note::Close) => break,
            Some(Note::Step {
                done,
                total,
                message,
            }) => {
                since = Instant::now();
                last.clone_from(&message);
                let (v, t) = value.step(done, total);
                (v, t, message)
            }
            Some(Note::Tick(message)) => {
                let (v, t) = value.tick();
                (v, t, message)
            }
        };
        let message = redactor.redact(&message).into_owned();
        match &sink {
            Sink::Notify { peer, token } => {
                let mut param =
                    ProgressNotificationParam::new(token.clone(), done).with_message(message);
                if let Some(total) = total {
                    param = param.with_total(total);
                }
                if let Err(e) = peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "progress notification not delivered");
                }
            }
            Sink::Status(set) => set(status_line(&message, value.whole, value.total)),
        }
    }
}

fn status_line(message: &str, done: u32, total: Option<u32>) -> String {
    match total {
        Some(total) if total > 0 => format!("{message} [{done}/{total}]"),
        Some(_) | None => message.to_owned(),
    }
}

/// Progress values that only grow: whole steps as the workflow reports them, and
/// between two steps `k/(k+1)` for the k-th report that did not advance (½, ⅔, ¾, …),
/// which never reaches the next step.
#[derive(Debug, Default)]
struct Monotone {
    whole: u32,
    ticks: u32,
    sent: bool,
    total: Option<u32>,
}

impl Monotone {
    fn step(&mut self, done: u32, total: Option<u32>) -> (f64, Option<f64>) {
        if total.is_some() {
            self.total = total;
        }
        if !self.sent || done > self.whole {
            self.whole = done;
            self.ticks = 0;
            self.sent = true;
        } else {
            self.ticks = self.ticks.saturating_add(1);
        }
        self.current()
    }

    fn tick(&mut self) -> (f64, Option<f64>) {
        if self.sent {
            self.ticks = self.ticks.saturating_add(1);
        }
        self.sent = true;
        self.current()
    }

    fn current(&self) -> (f64, Option<f64>) {
        let k = f64::from(self.ticks);
        let value = f64::from(self.whole) + k / (k + 1.0);
        let total = self.total.map(|t| f64::from(t).max(value.ceil()));
        (value, total)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn values_only_grow_whatever_the_workflow_reports() {
        let mut m = Monotone::default();
        let mut seen = vec![m.step(0, Some(3)).0];
        seen.push(m.step(0, Some(3)).0);
        seen.push(m.tick().0);
        seen.push(m.step(1, Some(3)).0);
        // A second workflow in the same call counts from zero again.
        seen.push(m.step(0, Some(2)).0);
        for _ in 0..1000 {
            seen.push(m.tick().0);
        }
        seen.push(m.step(3, Some(3)).0);
        for pair in seen.windows(2) {
            assert!(pair[1] > pair[0], "{pair:?}");
        }
        assert_eq!(seen[0], 0.0);
        assert_eq!(seen[3], 1.0);
        assert!(
            seen[seen.len() - 2] < 2.0,
            "ticks never reach the next step"
        );
        let (_, total) = m.step(3, Some(3));
        assert!(total.unwrap() >= 3.0);
    }

    #[test]
    fn the_total_is_never_below_the_value() {
        let mut m = Monotone::default();
        m.step(5, Some(5));
        let (v, t) = m.tick();
        assert!(t.unwrap() >= v, "{v} of {t:?}");
    }

    #[tokio::test]
    async fn status_lines_are_redacted_and_stop_at_close() {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = lines.clone();
        let redactor = Redactor::new();
        redactor.register(&secrecy::SecretString::from("hunter2-canary".to_owned()));
        let reporter = Reporter::status(
            Arc::new(move |line| seen.lock().unwrap().push(line)),
            redactor,
        );
        reporter.step(1, Some(4), "creating app with hunter2-canary");
        reporter.tick("waiting for machine m1");
        reporter.close();
        reporter.step(2, Some(4), "after the end");
        tokio::task::yield_now().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while lines.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines[0].contains("hunter2-canary"), "{lines:?}");
        assert!(lines[0].ends_with("[1/4]"), "{lines:?}");
        assert_eq!(lines[1], "waiting for machine m1 [1/4]");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_call_gets_a_heartbeat() {
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = lines.clone();
        let reporter = Reporter::status(
            Arc::new(move |line| seen.lock().unwrap().push(line)),
            Redactor::new(),
        );
        reporter.step(0, None, "waiting for the image");
        tokio::time::sleep(HEARTBEAT * 3 + Duration::from_millis(10)).await;
        reporter.close();
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[1].starts_with("waiting for the image (still working"),
            "{lines:?}"
        );
    }
}
