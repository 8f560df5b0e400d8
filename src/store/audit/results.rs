//! A run's verdicts: counts, the rows by member and field, and queueing rows that differ as
//! changes.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{AuditResult, AuditVerdict, QueuedRow};
use crate::domain::FieldName;
use crate::store::{parse_opt_ts, ts, Conn, Result};

impl Conn<'_> {
    /// Verdict counts of a run.
    pub fn audit_counts(&self, audit_id: i64) -> Result<Vec<(AuditVerdict, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT verdict, COUNT(*) FROM audit_results WHERE audit_id = ?1
             GROUP BY verdict ORDER BY verdict",
        )?;
        let rows = stmt
            .query_map([audit_id], |r| {
                Ok((
                    r.get::<_, AuditVerdict>(0)?,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A run's verdicts (all, or those of the given kinds), by member and field.
    pub fn audit_results(
        &self,
        audit_id: i64,
        verdicts: &[AuditVerdict],
        limit: u32,
        offset: u32,
    ) -> Result<Vec<AuditResult>> {
        let filter = if verdicts.is_empty() {
            String::new()
        } else {
            // The words are the type's own: nothing to quote.
            let list: Vec<String> = verdicts.iter().map(|v| format!("'{v}'")).collect();
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
                        r.get::<_, AuditVerdict>(4)?,
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
                        r.get::<_, AuditVerdict>(2)?,
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
            let (Some(field), AuditVerdict::Differs) = (field, verdict) else {
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
