//! The executor: pushes pending changes into Sportlink, one member at a time.
//!
//! [`Executor::execute_member`] is the unit of work (one member, one attempt); [`Executor::run`]
//! is the loop around it (rate limit, retries with backoff, failures across runs, circuit
//! breaker, cancellation). Nothing is marked synced unless Sportlink's stored value was read back
//! and matched, and all of a member's outcome is committed in one transaction (by row id).
//!
//! The rooms: `run.rs` (the loop, pacing, retries, breaker, canary), `attempt.rs` (one member,
//! and what a failure is), `form.rs` (one section: guard, fill, save, verify, commit), `plan.rs`
//! (changes grouped per page section), `board.rs` (the status the operator sees, pauses,
//! alerts). This file: the settings, the reports and the executor's state. The children see
//! these imports through `use super::*`.

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
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId};
use crate::store::{PendingChange, RunKind, RunStatus, Store, StoreError};

mod attempt;
mod board;
mod form;
mod plan;
mod run;

use attempt::*;
pub use board::{ExecutorState, ExecutorStatus, StatusBoard};
use form::*;
use plan::*;

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
    pub field: FieldName,
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
    /// Set when the member in progress may have reached Sportlink's save (from the audit of a
    /// write decision on): from then on a shutdown lets the attempt finish and record what it
    /// did; before it, a shutdown abandons the attempt (see `execute_with_retries`).
    save_started: Arc<std::sync::atomic::AtomicBool>,
}

/// How a pause set by the canary starts its reason (a passing canary ends only such a pause).
const CANARY_REASON: &str = "canary: Sportlink's pages do not match the field catalogue";

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
            save_started: Arc::default(),
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
}
