//! The divergence audit's tables (`migrations/0005_audit.sql`): runs, the members each run covers
//! (done or still to read: what makes a run resumable), and the verdict per member and field.
//! Here the rows' types and a run's life (start, end, cancel); a run's members in `members`, its
//! verdicts and queueing them as changes in `results`.

mod members;
mod results;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result, StoreError};
use crate::detect::TrackedValues;
use crate::domain::{ChangeId, FieldName, KnvbId};

/// Where an audit run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditRunStatus {
    /// Its members are being listed (from Rondo Club or the service's records).
    Listing,
    /// Its members are being read in Sportlink, one at a time.
    Reading,
    Completed,
    /// Cancelled by the operator; the verdicts so far are kept.
    Cancelled,
    /// Stopped by an error (the run's `error` says which).
    Failed,
}

impl AuditRunStatus {
    pub const ALL: [AuditRunStatus; 5] = [
        AuditRunStatus::Listing,
        AuditRunStatus::Reading,
        AuditRunStatus::Completed,
        AuditRunStatus::Cancelled,
        AuditRunStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditRunStatus::Listing => "listing",
            AuditRunStatus::Reading => "reading",
            AuditRunStatus::Completed => "completed",
            AuditRunStatus::Cancelled => "cancelled",
            AuditRunStatus::Failed => "failed",
        }
    }

    /// Still to finish.
    pub fn is_active(self) -> bool {
        matches!(self, AuditRunStatus::Listing | AuditRunStatus::Reading)
    }
}

/// What the audit found for one member and field (or the whole member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditVerdict {
    /// Sportlink and Rondo Club hold the same value.
    Equal,
    /// They differ, and no change is pending for the field.
    Differs,
    /// They differ while a change is pending for the field (it will close the gap).
    DiffersPending,
    /// Sportlink does not know the member.
    UnknownInSportlink,
    /// Sportlink has the member; Rondo Club does not list it.
    UnknownInRondoClub,
    /// One side's value could not be read.
    Unreadable,
}

impl AuditVerdict {
    /// In the order people read the counts (see `audit::summary`).
    pub const ALL: [AuditVerdict; 6] = [
        AuditVerdict::Equal,
        AuditVerdict::Differs,
        AuditVerdict::DiffersPending,
        AuditVerdict::UnknownInSportlink,
        AuditVerdict::UnknownInRondoClub,
        AuditVerdict::Unreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditVerdict::Equal => "equal",
            AuditVerdict::Differs => "differs",
            AuditVerdict::DiffersPending => "differs_pending",
            AuditVerdict::UnknownInSportlink => "unknown_in_sportlink",
            AuditVerdict::UnknownInRondoClub => "unknown_in_rondo_club",
            AuditVerdict::Unreadable => "unreadable",
        }
    }
}

/// Who started an audit run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditTrigger {
    Cli,
    Api,
    Schedule,
}

impl AuditTrigger {
    pub const ALL: [AuditTrigger; 3] =
        [AuditTrigger::Cli, AuditTrigger::Api, AuditTrigger::Schedule];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditTrigger::Cli => "cli",
            AuditTrigger::Api => "api",
            AuditTrigger::Schedule => "schedule",
        }
    }
}

/// Where an audit run took Rondo Club's state from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RondoSource {
    /// Fresh from Rondo Club's REST API.
    Rest,
    /// The state the service last saw (Rondo Club is not configured).
    Stored,
}

impl RondoSource {
    pub const ALL: [RondoSource; 2] = [RondoSource::Rest, RondoSource::Stored];

    pub fn as_str(self) -> &'static str {
        match self {
            RondoSource::Rest => "rest",
            RondoSource::Stored => "stored",
        }
    }
}

crate::domain::stored_word!(AuditRunStatus, AuditVerdict, AuditTrigger, RondoSource);

/// One audit run, as the API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRun {
    pub id: i64,
    pub status: AuditRunStatus,
    pub trigger: AuditTrigger,
    /// Known once the members are listed.
    pub rondo_source: Option<RondoSource>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub members_total: u64,
    pub members_done: u64,
    /// Time spent on the members done so far (pacing included), in milliseconds.
    pub busy_ms: u64,
    pub error: Option<String>,
}

