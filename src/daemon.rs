//! The executor in the daemon (`serve`): one background task owns the executor (and with it the
//! browser and the account lock). It runs when changes arrive (the webhook calls
//! [`ExecutorHandle::notify`]), when a retry becomes due, and when a pause ends; it closes the idle
//! browser; it stops when the cancellation token fires, closing the browser on the way out.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditLoop, StepOutcome};
use crate::sportlink::driver::SportlinkDriver;
use crate::sportlink::executor::{Executor, ExecutorStatus, MemberResult, RunReport, StatusBoard};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Shortest pause between two runs started by the timer, so a row that is due "now" but cannot
/// be processed never makes the loop spin.
const MIN_RERUN: Duration = Duration::from_secs(1);
/// Pause before the audit's next unit after one that did nothing (paused, failed, cancelled).
const AUDIT_RETRY_PAUSE: Duration = Duration::from_secs(10);
/// Pause after a run failed on the database, before trying again.
const STORE_ERROR_PAUSE: Duration = Duration::from_secs(10);

/// Handle to the background executor.
pub struct ExecutorHandle {
    notify: Arc<Notify>,
    board: StatusBoard,
    task: JoinHandle<()>,
}

impl ExecutorHandle {
    /// Start the background task. It runs once right away (work left from before a restart),
    /// counts every run's members into `metrics`, and reads audit members between its runs on
    /// the divergence audit's schedule (`AuditLoop::default()`: only audits started by hand).
    pub fn spawn<D>(
        executor: Executor<D>,
        cancel: CancellationToken,
        metrics: Arc<Metrics>,
        audit: AuditLoop,
    ) -> Self
    where
        D: SportlinkDriver + 'static,
    {
        let notify = Arc::new(Notify::new());
        let board = executor.status_board();
        let task = tokio::spawn(serve_loop(executor, notify.clone(), cancel, metrics, audit));
        notify.notify_one();
        Self {
            notify,
            board,
            task,
        }
    }

    /// New changes were committed: wake the executor (cheap; a wake-up while it works is kept).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// The waker to hand to the webhook handler.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    pub fn status(&self) -> ExecutorStatus {
        self.board.status()
    }

    pub fn status_board(&self) -> StatusBoard {
        self.board.clone()
    }

    /// Operator action: end a circuit-breaker pause and run now.
    pub fn resume(&self) {
        self.board.resume();
        self.notify.notify_one();
    }

    /// Wait for the task to end (after the cancellation token fired). The browser is closed by
    /// then.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the executor task failed");
        }
    }
}

async fn serve_loop<D: SportlinkDriver>(
    mut executor: Executor<D>,
    notify: Arc<Notify>,
    cancel: CancellationToken,
    metrics: Arc<Metrics>,
    mut audit: AuditLoop,
) {
    let board = executor.status_board();
    // When the audit may take its next unit (later after a unit that did nothing).
    let mut audit_not_before = Instant::now();
    let idle_close = executor.settings().idle_close;
    let dry_run = executor.settings().dry_run;
    if dry_run {
        tracing::warn!("sportlink.dry_run is on: changes are reported, never saved in Sportlink");
    }
    let mut earliest_next_run = Instant::now();
    let canary = executor.settings().canary.clone();
    // The canary looks at Sportlink before the first run, then on its schedule.
    let mut next_canary = canary.as_ref().map(|_| Instant::now());
    loop {
        // Wait for a reason to run.
        // A dry run leaves every change pending: only new changes (and the end of a pause) are a
        // reason to look again, not the pending rows themselves.
        let wake_at = if dry_run {
            board.pause_deadline()
        } else {
            next_wake(executor.store(), &board).await
        };
        let timer = wake_at.map(|t| t.max(earliest_next_run));
        let timer = match (timer, next_canary) {
            (Some(t), Some(c)) => Some(t.min(c)),
            (t, c) => t.or(c),
        };
        // The audit's next unit (an unfinished run), or its next scheduled run.
        let audit_at = if audit.has_work(executor.store()).await && board.paused().is_none() {
            Some(audit_not_before)
        } else {
            audit.next_scheduled(executor.store()).await
        };
        let timer = match (timer, audit_at) {
            (Some(t), Some(a)) => Some(t.min(a)),
            (t, a) => t.or(a),
        };
        let mut notified = false;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = notify.notified() => notified = true,
            _ = sleep_until_opt(timer) => {}
            _ = tokio::time::sleep(idle_close) => {
                executor.close_if_idle().await;
                continue;
            }
        }
        if cancel.is_cancelled() {
            break;
        }
        // The canary goes before any run it is due for (at start-up: the spawn's wake-up), so a
        // page that no longer matches the catalogue pauses the executor before a change fails.
        if let (Some((member, every)), Some(due)) = (&canary, next_canary) {
            if Instant::now() >= due {
                executor.run_canary(member, *every).await;
                next_canary = Some(Instant::now() + *every);
            }
        }
        if board.paused().is_some() {
            continue;
        }
        // Changes go first; the audit takes one unit when nothing is due for the executor.
        let executor_due =
            notified || wake_at.is_some_and(|t| Instant::now() >= t.max(earliest_next_run));
        if !executor_due {
            audit.start_if_due(executor.store()).await;
            if audit.has_work(executor.store()).await {
                let outcome = audit.step(&mut executor, &cancel).await;
                audit_not_before = match outcome {
                    StepOutcome::Listed { .. } | StepOutcome::Member { .. } => Instant::now(),
                    _ => Instant::now() + AUDIT_RETRY_PAUSE,
                };
                continue;
            }
        }
        earliest_next_run = Instant::now() + MIN_RERUN;
        match executor.run(None, dry_run, &cancel).await {
            Ok(report) => {
                record_executor_run(&metrics, &report);
                if !report.members.is_empty() || report.stopped.is_some() {
                    tracing::info!(
                        members = report.members.len(),
                        stopped = ?report.stopped,
                        "executor run finished"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "executor run failed");
                earliest_next_run = Instant::now() + STORE_ERROR_PAUSE;
            }
        }
    }
    executor.close().await;
    tracing::info!("executor stopped");
}

/// When the timer should wake the loop: the next due retry, or the end of a pause.
async fn next_wake(store: &Store, board: &StatusBoard) -> Option<Instant> {
    if let Some(deadline) = board.pause_deadline() {
        return Some(deadline);
    }
    let next_due = match store.read(|c| c.next_due_at()).await {
        Ok(next) => next?,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read when the next change is due");
            return Some(Instant::now() + STORE_ERROR_PAUSE);
        }
    };
    let wait = (next_due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Some(Instant::now() + wait)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Counts one executor run into the metrics: per member its outcome and time, per page its
/// time.
fn record_executor_run(metrics: &Metrics, report: &RunReport) {
    for member in &report.members {
        let outcome = match &member.result {
            MemberResult::NothingPending => continue,
            MemberResult::Done { .. } => "done",
            MemberResult::DryRun => "dry_run",
            MemberResult::Skipped { .. } => "skipped",
            MemberResult::Failed { ui_drift: true, .. } => "failed_ui_drift",
            MemberResult::Failed { .. } => "failed",
        };
        let total: Duration = member.page_times.iter().sum();
        metrics.record_executor_action("member", outcome, total);
        for page in &member.page_times {
            metrics.record_executor_action("page", outcome, *page);
        }
    }
}
