//! Members and the detection write: one transaction for the change rows, the supersede, the new
//! baseline and its hash (lessons.md 3).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, ts, Conn, Result, StoreError};
use crate::detect::{self, FieldChange, Prior, Sighting, TrackedValues, Verdict};
use crate::domain::{ChangeId, KnvbId, Origin};

/// (`{field}_sportlink_modified`, `{field}_rondo_club_modified`).
pub type FieldTimestamps = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// What one sighting did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SightingResult {
    pub knvb_id: Option<KnvbId>,
    pub verdict: Verdict,
    pub changes: Vec<FieldChange>,
    pub change_ids: Vec<ChangeId>,
    /// Older pending or failed changes this sighting replaced.
    pub superseded: Vec<ChangeId>,
}

/// Where a sighting came from, for the change rows.
#[derive(Debug, Clone, Default)]
pub struct SightingContext<'a> {
    pub run_id: Option<i64>,
    pub delivery_id: Option<&'a str>,
    /// Evaluate only: read the baseline, write nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MemberSummary {
    pub knvb_id: KnvbId,
    pub wp_post_id: Option<i64>,
    pub baseline: TrackedValues,
    pub sync_origin: Option<String>,
    pub last_seen_at: DateTime<Utc>,
    pub last_seen_source: String,
    pub last_verdict: String,
}

