//! The divergence audit (issue 13, part 3): do Rondo Club and Sportlink agree, and where not,
//! why? Every member's tracked fields are read in Sportlink **read-only** (never "Wijzig", never a
//! save) through the executor's one browser, at its polite pace and never alongside it (the
//! executor's own loop runs the audit between its runs), and compared with Rondo Club.
//!
//! Rondo Club's side is read fresh: the run starts by listing every person from Rondo Club's REST
//! API (a few paged requests, cheap next to one Sportlink page); a member seen by the service
//! after that (a webhook during a long run) is compared with that newer state. Without Rondo Club
//! configured, the service's last seen state is used (`rondo_source = stored`).
//!
//! A run is kept in SQLite (`store::audit`): its members, each marked done with its verdicts in
//! one transaction, so a restart resumes with the members not yet done; a cancelled run keeps
//! what it found. [`step`] is the unit (the listing, or one member); the CLI and the daemon loop
//! around it. The comparison itself (pure) is in `compare`, the CSV and the lines people read in
//! `report`.

pub mod cli;
mod compare;
mod report;

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catalogue::Catalogue;
use crate::detect::{self, Person};
use crate::domain::KnvbId;
use crate::poll::{RondoClient, RondoError};
use crate::sportlink::driver::{DriverError, SportlinkDriver};
use crate::sportlink::executor::Executor;
use crate::store::{
    AuditMember, AuditRun, AuditRunStatus, AuditTrigger, RondoSource, Store, StoreError,
};

pub use crate::sportlink::read::SportlinkRead;
pub use compare::compare;
pub use report::{human_duration, progress_line, summary, to_csv};

/// Attempts at reading one member before it is recorded as an error.
const READ_ATTEMPTS: u32 = 2;
/// Safety stop for a Rondo Club whose page count keeps growing.
const MAX_PAGES: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listing Rondo Club's people: {0}")]
    Rondo(#[from] RondoError),
    #[error("Sportlink refused the login; the audit stopped: {0}")]
    LoginRefused(String),
}

/// What one [`step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// No unfinished run.
    Idle,
    /// The run's members were listed.
    Listed { audit_id: i64, members: u64 },
    /// One member was read and compared.
    Member {
        audit_id: i64,
        knvb_id: KnvbId,
        sportlink_state: &'static str,
    },
    /// The run ended (every member done).
    Finished { audit_id: i64 },
    /// The executor is paused (circuit breaker, canary): Sportlink is not read meanwhile.
    Paused,
    /// Cancelled while waiting for the pace.
    Stopped,
}

/// Start a run unless one is unfinished (then that one is returned, to resume it).
pub async fn start_or_resume(store: &Store, trigger: AuditTrigger) -> Result<AuditRun, StoreError> {
    store
        .write(move |c| match c.active_audit()? {
            Some(run) => Ok(run),
            None => c.start_audit(trigger, Utc::now()),
        })
        .await
}

