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
//! around it.

pub mod cli;

use std::collections::BTreeMap;
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
    AuditMember, AuditMemberContext, AuditMemberDone, AuditResult, AuditRun, NewAuditResult, Store,
    StoreError,
};

pub use crate::sportlink::read::SportlinkRead;

/// Attempts at reading one member before it is recorded as an error.
const READ_ATTEMPTS: u32 = 2;
/// Safety stop for a Rondo Club whose page count keeps growing.
const MAX_PAGES: u32 = 10_000;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Cli,
    Api,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Cli => "cli",
            Trigger::Api => "api",
            Trigger::Schedule => "schedule",
        }
    }
}

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
pub async fn start_or_resume(store: &Store, trigger: Trigger) -> Result<AuditRun, StoreError> {
    store
        .write(move |c| match c.active_audit()? {
            Some(run) => Ok(run),
            None => c.start_audit(trigger.as_str(), Utc::now()),
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
    if run.status == "listing" {
        let members = match list_members(&store, rondo, run.id, cancel).await {
            Ok(n) => n,
            Err(e) => {
                let message = e.to_string();
                tracing::error!(audit = run.id, error = %message, "the audit could not list members");
                let id = run.id;
                store
                    .write(move |c| c.finish_audit(id, "failed", Some(&message), Utc::now()))
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
            .write(move |c| c.finish_audit(id, "completed", None, Utc::now()))
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
                .write(move |c| c.finish_audit(id, "failed", Some(&m), Utc::now()))
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
            "rest",
            list_rondo_club(store.catalogue(), client, cancel).await?,
        ),
        None => (
            "stored",
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

/// The verdicts for one member (pure): Sportlink's read against Rondo Club's values.
pub fn compare(
    catalogue: &Catalogue,
    member: &AuditMember,
    read: &Result<SportlinkRead, String>,
    context: &AuditMemberContext,
) -> AuditMemberDone {
    let mut done = AuditMemberDone {
        sportlink_state: "found",
        error: None,
        results: Vec::new(),
        read_ms: 0,
        busy_ms: 0,
    };
    let (rondo_values, rondo_modified) = match (&context.newer_baseline, member.in_rondo_club) {
        (Some((values, modified)), true) => {
            (Some(values.clone()), modified.or(member.modified_gmt))
        }
        (_, true) => (member.values.clone(), member.modified_gmt),
        (_, false) => (None, None),
    };
    let found = match read {
        Err(message) => {
            done.sportlink_state = "error";
            done.error = Some(message.clone());
            done.results.push(NewAuditResult {
                verdict: "unreadable",
                detail: Some(format!("reading the member in Sportlink failed: {message}")),
                ..Default::default()
            });
            return done;
        }
        Ok(SportlinkRead::Unknown { detail }) => {
            done.sportlink_state = "unknown";
            let detail = if member.in_rondo_club {
                detail.clone()
            } else {
                format!("{detail}; Rondo Club does not list the member either")
            };
            done.results.push(NewAuditResult {
                verdict: "unknown_in_sportlink",
                detail: Some(detail),
                ..Default::default()
            });
            return done;
        }
        Ok(SportlinkRead::Found { former, values, .. }) => {
            if *former {
                done.sportlink_state = "former";
            }
            values
        }
    };
    let Some(rondo_values) = rondo_values else {
        done.results.push(NewAuditResult {
            verdict: "unknown_in_rondo_club",
            detail: Some(
                "Sportlink has the member; Rondo Club does not list it (the service saw it before)"
                    .into(),
            ),
            ..Default::default()
        });
        return done;
    };
    let former_note =
        (done.sportlink_state == "former").then_some("Sportlink shows \"Oud bondslid\"");
    for spec in catalogue.fields() {
        let name = &spec.name;
        let (sportlink_modified, field_rc_modified) = context
            .timestamps
            .get(name)
            .copied()
            .unwrap_or((None, None));
        let rondo = rondo_values.get(name).cloned();
        let mut result = NewAuditResult {
            field: Some(name.clone()),
            rondo_club_value: rondo.clone(),
            ..Default::default()
        };
        match (found.get(name), rondo) {
            (None, _) | (Some(Err(_)), _) => {
                result.verdict = "unreadable";
                result.detail = Some(match found.get(name) {
                    Some(Err(why)) => format!("Sportlink: {why}"),
                    _ => "Sportlink: not read".into(),
                });
            }
            (Some(Ok(_)), None) => {
                result.verdict = "unreadable";
                result.detail = Some("Rondo Club's answer does not give this field".into());
            }
            (Some(Ok(raw)), Some(rondo)) => {
                let sportlink = spec.kind.normalise(raw);
                result.sportlink_value = Some(sportlink.clone());
                if sportlink == spec.kind.normalise(&rondo) {
                    result.verdict = "equal";
                } else if let Some((id, _, new)) =
                    context.pending.iter().find(|(_, f, _)| f == name)
                {
                    result.verdict = "differs_pending";
                    result.pending_change_id = Some(*id);
                    result.detail = Some(format!("change {id} is pending (new value {new:?})"));
                } else {
                    result.verdict = "differs";
                    result.sportlink_modified = sportlink_modified;
                    result.rondo_club_modified = field_rc_modified.or(rondo_modified);
                }
            }
        }
        if let Some(note) = former_note {
            result.detail = Some(match result.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note.to_owned(),
            });
        }
        done.results.push(result);
    }
    done
}

/// A run's verdicts as CSV (RFC 4180, header line). A cell that a spreadsheet would run as a
/// formula gets a leading `'`; phone numbers (`+31…`) stay as they are.
pub fn to_csv(results: &[AuditResult]) -> String {
    let mut out = String::from(
        "audit_id,knvb_id,field,verdict,sportlink_value,rondo_club_value,sportlink_modified,\
         rondo_club_modified,pending_change_id,queued_change_id,detail,row_id\r\n",
    );
    let ts = |t: Option<chrono::DateTime<Utc>>| t.map(crate::store::ts).unwrap_or_default();
    for r in results {
        let cells = [
            r.audit_id.to_string(),
            r.knvb_id.clone(),
            r.field.as_deref().unwrap_or_default().to_owned(),
            r.verdict.clone(),
            r.sportlink_value.clone().unwrap_or_default(),
            r.rondo_club_value.clone().unwrap_or_default(),
            ts(r.sportlink_modified),
            ts(r.rondo_club_modified),
            r.pending_change_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            r.queued_change_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
            r.id.to_string(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str) -> String {
    let looks_like_number = |s: &str| {
        s.len() > 1
            && s[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '.' || c == '-')
    };
    let formula = match value.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !looks_like_number(value),
        _ => false,
    };
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One line of progress: members done of all, and the estimate of the time left.
pub fn progress_line(run: &AuditRun) -> String {
    let left = run
        .estimated_ms_left()
        .map(|ms| format!(", about {} left", human_duration(Duration::from_millis(ms))))
        .unwrap_or_default();
    format!(
        "audit {}: {}, {} of {} members{left}",
        run.id, run.status, run.members_done, run.members_total
    )
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
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
        match start_or_resume(store, Trigger::Schedule).await {
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

/// Verdict counts as `verdict: n` pairs, in a fixed order.
pub fn summary(counts: &[(String, u64)]) -> String {
    let map: BTreeMap<&str, u64> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    [
        "equal",
        "differs",
        "differs_pending",
        "unknown_in_sportlink",
        "unknown_in_rondo_club",
        "unreadable",
    ]
    .iter()
    .map(|k| format!("{k}: {}", map.get(k).copied().unwrap_or(0)))
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests;
