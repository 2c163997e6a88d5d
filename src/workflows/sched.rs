//! The bulk scheduler every multi-resource workflow uses, and the two things a long
//! workflow is steered by: [`Progress`] (where progress notifications go) and
//! [`Control`] (progress plus a cancellation token).
//!
//! [`run_bulk`] runs one async action per item with bounded concurrency, a minimum gap
//! between two starts (pacing across items; the Fly client still paces and retries
//! each request on its own), an item-level backoff when an item still fails with a
//! rate limit (429) after the client's retries (which also holds back every other
//! start), optional stop-on-first-failure, and cancellation (items not yet started are
//! reported as cancelled). It reports per item, in input order.
//!
//! `Poll` paces a single retry or poll loop (a doubling pause, capped).
//!
//! Knows nothing of MCP: progress goes into a channel the tool layer drains.

use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    time::{Duration, Instant},
};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{StreamExt, stream::FuturesUnordered};
use tokio::sync::mpsc;
pub use tokio_util::sync::CancellationToken;

use super::Error;

/// One progress notification: `done` of `total` steps, and what is happening.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    pub done: u32,
    pub total: Option<u32>,
    pub message: String,
}

/// Where a workflow reports progress. Cheap to clone; a silent one drops reports.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<ProgressUpdate>>,
}

impl Progress {
    /// A sink that drops every report.
    pub fn silent() -> Progress {
        Progress { tx: None }
    }

    /// A sink and the receiver the caller drains (the tool layer forwards each
    /// update as an MCP progress notification). The receiver ends when every
    /// clone of the sink is dropped.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<ProgressUpdate>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress { tx: Some(tx) }, rx)
    }

    /// Reports progress (never blocks, never fails).
    pub fn report(&self, done: u32, total: Option<u32>, message: impl Into<String>) {
        if let Some(tx) = &self.tx {
            let _receiver_gone = tx.send(ProgressUpdate {
                done,
                total,
                message: message.into(),
            });
        }
    }
}

/// What steers a long workflow: where progress goes and whether the caller cancelled.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub progress: Progress,
    pub cancel: CancellationToken,
}

impl Control {
    /// Silent and never cancelled (tests, one-shot calls).
    pub fn detached() -> Control {
        Control::default()
    }

    /// A control with both parts.
    pub fn new(progress: Progress, cancel: CancellationToken) -> Control {
        Control { progress, cancel }
    }

    /// Whether the caller cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Fails with [`Error::Cancelled`] naming `step` if the caller already cancelled.
    pub fn check(&self, step: &str) -> Result<(), Error> {
        if self.is_cancelled() {
            return Err(Error::Cancelled {
                step: step.to_owned(),
            });
        }
        Ok(())
    }

    /// Runs `fut` unless the caller cancels first; then it is dropped and the result
    /// is [`Error::Cancelled`] naming `step`.
    pub async fn guard<T>(
        &self,
        step: &str,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Error::Cancelled { step: step.to_owned() }),
            r = fut => r,
        }
    }
}

/// How [`run_bulk`] schedules items.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOptions {
    /// At most this many items in flight (0 is taken as 1).
    pub concurrency: usize,
    /// Smallest gap between two item starts (0: no pacing across items).
    pub min_interval: Duration,
    /// After the first failed item, start no more (the rest are reported skipped).
    pub stop_on_failure: bool,
    /// Extra attempts for an item whose action still failed with a 429.
    pub rate_limit_retries: usize,
    /// First item-level backoff after a 429 (doubles, jittered, up to `max_backoff`).
    pub rate_limit_backoff: Duration,
    /// Longest item-level backoff.
    pub max_backoff: Duration,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 4,
            min_interval: Duration::ZERO,
            stop_on_failure: false,
            rate_limit_retries: 3,
            rate_limit_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl BulkOptions {
    /// `concurrency` items at a time, other settings default.
    pub fn with_concurrency(concurrency: usize) -> BulkOptions {
        BulkOptions {
            concurrency,
            ..BulkOptions::default()
        }
    }

    /// One item at a time, stopping at the first failure (rolling changes).
    pub fn rolling() -> BulkOptions {
        BulkOptions {
            concurrency: 1,
            stop_on_failure: true,
            ..BulkOptions::default()
        }
    }

    /// Builder: the smallest gap between two starts.
    pub fn paced(mut self, min_interval: Duration) -> BulkOptions {
        self.min_interval = min_interval;
        self
    }

    /// Builder: millisecond 429 backoffs (tests against a local simulator).
    pub fn fast_backoff(mut self) -> BulkOptions {
        self.rate_limit_backoff = Duration::from_millis(5);
        self.max_backoff = Duration::from_millis(50);
        self
    }
}