/// One unit of the unfinished run: its listing, or one member. Between units the caller may run
/// the executor: the browser is never used by both at once.
pub async fn step<D: SportlinkDriver>(
    executor: &mut Executor<D>,
    rondo: Option<&RondoClient>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, AuditError> {
    let store = executor.store().clone();
    let Some(run) = store.read(|c| c.active_audit()).await? else {
        return Ok(StepOutcome::Idle);
    };
    if run.status == AuditRunStatus::Listing {
        let members = match list_members(&store, rondo, run.id, cancel).await {
            Ok(n) => n,
            Err(e) => {
                let message = e.to_string();
                tracing::error!(audit = run.id, error = %message, "the audit could not list members");
                let id = run.id;
                store
                    .write(move |c| {
                        c.finish_audit(id, AuditRunStatus::Failed, Some(&message), Utc::now())
                    })
                    .await?;
                return Err(e);
            }
        };
        tracing::info!(audit = run.id, members, "audit: members listed");
        return Ok(StepOutcome::Listed {
            audit_id: run.id,
            members,
        });
    }
    let id = run.id;
    let todo = store.read(move |c| c.audit_members_todo(id, 1)).await?;
    let Some(member) = todo.into_iter().next() else {
        store
            .write(move |c| c.finish_audit(id, AuditRunStatus::Completed, None, Utc::now()))
            .await?;
        tracing::info!(audit = id, "audit completed");
        return Ok(StepOutcome::Finished { audit_id: id });
    };
    if executor.status_board().paused().is_some() {
        return Ok(StepOutcome::Paused);
    }
    let started = Instant::now();
    if !executor.pace_member(cancel).await {
        return Ok(StepOutcome::Stopped);
    }
    let read_started = Instant::now();
    let catalogue = executor.catalogue().clone();
    let read = read_with_retry(executor, &member.knvb_id, &catalogue).await;
    executor.member_finished();
    let read = match read {
        Err(ReadFailure::LoginRefused(message)) => {
            let m = message.clone();
            store
                .write(move |c| c.finish_audit(id, AuditRunStatus::Failed, Some(&m), Utc::now()))
                .await?;
            return Err(AuditError::LoginRefused(message));
        }
        Err(ReadFailure::Other(message)) => Err(message),
        Ok(read) => Ok(read),
    };
    let read_ms = read_started.elapsed().as_millis() as u64;
    let knvb = member.knvb_id.clone();
    let since = run.started_at;
    let context = store
        .read(move |c| c.audit_member_context(&knvb, since))
        .await?;
    let mut done = compare(&catalogue, &member, &read, &context);
    done.read_ms = read_ms;
    done.busy_ms = started.elapsed().as_millis() as u64;
    let state = done.sportlink_state;
    let knvb = member.knvb_id.clone();
    match store
        .write(move |c| c.finish_audit_member(id, &knvb, &done, Utc::now()))
        .await
    {
        Ok(()) => {}
        // Cancelled while this member was read: nothing more to record.
        Err(StoreError::Rejected(_)) => return Ok(StepOutcome::Stopped),
        Err(e) => return Err(e.into()),
    }
    tracing::debug!(audit = id, knvb_id = %member.knvb_id, state, read_ms, "audit: member read");
    Ok(StepOutcome::Member {
        audit_id: id,
        knvb_id: member.knvb_id,
        sportlink_state: state,
    })
}

enum ReadFailure {
    LoginRefused(String),
    Other(String),
}

async fn read_with_retry<D: SportlinkDriver>(
    executor: &mut Executor<D>,
    knvb_id: &KnvbId,
    catalogue: &Catalogue,
) -> Result<SportlinkRead, ReadFailure> {
    let mut last = String::new();
    for attempt in 1..=READ_ATTEMPTS {
        match executor
            .driver_mut()
            .audit_read(knvb_id.as_str(), catalogue)
            .await
        {
            Ok(read) => return Ok(read),
            Err(e) if e.is_login_refused() => return Err(ReadFailure::LoginRefused(chain(&e))),
            Err(e) => {
                last = chain(&e);
                tracing::info!(knvb_id = %knvb_id, attempt, error = %last, "audit: reading the member failed");
                if matches!(e, DriverError::AuditUnsupported) {
                    break;
                }
                if e.is_session_expired() {
                    if let Err(e) = executor.driver_mut().relogin().await {
                        if e.is_login_refused() {
                            return Err(ReadFailure::LoginRefused(chain(&e)));
                        }
                    }
                }
            }
        }
    }
    Err(ReadFailure::Other(last))
}

fn chain(e: &dyn std::error::Error) -> String {
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

/// The run's members: every person Rondo Club lists with a usable `knvb-id` (fresh, when a client
/// is given), plus every member the service has a record of that the listing lacks.
pub async fn list_members(
    store: &Store,
    rondo: Option<&RondoClient>,
    audit_id: i64,
    cancel: &CancellationToken,
) -> Result<u64, AuditError> {
    let (source, members) = match rondo {
        Some(client) => (
            RondoSource::Rest,
            list_rondo_club(store.catalogue(), client, cancel).await?,
        ),
        None => (
            RondoSource::Stored,
            store.read(|c| c.stored_members_for_audit()).await?,
        ),
    };
    let total = store
        .write(move |c| c.record_audit_listing(audit_id, source, &members, Utc::now()))
        .await?;
    Ok(total)
}

async fn list_rondo_club(
    catalogue: &Catalogue,
    client: &RondoClient,
    cancel: &CancellationToken,
) -> Result<Vec<AuditMember>, AuditError> {
    // A wrong application password reads as anonymous: never list without knowing who we are.
    client.whoami().await?;
    let mut members = Vec::new();
    let mut page = 1;
    loop {
        if cancel.is_cancelled() || page > MAX_PAGES {
            break;
        }
        let Some(answer) = client.people_page(None, page).await? else {
            break;
        };
        let count = answer.people.len();
        for raw in &answer.people {
            let person = match Person::from_json(raw) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "audit: a person Rondo Club listed is unusable");
                    continue;
                }
            };
            let Some(knvb_id) = person.knvb_id() else {
                continue;
            };
            let mut values = detect::extract(catalogue, &person);
            // A value Rondo Club's answer cannot give is unknown, not empty.
            for field in detect::unreadable_fields(catalogue, &person) {
                values.remove(&field);
            }
            members.push(AuditMember {
                knvb_id,
                in_rondo_club: true,
                wp_post_id: person.id,
                values: Some(values),
                modified_gmt: person.modified_gmt,
            });
        }
        let last = answer.total_pages.is_some_and(|n| page >= n) || count == 0;
        if last {
            break;
        }
        page += 1;
    }
    Ok(members)
}

