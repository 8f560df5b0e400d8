//! Members and the detection write: one transaction for the change rows, the supersede, the new
//! baseline and its hash (lessons.md 3).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_opt_ts, ts, Conn, Result, StoreError};
use crate::detect::{self, FieldChange, Prior, Sighting, TrackedValues, Verdict};
use crate::domain::{ChangeId, FieldName, KnvbId, Origin, Source};

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

/// How the service last saw a member (`rondo_club_members.last_seen_source`): through a sighting
/// (its `Source`), or through the forward sync's report, which records Sportlink's values without
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeenThrough {
    Webhook,
    Poll,
    Replay,
    Baseline,
    ForwardSyncReport,
}

impl SeenThrough {
    pub const ALL: [SeenThrough; 5] = [
        SeenThrough::Webhook,
        SeenThrough::Poll,
        SeenThrough::Replay,
        SeenThrough::Baseline,
        SeenThrough::ForwardSyncReport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SeenThrough::Webhook => "webhook",
            SeenThrough::Poll => "poll",
            SeenThrough::Replay => "replay",
            SeenThrough::Baseline => "baseline",
            SeenThrough::ForwardSyncReport => "forward_sync_report",
        }
    }
}

impl From<Source> for SeenThrough {
    fn from(source: Source) -> Self {
        match source {
            Source::Webhook => SeenThrough::Webhook,
            Source::Poll => SeenThrough::Poll,
            Source::Replay => SeenThrough::Replay,
            Source::Baseline => SeenThrough::Baseline,
        }
    }
}

crate::domain::stored_word!(SeenThrough);

/// A person whose `knvb-id` is there but not usable, as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InvalidKnvbId {
    pub wp_post_id: i64,
    /// The value, invisible and control characters escaped (`\u{200b}`).
    pub value: String,
    /// Where it was last seen.
    pub source: Source,
    pub delivery_id: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MemberSummary {
    pub knvb_id: KnvbId,
    pub wp_post_id: Option<i64>,
    pub baseline: TrackedValues,
    pub sync_origin: Option<Origin>,
    pub last_seen_at: DateTime<Utc>,
    pub last_seen_source: SeenThrough,
    pub last_verdict: Verdict,
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
                    r.get::<_, Option<Origin>>(2)?,
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
            sync_origin: origin,
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
            if let (Verdict::InvalidKnvbId, Some(post), Some(shown), false) = (
                evaluation.verdict,
                sighting.person.id,
                sighting.person.invalid_knvb_id(),
                context.dry_run,
            ) {
                self.record_invalid_knvb_id(post, &shown, sighting, context, now)?;
            }
            return Ok(result);
        };
        if context.dry_run || evaluation.verdict == Verdict::Stale {
            return Ok(result);
        }
        if let Some(post) = sighting.person.id {
            // The id is usable now: the person no longer needs the operator's attention.
            self.conn
                .prepare_cached("DELETE FROM invalid_knvb_ids WHERE wp_post_id = ?1")?
                .execute([post])?;
        }
        let modified = sighting.person.modified_gmt.unwrap_or(now);
        // The origin of this write, when known, becomes the member's sync_origin.
        let origin = match (sighting.origin, evaluation.verdict) {
            (Some(o), _) => Some(o),
            (None, Verdict::Changed) => Some(Origin::UserEdit),
            (None, _) => None,
        };
        self.upsert_member(knvb_id, sighting, &evaluation, origin, modified, now)?;
        // A forward-sync write copies Sportlink's values: its time is not a Rondo Club edit, and
        // must not make Rondo Club look newer in a conflict (see `record_forward_sync`).
        let fields_edited = if evaluation.verdict == Verdict::ForwardSync {
            &[][..]
        } else {
            &evaluation.differing[..]
        };
        for field in fields_edited {
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

    fn record_invalid_knvb_id(
        &self,
        wp_post_id: i64,
        shown: &str,
        sighting: &Sighting,
        context: &SightingContext<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        tracing::warn!(
            wp_post_id,
            knvb_id = shown,
            source = sighting.source.as_str(),
            "a person's knvb-id is not a usable id; recorded for the operator"
        );
        self.conn
            .prepare_cached(
                "INSERT INTO invalid_knvb_ids (wp_post_id, shown_value, source, delivery_id,
                     first_seen_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (wp_post_id) DO UPDATE SET
                     shown_value = excluded.shown_value, source = excluded.source,
                     delivery_id = excluded.delivery_id, last_seen_at = excluded.last_seen_at",
            )?
            .execute(params![
                wp_post_id,
                shown,
                sighting.source.as_str(),
                context.delivery_id,
                ts(now)
            ])?;
        Ok(())
    }

    /// People whose `knvb-id` is not usable, most recently seen first.
    pub fn invalid_knvb_ids(&self, limit: u32) -> Result<Vec<InvalidKnvbId>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT wp_post_id, shown_value, source, delivery_id, first_seen_at, last_seen_at
             FROM invalid_knvb_ids ORDER BY last_seen_at DESC, wp_post_id LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Source>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(wp_post_id, value, source, delivery_id, first, last)| {
                Ok(InvalidKnvbId {
                    wp_post_id,
                    value,
                    source,
                    delivery_id,
                    first_seen_at: super::parse_ts(&first)?,
                    last_seen_at: super::parse_ts(&last)?,
                })
            })
            .collect()
    }

    pub fn count_invalid_knvb_ids(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM invalid_knvb_ids", [], |r| r.get(0))?)
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
                 last_seen_source, last_verdict, updated_at, display_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?9, ?12)
             ON CONFLICT (knvb_id) DO UPDATE SET
                 wp_post_id = COALESCE(excluded.wp_post_id, wp_post_id),
                 display_name = COALESCE(excluded.display_name, display_name),
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
                SeenThrough::from(sighting.source),
                evaluation.verdict,
                display_name(&sighting.person.acf),
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
                    r.get::<_, Option<Origin>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, SeenThrough>(4)?,
                    r.get::<_, Verdict>(5)?,
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
    pub fn field_timestamps(&self, knvb_id: &KnvbId, field: &FieldName) -> Result<FieldTimestamps> {
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

/// The member's name as Rondo Club shows it (`first_name`, `infix`, `last_name` of `acf`), for
/// the history's search; `None` when the sighting carries none (a name is never erased).
fn display_name(acf: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let name = ["first_name", "infix", "last_name"]
        .iter()
        .filter_map(|key| acf.get(*key)?.as_str().map(str::trim))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then(|| name.chars().take(200).collect())
}