/// How one item ended.
#[derive(Debug)]
pub enum ItemOutcome<T> {
    /// The action succeeded.
    Done(T),
    /// The action failed (after its retries).
    Failed(Error),
    /// Not started because an earlier item failed (`stop_on_failure`).
    Skipped,
    /// Not started because the caller cancelled.
    Cancelled,
}

impl<T> ItemOutcome<T> {
    /// `done`, `failed`, `skipped` or `cancelled`.
    pub fn label(&self) -> &'static str {
        match self {
            ItemOutcome::Done(_) => "done",
            ItemOutcome::Failed(_) => "failed",
            ItemOutcome::Skipped => "skipped",
            ItemOutcome::Cancelled => "cancelled",
        }
    }
}

/// One item's report.
#[derive(Debug)]
pub struct ItemReport<K, T> {
    pub key: K,
    pub outcome: ItemOutcome<T>,
    /// Times the action was started (0 when never started).
    pub attempts: usize,
    /// From the first start to the end (zero when never started).
    pub elapsed: Duration,
}

/// Every item's report, in input order.
#[derive(Debug)]
pub struct BulkReport<K, T> {
    pub items: Vec<ItemReport<K, T>>,
}

impl<K, T> BulkReport<K, T> {
    /// Items whose action succeeded.
    pub fn done(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Done(_)))
    }

    /// Items whose action failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Failed(_)))
    }

    /// Items never started (skipped or cancelled).
    pub fn not_started(&self) -> usize {
        self.count(|o| matches!(o, ItemOutcome::Skipped | ItemOutcome::Cancelled))
    }

    /// True when every item succeeded.
    pub fn all_done(&self) -> bool {
        self.done() == self.items.len()
    }

    fn count(&self, f: impl Fn(&ItemOutcome<T>) -> bool) -> usize {
        self.items.iter().filter(|i| f(&i.outcome)).count()
    }
}

/// The pace of one retry or poll loop: how long it has run, and a pause that doubles
/// after each wait, up to two seconds.
pub(crate) struct Poll {
    started: Instant,
    next: Duration,
}

impl Poll {
    /// A loop starting now, whose first pause is `first`.
    pub(crate) fn starting_at(first: Duration) -> Poll {
        Poll {
            started: Instant::now(),
            next: first,
        }
    }

    /// How long the loop has run.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sleeps for the current pause, then doubles it.
    pub(crate) async fn sleep(&mut self) {
        self.sleep_at_most(self.next).await;
    }

    /// Sleeps for the current pause but no longer than `limit`, then doubles it.
    pub(crate) async fn sleep_at_most(&mut self, limit: Duration) {
        tokio::time::sleep(self.next.min(limit)).await;
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }
}

struct Queued<K> {
    index: usize,
    key: K,
    attempts: usize,
    first_start: Option<Instant>,
    backoff: Option<backon::ExponentialBackoff>,
}

