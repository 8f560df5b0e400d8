//! A run's members: listing them (from Rondo Club, or the service's own records), the ones still
//! to read, what comparing one needs from the service's records, and recording its verdicts.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{
    corrupt, AuditMember, AuditMemberContext, AuditMemberDone, AuditRunStatus, RondoSource,
};
use crate::detect::TrackedValues;
use crate::domain::{ChangeId, KnvbId};
use crate::store::{parse_opt_ts, parse_ts, ts, Conn, Result, StoreError};

impl Conn<'_> {
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
        rondo_source: RondoSource,
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
        let status: Option<AuditRunStatus> = self
            .conn
            .prepare_cached("SELECT status FROM audit_runs WHERE id = ?1")?
            .query_row([audit_id], |r| r.get(0))
            .optional()?;
        if status != Some(AuditRunStatus::Reading) {
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
}