impl Conn<'_> {
    pub fn load_prior(&self, knvb_id: &KnvbId) -> Result<Option<Prior>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT baseline_json, tracked_fields_hash, sync_origin, sync_origin_at,
                        rondo_club_modified_gmt
                 FROM rondo_club_members WHERE knvb_id = ?1",
            )?
            .query_row([knvb_id.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()?;
        let Some((baseline_json, hash, origin, origin_at, modified)) = row else {
            return Ok(None);
        };
        let baseline = serde_json::from_str(&baseline_json).map_err(|e| StoreError::Corrupt {
            what: format!("baseline of {knvb_id}"),
            message: e.to_string(),
        })?;
        Ok(Some(Prior {
            baseline,
            hash,
            sync_origin: origin.as_deref().and_then(Origin::parse),
            sync_origin_at: parse_opt_ts(origin_at)?,
            modified_gmt: parse_opt_ts(modified)?,
        }))
    }

    /// Detection's write path (product.md §4): evaluates the sighting against the stored
    /// baseline and records the outcome, all inside the caller's transaction.
    pub fn apply_sighting(
        &self,
        sighting: &Sighting,
        context: &SightingContext<'_>,
        now: DateTime<Utc>,
    ) -> Result<SightingResult> {
        let prior = match sighting.person.knvb_id() {
            Some(id) => self.load_prior(&id)?,
            None => None,
        };
        let evaluation = detect::evaluate(self.catalogue, sighting, prior.as_ref(), now);
        let mut result = SightingResult {
            knvb_id: evaluation.knvb_id.clone(),
            verdict: evaluation.verdict,
            changes: evaluation.changes.clone(),
            change_ids: Vec::new(),
            superseded: Vec::new(),
        };
        let Some(knvb_id) = evaluation.knvb_id.as_ref() else {
            return Ok(result);
        };
        if context.dry_run || evaluation.verdict == Verdict::Stale {
            return Ok(result);
        }
        let modified = sighting.person.modified_gmt.unwrap_or(now);
        // The origin of this write, when known, becomes the member's sync_origin.
        let origin = match (sighting.origin, evaluation.verdict) {
            (Some(o), _) => Some(o),
            (None, Verdict::Changed) => Some(Origin::UserEdit),
            (None, _) => None,
        };
        self.upsert_member(knvb_id, sighting, &evaluation, origin, modified, now)?;
        for field in &evaluation.differing {
            self.conn
                .prepare_cached(&format!(
                    "UPDATE rondo_club_members SET {field}_rondo_club_modified = ?1 WHERE knvb_id = ?2"
                ))?
                .execute(params![ts(modified), knvb_id.as_str()])?;
        }
        for change in &evaluation.changes {
            let (id, superseded) =
                self.insert_change(knvb_id, change, sighting, context, modified, now)?;
            result.change_ids.push(id);
            result.superseded.extend(superseded);
        }
        Ok(result)
    }

    fn upsert_member(
        &self,
        knvb_id: &KnvbId,
        sighting: &Sighting,
        evaluation: &detect::Evaluation,
        origin: Option<Origin>,
        modified: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let baseline_json =
            serde_json::to_string(&evaluation.values).map_err(|e| StoreError::Corrupt {
                what: "baseline".into(),
                message: e.to_string(),
            })?;
        self.conn
            .prepare_cached(
                "INSERT INTO rondo_club_members (
                 knvb_id, wp_post_id, tracked_fields_hash, baseline_json, sync_origin,
                 sync_origin_at, rondo_club_modified_gmt, deceased, first_seen_at, last_seen_at,
                 last_seen_source, last_verdict, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?9)
             ON CONFLICT (knvb_id) DO UPDATE SET
                 wp_post_id = COALESCE(excluded.wp_post_id, wp_post_id),
                 tracked_fields_hash = excluded.tracked_fields_hash,
                 baseline_json = excluded.baseline_json,
                 sync_origin = COALESCE(excluded.sync_origin, sync_origin),
                 sync_origin_at = CASE WHEN excluded.sync_origin IS NULL
                                       THEN sync_origin_at ELSE excluded.sync_origin_at END,
                 rondo_club_modified_gmt = excluded.rondo_club_modified_gmt,
                 deceased = excluded.deceased,
                 last_seen_at = excluded.last_seen_at,
                 last_seen_source = excluded.last_seen_source,
                 last_verdict = excluded.last_verdict,
                 updated_at = excluded.updated_at",
            )?
            .execute(params![
                knvb_id.as_str(),
                sighting.person.id,
                evaluation.hash,
                baseline_json,
                origin.map(Origin::as_str),
                origin.map(|_| ts(modified)),
                sighting.person.modified_gmt.map(ts),
                evaluation.verdict == Verdict::Deceased,
                ts(now),
                sighting.source.as_str(),
                evaluation.verdict.as_str(),
            ])?;
        Ok(())
    }

    fn insert_change(
        &self,
        knvb_id: &KnvbId,
        change: &FieldChange,
        sighting: &Sighting,
        context: &SightingContext<'_>,
        modified: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(ChangeId, Vec<ChangeId>)> {
        // Sportlink still holds what the oldest unpushed change in the chain started from.
        let expected: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT expected_sportlink_value FROM rondo_club_change_detections
                 WHERE knvb_id = ?1 AND field_name = ?2 AND status IN ('pending', 'failed')
                 ORDER BY id LIMIT 1",
            )?
            .query_row(params![knvb_id.as_str(), change.field], |r| r.get(0))
            .optional()?;
        self.conn
            .prepare_cached(
                "INSERT INTO rondo_club_change_detections (
                 knvb_id, field_name, old_value, new_value, expected_sportlink_value, detected_at,
                 rondo_club_modified_gmt, detection_run_id, delivery_id, source, status, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?6)",
            )?
            .execute(params![
                knvb_id.as_str(),
                change.field,
                change.old_value,
                change.new_value,
                expected.as_deref().unwrap_or(&change.old_value),
                ts(now),
                ts(modified),
                context.run_id,
                context.delivery_id,
                sighting.source.as_str(),
            ])?;
        let id = self.conn.last_insert_rowid();
        let mut stmt = self.conn.prepare_cached(
            "UPDATE rondo_club_change_detections
             SET status = 'superseded', superseded_by = ?1, resolved_at = ?2, updated_at = ?2,
                 status_reason = 'replaced by change ' || ?1, next_attempt_at = NULL
             WHERE knvb_id = ?3 AND field_name = ?4 AND status IN ('pending', 'failed')
               AND id <> ?1
             RETURNING id",
        )?;
        let superseded = stmt
            .query_map(params![id, ts(now), knvb_id.as_str(), change.field], |r| {
                r.get(0).map(ChangeId)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((ChangeId(id), superseded))
    }

    pub fn member(&self, knvb_id: &KnvbId) -> Result<Option<MemberSummary>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT wp_post_id, baseline_json, sync_origin, last_seen_at, last_seen_source,
                        last_verdict
                 FROM rondo_club_members WHERE knvb_id = ?1",
            )?
            .query_row([knvb_id.as_str()], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()?;
        let Some((wp_post_id, baseline, sync_origin, seen, source, verdict)) = row else {
            return Ok(None);
        };
        Ok(Some(MemberSummary {
            knvb_id: knvb_id.clone(),
            wp_post_id,
            baseline: serde_json::from_str(&baseline).map_err(|e| StoreError::Corrupt {
                what: format!("baseline of {knvb_id}"),
                message: e.to_string(),
            })?,
            sync_origin,
            last_seen_at: super::parse_ts(&seen)?,
            last_seen_source: source,
            last_verdict: verdict,
        }))
    }

    /// The two timestamps the conflict resolver weighs for one field:
    /// (`{field}_sportlink_modified`, `{field}_rondo_club_modified`).
    pub fn field_timestamps(&self, knvb_id: &KnvbId, field: &str) -> Result<FieldTimestamps> {
        if self.catalogue.get(field).is_none() {
            return Err(StoreError::Rejected(format!("unknown field {field:?}")));
        }
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {field}_sportlink_modified, {field}_rondo_club_modified
                     FROM rondo_club_members WHERE knvb_id = ?1"
                ),
                [knvb_id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                    ))
                },
            )
            .optional()?;
        match row {
            Some((s, r)) => Ok((parse_opt_ts(s)?, parse_opt_ts(r)?)),
            None => Ok((None, None)),
        }
    }
}
