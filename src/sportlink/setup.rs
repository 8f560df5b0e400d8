//! Wiring from the configuration to a running executor, and the CLI verbs `sync` and `check`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::browser::{SessionError, SessionSettings, SportlinkSession};
use super::driver::ChromiumDriver;
use super::executor::{
    Executor, ExecutorError, ExecutorSettings, MemberResult, RunReport, StopReason,
};
use super::lock::{AccountLock, LockError};
use super::page::PageTimings;
use crate::clock::SharedClock;
use crate::config::{Settings, SportlinkSettings};
use crate::domain::KnvbId;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Executor(#[from] ExecutorError),
}

impl SessionSettings {
    /// The session `serve`, `sync` and `check` run: `clock` is the system's, except where a
    /// test drives the service against a simulator on a clock it controls.
    pub fn from_config(s: &SportlinkSettings, clock: SharedClock) -> Self {
        Self {
            base_url: s.base_url.clone(),
            username: s.username.clone(),
            password: SecretString::from(s.password.expose().to_owned()),
            otp_secret: SecretString::from(s.otp_secret.expose().to_owned()),
            chromium_path: s.chromium_path.clone(),
            headless: s.headless,
            timings: PageTimings {
                action_timeout: Duration::from_secs(s.action_timeout_secs.max(1)),
                settle: Duration::from_millis(s.settle_ms),
            },
            launch_timeout: Duration::from_secs(30),
            clock,
        }
    }
}

impl ExecutorSettings {
    pub fn from_config(s: &SportlinkSettings) -> Self {
        Self {
            min_member_interval: Duration::from_millis(s.min_member_interval_ms),
            member_jitter: Duration::from_millis(s.member_jitter_ms),
            retry_backoff: s
                .retry_backoff_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            max_attempts: s.max_attempts.max(1),
            next_attempt_base: Duration::from_secs(s.next_attempt_base_secs),
            breaker_threshold: s.circuit_breaker_threshold,
            breaker_cooldown: Duration::from_secs(s.circuit_breaker_cooldown_secs),
            idle_close: Duration::from_secs(s.idle_close_secs.max(1)),
            dry_run: s.dry_run,
            canary: KnvbId::parse(s.canary_member.trim()).ok().map(|member| {
                (
                    member,
                    Duration::from_secs(s.canary_interval_hours.max(1).saturating_mul(3600)),
                )
            }),
        }
    }
}

