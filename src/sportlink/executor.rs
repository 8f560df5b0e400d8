//! The executor: pushes pending changes into Sportlink, one member at a time.
//!
//! [`Executor::execute_member`] is the unit of work (one member, one attempt); [`Executor::run`]
//! is the loop around it (rate limit, retries with backoff, failures across runs, circuit
//! breaker, cancellation). Nothing is marked synced unless Sportlink's stored value was read back
//! and matched, and all of a member's outcome is committed in one transaction (by row id).

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::DefaultClock;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Jitter, Quota, RateLimiter};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::artefacts::Artefacts;
use super::driver::{DriverError, FormField, FormSpec, MemberStatus, SportlinkDriver};
use super::lock::AccountLock;
use crate::alerts::{AlertEvent, AlertSender};
use crate::catalogue::{Catalogue, FieldKind, FieldSpec, SportlinkPage};
use crate::conflict::{resolve, ConflictInput, Resolution, Winner};
use crate::domain::{ChangeId, ChangeStatus, KnvbId};
use crate::store::{PendingChange, RunKind, RunStatus, Store, StoreError};

/// The text of Sportlink's generic server-error message (docs/sportlink-contract.md).
/// Longest wait before a failed change is tried again in a later run.
const MAX_NEXT_ATTEMPT_DELAY: Duration = Duration::from_secs(6 * 3600);
/// Members fetched from the store per batch.
const BATCH: usize = 50;

/// How the executor paces and retries.
#[derive(Debug, Clone)]
pub struct ExecutorSettings {
    /// Minimum time between the starts of two members.
    pub min_member_interval: Duration,
    /// Random extra pause between members, up to this much.
    pub member_jitter: Duration,
    /// Backoff before each retry of a member within one run (1 s, 3 s, 7 s by default).
    pub retry_backoff: Vec<Duration>,
    /// After this many failed runs a change becomes `failed`.
    pub max_attempts: u32,
    /// First delay before a failed member is due again in a later run; doubles per failed run.
    pub next_attempt_base: Duration,
    /// Consecutive UI-drift failures that pause the executor.
    pub breaker_threshold: u32,
    /// How long a tripped breaker pauses the executor unless resumed.
    pub breaker_cooldown: Duration,
    /// Close the browser after this long without work (daemon only).
    pub idle_close: Duration,
    /// The daemon only reports what it would write (`sportlink.dry_run`): it opens forms, reads
    /// live values and cancels; it never saves.
    pub dry_run: bool,
    /// The canary member and how often the daemon checks its pages (`None`: no canary).
    pub canary: Option<(KnvbId, Duration)>,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        Self {
            min_member_interval: Duration::from_secs(1),
            member_jitter: Duration::from_secs(1),
            retry_backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(7),
            ],
            max_attempts: 5,
            next_attempt_base: Duration::from_secs(300),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(1800),
            idle_close: Duration::from_secs(300),
            dry_run: false,
            canary: None,
        }
    }
}

/// What the conflict guard decided for one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum FieldDecision {
    /// Sportlink already holds the new value (L = N): no write.
    AlreadyInSync,
    /// Sportlink holds the expected old value (L = O): write.
    Write,
    /// Sportlink changed meanwhile and Rondo Club won: write, audited.
    WriteAfterConflict { reason: String },
    /// Sportlink changed meanwhile and won: no write, `conflict_lost`, audited.
    ConflictLost { reason: String },
}