/// Runs `action` once per item under `opts`, reporting progress to `ctl` after each
/// item ends. The action gets the item's key (cloned per attempt). Returns a report
/// per item in input order. Never fails as a whole: failures are per item.
pub async fn run_bulk<K, T, F, Fut>(
    items: Vec<K>,
    opts: &BulkOptions,
    ctl: &Control,
    action: F,
) -> BulkReport<K, T>
where
    K: Clone + fmt::Display,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let total = items.len();
    let total_u32 = u32::try_from(total).unwrap_or(u32::MAX);
    let concurrency = opts.concurrency.max(1);
    let mut slots: Vec<Option<ItemReport<K, T>>> = Vec::with_capacity(total);
    slots.resize_with(total, || None);
    let mut queue: VecDeque<Queued<K>> = items
        .into_iter()
        .enumerate()
        .map(|(index, key)| Queued {
            index,
            key,
            attempts: 0,
            first_start: None,
            backoff: None,
        })
        .collect();

    let launch = |mut q: Queued<K>| {
        q.attempts += 1;
        q.first_start.get_or_insert_with(Instant::now);
        let fut = action(q.key.clone());
        async move {
            let result = fut.await;
            (q, result)
        }
    };

    let mut running = FuturesUnordered::new();
    let mut next_start = Instant::now();
    let mut stopped = false;
    let mut finished: u32 = 0;

    loop {
        let cancelled = ctl.is_cancelled();
        if cancelled || stopped {
            let outcome_of = || {
                if cancelled {
                    ItemOutcome::Cancelled
                } else {
                    ItemOutcome::Skipped
                }
            };
            while let Some(q) = queue.pop_front() {
                let elapsed = q.first_start.map(|s| s.elapsed()).unwrap_or_default();
                place(
                    &mut slots,
                    q.index,
                    ItemReport {
                        key: q.key,
                        outcome: outcome_of(),
                        attempts: q.attempts,
                        elapsed,
                    },
                );
            }
        }
        let may_start = !queue.is_empty() && running.len() < concurrency;
        if may_start && Instant::now() >= next_start {
            if let Some(q) = queue.pop_front() {
                let now = Instant::now();
                next_start = next_start.max(now) + opts.min_interval;
                running.push(launch(q));
            }
            continue;
        }
        if running.is_empty() && !may_start {
            break;
        }
        tokio::select! {
            Some((mut q, result)) = running.next(), if !running.is_empty() => {
                let rate_limited = matches!(&result, Err(e) if e.is_rate_limited());
                if rate_limited && q.attempts <= opts.rate_limit_retries && !ctl.is_cancelled() {
                    let backoff = q
                        .backoff
                        .get_or_insert_with(|| {
                            ExponentialBuilder::new()
                                .with_jitter()
                                .with_min_delay(opts.rate_limit_backoff)
                                .with_max_delay(opts.max_backoff)
                                .with_max_times(opts.rate_limit_retries)
                                .build()
                        })
                        .next()
                        .unwrap_or(opts.max_backoff);
                    // A 429 says the whole action class is hot: hold every start back.
                    next_start = next_start.max(Instant::now() + backoff);
                    tracing::debug!(item = %q.key, ?backoff, "rate limited; retrying the item later");
                    queue.push_front(q);
                    continue;
                }
                let outcome = match result {
                    Ok(v) => ItemOutcome::Done(v),
                    Err(e) => {
                        if opts.stop_on_failure {
                            stopped = true;
                        }
                        ItemOutcome::Failed(e)
                    }
                };
                finished = finished.saturating_add(1);
                ctl.progress.report(
                    finished,
                    Some(total_u32),
                    format!("{}: {}", q.key, outcome.label()),
                );
                let elapsed = q.first_start.map(|s| s.elapsed()).unwrap_or_default();
                place(
                    &mut slots,
                    q.index,
                    ItemReport { key: q.key, outcome, attempts: q.attempts, elapsed },
                );
            }
            () = tokio::time::sleep_until(next_start.into()), if may_start => {}
            () = ctl.cancel.cancelled(), if !cancelled && !queue.is_empty() => {}
        }
    }

    BulkReport {
        items: slots.into_iter().flatten().collect(),
    }
}