/// The directory of the account lock: next to the database.
pub fn lock_dir(settings: &Settings) -> PathBuf {
    match settings.database.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The key of the account lock: who logs in where.
pub fn account_key(s: &SportlinkSettings) -> String {
    format!("{}@{}", s.username.trim(), s.base_url.trim_end_matches('/'))
}

/// Take the account's lock (fails when another executor drives the account).
pub fn lock_account(settings: &Settings) -> Result<AccountLock, LockError> {
    AccountLock::acquire(&lock_dir(settings), &account_key(&settings.sportlink))
}

/// A Chromium-driven executor for the configured account, holding the account lock.
pub fn chromium_executor(
    sportlink: &SportlinkSettings,
    store: Store,
    lock: AccountLock,
    clock: SharedClock,
) -> Result<Executor<ChromiumDriver>, SetupError> {
    // Holding the account lock: the Chromium of an earlier, killed executor goes first.
    super::orphans::reap_orphaned_browsers(&std::env::temp_dir());
    let session = SportlinkSession::new(SessionSettings::from_config(sportlink, clock))?;
    let driver = ChromiumDriver::new(session, Some(sportlink.artefact_dir.clone()));
    Ok(Executor::new(
        store,
        driver,
        ExecutorSettings::from_config(sportlink),
        lock,
    ))
}

/// `sync`: push what is pending now (optionally one member), then close the browser. The
/// cancellation token stops between members (Ctrl-C).
pub async fn sync(
    settings: &Settings,
    store: Store,
    only: Option<&KnvbId>,
    dry_run: bool,
    cancel: &CancellationToken,
    clock: SharedClock,
) -> Result<RunReport, SetupError> {
    let lock = lock_account(settings)?;
    let mut executor = chromium_executor(&settings.sportlink, store, lock, clock)?;
    let result = executor
        .run(only, dry_run || settings.sportlink.dry_run, cancel)
        .await;
    executor.close().await;
    Ok(result?)
}

/// `check`: log in to Sportlink once (with the lock, so it never collides with the daemon).
pub async fn check_login(settings: &Settings, clock: SharedClock) -> Result<(), SetupError> {
    let mut lock = lock_account(settings)?;
    let mut session =
        SportlinkSession::new(SessionSettings::from_config(&settings.sportlink, clock))?;
    session.set_last_used_otp_step(lock.last_otp_step());
    let mut driver = ChromiumDriver::new(session, None);
    let result = driver.login_check().await;
    lock.record_otp_step(driver.session().last_used_otp_step());
    super::driver::SportlinkDriver::close(&mut driver).await;
    result.map_err(|e| match e {
        super::driver::DriverError::Session(s) => SetupError::Session(s),
        other => SetupError::Session(SessionError::LoginIncomplete(other.to_string())),
    })
}

/// `check --member`: log in and look at one member's pages against the catalogue, read-only.
pub async fn check_member(
    settings: &Settings,
    catalogue: &crate::catalogue::Catalogue,
    knvb_id: &KnvbId,
    clock: SharedClock,
) -> Result<super::diagnose::MemberCheck, SetupError> {
    let lock = lock_account(settings)?;
    let mut session =
        SportlinkSession::new(SessionSettings::from_config(&settings.sportlink, clock))?;
    session.set_last_used_otp_step(lock.last_otp_step());
    session.set_otp_recorder(lock.recorder());
    let mut driver = ChromiumDriver::new(session, None);
    // Each TOTP step is written to the lock file as its code is taken (the recorder).
    let result = super::diagnose::check_member(&mut driver, catalogue, knvb_id.as_str()).await;
    super::driver::SportlinkDriver::close(&mut driver).await;
    result.map_err(|e| match e {
        super::driver::DriverError::Session(s) => SetupError::Session(s),
        other => SetupError::Session(SessionError::LoginIncomplete(other.to_string())),
    })
}

/// The per-member report of a run, as text for people.
pub fn render_report(report: &RunReport) -> String {
    let mut out = String::new();
    if report.members.is_empty() {
        out.push_str("nothing pending\n");
    }
    for m in &report.members {
        let line = match &m.result {
            MemberResult::NothingPending => "nothing pending".to_owned(),
            MemberResult::Done {
                synced,
                conflicts_lost,
            } => format!("done: {synced} synced, {conflicts_lost} conflict(s) lost"),
            MemberResult::DryRun => "dry run: nothing changed".to_owned(),
            MemberResult::Skipped { reason } => format!("skipped: {reason}"),
            MemberResult::Failed {
                error,
                attempts,
                gave_up,
                screenshot,
                ..
            } => {
                let mut s = format!("FAILED after {attempts} attempt(s): {error}");
                if !gave_up.is_empty() {
                    s.push_str(&format!(
                        " ({} change(s) now failed for good)",
                        gave_up.len()
                    ));
                }
                if let Some(path) = screenshot {
                    s.push_str(&format!(" [screenshot {path}]"));
                }
                s
            }
        };
        out.push_str(&format!("{}  {line}\n", m.knvb_id));
        let dry = matches!(m.result, MemberResult::DryRun);
        for f in &m.fields {
            out.push_str(&format!(
                "    {:<24} live {:?} -> new {:?}: {}\n",
                f.field,
                f.live_value,
                f.new_value,
                decision_text(&f.decision, dry)
            ));
        }
    }
    if let Some(stop) = &report.stopped {
        let why = match stop {
            StopReason::Cancelled => "cancelled".to_owned(),
            StopReason::CircuitBreakerOpen { detail } => {
                format!("executor paused by the circuit breaker: {detail}")
            }
            StopReason::LoginRefused { message } => {
                format!("Sportlink refused the login: {message}")
            }
        };
        out.push_str(&format!("stopped: {why}\n"));
    }
    out
}

fn decision_text(d: &super::executor::FieldDecision, dry_run: bool) -> String {
    use super::executor::FieldDecision;
    let written = if dry_run {
        "would be written"
    } else {
        "written"
    };
    match d {
        FieldDecision::AlreadyInSync => "already in Sportlink (no write)".into(),
        FieldDecision::Write => written.into(),
        FieldDecision::WriteAfterConflict { reason } => {
            format!("{written} after a conflict ({reason})")
        }
        FieldDecision::ConflictLost { reason } => format!("not written: conflict lost ({reason})"),
    }
}

/// True when a run should make the CLI exit non-zero.
pub fn report_failed(report: &RunReport) -> bool {
    matches!(
        report.stopped,
        Some(StopReason::LoginRefused { .. }) | Some(StopReason::CircuitBreakerOpen { .. })
    ) || report
        .members
        .iter()
        .any(|m| matches!(m.result, MemberResult::Failed { .. }))
}
