//! Change rows after detection: what the executor pushes, how each ends, what the operator sees.
//! Every status change is by row id (lessons.md 11).

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use serde::Serialize;

use super::{parse_opt_ts, parse_ts, ts, Conn, Result, StoreError};
use crate::domain::{ChangeId, ChangeStatus, FieldName, KnvbId, Origin, Source};

/// A change the executor should push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingChange {
    pub id: ChangeId,
    pub knvb_id: KnvbId,
    pub field: FieldName,
    pub old_value: String,
    pub new_value: String,
    /// What Sportlink should hold if nobody changed it there: the conflict guard's "old".
    pub expected_sportlink_value: String,
    pub rondo_club_modified_gmt: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub detected_at: DateTime<Utc>,
}

/// A change row as the operator page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChangeRecord {
    pub id: ChangeId,
    pub knvb_id: String,
    pub field: FieldName,
    pub old_value: String,
    pub new_value: String,
    pub source: Source,
    pub status: ChangeStatus,
    pub status_reason: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<ChangeId>,
    pub detected_at: DateTime<Utc>,
    pub synced_at: Option<DateTime<Utc>>,
    pub delivery_id: Option<String>,
    pub detection_run_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChangeStatusCounts {
    pub pending: u64,
    pub synced: u64,
    pub superseded: u64,
    pub conflict_lost: u64,
    pub skipped: u64,
    pub failed: u64,
}

pub(super) const RECORD_COLUMNS: &str =
    "id, knvb_id, field_name, old_value, new_value, source, status,
    status_reason, attempts, last_error, next_attempt_at, superseded_by, detected_at, synced_at,
    delivery_id, detection_run_id";

pub(super) fn record(
    r: &Row<'_>,
) -> rusqlite::Result<(ChangeRecord, String, Option<String>, Option<String>)> {
    Ok((
        ChangeRecord {
            id: ChangeId(r.get(0)?),
            knvb_id: r.get(1)?,
            field: r.get(2)?,
            old_value: r.get(3)?,
            new_value: r.get(4)?,
            source: r.get(5)?,
            status: r.get(6)?,
            status_reason: r.get(7)?,
            attempts: r.get(8)?,
            last_error: r.get(9)?,
            next_attempt_at: None,
            superseded_by: r.get::<_, Option<i64>>(11)?.map(ChangeId),
            detected_at: Utc::now(),
            synced_at: None,
            delivery_id: r.get(14)?,
            detection_run_id: r.get(15)?,
        },
        r.get(12)?,
        r.get(10)?,
        r.get(13)?,
    ))
}