impl AuditRun {
    /// Still to finish (listing or reading).
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// The time the members left will take at this run's pace so far (`None` before the first
    /// member is done).
    pub fn estimated_ms_left(&self) -> Option<u64> {
        if self.members_done == 0 {
            return None;
        }
        let left = self.members_total.saturating_sub(self.members_done);
        Some(self.busy_ms / self.members_done * left)
    }
}

/// A member to read, with what Rondo Club said of it when the run listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditMember {
    pub knvb_id: KnvbId,
    /// Listed by Rondo Club (else only in the service's own records).
    pub in_rondo_club: bool,
    pub wp_post_id: Option<i64>,
    pub values: Option<TrackedValues>,
    pub modified_gmt: Option<DateTime<Utc>>,
}

/// What the service knows of a member when its audit row is written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditMemberContext {
    /// Pending changes: (id, field, new value).
    pub pending: Vec<(ChangeId, FieldName, String)>,
    /// The stored baseline, when it was seen after the given time (a webhook during the run).
    pub newer_baseline: Option<(TrackedValues, Option<DateTime<Utc>>)>,
    /// Per field: (`{field}_sportlink_modified`, `{field}_rondo_club_modified`).
    pub timestamps: std::collections::BTreeMap<FieldName, super::FieldTimestamps>,
}

/// One verdict of an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditResult {
    pub id: i64,
    pub audit_id: i64,
    pub knvb_id: String,
    /// `None` for a verdict about the whole member.
    pub field: Option<FieldName>,
    pub verdict: AuditVerdict,
    pub sportlink_value: Option<String>,
    pub rondo_club_value: Option<String>,
    pub sportlink_modified: Option<DateTime<Utc>>,
    pub rondo_club_modified: Option<DateTime<Utc>>,
    pub pending_change_id: Option<i64>,
    pub detail: Option<String>,
    pub queued_change_id: Option<i64>,
    pub queued_at: Option<DateTime<Utc>>,
    pub queued_by: Option<String>,
}

/// A verdict to record (see [`AuditResult`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditResult {
    pub field: Option<FieldName>,
    pub verdict: AuditVerdict,
    pub sportlink_value: Option<String>,
    pub rondo_club_value: Option<String>,
    pub sportlink_modified: Option<DateTime<Utc>>,
    pub rondo_club_modified: Option<DateTime<Utc>>,
    pub pending_change_id: Option<ChangeId>,
    pub detail: Option<String>,
}

impl NewAuditResult {
    /// A verdict with nothing else known yet.
    pub fn new(verdict: AuditVerdict) -> Self {
        Self {
            field: None,
            verdict,
            sportlink_value: None,
            rondo_club_value: None,
            sportlink_modified: None,
            rondo_club_modified: None,
            pending_change_id: None,
            detail: None,
        }
    }
}

/// What reading one member came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMemberDone {
    /// found, former, unknown, error.
    pub sportlink_state: &'static str,
    pub error: Option<String>,
    pub results: Vec<NewAuditResult>,
    pub read_ms: u64,
    /// Time this member cost the run, pacing included.
    pub busy_ms: u64,
}

/// What queueing one audit row as a change came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueuedRow {
    pub result_id: i64,
    /// The change row created, when it was.
    pub change_id: Option<i64>,
    /// Why it was not queued.
    pub refused: Option<String>,
}

const RUN_COLUMNS: &str = "id, status, trigger, rondo_source, started_at, finished_at, \
     members_total, members_done, busy_ms, error";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        id: r.get(0)?,
        status: r.get(1)?,
        trigger: r.get(2)?,
        rondo_source: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        members_total: r.get(6)?,
        members_done: r.get(7)?,
        busy_ms: r.get(8)?,
        error: r.get(9)?,
    })
}

