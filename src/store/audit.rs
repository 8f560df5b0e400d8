//! The divergence audit's tables (`migrations/0005_audit.sql`): runs, the members each run covers
//! (done or still to read: what makes a run resumable), and the verdict per member and field.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result, StoreError};
use crate::detect::TrackedValues;
use crate::domain::{ChangeId, FieldName, KnvbId};

/// One audit run, as the API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRun {
    pub id: i64,
    /// listing, reading, completed, cancelled, failed.
    pub status: String,
    /// cli, api, schedule.
    pub trigger: String,
    /// rest (fresh from Rondo Club's REST API) or stored (the service's last seen state).
    pub rondo_source: Option<String>,
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
        matches!(self.status.as_str(), "listing" | "reading")
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
    /// equal, differs_pending, differs, unknown_in_sportlink, unknown_in_rondo_club, unreadable.
    pub verdict: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAuditResult {
    pub field: Option<FieldName>,
    pub verdict: &'static str,
    pub sportlink_value: Option<String>,
    pub rondo_club_value: Option<String>,
    pub sportlink_modified: Option<DateTime<Utc>>,
    pub rondo_club_modified: Option<DateTime<Utc>>,
    pub pending_change_id: Option<ChangeId>,
    pub detail: Option<String>,
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
    status: String,
    trigger: String,
    rondo_source: Option<String>,
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
    pub fn start_audit(&self, trigger: &str, now: DateTime<Utc>) -> Result<AuditRun> {
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

    /// Every member the service has a record of, with its stored state (the audit's members
    /// when Rondo Club is not configured, and those Rondo Club no longer lists otherwise).
    pub fn stored_members_for_audit(&self) -> Result<Vec<AuditMember>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT knvb_id, wp_post_id, baseline_json, rondo_club_modified_gmt
             FROM rondo_club_members ORDER BY knvb_id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(knvb, post, json, modified)| {
                let knvb_id = KnvbId::parse(&knvb).map_err(|e| corrupt("member id", e))?;
                let values: TrackedValues =
                    serde_json::from_str(&json).map_err(|e| corrupt("baseline", e))?;
                Ok(AuditMember {
                    knvb_id,
                    in_rondo_club: true,
                    wp_post_id: post,
                    values: Some(values),
                    modified_gmt: parse_opt_ts(modified)?,
                })
            })
            .collect()
    }

    /// The run's members (replacing any from an interrupted listing); the run goes on to
    /// `reading`. Members in the service's records that the listing lacks are added as
    /// unknown to Rondo Club.
    pub fn record_audit_listing(
        &self,
        audit_id: i64,
        rondo_source: &str,
        members: &[AuditMember],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.conn
            .prepare_cached("DELETE FROM audit_results WHERE audit_id = ?1")?
            .execute([audit_id])?;
        self.conn
            .prepare_cached("DELETE FROM audit_members WHERE audit_id = ?1")?
            .execute([audit_id])?;
        let mut insert = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO audit_members (audit_id, knvb_id, in_rondo_club, wp_post_id,
                 rondo_values_json, rondo_modified_gmt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for m in members {
            let values = m
                .values
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| corrupt("audit values", e))?;
            insert.execute(params![
                audit_id,
                m.knvb_id.as_str(),
                m.in_rondo_club,
                m.wp_post_id,
                values,
                m.modified_gmt.map(ts),
            ])?;
        }
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO audit_members (audit_id, knvb_id, in_rondo_club, wp_post_id)
                 SELECT ?1, knvb_id, 0, wp_post_id FROM rondo_club_members",
            )?
            .execute([audit_id])?;
        let total: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM audit_members WHERE audit_id = ?1")?
            .query_row([audit_id], |r| r.get(0))?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE audit_runs SET status = 'reading', rondo_source = ?2, members_total = ?3,
                     members_done = 0, busy_ms = 0, updated_at = ?4
                 WHERE id = ?1 AND status = 'listing'",
            )?
            .execute(params![audit_id, rondo_source, total, ts(now)])?;
        if changed == 0 {
            return Err(StoreError::Rejected(format!(
                "audit {audit_id} is no longer listing (cancelled?)"
            )));
        }
        Ok(total.max(0) as u64)
    }

    /// Members of the run still to read, in id order.
    pub fn audit_members_todo(&self, audit_id: i64, limit: u32) -> Result<Vec<AuditMember>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT knvb_id, in_rondo_club, wp_post_id, rondo_values_json, rondo_modified_gmt
             FROM audit_members WHERE audit_id = ?1 AND state = 'todo'
             ORDER BY knvb_id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![audit_id, limit], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(knvb, in_rc, post, values, modified)| {
                Ok(AuditMember {
                    knvb_id: KnvbId::parse(&knvb).map_err(|e| corrupt("member id", e))?,
                    in_rondo_club: in_rc,
                    wp_post_id: post,
                    values: values
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|e| corrupt("audit values", e))?,
                    modified_gmt: parse_opt_ts(modified)?,
                })
            })
            .collect()
    }

    /// What the comparison of one member needs from the service's own records.
    pub fn audit_member_context(
        &self,
        knvb_id: &KnvbId,
        seen_after: DateTime<Utc>,
    ) -> Result<AuditMemberContext> {
        let mut context = AuditMemberContext::default();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, field_name, new_value FROM rondo_club_change_detections
             WHERE knvb_id = ?1 AND status = 'pending' ORDER BY id",
        )?;
        context.pending = stmt
            .query_map([knvb_id.as_str()], |r| {
                Ok((ChangeId(r.get(0)?), r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let stored = self
            .conn
            .prepare_cached(
                "SELECT baseline_json, last_seen_at, rondo_club_modified_gmt
                 FROM rondo_club_members WHERE knvb_id = ?1",
            )?
            .query_row([knvb_id.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()?;
        if let Some((json, last_seen, modified)) = stored {
            if parse_ts(&last_seen)? > seen_after {
                let values: TrackedValues =
                    serde_json::from_str(&json).map_err(|e| corrupt("baseline", e))?;
                context.newer_baseline = Some((values, parse_opt_ts(modified)?));
            }
            for field in self.catalogue.names() {
                context
                    .timestamps
                    .insert(field.clone(), self.field_timestamps(knvb_id, field)?);
            }
        }
        Ok(context)
    }

    /// Records one member's verdicts and marks it done (replacing verdicts of an earlier,
    /// unrecorded attempt). Refused when the run is no longer reading (cancelled meanwhile).
    pub fn finish_audit_member(
        &self,
        audit_id: i64,
        knvb_id: &KnvbId,
        done: &AuditMemberDone,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let reading: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM audit_runs WHERE id = ?1")?
            .query_row([audit_id], |r| r.get(0))
            .optional()?;
        if reading.as_deref() != Some("reading") {
            return Err(StoreError::Rejected(format!(
                "audit {audit_id} is no longer reading"
            )));
        }
        self.conn
            .prepare_cached("DELETE FROM audit_results WHERE audit_id = ?1 AND knvb_id = ?2")?
            .execute(params![audit_id, knvb_id.as_str()])?;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO audit_results (audit_id, knvb_id, field_name, verdict, sportlink_value,
                 rondo_club_value, sportlink_modified, rondo_club_modified, pending_change_id,
                 detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in &done.results {
            insert.execute(params![
                audit_id,
                knvb_id.as_str(),
                r.field,
                r.verdict,
                r.sportlink_value,
                r.rondo_club_value,
                r.sportlink_modified.map(ts),
                r.rondo_club_modified.map(ts),
                r.pending_change_id.map(|c| c.0),
                r.detail,
            ])?;
        }
        let marked = self
            .conn
            .prepare_cached(
                "UPDATE audit_members SET state = 'done', sportlink_state = ?3, error = ?4,
                     read_at = ?5, read_ms = ?6
                 WHERE audit_id = ?1 AND knvb_id = ?2 AND state = 'todo'",
            )?
            .execute(params![
                audit_id,
                knvb_id.as_str(),
                done.sportlink_state,
                done.error,
                ts(now),
                done.read_ms as i64,
            ])?;
        if marked == 1 {
            self.conn
                .prepare_cached(
                    "UPDATE audit_runs SET members_done = members_done + 1,
                         busy_ms = busy_ms + ?2, updated_at = ?3
                     WHERE id = ?1",
                )?
                .execute(params![audit_id, done.busy_ms as i64, ts(now)])?;
        }
        Ok(())
    }

    /// Ends a run (completed, failed) unless it already ended.
    pub fn finish_audit(
        &self,
        audit_id: i64,
        status: &str,
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
        self.finish_audit(audit_id, "cancelled", None, now)
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

    /// Verdict counts of a run.
    pub fn audit_counts(&self, audit_id: i64) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT verdict, COUNT(*) FROM audit_results WHERE audit_id = ?1
             GROUP BY verdict ORDER BY verdict",
        )?;
        let rows = stmt
            .query_map([audit_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A run's verdicts (all, or those of the given kinds), by member and field.
    pub fn audit_results(
        &self,
        audit_id: i64,
        verdicts: &[String],
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuditResult>> {
        let filter = if verdicts.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = verdicts
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect();
            format!(" AND verdict IN ({})", list.join(", "))
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, audit_id, knvb_id, field_name, verdict, sportlink_value, rondo_club_value,
                    sportlink_modified, rondo_club_modified, pending_change_id, detail,
                    queued_change_id, queued_at, queued_by
             FROM audit_results WHERE audit_id = ?1{filter}
             ORDER BY knvb_id, field_name, id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(params![audit_id, limit, offset], |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<FieldName>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ),
                    (
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                        r.get::<_, Option<String>>(10)?,
                        r.get::<_, Option<i64>>(11)?,
                        r.get::<_, Option<String>>(12)?,
                        r.get::<_, Option<String>>(13)?,
                    ),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(a, b)| {
                Ok(AuditResult {
                    id: a.0,
                    audit_id: a.1,
                    knvb_id: a.2,
                    field: a.3,
                    verdict: a.4,
                    sportlink_value: a.5,
                    rondo_club_value: a.6,
                    sportlink_modified: parse_opt_ts(b.0)?,
                    rondo_club_modified: parse_opt_ts(b.1)?,
                    pending_change_id: b.2,
                    detail: b.3,
                    queued_change_id: b.4,
                    queued_at: parse_opt_ts(b.5)?,
                    queued_by: b.6,
                })
            })
            .collect()
    }

    /// Queues differing rows (verdict `differs`) of a run as changes: Rondo Club's value as the
    /// new value, Sportlink's audited value as the old and expected one, source `replay`. The
    /// executor's conflict guard decides at push time as for any change. A row already queued, a
    /// field with a change pending, or a member the service has no record of is refused.
    pub fn queue_audit_rows(
        &self,
        audit_id: i64,
        result_ids: &[i64],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueuedRow>> {
        let mut out = Vec::with_capacity(result_ids.len());
        for &id in result_ids {
            let row = self
                .conn
                .prepare_cached(
                    "SELECT knvb_id, field_name, verdict, sportlink_value, rondo_club_value,
                            rondo_club_modified, queued_change_id
                     FROM audit_results WHERE id = ?1 AND audit_id = ?2",
                )?
                .query_row(params![id, audit_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<FieldName>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                    ))
                })
                .optional()?;
            let refuse = |why: String| QueuedRow {
                result_id: id,
                change_id: None,
                refused: Some(why),
            };
            let Some((knvb, field, verdict, sportlink, rondo, rc_modified, queued)) = row else {
                out.push(refuse(format!("no row {id} in audit {audit_id}")));
                continue;
            };
            if let Some(change) = queued {
                out.push(refuse(format!("already queued as change {change}")));
                continue;
            }
            let (Some(field), "differs") = (field, verdict.as_str()) else {
                out.push(refuse(format!(
                    "verdict {verdict}: only rows that differ without a pending change are queued"
                )));
                continue;
            };
            if self.catalogue.get(&field).is_none() {
                out.push(refuse(format!(
                    "field {field} is not in the field catalogue"
                )));
                continue;
            }
            let known: bool = self
                .conn
                .prepare_cached("SELECT COUNT(*) > 0 FROM rondo_club_members WHERE knvb_id = ?1")?
                .query_row([&knvb], |r| r.get(0))?;
            if !known {
                out.push(refuse(format!(
                    "member {knvb} has no record in this service (import it with `baseline` or \
                     `detect` first)"
                )));
                continue;
            }
            let pending: Option<i64> = self
                .conn
                .prepare_cached(
                    "SELECT id FROM rondo_club_change_detections
                     WHERE knvb_id = ?1 AND field_name = ?2 AND status = 'pending' LIMIT 1",
                )?
                .query_row(params![knvb, field], |r| r.get(0))
                .optional()?;
            if let Some(change) = pending {
                out.push(refuse(format!(
                    "change {change} is already pending for {field}"
                )));
                continue;
            }
            let sportlink = sportlink.unwrap_or_default();
            let rondo = rondo.unwrap_or_default();
            self.conn
                .prepare_cached(
                    "INSERT INTO rondo_club_change_detections (
                         knvb_id, field_name, old_value, new_value, expected_sportlink_value,
                         detected_at, rondo_club_modified_gmt, source, status, status_reason,
                         updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6, 'replay', 'pending', ?7, ?5)",
                )?
                .execute(params![
                    knvb,
                    field,
                    sportlink,
                    rondo,
                    ts(now),
                    rc_modified,
                    format!("queued from audit {audit_id} by {by}"),
                ])?;
            let change = self.conn.last_insert_rowid();
            self.conn
                .prepare_cached(
                    "UPDATE audit_results SET queued_change_id = ?2, queued_at = ?3, queued_by = ?4
                     WHERE id = ?1",
                )?
                .execute(params![id, change, ts(now), by])?;
            tracing::info!(
                audit = audit_id, row = id, knvb_id = %knvb, field = %field, change, by,
                "audit row queued as a change"
            );
            out.push(QueuedRow {
                result_id: id,
                change_id: Some(change),
                refused: None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalogue::Catalogue;
    use crate::store::{Store, StoreOptions};

    fn member(id: &str) -> AuditMember {
        AuditMember {
            knvb_id: KnvbId::parse(id).unwrap(),
            in_rondo_club: true,
            wp_post_id: None,
            values: Some(TrackedValues::new()),
            modified_gmt: None,
        }
    }

    fn done() -> AuditMemberDone {
        AuditMemberDone {
            sportlink_state: "found",
            error: None,
            results: vec![NewAuditResult {
                field: Some(FieldName::parse("email").unwrap()),
                verdict: "equal",
                ..Default::default()
            }],
            read_ms: 10,
            busy_ms: 20,
        }
    }

    #[tokio::test]
    async fn one_run_at_a_time_resumable_and_a_cancelled_run_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("a.sqlite3"),
            Arc::new(Catalogue::builtin()),
            StoreOptions::default(),
        )
        .unwrap();
        let now = Utc::now();
        let run = store
            .write(move |c| c.start_audit("cli", now))
            .await
            .unwrap();
        let refused = store.write(move |c| c.start_audit("api", now)).await;
        assert!(
            matches!(refused, Err(StoreError::Rejected(_))),
            "{refused:?}"
        );
        let id = run.id;
        let members = vec![member("AAA1"), member("BBB2"), member("CCC3")];
        let total = store
            .write(move |c| c.record_audit_listing(id, "stored", &members, now))
            .await
            .unwrap();
        assert_eq!(total, 3);
        let first = KnvbId::parse("AAA1").unwrap();
        store
            .write(move |c| c.finish_audit_member(id, &first, &done(), now))
            .await
            .unwrap();
        // A member recorded twice (a redo after a kill between the write and the next unit)
        // counts once.
        let first = KnvbId::parse("AAA1").unwrap();
        store
            .write(move |c| c.finish_audit_member(id, &first, &done(), now))
            .await
            .unwrap();
        let todo = store
            .read(move |c| c.audit_members_todo(id, 10))
            .await
            .unwrap();
        let todo: Vec<&str> = todo.iter().map(|m| m.knvb_id.as_str()).collect();
        assert_eq!(todo, ["BBB2", "CCC3"]);
        let run = store.read(move |c| c.audit_run(id)).await.unwrap().unwrap();
        assert_eq!((run.members_done, run.members_total), (1, 3));
        assert_eq!(run.estimated_ms_left(), Some(40));

        assert!(store.write(move |c| c.cancel_audit(id, now)).await.unwrap());
        let second = KnvbId::parse("BBB2").unwrap();
        let late = store
            .write(move |c| c.finish_audit_member(id, &second, &done(), now))
            .await;
        assert!(matches!(late, Err(StoreError::Rejected(_))), "{late:?}");
        let rows = store
            .read(move |c| c.audit_results(id, &[], 100, 0))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(store.read(|c| c.active_audit()).await.unwrap().is_none());
        // A row that does not differ is never queued.
        let row = rows[0].id;
        let queued = store
            .write(move |c| c.queue_audit_rows(id, &[row, 999], "test", now))
            .await
            .unwrap();
        assert!(queued.iter().all(|q| q.change_id.is_none()), "{queued:?}");
    }
}