/// The audit in the daemon: the executor's loop asks it, between runs, whether a unit is due.
#[derive(Debug, Clone, Default)]
pub struct AuditLoop {
    rondo: Option<RondoClient>,
    /// The scheduled run's interval (`None`: off).
    every: Option<Duration>,
    next_scheduled: Option<Instant>,
    scheduled_known: bool,
}

impl AuditLoop {
    /// `every`: `sportlink.audit_interval_hours` (`None`: no scheduled audit).
    pub fn new(rondo: Option<RondoClient>, every: Option<Duration>) -> Self {
        Self {
            rondo,
            every,
            next_scheduled: None,
            scheduled_known: false,
        }
    }

    pub fn rondo(&self) -> Option<&RondoClient> {
        self.rondo.as_ref()
    }

    /// When the next scheduled run is due (`None`: no schedule). The first is due
    /// `every` after the last scheduled run started (at once if there never was one).
    pub async fn next_scheduled(&mut self, store: &Store) -> Option<Instant> {
        let every = self.every?;
        if !self.scheduled_known {
            match store.read(|c| c.last_scheduled_audit_start()).await {
                Ok(last) => {
                    let since = last
                        .map(|t| (Utc::now() - t).to_std().unwrap_or(Duration::ZERO))
                        .unwrap_or(every);
                    self.next_scheduled = Some(Instant::now() + every.saturating_sub(since));
                    self.scheduled_known = true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read when the last scheduled audit ran");
                    return None;
                }
            }
        }
        self.next_scheduled
    }

    /// Start the scheduled run when it is due (unless one is unfinished).
    pub async fn start_if_due(&mut self, store: &Store) {
        let (Some(every), Some(due)) = (self.every, self.next_scheduled(store).await) else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        self.next_scheduled = Some(Instant::now() + every);
        match start_or_resume(store, AuditTrigger::Schedule).await {
            Ok(run) => tracing::info!(audit = run.id, "scheduled audit running"),
            Err(e) => tracing::warn!(error = %e, "cannot start the scheduled audit"),
        }
    }

    /// Whether an unfinished run waits for its next unit.
    pub async fn has_work(&self, store: &Store) -> bool {
        match store.read(|c| c.active_audit()).await {
            Ok(run) => run.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit's state");
                false
            }
        }
    }

    /// One unit, logged (the daemon goes on whatever it came to).
    pub async fn step<D: SportlinkDriver>(
        &self,
        executor: &mut Executor<D>,
        cancel: &CancellationToken,
    ) -> StepOutcome {
        match step(executor, self.rondo.as_ref(), cancel).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "audit step failed");
                StepOutcome::Stopped
            }
        }
    }
}

#[cfg(test)]
mod tests;