struct RawRun {
    id: i64,
    status: AuditRunStatus,
    trigger: AuditTrigger,
    rondo_source: Option<RondoSource>,
    started_at: String,
    finished_at: Option<String>,
    members_total: i64,
    members_done: i64,
    busy_ms: i64,
    error: Option<String>,
}

impl RawRun {
    fn parse(self) -> Result<AuditRun> {
        Ok(AuditRun {
            id: self.id,
            status: self.status,
            trigger: self.trigger,
            rondo_source: self.rondo_source,
            started_at: parse_ts(&self.started_at)?,
            finished_at: parse_opt_ts(self.finished_at)?,
            members_total: self.members_total.max(0) as u64,
            members_done: self.members_done.max(0) as u64,
            busy_ms: self.busy_ms.max(0) as u64,
            error: self.error,
        })
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: e.to_string(),
    }
}

impl Conn<'_> {
    /// A new audit run (status `listing`). Refused while another run is unfinished: one audit at
    /// a time, through the one browser.
    pub fn start_audit(&self, trigger: AuditTrigger, now: DateTime<Utc>) -> Result<AuditRun> {
        if let Some(active) = self.active_audit()? {
            return Err(StoreError::Rejected(format!(
                "audit {} is still {}; cancel it or let it finish first",
                active.id, active.status
            )));
        }
        self.conn
            .prepare_cached(
                "INSERT INTO audit_runs (status, trigger, started_at, updated_at)
                 VALUES ('listing', ?1, ?2, ?2)",
            )?
            .execute(params![trigger, ts(now)])?;
        let id = self.conn.last_insert_rowid();
        self.audit_run(id)?
            .ok_or_else(|| StoreError::NotFound(format!("audit {id}")))
    }

    /// The unfinished run, if any (at most one).
    pub fn active_audit(&self) -> Result<Option<AuditRun>> {
        let raw = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM audit_runs WHERE status IN ('listing', 'reading')
                 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([], run_from_row)
            .optional()?;
        raw.map(RawRun::parse).transpose()
    }

    pub fn audit_run(&self, id: i64) -> Result<Option<AuditRun>> {
        let raw = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM audit_runs WHERE id = ?1"
            ))?
            .query_row([id], run_from_row)
            .optional()?;
        raw.map(RawRun::parse).transpose()
    }

    /// Runs, newest first.
    pub fn list_audits(&self, limit: u32) -> Result<Vec<AuditRun>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM audit_runs ORDER BY id DESC LIMIT ?1"
        ))?;
        let raws = stmt
            .query_map([limit], run_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        raws.into_iter().map(RawRun::parse).collect()
    }

    /// When the last run by the schedule started.
    pub fn last_scheduled_audit_start(&self) -> Result<Option<DateTime<Utc>>> {
        let raw: Option<String> = self
            .conn
            .prepare_cached("SELECT MAX(started_at) FROM audit_runs WHERE trigger = 'schedule'")?
            .query_row([], |r| r.get(0))?;
        raw.as_deref().map(parse_ts).transpose()
    }

    /// Ends a run (completed, failed) unless it already ended.
    pub fn finish_audit(
        &self,
        audit_id: i64,
        status: AuditRunStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE audit_runs SET status = ?2, error = ?3, finished_at = ?4, updated_at = ?4
                 WHERE id = ?1 AND status IN ('listing', 'reading')",
            )?
            .execute(params![audit_id, status, error, ts(now)])?;
        Ok(n == 1)
    }

    /// Cancels an unfinished run; its verdicts so far are kept. False when it had ended.
    pub fn cancel_audit(&self, audit_id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.finish_audit(audit_id, AuditRunStatus::Cancelled, None, now)
    }

    /// (members read, their Sportlink reading time in milliseconds) of a run, for measurements.
    pub fn audit_read_time(&self, audit_id: i64) -> Result<(u64, u64)> {
        let (n, ms): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(read_ms), 0) FROM audit_members
                 WHERE audit_id = ?1 AND state = 'done'",
            )?
            .query_row([audit_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((n.max(0) as u64, ms.max(0) as u64))
    }
}