fn place<K, T>(slots: &mut [Option<ItemReport<K, T>>], index: usize, report: ItemReport<K, T>) {
    if let Some(slot) = slots.get_mut(index) {
        *slot = Some(report);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::fly;

    fn api_error(status: u16) -> Error {
        Error::fly("test step")(fly::Error::Api {
            op: "test",
            status,
            code: None,
            message: "boom".into(),
            request_id: None,
            retry_after: None,
        })
    }

    #[tokio::test]
    async fn bounds_concurrency_and_keeps_input_order() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let opts = BulkOptions::with_concurrency(3);
        let report = run_bulk(
            (0..10).collect::<Vec<u32>>(),
            &opts,
            &Control::detached(),
            |k| {
                let in_flight = in_flight.clone();
                let peak = peak.clone();
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Error>(k * 2)
                }
            },
        )
        .await;
        assert!(report.all_done());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        let keys: Vec<u32> = report.items.iter().map(|i| i.key).collect();
        assert_eq!(keys, (0..10).collect::<Vec<_>>());
        for item in &report.items {
            match item.outcome {
                ItemOutcome::Done(v) => assert_eq!(v, item.key * 2),
                _ => panic!("not done"),
            }
        }
    }

    #[tokio::test]
    async fn paces_starts() {
        let opts = BulkOptions::with_concurrency(10).paced(Duration::from_millis(15));
        let t0 = Instant::now();
        let report = run_bulk(
            vec![1, 2, 3, 4, 5],
            &opts,
            &Control::detached(),
            |_| async { Ok::<_, Error>(()) },
        )
        .await;
        assert!(report.all_done());
        assert!(
            t0.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t0.elapsed()
        );
    }

    #[tokio::test]
    async fn retries_rate_limited_items_then_gives_up() {
        let calls = Arc::new(AtomicUsize::new(0));
        let opts = BulkOptions::with_concurrency(2).fast_backoff();
        let report = run_bulk(vec!["a", "b"], &opts, &Control::detached(), |k| {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if k == "b" || n == 0 {
                    Err(api_error(429))
                } else {
                    Ok(k)
                }
            }
        })
        .await;
        // "a" may have been the first call (429) and then succeeded; "b" never does.
        assert!(matches!(report.items[0].outcome, ItemOutcome::Done("a")));
        assert!(matches!(report.items[1].outcome, ItemOutcome::Failed(_)));
        assert_eq!(report.items[1].attempts, opts.rate_limit_retries + 1);
        assert_eq!(report.failed(), 1);
    }

    #[tokio::test]
    async fn stops_after_first_failure_when_rolling() {
        let report = run_bulk(
            vec![1, 2, 3, 4],
            &BulkOptions::rolling(),
            &Control::detached(),
            |k| async move { if k == 2 { Err(api_error(500)) } else { Ok(k) } },
        )
        .await;
        let labels: Vec<&str> = report.items.iter().map(|i| i.outcome.label()).collect();
        assert_eq!(labels, ["done", "failed", "skipped", "skipped"]);
        assert_eq!(report.not_started(), 2);
        assert_eq!(report.items[2].attempts, 0);
    }

    #[tokio::test]
    async fn cancellation_stops_new_starts_and_reports_progress() {
        let (progress, mut rx) = Progress::channel();
        let ctl = Control::new(progress, CancellationToken::new());
        let cancel = ctl.cancel.clone();
        let report = run_bulk(vec![1, 2, 3], &BulkOptions::rolling(), &ctl, |k| {
            let cancel = cancel.clone();
            async move {
                if k == 1 {
                    cancel.cancel();
                }
                Ok::<_, Error>(k)
            }
        })
        .await;
        let labels: Vec<&str> = report.items.iter().map(|i| i.outcome.label()).collect();
        assert_eq!(labels, ["done", "cancelled", "cancelled"]);
        drop(ctl);
        let first = rx.recv().await.unwrap();
        assert_eq!(first.done, 1);
        assert_eq!(first.total, Some(3));
        assert_eq!(first.message, "1: done");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn guard_turns_cancellation_into_an_error() {
        let ctl = Control::detached();
        ctl.cancel.cancel();
        let err = ctl
            .guard(
                "waiting for machine m1",
                std::future::pending::<Result<(), Error>>(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled { ref step } if step == "waiting for machine m1"));
        assert!(ctl.check("next").is_err());
    }

    #[tokio::test]
    async fn empty_input_is_an_empty_report() {
        let report: BulkReport<u32, ()> = run_bulk(
            Vec::new(),
            &BulkOptions::default(),
            &Control::detached(),
            |_| async { Ok(()) },
        )
        .await;
        assert!(report.items.is_empty());
        assert!(report.all_done());
    }
}