pub(super) fn finish(
    raw: (ChangeRecord, String, Option<String>, Option<String>),
) -> Result<ChangeRecord> {
    let (mut rec, detected, next, synced) = raw;
    rec.detected_at = parse_ts(&detected)?;
    rec.next_attempt_at = parse_opt_ts(next)?;
    rec.synced_at = parse_opt_ts(synced)?;
    Ok(rec)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Conn<'_> {
    /// Members with a pending change that is due now, oldest first.
    pub fn due_members(
        &self,
        now: DateTime<Utc>,
        only: Option<&KnvbId>,
        limit: usize,
    ) -> Result<Vec<KnvbId>> {
        let mut stmt = self.conn.prepare(
            "SELECT knvb_id FROM rondo_club_change_detections
             WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
               AND (?2 IS NULL OR knvb_id = ?2)
             GROUP BY knvb_id ORDER BY MIN(id) LIMIT ?3",
        )?;
        let ids = stmt
            .query_map(
                params![ts(now), only.map(KnvbId::as_str), limit as i64],
                |r| r.get::<_, String>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.into_iter()
            .map(|raw| {
                KnvbId::parse(&raw).map_err(|e| StoreError::Corrupt {
                    what: "knvb_id".into(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// When the next pending change becomes due (for the executor's timer).
    pub fn next_due_at(&self) -> Result<Option<DateTime<Utc>>> {
        let raw: Option<String> = self.conn.query_row(
            "SELECT MIN(COALESCE(next_attempt_at, detected_at)) FROM rondo_club_change_detections
             WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        parse_opt_ts(raw)
    }

    /// A member's pending changes, one per field (detection supersedes older ones), by id.
    pub fn pending_changes(&self, knvb_id: &KnvbId) -> Result<Vec<PendingChange>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, field_name, old_value, new_value, expected_sportlink_value,
                    rondo_club_modified_gmt, attempts, detected_at
             FROM rondo_club_change_detections
             WHERE knvb_id = ?1 AND status = 'pending' ORDER BY id",
        )?;
        let rows = stmt
            .query_map([knvb_id.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, FieldName>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(id, field, old, new, expected, modified, attempts, detected)| {
                    Ok(PendingChange {
                        id: ChangeId(id),
                        knvb_id: knvb_id.clone(),
                        field,
                        old_value: old,
                        new_value: new,
                        expected_sportlink_value: expected,
                        rondo_club_modified_gmt: parse_opt_ts(modified)?,
                        attempts,
                        detected_at: parse_ts(&detected)?,
                    })
                },
            )
            .collect()
    }

    /// Marks verified changes synced, by id, with the member's `{field}_sportlink_modified` and
    /// `sync_origin`. A change that a newer edit superseded while it was being pushed is still
    /// marked synced (it was written and verified), and the newer change learns that Sportlink now
    /// holds its value. Returns how many rows were marked.
    pub fn mark_synced(&self, ids: &[ChangeId], now: DateTime<Utc>) -> Result<usize> {
        let mut marked = 0;
        for id in ids {
            let row: Option<(String, FieldName, String, String)> = self
                .conn
                .query_row(
                    "SELECT knvb_id, field_name, new_value, status
                     FROM rondo_club_change_detections WHERE id = ?1",
                    [id.0],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((knvb_id, field, new_value, status)) = row else {
                return Err(StoreError::NotFound(format!("change {id}")));
            };
            if !matches!(status.as_str(), "pending" | "superseded") {
                continue;
            }
            if self.catalogue.get(&field).is_none() {
                return Err(StoreError::Rejected(format!(
                    "change {id} is for field {field:?}, which the catalogue does not know"
                )));
            }
            self.conn.execute(
                "UPDATE rondo_club_change_detections
                 SET status = 'synced', synced_at = ?2, resolved_at = ?2, updated_at = ?2,
                     next_attempt_at = NULL, status_reason = NULL
                 WHERE id = ?1",
                params![id.0, ts(now)],
            )?;
            if status == "superseded" {
                self.conn.execute(
                    "UPDATE rondo_club_change_detections SET expected_sportlink_value = ?1
                     WHERE knvb_id = ?2 AND field_name = ?3 AND id > ?4
                       AND status IN ('pending', 'failed')",
                    params![new_value, knvb_id, field, id.0],
                )?;
            }
            self.conn.execute(
                &format!(
                    "UPDATE rondo_club_members
                     SET {field}_sportlink_modified = ?1, sync_origin = ?2, sync_origin_at = ?1,
                         updated_at = ?1
                     WHERE knvb_id = ?3"
                ),
                params![ts(now), Origin::SyncRondoClubToSportlink.as_str(), knvb_id],
            )?;
            marked += 1;
        }
        Ok(marked)
    }

    /// New values of the earlier changes in `id`'s chain (same member and field, superseded or
    /// failed, since the last change that was synced, lost or skipped): values this service may
    /// have written to Sportlink in a run that stopped (a crash, a kill) after the save and
    /// before it could record it. The conflict guard treats them as its own writes.
    pub fn unrecorded_chain_values(&self, id: ChangeId) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.new_value FROM rondo_club_change_detections c
             JOIN rondo_club_change_detections me
               ON me.id = ?1 AND c.knvb_id = me.knvb_id AND c.field_name = me.field_name
             WHERE c.id < me.id AND c.status IN ('superseded', 'failed')
               AND c.id > COALESCE((
                   SELECT MAX(r.id) FROM rondo_club_change_detections r
                   WHERE r.knvb_id = me.knvb_id AND r.field_name = me.field_name
                     AND r.id < me.id AND r.status IN ('synced', 'conflict_lost', 'skipped')), 0)
             ORDER BY c.id",
        )?;
        let values = stmt
            .query_map([id.0], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(values)
    }

    /// A failed attempt at pending changes: counts it, keeps the error, and schedules the next
    /// attempt; at `max_attempts` the changes become `failed`. Returns the ids that failed for good.
    pub fn record_failure(
        &self,
        ids: &[ChangeId],
        error: &str,
        next_attempt_at: DateTime<Utc>,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<ChangeId>> {
        let mut failed = Vec::new();
        for id in ids {
            let attempts: Option<u32> = self
                .conn
                .query_row(
                    "UPDATE rondo_club_change_detections
                     SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                         updated_at = ?4
                     WHERE id = ?1 AND status = 'pending'
                     RETURNING attempts",
                    params![id.0, error, ts(next_attempt_at), ts(now)],
                    |r| r.get(0),
                )
                .optional()?;
            if attempts.is_some_and(|a| a >= max_attempts) {
                self.conn.execute(
                    "UPDATE rondo_club_change_detections
                     SET status = 'failed', next_attempt_at = NULL, resolved_at = ?2,
                         status_reason = 'gave up after ' || attempts || ' attempts: ' || last_error
                     WHERE id = ?1",
                    params![id.0, ts(now)],
                )?;
                failed.push(*id);
            }
        }
        Ok(failed)
    }

    /// Ends pending changes without pushing them (`skipped`, `conflict_lost`), with the reason.
    pub fn resolve_without_push(
        &self,
        ids: &[ChangeId],
        status: ChangeStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        if !matches!(status, ChangeStatus::Skipped | ChangeStatus::ConflictLost) {
            return Err(StoreError::Rejected(format!(
                "{status} is not an ending without a push"
            )));
        }
        let mut n = 0;
        for id in ids {
            n += self.conn.execute(
                "UPDATE rondo_club_change_detections
                 SET status = ?2, status_reason = ?3, resolved_at = ?4, updated_at = ?4,
                     next_attempt_at = NULL
                 WHERE id = ?1 AND status = 'pending'",
                params![id.0, status.as_str(), reason, ts(now)],
            )?;
        }
        Ok(n)
    }

    /// Puts a failed, skipped or conflict-lost change back in the queue (operator action).
    /// Refused when a newer change of the same member and field exists: pushing this one would
    /// write a stale value. For a lost conflict, `sportlink_value` (what Sportlink held) becomes
    /// the expected value, so the push goes ahead instead of losing the same conflict again.
    pub fn requeue(&self, id: ChangeId, now: DateTime<Utc>) -> Result<()> {
        let row: Option<(String, FieldName, String)> = self
            .conn
            .query_row(
                "SELECT knvb_id, field_name, status FROM rondo_club_change_detections
                 WHERE id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((knvb_id, field, status)) = row else {
            return Err(StoreError::NotFound(format!("change {id}")));
        };
        if !matches!(status.as_str(), "failed" | "skipped" | "conflict_lost") {
            return Err(StoreError::Rejected(format!(
                "change {id} is {status}; only failed, skipped or conflict_lost changes can be requeued"
            )));
        }
        let newer: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM rondo_club_change_detections
                 WHERE knvb_id = ?1 AND field_name = ?2 AND id > ?3 ORDER BY id DESC LIMIT 1",
                params![knvb_id, field, id.0],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(newer) = newer {
            return Err(StoreError::Rejected(format!(
                "change {id} has a newer change {newer} for the same field; requeue that one"
            )));
        }
        let live: Option<String> = if status == "conflict_lost" {
            self.conn
                .query_row(
                    "SELECT sportlink_value FROM conflict_resolutions WHERE change_id = ?1
                     ORDER BY id DESC LIMIT 1",
                    [id.0],
                    |r| r.get(0),
                )
                .optional()?
                .flatten()
        } else {
            None
        };
        self.conn.execute(
            "UPDATE rondo_club_change_detections
             SET status = 'pending', attempts = 0, next_attempt_at = NULL, resolved_at = NULL,
                 status_reason = 'requeued by operator', updated_at = ?2,
                 expected_sportlink_value = COALESCE(?3, expected_sportlink_value)
             WHERE id = ?1",
            params![id.0, ts(now), live],
        )?;
        Ok(())
    }

    pub fn change(&self, id: ChangeId) -> Result<Option<ChangeRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {RECORD_COLUMNS} FROM rondo_club_change_detections WHERE id = ?1"),
                [id.0],
                record,
            )
            .optional()?
            .map(finish)
            .transpose()
    }

    /// Changes, newest first, optionally of some statuses, a page at a time.
    pub fn list_changes(
        &self,
        statuses: &[ChangeStatus],
        knvb_id: Option<&KnvbId>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ChangeRecord>> {
        let mut sql =
            format!("SELECT {RECORD_COLUMNS} FROM rondo_club_change_detections WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if !statuses.is_empty() {
            sql.push_str(&format!(
                " AND status IN ({})",
                placeholders(statuses.len())
            ));
            args.extend(statuses.iter().map(|s| s.as_str().to_string()));
        }
        if let Some(id) = knvb_id {
            sql.push_str(" AND knvb_id = ?");
            args.push(id.as_str().to_string());
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit} OFFSET {offset}"));
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), record)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(finish).collect()
    }

    pub fn change_counts(&self) -> Result<ChangeStatusCounts> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM rondo_club_change_detections GROUP BY status")?;
        let mut counts = ChangeStatusCounts::default();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            match ChangeStatus::parse(&status) {
                Some(ChangeStatus::Pending) => counts.pending = n,
                Some(ChangeStatus::Synced) => counts.synced = n,
                Some(ChangeStatus::Superseded) => counts.superseded = n,
                Some(ChangeStatus::ConflictLost) => counts.conflict_lost = n,
                Some(ChangeStatus::Skipped) => counts.skipped = n,
                Some(ChangeStatus::Failed) => counts.failed = n,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "change status".into(),
                        message: status,
                    })
                }
            }
        }
        Ok(counts)
    }

    /// Detection time of the newest change (the `status` verb).
    pub fn last_detection_time(&self) -> Result<Option<DateTime<Utc>>> {
        let raw: Option<String> = self.conn.query_row(
            "SELECT MAX(detected_at) FROM rondo_club_change_detections",
            [],
            |r| r.get(0),
        )?;
        parse_opt_ts(raw)
    }

    /// Counts by source and status, for metrics.
    pub fn change_counts_by_source(&self) -> Result<Vec<(Source, ChangeStatus, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT source, status, COUNT(*) FROM rondo_club_change_detections
             GROUP BY source, status",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(src, status, n)| {
                Some((Source::parse(&src)?, ChangeStatus::parse(&status)?, n))
            })
            .collect())
    }
}