impl FieldDecision {
    fn writes(&self) -> bool {
        matches!(self, Self::Write | Self::WriteAfterConflict { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldReport {
    pub change_id: ChangeId,
    pub field: String,
    /// What the input showed when the form was opened.
    pub live_value: String,
    pub new_value: String,
    pub decision: FieldDecision,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum MemberResult {
    NothingPending,
    /// Every pending change was verified in Sportlink or lost its conflict.
    Done {
        synced: usize,
        conflicts_lost: usize,
    },
    /// Dry run: forms opened and cancelled; nothing changed.
    DryRun,
    Skipped {
        reason: String,
    },
    /// The member's changes stay pending (or became `failed`: `gave_up`).
    Failed {
        error: String,
        ui_drift: bool,
        attempts: u32,
        gave_up: Vec<ChangeId>,
        screenshot: Option<String>,
        html: Option<String>,
    },
}

/// The report of one member in a run.
#[derive(Debug, Clone, Serialize)]
pub struct MemberOutcome {
    pub knvb_id: KnvbId,
    pub result: MemberResult,
    pub fields: Vec<FieldReport>,
    /// Browser time per member page (form) of the last attempt, pacing excluded.
    #[serde(skip)]
    pub page_times: Vec<Duration>,
}

impl MemberOutcome {
    fn new(knvb_id: KnvbId, result: MemberResult) -> Self {
        Self {
            knvb_id,
            result,
            fields: Vec::new(),
            page_times: Vec::new(),
        }
    }
}

/// Why a run stopped before the queue was empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    Cancelled,
    CircuitBreakerOpen {
        detail: String,
    },
    /// Sportlink refused the login: nothing was marked; fix the configuration.
    LoginRefused {
        message: String,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub members: Vec<MemberOutcome>,
    pub stopped: Option<StopReason>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the operator sees of the executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExecutorState {
    Idle,
    Working {
        knvb_id: String,
    },
    /// Paused by the circuit breaker (or a refused login) until `until` or an operator resume.
    Paused {
        reason: String,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ExecutorStatus {
    pub state: ExecutorState,
    pub consecutive_drift_failures: u32,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Shared, cheap to clone: the executor writes it, the operator page and API read it.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<BoardInner>>,
}

#[derive(Debug)]
struct BoardInner {
    status: ExecutorStatus,
    pause_deadline: Option<Instant>,
    alerts: Option<AlertSender>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(BoardInner {
                status: ExecutorStatus {
                    state: ExecutorState::Idle,
                    consecutive_drift_failures: 0,
                    last_run_finished_at: None,
                    last_error: None,
                },
                pause_deadline: None,
                alerts: None,
            })),
        }
    }
}

impl StatusBoard {
    fn with<T>(&self, f: impl FnOnce(&mut BoardInner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn status(&self) -> ExecutorStatus {
        self.with(|b| {
            b.refresh_pause();
            b.status.clone()
        })
    }

    /// Still paused? A pause past its cool-down ends here.
    pub fn paused(&self) -> Option<String> {
        self.with(|b| {
            b.refresh_pause();
            match &b.status.state {
                ExecutorState::Paused { reason, .. } => Some(reason.clone()),
                _ => None,
            }
        })
    }

    /// When a pause ends by itself (for the daemon's timer).
    pub fn pause_deadline(&self) -> Option<Instant> {
        self.with(|b| {
            b.refresh_pause();
            b.pause_deadline
        })
    }

    /// Operator action: end a pause now.
    pub fn resume(&self) {
        self.with(|b| {
            if matches!(b.status.state, ExecutorState::Paused { .. }) {
                tracing::warn!("executor resumed by the operator");
                b.status.state = ExecutorState::Idle;
                b.alert(AlertEvent::CircuitBreakerReset);
            }
            b.pause_deadline = None;
            b.status.consecutive_drift_failures = 0;
        });
    }

    /// Sends circuit-breaker and failure alerts to `alerts` from now on.
    pub fn set_alerts(&self, alerts: AlertSender) {
        self.with(|b| b.alerts = Some(alerts));
    }

    /// Raises an alert when a sender is set.
    pub fn alert(&self, event: AlertEvent) {
        self.with(|b| b.alert(event));
    }

    fn pause(&self, reason: String, cooldown: Duration) {
        self.with(|b| {
            let now = Utc::now();
            let until =
                now + chrono::TimeDelta::from_std(cooldown).unwrap_or(chrono::TimeDelta::MAX);
            tracing::error!(%reason, "Sportlink executor paused");
            b.alert(AlertEvent::CircuitBreakerTripped {
                reason: reason.clone(),
                failures: b.status.consecutive_drift_failures,
            });
            b.status.state = ExecutorState::Paused {
                reason,
                since: now,
                until,
            };
            b.pause_deadline = Some(Instant::now() + cooldown);
        });
    }

    fn working(&self, knvb_id: &KnvbId) {
        self.with(|b| {
            if !matches!(b.status.state, ExecutorState::Paused { .. }) {
                b.status.state = ExecutorState::Working {
                    knvb_id: knvb_id.to_string(),
                };
            }
        });
    }

    fn idle(&self) {
        self.with(|b| {
            if !matches!(b.status.state, ExecutorState::Paused { .. }) {
                b.status.state = ExecutorState::Idle;
            }
        });
    }

    /// Count a member's result for the breaker; returns the streak of drift failures.
    fn record(&self, result: &MemberResult) -> u32 {
        self.with(|b| {
            match result {
                // The streak counts consecutive members whose pages did not look like the
                // catalogue; members skipped or failing for other reasons neither add to it nor
                // end it. Only a member whose pages worked ends it.
                MemberResult::Failed {
                    ui_drift, error, ..
                } => {
                    b.status.last_error = Some(error.clone());
                    if *ui_drift {
                        b.status.consecutive_drift_failures += 1;
                    }
                }
                MemberResult::NothingPending | MemberResult::Skipped { .. } => {}
                MemberResult::Done { .. } | MemberResult::DryRun => {
                    b.status.consecutive_drift_failures = 0
                }
            }
            b.status.consecutive_drift_failures
        })
    }

    fn run_finished(&self) {
        self.with(|b| b.status.last_run_finished_at = Some(Utc::now()));
    }
}

impl BoardInner {
    fn refresh_pause(&mut self) {
        if let Some(deadline) = self.pause_deadline {
            if Instant::now() >= deadline {
                tracing::warn!("executor pause ended after its cool-down");
                self.pause_deadline = None;
                self.status.state = ExecutorState::Idle;
                self.status.consecutive_drift_failures = 0;
                self.alert(AlertEvent::CircuitBreakerReset);
            }
        }
    }

    fn alert(&self, event: AlertEvent) {
        if let Some(alerts) = &self.alerts {
            alerts.send(event);
        }
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// The executor for one Sportlink account (it holds the account's lock).
pub struct Executor<D: SportlinkDriver> {
    store: Store,
    catalogue: Arc<Catalogue>,
    driver: D,
    settings: ExecutorSettings,
    limiter: Option<Limiter>,
    board: StatusBoard,
    /// Held for the executor's life: one executor per account. It records each TOTP step
    /// through the recorder handed to the driver.
    _lock: AccountLock,
    last_member_end: Option<Instant>,
    /// Changes already reported by a dry run: a dry-run daemon reports each once.
    dry_run_reported: HashSet<ChangeId>,
}

/// How a pause set by the canary starts its reason (a passing canary ends only such a pause).
const CANARY_REASON: &str = "canary: Sportlink's pages do not match the field catalogue";

/// One change with its catalogue entry.
struct Planned {
    change: PendingChange,
    spec: FieldSpec,
}

/// One section of one page with the changes to push there.
struct PlannedForm {
    form: FormSpec,
    changes: Vec<Planned>,
}

/// Why one attempt failed.
#[derive(Debug)]
struct AttemptError {
    message: String,
    kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// Section, button or input not found: Sportlink's UI changed. Not retried in the run.
    Drift,
    /// Sportlink refused the value (validation message). Not retried in the run.
    Refused,
    /// Sportlink stored something else than typed. Not retried in the run.
    Mismatch,
    /// Timeouts, server errors, expired sessions, browser trouble: retried.
    Transient,
    /// The login was refused: stop everything.
    LoginRefused,
    /// The database failed.
    Store,
    /// The member turned out to be a former member: skipped, not failed.
    Former,
}

impl AttemptError {
    fn from_driver(e: &DriverError, context: &str) -> Self {
        let kind = if e.is_login_refused() {
            FailureKind::LoginRefused
        } else if e.is_former_member() {
            FailureKind::Former
        } else if e.is_ui_drift() {
            FailureKind::Drift
        } else if matches!(
            e.page_error(),
            Some(super::page::PageError::OptionNotAvailable { .. })
        ) || matches!(e, DriverError::UnknownField(_))
        {
            // The value cannot be typed at all: no retry within the run changes that.
            FailureKind::Refused
        } else if let Some((_, transient)) = e.refusal() {
            if transient {
                FailureKind::Transient
            } else {
                FailureKind::Refused
            }
        } else {
            FailureKind::Transient
        };
        Self {
            message: format!("{context}: {}", error_chain(e)),
            kind,
        }
    }

    fn store(e: StoreError) -> Self {
        Self {
            message: format!("database: {e}"),
            kind: FailureKind::Store,
        }
    }

    fn retryable(&self) -> bool {
        self.kind == FailureKind::Transient
    }
}

/// The guard's decision plus what the audit row needs.
struct Decided {
    planned_index: usize,
    live: String,
    decision: FieldDecision,
    audit: Option<Audit>,
}

#[derive(Debug, Clone)]
struct Audit {
    change_id: ChangeId,
    field: String,
    kind: FieldKind,
    sportlink_value: String,
    rondo_club_value: String,
    sportlink_modified: Option<DateTime<Utc>>,
    rondo_club_modified: Option<DateTime<Utc>>,
    resolution: Resolution,
}

impl Audit {
    fn record(
        &self,
        c: &crate::store::Conn<'_>,
        knvb_id: &KnvbId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let input = ConflictInput {
            kind: self.kind,
            sportlink_value: &self.sportlink_value,
            rondo_club_value: &self.rondo_club_value,
            sportlink_modified: self.sportlink_modified,
            rondo_club_modified: self.rondo_club_modified,
        };
        c.record_conflict(
            knvb_id,
            &self.field,
            &input,
            &self.resolution,
            Some(self.change_id),
            now,
        )?;
        Ok(())
    }
}

impl<D: SportlinkDriver> Executor<D> {
    pub fn new(store: Store, mut driver: D, settings: ExecutorSettings, lock: AccountLock) -> Self {
        driver.resume_otp_step(lock.last_otp_step());
        driver.set_otp_recorder(lock.recorder());
        driver.know_sections(
            store
                .catalogue()
                .fields()
                .iter()
                .map(|f| (f.page, f.section.clone()))
                .collect(),
        );
        let limiter = Quota::with_period(settings.min_member_interval)
            .map(|q| RateLimiter::direct(q.allow_burst(NonZeroU32::MIN)));
        Self {
            catalogue: store.catalogue().clone(),
            store,
            driver,
            settings,
            limiter,
            board: StatusBoard::default(),
            _lock: lock,
            last_member_end: None,
            dry_run_reported: HashSet::new(),
        }
    }

    /// Sends alerts (failed changes, lost conflicts, the circuit breaker) to `alerts`.
    pub fn set_alerts(&mut self, alerts: AlertSender) {
        self.board.set_alerts(alerts);
    }

    fn alert(&self, event: AlertEvent) {
        self.board.alert(event);
    }

    pub fn status_board(&self) -> StatusBoard {
        self.board.clone()
    }

    pub fn driver(&self) -> &D {
        &self.driver
    }

    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    pub fn settings(&self) -> &ExecutorSettings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Close the browser (end of a CLI run, shutdown).
    pub async fn close(&mut self) {
        self.driver.close().await;
    }

    pub async fn close_if_idle(&mut self) {
        let idle = self.settings.idle_close;
        self.driver.close_if_idle(idle).await;
    }

    /// The canary (issue 13): look at `member`'s pages read-only against the catalogue. A
    /// mismatch pauses the executor (until `pause_for` passes or an operator resumes) with the
    /// diagnosis as the reason, before any change can fail on it; a pass ends a pause the canary
    /// started. Returns whether the pages matched (`None`: the check itself could not run).
    pub async fn run_canary(&mut self, member: &KnvbId, pause_for: Duration) -> Option<bool> {
        let catalogue = self.catalogue.clone();
        match self.driver.check_pages(member.as_str(), &catalogue).await {
            Ok(None) => {
                tracing::info!(%member, "canary: Sportlink's pages match the catalogue");
                if self
                    .board
                    .paused()
                    .is_some_and(|r| r.starts_with(CANARY_REASON))
                {
                    self.board.resume();
                }
                Some(true)
            }
            Ok(Some(report)) => {
                tracing::error!(%member, "canary: Sportlink's pages do not match the catalogue");
                self.board.pause(
                    format!("{CANARY_REASON} (member {member}):\n{report}"),
                    pause_for,
                );
                Some(false)
            }
            Err(e) => {
                tracing::warn!(%member, error = %error_chain(&e), "canary: the check could not run");
                None
            }
        }
    }

    /// Push what is pending and due now (optionally for one member). Stops early when cancelled,
    /// when the circuit breaker opens, or when Sportlink refuses the login.
    pub async fn run(
        &mut self,
        only: Option<&KnvbId>,
        dry_run: bool,
        cancel: &CancellationToken,
    ) -> Result<RunReport, ExecutorError> {
        let mut report = RunReport::default();
        if let Some(reason) = self.board.paused() {
            report.stopped = Some(StopReason::CircuitBreakerOpen { detail: reason });
            return Ok(report);
        }
        let only_owned = only.cloned();
        let run_id = self
            .store
            .write(move |c| {
                c.start_run(
                    RunKind::Sync,
                    only_owned.as_ref().map(KnvbId::as_str),
                    dry_run,
                    Utc::now(),
                )
            })
            .await?;
        let result = self.run_members(only, dry_run, cancel, &mut report).await;
        self.board.idle();
        self.board.run_finished();
        let (status, error) = match (&result, &report.stopped) {
            (Err(e), _) => (RunStatus::Failed, Some(e.to_string())),
            (Ok(()), Some(StopReason::LoginRefused { message })) => {
                (RunStatus::Failed, Some(message.clone()))
            }
            (Ok(()), Some(StopReason::CircuitBreakerOpen { detail })) => {
                (RunStatus::Failed, Some(detail.clone()))
            }
            _ => (RunStatus::Completed, None),
        };
        let detail = summary(&report);
        let finish = self
            .store
            .write(move |c| {
                c.finish_run(run_id, status, Some(&detail), error.as_deref(), Utc::now())
            })
            .await;
        result?;
        finish?;
        Ok(report)
    }

    async fn run_members(
        &mut self,
        only: Option<&KnvbId>,
        dry_run: bool,
        cancel: &CancellationToken,
        report: &mut RunReport,
    ) -> Result<(), ExecutorError> {
        let mut seen: HashSet<KnvbId> = HashSet::new();
        loop {
            let only_owned = only.cloned();
            let due = self
                .store
                .read(move |c| c.due_members(Utc::now(), only_owned.as_ref(), BATCH + 1000))
                .await?;
            let batch: Vec<KnvbId> = due
                .into_iter()
                .filter(|k| !seen.contains(k))
                .take(BATCH)
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            for knvb_id in batch {
                seen.insert(knvb_id.clone());
                if dry_run && only.is_none() {
                    let knvb = knvb_id.clone();
                    let ids: Vec<ChangeId> = self
                        .store
                        .read(move |c| c.pending_changes(&knvb))
                        .await?
                        .iter()
                        .map(|c| c.id)
                        .collect();
                    if ids.iter().all(|id| self.dry_run_reported.contains(id)) {
                        continue;
                    }
                    self.dry_run_reported.extend(ids);
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
                if let Some(reason) = self.board.paused() {
                    report.stopped = Some(StopReason::CircuitBreakerOpen { detail: reason });
                    return Ok(());
                }
                if !self.pace(cancel).await {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
                self.board.working(&knvb_id);
                let outcome = self.execute_with_retries(&knvb_id, dry_run, cancel).await;
                self.last_member_end = Some(Instant::now());
                let outcome = outcome?;
                let login_refused = outcome.login_refused.clone();
                let streak = self.board.record(&outcome.outcome.result);
                log_outcome(&outcome.outcome);
                report.members.push(outcome.outcome);
                if let Some(message) = login_refused {
                    self.board.pause(
                        format!("Sportlink refused the login: {message}"),
                        self.settings.breaker_cooldown,
                    );
                    report.stopped = Some(StopReason::LoginRefused { message });
                    return Ok(());
                }
                if self.settings.breaker_threshold > 0 && streak >= self.settings.breaker_threshold
                {
                    let detail = format!(
                        "{streak} members in a row failed because Sportlink's pages no longer \
                         match the page model (section or input not found); last: {}",
                        self.board.status().last_error.unwrap_or_default()
                    );
                    self.board
                        .pause(detail.clone(), self.settings.breaker_cooldown);
                    report.stopped = Some(StopReason::CircuitBreakerOpen { detail });
                    return Ok(());
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(StopReason::Cancelled);
                    return Ok(());
                }
            }
        }
    }

    /// The politeness pause before a member: the governor quota (at most one member per
    /// interval, plus random jitter) and, because a member can take longer than the interval, at
    /// least the interval since the previous member finished. False when cancelled.
    async fn pace(&self, cancel: &CancellationToken) -> bool {
        let Some(limiter) = &self.limiter else {
            return !cancel.is_cancelled();
        };
        let jitter = Jitter::up_to(self.settings.member_jitter);
        let after_previous = self
            .last_member_end
            .map(|end| end + self.settings.min_member_interval);
        let wait = async {
            if let Some(at) = after_previous {
                tokio::time::sleep_until(at).await;
            }
            limiter.until_ready_with_jitter(jitter).await;
        };
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = wait => true,
        }
    }

    /// One member with the in-run retries (backoff), and the bookkeeping of a final failure.
    async fn execute_with_retries(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        cancel: &CancellationToken,
    ) -> Result<Attempted, ExecutorError> {
        let mut attempt: u32 = 0;
        loop {
            let last_try = attempt as usize >= self.settings.retry_backoff.len();
            let result = self.attempt_member(knvb_id, dry_run, last_try).await;
            attempt += 1;
            match result {
                Ok(outcome) => {
                    return Ok(Attempted {
                        outcome,
                        login_refused: None,
                    })
                }
                Err(failed) => {
                    let wait = self
                        .settings
                        .retry_backoff
                        .get(attempt as usize - 1)
                        .copied();
                    let retry = failed.error.retryable() && !cancel.is_cancelled();
                    if let (true, Some(wait)) = (retry, wait) {
                        tracing::info!(
                            knvb_id = %knvb_id, attempt, error = %failed.error.message,
                            retry_in_ms = wait.as_millis() as u64, "member failed; retrying"
                        );
                        let cancelled = tokio::select! {
                            _ = cancel.cancelled() => true,
                            _ = tokio::time::sleep(wait) => false,
                        };
                        if !cancelled {
                            continue;
                        }
                    }
                    return self
                        .record_member_failure(knvb_id, failed, attempt, dry_run)
                        .await;
                }
            }
        }
    }

    async fn record_member_failure(
        &mut self,
        knvb_id: &KnvbId,
        failed: FailedAttempt,
        attempts: u32,
        dry_run: bool,
    ) -> Result<Attempted, ExecutorError> {
        let FailedAttempt {
            error,
            change_ids,
            fields,
            artefacts,
            page_times,
        } = failed;
        let login_refused =
            (error.kind == FailureKind::LoginRefused).then(|| error.message.clone());
        let mut gave_up = Vec::new();
        // A refused login says nothing about the changes: leave them untouched.
        if !dry_run && login_refused.is_none() && !change_ids.is_empty() {
            let message = error.message.clone();
            let ids: Vec<ChangeId> = change_ids.iter().map(|(id, _)| *id).collect();
            let max = self.settings.max_attempts;
            let knvb = knvb_id.clone();
            // The delay grows with the runs that already failed for this member.
            let attempts_so_far = self
                .store
                .read(move |c| {
                    Ok(c.pending_changes(&knvb)?
                        .iter()
                        .map(|p| p.attempts)
                        .max()
                        .unwrap_or(0))
                })
                .await?;
            let delay = next_attempt_delay(self.settings.next_attempt_base, attempts_so_far);
            let now = Utc::now();
            let next = now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
            gave_up = self
                .store
                .write(move |c| c.record_failure(&ids, &message, next, max, now))
                .await?;
            if !gave_up.is_empty() {
                tracing::error!(
                    knvb_id = %knvb_id, changes = ?gave_up, error = %error.message,
                    "changes failed for good after their attempts"
                );
            }
            for (id, field) in change_ids.iter().filter(|(id, _)| gave_up.contains(id)) {
                self.alert(AlertEvent::ChangeFailed {
                    change_id: *id,
                    knvb_id: knvb_id.clone(),
                    field: field.clone(),
                    reason: error.message.clone(),
                });
            }
        }
        Ok(Attempted {
            outcome: MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::Failed {
                    error: error.message.clone(),
                    ui_drift: error.kind == FailureKind::Drift,
                    attempts,
                    gave_up,
                    screenshot: artefacts
                        .as_ref()
                        .and_then(|a| a.screenshot.as_ref())
                        .map(|p| p.display().to_string()),
                    html: artefacts
                        .as_ref()
                        .and_then(|a| a.html.as_ref())
                        .map(|p| p.display().to_string()),
                },
                fields,
                page_times,
            },
            login_refused,
        })
    }

    /// The unit of work: one attempt at one member, committing its outcome on success. Public so
    /// tests and the CLI can drive a single member without the loop's pacing.
    pub async fn execute_member(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
    ) -> Result<MemberOutcome, ExecutorError> {
        match self.attempt_member(knvb_id, dry_run, true).await {
            Ok(outcome) => Ok(outcome),
            Err(failed) => Ok(self
                .record_member_failure(knvb_id, failed, 1, dry_run)
                .await?
                .outcome),
        }
    }

    async fn attempt_member(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        capture_on_failure: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        let span = tracing::info_span!("member", knvb_id = %knvb_id, dry_run);
        self.attempt_member_inner(knvb_id, dry_run, capture_on_failure)
            .instrument(span)
            .await
    }

    async fn attempt_member_inner(
        &mut self,
        knvb_id: &KnvbId,
        dry_run: bool,
        capture_on_failure: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        let knvb = knvb_id.clone();
        let loaded = self
            .store
            .read(move |c| Ok((c.pending_changes(&knvb)?, c.member_is_deceased(&knvb)?)))
            .await;
        let (changes, deceased) =
            loaded.map_err(|e| FailedAttempt::plain(AttemptError::store(e)))?;
        if changes.is_empty() {
            return Ok(MemberOutcome::new(
                knvb_id.clone(),
                MemberResult::NothingPending,
            ));
        }
        let all_ids: Vec<ChangeId> = changes.iter().map(|c| c.id).collect();
        let pending: Vec<(ChangeId, String)> =
            changes.iter().map(|c| (c.id, c.field.clone())).collect();
        if deceased {
            return self
                .skip(
                    knvb_id,
                    all_ids,
                    "deceased member: not pushed to Sportlink",
                    dry_run,
                )
                .await;
        }
        let (forms, unknown) = plan(&self.catalogue, changes);
        if !unknown.is_empty() {
            // A field the executor cannot handle is an error that shows (lessons.md 2).
            let names: Vec<&str> = unknown.iter().map(|c| c.field.as_str()).collect();
            return Err(FailedAttempt {
                error: AttemptError {
                    message: format!("fields unknown to the field catalogue: {names:?}"),
                    kind: FailureKind::Refused,
                },
                change_ids: pending,
                fields: Vec::new(),
                artefacts: None,
                page_times: Vec::new(),
            });
        }
        let mut state = AttemptState::default();
        let Some(first_form) = forms.first().map(|f| f.form.clone()) else {
            return Ok(MemberOutcome::new(
                knvb_id.clone(),
                MemberResult::NothingPending,
            ));
        };
        let started = Instant::now();
        let mut status = self
            .driver
            .member_status(knvb_id.as_str(), &first_form)
            .await;
        if matches!(&status, Err(e) if e.is_session_expired()) {
            // As for a form: a session that expired here costs a login, not an attempt.
            tracing::info!("the session expired opening the member; logging in again");
            if let Err(e) = self.driver.relogin().await {
                let error = AttemptError::from_driver(&e, "logging in again");
                return Err(self
                    .fail(error, pending, state, capture_on_failure, knvb_id, None)
                    .await);
            }
            status = self
                .driver
                .member_status(knvb_id.as_str(), &first_form)
                .await;
        }
        match status {
            Ok(MemberStatus::Active) => {}
            Ok(MemberStatus::Former(status)) => {
                return self
                    .skip(
                        knvb_id,
                        all_ids,
                        &format!("former member: Sportlink shows \"{status}\""),
                        dry_run,
                    )
                    .await;
            }
            // The first form's section is looked up with the status; a member without it is
            // told by `open_form` below (skipped), not here.
            Err(e) if e.missing_section().is_some() => {}
            Err(e) => {
                let error = AttemptError::from_driver(&e, "opening the member");
                return Err(self
                    .fail(error, pending, state, capture_on_failure, knvb_id, None)
                    .await);
            }
        }
        let mut status_time = Some(started.elapsed());
        for planned in &forms {
            let form_started = Instant::now();
            let result = self
                .process_form_with_relogin(knvb_id, planned, dry_run, &mut state)
                .await;
            if matches!(&result, Err(e) if e.kind == FailureKind::Former) {
                if let Err(e) = self.driver.cancel_form(&planned.form).await {
                    tracing::debug!(error = %e, "could not cancel the form");
                }
                return self
                    .skip(
                        knvb_id,
                        all_ids,
                        "former member: Sportlink shows \"Oud bondslid\"",
                        dry_run,
                    )
                    .await;
            }
            let mut elapsed = form_started.elapsed();
            if let Some(extra) = status_time.take() {
                elapsed += extra;
            }
            state.page_times.push(elapsed);
            if let Err(error) = result {
                // Fail fast: the member's changes stay pending; already-saved pages are found in
                // sync by the conflict guard next time and not written again.
                return Err(self
                    .fail(
                        error,
                        pending,
                        state,
                        capture_on_failure,
                        knvb_id,
                        Some(&planned.form),
                    )
                    .await);
            }
        }
        if dry_run {
            return Ok(MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::DryRun,
                fields: state.reports,
                page_times: state.page_times,
            });
        }
        let commit = self.commit(knvb_id, &state).await;
        if commit.is_ok() {
            for a in state
                .audits
                .iter()
                .filter(|a| state.lost.contains(&a.change_id))
            {
                self.alert(AlertEvent::ConflictLost {
                    change_id: a.change_id,
                    knvb_id: knvb_id.clone(),
                    field: a.field.clone(),
                    sportlink_value: a.sportlink_value.clone(),
                    rondo_club_value: a.rondo_club_value.clone(),
                    reason: a.resolution.reason.as_str().to_owned(),
                });
            }
        }
        match commit {
            Ok((synced, lost)) if synced == 0 && lost == 0 && !state.skipped.is_empty() => {
                let reasons: Vec<&str> = state.skipped.iter().map(|(_, r)| r.as_str()).collect();
                let mut reasons = reasons;
                reasons.dedup();
                Ok(MemberOutcome {
                    knvb_id: knvb_id.clone(),
                    result: MemberResult::Skipped {
                        reason: reasons.join("; "),
                    },
                    fields: state.reports,
                    page_times: state.page_times,
                })
            }
            Ok((synced, lost)) => Ok(MemberOutcome {
                knvb_id: knvb_id.clone(),
                result: MemberResult::Done {
                    synced,
                    conflicts_lost: lost,
                },
                fields: state.reports,
                page_times: state.page_times,
            }),
            Err(e) => Err(FailedAttempt {
                error: AttemptError::store(e),
                change_ids: pending,
                fields: state.reports,
                artefacts: None,
                page_times: state.page_times,
            }),
        }
    }

    async fn skip(
        &mut self,
        knvb_id: &KnvbId,
        ids: Vec<ChangeId>,
        reason: &str,
        dry_run: bool,
    ) -> Result<MemberOutcome, FailedAttempt> {
        if !dry_run {
            let reason_owned = reason.to_owned();
            self.store
                .write(move |c| {
                    c.resolve_without_push(&ids, ChangeStatus::Skipped, &reason_owned, Utc::now())
                })
                .await
                .map_err(|e| FailedAttempt::plain(AttemptError::store(e)))?;
        }
        Ok(MemberOutcome::new(
            knvb_id.clone(),
            MemberResult::Skipped {
                reason: reason.to_owned(),
            },
        ))
    }

    /// Failure path of an attempt: keep artefacts (on the last try), close any open section.
    async fn fail(
        &mut self,
        error: AttemptError,
        change_ids: Vec<(ChangeId, String)>,
        state: AttemptState,
        capture: bool,
        knvb_id: &KnvbId,
        form: Option<&FormSpec>,
    ) -> FailedAttempt {
        tracing::warn!(error = %error.message, "member attempt failed");
        // Keep artefacts of the attempt that ends the member's run (the last try, or a failure
        // that no retry in this run will fix).
        let final_attempt = capture || !error.retryable();
        let artefacts = if final_attempt && error.kind != FailureKind::Store {
            let label = match form {
                Some(f) => format!("{knvb_id}-{}-{}", f.page, f.section),
                None => knvb_id.to_string(),
            };
            self.driver.capture_artefacts(&label).await
        } else {
            None
        };
        if let Some(form) = form {
            if let Err(e) = self.driver.cancel_form(form).await {
                tracing::debug!(error = %e, "could not cancel the form after a failure");
            }
        }
        FailedAttempt {
            error,
            change_ids,
            fields: state.reports,
            artefacts,
            page_times: state.page_times,
        }
    }

    /// A form, retried once after a re-login when the session expired in the middle of it.
    async fn process_form_with_relogin(
        &mut self,
        knvb_id: &KnvbId,
        planned: &PlannedForm,
        dry_run: bool,
        state: &mut AttemptState,
    ) -> Result<(), AttemptError> {
        let mut scratch = AttemptState::default();
        match self
            .process_form(knvb_id, planned, dry_run, &mut scratch)
            .await
        {
            Ok(()) => {
                state.absorb(scratch);
                Ok(())
            }
            Err(FormError::Driver(e, context)) if e.is_session_expired() => {
                tracing::info!(%context, "the session expired; logging in again");
                if let Err(e) = self.driver.relogin().await {
                    return Err(AttemptError::from_driver(&e, "logging in again"));
                }
                let mut scratch = AttemptState::default();
                match self
                    .process_form(knvb_id, planned, dry_run, &mut scratch)
                    .await
                {
                    Ok(()) => {
                        state.absorb(scratch);
                        Ok(())
                    }
                    Err(e) => Err(e.into_attempt(&planned.form)),
                }
            }
            Err(e) => Err(e.into_attempt(&planned.form)),
        }
    }

    /// Open the section, apply the conflict guard, write what must be written, save, reload and
    /// verify from Sportlink's JSON.
    async fn process_form(
        &mut self,
        knvb_id: &KnvbId,
        planned: &PlannedForm,
        dry_run: bool,
        state: &mut AttemptState,
    ) -> Result<(), FormError> {
        let form = &planned.form;
        let live = match self.driver.open_form(knvb_id.as_str(), form).await {
            Ok(live) => live,
            Err(e) if e.missing_section().is_some() => {
                let reason = format!(
                    "member has no section \"{}\" on the {} page in Sportlink",
                    form.section, form.page
                );
                tracing::info!(%reason, "skipping the section's changes");
                for p in &planned.changes {
                    state.skipped.push((p.change.id, reason.clone()));
                }
                return Ok(());
            }
            Err(e) => return Err(FormError::Driver(e, "opening the section")),
        };

        let mut decided = Vec::with_capacity(planned.changes.len());
        for (index, p) in planned.changes.iter().enumerate() {
            let live_raw = live.get(&p.spec.name).cloned().unwrap_or_default();
            let d = self
                .guard(knvb_id, index, p, live_raw)
                .await
                .map_err(FormError::Store)?;
            decided.push(d);
        }

        let writes: Vec<(String, String)> = decided
            .iter()
            .filter(|d| d.decision.writes())
            .map(|d| {
                let p = &planned.changes[d.planned_index];
                (
                    p.spec.name.clone(),
                    p.spec.kind.for_sportlink(&p.change.new_value),
                )
            })
            .collect();

        if !dry_run && !writes.is_empty() {
            // A decision that leads to a write is audited before the write, whether or not the
            // attempt gets to its end (a redo after a lost session finds the value already there
            // and decides nothing).
            let audits: Vec<Audit> = decided
                .iter()
                .filter(|d| d.decision.writes())
                .filter_map(|d| d.audit.clone())
                .collect();
            if !audits.is_empty() {
                let knvb = knvb_id.clone();
                self.store
                    .write(move |c| {
                        let now = Utc::now();
                        for a in &audits {
                            a.record(c, &knvb, now)?;
                        }
                        Ok(())
                    })
                    .await
                    .map_err(FormError::Store)?;
            }
        }
        if dry_run || writes.is_empty() {
            self.driver
                .cancel_form(form)
                .await
                .map_err(|e| FormError::Driver(e, "cancelling the section"))?;
        } else {
            self.driver
                .save_form(form, &writes)
                .await
                .map_err(|e| FormError::Driver(e, "saving the section"))?;
        }

        if !dry_run {
            let stored = self
                .driver
                .read_stored(knvb_id.as_str(), form, !writes.is_empty())
                .await
                .map_err(|e| FormError::Driver(e, "reading back what Sportlink stored"))?;
            for d in &decided {
                if matches!(d.decision, FieldDecision::ConflictLost { .. }) {
                    continue;
                }
                let p = &planned.changes[d.planned_index];
                let Some(Some(raw)) = stored.get(&p.spec.name) else {
                    return Err(FormError::VerifyMissing {
                        field: p.spec.name.clone(),
                        endpoint: p.spec.verify.endpoint.clone(),
                        pointer: p.spec.verify.pointer.clone(),
                    });
                };
                let stored_norm = p.spec.kind.normalise(raw);
                if stored_norm != p.change.new_value && !p.spec.kind.same(raw, &p.change.new_value)
                {
                    return Err(FormError::Mismatch {
                        field: p.spec.name.clone(),
                        expected: p.change.new_value.clone(),
                        stored: raw.clone(),
                    });
                }
            }
        }

        for d in decided {
            let p = &planned.changes[d.planned_index];
            state.reports.push(FieldReport {
                change_id: p.change.id,
                field: p.spec.name.clone(),
                live_value: d.live.clone(),
                new_value: p.change.new_value.clone(),
                decision: d.decision.clone(),
            });
            match &d.decision {
                FieldDecision::ConflictLost { .. } => state.lost.push(p.change.id),
                _ => state.synced.push(p.change.id),
            }
            if let Some(audit) = d.audit {
                // Audits of writes were recorded before the save.
                if dry_run || !d.decision.writes() {
                    state.audits.push(audit);
                }
            }
        }
        Ok(())
    }

    /// The conflict guard (product.md §5): L = live, O = expected Sportlink value, N = new.
    async fn guard(
        &self,
        knvb_id: &KnvbId,
        index: usize,
        p: &Planned,
        live_raw: String,
    ) -> Result<Decided, StoreError> {
        let kind = p.spec.kind;
        let live = kind.normalise(&live_raw);
        let new = kind.normalise(&p.change.new_value);
        let old = kind.normalise(&p.change.expected_sportlink_value);
        if live == new {
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::AlreadyInSync,
                audit: None,
            });
        }
        if live == old {
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::Write,
                audit: None,
            });
        }
        // A run that stopped between Sportlink's save and our record of it (kill -9, power cut)
        // left one of this chain's earlier values there: our own write, not a Sportlink edit.
        let change = p.change.id;
        let earlier = self
            .store
            .read(move |c| c.unrecorded_chain_values(change))
            .await?;
        if earlier.iter().any(|v| kind.normalise(v) == live) {
            tracing::info!(
                field = %p.spec.name, change = %change,
                "Sportlink holds an earlier value of this change's chain (a write not recorded \
                 before a stop); writing the newest"
            );
            return Ok(Decided {
                planned_index: index,
                live: live_raw,
                decision: FieldDecision::Write,
                audit: None,
            });
        }
        let knvb = knvb_id.clone();
        let field = p.spec.name.clone();
        let (sportlink_modified, member_rc_modified) = self
            .store
            .read(move |c| c.field_timestamps(&knvb, &field))
            .await?;
        // The Rondo Club side is the time of the value being pushed (the volunteer's edit), never
        // a later time at which the forward sync copied Sportlink's own value into Rondo Club.
        let rondo_club_modified = p.change.rondo_club_modified_gmt.or(member_rc_modified);
        let resolution = resolve(&ConflictInput {
            kind,
            sportlink_value: &live,
            rondo_club_value: &new,
            sportlink_modified,
            rondo_club_modified,
        });
        let audit = Audit {
            change_id: p.change.id,
            field: p.spec.name.clone(),
            kind,
            sportlink_value: live.clone(),
            rondo_club_value: new.clone(),
            sportlink_modified,
            rondo_club_modified,
            resolution,
        };
        let reason = resolution.reason.as_str().to_owned();
        let decision = match resolution.winner {
            Winner::Neither => FieldDecision::AlreadyInSync,
            Winner::RondoClub => FieldDecision::WriteAfterConflict { reason },
            Winner::Sportlink => FieldDecision::ConflictLost { reason },
        };
        tracing::info!(
            field = %p.spec.name, decision = ?decision,
            "Sportlink holds neither the expected old value nor the new value"
        );
        Ok(Decided {
            planned_index: index,
            live: live_raw,
            audit: (resolution.winner != Winner::Neither).then_some(audit),
            decision,
        })
    }

    /// One transaction for the member: synced rows (by id, with timestamps and `sync_origin`),
    /// lost conflicts, and the audit rows.
    async fn commit(
        &self,
        knvb_id: &KnvbId,
        state: &AttemptState,
    ) -> Result<(usize, usize), StoreError> {
        let knvb = knvb_id.clone();
        let synced = state.synced.clone();
        let lost = state.lost.clone();
        let audits = state.audits.clone();
        let skipped = state.skipped.clone();
        self.store
            .write(move |c| {
                let now = Utc::now();
                for (id, reason) in &skipped {
                    c.resolve_without_push(&[*id], ChangeStatus::Skipped, reason, now)?;
                }
                let n_synced = if synced.is_empty() {
                    0
                } else {
                    c.mark_synced(&synced, now)?
                };
                for a in &audits {
                    a.record(c, &knvb, now)?;
                }
                let mut n_lost = 0;
                for a in audits.iter().filter(|a| lost.contains(&a.change_id)) {
                    n_lost += c.resolve_without_push(
                        &[a.change_id],
                        ChangeStatus::ConflictLost,
                        &format!(
                            "Sportlink holds {:?}, changed there meanwhile; Sportlink wins ({})",
                            a.sportlink_value,
                            a.resolution.reason.as_str()
                        ),
                        now,
                    )?;
                }
                Ok((n_synced, n_lost))
            })
            .await
    }
}

struct Attempted {
    outcome: MemberOutcome,
    login_refused: Option<String>,
}

struct FailedAttempt {
    error: AttemptError,
    /// The member's pending changes (id, field) that the failure leaves pending.
    change_ids: Vec<(ChangeId, String)>,
    fields: Vec<FieldReport>,
    artefacts: Option<Artefacts>,
    page_times: Vec<Duration>,
}

impl FailedAttempt {
    fn plain(error: AttemptError) -> Self {
        Self {
            error,
            change_ids: Vec::new(),
            fields: Vec::new(),
            artefacts: None,
            page_times: Vec::new(),
        }
    }
}

#[derive(Default)]
struct AttemptState {
    reports: Vec<FieldReport>,
    synced: Vec<ChangeId>,
    lost: Vec<ChangeId>,
    /// Changes that cannot be pushed for a reason about the member (no such section).
    skipped: Vec<(ChangeId, String)>,
    audits: Vec<Audit>,
    page_times: Vec<Duration>,
}

impl AttemptState {
    fn absorb(&mut self, other: AttemptState) {
        self.reports.extend(other.reports);
        self.synced.extend(other.synced);
        self.lost.extend(other.lost);
        self.skipped.extend(other.skipped);
        self.audits.extend(other.audits);
    }
}

enum FormError {
    Driver(DriverError, &'static str),
    Store(StoreError),
    VerifyMissing {
        field: String,
        endpoint: String,
        pointer: String,
    },
    Mismatch {
        field: String,
        expected: String,
        stored: String,
    },
}

impl FormError {
    fn into_attempt(self, form: &FormSpec) -> AttemptError {
        let place = format!("{} page, section \"{}\"", form.page, form.section);
        match self {
            FormError::Driver(e, what) => {
                AttemptError::from_driver(&e, &format!("{place}: {what}"))
            }
            FormError::Store(e) => AttemptError::store(e),
            FormError::VerifyMissing {
                field,
                endpoint,
                pointer,
            } => AttemptError {
                message: format!(
                    "{place}: {field}: Sportlink's {endpoint} has no value at {pointer}"
                ),
                kind: FailureKind::Drift,
            },
            FormError::Mismatch {
                field,
                expected,
                stored,
            } => AttemptError {
                message: format!(
                    "{place}: {field}: after saving, Sportlink holds {stored:?}, not {expected:?}; \
                     not marked synced"
                ),
                kind: FailureKind::Mismatch,
            },
        }
    }
}

/// Group a member's changes by page and section, pages in a fixed order (general, other,
/// financial; on general the communication section before the address), sections in catalogue
/// order. Changes whose field the catalogue does not know are returned apart.
fn plan(
    catalogue: &Catalogue,
    changes: Vec<PendingChange>,
) -> (Vec<PlannedForm>, Vec<PendingChange>) {
    let order: BTreeMap<(SportlinkPage, String), usize> = catalogue
        .fields()
        .iter()
        .enumerate()
        .fold(BTreeMap::new(), |mut acc, (i, f)| {
            acc.entry((f.page, f.section.clone())).or_insert(i);
            acc
        });
    let mut forms: Vec<PlannedForm> = Vec::new();
    let mut unknown = Vec::new();
    for change in changes {
        let Some(spec) = catalogue.get(&change.field).cloned() else {
            unknown.push(change);
            continue;
        };
        let field = FormField {
            name: spec.name.clone(),
            selectors: spec.selectors.clone(),
            verify_path: spec.verify.endpoint.clone(),
            verify_pointer: spec.verify.pointer.clone(),
        };
        let page = spec.page;
        match forms
            .iter_mut()
            .find(|f| f.form.page == page && f.form.section == spec.section)
        {
            Some(form) => {
                form.form.fields.push(field);
                form.changes.push(Planned { change, spec });
            }
            None => forms.push(PlannedForm {
                form: FormSpec {
                    page,
                    section: spec.section.clone(),
                    fields: vec![field],
                },
                changes: vec![Planned { change, spec }],
            }),
        }
    }
    forms.sort_by_key(|f| {
        let page = f.form.page;
        (
            page,
            order
                .get(&(page, f.form.section.clone()))
                .copied()
                .unwrap_or(usize::MAX),
        )
    });
    (forms, unknown)
}

/// Delay before a failed member is due again: base × 2^(failed runs so far), capped.
fn next_attempt_delay(base: Duration, attempts_so_far: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts_so_far.min(16))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor)
        .unwrap_or(MAX_NEXT_ATTEMPT_DELAY)
        .min(MAX_NEXT_ATTEMPT_DELAY)
}

/// An error with its causes, on one line (errors are reported to people, not parsed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn summary(report: &RunReport) -> String {
    let mut done = 0;
    let mut failed = 0;
    let mut skipped = 0;
    let mut dry = 0;
    for m in &report.members {
        match m.result {
            MemberResult::Done { .. } => done += 1,
            MemberResult::Failed { .. } => failed += 1,
            MemberResult::Skipped { .. } => skipped += 1,
            MemberResult::DryRun => dry += 1,
            MemberResult::NothingPending => {}
        }
    }
    let mut s = format!("members: {done} done, {failed} failed, {skipped} skipped");
    if dry > 0 {
        s.push_str(&format!(", {dry} dry-run"));
    }
    if let Some(stop) = &report.stopped {
        s.push_str(&format!("; stopped: {stop:?}"));
    }
    s
}

fn log_outcome(outcome: &MemberOutcome) {
    match &outcome.result {
        MemberResult::Done {
            synced,
            conflicts_lost,
        } => tracing::info!(knvb_id = %outcome.knvb_id, synced, conflicts_lost, "member done"),
        MemberResult::Failed { error, .. } => {
            tracing::warn!(knvb_id = %outcome.knvb_id, %error, "member failed")
        }
        MemberResult::Skipped { reason } => {
            tracing::info!(knvb_id = %outcome.knvb_id, %reason, "member skipped")
        }
        MemberResult::DryRun => {
            for f in &outcome.fields {
                tracing::info!(
                    knvb_id = %outcome.knvb_id, field = %f.field, live = %f.live_value,
                    new = %f.new_value, decision = ?f.decision, "dry run"
                );
            }
        }
        MemberResult::NothingPending => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_attempt_grows_and_is_capped() {
        let base = Duration::from_secs(300);
        assert_eq!(next_attempt_delay(base, 0), Duration::from_secs(300));
        assert_eq!(next_attempt_delay(base, 1), Duration::from_secs(600));
        assert_eq!(next_attempt_delay(base, 30), MAX_NEXT_ATTEMPT_DELAY);
        assert_eq!(next_attempt_delay(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn forms_follow_the_fixed_page_order() {
        let catalogue = Catalogue::builtin();
        let change = |id: i64, field: &str| PendingChange {
            id: ChangeId(id),
            knvb_id: KnvbId::parse("ABC1234").unwrap(),
            field: field.into(),
            old_value: String::new(),
            new_value: "x".into(),
            expected_sportlink_value: String::new(),
            rondo_club_modified_gmt: None,
            attempts: 0,
            detected_at: Utc::now(),
        };
        let (forms, unknown) = plan(
            &catalogue,
            vec![
                change(1, "financiele_blokkade"),
                change(2, "city"),
                change(3, "datum_vog"),
                change(4, "email"),
                change(5, "no_such_field"),
                change(6, "mobile"),
            ],
        );
        let order: Vec<(String, usize)> = forms
            .iter()
            .map(|f| (f.form.section.clone(), f.changes.len()))
            .collect();
        assert_eq!(
            order,
            [
                ("Communicatie".to_owned(), 2),
                ("Adres".to_owned(), 1),
                ("Vrije invoervelden".to_owned(), 1),
                ("Financiële gegevens".to_owned(), 1),
            ]
        );
        assert_eq!(unknown.len(), 1);
    }
}
